# A server with neither TLS nor a gossip key, and ACLs off.
datacenter       = "dc1"
data_dir         = "/opt/consul"
server           = true
bootstrap_expect = 3
retry_join       = ["consul-0", "consul-1", "consul-2"]
