Kind = "service-intentions"
Name = "db"
Sources = [{ Name = "web", Action = "allow", LegacyID = "5d2c6bbb-1b33-4c2f-8a3c-2a1d2b4f7a11" }]
