# The production checklist of "Consul service mesh in production" (HashiCorp), as guardrails.
# Enable with `guardrails = ["production"]` in mesh-gitops.hcl.

forbid "acl-default-deny" {
  description = "ACLs are enabled and deny by default, so only intentions open edges"
  findings    = ["W1005"]
}

forbid "service-tokens-write-only-their-service" {
  description = "each service's token may write only its own service, so it cannot take another's identity"
  findings    = ["W1006", "W1007"]
}

forbid "one-token-per-service" {
  description = "tokens are not shared between services"
  findings    = ["W1009"]
}

forbid "protect-application-listener" {
  description = "applications are reachable only through their sidecar"
  findings    = ["W1010"]
}

forbid "no-literal-secrets" {
  description = "no secret is committed in a job's environment"
  findings    = ["W1011"]
}
