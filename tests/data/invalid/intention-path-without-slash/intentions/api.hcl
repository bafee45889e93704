Kind = "service-intentions"
Name = "api"
Sources = [
  {
    Name = "web"
    Permissions = [{ Action = "allow"  HTTP { PathPrefix = "admin" } }]
  }
]
