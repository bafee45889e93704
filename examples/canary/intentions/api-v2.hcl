# The canary's own intention. The sidecar of api-v2 admits the connection, so without this
# entry one request in ten on web -> api would be refused (check reports E1014).
Kind = "service-intentions"
Name = "api-v2"
Sources = [
  { Name = "web", Action = "allow" },
]
