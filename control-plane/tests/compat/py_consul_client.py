"""Drives the embedded control plane with py-consul, an existing Consul client from PyPI.

Usage: py_consul_client.py HOST PORT MANAGEMENT_TOKEN. Exits non-zero on the first mismatch.
"""

import sys

import consul

host, port, mgmt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = consul.Consul(host=host, port=port, token=mgmt)

# Config entries, with CAS.
assert c.config.set("service-defaults", "web", {"Protocol": "http"}) is True
entry = c.config.get("service-defaults", "web")
assert entry["Protocol"] == "http", entry
assert c.config.set("service-defaults", "web", {"Protocol": "grpc"}, cas=entry["ModifyIndex"] + 100) is False
assert c.config.set("service-defaults", "web", {"Protocol": "grpc"}, cas=entry["ModifyIndex"]) is True
assert [e["Name"] for e in c.config.list("service-defaults")] == ["web"]
assert c.config.set("service-defaults", "api", {"Protocol": "http"}) is True

# Intentions through the exact API, and decisions.
assert c.connect.intentions.upsert("web", "api", action="allow") is True
assert c.connect.intentions.upsert("*", "api", action="deny") is True
read = c.connect.intentions.read("web", "api")
assert read["Action"] == "allow" and read["Precedence"] == 9, read
assert c.connect.intentions.check("web", "api") is True
assert c.connect.intentions.check("db", "api") is False
names = [(i["SourceName"], i["DestinationName"]) for i in c.connect.intentions.list()]
assert ("web", "api") in names and ("*", "api") in names, names
matched = c.connect.intentions.match("destination", "api")
assert [i["SourceName"] for i in matched["api"]] == ["web", "*"], matched
assert c.connect.intentions.delete("web", "api") is True

# KV and a session lock.
assert c.kv.put("mesh-gitops/owner/inventory", "v1") is True
index, data = c.kv.get("mesh-gitops/owner/inventory")
assert data["Value"] == b"v1", data
assert c.kv.put("mesh-gitops/owner/inventory", "v2", cas=data["ModifyIndex"] + 1) is False
session = c.session.create(name="leader", ttl=15)
assert c.kv.put("mesh-gitops/owner/leader", "me", acquire=session) is True
other = c.session.create(name="standby")
assert c.kv.put("mesh-gitops/owner/leader", "them", acquire=other) is False
_, info = c.session.info(session)
assert info["Name"] == "leader", info
assert c.session.destroy(session) is True
assert c.kv.put("mesh-gitops/owner/leader", "them", acquire=other) is True

# The Connect CA.
roots = c.connect.ca.roots()
assert roots["TrustDomain"].endswith(".consul") and len(roots["Roots"]) == 1, roots
config = c.connect.ca.configuration()
assert config["Provider"] == "consul", config

# ACL: policies and tokens.
policy = c.acl.policy.create("web-policy", rules='service "web" { policy = "write" }')
assert policy["Name"] == "web-policy"
token = c.acl.token.create(description="web", policies_name=["web-policy"])
assert token["Policies"][0]["Name"] == "web-policy", token
web = consul.Consul(host=host, port=port, token=token["SecretID"])
assert web.acl.token.read_self()["AccessorID"] == token["AccessorID"]
try:
    web.config.set("service-defaults", "other", {"Protocol": "http"})
    raise AssertionError("a web token must not write service-defaults for other")
except consul.ACLPermissionDenied:
    pass
assert any(p["Name"] == "web-policy" for p in c.acl.policy.list())

print("py-consul: all checks passed")
