service {
  port = 8080
  connect {
    sidecar_service {}
  }
}
