Kind = "service-intention"
Name = "db"
Sources = [{ Name = "web", Action = "allow" }]
