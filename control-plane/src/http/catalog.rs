//! Catalog and agent registration with Consul's sidecar expansion, and Connect health
//! (consul-semantics section 5).

use super::{bool_body, Answer, ApiError, Ctx};
use crate::store::{CatalogService, Written};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Sidecar ports come from this range, lowest free first.
const SIDECAR_PORTS: std::ops::RangeInclusive<u16> = 21000..=21255;

/// A field by any of `names`, matched case-insensitively: Consul decodes request bodies with
/// Go's `encoding/json`, whose struct fields match keys regardless of case.
fn field<'a>(v: &'a Value, names: &[&str]) -> Option<&'a Value> {
    let m = v.as_object()?;
    names.iter().find_map(|n| {
        m.get(*n).or_else(|| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, x)| x)
        })
    })
}

fn str_field(v: &Value, names: &[&str]) -> String {
    field(v, names)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn port_field(v: &Value, names: &[&str]) -> u16 {
    field(v, names)
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0)
}

fn tags(v: &Value) -> Vec<String> {
    field(v, &["Tags", "tags"])
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn meta(v: &Value) -> BTreeMap<String, String> {
    field(v, &["Meta", "meta"])
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, x)| x.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// `PUT /v1/agent/service/register`: registers the service and, for
/// `Connect.SidecarService`, its `<id>-sidecar-proxy`.
pub(super) async fn agent_register(
    State(ctx): State<Arc<Ctx>>,
    headers: axum::http::HeaderMap,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
    body: Bytes,
) -> Answer {
    let caller = super::auth::caller(&ctx, &headers, &raw)?;
    let v = super::json_body(&body)?;
    let name = str_field(&v, &["Name", "name"]);
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid Service: Missing service name",
        ));
    }
    if !caller.authz.service_write(&name) {
        return Err(super::auth::denied(&caller, "service:write", &name));
    }
    let id = Some(str_field(&v, &["ID", "id"]))
        .filter(|x| !x.is_empty())
        .unwrap_or_else(|| name.clone());
    let port = port_field(&v, &["Port", "port"]);
    let address = str_field(&v, &["Address", "address"]);
    let kind = str_field(&v, &["Kind", "kind"]);
    let connect = field(&v, &["Connect", "connect"])
        .cloned()
        .unwrap_or(Value::Null);
    let native = field(&connect, &["Native", "native"])
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let svc = CatalogService {
        node: ctx.node.clone(),
        address: "127.0.0.1".into(),
        id: id.clone(),
        name: name.clone(),
        kind: kind.clone(),
        port,
        service_address: address.clone(),
        tags: tags(&v),
        meta: meta(&v),
        proxy: field(&v, &["Proxy", "proxy"]).cloned(),
        native,
        create_index: 0,
        modify_index: 0,
    };
    if kind == "connect-proxy" {
        let dest = svc
            .proxy
            .as_ref()
            .map(|p| str_field(p, &["DestinationServiceName"]))
            .unwrap_or_default();
        if dest.is_empty() || dest == "*" {
            return Err(ApiError::bad_request(
                "Invalid Service: Proxy.DestinationServiceName must be set for Connect proxy",
            ));
        }
        if port == 0 {
            return Err(ApiError::bad_request(
                "Invalid Service: Port must be set for a Connect proxy",
            ));
        }
    }
    let mut out = vec![svc];
    if let Some(sidecar) = field(&connect, &["SidecarService", "sidecar_service"]) {
        if field(sidecar, &["ID", "id"]).is_some() {
            return Err(ApiError::bad_request(
                "A SidecarService cannot specify an ID as this is managed by the agent",
            ));
        }
        let sid = format!("{id}-sidecar-proxy");
        let mut sport = port_field(sidecar, &["Port", "port"]);
        if sport == 0 {
            let s = ctx.store.read();
            // The same port is kept on re-registration.
            sport = match s.catalog.get(&(ctx.node.clone(), sid.clone())) {
                Some(existing) => existing.port,
                None => {
                    let used: Vec<u16> = s
                        .catalog
                        .values()
                        .filter(|c| c.node == ctx.node)
                        .map(|c| c.port)
                        .collect();
                    match SIDECAR_PORTS.clone().find(|p| !used.contains(p)) {
                        Some(p) => p,
                        None => {
                            return Err(ApiError::internal(
                                "no port provided for sidecar_service and none left in the configured range [21000, 21255]",
                            ))
                        }
                    }
                }
            };
        }
        let sproxy = field(sidecar, &["Proxy", "proxy"])
            .cloned()
            .unwrap_or(json!({}));
        let proxy = json!({
            "DestinationServiceName": name,
            "DestinationServiceID": id,
            "LocalServiceAddress": Some(str_field(&sproxy, &["LocalServiceAddress", "local_service_address"])).filter(|a| !a.is_empty()).unwrap_or_else(|| "127.0.0.1".into()),
            "LocalServicePort": Some(port_field(&sproxy, &["LocalServicePort", "local_service_port"])).filter(|p| *p != 0).unwrap_or(port),
            "Upstreams": field(&sproxy, &["Upstreams", "upstreams"]).cloned().unwrap_or(json!([])),
            "Config": field(&sproxy, &["Config", "config"]).cloned().unwrap_or(json!({})),
        });
        let side_tags = tags(sidecar);
        let side_meta = meta(sidecar);
        out.push(CatalogService {
            node: ctx.node.clone(),
            address: "127.0.0.1".into(),
            id: sid,
            name: format!("{name}-sidecar-proxy"),
            kind: "connect-proxy".into(),
            port: sport,
            service_address: address,
            tags: if side_tags.is_empty() {
                out[0].tags.clone()
            } else {
                side_tags
            },
            meta: if side_meta.is_empty() {
                out[0].meta.clone()
            } else {
                side_meta
            },
            proxy: Some(proxy),
            native: false,
            create_index: 0,
            modify_index: 0,
        });
    }
    let tags = out[0].tags.clone();
    ctx.store.put_catalog(out)?;
    super::agent_local::register_service_checks(&ctx, &v, &id, &name, &tags)?;
    Ok(StatusCode::OK.into_response())
}

/// `PUT /v1/agent/service/deregister/:id`: the service and its sidecar.
pub(super) async fn agent_deregister(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
) -> Answer {
    let ids = [id.clone(), format!("{id}-sidecar-proxy")];
    match ctx.store.deregister(&ctx.node, Some(&ids))? {
        Written::Unchanged => Err(ApiError::new(StatusCode::NOT_FOUND, format!("Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."))),
        _ => Ok(StatusCode::OK.into_response()),
    }
}

/// `PUT /v1/catalog/register`: no sidecar expansion, the port is required for proxies.
pub(super) async fn catalog_register(
    State(ctx): State<Arc<Ctx>>,
    headers: axum::http::HeaderMap,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
    body: Bytes,
) -> Answer {
    let caller = super::auth::caller(&ctx, &headers, &raw)?;
    let v = super::json_body(&body)?;
    let node = str_field(&v, &["Node"]);
    if node.is_empty() {
        return Err(ApiError::bad_request("Must provide node"));
    }
    // `vetRegisterWithACL` (`agent/consul/catalog_endpoint.go`): a registration that adds the
    // node or changes its address needs node:write on it; re-posting the node as the catalog
    // knows it, to register a service, does not.
    let address = str_field(&v, &["Address"]);
    let changes_node = super::render::nodes(&ctx, &ctx.store.read())
        .into_iter()
        .find(|n| n.name == node)
        .is_none_or(|n| n.address != address);
    if changes_node && !caller.authz.node_write(&node) {
        return Err(super::auth::denied(&caller, "node:write", &node));
    }
    let Some(svc) = field(&v, &["Service"]) else {
        // A node with checks only: the node's checks.
        super::agent_local::register_catalog_checks(&ctx, &v, &node, None)?;
        return Ok(bool_body(true));
    };
    let name = str_field(svc, &["Service", "Name"]);
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "Must provide service name (Service.Service) with a valid Service.ID",
        ));
    }
    if !caller.authz.service_write(&name) {
        return Err(super::auth::denied(&caller, "service:write", &name));
    }
    let kind = str_field(svc, &["Kind"]);
    let port = port_field(svc, &["Port"]);
    if kind == "connect-proxy" && port == 0 {
        return Err(ApiError::bad_request(
            "Invalid service: Port must be set for a Connect proxy",
        ));
    }
    let entry = CatalogService {
        node,
        address: str_field(&v, &["Address"]),
        id: Some(str_field(svc, &["ID"]))
            .filter(|x| !x.is_empty())
            .unwrap_or_else(|| name.clone()),
        name,
        kind,
        port,
        service_address: str_field(svc, &["Address"]),
        tags: tags(svc),
        meta: meta(svc),
        proxy: field(svc, &["Proxy"]).cloned(),
        native: field(svc, &["Connect"])
            .and_then(|c| field(c, &["Native"]))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        create_index: 0,
        modify_index: 0,
    };
    let (id, name, tags) = (entry.id.clone(), entry.name.clone(), entry.tags.clone());
    let node = entry.node.clone();
    ctx.store.put_catalog(vec![entry])?;
    super::agent_local::register_catalog_checks(&ctx, &v, &node, Some((&id, &name, &tags)))?;
    Ok(bool_body(true))
}

pub(super) async fn catalog_deregister(State(ctx): State<Arc<Ctx>>, body: Bytes) -> Answer {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let node = str_field(&v, &["Node"]);
    if node.is_empty() {
        // `agent/catalog_endpoint.go`, `CatalogDeregister`.
        return Err(ApiError::bad_request("Must provide node"));
    }
    let id = str_field(&v, &["ServiceID"]);
    let ids = [id.clone()];
    let only = (!id.is_empty()).then_some(&ids[..]);
    ctx.store.deregister(&node, only)?;
    Ok(bool_body(true))
}
