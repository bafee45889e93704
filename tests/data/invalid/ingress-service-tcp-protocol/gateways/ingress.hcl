Kind = "ingress-gateway"
Name = "ingress"
Listeners = [
  {
    Port     = 8080
    Protocol = "http"
    Services = [{ Name = "web" }]
  },
]
