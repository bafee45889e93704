job "web" {
  datacenters = ["dc1"]

  group "web" {
    count = 3

    network {
      mode = "bridge"
      port "http" {
        to = 8080
      }
    }

    service {
      name = "web"
      port = "8080"

      connect {
        sidecar_service {
          proxy {
            upstreams {
              destination_name = "api"
              local_bind_port  = 9091
            }
          }
        }
      }
    }

    task "web" {
      driver = "docker"
      env {
        API_URL = "http://${NOMAD_UPSTREAM_ADDR_api}"
      }
      config {
        image = "nginx:1.27"
      }
    }
  }
}
