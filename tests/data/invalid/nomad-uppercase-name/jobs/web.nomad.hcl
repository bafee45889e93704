job "web" {
  group "web" {
    network {
      mode = "bridge"
    }
    service {
      name = "Web"
      port = "8080"
      connect {
        sidecar_service {}
      }
    }
  }
}
