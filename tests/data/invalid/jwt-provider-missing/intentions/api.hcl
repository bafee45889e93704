Kind = "service-intentions"
Name = "api"
JWT {
  Providers = [{ Name = "okta" }]
}
Sources = [{ Name = "web", Action = "allow" }]
