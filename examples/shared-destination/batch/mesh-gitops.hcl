datacenter = "dc1"
owner      = "batch"

acl {
  enabled        = true
  default_policy = "deny"
}
