# The production mesh on Kubernetes: consul-k8s manages service registration (connect-inject),
# mesh-gitops manages config entries, intentions, ACL and the CA.
datacenter = "dc1"
owner      = "platform-k8s"

acl {
  enabled        = true
  default_policy = "deny"
}

guardrails = ["production"]
