# The frontend team's sources of the shared destination api.
Kind = "service-intentions"
Name = "api"
Meta {
  "mesh-gitops-shared" = "true"
}
Sources = [
  {
    Name   = "web"
    Action = "allow"
  },
]
