//! The Connect CA: `/v1/connect/ca/roots`, `/v1/connect/ca/configuration`
//! (`agent/connect_ca_endpoint.go`) and `/v1/agent/connect/ca/leaf/:service`, with the agent's
//! leaf cache (`agent/leafcert/`).

use super::blocking::deadline;
use super::config::messages;
use super::{block, json_at, json_body, q1, who, with_index, Answer, ApiError, Ctx};
use crate::http::auth::denied;
use crate::store::{SetCaConfig, Table};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A leaf handed out: the index it was issued at, the root that signed it, and when it is
/// renewed (three quarters into the lifetime left when it was issued).
#[derive(Debug, Clone)]
pub struct CachedLeaf {
    pub leaf: mesh_ca::Leaf,
    pub index: u64,
    pub root: String,
    pub renew_at: SystemTime,
}

fn not_initialized() -> ApiError {
    ApiError::internal("CA not initialized")
}

pub(super) async fn roots(State(ctx): State<Arc<Ctx>>, RawQuery(raw): RawQuery) -> Answer {
    let q = super::query(&raw);
    block(&ctx, Table::Ca, &q).await?;
    let s = ctx.store.read();
    let ca = s.ca.as_ref().ok_or_else(not_initialized)?;
    Ok(json_at(
        serde_json::to_value(ca.roots()).unwrap_or(Value::Null),
        s.table_index(Table::Ca),
    ))
}

pub(super) async fn config_get(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = super::query(&raw);
    let c = who(&ctx, &headers, &raw)?;
    if !c.authz.operator_write() {
        return Err(denied(&c, "operator:write", ""));
    }
    block(&ctx, Table::Ca, &q).await?;
    let s = ctx.store.read();
    let c = s.ca_config.as_ref().ok_or_else(not_initialized)?;
    Ok(json_at(
        json!({
            "Provider": c.provider,
            "Config": c.config,
            "State": null,
            "ForceWithoutCrossSigning": c.force_without_cross_signing,
            "CreateIndex": c.create_index,
            "ModifyIndex": c.modify_index,
        }),
        s.table_index(Table::Ca),
    ))
}

/// The body of a configuration write, checked with Consul's rules
/// (`agent/connect/ca/provider_consul_config.go`, `ParseConsulCAConfig`).
fn parse_ca_config(body: &[u8]) -> Result<SetCaConfig, ApiError> {
    let v = json_body(body)?;
    // The body decodes into `structs.CAConfiguration` with Go's encoding/json, which matches
    // field names in any case (`ConnectCAConfigurationSet` in `agent/connect_ca_endpoint.go`).
    let field = |name: &str| {
        v.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, x)| x)
        })
    };
    let provider = field("Provider")
        .and_then(Value::as_str)
        .unwrap_or("consul")
        .to_owned();
    let config = field("Config")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let force = field("ForceWithoutCrossSigning")
        .or_else(|| field("force_without_cross_signing"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // The provider's state is the server's: a write may only leave it out (`ErrStateReadOnly`,
    // answered by the HTTP handler as a bad request).
    if field("State")
        .and_then(Value::as_object)
        .is_some_and(|s| !s.is_empty())
    {
        return Err(ApiError::bad_request(
            "Provider State is read-only. It must be omitted or identical to the current value",
        ));
    }
    let model = mesh_model::CaConfig {
        provider: provider.clone(),
        config: config.clone(),
        force_without_cross_signing: force,
        token_from: None,
        span: Default::default(),
    };
    let failed = |m: String| ApiError::internal(format!("could not initialize provider: {m}"));
    // A Token or PrivateKey is fine over the API (it is how Consul receives them); the repository
    // rule against literal secrets does not apply here.
    if let Some(d) = mesh_semantics::ca_config::validate(&model)
        .into_iter()
        .find(|d| d.is_error() && d.code != mesh_diagnostics::Code::LiteralSecret)
    {
        return Err(failed(d.message));
    }
    if provider != "consul" {
        return Err(failed(format!(
            "the {provider} provider is not available in the embedded control plane"
        )));
    }
    let settings = mesh_semantics::ca_config::CaSettings::from_config(&model)
        .map_err(|d| failed(messages(&d)))?;
    Ok(SetCaConfig {
        provider,
        config,
        force_without_cross_signing: force,
        params: mesh_ca::CaParams {
            leaf_ttl: settings.leaf_cert_ttl,
            root_ttl: settings.root_cert_ttl,
            key_type: settings.private_key_type.clone(),
            key_bits: settings.private_key_bits,
        },
        force_rotation: settings.root_cert.is_some(),
    })
}

/// A new CA configuration: validated with Consul's rules; a key type or size change generates a
/// new root cross-signed by the old one.
pub(super) async fn config_put(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Answer {
    let c = who(&ctx, &headers, &raw)?;
    if !c.authz.operator_write() {
        return Err(denied(&c, "operator:write", ""));
    }
    let cmd = parse_ca_config(&body)?;
    let index = ctx
        .store
        .set_ca_config(cmd, ctx.env.now(), &*ctx.env.keys)?;
    Ok(with_index(StatusCode::OK.into_response(), index))
}

/// `GET /v1/agent/connect/ca/leaf/:service`, a blocking query like Consul's: with `?index=` it
/// answers when the leaf differs from the one issued at that index (a new root, or renewal
/// time), or when the wait ends.
pub(super) async fn leaf(
    State(ctx): State<Arc<Ctx>>,
    Path(service): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let c = who(&ctx, &headers, &raw)?;
    if !c.authz.service_write(&service) {
        return Err(denied(&c, "service:write", &service));
    }
    let q = super::query(&raw);
    let min_index = q1(&q, "index")
        .map(|i| i.parse::<u64>())
        .transpose()
        .map_err(|_| ApiError::bad_request("Invalid index"))?;
    let deadline = min_index.map(|_| deadline(&ctx, &q)).transpose()?;
    let mut rx = ctx.store.subscribe();
    loop {
        let (l, index, renew_in) = current_leaf(&ctx, &service)?;
        let Some((min, deadline)) = min_index.zip(deadline) else {
            return Ok(leaf_response(&l, index));
        };
        if index != min || tokio::time::Instant::now() >= deadline {
            return Ok(leaf_response(&l, index));
        }
        // Until something changes (a rotation), renewal time, or the end of the wait.
        let until = deadline.min(tokio::time::Instant::now() + renew_in);
        // A change or the end of `until`: either way the loop looks again.
        let _ = tokio::time::timeout_at(until, rx.changed()).await;
    }
}

/// The service's current leaf, issued anew when there is none, the root changed or it is due
/// for renewal; with its index and the time left until renewal.
fn current_leaf(ctx: &Ctx, service: &str) -> Result<(mesh_ca::Leaf, u64, Duration), ApiError> {
    let now = ctx.env.now();
    // The cache is held across the signing, so one service is signed for once at a time.
    let mut cache = ctx.leaves.lock().unwrap_or_else(|p| p.into_inner());
    let active = {
        let s = ctx.store.read();
        let ca = s.ca.as_ref().ok_or_else(not_initialized)?;
        ca.active_root().map(|r| r.id.clone()).unwrap_or_default()
    };
    if let Some(c) = cache.get(service) {
        if c.root == active {
            if let Ok(left) = c.renew_at.duration_since(now) {
                if !left.is_zero() {
                    return Ok((c.leaf.clone(), c.index, left));
                }
            }
        }
    }
    let (l, index, root) = ctx
        .store
        .issue_leaf(service, &ctx.datacenter, now, &*ctx.env.keys)?;
    // Renewed three quarters into the lifetime left (at least a tenth of a second from now).
    let expires = std::time::UNIX_EPOCH + Duration::from_secs(l.valid_before_unix);
    let left = expires.duration_since(now).unwrap_or_default() * 3 / 4;
    let left = left.max(Duration::from_millis(100));
    cache.insert(
        service.to_owned(),
        CachedLeaf {
            leaf: l.clone(),
            index,
            root,
            renew_at: now + left,
        },
    );
    Ok((l, index, left))
}

fn leaf_response(l: &mesh_ca::Leaf, index: u64) -> Response {
    let mut v = serde_json::to_value(l).unwrap_or(Value::Null);
    v["Namespace"] = json!("default");
    v["CreateIndex"] = json!(index);
    v["ModifyIndex"] = json!(index);
    json_at(v, index)
}
