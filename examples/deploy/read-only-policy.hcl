# The Consul ACL policy of everything mesh-gitops does without writing: `check --consul` (and
# `plan`'s read of the live mesh). The least it needs; it can change nothing. Create it and a
# token with it:
#
#   consul acl policy create -name mesh-gitops-read -rules @read-only-policy.hcl
#   consul acl token create -description "mesh-gitops check" -policy-name mesh-gitops-read
#
# Give the token to CI as CONSUL_HTTP_TOKEN (a secret), never on a command line.

# service-defaults, service-router, service-splitter, service-resolver and the gateways are
# read on their service's name, service-intentions with intentions read on the destination;
# the catalog's services and their sidecars' upstreams with service read. An entry or service
# the token cannot read is left out of the answer by Consul, so the check would not see it.
service_prefix "" {
  policy     = "read"
  intentions = "read"
}

# The catalog answers a service's instances only on nodes the token can read.
node_prefix "" {
  policy = "read"
}

# exported-services and the other mesh-level entries; listing every config-entry kind.
mesh     = "read"
operator = "read"
