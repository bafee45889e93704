//! The JSON shapes of the catalog's objects as Consul's `api` package reads them
//! (`api/catalog.go`: `Node`, `CatalogService`; `api/health.go`: `HealthCheck`,
//! `ServiceEntry`; `api/agent.go`: `AgentService`, `AgentMember`), and the views the catalog,
//! health and agent endpoints share: nodes, and the checks that apply to an instance.

use super::{q1, ApiError, Ctx, Q};
use crate::store::{CatalogService, HealthCheck, State, PASSING};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The server's own node check (`structs.SerfCheckID`): one server is always alive.
pub(crate) const SERF_CHECK: &str = "serfHealth";

/// A node as the catalog knows it: the server's own node, and every node an instance or a
/// check was registered on (this server keeps no node table apart from them).
#[derive(Debug, Clone)]
pub(crate) struct NodeView {
    pub name: String,
    pub address: String,
    pub create_index: u64,
    pub modify_index: u64,
}

pub(crate) fn nodes(ctx: &Ctx, s: &State) -> Vec<NodeView> {
    let mut out: BTreeMap<String, NodeView> = BTreeMap::new();
    out.insert(
        ctx.node.clone(),
        NodeView {
            name: ctx.node.clone(),
            address: "127.0.0.1".into(),
            create_index: 1,
            modify_index: 1,
        },
    );
    for c in s.catalog.values() {
        let n = out.entry(c.node.clone()).or_insert_with(|| NodeView {
            name: c.node.clone(),
            address: c.address.clone(),
            create_index: c.create_index,
            modify_index: c.modify_index,
        });
        n.create_index = n.create_index.min(c.create_index);
        n.modify_index = n.modify_index.max(c.modify_index);
    }
    for c in s.checks.values() {
        out.entry(c.node.clone()).or_insert_with(|| NodeView {
            name: c.node.clone(),
            address: String::new(),
            create_index: c.create_index,
            modify_index: c.modify_index,
        });
    }
    out.into_values().collect()
}

pub(crate) fn node_json(ctx: &Ctx, n: &NodeView) -> Value {
    json!({
        "ID": "", "Node": n.name, "Address": n.address, "Datacenter": ctx.datacenter,
        "TaggedAddresses": {"lan": n.address, "wan": n.address}, "Meta": {},
        "CreateIndex": n.create_index, "ModifyIndex": n.modify_index,
    })
}

pub(crate) fn check_json(c: &HealthCheck) -> Value {
    json!({
        "Node": c.node, "CheckID": c.check_id, "Name": c.name, "Status": c.status,
        "Notes": c.notes, "Output": c.output, "ServiceID": c.service_id,
        "ServiceName": c.service_name, "ServiceTags": c.service_tags, "Type": c.check_type,
        "Interval": "", "Timeout": "", "ExposedPort": 0, "Definition": {},
        "CreateIndex": c.create_index, "ModifyIndex": c.modify_index,
    })
}

/// The server node's serfHealth check, passing.
pub(crate) fn serf_check(ctx: &Ctx) -> HealthCheck {
    HealthCheck {
        node: ctx.node.clone(),
        check_id: SERF_CHECK.into(),
        name: "Serf Health Status".into(),
        status: PASSING.into(),
        notes: String::new(),
        output: "Agent alive and reachable".into(),
        service_id: String::new(),
        service_name: String::new(),
        service_tags: Vec::new(),
        check_type: String::new(),
        create_index: 1,
        modify_index: 1,
    }
}

/// Every check: the stored ones and the server node's serfHealth.
pub(crate) fn all_checks(ctx: &Ctx, s: &State) -> Vec<HealthCheck> {
    let mut out = vec![serf_check(ctx)];
    out.extend(s.checks.values().cloned());
    out
}

/// The checks that decide an instance's health: its node's checks and its own
/// (`agent/consul/state/catalog.go`, `parseCheckServiceNodes`).
pub(crate) fn instance_checks(all: &[HealthCheck], c: &CatalogService) -> Vec<HealthCheck> {
    all.iter()
        .filter(|h| h.node == c.node && (h.service_id.is_empty() || h.service_id == c.id))
        .cloned()
        .collect()
}

/// `structs.NodeService` as the health and agent endpoints show it.
pub(crate) fn service_json(ctx: &Ctx, c: &CatalogService) -> Value {
    let mut v = json!({
        "Kind": c.kind, "ID": c.id, "Service": c.name, "Tags": c.tags, "Meta": c.meta,
        "Port": c.port, "Address": c.service_address,
        "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": false,
        "Connect": if c.native { json!({"Native": true}) } else { json!({}) },
        "Datacenter": ctx.datacenter,
        "CreateIndex": c.create_index, "ModifyIndex": c.modify_index,
    });
    if let Some(p) = &c.proxy {
        v["Proxy"] = p.clone();
    }
    v
}

/// `?filter=`: the items the expression keeps, or Consul's 500 for an expression that does
/// not parse or names a field the items do not have (go-bexpr's `CreateFilter` error, which
/// the endpoints return as is).
pub(crate) fn filtered(q: &Q, items: Vec<Value>) -> Result<Vec<Value>, ApiError> {
    mesh_semantics::filter::apply(q1(q, "filter"), items).map_err(|e| {
        ApiError::internal(format!(
            "Failed to create boolean expression evaluator: {e}"
        ))
    })
}

/// `?tag=` (repeatable): instances carrying every tag asked for.
pub(crate) fn has_tags(q: &Q, c: &CatalogService) -> bool {
    q.get("tag")
        .is_none_or(|tags| tags.iter().all(|t| c.tags.contains(t)))
}
