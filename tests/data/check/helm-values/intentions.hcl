Kind = "service-intentions"
Name = "api"
Sources = [{ Name = "web", Action = "allow" }]
