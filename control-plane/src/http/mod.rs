//! Consul's HTTP API for the subset mesh-gitops uses: paths, bodies, headers and status codes
//! as Consul answers them (consul-semantics sections 1, 2.7, 4, 6). A thin transport, as
//! Consul's `agent/*_endpoint.go` over `agent/consul/*_endpoint.go`: handlers parse the
//! request, check the caller's permissions, call one operation of the [`Store`] and render
//! its answer; they never touch storage or the index themselves.

mod acl;
mod agent;
mod agent_local;
mod audit;
pub mod auth;
mod blocking;
mod catalog;
mod catalog_read;
mod chain;
mod config;
mod connect;
mod conventions;
mod durations;
mod families;
mod faults;
mod health;
mod intentions;
mod kv;
mod render;
mod session;
mod txn;

pub use audit::AuditLog;
pub use blocking::block;
pub use connect::CachedLeaf;
pub use faults::FaultInjector;
pub(crate) use session::reap_sessions;

use crate::store::{StateError, Store};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the handlers share.
pub struct Ctx {
    pub store: Store,
    /// When each session with a TTL expires, unless renewed.
    pub session_deadlines: std::sync::Mutex<BTreeMap<String, tokio::time::Instant>>,
    /// State of the generator for blocking-query jitter; seeded by the server's options so a
    /// simulation can replay it.
    pub jitter: mesh_seed::SharedSplitMix64,
    pub acl: auth::AclConfig,
    pub datacenter: String,
    pub node: String,
    /// Leaves handed out, by service: reused until they are due for renewal or the root
    /// changes (the agent cache's behaviour). Lock it before the store when holding both.
    pub leaves: std::sync::Mutex<BTreeMap<String, CachedLeaf>>,
    pub faults: Option<FaultInjector>,
    /// Where requests that change state are logged, when asked.
    pub audit: Option<AuditLog>,
    /// The clock, identifiers and keys.
    pub env: crate::env::Env,
}

/// A refused request: the status and body Consul answers with, and the index header when
/// Consul sends one with it. Every handler error is one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: String,
    pub index: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, body: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: body.into(),
            index: None,
        }
    }

    /// 500, Consul's answer to an error from its state store or RPC layer.
    pub fn internal(body: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, body)
    }

    pub fn bad_request(body: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, body)
    }

    /// With `X-Consul-Index` and the other query headers.
    pub fn at(mut self, index: u64) -> ApiError {
        self.index = Some(index);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let r = text(self.status, self.body);
        match self.index {
            Some(i) => with_index(r, i),
            None => r,
        }
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> ApiError {
        let status = match &e {
            StateError::Store(_) | StateError::Rejected(_) => StatusCode::INTERNAL_SERVER_ERROR,
            StateError::Invalid(_) => StatusCode::BAD_REQUEST,
            StateError::NotFound(_) => StatusCode::NOT_FOUND,
            StateError::BootstrapDone(_) => StatusCode::FORBIDDEN,
        };
        ApiError::new(status, e.to_string())
    }
}

/// A handler's answer.
pub(crate) type Answer = Result<Response, ApiError>;

pub fn router(ctx: Arc<Ctx>) -> Router {
    let faults = ctx.faults.is_some();
    let mut router = routes(ctx.clone()).layer(axum::middleware::from_fn_with_state(
        ctx.clone(),
        conventions::conventions,
    ));
    if ctx.audit.is_some() {
        // Inside the fault injector: a request refused by an injected 503 never reached the
        // store; one whose connection is dropped after it was handled did.
        router = router.layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            audit::record,
        ));
    }
    if faults {
        router.layer(axum::middleware::from_fn_with_state(
            ctx,
            faults::inject_faults,
        ))
    } else {
        router
    }
}

fn routes(ctx: Arc<Ctx>) -> Router {
    use crate::store::{AclPolicyStored as P, AclRoleStored as R, AclTokenStored as T};
    Router::new()
        .route("/v1/discovery-chain/{service}", get(chain::read))
        .route("/v1/config", put(config::put))
        .route("/v1/config/{kind}", get(config::list))
        .route(
            "/v1/config/{kind}/{name}",
            get(config::get).delete(config::delete),
        )
        .route("/v1/connect/intentions", get(intentions::list))
        .route("/v1/connect/intentions/check", get(intentions::check))
        .route("/v1/connect/intentions/match", get(intentions::matching))
        .route(
            "/v1/connect/intentions/exact",
            get(intentions::exact_get)
                .put(intentions::exact_put)
                .delete(intentions::exact_delete),
        )
        .route("/v1/agent/connect/authorize", post(intentions::authorize))
        .route(
            "/v1/kv/{*key}",
            get(kv::get).put(kv::put).delete(kv::delete),
        )
        .route("/v1/session/create", put(session::create))
        .route("/v1/session/destroy/{id}", put(session::destroy))
        .route("/v1/session/info/{id}", get(session::info))
        .route("/v1/session/renew/{id}", put(session::renew))
        .route("/v1/session/list", get(session::list))
        .route("/v1/connect/ca/roots", get(connect::roots))
        .route(
            "/v1/connect/ca/configuration",
            get(connect::config_get).put(connect::config_put),
        )
        .route("/v1/agent/connect/ca/leaf/{service}", get(connect::leaf))
        .route("/v1/agent/service/register", put(catalog::agent_register))
        .route(
            "/v1/agent/service/deregister/{id}",
            put(catalog::agent_deregister),
        )
        .route("/v1/catalog/register", put(catalog::catalog_register))
        .route("/v1/catalog/deregister", put(catalog::catalog_deregister))
        .route("/v1/acl/bootstrap", put(acl::bootstrap))
        .route("/v1/acl/policy", put(acl::create::<P>))
        .route("/v1/acl/policy/name/{name}", get(acl::by_name::<P>))
        .route(
            "/v1/acl/policy/{id}",
            get(acl::read::<P>)
                .put(acl::update::<P>)
                .delete(acl::delete::<P>),
        )
        .route("/v1/acl/policies", get(acl::list::<P>))
        .route("/v1/acl/role", put(acl::create::<R>))
        .route("/v1/acl/role/name/{name}", get(acl::by_name::<R>))
        .route(
            "/v1/acl/role/{id}",
            get(acl::read::<R>)
                .put(acl::update::<R>)
                .delete(acl::delete::<R>),
        )
        .route("/v1/acl/roles", get(acl::list::<R>))
        .route("/v1/acl/token", put(acl::create::<T>))
        .route("/v1/acl/token/self", get(acl::token_self))
        .route(
            "/v1/acl/token/{accessor}",
            get(acl::read::<T>)
                .put(acl::update::<T>)
                .delete(acl::delete::<T>),
        )
        .route("/v1/acl/tokens", get(acl::list::<T>))
        .route("/v1/status/leader", get(agent::leader))
        .route("/v1/agent/self", get(agent::agent_self))
        .merge(families::routes())
        .fallback(conventions::not_found)
        .method_not_allowed_fallback(conventions::method_not_allowed)
        .with_state(ctx)
}

pub(crate) type Q = BTreeMap<String, Vec<String>>;

pub(crate) fn query(raw: &Option<String>) -> Q {
    let mut out: Q = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
        out.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    out
}

pub(crate) fn q1<'a>(q: &'a Q, k: &str) -> Option<&'a str> {
    q.get(k).and_then(|v| v.first()).map(String::as_str)
}

/// A required query parameter.
pub(crate) fn required<'a>(q: &'a Q, k: &str) -> Result<&'a str, ApiError> {
    q1(q, k).ok_or_else(|| ApiError::internal(format!("required query parameter '{k}' not set")))
}

/// An unsigned query parameter (`?cas=`, `?flags=`), with Go's parse error.
pub(crate) fn uint_param(q: &Q, k: &str) -> Result<Option<u64>, ApiError> {
    q1(q, k)
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                ApiError::internal(format!("strconv.ParseUint: parsing {v:?}: invalid syntax"))
            })
        })
        .transpose()
}

/// A JSON request body, with Consul's decode error.
pub(crate) fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))
}

pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, body.into()).into_response()
}

pub(crate) fn with_index(mut r: Response, index: u64) -> Response {
    let h = r.headers_mut();
    h.insert("X-Consul-Index", HeaderValue::from(index.max(1)));
    h.insert("X-Consul-KnownLeader", HeaderValue::from_static("true"));
    h.insert("X-Consul-LastContact", HeaderValue::from_static("0"));
    h.insert(
        "X-Consul-Effective-Consistency",
        HeaderValue::from_static("leader"),
    );
    r
}

pub(crate) fn json_at(v: Value, index: u64) -> Response {
    with_index(axum::Json(v).into_response(), index)
}

/// `true` or `false`, as JSON: Consul answers every body that is not an error as
/// `application/json` (`HTTPHandlers.wrap`), so clients decode it as a boolean.
pub(crate) fn bool_body(b: bool) -> Response {
    axum::Json(b).into_response()
}

/// The caller, or the answer refusing it.
pub(crate) fn who(
    ctx: &Ctx,
    headers: &HeaderMap,
    raw: &Option<String>,
) -> Result<auth::Caller, ApiError> {
    auth::caller(ctx, headers, raw)
}

#[cfg(test)]
mod tests;
