Kind = "proxy-defaults"
Name = "web"
Config {
  protocol = "http"
}
