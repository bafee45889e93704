Kind = "service-intentions"
Name = "cache"
Sources = [{ Name = "web", Action = "allow" }]
