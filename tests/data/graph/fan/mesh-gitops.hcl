# A small mesh for the SVG layout's golden file: a fan-out, a fan-in, a cycle back to the front,
# a denied upstream and a service that only intentions name.
datacenter = "dc1"
acl {
  enabled        = true
  default_policy = "deny"
}
