acl {
  enabled        = true
  default_policy = "allow"
}
