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
              destination_name = "api"
            }
          }
        }
      }
    }
  }
}
