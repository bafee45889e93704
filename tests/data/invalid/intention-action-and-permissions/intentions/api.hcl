Kind = "service-intentions"
Name = "api"
Sources = [
  {
    Name   = "web"
    Action = "allow"
    Permissions = [{ Action = "allow"  HTTP { PathPrefix = "/v1" } }]
  }
]
