# The batch team's sources of the shared destination api.
Kind = "service-intentions"
Name = "api"
Meta {
  "mesh-gitops-shared" = "true"
}
Sources = [
  {
    Name   = "batch-worker"
    Action = "allow"
  },
  {
    Name   = "report"
    Action = "allow"
  },
]
