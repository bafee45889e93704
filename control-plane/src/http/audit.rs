//! The write log (`serve --audit-log FILE`): one JSON line per request that changes state, in
//! the order the server handled them, with the caller's `User-Agent`, the answer's status and
//! which sessions held which KV locks when the request arrived. It lets a test check from the
//! server's side that only the holder of a lock writes (the reconciler names its replica in
//! its `User-Agent`). Tokens are never written: only the method, the path and the query.

use super::Ctx;
use axum::extract::State;
use axum::http::Method;
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// The open log and the next line's number.
pub struct AuditLog {
    file: Mutex<(std::fs::File, u64)>,
}

impl AuditLog {
    pub fn open(path: &std::path::Path) -> std::io::Result<AuditLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(AuditLog {
            file: Mutex::new((file, 0)),
        })
    }

    fn append(&self, mut line: Value) {
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let (file, seq) = &mut *guard;
        *seq += 1;
        line["seq"] = json!(*seq);
        // A failed write to the log must not fail the request it describes.
        let _ = writeln!(file, "{line}");
    }
}

/// `{key: session name}` for every KV key a session holds now.
fn locks(ctx: &Ctx) -> Value {
    let state = ctx.store.read();
    let held: Map<String, Value> = state
        .kv
        .iter()
        .filter_map(|(key, e)| {
            let sid = e.session.as_ref()?;
            let name = state.sessions.get(sid).map_or("", |s| s.name.as_str());
            Some((key.clone(), json!(name)))
        })
        .collect();
    Value::Object(held)
}

pub(super) async fn record(
    State(ctx): State<Arc<Ctx>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(log) = ctx.audit.as_ref() else {
        return next.run(request).await;
    };
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(String::new, |p| p.as_str().to_owned());
    let agent = request
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let before = locks(&ctx);
    let response = next.run(request).await;
    log.append(json!({
        "method": method,
        "path": path,
        "user_agent": agent,
        "status": response.status().as_u16(),
        "locks": before,
    }));
    response
}
