job "web" {
  group "web" {
    network {
      mode = "bridge"
  }
}
