# The canary: one request in ten on web's upstream "api" goes to api-v2.
Kind = "service-splitter"
Name = "api"
Splits = [
  { Weight = 90, Service = "api" },
  { Weight = 10, Service = "api-v2" },
]
