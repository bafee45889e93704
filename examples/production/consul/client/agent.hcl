# The Consul clients beside the services: certificates from the servers (auto-encrypt), the
# servers verified by hostname, HTTPS and gRPC over TLS for the sidecars, gossip encrypted, ACLs
# with default deny. The agent token is set at run time (`consul acl set-agent-token`).
datacenter = "dc1"
data_dir   = "/opt/consul"
retry_join = ["provider=aws tag_key=consul-server tag_value=dc1"]

encrypt = "{{ with secret \"kv/data/consul/gossip\" }}{{ .Data.data.key }}{{ end }}"

auto_encrypt {
  tls = true
}

tls {
  defaults {
    ca_file         = "/etc/consul.d/tls/consul-agent-ca.pem"
    verify_outgoing = true
  }
  internal_rpc {
    verify_server_hostname = true
  }
}

acl {
  enabled                  = true
  default_policy           = "deny"
  enable_token_persistence = true
}

ports {
  http     = -1
  https    = 8501
  grpc_tls = 8503
}
