job "web" {
  group "web" {
    network {
      mode = "bridge"
    }
    service {
      name = "web"
      port = "8080"
      connect {
        sidecar_service {}
      }
    }
    task "web" {
      driver = "docker"
      env {
        DB_PASSWORD = "hunter2"
        DB_HOST     = "127.0.0.1"
      }
    }
  }
}
