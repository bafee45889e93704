//! `/v1/config`: config entries with check-and-set (`agent/config_endpoint.go`,
//! `agent/consul/config_endpoint.go`).

use super::{block, bool_body, json_at, uint_param, who, Answer, ApiError, Ctx};
use crate::http::auth::{denied, Caller};
use crate::store::{DeleteEntry, PutEntry, StoredEntry, Table, Written};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use mesh_model::{ConfigEntry, EntryKind};
use serde_json::{json, Value};
use std::sync::Arc;

/// The permission writing (or deleting) a config entry needs (`ConfigEntry.CanWrite`).
pub(super) fn require_entry_write(c: &Caller, kind: &str, name: &str) -> Result<(), ApiError> {
    use mesh_semantics::acl::{Access, Resource, Singleton};
    match kind {
        "proxy-defaults"
        | "mesh"
        | "ingress-gateway"
        | "terminating-gateway"
        | "exported-services" => c.require_singleton(Singleton::Mesh, Access::Write),
        "service-intentions" => c.require(Resource::Intention, name, Access::Write),
        _ => c.require(Resource::Service, name, Access::Write),
    }
}

fn entry_readable(c: &Caller, kind: &str, name: &str) -> bool {
    match kind {
        "service-intentions" => c.authz.intention_read(name),
        "service-defaults" | "service-router" | "service-splitter" | "service-resolver" => {
            c.authz.service_read(name)
        }
        _ => true,
    }
}

pub(super) fn messages(d: &[mesh_diagnostics::Diagnostic]) -> String {
    d.iter()
        .filter(|d| d.is_error())
        .map(|d| d.message.clone())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The body through the loader's config-entry decoder, Consul's decoding rules.
fn decode_body(body: &[u8]) -> Result<ConfigEntry, ApiError> {
    let failed = |m: String| ApiError::bad_request(format!("Request decoding failed: {m}"));
    let text_body = std::str::from_utf8(body).map_err(|_| failed("body is not UTF-8".into()))?;
    let node = mesh_syntax::parse_json(mesh_diagnostics::FileId(0), text_body)
        .map_err(|d| failed(messages(&d)))?;
    let entry = mesh_loader::decode_config_entry(&node).map_err(|d| {
        // A missing Name decodes in Consul (`DecodeConfigEntry` leaves it empty) and fails in
        // `ConfigEntry.Apply`'s `Validate()`, an RPC error: 500 with the bare message.
        let errors: Vec<_> = d.iter().filter(|d| d.is_error()).collect();
        if !errors.is_empty() && errors.iter().all(|d| d.message == "Name is required") {
            ApiError::internal("Name is required")
        } else {
            failed(messages(&d))
        }
    })?;
    // `PrivateKeyFrom` is a repository's reference to an inline-certificate's key, which apply
    // replaces by the key: Consul's decoder has no such field (`DecodeConfigEntry`).
    if entry.secret_reference().is_some() {
        return Err(failed(
            "invalid config key \"PrivateKeyFrom\" in inline-certificate".into(),
        ));
    }
    Ok(entry)
}

fn entry_json(s: &StoredEntry) -> Value {
    let mut v = s.entry.to_json();
    super::durations::as_consul_answers(&mut v);
    v["CreateIndex"] = json!(s.create_index);
    v["ModifyIndex"] = json!(s.modify_index);
    v
}

fn known_kind(kind: &str) -> Result<EntryKind, ApiError> {
    EntryKind::parse(kind)
        .ok_or_else(|| ApiError::internal(format!("invalid config entry kind: {kind}")))
}

pub(super) async fn put(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Answer {
    let q = super::query(&raw);
    let caller = who(&ctx, &headers, &raw)?;
    let mut entry = decode_body(&body)?;
    // `ConfigEntry.Apply` (`agent/consul/config_endpoint.go`) normalizes, then validates, then
    // checks the ACL; all precede the write. Normalizing first matters: a proxy-defaults entry
    // without a Name becomes "global" before its name is checked.
    mesh_semantics::config_entry::normalize(&mut entry);
    if let Some(d) = mesh_semantics::config_entry::validate(&entry)
        .into_iter()
        .find(|d| d.is_error())
    {
        return Err(ApiError::internal(d.message));
    }
    require_entry_write(&caller, entry.kind().as_str(), entry.name())?;
    let cmd = PutEntry {
        entry,
        cas: uint_param(&q, "cas")?,
    };
    // The durable commit blocks on the disk: keep it off the async workers. In memory there is
    // nothing to wait for (and a simulation must not leave its thread).
    let written = if ctx.store.is_durable() {
        tokio::task::spawn_blocking(move || ctx.store.put_entry(cmd))
            .await
            .map_err(|e| ApiError::internal(format!("write failed: {e}")))?
    } else {
        ctx.store.put_entry(cmd)
    };
    Ok(bool_body(written?.ok()))
}

pub(super) async fn list(
    State(ctx): State<Arc<Ctx>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = super::query(&raw);
    let caller = who(&ctx, &headers, &raw)?;
    known_kind(&kind)?;
    block(&ctx, Table::Config, &q).await?;
    let s = ctx.store.read();
    let list: Vec<Value> = s
        .config
        .iter()
        .filter(|((k, n), _)| *k == kind && entry_readable(&caller, k, n))
        .map(|(_, v)| entry_json(v))
        .collect();
    Ok(json_at(Value::Array(list), s.table_index(Table::Config)))
}

pub(super) async fn get(
    State(ctx): State<Arc<Ctx>>,
    Path((kind, name)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = super::query(&raw);
    let c = who(&ctx, &headers, &raw)?;
    if !entry_readable(&c, &kind, &name) {
        let permission = if kind == "service-intentions" {
            "intentions:read"
        } else {
            "service:read"
        };
        return Err(denied(&c, permission, &name));
    }
    known_kind(&kind)?;
    block(&ctx, Table::Config, &q).await?;
    let s = ctx.store.read();
    let index = s.table_index(Table::Config);
    match s.config.get(&(kind.clone(), name.clone())) {
        Some(e) => Ok(json_at(entry_json(e), index)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Config entry not found for {kind:?} / {name:?}"),
        )
        .at(index)),
    }
}

pub(super) async fn delete(
    State(ctx): State<Arc<Ctx>>,
    Path((kind, name)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = super::query(&raw);
    if EntryKind::parse(&kind).is_none() {
        return Err(ApiError::bad_request(format!(
            "invalid config entry kind: {kind}"
        )));
    }
    require_entry_write(&who(&ctx, &headers, &raw)?, &kind, &name)?;
    let cas = uint_param(&q, "cas")?;
    let written = ctx.store.delete_entry(DeleteEntry { kind, name, cas })?;
    // With `?cas=` the answer is the outcome; without, an empty object.
    Ok(match cas {
        Some(_) => bool_body(written.ok()),
        None => json_at(json!({}), 0),
    })
}

/// Consul's `true`/`false` for a write.
pub(super) fn written_body(w: Written) -> axum::response::Response {
    bool_body(w.ok())
}
