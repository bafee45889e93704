job "web" {
  group "web" {
    network {
      mode = "host"
    }
    service {
      name = "web"
      port = "8080"
      connect {
        sidecar_service {}
      }
    }
  }
}
