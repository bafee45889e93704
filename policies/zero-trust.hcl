# Zero trust: nothing is reachable unless an intention names both ends.
# Enable with `guardrails = ["zero-trust"]` in mesh-gitops.hcl.

forbid "default-deny" {
  description = "ACLs are enabled and deny by default"
  findings    = ["W1005"]
}

forbid "no-wildcard-allow" {
  description = "no intention allows every service in or out"
  findings    = ["W1004"]
}

forbid "no-broad-intention-write" {
  description = "no policy may write intentions for every service"
  findings    = ["W1008"]
}
