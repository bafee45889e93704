# The Consul servers, hardened as the production checklist asks: TLS on internal RPC verified
# both ways and by hostname, HTTPS only, gossip encrypted, ACLs on with default deny, Connect on.
# The gossip key is rendered into this file at deploy time from Vault (consul-template); no
# secret is written here.
datacenter       = "dc1"
data_dir         = "/opt/consul"
server           = true
bootstrap_expect = 3
retry_join       = ["provider=aws tag_key=consul-server tag_value=dc1"]

encrypt = "{{ with secret \"kv/data/consul/gossip\" }}{{ .Data.data.key }}{{ end }}"

tls {
  defaults {
    ca_file         = "/etc/consul.d/tls/consul-agent-ca.pem"
    cert_file       = "/etc/consul.d/tls/dc1-server-consul-0.pem"
    key_file        = "/etc/consul.d/tls/dc1-server-consul-0-key.pem"
    verify_incoming = true
    verify_outgoing = true
  }
  internal_rpc {
    verify_server_hostname = true
  }
}

auto_encrypt {
  allow_tls = true
}

acl {
  enabled                  = true
  default_policy           = "deny"
  down_policy              = "extend-cache"
  enable_token_persistence = true
}

connect {
  enabled = true
}

ports {
  http     = -1
  https    = 8501
  grpc_tls = 8503
}
