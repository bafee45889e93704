Name = "db"
Sources = [{ Name = "web", Action = "allow" }]
