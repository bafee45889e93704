Kind = "service-intentions"
Name = "db"
Sources = [{ Name = "web", Action = "allow", LegacyMeta = { owner = "ops" } }]
