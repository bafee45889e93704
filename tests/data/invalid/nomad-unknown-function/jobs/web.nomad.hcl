job "web" {
  group "web" {
    network {
      mode = "bridge"
    }
    service {
      name = shout("web")
      port = "8080"
    }
  }
}
