service {
  name  = "web"
  port  = 8080
  token = "8f3c1a2e-1d4b-4f6a-9b8c-7d6e5f4a3b2c"
}
