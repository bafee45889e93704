//! `/v1/health` (`agent/health_endpoint.go` over `agent/consul/health_endpoint.go`): instances
//! with the checks that decide their health, checks by service, node and state. Blocking
//! queries on the catalog's index; ACLs filter what the caller may not read.

use super::render::{
    all_checks, check_json, filtered, has_tags, instance_checks, node_json, nodes, service_json,
};
use super::{block, json_at, query, who, Answer, ApiError, Ctx, Q};
use crate::store::{CatalogService, HealthCheck, State, Table, PASSING};
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::HeaderMap;
use serde_json::{json, Value};
use std::sync::Arc;

/// `?passing`: present without a value, or a true boolean (`agent/health_endpoint.go`,
/// `getBoolQueryParam`); a value that is not a boolean is a 400.
fn passing_only(q: &Q) -> Result<bool, ApiError> {
    match q.get("passing").and_then(|v| v.first()).map(String::as_str) {
        None => Ok(false),
        Some("") => Ok(true),
        Some(v) => parse_bool(v).ok_or_else(|| ApiError::bad_request("Invalid value for ?passing")),
    }
}

/// Go's `strconv.ParseBool`.
pub(super) fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `structs.CheckServiceNode` for each instance `pick` selects, with `?tag`, `?passing` and
/// `?filter` applied.
fn entries(
    ctx: &Ctx,
    s: &State,
    q: &Q,
    pick: impl Fn(&CatalogService) -> bool,
) -> Result<Vec<Value>, ApiError> {
    let passing = passing_only(q)?;
    let all = all_checks(ctx, s);
    let node_list = nodes(ctx, s);
    let mut out = Vec::new();
    for c in s.catalog.values().filter(|c| pick(c) && has_tags(q, c)) {
        let checks = instance_checks(&all, c);
        // `?passing` keeps instances whose every check passes (`structs.CheckServiceNodes.Filter`).
        if passing && checks.iter().any(|h| h.status != PASSING) {
            continue;
        }
        let node = node_list
            .iter()
            .find(|n| n.name == c.node)
            .map(|n| node_json(ctx, n))
            .unwrap_or(Value::Null);
        out.push(json!({
            "Node": node,
            "Service": service_json(ctx, c),
            "Checks": checks.iter().map(check_json).collect::<Vec<_>>(),
        }));
    }
    filtered(q, out)
}

/// `GET /v1/health/service/:service`.
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
    let index = s.table_index(Table::Catalog);
    if !caller.authz.service_read(&name) {
        return Ok(json_at(json!([]), index));
    }
    let list = entries(&ctx, &s, &q, |c| c.name == name)?;
    Ok(json_at(Value::Array(list), index))
}

/// `GET /v1/health/connect/:service`: the Connect-capable instances of a service, its sidecar
/// proxies and Connect-native instances (`ServiceDump` with `Connect: true`).
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
    let index = s.table_index(Table::Catalog);
    if !caller.authz.service_read(&name) {
        return Ok(json_at(json!([]), index));
    }
    let list = entries(&ctx, &s, &q, |c| proxies(c, &name))?;
    Ok(json_at(Value::Array(list), index))
}

/// Whether `c` is a Connect endpoint of `service`: a proxy for it, or the service itself when
/// Connect-native.
pub(super) fn proxies(c: &CatalogService, service: &str) -> bool {
    let dest = c
        .proxy
        .as_ref()
        .and_then(|p| p.get("DestinationServiceName"))
        .and_then(Value::as_str);
    (c.kind == "connect-proxy" && dest == Some(service)) || (c.native && c.name == service)
}

fn checks_answer(ctx: &Ctx, s: &State, q: &Q, keep: impl Fn(&HealthCheck) -> bool) -> Answer {
    let list: Vec<Value> = all_checks(ctx, s)
        .iter()
        .filter(|c| keep(c))
        .map(check_json)
        .collect();
    Ok(json_at(
        Value::Array(filtered(q, list)?),
        s.table_index(Table::Catalog),
    ))
}

/// `GET /v1/health/checks/:service`.
pub(super) async fn service_checks(
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
    checks_answer(&ctx, &s, &q, |c| allowed && c.service_name == name)
}

/// `GET /v1/health/node/:node`.
pub(super) async fn node_checks(
    AxState(ctx): AxState<Arc<Ctx>>,
    Path(node): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let caller = who(&ctx, &headers, &raw)?;
    let q = query(&raw);
    block(&ctx, Table::Catalog, &q).await?;
    let s = ctx.store.read();
    let allowed = caller.authz.node_read(&node);
    checks_answer(&ctx, &s, &q, |c| {
        allowed
            && c.node == node
            && (c.service_id.is_empty() || caller.authz.service_read(&c.service_name))
    })
}

/// `GET /v1/health/state/:state`: `any`, or the checks whose status is `state`
/// (`agent/health_endpoint.go`, `HealthChecksInState`, which does not validate it: an unknown
/// state matches no check).
pub(super) async fn state(
    AxState(ctx): AxState<Arc<Ctx>>,
    Path(state): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let caller = who(&ctx, &headers, &raw)?;
    let q = query(&raw);
    block(&ctx, Table::Catalog, &q).await?;
    let s = ctx.store.read();
    checks_answer(&ctx, &s, &q, |c| {
        (state == "any" || c.status == state)
            && caller.authz.node_read(&c.node)
            && (c.service_id.is_empty() || caller.authz.service_read(&c.service_name))
    })
}
