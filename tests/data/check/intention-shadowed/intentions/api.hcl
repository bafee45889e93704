Kind = "service-intentions"
Name = "api"
Sources = [
  { Name = "web", Action = "allow" },
  { Name = "db", Action = "allow" },
  { Name = "*", Action = "deny" },
]
