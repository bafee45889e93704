service {
  name    = "web"
  port    = 8080
  address = "10.0.4.17"
  connect {
    sidecar_service {}
  }
}
