job "web" {
  group "web" {}
}

job "api" {
  group "api" {}
}
