Kind = "service-intentions"
Name = "api"
Sources = [
  { Name = "*", Action = "allow" },
]
