Kind     = "service-defaults"
Name     = "api-v2"
Protocol = "http"
