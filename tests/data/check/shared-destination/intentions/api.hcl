Kind = "service-intentions"
Name = "api"
Meta {
  "mesh-gitops-shared" = "true"
}
Sources = [
  { Name = "web", Action = "allow" },
]
