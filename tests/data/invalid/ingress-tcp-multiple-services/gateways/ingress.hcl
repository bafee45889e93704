Kind = "ingress-gateway"
Name = "ingress"
Listeners = [
  {
    Port     = 8080
    Protocol = "tcp"
    Services = [{ Name = "web" }, { Name = "api" }]
  },
]
