# web may read and create orders through api, nothing else.
Kind = "service-intentions"
Name = "api"
Sources = [
  {
    Name = "web"
    Permissions = [
      {
        Action = "allow"
        HTTP {
          PathPrefix = "/v1/orders"
          Methods    = ["GET", "POST"]
        }
      },
      {
        Action = "allow"
        HTTP {
          PathExact = "/health"
          Methods   = ["GET"]
        }
      }
    ]
  }
]
