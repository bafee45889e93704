Kind = "service-defaults"
Name = "web"
Mode = "sidecar"
