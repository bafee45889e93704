Kind = "service-router"
Name = "web"
Routes = [
  {
    Match { HTTP { PathRegex = "/api/(?=v2)" } }
    Destination { Service = "api" }
  },
]
