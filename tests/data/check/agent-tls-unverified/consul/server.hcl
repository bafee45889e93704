# TLS with the deprecated top-level keys, not verified; secrets written in the file.
server           = true
bootstrap_expect = 3
encrypt          = "i0P+gFTkLPg0h53eNYjydg=="

ca_file         = "/etc/consul.d/tls/ca.pem"
cert_file       = "/etc/consul.d/tls/server.pem"
key_file        = "/etc/consul.d/tls/server-key.pem"
verify_incoming = false
verify_outgoing = true

acl {
  enabled        = true
  default_policy = "allow"
  tokens {
    initial_management = "3f1c9a62-8e6b-4a8f-9d1e-2f4b8c7a6d5e"
  }
}

connect {
  enabled = false
}

ports {
  grpc = 8502
}
