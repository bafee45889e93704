//! Catalog reads (`agent/catalog_endpoint.go` over `agent/consul/catalog_endpoint.go`):
//! datacenters, nodes, a node's services, a service's instances and its Connect endpoints, with
//! `?tag`, `?node-meta` and `?filter` where Consul takes them. Blocking queries on the catalog's
//! index; ACLs filter what the caller may not read.

use super::health::proxies;
use super::render::{filtered, has_tags, node_json, nodes, service_json};
use super::{block, json_at, query, who, Answer, Ctx, Q};
use crate::store::{CatalogService, State, Table};
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `GET /v1/catalog/datacenters`: this one (no WAN federation). Not a blocking query and
/// without the query headers, as Consul's.
pub(super) async fn datacenters(AxState(ctx): AxState<Arc<Ctx>>) -> Answer {
    Ok(axum::Json(json!([ctx.datacenter])).into_response())
}

/// `GET /v1/catalog/nodes`.
pub(super) async fn list_nodes(
    AxState(ctx): AxState<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let caller = who(&ctx, &headers, &raw)?;
    let q = query(&raw);
    block(&ctx, Table::Catalog, &q).await?;
    let s = ctx.store.read();
    let list: Vec<Value> = nodes(&ctx, &s)
        .iter()
        .filter(|n| caller.authz.node_read(&n.name))
        .map(|n| node_json(&ctx, n))
        .collect();
    Ok(json_at(
        Value::Array(filtered(&q, list)?),
        s.table_index(Table::Catalog),
    ))
}

/// `GET /v1/catalog/node/:node`: the node and its services by ID; `null` for a node the
/// catalog does not know.
pub(super) async fn node(
    AxState(ctx): AxState<Arc<Ctx>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let caller = who(&ctx, &headers, &raw)?;
    let q = query(&raw);
    block(&ctx, Table::Catalog, &q).await?;
    let s = ctx.store.read();
    let index = s.table_index(Table::Catalog);
    let found = nodes(&ctx, &s).into_iter().find(|n| n.name == name);
    let Some(n) = found.filter(|_| caller.authz.node_read(&name)) else {
        return Ok(json_at(Value::Null, index));
    };
    let mut services = serde_json::Map::new();
    for c in s
        .catalog
        .values()
        .filter(|c| c.node == name && caller.authz.service_read(&c.name))
    {
        services.insert(c.id.clone(), service_json(&ctx, c));
    }
    Ok(json_at(
        json!({"Node": node_json(&ctx, &n), "Services": services}),
        index,
    ))
}

/// `GET /v1/catalog/services`: every service's tags, by name; `?filter` applies to the
/// instances (`structs.ServiceNode`) before they are grouped, as Consul's `ListServices`.
pub(super) async fn services(
    AxState(ctx): AxState<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let caller = who(&ctx, &headers, &raw)?;
    let q = query(&raw);
    block(&ctx, Table::Catalog, &q).await?;
    let s = ctx.store.read();
    let instances: Vec<Value> = s
        .catalog
        .values()
        .filter(|c| caller.authz.service_read(&c.name))
        .map(|c| catalog_json(&ctx, c))
        .collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in filtered(&q, instances)? {
        let tags = out
            .entry(i["ServiceName"].as_str().unwrap_or("").to_owned())
            .or_default();
        for t in i["ServiceTags"].as_array().into_iter().flatten() {
            if let Some(t) = t.as_str().filter(|t| !tags.iter().any(|x| x == t)) {
                tags.push(t.to_owned());
            }
        }
    }
    Ok(json_at(json!(out), s.table_index(Table::Catalog)))
}

/// `structs.ServiceNode` as `api.CatalogService` reads it.
fn catalog_json(ctx: &Ctx, c: &CatalogService) -> Value {
    let mut v = json!({
        "ID": "", "Node": c.node, "Address": c.address, "Datacenter": ctx.datacenter,
        "TaggedAddresses": {"lan": c.address, "wan": c.address}, "NodeMeta": {},
        "ServiceKind": c.kind, "ServiceID": c.id, "ServiceName": c.name,
        "ServiceTags": c.tags, "ServiceAddress": c.service_address, "ServiceMeta": c.meta,
        "ServicePort": c.port, "ServiceWeights": {"Passing": 1, "Warning": 1},
        "ServiceEnableTagOverride": false,
        "ServiceConnect": if c.native { json!({"Native": true}) } else { json!({}) },
        "CreateIndex": c.create_index, "ModifyIndex": c.modify_index,
    });
    if let Some(p) = &c.proxy {
        v["ServiceProxy"] = p.clone();
    }
    v
}

fn instances(ctx: &Ctx, s: &State, q: &Q, pick: impl Fn(&CatalogService) -> bool) -> Answer {
    let list: Vec<Value> = s
        .catalog
        .values()
        .filter(|c| pick(c) && has_tags(q, c))
        .map(|c| catalog_json(ctx, c))
        .collect();
    Ok(json_at(
        Value::Array(filtered(q, list)?),
        s.table_index(Table::Catalog),
    ))
}

/// `GET /v1/catalog/service/:service`.
pub(super) async fn service(
    AxState(ctx): AxState<Arc<Ctx>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let caller = who(&ctx, &headers, &raw)?;
    let q = query(&raw);
    block(&ctx, Table::Catalog, &q).await?;
    let s = ctx.store.read();
    let allowed = caller.authz.service_read(&name);
    instances(&ctx, &s, &q, |c| allowed && c.name == name)
}

/// `GET /v1/catalog/connect/:service`: the service's Connect endpoints.
pub(super) async fn connect(
    AxState(ctx): AxState<Arc<Ctx>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let caller = who(&ctx, &headers, &raw)?;
    let q = query(&raw);
    block(&ctx, Table::Catalog, &q).await?;
    let s = ctx.store.read();
    let allowed = caller.authz.service_read(&name);
    instances(&ctx, &s, &q, |c| allowed && proxies(c, &name))
}
