Kind = "service-intentions"
Name = "api"
Sources = [
  {
    Name = "web"
    Permissions = [
      { Action = "allow"  HTTP { PathPrefix = "/" } },
      { Action = "deny"   HTTP { PathPrefix = "/admin" } },
    ]
  }
]
