Kind = "service-defaults"
Name = "*"
Protocol = "http"
