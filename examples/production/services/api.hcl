# Registered by the agent on the api hosts. The token comes from the acl-token "api"
# (SecretIDFrom), never from this file. The application listens on loopback only, so nothing
# reaches it around the proxy.
service {
  name    = "api"
  port    = 9090
  address = "127.0.0.1"

  connect {
    sidecar_service {
      proxy {
        upstreams = [
          {
            destination_name = "cassandra-db"
            local_bind_port  = 9042
          }
        ]
      }
    }
  }
}
