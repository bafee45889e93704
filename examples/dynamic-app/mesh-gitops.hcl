# ACLs on with default deny: no service may reach another unless an intention allows it.
datacenter = "dc1"
owner      = "dynamic-app-example"

acl {
  enabled        = true
  default_policy = "deny"
}
