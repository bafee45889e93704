//! `/v1/discovery-chain/:service`: the compiled discovery chain of a service, in the shape of
//! Consul's answer (`agent/discovery_chain_endpoint.go`, `DiscoveryChainRead`, and
//! `structs.CompiledDiscoveryChain`), compiled by the one compiler in mesh-semantics.

use super::{block, json_at, who, Answer, ApiError, Ctx};
use crate::store::Table;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use mesh_model::ConfigEntry;
use mesh_semantics::acl::{Access, Resource};
use mesh_semantics::chain::{compile, ChainIndex, CompiledChain, Node, Target};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub(super) async fn read(
    State(ctx): State<Arc<Ctx>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = super::query(&raw);
    let caller = who(&ctx, &headers, &raw)?;
    // `DiscoveryChain.Get` (`agent/consul/discovery_chain_endpoint.go`): service:read on the
    // chain's name.
    caller.require(Resource::Service, &name, Access::Read)?;
    block(&ctx, Table::Config, &q).await?;
    let s = ctx.store.read();
    let index = s.table_index(Table::Config);
    let entries: Vec<ConfigEntry> = s.config.values().map(|e| e.entry.clone()).collect();
    let dc = q
        .get("compile-dc")
        .and_then(|v| v.first())
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| ctx.datacenter.clone());
    let ix = ChainIndex::new(&entries, &dc);
    let chain = compile(&ix, &name).map_err(|e| ApiError::internal(e.to_string()))?;
    let trust_domain = if s.cluster_id.is_empty() {
        String::new()
    } else {
        format!("{}.consul", s.cluster_id)
    };
    let meta = entries.iter().find_map(|e| match e {
        ConfigEntry::ServiceDefaults(sd) if sd.name == name && !sd.meta.is_empty() => {
            Some(json!(sd.meta))
        }
        _ => None,
    });
    Ok(json_at(
        json!({ "Chain": chain_json(&chain, &trust_domain, meta) }),
        index,
    ))
}

/// `structs.CompiledDiscoveryChain` as Go's encoder writes it.
pub fn chain_json(chain: &CompiledChain, trust_domain: &str, meta: Option<Value>) -> Value {
    let nodes: Map<String, Value> = chain
        .nodes
        .iter()
        .map(|(k, n)| (k.clone(), node_json(n, chain)))
        .collect();
    let targets: Map<String, Value> = chain
        .targets
        .iter()
        .map(|(k, t)| (k.clone(), target_json(t, trust_domain)))
        .collect();
    let mut out = json!({
        "ServiceName": chain.service,
        "Namespace": "default",
        "Partition": "default",
        "Datacenter": chain.datacenter,
        "Default": chain.default,
        "Protocol": chain.protocol,
        "StartNode": chain.start,
        "Nodes": nodes,
        "Targets": targets,
    });
    if let Some(m) = meta {
        out["ServiceMeta"] = m;
    }
    out
}

fn node_json(n: &Node, chain: &CompiledChain) -> Value {
    match n {
        Node::Router { name, routes } => json!({
            "Type": "router",
            "Name": name,
            "Routes": routes
                .iter()
                .map(|(r, next)| json!({ "Definition": r, "NextNode": next }))
                .collect::<Vec<_>>(),
        }),
        Node::Splitter { name, splits } => json!({
            "Type": "splitter",
            "Name": name,
            "Splits": splits
                .iter()
                .map(|(w, next)| json!({ "Weight": go_float(*w), "NextNode": next }))
                .collect::<Vec<_>>(),
        }),
        Node::Resolver {
            name,
            default,
            target,
            failover,
        } => {
            let timeout = chain
                .targets
                .get(target)
                .map_or("5s", |t| &t.connect_timeout);
            let mut resolver = json!({
                "Default": *default,
                "ConnectTimeout": timeout,
                "Target": target,
            });
            if !failover.is_empty() {
                resolver["Failover"] = json!({ "Targets": failover });
            }
            json!({ "Type": "resolver", "Name": name, "Resolver": resolver })
        }
    }
}

/// A weight as Go writes a `float32`: `90`, not `90.0`.
fn go_float(w: f64) -> Value {
    if w.fract() == 0.0 {
        json!(w as i64)
    } else {
        json!(w)
    }
}

/// `structs.DiscoveryTarget`, with the SNI `connect.TargetSNI` gives it.
fn target_json(t: &Target, trust_domain: &str) -> Value {
    let sni = match (&t.peer, trust_domain.is_empty()) {
        (Some(_), _) | (None, true) => String::new(),
        (None, false) => {
            let subset = t
                .subset
                .as_deref()
                .map(|s| format!("{s}."))
                .unwrap_or_default();
            format!(
                "{subset}{}.default.{}.internal.{trust_domain}",
                t.service, t.datacenter
            )
        }
    };
    let mut subset = Map::new();
    if let Some(f) = &t.filter.filter {
        subset.insert("Filter".into(), json!(f));
    }
    if t.filter.only_passing {
        subset.insert("OnlyPassing".into(), json!(true));
    }
    json!({
        "ID": t.id,
        "Service": t.service,
        "ServiceSubset": t.subset.clone().unwrap_or_default(),
        "Namespace": "default",
        "Partition": "default",
        "Datacenter": t.datacenter,
        "Peer": t.peer.clone().unwrap_or_default(),
        "MeshGateway": {},
        "Subset": subset,
        "TransparentProxy": {},
        "ConnectTimeout": t.connect_timeout,
        "SNI": sni,
        "Name": sni,
    })
}
