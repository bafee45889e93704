//! Consul's conventions for every endpoint (`agent/http.go`): the query parameters every
//! request may carry (`?dc`, `?stale`, `?consistent`, `?pretty`), the headers on every answer,
//! and the answers for unknown paths and methods.

use super::{q1, query, Ctx};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The largest JSON answer re-indented for `?pretty` (larger ones are answered as they are).
const PRETTY_LIMIT: usize = 64 << 20;

/// Applies the conventions around a handler.
pub(crate) async fn conventions(State(ctx): State<Arc<Ctx>>, req: Request, next: Next) -> Response {
    let q = query(&req.uri().query().map(str::to_owned));
    // `parseDC`: a request naming another datacenter is forwarded there by the RPC layer; with
    // one datacenter there is no path to it, which `agent/consul/rpc.go` (`forwardDC`) answers
    // with `structs.ErrNoDCPath`, a 500.
    if let Some(dc) = q1(&q, "dc").filter(|d| !d.is_empty()) {
        if dc != ctx.datacenter {
            return finish(
                &ctx,
                (StatusCode::INTERNAL_SERVER_ERROR, "No path to datacenter").into_response(),
            );
        }
    }
    // `parseConsistency`.
    let stale = q.contains_key("stale");
    let consistent = q.contains_key("consistent");
    if stale && consistent {
        return finish(
            &ctx,
            (
                StatusCode::BAD_REQUEST,
                "Cannot specify ?stale with ?consistent, conflicting semantics.",
            )
                .into_response(),
        );
    }
    let pretty = q.contains_key("pretty");
    let mut r = next.run(req).await;
    // `setConsistency`: a read answers with the consistency it was served at; one server is
    // its own leader, so a default read is a leader read.
    if r.headers().contains_key("X-Consul-Index") {
        let level = if stale {
            "stale"
        } else if consistent {
            "consistent"
        } else {
            "leader"
        };
        r.headers_mut().insert(
            "X-Consul-Effective-Consistency",
            HeaderValue::from_static(level),
        );
    }
    if pretty && is_json(&r) {
        r = prettify(r).await;
    }
    finish(&ctx, r)
}

/// `setACLDefaultPolicy`, on every answer when ACLs are enabled.
fn finish(ctx: &Ctx, mut r: Response) -> Response {
    if ctx.acl.enabled {
        let policy = if ctx.acl.default_allow {
            "allow"
        } else {
            "deny"
        };
        r.headers_mut().insert(
            "X-Consul-Default-ACL-Policy",
            HeaderValue::from_static(policy),
        );
    }
    r
}

fn is_json(r: &Response) -> bool {
    r.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// `marshalJSON` with `?pretty`: indented by four spaces, with a final newline.
async fn prettify(r: Response) -> Response {
    let (mut parts, body) = r.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, PRETTY_LIMIT).await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to read the answer",
        )
            .into_response();
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let mut out = Vec::with_capacity(bytes.len() * 2);
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    if serde::Serialize::serialize(&v, &mut ser).is_err() {
        return Response::from_parts(parts, Body::from(bytes));
    }
    out.push(b'\n');
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}

/// A path no endpoint serves (`HTTPHandlers.Index`).
pub(crate) async fn not_found(req: Request) -> Response {
    let body = if req.uri().path().contains("/v1/") {
        "Invalid URL path: not a recognized HTTP API endpoint\n"
    } else {
        "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n"
    };
    (StatusCode::NOT_FOUND, body).into_response()
}

/// A method the path does not take (`MethodNotAllowedError`): 405 with its message. axum adds
/// the `Allow` header listing the methods the path takes.
pub(crate) async fn method_not_allowed(method: Method) -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} not allowed"),
    )
        .into_response()
}
