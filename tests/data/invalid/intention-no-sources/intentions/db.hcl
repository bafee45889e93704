Kind = "service-intentions"
Name = "db"
Sources = []
