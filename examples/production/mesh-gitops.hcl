# Consul service mesh in production (HashiCorp's checklist): ACLs on with default deny, one
# token per service limited to that service, the built-in CA configured, and an intention for
# every edge.
datacenter = "dc1"
owner      = "platform"

acl {
  enabled        = true
  default_policy = "deny"
}

guardrails = ["production"]
