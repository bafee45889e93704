//! `PUT /v1/txn` (`agent/txn_endpoint.go`): KV operations applied atomically; 200 with every
//! result, or 409 with the operations that failed and nothing written.

use super::kv::kv_json;
use super::{who, Answer, ApiError, Ctx};
use crate::http::auth::denied;
use crate::store::{KvTxnOp, TxnOutcome};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use serde_json::{json, Value};
use std::sync::Arc;

/// `maxTxnOps`: Consul's limit on the operations of one transaction.
const MAX_OPS: usize = 128;

fn parse_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Failed to parse body: {e}"))
}

/// A `{"KV": {...}}` operation (`api.TxnOp`); other kinds (Node, Service, Check, Session) are
/// not served.
fn kv_op(i: usize, v: &Value) -> Result<KvTxnOp, ApiError> {
    let Some(kv) = v.get("KV") else {
        return Err(ApiError::bad_request(format!(
            "Failed to parse body: operation {i} is not a KV operation (only KV operations are served)"
        )));
    };
    let s = |k: &str| kv.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let n = |k: &str| kv.get(k).and_then(Value::as_u64).unwrap_or(0);
    let value = match kv.get("Value").and_then(Value::as_str) {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(parse_err)?,
        None => Vec::new(),
    };
    Ok(KvTxnOp {
        verb: s("Verb"),
        key: s("Key"),
        value,
        flags: n("Flags"),
        index: n("Index"),
        session: s("Session"),
    })
}

pub(super) async fn txn(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Answer {
    let caller = who(&ctx, &headers, &raw)?;
    let v: Value = serde_json::from_slice(&body).map_err(parse_err)?;
    let Some(list) = v.as_array() else {
        return Err(parse_err("expected an array of operations"));
    };
    if list.len() > MAX_OPS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Transaction contains too many operations ({} > {MAX_OPS})",
                list.len()
            ),
        ));
    }
    let ops = list
        .iter()
        .enumerate()
        .map(|(i, o)| kv_op(i, o))
        .collect::<Result<Vec<_>, _>>()?;
    for op in &ops {
        let read = matches!(
            op.verb.as_str(),
            "get" | "get-tree" | "check-index" | "check-session" | "check-not-exists"
        );
        let allowed = if read {
            caller.authz.key_read(&op.key)
        } else if op.verb == "delete-tree" {
            caller.authz.key_write_prefix(&op.key)
        } else {
            caller.authz.key_write(&op.key)
        };
        if !allowed {
            let perm = if read { "key:read" } else { "key:write" };
            return Err(denied(&caller, perm, &op.key));
        }
    }
    Ok(match ctx.store.kv_txn(&ops)? {
        TxnOutcome::Applied(_, results) => {
            let results: Vec<Value> = results
                .iter()
                .map(|(k, e)| json!({"KV": kv_json(k, e)}))
                .collect();
            axum::Json(json!({"Results": results, "Errors": null})).into_response()
        }
        TxnOutcome::Failed(errors) => {
            let errors: Vec<Value> = errors
                .iter()
                .map(|(i, what)| json!({"OpIndex": i, "What": what}))
                .collect();
            (
                StatusCode::CONFLICT,
                axum::Json(json!({"Results": null, "Errors": errors})),
            )
                .into_response()
        }
    })
}
