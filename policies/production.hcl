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

forbid "agent-tls-verified" {
  description = "agents talk over TLS and verify incoming, outgoing and server certificates"
  findings    = ["W1201", "W1202"]
}

forbid "gossip-encrypted" {
  description = "agents encrypt gossip with a key and accept no unencrypted gossip"
  findings    = ["W1203"]
}

forbid "no-literal-agent-secrets" {
  description = "no gossip key, ACL token or other secret is committed in agent configuration or Helm values"
  findings    = ["W1204", "W1205"]
}

forbid "agent-acl-default-deny" {
  description = "the agents enable ACLs and deny by default"
  findings    = ["W1206"]
}
