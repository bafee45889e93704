Kind = "service-intentions"
Name = "db"
Namespace = "team-a"
Sources = [{ Name = "web", Action = "allow" }]
