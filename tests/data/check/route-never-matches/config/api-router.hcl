# The /admin prefix is written after the catch-all /, so it never matches; the second route
# names a service declared nowhere.
Kind = "service-router"
Name = "api"
Routes = [
  { Match { HTTP { PathPrefix = "/" } }, Destination { Service = "api" } },
  { Match { HTTP { PathPrefix = "/admin" } }, Destination { Service = "admin" } },
  { Match { HTTP { Header = [{ Name = "x-debug", Present = true }] } }, Destination { Service = "api-debug" } },
]
