datacenter = "dc1"
owner      = "frontend"

acl {
  enabled        = true
  default_policy = "deny"
}
