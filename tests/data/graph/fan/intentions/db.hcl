Kind = "service-intentions"
Name = "db"
Sources = [
  { Name = "api", Action = "allow" },
  { Name = "cache", Action = "allow" },
  { Name = "metrics", Action = "allow" },
]
