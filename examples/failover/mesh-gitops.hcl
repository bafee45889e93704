# ACLs on with default deny: a request reaches a service only if an intention allows it.
datacenter = "dc1"
owner      = "failover-example"

acl {
  enabled        = true
  default_policy = "deny"
}
