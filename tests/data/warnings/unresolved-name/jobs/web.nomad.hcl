job "web" {
  group "web" {
    network {
      mode = "bridge"
    }
    service {
      name = "web"
      port = "8080"
      connect {
        sidecar_service {
          proxy {
            upstreams {
              destination_name = "${NOMAD_META_upstream}"
              local_bind_port  = 9000
            }
          }
        }
      }
    }
  }
}
