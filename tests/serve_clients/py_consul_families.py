"""py-consul (unchanged, installed by the test set-up) against `mesh-gitops serve`: the agent,
catalog, health, session, transaction and status families, filters and maintenance.

Usage: python3 py_consul_families.py <host> <port>
"""

import base64
import sys

import consul

c = consul.Consul(host=sys.argv[1], port=int(sys.argv[2]))

# Agent: services with checks; the server is its own agent.
assert c.agent.self()["Config"]["Datacenter"] == "dc1"
assert c.agent.service.register("api", service_id="api-1", port=9090, tags=["blue"], check=consul.Check.ttl("20s"))
assert c.agent.service.register("api", service_id="api-2", port=9091, tags=["green"], meta={"zone": "b"})
services = c.agent.services()
assert set(services) == {"api-1", "api-2"}, services
assert list(c.agent.services(filter_expr='Meta.zone == "b"')) == ["api-2"]
assert c.agent.checks()["service:api-1"]["Status"] == "critical"
assert c.agent.check.ttl_pass("service:api-1", "fine")
assert c.agent.checks()["service:api-1"]["Output"] == "fine"

# Health: passing instances, by tag, by filter; checks by service, node and state.
_, entries = c.health.service("api", passing=True)
assert sorted(e["Service"]["ID"] for e in entries) == ["api-1", "api-2"], entries
_, entries = c.health.service("api", tag="green")
assert [e["Service"]["ID"] for e in entries] == ["api-2"]
_, entries = c.health.service("api", filter_expr="Service.Port == 9090")
assert [e["Service"]["ID"] for e in entries] == ["api-1"]
assert c.agent.check.ttl_fail("service:api-1")
_, entries = c.health.service("api", passing=True)
assert [e["Service"]["ID"] for e in entries] == ["api-2"]
_, checks = c.health.checks("api")
assert [x["CheckID"] for x in checks] == ["service:api-1"]
_, checks = c.health.state("critical")
assert [x["CheckID"] for x in checks] == ["service:api-1"]
node = c.agent.self()["Config"]["NodeName"]
_, checks = c.health.node(node)
assert {x["CheckID"] for x in checks} == {"serfHealth", "service:api-1"}

# Maintenance mode on a service and on the node.
assert c.agent.service.maintenance("api-2", True, "upgrade")
_, entries = c.health.service("api", passing=True)
assert entries == [], entries
assert c.agent.service.maintenance("api-2", False)
assert c.agent.maintenance(True)
_, critical = c.health.state("critical")
assert "_node_maintenance" in [x["CheckID"] for x in critical]
assert c.agent.maintenance(False)

# A check registered on its own, then removed.
assert c.agent.check.register("disk", check=consul.Check.ttl("30s"), check_id="disk")
assert "disk" in c.agent.checks()
assert c.agent.check.deregister("disk")
assert "disk" not in c.agent.checks()

# Catalog: nodes, a node's services, a service's instances, Connect endpoints.
assert c.catalog.datacenters() == ["dc1"]
_, nodes = c.catalog.nodes()
assert [n["Node"] for n in nodes] == [node]
_, info = c.catalog.node(node)
assert set(info["Services"]) == {"api-1", "api-2"}
_, instances = c.catalog.service("api", tag="blue")
assert [i["ServiceID"] for i in instances] == ["api-1"]
_, proxies = c.catalog.connect("api")
assert proxies == []
assert c.catalog.register("ext-node", "10.0.0.9", service={"Service": "db", "Port": 5432})
_, nodes = c.catalog.nodes()
assert sorted(n["Node"] for n in nodes) == sorted([node, "ext-node"])
_, instances = c.catalog.service("db")
assert instances[0]["Address"] == "10.0.0.9"
assert c.catalog.deregister("ext-node")

# Sessions by node; a transaction's results.
sid = c.session.create(name="worker", behavior="delete", ttl=30)
_, mine = c.session.node(node)
assert [s["ID"] for s in mine] == [sid]
assert c.kv.put("work/item", "x", acquire=sid)
c.session.destroy(sid)
_, gone = c.kv.get("work/item")
assert gone is None
result = c.txn.put([
    {"KV": {"Verb": "set", "Key": "t/x", "Value": base64.b64encode(b"1").decode()}},
    {"KV": {"Verb": "get", "Key": "t/x"}},
])
assert base64.b64decode(result["Results"][1]["KV"]["Value"]) == b"1"

# Status.
assert c.status.leader()
assert len(c.status.peers()) == 1

assert c.agent.service.deregister("api-1")
assert c.agent.service.deregister("api-2")
assert c.agent.services() == {}
print("all checks passed")
