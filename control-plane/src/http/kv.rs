//! `/v1/kv` (`agent/kvs_endpoint.go`): reads with `?recurse`, `?keys` and `?raw`, writes with
//! check-and-set and session locks.

use super::{block, bool_body, json_at, q1, uint_param, who, with_index, Answer, Ctx};
use crate::http::auth::denied;
use crate::store::{KvDelete, KvEntry, KvPut, Table};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use serde_json::{json, Value};
use std::sync::Arc;

pub(super) fn kv_json(key: &str, e: &KvEntry) -> Value {
    let mut v = json!({
        "LockIndex": e.lock_index,
        "Key": key,
        "Flags": e.flags,
        "Value": if e.value.is_empty() { Value::Null } else { json!(base64::engine::general_purpose::STANDARD.encode(&e.value)) },
        "CreateIndex": e.create_index,
        "ModifyIndex": e.modify_index,
    });
    if let Some(s) = &e.session {
        v["Session"] = json!(s);
    }
    v
}

pub(super) async fn get(
    State(ctx): State<Arc<Ctx>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = super::query(&raw);
    let caller = who(&ctx, &headers, &raw)?;
    if !q.contains_key("recurse") && !q.contains_key("keys") && !caller.authz.key_read(&key) {
        return Err(denied(&caller, "key:read", &key));
    }
    block(&ctx, Table::Kv, &q).await?;
    let s = ctx.store.read();
    let index = s.table_index(Table::Kv);
    let not_found = || Ok(with_index(StatusCode::NOT_FOUND.into_response(), index));
    if q.contains_key("keys") {
        let sep = q1(&q, "separator").unwrap_or("");
        let mut keys: Vec<String> = Vec::new();
        for k in s.kv.keys().filter(|k| k.starts_with(&key)) {
            let shown = match (sep.is_empty(), k[key.len()..].find(sep)) {
                (false, Some(i)) => k[..key.len() + i + sep.len()].to_owned(),
                _ => k.clone(),
            };
            if keys.last() != Some(&shown) {
                keys.push(shown);
            }
        }
        if keys.is_empty() {
            return not_found();
        }
        return Ok(json_at(json!(keys), index));
    }
    if q.contains_key("recurse") {
        let list: Vec<Value> =
            s.kv.iter()
                .filter(|(k, _)| k.starts_with(&key) && caller.authz.key_read(k))
                .map(|(k, e)| kv_json(k, e))
                .collect();
        if list.is_empty() {
            return not_found();
        }
        return Ok(json_at(Value::Array(list), index));
    }
    match s.kv.get(&key) {
        Some(e) if q.contains_key("raw") => Ok(with_index(
            (StatusCode::OK, e.value.clone()).into_response(),
            index,
        )),
        Some(e) => Ok(json_at(json!([kv_json(&key, e)]), index)),
        None => not_found(),
    }
}

pub(super) async fn put(
    State(ctx): State<Arc<Ctx>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Answer {
    let q = super::query(&raw);
    let c = who(&ctx, &headers, &raw)?;
    if !c.authz.key_write(&key) {
        return Err(denied(&c, "key:write", &key));
    }
    let cas = uint_param(&q, "cas");
    let flags = uint_param(&q, "flags");
    let cmd = KvPut {
        key,
        value: body.to_vec(),
        cas: cas?,
        flags: flags?,
        acquire: q1(&q, "acquire").map(str::to_owned),
        release: q1(&q, "release").map(str::to_owned),
    };
    Ok(bool_body(ctx.store.kv_put(cmd)?.ok()))
}

pub(super) async fn delete(
    State(ctx): State<Arc<Ctx>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = super::query(&raw);
    let recurse = q.contains_key("recurse");
    let c = who(&ctx, &headers, &raw)?;
    let allowed = if recurse {
        c.authz.key_write_prefix(&key)
    } else {
        c.authz.key_write(&key)
    };
    if !allowed {
        return Err(denied(&c, "key:write", &key));
    }
    let cmd = KvDelete {
        key,
        recurse,
        cas: uint_param(&q, "cas")?,
    };
    Ok(bool_body(ctx.store.kv_delete(cmd)?.ok()))
}
