//! `/v1/connect/intentions` and `/v1/agent/connect/authorize` (`agent/intentions_endpoint.go`,
//! `agent/agent_endpoint.go` `AgentConnectAuthorize`): intentions are views of the
//! `service-intentions` config entries, decided by the shared evaluation.

use super::config::{require_entry_write, written_body};
use super::{block, json_at, json_body, q1, required, who, Answer, ApiError, Ctx, Q};
use crate::http::auth::denied;
use crate::store::{DeleteIntention, PutIntention, State as StoreState, StoredEntry, Table};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use mesh_model::{ConfigEntry, IntentionAction, ServiceIntentions, SourceIntention};
use mesh_semantics::acl::{Access, Resource};
use mesh_semantics::intention::{IntentionSet, MatchBy};
use serde_json::{json, Value};
use std::sync::Arc;

/// The decision when no intention matches: allow with ACLs off, else the ACL default.
fn default_allow(ctx: &Ctx) -> bool {
    !ctx.acl.enabled || ctx.acl.default_allow
}

fn intention_set(s: &StoreState) -> IntentionSet {
    let entries: Vec<&ServiceIntentions> = s
        .config
        .values()
        .filter_map(|e| match &e.entry {
            ConfigEntry::ServiceIntentions(i) => Some(i),
            _ => None,
        })
        .collect();
    IntentionSet::new(entries)
}

fn intention_json(dest: &str, src: &SourceIntention, stored: &StoredEntry) -> Value {
    let mut v = json!({
        "Description": src.description.clone().unwrap_or_default(),
        "SourceNS": "default",
        "SourceName": src.name,
        "DestinationNS": "default",
        "DestinationName": dest,
        "SourceType": "consul",
        "Precedence": src.precedence,
        "CreateIndex": stored.create_index,
        "ModifyIndex": stored.modify_index,
    });
    match src.action {
        Some(a) if src.permissions.is_empty() => v["Action"] = json!(a.as_str()),
        _ => v["Permissions"] = serde_json::to_value(&src.permissions).unwrap_or(Value::Null),
    }
    if let Some(p) = &src.peer {
        v["SourcePeer"] = json!(p);
    }
    let meta = stored.entry.meta();
    if !meta.is_empty() {
        v["Meta"] = json!(meta);
    }
    v
}

/// Every intention as (precedence, source, destination, JSON view).
fn all_intentions(s: &StoreState) -> Vec<(u32, String, String, Value)> {
    let mut out = Vec::new();
    for stored in s.config.values() {
        if let ConfigEntry::ServiceIntentions(i) = &stored.entry {
            for src in &i.sources {
                out.push((
                    src.precedence,
                    src.name.clone(),
                    i.name.clone(),
                    intention_json(&i.name, src, stored),
                ));
            }
        }
    }
    // Precedence descending, then source and destination names (Consul's sorter).
    out.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    out
}

/// `ns/name` or `name`; only the default namespace exists in CE.
fn service_name(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// `?source=&destination=`, both required.
fn pair(q: &Q) -> Result<(String, String), ApiError> {
    let src = required(q, "source");
    let dst = required(q, "destination");
    Ok((service_name(src?).to_owned(), service_name(dst?).to_owned()))
}

pub(super) async fn list(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = super::query(&raw);
    let caller = who(&ctx, &headers, &raw)?;
    block(&ctx, Table::Config, &q).await?;
    let s = ctx.store.read();
    // Intentions the token cannot read are left out, as Consul filters them.
    let list: Vec<Value> = all_intentions(&s)
        .into_iter()
        .filter(|x| caller.authz.intention_read(&x.2))
        .map(|x| x.3)
        .collect();
    Ok(json_at(Value::Array(list), s.table_index(Table::Config)))
}

pub(super) async fn check(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = super::query(&raw);
    let caller = who(&ctx, &headers, &raw)?;
    let (src, dst) = pair(&q)?;
    caller.require(Resource::Service, &dst, Access::Read)?;
    let s = ctx.store.read();
    let d = intention_set(&s).decide(&src, &dst, default_allow(&ctx));
    Ok(json_at(
        json!({ "Allowed": d.allowed }),
        s.table_index(Table::Config),
    ))
}

pub(super) async fn matching(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = super::query(&raw);
    let caller = who(&ctx, &headers, &raw)?;
    let by = match q1(&q, "by") {
        Some("source") => MatchBy::Source,
        Some("destination") => MatchBy::Destination,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "'by' parameter must be one of 'source' or 'destination', got {other:?}"
            )))
        }
        None => return Err(ApiError::internal("required query parameter 'by' not set")),
    };
    let Some(names) = q.get("name") else {
        return Err(ApiError::internal(
            "required query parameter 'name' not set",
        ));
    };
    block(&ctx, Table::Config, &q).await?;
    let s = ctx.store.read();
    let set = intention_set(&s);
    let all = all_intentions(&s);
    let mut out = serde_json::Map::new();
    for name in names {
        let n = service_name(name);
        if !caller.authz.intention_read(n) {
            return Err(denied(&caller, "intentions:read", n));
        }
        let list: Vec<Value> = set
            .matching(by, n)
            .into_iter()
            .filter_map(|r| {
                all.iter()
                    .find(|x| x.1 == r.source && x.2 == r.destination)
                    .map(|x| x.3.clone())
            })
            .collect();
        out.insert(name.clone(), Value::Array(list));
    }
    Ok(json_at(Value::Object(out), s.table_index(Table::Config)))
}

pub(super) async fn exact_get(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = super::query(&raw);
    let (src, dst) = pair(&q)?;
    let c = who(&ctx, &headers, &raw)?;
    if !c.authz.intention_read(&dst) {
        return Err(denied(&c, "intentions:read", &dst));
    }
    let s = ctx.store.read();
    let index = s.table_index(Table::Config);
    let found = s
        .config
        .get(&("service-intentions".to_owned(), dst.clone()))
        .and_then(|stored| match &stored.entry {
            ConfigEntry::ServiceIntentions(i) => i
                .sources
                .iter()
                .find(|x| x.name == src && x.peer.is_none())
                .map(|x| intention_json(&dst, x, stored)),
            _ => None,
        });
    match found {
        Some(v) => Ok(json_at(v, index)),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "Intention not found").at(index)),
    }
}

/// The source intention a `PUT .../exact` body describes.
fn source_of(name: String, body: &[u8]) -> Result<SourceIntention, ApiError> {
    let v = json_body(body)?;
    let action = match v.get("Action").and_then(Value::as_str) {
        None | Some("") => None,
        Some("allow") => Some(IntentionAction::Allow),
        Some("deny") => Some(IntentionAction::Deny),
        Some(_) => {
            return Err(ApiError::internal(
                "Sources[0].Action must be set to 'allow' or 'deny'",
            ))
        }
    };
    let permissions = match v.get("Permissions") {
        None | Some(Value::Null) => Vec::new(),
        Some(p) => serde_json::from_value(p.clone())
            .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?,
    };
    Ok(SourceIntention {
        name,
        action,
        permissions,
        description: v
            .get("Description")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        r#type: "consul".into(),
        ..SourceIntention::default()
    })
}

pub(super) async fn exact_put(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Answer {
    let q = super::query(&raw);
    let (src, dst) = pair(&q)?;
    require_entry_write(&who(&ctx, &headers, &raw)?, "service-intentions", &dst)?;
    let source = source_of(src, &body)?;
    let written = ctx.store.put_intention(PutIntention {
        destination: dst,
        source,
    })?;
    Ok(written_body(written))
}

pub(super) async fn exact_delete(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = super::query(&raw);
    let (src, dst) = pair(&q)?;
    require_entry_write(&who(&ctx, &headers, &raw)?, "service-intentions", &dst)?;
    ctx.store.delete_intention(DeleteIntention {
        destination: dst,
        source: src,
    })?;
    Ok(super::bool_body(true))
}

pub(super) async fn authorize(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Answer {
    let caller = who(&ctx, &headers, &raw)?;
    let v = json_body(&body)?;
    let Some(target) = v
        .get("Target")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    else {
        return Err(ApiError::bad_request("Target service must be specified"));
    };
    let uri = v.get("ClientCertURI").and_then(Value::as_str).unwrap_or("");
    if !uri.starts_with("spiffe://") {
        return Err(ApiError::bad_request(
            "ClientCertURI not a valid Connect identifier",
        ));
    }
    let Some((_, _, source)) = mesh_ca::parse_spiffe_service(uri) else {
        return Err(ApiError::bad_request(
            "ClientCertURI not a valid Service identifier",
        ));
    };
    caller.require(Resource::Service, target, Access::Write)?;
    let s = ctx.store.read();
    let d = intention_set(&s).decide(&source, target, default_allow(&ctx));
    Ok(json_at(
        json!({ "Authorized": d.allowed, "Reason": d.reason }),
        s.table_index(Table::Config),
    ))
}
