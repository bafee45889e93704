Kind = "service-intentions"
Nmae = "db"
Sources = [{ Name = "web", Action = "allow" }]
