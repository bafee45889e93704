datacenter = "dc1"
acl {
  enabled        = true
  default_policy = "maybe"
}
