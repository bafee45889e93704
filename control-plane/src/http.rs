//! Consul's HTTP API for the subset mesh-gitops uses: paths, bodies, headers and status codes
//! as Consul answers them (consul-semantics sections 1, 2.7, 4, 6).

// Helpers return the HTTP response to send as their error, the usual axum shape; its size is
// irrelevant next to a network round trip.
#![allow(clippy::result_large_err)]

use crate::store::{config_key, encode_entry, Batch, KvEntry, Session, Store, StoredEntry, Table};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use base64::Engine as _;
use mesh_model::{ConfigEntry, EntryKind, IntentionAction, ServiceIntentions, SourceIntention};
use mesh_semantics::intention::{IntentionSet, MatchBy};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What the handlers share.
pub struct Ctx {
    pub store: Store,
    /// When each session with a TTL expires, unless renewed.
    pub session_deadlines: std::sync::Mutex<BTreeMap<String, tokio::time::Instant>>,
    /// State of the generator for blocking-query jitter; seeded by the server's options so a
    /// simulation can replay it.
    pub jitter: mesh_seed::SharedSplitMix64,
    pub acl: crate::acl::AclConfig,
    pub datacenter: String,
    pub node: String,
    /// Leaves handed out, by service: reused until they are due for renewal or the root
    /// changes (the agent cache's behaviour).
    pub leaves: std::sync::Mutex<BTreeMap<String, CachedLeaf>>,
    pub faults: Option<FaultInjector>,
    /// The clock, identifiers and keys.
    pub env: crate::env::Env,
}

/// A leaf handed out: the index it was issued at, the root that signed it, and when it is
/// renewed (three quarters into the lifetime left when it was issued).
#[derive(Debug, Clone)]
pub struct CachedLeaf {
    pub leaf: mesh_ca::Leaf,
    pub index: u64,
    pub root: String,
    pub renew_at: SystemTime,
}

/// Faults on a seeded fraction of requests, in three kinds: a 503 before the request is
/// handled, a delay before it is handled, and a connection dropped after it was handled (the
/// client cannot tell whether its write happened: the hardest case for a retrying client).
pub struct FaultInjector {
    rate: f64,
    state: mesh_seed::SharedSplitMix64,
}

enum Fault {
    Unavailable,
    Delay,
    DropAfter,
}

impl FaultInjector {
    pub fn new(rate: f64, seed: u64) -> FaultInjector {
        FaultInjector {
            rate: rate.clamp(0.0, 1.0),
            state: mesh_seed::SharedSplitMix64::new(seed ^ 0x5EED_FA17),
        }
    }

    fn next(&self) -> Option<Fault> {
        let x = self.state.with(|g| g.next_f64());
        if x >= self.rate {
            return None;
        }
        Some(match (x / self.rate * 3.0) as u32 {
            0 => Fault::Unavailable,
            1 => Fault::Delay,
            _ => Fault::DropAfter,
        })
    }
}

async fn inject_faults(
    State(ctx): State<Arc<Ctx>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let fault = ctx.faults.as_ref().and_then(FaultInjector::next);
    match fault {
        None => next.run(request).await,
        Some(Fault::Unavailable) => text(StatusCode::SERVICE_UNAVAILABLE, "injected fault"),
        Some(Fault::Delay) => {
            tokio::time::sleep(Duration::from_millis(150)).await;
            next.run(request).await
        }
        Some(Fault::DropAfter) => {
            let response = next.run(request).await;
            let (parts, _) = response.into_parts();
            // A body that fails at once: the server aborts the connection after the headers.
            let broken = futures_util::stream::once(async {
                Err::<Bytes, _>(std::io::Error::other("injected connection drop"))
            });
            Response::from_parts(parts, axum::body::Body::from_stream(broken))
        }
    }
}

pub fn router(ctx: Arc<Ctx>) -> Router {
    let faults = ctx.faults.is_some();
    let router = routes(ctx.clone());
    if faults {
        router.layer(axum::middleware::from_fn_with_state(ctx, inject_faults))
    } else {
        router
    }
}

fn routes(ctx: Arc<Ctx>) -> Router {
    Router::new()
        .route("/v1/config", put(config_put))
        .route("/v1/config/{kind}", get(config_list))
        .route(
            "/v1/config/{kind}/{name}",
            get(config_get).delete(config_delete),
        )
        .route("/v1/connect/intentions", get(intentions_list))
        .route("/v1/connect/intentions/check", get(intentions_check))
        .route("/v1/connect/intentions/match", get(intentions_match))
        .route(
            "/v1/connect/intentions/exact",
            get(exact_get).put(exact_put).delete(exact_delete),
        )
        .route("/v1/agent/connect/authorize", post(authorize))
        .route("/v1/kv/{*key}", get(kv_get).put(kv_put).delete(kv_delete))
        .route("/v1/session/create", put(session_create))
        .route("/v1/session/destroy/{id}", put(session_destroy))
        .route("/v1/session/info/{id}", get(session_info))
        .route("/v1/session/renew/{id}", put(session_renew))
        .route("/v1/session/list", get(session_list))
        .route("/v1/connect/ca/roots", get(ca_roots))
        .route(
            "/v1/connect/ca/configuration",
            get(ca_config_get).put(ca_config_put),
        )
        .route("/v1/agent/connect/ca/leaf/{service}", get(leaf))
        .route(
            "/v1/agent/service/register",
            put(crate::catalog::agent_register),
        )
        .route(
            "/v1/agent/service/deregister/{id}",
            put(crate::catalog::agent_deregister),
        )
        .route(
            "/v1/catalog/register",
            put(crate::catalog::catalog_register),
        )
        .route(
            "/v1/catalog/deregister",
            put(crate::catalog::catalog_deregister),
        )
        .route(
            "/v1/catalog/services",
            get(crate::catalog::catalog_services),
        )
        .route(
            "/v1/catalog/service/{name}",
            get(crate::catalog::catalog_service),
        )
        .route(
            "/v1/health/connect/{name}",
            get(crate::catalog::health_connect),
        )
        .route("/v1/acl/bootstrap", put(crate::acl::bootstrap))
        .route("/v1/acl/policy", put(crate::acl::policy_create))
        .route(
            "/v1/acl/policy/name/{name}",
            get(crate::acl::policy_by_name),
        )
        .route(
            "/v1/acl/policy/{id}",
            get(crate::acl::policy_read)
                .put(crate::acl::policy_update)
                .delete(crate::acl::policy_delete),
        )
        .route("/v1/acl/policies", get(crate::acl::policy_list))
        .route("/v1/acl/role", put(crate::acl::role_create))
        .route("/v1/acl/role/name/{name}", get(crate::acl::role_by_name))
        .route(
            "/v1/acl/role/{id}",
            get(crate::acl::role_read)
                .put(crate::acl::role_update)
                .delete(crate::acl::role_delete),
        )
        .route("/v1/acl/roles", get(crate::acl::role_list))
        .route("/v1/acl/token", put(crate::acl::token_create))
        .route("/v1/acl/token/self", get(crate::acl::token_self))
        .route(
            "/v1/acl/token/{accessor}",
            get(crate::acl::token_read)
                .put(crate::acl::token_update)
                .delete(crate::acl::token_delete),
        )
        .route("/v1/acl/tokens", get(crate::acl::token_list))
        .route("/v1/status/leader", get(leader))
        .route("/v1/agent/self", get(agent_self))
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

fn q1<'a>(q: &'a Q, k: &str) -> Option<&'a str> {
    q.get(k).and_then(|v| v.first()).map(String::as_str)
}

pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, body.into()).into_response()
}

fn with_index(mut r: Response, index: u64) -> Response {
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

pub(crate) fn bool_body(b: bool) -> Response {
    text(StatusCode::OK, if b { "true" } else { "false" })
}

fn parse_uint(v: &str) -> Result<u64, Response> {
    v.parse::<u64>().map_err(|_| {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("strconv.ParseUint: parsing {v:?}: invalid syntax"),
        )
    })
}

/// `?index=&wait=`: waits until the table's index passes `index`, or the wait ends.
pub(crate) async fn block(ctx: &Ctx, table: Table, q: &Q) -> Result<(), Response> {
    let Some(index) = q1(q, "index") else {
        return Ok(());
    };
    let index = index
        .parse::<u64>()
        .map_err(|_| text(StatusCode::BAD_REQUEST, "Invalid index"))?
        .max(1);
    let deadline = deadline(ctx, q)?;
    let mut rx = ctx.store.subscribe();
    loop {
        if ctx.store.lock().table_index(table) > index {
            return Ok(());
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => continue,
            _ => return Ok(()),
        }
    }
}

/// When a blocking query gives up: `?wait=` (default 5 minutes, at most 10) plus up to a
/// sixteenth of it as jitter, as Consul adds so watchers do not all return at once.
fn deadline(ctx: &Ctx, q: &Q) -> Result<tokio::time::Instant, Response> {
    let wait = match q1(q, "wait") {
        None => Duration::from_secs(300),
        Some(w) => mesh_semantics::ca_config::parse_duration(w)
            .map_err(|_| text(StatusCode::BAD_REQUEST, "Invalid wait time"))?
            .min(Duration::from_secs(600)),
    };
    Ok(tokio::time::Instant::now() + wait + jitter(ctx, wait / 16))
}

/// A duration in `[0, max)` from the server's seeded splitmix64 generator.
fn jitter(ctx: &Ctx, max: Duration) -> Duration {
    ctx.jitter.with(|g| g.duration_below(max))
}

fn store_error(e: crate::store::StoreError) -> Response {
    text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// The caller, or the response refusing it.
fn who(
    ctx: &Ctx,
    headers: &HeaderMap,
    raw: &Option<String>,
) -> Result<crate::acl::Caller, Response> {
    crate::acl::caller(ctx, headers, raw)
}

/// The permission writing (or deleting) a config entry needs.
fn require_entry_write(c: &crate::acl::Caller, kind: &str, name: &str) -> Result<(), Response> {
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

fn entry_readable(c: &crate::acl::Caller, kind: &str, name: &str) -> bool {
    match kind {
        "service-intentions" => c.authz.intention_read(name),
        "service-defaults" | "service-router" | "service-splitter" | "service-resolver" => {
            c.authz.service_read(name)
        }
        _ => true,
    }
}

/// The decision when no intention matches: allow with ACLs off, else the ACL default.
fn default_allow(ctx: &Ctx) -> bool {
    !ctx.acl.enabled || ctx.acl.default_allow
}

// === config entries ===

fn decode_body(body: &[u8]) -> Result<ConfigEntry, Response> {
    let text_body = std::str::from_utf8(body).map_err(|_| {
        text(
            StatusCode::BAD_REQUEST,
            "Request decoding failed: body is not UTF-8",
        )
    })?;
    let node = mesh_syntax::parse_json(mesh_diagnostics::FileId(0), text_body).map_err(|d| {
        text(
            StatusCode::BAD_REQUEST,
            format!("Request decoding failed: {}", messages(&d)),
        )
    })?;
    mesh_loader::decode_config_entry(&node).map_err(|d| {
        text(
            StatusCode::BAD_REQUEST,
            format!("Request decoding failed: {}", messages(&d)),
        )
    })
}

fn messages(d: &[mesh_diagnostics::Diagnostic]) -> String {
    d.iter()
        .filter(|d| d.is_error())
        .map(|d| d.message.clone())
        .collect::<Vec<_>>()
        .join("; ")
}

fn entry_json(s: &StoredEntry) -> Value {
    let mut v = s.entry.to_json();
    v["CreateIndex"] = json!(s.create_index);
    v["ModifyIndex"] = json!(s.modify_index);
    v
}

/// Validates an entry against Consul's rules and the whole proposed set (the write is
/// rejected with a 500 and Consul's message).
fn validate_with(proposed: &[ConfigEntry], entry: Option<&ConfigEntry>) -> Result<(), Response> {
    if let Some(e) = entry {
        if let Some(d) = mesh_semantics::config_entry::validate(e)
            .into_iter()
            .find(|d| d.is_error())
        {
            return Err(text(StatusCode::INTERNAL_SERVER_ERROR, d.message));
        }
    }
    if let Some(d) = mesh_semantics::config_entry::validate_graph(proposed)
        .into_iter()
        .next()
    {
        return Err(text(StatusCode::INTERNAL_SERVER_ERROR, d.message));
    }
    Ok(())
}

fn put_entry(ctx: &Ctx, mut entry: ConfigEntry, cas: Option<u64>) -> Result<bool, Response> {
    mesh_semantics::config_entry::normalize(&mut entry);
    let key = (entry.kind().as_str().to_owned(), entry.name().to_owned());
    let mut s = ctx.store.lock();
    let existing = s.config.get(&key);
    let outcome =
        mesh_semantics::cas::decide_put(existing.map(|e| (e.modify_index, &e.entry)), cas, &entry);
    match outcome {
        mesh_semantics::cas::CasOutcome::Skip => return Ok(true),
        mesh_semantics::cas::CasOutcome::Conflict => return Ok(false),
        mesh_semantics::cas::CasOutcome::Write => {}
    }
    let mut proposed: Vec<ConfigEntry> = s
        .config
        .iter()
        .filter(|(k, _)| **k != key)
        .map(|(_, v)| v.entry.clone())
        .collect();
    proposed.push(entry.clone());
    validate_with(&proposed, Some(&entry))?;
    let create = existing.map(|e| e.create_index);
    let index = Store::next_index(&mut s);
    let stored = StoredEntry {
        entry,
        create_index: create.unwrap_or(index),
        modify_index: index,
    };
    let mut batch = Batch::default();
    batch.put(
        config_key(&key.0, &key.1),
        encode_entry(&stored),
        Table::Config,
    );
    s.config.insert(key, stored);
    ctx.store.commit(&mut s, batch).map_err(store_error)?;
    Ok(true)
}

async fn config_put(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let q = query(&raw);
    let caller = match who(&ctx, &headers, &raw) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let entry = match decode_body(&body) {
        Ok(e) => e,
        Err(r) => return r,
    };
    // Consul validates before it checks the ACL; both precede the write.
    if let Some(d) = mesh_semantics::config_entry::validate(&entry)
        .into_iter()
        .find(|d| d.is_error())
    {
        return text(StatusCode::INTERNAL_SERVER_ERROR, d.message);
    }
    if let Err(r) = require_entry_write(&caller, entry.kind().as_str(), entry.name()) {
        return r;
    }
    let cas = match q1(&q, "cas").map(parse_uint).transpose() {
        Ok(c) => c,
        Err(r) => return r,
    };
    // The durable commit blocks on the disk: keep it off the async workers. In memory there is
    // nothing to wait for (and a simulation must not leave its thread).
    if !ctx.store.is_durable() {
        return match put_entry(&ctx, entry, cas) {
            Ok(b) => bool_body(b),
            Err(r) => r,
        };
    }
    let result = tokio::task::spawn_blocking(move || put_entry(&ctx, entry, cas)).await;
    match result {
        Ok(Ok(b)) => bool_body(b),
        Ok(Err(r)) => r,
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("write failed: {e}"),
        ),
    }
}

fn known_kind(kind: &str) -> Result<EntryKind, Response> {
    EntryKind::parse(kind).ok_or_else(|| {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("invalid config entry kind: {kind}"),
        )
    })
}

async fn config_list(
    State(ctx): State<Arc<Ctx>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(&raw);
    let caller = match who(&ctx, &headers, &raw) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = known_kind(&kind) {
        return r;
    }
    if let Err(r) = block(&ctx, Table::Config, &q).await {
        return r;
    }
    let s = ctx.store.lock();
    let list: Vec<Value> = s
        .config
        .iter()
        .filter(|((k, n), _)| *k == kind && entry_readable(&caller, k, n))
        .map(|(_, v)| entry_json(v))
        .collect();
    json_at(Value::Array(list), s.table_index(Table::Config))
}

async fn config_get(
    State(ctx): State<Arc<Ctx>>,
    Path((kind, name)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(&raw);
    match who(&ctx, &headers, &raw) {
        Ok(c) if !entry_readable(&c, &kind, &name) => {
            return crate::acl::denied(
                &c,
                if kind == "service-intentions" {
                    "intentions:read"
                } else {
                    "service:read"
                },
                &name,
            )
        }
        Ok(_) => {}
        Err(r) => return r,
    }
    if let Err(r) = known_kind(&kind) {
        return r;
    }
    if let Err(r) = block(&ctx, Table::Config, &q).await {
        return r;
    }
    let s = ctx.store.lock();
    match s.config.get(&(kind.clone(), name.clone())) {
        Some(e) => json_at(entry_json(e), s.table_index(Table::Config)),
        None => with_index(
            text(
                StatusCode::NOT_FOUND,
                format!("Config entry not found for {kind:?} / {name:?}"),
            ),
            s.table_index(Table::Config),
        ),
    }
}

async fn config_delete(
    State(ctx): State<Arc<Ctx>>,
    Path((kind, name)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(&raw);
    if EntryKind::parse(&kind).is_none() {
        return text(
            StatusCode::BAD_REQUEST,
            format!("invalid config entry kind: {kind}"),
        );
    }
    match who(&ctx, &headers, &raw) {
        Ok(c) => {
            if let Err(r) = require_entry_write(&c, &kind, &name) {
                return r;
            }
        }
        Err(r) => return r,
    }
    let cas = match q1(&q, "cas").map(parse_uint).transpose() {
        Ok(c) => c,
        Err(r) => return r,
    };
    let key = (kind.clone(), name.clone());
    let mut s = ctx.store.lock();
    let existing = s.config.get(&key).map(|e| e.modify_index);
    let reply = |ok: bool| {
        if cas.is_some() {
            bool_body(ok)
        } else {
            json_at(json!({}), 0)
        }
    };
    match mesh_semantics::cas::decide_delete(existing, cas) {
        mesh_semantics::cas::CasOutcome::Skip => return reply(true),
        mesh_semantics::cas::CasOutcome::Conflict => return reply(false),
        mesh_semantics::cas::CasOutcome::Write => {}
    }
    let proposed: Vec<ConfigEntry> = s
        .config
        .iter()
        .filter(|(k, _)| **k != key)
        .map(|(_, v)| v.entry.clone())
        .collect();
    if let Err(r) = validate_with(&proposed, None) {
        return r;
    }
    Store::next_index(&mut s);
    s.config.remove(&key);
    let mut batch = Batch::default();
    batch.delete(config_key(&kind, &name), Table::Config);
    if let Err(e) = ctx.store.commit(&mut s, batch) {
        return store_error(e);
    }
    reply(true)
}

// === intentions ===

fn intention_set(s: &crate::store::State) -> IntentionSet {
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

fn all_intentions(s: &crate::store::State) -> Vec<(u32, String, String, Value)> {
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

async fn intentions_list(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(&raw);
    let caller = match who(&ctx, &headers, &raw) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = block(&ctx, Table::Config, &q).await {
        return r;
    }
    let s = ctx.store.lock();
    // Intentions the token cannot read are left out, as Consul filters them.
    let list: Vec<Value> = all_intentions(&s)
        .into_iter()
        .filter(|x| caller.authz.intention_read(&x.2))
        .map(|x| x.3)
        .collect();
    json_at(Value::Array(list), s.table_index(Table::Config))
}

fn required<'a>(q: &'a Q, k: &str) -> Result<&'a str, Response> {
    q1(q, k).ok_or_else(|| {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("required query parameter '{k}' not set"),
        )
    })
}

/// `ns/name` or `name`; only the default namespace exists in CE.
fn service_name(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

async fn intentions_check(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(&raw);
    let caller = match who(&ctx, &headers, &raw) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (src, dst) = match (required(&q, "source"), required(&q, "destination")) {
        (Ok(s), Ok(d)) => (service_name(s).to_owned(), service_name(d).to_owned()),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if let Err(r) = caller.require(
        mesh_semantics::acl::Resource::Service,
        &dst,
        mesh_semantics::acl::Access::Read,
    ) {
        return r;
    }
    let s = ctx.store.lock();
    let d = intention_set(&s).decide(&src, &dst, default_allow(&ctx));
    json_at(
        json!({ "Allowed": d.allowed }),
        s.table_index(Table::Config),
    )
}

async fn intentions_match(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(&raw);
    let caller = match who(&ctx, &headers, &raw) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let by = match q1(&q, "by") {
        Some("source") => MatchBy::Source,
        Some("destination") => MatchBy::Destination,
        Some(other) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("'by' parameter must be one of 'source' or 'destination', got {other:?}"),
            )
        }
        None => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "required query parameter 'by' not set",
            )
        }
    };
    let Some(names) = q.get("name") else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "required query parameter 'name' not set",
        );
    };
    if let Err(r) = block(&ctx, Table::Config, &q).await {
        return r;
    }
    let s = ctx.store.lock();
    let set = intention_set(&s);
    let all = all_intentions(&s);
    let mut out = serde_json::Map::new();
    for name in names {
        let n = service_name(name);
        if !caller.authz.intention_read(n) {
            return crate::acl::denied(&caller, "intentions:read", n);
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
    json_at(Value::Object(out), s.table_index(Table::Config))
}

async fn exact_get(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(&raw);
    let (src, dst) = match (required(&q, "source"), required(&q, "destination")) {
        (Ok(s), Ok(d)) => (service_name(s).to_owned(), service_name(d).to_owned()),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match who(&ctx, &headers, &raw) {
        Ok(c) if !c.authz.intention_read(&dst) => {
            return crate::acl::denied(&c, "intentions:read", &dst)
        }
        Ok(_) => {}
        Err(r) => return r,
    }
    let s = ctx.store.lock();
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
        Some(v) => json_at(v, s.table_index(Table::Config)),
        None => with_index(
            text(StatusCode::NOT_FOUND, "Intention not found"),
            s.table_index(Table::Config),
        ),
    }
}

async fn exact_put(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let q = query(&raw);
    let (src, dst) = match (required(&q, "source"), required(&q, "destination")) {
        (Ok(s), Ok(d)) => (service_name(s).to_owned(), service_name(d).to_owned()),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match who(&ctx, &headers, &raw) {
        Ok(c) => {
            if let Err(r) = require_entry_write(&c, "service-intentions", &dst) {
                return r;
            }
        }
        Err(r) => return r,
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Request decode failed: {e}"),
            )
        }
    };
    let action = match v.get("Action").and_then(Value::as_str) {
        None | Some("") => None,
        Some("allow") => Some(IntentionAction::Allow),
        Some("deny") => Some(IntentionAction::Deny),
        Some(_) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sources[0].Action must be set to 'allow' or 'deny'",
            )
        }
    };
    let permissions = match v.get("Permissions") {
        None | Some(Value::Null) => Vec::new(),
        Some(p) => match serde_json::from_value(p.clone()) {
            Ok(p) => p,
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("Request decode failed: {e}"),
                )
            }
        },
    };
    let source = SourceIntention {
        name: src.clone(),
        action,
        permissions,
        description: v
            .get("Description")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        r#type: "consul".into(),
        ..SourceIntention::default()
    };
    let mut entry = {
        let s = ctx.store.lock();
        match s
            .config
            .get(&("service-intentions".to_owned(), dst.clone()))
            .map(|e| e.entry.clone())
        {
            Some(ConfigEntry::ServiceIntentions(i)) => i,
            _ => ServiceIntentions {
                name: dst.clone(),
                ..ServiceIntentions::default()
            },
        }
    };
    entry
        .sources
        .retain(|x| !(x.name == src && x.peer.is_none()));
    entry.sources.push(source);
    match put_entry(&ctx, ConfigEntry::ServiceIntentions(entry), None) {
        Ok(b) => bool_body(b),
        Err(r) => r,
    }
}

async fn exact_delete(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(&raw);
    let (src, dst) = match (required(&q, "source"), required(&q, "destination")) {
        (Ok(s), Ok(d)) => (service_name(s).to_owned(), service_name(d).to_owned()),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match who(&ctx, &headers, &raw) {
        Ok(c) => {
            if let Err(r) = require_entry_write(&c, "service-intentions", &dst) {
                return r;
            }
        }
        Err(r) => return r,
    }
    let current = ctx
        .store
        .lock()
        .config
        .get(&("service-intentions".to_owned(), dst.clone()))
        .map(|e| e.entry.clone());
    let Some(ConfigEntry::ServiceIntentions(mut entry)) = current else {
        return bool_body(true);
    };
    entry
        .sources
        .retain(|x| !(x.name == src && x.peer.is_none()));
    if entry.sources.is_empty() {
        // Deleting the last source deletes the whole entry.
        let r = config_delete(
            State(ctx),
            Path(("service-intentions".to_owned(), dst)),
            headers,
            RawQuery(raw),
        )
        .await;
        return if r.status().is_success() {
            bool_body(true)
        } else {
            r
        };
    }
    match put_entry(&ctx, ConfigEntry::ServiceIntentions(entry), None) {
        Ok(b) => bool_body(b),
        Err(r) => r,
    }
}

async fn authorize(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let caller = match who(&ctx, &headers, &raw) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Request decode failed: {e}"),
            )
        }
    };
    let Some(target) = v
        .get("Target")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    else {
        return text(StatusCode::BAD_REQUEST, "Target service must be specified");
    };
    let uri = v.get("ClientCertURI").and_then(Value::as_str).unwrap_or("");
    if !uri.starts_with("spiffe://") {
        return text(
            StatusCode::BAD_REQUEST,
            "ClientCertURI not a valid Connect identifier",
        );
    }
    let Some((_, _, source)) = mesh_ca::parse_spiffe_service(uri) else {
        return text(
            StatusCode::BAD_REQUEST,
            "ClientCertURI not a valid Service identifier",
        );
    };
    if let Err(r) = caller.require(
        mesh_semantics::acl::Resource::Service,
        target,
        mesh_semantics::acl::Access::Write,
    ) {
        return r;
    }
    let s = ctx.store.lock();
    let d = intention_set(&s).decide(&source, target, default_allow(&ctx));
    json_at(
        json!({ "Authorized": d.allowed, "Reason": d.reason }),
        s.table_index(Table::Config),
    )
}

// === KV and sessions ===

fn kv_json(key: &str, e: &KvEntry) -> Value {
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

async fn kv_get(
    State(ctx): State<Arc<Ctx>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(&raw);
    let caller = match who(&ctx, &headers, &raw) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !q.contains_key("recurse") && !q.contains_key("keys") && !caller.authz.key_read(&key) {
        return crate::acl::denied(&caller, "key:read", &key);
    }
    if let Err(r) = block(&ctx, Table::Kv, &q).await {
        return r;
    }
    let s = ctx.store.lock();
    let index = s.table_index(Table::Kv);
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
            return with_index(StatusCode::NOT_FOUND.into_response(), index);
        }
        return json_at(json!(keys), index);
    }
    if q.contains_key("recurse") {
        let list: Vec<Value> =
            s.kv.iter()
                .filter(|(k, _)| k.starts_with(&key) && caller.authz.key_read(k))
                .map(|(k, e)| kv_json(k, e))
                .collect();
        if list.is_empty() {
            return with_index(StatusCode::NOT_FOUND.into_response(), index);
        }
        return json_at(Value::Array(list), index);
    }
    match s.kv.get(&key) {
        Some(e) if q.contains_key("raw") => {
            with_index((StatusCode::OK, e.value.clone()).into_response(), index)
        }
        Some(e) => json_at(json!([kv_json(&key, e)]), index),
        None => with_index(StatusCode::NOT_FOUND.into_response(), index),
    }
}

async fn kv_put(
    State(ctx): State<Arc<Ctx>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let q = query(&raw);
    match who(&ctx, &headers, &raw) {
        Ok(c) if !c.authz.key_write(&key) => return crate::acl::denied(&c, "key:write", &key),
        Ok(_) => {}
        Err(r) => return r,
    }
    let parse = |k: &str| q1(&q, k).map(parse_uint).transpose();
    let (cas, flags) = match (parse("cas"), parse("flags")) {
        (Ok(c), Ok(f)) => (c, f),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let mut s = ctx.store.lock();
    let existing = s.kv.get(&key).cloned();
    if let Some(c) = cas {
        let ok = match (&existing, c) {
            (None, 0) => true,
            (Some(e), c) => e.modify_index == c && c != 0,
            (None, _) => false,
        };
        if !ok {
            return bool_body(false);
        }
    }
    let mut session = existing.as_ref().and_then(|e| e.session.clone());
    let mut lock_index = existing.as_ref().map(|e| e.lock_index).unwrap_or(0);
    if let Some(id) = q1(&q, "acquire") {
        if !s.sessions.contains_key(id) {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("invalid session {id:?}"),
            );
        }
        match &session {
            Some(holder) if holder != id => return bool_body(false),
            Some(_) => {}
            None => {
                session = Some(id.to_owned());
                lock_index += 1;
            }
        }
    }
    if let Some(id) = q1(&q, "release") {
        if session.as_deref() != Some(id) {
            return bool_body(false);
        }
        session = None;
    }
    let index = Store::next_index(&mut s);
    let entry = KvEntry {
        value: body.to_vec(),
        flags: flags.unwrap_or(existing.as_ref().map(|e| e.flags).unwrap_or(0)),
        session,
        lock_index,
        create_index: existing.as_ref().map(|e| e.create_index).unwrap_or(index),
        modify_index: index,
    };
    let mut batch = Batch::default();
    batch.put(
        format!("kv/{key}"),
        serde_json::to_vec(&entry).unwrap_or_default(),
        Table::Kv,
    );
    s.kv.insert(key, entry);
    match ctx.store.commit(&mut s, batch) {
        Ok(()) => bool_body(true),
        Err(e) => store_error(e),
    }
}

async fn kv_delete(
    State(ctx): State<Arc<Ctx>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(&raw);
    match who(&ctx, &headers, &raw) {
        Ok(c) => {
            let ok = if q.contains_key("recurse") {
                c.authz.key_write_prefix(&key)
            } else {
                c.authz.key_write(&key)
            };
            if !ok {
                return crate::acl::denied(&c, "key:write", &key);
            }
        }
        Err(r) => return r,
    }
    let cas = match q1(&q, "cas").map(parse_uint).transpose() {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut s = ctx.store.lock();
    let keys: Vec<String> = if q.contains_key("recurse") {
        s.kv.keys()
            .filter(|k| k.starts_with(&key))
            .cloned()
            .collect()
    } else {
        s.kv.get(&key)
            .map(|_| vec![key.clone()])
            .unwrap_or_default()
    };
    if let Some(c) = cas {
        if s.kv.get(&key).map(|e| e.modify_index) != Some(c) {
            return bool_body(false);
        }
    }
    if keys.is_empty() {
        return bool_body(true);
    }
    Store::next_index(&mut s);
    let mut batch = Batch::default();
    for k in keys {
        s.kv.remove(&k);
        batch.delete(format!("kv/{k}"), Table::Kv);
    }
    match ctx.store.commit(&mut s, batch) {
        Ok(()) => bool_body(true),
        Err(e) => store_error(e),
    }
}

fn session_json(s: &Session) -> Value {
    json!({
        "ID": s.id, "Name": s.name, "Node": s.node, "TTL": s.ttl, "Behavior": s.behavior,
        "LockDelay": s.lock_delay_ns, "NodeChecks": ["serfHealth"], "ServiceChecks": null,
        "CreateIndex": s.create_index, "ModifyIndex": s.modify_index,
    })
}

async fn session_create(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    match who(&ctx, &headers, &raw) {
        Ok(c) if !c.authz.session_write(&ctx.node) => {
            return crate::acl::denied(&c, "session:write", &ctx.node)
        }
        Ok(_) => {}
        Err(r) => return r,
    }
    let v: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("Request decode failed: {e}"),
                )
            }
        }
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
    let behavior = Some(field("behavior"))
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "release".into());
    if behavior != "release" && behavior != "delete" {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Invalid Behavior setting {behavior:?}"),
        );
    }
    let ttl = field("ttl");
    if !ttl.is_empty() {
        match mesh_semantics::ca_config::parse_duration(&ttl) {
            Ok(d) if d >= Duration::from_secs(10) && d <= Duration::from_secs(86_400) => {}
            _ => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("Invalid Session TTL '{ttl}': must be between 10s and 24h0m0s"),
                )
            }
        }
    }
    let mut s = ctx.store.lock();
    let index = Store::next_index(&mut s);
    let id = ctx.env.ids.next();
    let session = Session {
        id: id.clone(),
        name: field("name"),
        node: Some(field("node"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| ctx.node.clone()),
        ttl,
        behavior,
        lock_delay_ns: 15_000_000_000,
        create_index: index,
        modify_index: index,
    };
    arm_session(&ctx, &session);
    let mut batch = Batch::default();
    batch.put(
        format!("sess/{id}"),
        serde_json::to_vec(&session).unwrap_or_default(),
        Table::Sessions,
    );
    s.sessions.insert(id.clone(), session);
    match ctx.store.commit(&mut s, batch) {
        Ok(()) => json_at(json!({ "ID": id }), index),
        Err(e) => store_error(e),
    }
}

async fn session_destroy(State(ctx): State<Arc<Ctx>>, Path(id): Path<String>) -> Response {
    match destroy_session(&ctx, &id) {
        Ok(()) => bool_body(true),
        Err(e) => store_error(e),
    }
}

/// Removes a session and releases (or deletes, per its behaviour) the locks it holds.
pub(crate) fn destroy_session(ctx: &Ctx, id: &str) -> Result<(), crate::store::StoreError> {
    ctx.session_deadlines
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(id);
    let mut s = ctx.store.lock();
    let Some(session) = s.sessions.get(id).cloned() else {
        return Ok(());
    };
    Store::next_index(&mut s);
    let index = s.index;
    let mut batch = Batch::default();
    s.sessions.remove(id);
    batch.delete(format!("sess/{id}"), Table::Sessions);
    // Locks held by the session are released, or their keys deleted.
    let held: Vec<String> =
        s.kv.iter()
            .filter(|(_, e)| e.session.as_deref() == Some(id))
            .map(|(k, _)| k.clone())
            .collect();
    for k in held {
        if session.behavior == "delete" {
            s.kv.remove(&k);
            batch.delete(format!("kv/{k}"), Table::Kv);
        } else if let Some(e) = s.kv.get_mut(&k) {
            e.session = None;
            e.modify_index = index;
            let bytes = serde_json::to_vec(&*e).unwrap_or_default();
            batch.put(format!("kv/{k}"), bytes, Table::Kv);
        }
    }
    ctx.store.commit(&mut s, batch)
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

fn prune_roots(ctx: &Ctx) {
    let mut s = ctx.store.lock();
    let removed = s.ca.as_mut().map(|ca| ca.prune(ctx.env.now())).unwrap_or(0);
    if removed > 0 {
        Store::next_index(&mut s);
        let mut batch = Batch::default();
        batch.put(
            "ca/state".into(),
            serde_json::to_vec(&s.ca).unwrap_or_default(),
            Table::Ca,
        );
        // A failed write leaves the roots for the next pass.
        let _ = ctx.store.commit(&mut s, batch);
    }
}

/// Destroys sessions whose TTL ran out, and prunes rotated CA roots; runs until the server
/// stops.
pub(crate) async fn reap_sessions(ctx: Arc<Ctx>) {
    // Sessions restored from disk get a fresh TTL, as after a Consul leader election.
    let restored: Vec<Session> = ctx.store.lock().sessions.values().cloned().collect();
    for s in &restored {
        arm_session(&ctx, s);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks += 1;
        // Once a minute: drop CA roots rotated out more than twice the leaf TTL ago.
        if ticks.is_multiple_of(240) {
            prune_roots(&ctx);
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

async fn session_info(State(ctx): State<Arc<Ctx>>, Path(id): Path<String>) -> Response {
    let s = ctx.store.lock();
    let list: Vec<Value> = s.sessions.get(&id).map(session_json).into_iter().collect();
    json_at(Value::Array(list), s.table_index(Table::Sessions))
}

async fn session_renew(State(ctx): State<Arc<Ctx>>, Path(id): Path<String>) -> Response {
    let s = ctx.store.lock();
    match s.sessions.get(&id) {
        Some(session) => {
            arm_session(&ctx, session);
            json_at(
                json!([session_json(session)]),
                s.table_index(Table::Sessions),
            )
        }
        None => text(
            StatusCode::NOT_FOUND,
            format!("Session id '{id}' not found"),
        ),
    }
}

async fn session_list(State(ctx): State<Arc<Ctx>>) -> Response {
    let s = ctx.store.lock();
    let list: Vec<Value> = s.sessions.values().map(session_json).collect();
    json_at(Value::Array(list), s.table_index(Table::Sessions))
}

// === CA ===

async fn ca_roots(State(ctx): State<Arc<Ctx>>, RawQuery(raw): RawQuery) -> Response {
    let q = query(&raw);
    if let Err(r) = block(&ctx, Table::Ca, &q).await {
        return r;
    }
    let s = ctx.store.lock();
    match &s.ca {
        Some(ca) => json_at(
            serde_json::to_value(ca.roots()).unwrap_or(Value::Null),
            s.table_index(Table::Ca),
        ),
        None => text(StatusCode::INTERNAL_SERVER_ERROR, "CA not initialized"),
    }
}

async fn ca_config_get(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(&raw);
    match who(&ctx, &headers, &raw) {
        Ok(c) if !c.authz.operator_write() => return crate::acl::denied(&c, "operator:write", ""),
        Ok(_) => {}
        Err(r) => return r,
    }
    if let Err(r) = block(&ctx, Table::Ca, &q).await {
        return r;
    }
    let s = ctx.store.lock();
    match &s.ca_config {
        Some(c) => json_at(
            json!({
                "Provider": c.provider,
                "Config": c.config,
                "State": null,
                "ForceWithoutCrossSigning": c.force_without_cross_signing,
                "CreateIndex": c.create_index,
                "ModifyIndex": c.modify_index,
            }),
            s.table_index(Table::Ca),
        ),
        None => text(StatusCode::INTERNAL_SERVER_ERROR, "CA not initialized"),
    }
}

/// A new CA configuration: validated with Consul's rules; a key type or size change generates a
/// new root cross-signed by the old one.
async fn ca_config_put(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    match who(&ctx, &headers, &raw) {
        Ok(c) if !c.authz.operator_write() => return crate::acl::denied(&c, "operator:write", ""),
        Ok(_) => {}
        Err(r) => return r,
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Request decode failed: {e}"),
            )
        }
    };
    let provider = v
        .get("Provider")
        .and_then(Value::as_str)
        .unwrap_or("consul")
        .to_owned();
    let config = v
        .get("Config")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let force = v
        .get("ForceWithoutCrossSigning")
        .or_else(|| v.get("force_without_cross_signing"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let model = mesh_model::CaConfig {
        provider: provider.clone(),
        config: config.clone(),
        force_without_cross_signing: force,
        token_from: None,
        span: Default::default(),
    };
    // A Token or PrivateKey is fine over the API (it is how Consul receives them); the repository
    // rule against literal secrets does not apply here.
    if let Some(d) = mesh_semantics::ca_config::validate(&model)
        .into_iter()
        .find(|d| d.is_error() && d.code != mesh_diagnostics::Code::LiteralSecret)
    {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not initialize provider: {}", d.message),
        );
    }
    if provider != "consul" {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not initialize provider: the {provider} provider is not available in the embedded control plane"),
        );
    }
    let settings = match mesh_semantics::ca_config::CaSettings::from_config(&model) {
        Ok(s) => s,
        Err(d) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("could not initialize provider: {}", messages(&d)),
            )
        }
    };
    let params = mesh_ca::CaParams {
        leaf_ttl: settings.leaf_cert_ttl,
        root_ttl: settings.root_cert_ttl,
        key_type: settings.private_key_type.clone(),
        key_bits: settings.private_key_bits,
    };
    let mut s = ctx.store.lock();
    let Some(ca) = s.ca.as_mut() else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "CA not initialized");
    };
    if let Err(e) = ca.rotate(
        params,
        settings.root_cert.is_some(),
        ctx.env.now(),
        &*ctx.env.keys,
    ) {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not initialize provider: {e}"),
        );
    }
    let index = Store::next_index(&mut s);
    let create = s
        .ca_config
        .as_ref()
        .map(|c| c.create_index)
        .unwrap_or(index);
    let stored = crate::store::CaConfigStored {
        provider,
        config,
        force_without_cross_signing: force,
        create_index: create,
        modify_index: index,
    };
    let mut batch = Batch::default();
    batch.put(
        "ca/state".into(),
        serde_json::to_vec(&s.ca).unwrap_or_default(),
        Table::Ca,
    );
    batch.put(
        "ca/config".into(),
        serde_json::to_vec(&stored).unwrap_or_default(),
        Table::Ca,
    );
    s.ca_config = Some(stored);
    match ctx.store.commit(&mut s, batch) {
        Ok(()) => with_index(StatusCode::OK.into_response(), index),
        Err(e) => store_error(e),
    }
}

/// `GET /v1/agent/connect/ca/leaf/:service`, a blocking query like Consul's: with `?index=` it
/// answers when the leaf differs from the one issued at that index (a new root, or renewal
/// time), or when the wait ends.
async fn leaf(
    State(ctx): State<Arc<Ctx>>,
    Path(service): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    match who(&ctx, &headers, &raw) {
        Ok(c) if !c.authz.service_write(&service) => {
            return crate::acl::denied(&c, "service:write", &service)
        }
        Ok(_) => {}
        Err(r) => return r,
    }
    let q = query(&raw);
    let min_index = match q1(&q, "index").map(|i| i.parse::<u64>()).transpose() {
        Ok(i) => i,
        Err(_) => return text(StatusCode::BAD_REQUEST, "Invalid index"),
    };
    let deadline = match min_index.map(|_| deadline(&ctx, &q)).transpose() {
        Ok(d) => d,
        Err(r) => return r,
    };
    let mut rx = ctx.store.subscribe();
    loop {
        let (l, index, renew_in) = match current_leaf(&ctx, &service) {
            Ok(x) => x,
            Err(r) => return r,
        };
        let Some((min, deadline)) = min_index.zip(deadline) else {
            return leaf_response(&l, index);
        };
        if index != min || tokio::time::Instant::now() >= deadline {
            return leaf_response(&l, index);
        }
        // Until something changes (a rotation), renewal time, or the end of the wait.
        let until = deadline.min(tokio::time::Instant::now() + renew_in);
        if let Ok(Err(_)) = tokio::time::timeout_at(until, rx.changed()).await {
            return leaf_response(&l, index);
        }
    }
}

/// The service's current leaf, issued anew when there is none, the root changed or it is due
/// for renewal; with its index and the time left until renewal.
fn current_leaf(ctx: &Ctx, service: &str) -> Result<(mesh_ca::Leaf, u64, Duration), Response> {
    let now = ctx.env.now();
    let mut s = ctx.store.lock();
    let Some(ca) = s.ca.as_mut() else {
        return Err(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "CA not initialized",
        ));
    };
    let active = ca.active_root().map(|r| r.id.clone()).unwrap_or_default();
    let mut cache = ctx.leaves.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = cache.get(service) {
        if c.root == active {
            if let Ok(left) = c.renew_at.duration_since(now) {
                if !left.is_zero() {
                    return Ok((c.leaf.clone(), c.index, left));
                }
            }
        }
    }
    let l = ca
        .issue_leaf(service, &ctx.datacenter, now, &*ctx.env.keys)
        .map_err(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let index = Store::next_index(&mut s);
    let mut batch = Batch::default();
    // The serial counter moved: persist the CA state (the roots did not change).
    batch.put(
        "ca/state".into(),
        serde_json::to_vec(&s.ca).unwrap_or_default(),
        Table::Leaf,
    );
    ctx.store.commit(&mut s, batch).map_err(store_error)?;
    // Renewed three quarters into the lifetime left (at least a tenth of a second from now).
    let expires = std::time::UNIX_EPOCH + Duration::from_secs(l.valid_before_unix);
    let left = expires.duration_since(now).unwrap_or_default() * 3 / 4;
    let left = left.max(Duration::from_millis(100));
    cache.insert(
        service.to_owned(),
        CachedLeaf {
            leaf: l.clone(),
            index,
            root: active,
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

// === status ===

async fn leader() -> Response {
    axum::Json(json!("127.0.0.1:8300")).into_response()
}

async fn agent_self(State(ctx): State<Arc<Ctx>>) -> Response {
    axum::Json(json!({
        "Config": { "Datacenter": ctx.datacenter, "NodeName": ctx.node, "Server": true, "Version": "1.21.0" },
        "DebugConfig": { "ConnectEnabled": true },
        "Member": { "Name": ctx.node, "Addr": "127.0.0.1", "Port": 8301, "Status": 1 },
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Arc<Ctx> {
        Arc::new(Ctx {
            store: Store::in_memory(),
            session_deadlines: Default::default(),
            jitter: mesh_seed::SharedSplitMix64::new(1),
            acl: crate::acl::AclConfig {
                enabled: false,
                default_allow: true,
            },
            datacenter: "dc1".into(),
            node: "n1".into(),
            leaves: Default::default(),
            faults: None,
            env: crate::env::Env::system(),
        })
    }

    fn session(id: &str, ttl: &str) -> Session {
        Session {
            id: id.into(),
            name: String::new(),
            node: "n1".into(),
            ttl: ttl.into(),
            behavior: "release".into(),
            lock_delay_ns: 0,
            create_index: 1,
            modify_index: 1,
        }
    }

    async fn leaf_at(ctx: &Arc<Ctx>, query: Option<&str>) -> (u64, String) {
        let r = leaf(
            State(ctx.clone()),
            Path("web".into()),
            HeaderMap::new(),
            RawQuery(query.map(str::to_owned)),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        let index = r.headers()["X-Consul-Index"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        (index, v["SerialNumber"].as_str().unwrap().to_owned())
    }

    #[tokio::test(start_paused = true)]
    async fn the_leaf_is_a_blocking_query_on_the_injected_clock() {
        let start = std::time::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let now = Arc::new(std::sync::Mutex::new(start));
        let clock = now.clone();
        let mut c = Arc::into_inner(ctx()).unwrap();
        c.env = crate::env::Env {
            clock: Arc::new(move || *clock.lock().unwrap()),
            ids: crate::env::Ids::seeded(1),
            keys: Arc::new(mesh_ca::RandomKeys),
        };
        let ctx = Arc::new(c);
        ctx.store
            .ensure_ca(|| ctx.env.ids.next(), &*ctx.env.keys, ctx.env.now())
            .unwrap();
        let roots_index = ctx.store.lock().table_index(Table::Ca);
        let (index, serial) = leaf_at(&ctx, None).await;
        assert_eq!(
            ctx.store.lock().table_index(Table::Ca),
            roots_index,
            "signing a leaf leaves the roots' index alone"
        );
        // Nothing changes: the query waits out `wait` (tokio's clock) and answers the same leaf.
        let t = tokio::time::Instant::now();
        let q = format!("index={index}&wait=10s");
        assert_eq!(leaf_at(&ctx, Some(&q)).await, (index, serial.clone()));
        assert!(t.elapsed() >= Duration::from_secs(10));
        // Past three quarters of its lifetime (72h by default) on the injected clock: renewed.
        *now.lock().unwrap() = start + Duration::from_secs(55 * 3600);
        let (renewed, serial2) = leaf_at(&ctx, Some(&q)).await;
        assert!(renewed > index);
        assert_ne!(serial2, serial);
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_expire_after_twice_their_ttl_and_release_their_locks() {
        let ctx = ctx();
        {
            let mut s = ctx.store.lock();
            s.sessions.insert("a".into(), session("a", "10s"));
            s.sessions.insert("b".into(), session("b", ""));
            s.kv.insert(
                "leader".into(),
                KvEntry {
                    value: b"a".to_vec(),
                    flags: 0,
                    session: Some("a".into()),
                    lock_index: 1,
                    create_index: 1,
                    modify_index: 1,
                },
            );
        }
        let reaper = tokio::spawn(reap_sessions(ctx.clone()));
        tokio::time::sleep(Duration::from_secs(19)).await;
        assert!(
            ctx.store.lock().sessions.contains_key("a"),
            "still inside 2 x TTL"
        );
        // A renewal restarts the clock.
        let renewed = session("a", "10s");
        arm_session(&ctx, &renewed);
        tokio::time::sleep(Duration::from_secs(19)).await;
        assert!(ctx.store.lock().sessions.contains_key("a"));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let s = ctx.store.lock();
        assert!(!s.sessions.contains_key("a"), "expired");
        assert_eq!(s.kv["leader"].session, None, "its lock is released");
        assert!(
            s.sessions.contains_key("b"),
            "a session without TTL never expires"
        );
        drop(s);
        reaper.abort();
    }
}
