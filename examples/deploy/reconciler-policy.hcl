# The Consul ACL policy of the mesh-gitops reconciler for the owner "platform-team": the least it
# needs. Create it and a token with it:
#
#   consul acl policy create -name mesh-gitops-reconciler -rules @reconciler-policy.hcl
#   consul acl token create -description "mesh-gitops reconciler" -policy-name mesh-gitops-reconciler
#
# See README.md for what each rule is for and what to drop when the repository does not need it.

# service-defaults, service-router, service-splitter, service-resolver and service-intentions
# entries are authorized on their service's name. Narrow the prefix to the services the
# repository owns (e.g. "payments-") when several teams share the cluster.
service_prefix "" {
  policy     = "write"
  intentions = "write"
}

# proxy-defaults, mesh, gateways and the Connect CA configuration are operator-level objects,
# and listing every config-entry kind needs operator read. Use "read" if the repository has
# none of proxy-defaults, mesh, *-gateway or ca-config.
operator = "write"

# The reconciler's own keys: the inventory of owned objects, the status and the leader lock.
key_prefix "mesh-gitops/platform-team/" {
  policy = "write"
}

# The leader session (created on the node of the agent the reconciler talks to). Narrow to the
# agents' node names if they are known.
session_prefix "" {
  policy = "write"
}

# Only when the repository declares acl-policy, acl-role or acl-token files; remove otherwise.
acl = "write"
