# The countdash example runs against a Nomad dev agent (`nomad agent -dev-connect`), whose
# Consul has ACLs disabled, so intentions default to allow. The intention below states the
# one edge this mesh needs anyway, so the example keeps working when ACLs are turned on.
datacenter = "dc1"
owner      = "countdash-example"
