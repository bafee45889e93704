//! `/v1/session` (`agent/session_endpoint.go`) and the TTL timers: a session with a TTL is
//! destroyed after twice its TTL without a renewal (`agent/consul/session_ttl.go`).

use super::{bool_body, json_at, who, Answer, ApiError, Ctx};
use crate::http::auth::denied;
use crate::store::{CreateSession, Session, Table};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn session_json(s: &Session) -> Value {
    json!({
        "ID": s.id, "Name": s.name, "Node": s.node, "TTL": s.ttl, "Behavior": s.behavior,
        "LockDelay": s.lock_delay_ns, "NodeChecks": ["serfHealth"], "ServiceChecks": null,
        "CreateIndex": s.create_index, "ModifyIndex": s.modify_index,
    })
}

pub(super) async fn create(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Answer {
    let c = who(&ctx, &headers, &raw)?;
    if !c.authz.session_write(&ctx.node) {
        return Err(denied(&c, "session:write", &ctx.node));
    }
    let v = if body.is_empty() {
        json!({})
    } else {
        super::json_body(&body)?
    };
    // Consul decodes the body case-insensitively (clients send `name`, `ttl`, ...).
    let fields: BTreeMap<String, Value> = v
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, x)| (k.to_ascii_lowercase(), x.clone()))
                .collect()
        })
        .unwrap_or_default();
    let field = |k: &str| {
        fields
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let cmd = CreateSession {
        name: field("name"),
        node: Some(field("node"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| ctx.node.clone()),
        ttl: field("ttl"),
        behavior: Some(field("behavior"))
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "release".into()),
    };
    let session = ctx.store.create_session(cmd, || ctx.env.ids.next())?;
    arm_session(&ctx, &session);
    Ok(json_at(json!({ "ID": session.id }), session.create_index))
}

pub(super) async fn destroy(State(ctx): State<Arc<Ctx>>, Path(id): Path<String>) -> Answer {
    destroy_session(&ctx, &id)?;
    Ok(bool_body(true))
}

/// Stops the session's timer and destroys it, releasing (or deleting) its locks.
fn destroy_session(ctx: &Ctx, id: &str) -> Result<(), ApiError> {
    ctx.session_deadlines
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(id);
    ctx.store.destroy_session(id)?;
    Ok(())
}

/// Starts (or restarts) a session's TTL: Consul invalidates it after twice the TTL without a
/// renewal.
pub(crate) fn arm_session(ctx: &Ctx, session: &Session) {
    if let Ok(ttl) = mesh_semantics::ca_config::parse_duration(&session.ttl) {
        if !ttl.is_zero() {
            ctx.session_deadlines
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(session.id.clone(), tokio::time::Instant::now() + ttl * 2);
        }
    }
}

/// Destroys sessions whose TTL ran out, and prunes rotated CA roots; runs until the server
/// stops.
pub(crate) async fn reap_sessions(ctx: Arc<Ctx>) {
    // Sessions restored from disk get a fresh TTL, as after a Consul leader election.
    let restored: Vec<Session> = ctx.store.read().sessions.values().cloned().collect();
    for s in &restored {
        arm_session(&ctx, s);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks += 1;
        // Once a minute: drop CA roots rotated out more than twice the leaf TTL ago. A failed
        // write leaves the roots for the next pass.
        if ticks.is_multiple_of(240) {
            let _ = ctx.store.prune_roots(ctx.env.now());
        }
        let now = tokio::time::Instant::now();
        let expired: Vec<String> = ctx
            .session_deadlines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            // A failed write leaves the session for the next tick.
            let _ = destroy_session(&ctx, &id);
        }
    }
}

pub(super) async fn info(State(ctx): State<Arc<Ctx>>, Path(id): Path<String>) -> Answer {
    let s = ctx.store.read();
    let list: Vec<Value> = s.sessions.get(&id).map(session_json).into_iter().collect();
    Ok(json_at(Value::Array(list), s.table_index(Table::Sessions)))
}

pub(super) async fn renew(State(ctx): State<Arc<Ctx>>, Path(id): Path<String>) -> Answer {
    let session = ctx.store.renew_session(&id)?;
    arm_session(&ctx, &session);
    let index = ctx.store.read().table_index(Table::Sessions);
    Ok(json_at(json!([session_json(&session)]), index))
}

pub(super) async fn list(State(ctx): State<Arc<Ctx>>) -> Answer {
    let s = ctx.store.read();
    let list: Vec<Value> = s.sessions.values().map(session_json).collect();
    Ok(json_at(Value::Array(list), s.table_index(Table::Sessions)))
}
