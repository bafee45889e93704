Kind = "service-intentions"
Name = "api"
Sources = [
  { Name = "web", Action = "deny", Description = "already denied by default" },
]
