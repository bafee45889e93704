job "web" {
  group "web" {
    network {
      mode = "bridge"
    }
    service {
      name = "web"
      port = "8080"
      connect {
        native = true
        sidecar_service {}
      }
    }
  }
}
