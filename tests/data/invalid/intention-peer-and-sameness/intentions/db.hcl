Kind = "service-intentions"
Name = "db"
Sources = [{ Name = "web", Peer = "east", SamenessGroup = "group-1", Action = "allow" }]
