# The blog post's cluster: Consul 1.2 with Connect enabled and ACLs off (default allow). The
# post then closes web -> socat with a deny intention; this repository is that final state.
datacenter = "dc1"
owner      = "web-socat-example"
