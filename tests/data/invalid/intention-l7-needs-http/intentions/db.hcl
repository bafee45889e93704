Kind = "service-intentions"
Name = "db"
Sources = [
  {
    Name = "web"
    Permissions = [{ Action = "allow"  HTTP { PathPrefix = "/" } }]
  }
]
