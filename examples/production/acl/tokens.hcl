# One token per service, each limited to its own service. Secrets are supplied at apply time.
Kind              = "acl-token"
Name              = "web"
Description       = "token for the web service"
Policies          = [{ Name = "web" }]
SecretIDFrom      = "env:WEB_CONSUL_TOKEN"
