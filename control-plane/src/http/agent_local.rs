//! The local agent's view (`agent/agent_endpoint.go`): members, the services and checks
//! registered on this node, check registration and TTL updates, and maintenance mode. The
//! server is its own agent, so what the agent registers is in the catalog at once (no
//! anti-entropy delay). Checks are not run: a check's status is what was registered or last
//! set through `/v1/agent/check/{pass,warn,fail,update}`.

use super::health::parse_bool;
use super::render::{check_json, filtered, service_json};
use super::{json_body, q1, query, who, Answer, ApiError, Ctx};
use crate::http::auth::denied;
use crate::store::{HealthCheck, CRITICAL, PASSING, WARNING};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `structs.ServiceMaintPrefix` and `structs.NodeMaint`.
const SERVICE_MAINT_PREFIX: &str = "_service_maintenance:";
const NODE_MAINT: &str = "_node_maintenance";

/// A field by any of Consul's spellings (the agent decodes case-insensitively).
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| {
            k.eq_ignore_ascii_case(name) || k.replace('_', "").eq_ignore_ascii_case(name)
        })
        .map(|(_, x)| x)
}

fn str_of(v: &Value, name: &str) -> String {
    field(v, name)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// `GET /v1/agent/members`: this server, alive (`api.AgentMember`).
pub(super) async fn members(State(ctx): State<Arc<Ctx>>) -> Answer {
    Ok(axum::Json(json!([{
        "Name": ctx.node, "Addr": "127.0.0.1", "Port": 8301,
        "Tags": {"role": "consul", "dc": ctx.datacenter, "port": "8300", "build": "1.21.0"},
        "Status": 1, "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
        "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
    }]))
    .into_response())
}

/// `GET /v1/agent/services`: the services on this node by ID, with `?filter` (over
/// `api.AgentService`).
pub(super) async fn services(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let caller = who(&ctx, &headers, &raw)?;
    let q = query(&raw);
    let s = ctx.store.read();
    let local: Vec<Value> = s
        .catalog
        .values()
        .filter(|c| c.node == ctx.node && caller.authz.service_read(&c.name))
        .map(|c| service_json(&ctx, c))
        .collect();
    let mut out = serde_json::Map::new();
    for v in filtered(&q, local)? {
        let id = v["ID"].as_str().unwrap_or("").to_owned();
        out.insert(id, v);
    }
    Ok(axum::Json(Value::Object(out)).into_response())
}

/// `GET /v1/agent/service/:id`: one service on this node, with its `ContentHash`.
pub(super) async fn service(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let caller = who(&ctx, &headers, &raw)?;
    let s = ctx.store.read();
    let Some(c) = s.catalog.get(&(ctx.node.clone(), id.clone())) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown service ID: {id}"),
        ));
    };
    if !caller.authz.service_read(&c.name) {
        return Err(denied(&caller, "service:read", &c.name));
    }
    let mut v = service_json(&ctx, c);
    v["ContentHash"] = json!(format!("{:016x}", c.modify_index));
    Ok(axum::Json(v).into_response())
}

/// `GET /v1/agent/checks`: the checks on this node by ID, with `?filter`.
pub(super) async fn checks(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let caller = who(&ctx, &headers, &raw)?;
    let q = query(&raw);
    let s = ctx.store.read();
    let local: Vec<Value> = s
        .checks
        .values()
        .filter(|c| {
            c.node == ctx.node
                && (c.service_id.is_empty() || caller.authz.service_read(&c.service_name))
        })
        .map(check_json)
        .collect();
    let mut out = BTreeMap::new();
    for v in filtered(&q, local)? {
        out.insert(v["CheckID"].as_str().unwrap_or("").to_owned(), v);
    }
    Ok(axum::Json(json!(out)).into_response())
}

/// A check definition (`structs.CheckDefinition`) for `service` (`None`: a node check).
fn check_from(
    ctx: &Ctx,
    def: &Value,
    service: Option<(&str, &str, &[String])>,
) -> Result<HealthCheck, ApiError> {
    let name = str_of(def, "Name");
    if name.is_empty() {
        return Err(ApiError::bad_request("Missing check name"));
    }
    let id = Some(str_of(def, "CheckID"))
        .filter(|i| !i.is_empty())
        .or_else(|| Some(str_of(def, "ID")).filter(|i| !i.is_empty()))
        .unwrap_or_else(|| match service {
            Some((sid, _, _)) if !sid.is_empty() => format!("service:{sid}"),
            _ => name.clone(),
        });
    let status = Some(str_of(def, "Status"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| CRITICAL.into());
    if !matches!(status.as_str(), PASSING | WARNING | CRITICAL) {
        return Err(ApiError::bad_request(format!(
            "Invalid check status: {status:?}"
        )));
    }
    let kind = [
        "TTL",
        "HTTP",
        "TCP",
        "GRPC",
        "Args",
        "AliasService",
        "H2PING",
        "UDP",
    ]
    .into_iter()
    .find(|k| field(def, k).is_some_and(|v| !v.is_null()))
    .map(|k| match k {
        "Args" => "script".to_owned(),
        "AliasService" => "alias".to_owned(),
        k => k.to_ascii_lowercase(),
    })
    .unwrap_or_default();
    let (sid, sname, stags) = service.unwrap_or(("", "", &[]));
    let node = Some(str_of(def, "Node"))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| ctx.node.clone());
    Ok(HealthCheck {
        node,
        check_id: id,
        name,
        status,
        notes: str_of(def, "Notes"),
        output: String::new(),
        service_id: sid.to_owned(),
        service_name: sname.to_owned(),
        service_tags: stags.to_vec(),
        check_type: kind,
        create_index: 0,
        modify_index: 0,
    })
}

/// The `Check` and `Checks` of a service registration, registered with it.
pub(super) fn register_service_checks(
    ctx: &Ctx,
    body: &Value,
    id: &str,
    name: &str,
    tags: &[String],
) -> Result<(), ApiError> {
    let mut defs: Vec<&Value> = field(body, "Check")
        .filter(|c| c.is_object())
        .into_iter()
        .collect();
    if let Some(list) = field(body, "Checks").and_then(Value::as_array) {
        defs.extend(list.iter());
    }
    let total = defs.len();
    let mut checks = Vec::new();
    for (i, def) in defs.into_iter().enumerate() {
        let mut c = check_from(ctx, def, Some((id, name, tags)));
        // An unnamed service check is named after the service (`CheckType` without a name).
        if let Err(e) = &c {
            if e.body == "Missing check name" {
                let mut named = def.clone();
                named["Name"] = json!(format!("Service '{name}' check"));
                c = check_from(ctx, &named, Some((id, name, tags)));
            }
        }
        let mut c = c?;
        if str_of(def, "CheckID").is_empty() && str_of(def, "ID").is_empty() {
            // `Agent.AddService`: `service:<id>`, numbered when there are several.
            c.check_id = if total == 1 {
                format!("service:{id}")
            } else {
                format!("service:{id}:{}", i + 1)
            };
        }
        checks.push(c);
    }
    if !checks.is_empty() {
        ctx.store.put_checks(checks)?;
    }
    Ok(())
}

/// The `Check` and `Checks` of `PUT /v1/catalog/register` (`structs.RegisterRequest`), on
/// the registered node; a check naming the registered service belongs to it.
pub(super) fn register_catalog_checks(
    ctx: &Ctx,
    body: &Value,
    node: &str,
    service: Option<(&str, &str, &[String])>,
) -> Result<(), ApiError> {
    let mut defs: Vec<&Value> = field(body, "Check")
        .filter(|c| c.is_object())
        .into_iter()
        .collect();
    if let Some(list) = field(body, "Checks").and_then(Value::as_array) {
        defs.extend(list.iter());
    }
    let mut checks = Vec::new();
    for def in defs {
        let sid = str_of(def, "ServiceID");
        let svc = service.filter(|(id, _, _)| !sid.is_empty() && *id == sid);
        let mut c = check_from(ctx, def, svc)?;
        c.node = node.to_owned();
        checks.push(c);
    }
    if !checks.is_empty() {
        ctx.store.put_checks(checks)?;
    }
    Ok(())
}

/// `PUT /v1/agent/check/register`.
pub(super) async fn register_check(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Answer {
    let caller = who(&ctx, &headers, &raw)?;
    let def = json_body(&body)?;
    let sid = str_of(&def, "ServiceID");
    let service = if sid.is_empty() {
        if !caller.authz.node_write(&ctx.node) {
            return Err(denied(&caller, "node:write", &ctx.node));
        }
        None
    } else {
        let s = ctx.store.read();
        let Some(svc) = s.catalog.get(&(ctx.node.clone(), sid.clone())) else {
            return Err(ApiError::bad_request(format!(
                "ServiceID {sid:?} does not exist"
            )));
        };
        if !caller.authz.service_write(&svc.name) {
            return Err(denied(&caller, "service:write", &svc.name));
        }
        Some((svc.id.clone(), svc.name.clone(), svc.tags.clone()))
    };
    let check = check_from(
        &ctx,
        &def,
        service
            .as_ref()
            .map(|(i, n, t)| (i.as_str(), n.as_str(), t.as_slice())),
    )?;
    ctx.store.put_checks([check])?;
    Ok(StatusCode::OK.into_response())
}

/// The check on this node, after the caller's write permission on it.
fn writable_check(
    ctx: &Ctx,
    headers: &HeaderMap,
    raw: &Option<String>,
    id: &str,
) -> Result<HealthCheck, ApiError> {
    let caller = who(ctx, headers, raw)?;
    let Some(c) = ctx
        .store
        .read()
        .checks
        .get(&(ctx.node.clone(), id.to_owned()))
        .cloned()
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
            ),
        ));
    };
    let allowed = if c.service_id.is_empty() {
        caller.authz.node_write(&ctx.node)
    } else {
        caller.authz.service_write(&c.service_name)
    };
    if !allowed {
        return Err(denied(&caller, "service:write", &c.service_name));
    }
    Ok(c)
}

/// `PUT /v1/agent/check/deregister/:id`.
pub(super) async fn deregister_check(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    writable_check(&ctx, &headers, &raw, &id)?;
    ctx.store.delete_checks(&ctx.node, &[id])?;
    Ok(StatusCode::OK.into_response())
}

/// `PUT /v1/agent/check/{pass,warn,fail}/:id?note=`.
pub(super) async fn ttl_update(
    State(ctx): State<Arc<Ctx>>,
    Path((verb, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let status = match verb.as_str() {
        "pass" => PASSING,
        "warn" => WARNING,
        "fail" => CRITICAL,
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "Invalid URL path: not a recognized HTTP API endpoint\n",
            ))
        }
    };
    writable_check(&ctx, &headers, &raw, &id)?;
    let q = query(&raw);
    ctx.store
        .update_check(&ctx.node, &id, status, q1(&q, "note").unwrap_or(""))?;
    Ok(StatusCode::OK.into_response())
}

/// `PUT /v1/agent/check/update/:id` with `{"Status", "Output"}`.
pub(super) async fn update(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Answer {
    let v = json_body(&body)?;
    let status = str_of(&v, "Status");
    if !matches!(status.as_str(), PASSING | WARNING | CRITICAL) {
        return Err(ApiError::bad_request(format!(
            "Invalid check status: '{status}'"
        )));
    }
    writable_check(&ctx, &headers, &raw, &id)?;
    ctx.store
        .update_check(&ctx.node, &id, &status, &str_of(&v, "Output"))?;
    Ok(StatusCode::OK.into_response())
}

/// `?enable=` of the maintenance endpoints: required, a Go boolean.
fn enable_param(q: &super::Q) -> Result<bool, ApiError> {
    let Some(raw) = q.get("enable").and_then(|v| v.first()) else {
        return Err(ApiError::bad_request("Missing value for enable"));
    };
    parse_bool(raw)
        .ok_or_else(|| ApiError::bad_request(format!("Invalid value for enable: {raw:?}")))
}

/// A maintenance check: critical, with the reason as its notes (`Agent.EnableServiceMaintenance`,
/// `Agent.EnableNodeMaintenance`).
fn maintenance_check(
    ctx: &Ctx,
    id: String,
    service: Option<(&str, &str)>,
    reason: &str,
) -> HealthCheck {
    let (what, name) = if service.is_some() {
        ("service", "Service Maintenance Mode")
    } else {
        ("node", "Node Maintenance Mode")
    };
    let notes = if reason.is_empty() {
        format!("Maintenance mode is enabled for this {what}, but no reason was provided. This is a default message.")
    } else {
        reason.to_owned()
    };
    let (sid, sname) = service.unwrap_or(("", ""));
    HealthCheck {
        node: ctx.node.clone(),
        check_id: id,
        name: name.into(),
        status: CRITICAL.into(),
        notes,
        output: String::new(),
        service_id: sid.into(),
        service_name: sname.into(),
        service_tags: Vec::new(),
        check_type: "maintenance".into(),
        create_index: 0,
        modify_index: 0,
    }
}

/// `PUT /v1/agent/service/maintenance/:id?enable=&reason=`.
pub(super) async fn service_maintenance(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = query(&raw);
    let enable = enable_param(&q)?;
    let caller = who(&ctx, &headers, &raw)?;
    let svc = ctx
        .store
        .read()
        .catalog
        .get(&(ctx.node.clone(), id.clone()))
        .cloned();
    let Some(svc) = svc else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("No service registered with ID {id:?}"),
        ));
    };
    if !caller.authz.service_write(&svc.name) {
        return Err(denied(&caller, "service:write", &svc.name));
    }
    let check_id = format!("{SERVICE_MAINT_PREFIX}{id}");
    if enable {
        let reason = q1(&q, "reason").unwrap_or("");
        let c = maintenance_check(&ctx, check_id, Some((&svc.id, &svc.name)), reason);
        ctx.store.put_checks([c])?;
    } else {
        ctx.store.delete_checks(&ctx.node, &[check_id])?;
    }
    Ok(StatusCode::OK.into_response())
}

/// `PUT /v1/agent/maintenance?enable=&reason=`: the node's maintenance mode.
pub(super) async fn node_maintenance(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = query(&raw);
    let enable = enable_param(&q)?;
    let caller = who(&ctx, &headers, &raw)?;
    if !caller.authz.node_write(&ctx.node) {
        return Err(denied(&caller, "node:write", &ctx.node));
    }
    if enable {
        let c = maintenance_check(
            &ctx,
            NODE_MAINT.into(),
            None,
            q1(&q, "reason").unwrap_or(""),
        );
        ctx.store.put_checks([c])?;
    } else {
        ctx.store.delete_checks(&ctx.node, &[NODE_MAINT.into()])?;
    }
    Ok(StatusCode::OK.into_response())
}
