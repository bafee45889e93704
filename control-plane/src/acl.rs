//! ACL: token resolution, enforcement with the shared authorizer, and the policy, role and
//! token endpoints (consul-semantics section 3).

// As in `http`: helpers return the response to send as their error.
#![allow(clippy::result_large_err)]

use crate::http::{json_at, text, Ctx};
use crate::store::{
    AclPolicyStored, AclRoleStored, AclTokenStored, Batch, State as StoreState, Store, Table,
};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mesh_semantics::acl::{
    self, Access, Authorizer, DefaultAuthorizer, PolicyRules, Resource, Singleton,
};
use serde_json::{json, Value};
use std::sync::Arc;

pub const ANONYMOUS: &str = "00000000-0000-0000-0000-000000000002";
pub const GLOBAL_MANAGEMENT: &str = "00000000-0000-0000-0000-000000000001";

/// ACL settings of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclConfig {
    pub enabled: bool,
    pub default_allow: bool,
}

/// Who is asking: the token's AccessorID and what it may do.
pub struct Caller {
    pub accessor: String,
    pub authz: Authorizer,
}

/// The request's token: `?token=` wins, then `X-Consul-Token`, then `Authorization: Bearer`.
pub fn secret_of(headers: &HeaderMap, raw_query: &Option<String>) -> Option<String> {
    if let Some(q) = raw_query {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            if k == "token" && !v.is_empty() {
                return Some(v.into_owned());
            }
        }
    }
    if let Some(v) = headers
        .get("X-Consul-Token")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    {
        return Some(v.to_owned());
    }
    headers
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|v| v.trim().to_owned())
}

fn token_rules(s: &StoreState, t: &AclTokenStored) -> Vec<PolicyRules> {
    let mut rules = Vec::new();
    let policy = |id: &String, rules: &mut Vec<PolicyRules>| {
        if let Some(p) = s.acl.policies.get(id) {
            if let Ok(r) = acl::parse_rules(&p.rules, mesh_diagnostics::FileId(0), 0) {
                rules.push(r);
            }
        }
    };
    for id in &t.policy_ids {
        policy(id, &mut rules);
    }
    let identities = |svc: &[Value], node: &[Value], rules: &mut Vec<PolicyRules>| {
        for i in svc {
            if let Some(n) = i.get("ServiceName").and_then(Value::as_str) {
                rules.push(acl::service_identity_rules(n));
            }
        }
        for i in node {
            if let Some(n) = i.get("NodeName").and_then(Value::as_str) {
                rules.push(acl::node_identity_rules(n));
            }
        }
    };
    identities(&t.service_identities, &t.node_identities, &mut rules);
    for rid in &t.role_ids {
        if let Some(r) = s.acl.roles.get(rid) {
            for id in &r.policy_ids {
                policy(id, &mut rules);
            }
            identities(&r.service_identities, &r.node_identities, &mut rules);
        }
    }
    rules
}

/// Resolves the caller. With ACLs disabled everyone may do everything.
pub fn caller(
    ctx: &Ctx,
    headers: &HeaderMap,
    raw_query: &Option<String>,
) -> Result<Caller, Response> {
    let cfg = ctx.acl;
    if !cfg.enabled {
        return Ok(Caller {
            accessor: ANONYMOUS.into(),
            authz: Authorizer::management(),
        });
    }
    let default = if cfg.default_allow {
        DefaultAuthorizer::AllowAll
    } else {
        DefaultAuthorizer::DenyAll
    };
    let s = ctx.store.lock();
    match secret_of(headers, raw_query) {
        None => Ok(Caller {
            accessor: ANONYMOUS.into(),
            authz: Authorizer::new(PolicyRules::default(), default),
        }),
        Some(secret) => {
            let Some(t) = s.acl.tokens.values().find(|t| t.secret_id == secret) else {
                return Err(text(StatusCode::FORBIDDEN, "ACL not found"));
            };
            if t.management {
                return Ok(Caller {
                    accessor: t.accessor_id.clone(),
                    authz: Authorizer::management(),
                });
            }
            let rules = token_rules(&s, t);
            Ok(Caller {
                accessor: t.accessor_id.clone(),
                authz: Authorizer::from_policies(&rules, default),
            })
        }
    }
}

/// 403 with Consul's message.
pub fn denied(c: &Caller, permission: &str, segment: &str) -> Response {
    let on = if segment.is_empty() {
        String::new()
    } else {
        format!(" on {segment:?}")
    };
    text(
        StatusCode::FORBIDDEN,
        format!(
            "Permission denied: token with AccessorID '{}' lacks permission '{permission}'{on}",
            c.accessor
        ),
    )
}

impl Caller {
    pub fn require(
        &self,
        resource: Resource,
        segment: &str,
        access: Access,
    ) -> Result<(), Response> {
        let ok = match resource {
            Resource::Intention if access == Access::Write => self.authz.intention_write(segment),
            Resource::Intention => self.authz.intention_read(segment),
            _ => self.authz.check(resource, segment, access),
        };
        if ok {
            Ok(())
        } else {
            let a = match access {
                Access::Read => "read",
                Access::List => "list",
                Access::Write => "write",
            };
            Err(denied(self, &format!("{}:{a}", resource.name()), segment))
        }
    }

    pub fn require_singleton(&self, s: Singleton, access: Access) -> Result<(), Response> {
        if self.authz.check_singleton(s, access) {
            Ok(())
        } else {
            let a = if access == Access::Write {
                "write"
            } else {
                "read"
            };
            Err(denied(self, &format!("{}:{a}", s.name()), ""))
        }
    }
}

fn acl_disabled(ctx: &Ctx) -> Option<Response> {
    (!ctx.acl.enabled).then(|| text(StatusCode::UNAUTHORIZED, "ACL support disabled"))
}

fn now_rfc3339(ctx: &Ctx) -> String {
    let secs = ctx
        .env
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    time_fmt(secs)
}

fn time_fmt(secs: i64) -> String {
    // Days since 1970 to a civil date (Howard Hinnant's algorithm), so no clock crate is needed.
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// === JSON views ===

fn policy_json(p: &AclPolicyStored) -> Value {
    json!({"ID": p.id, "Name": p.name, "Description": p.description, "Rules": p.rules,
           "Datacenters": p.datacenters, "CreateIndex": p.create_index, "ModifyIndex": p.modify_index})
}

fn links(s: &StoreState, ids: &[String], roles: bool) -> Vec<Value> {
    ids.iter()
        .map(|id| {
            let name = if roles {
                s.acl.roles.get(id).map(|r| r.name.clone())
            } else if id == GLOBAL_MANAGEMENT {
                Some("global-management".to_owned())
            } else {
                s.acl.policies.get(id).map(|p| p.name.clone())
            };
            json!({"ID": id, "Name": name.unwrap_or_default()})
        })
        .collect()
}

fn role_json(s: &StoreState, r: &AclRoleStored) -> Value {
    json!({"ID": r.id, "Name": r.name, "Description": r.description,
           "Policies": links(s, &r.policy_ids, false), "ServiceIdentities": r.service_identities,
           "NodeIdentities": r.node_identities, "CreateIndex": r.create_index, "ModifyIndex": r.modify_index})
}

/// A token as the API shows it. The SecretID is shown only to callers with acl:write, as Consul
/// does for token reads.
fn token_json(s: &StoreState, t: &AclTokenStored, with_secret: bool) -> Value {
    let mut policies = t.policy_ids.clone();
    if t.management && !policies.iter().any(|p| p == GLOBAL_MANAGEMENT) {
        policies.insert(0, GLOBAL_MANAGEMENT.to_owned());
    }
    let mut v = json!({"AccessorID": t.accessor_id, "Description": t.description,
           "Policies": links(s, &policies, false), "Roles": links(s, &t.role_ids, true),
           "ServiceIdentities": t.service_identities, "NodeIdentities": t.node_identities,
           "Local": t.local, "CreateTime": t.create_time, "CreateIndex": t.create_index, "ModifyIndex": t.modify_index});
    if with_secret {
        v["SecretID"] = json!(t.secret_id);
    }
    v
}

fn parse_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| {
        text(
            StatusCode::BAD_REQUEST,
            format!("Request decode failed: {e}"),
        )
    })
}

/// A body field, matched case-insensitively as Consul's decoder does.
fn get_ci<'v>(v: &'v Value, k: &str) -> Option<&'v Value> {
    v.as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(k))
        .map(|(_, x)| x)
}

fn str_of(v: &Value, k: &str) -> String {
    get_ci(v, k)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// Rules as sent. Some clients JSON-encode the rules string once more; accept that form too.
fn rules_of(v: &Value) -> String {
    let raw = str_of(v, "Rules");
    let t = raw.trim();
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        if let Ok(inner) = serde_json::from_str::<String>(t) {
            return inner;
        }
    }
    raw
}

/// Resolves `[{ID}|{Name}]` links to IDs.
fn resolve_links(s: &StoreState, v: Option<&Value>, roles: bool) -> Result<Vec<String>, Response> {
    let mut out = Vec::new();
    for l in v
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let id = str_of(l, "ID");
        let name = str_of(l, "Name");
        let found = if !id.is_empty() {
            let exists = if roles {
                s.acl.roles.contains_key(&id)
            } else {
                s.acl.policies.contains_key(&id) || id == GLOBAL_MANAGEMENT
            };
            exists.then_some(id.clone())
        } else if roles {
            s.acl
                .roles
                .values()
                .find(|r| r.name == name)
                .map(|r| r.id.clone())
        } else {
            s.acl
                .policies
                .values()
                .find(|p| p.name == name)
                .map(|p| p.id.clone())
        };
        let what = if roles { "role" } else { "policy" };
        match found {
            Some(id) if !out.contains(&id) => out.push(id),
            Some(_) => {}
            None if !name.is_empty() => {
                return Err(text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("No such ACL {what} with name {name:?}"),
                ))
            }
            None => {
                return Err(text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("No such ACL {what} with ID {id:?}"),
                ))
            }
        }
    }
    Ok(out)
}

fn commit(ctx: &Ctx, s: &mut StoreState, batch: Batch) -> Result<(), Response> {
    ctx.store
        .commit(s, batch)
        .map_err(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

// === bootstrap ===

/// Creates the first management token (once).
pub fn bootstrap_token(ctx: &Ctx, secret: Option<String>) -> Result<AclTokenStored, Response> {
    let mut s = ctx.store.lock();
    if let Some(at) = s.acl.bootstrapped {
        return Err(text(
            StatusCode::FORBIDDEN,
            format!("ACL bootstrap no longer allowed (reset index: {at})"),
        ));
    }
    let index = Store::next_index(&mut s);
    let t = AclTokenStored {
        accessor_id: ctx.env.ids.next(),
        secret_id: secret.unwrap_or_else(|| ctx.env.ids.next()),
        description: "Bootstrap Token (Global Management)".into(),
        policy_ids: vec![GLOBAL_MANAGEMENT.into()],
        role_ids: Vec::new(),
        service_identities: Vec::new(),
        node_identities: Vec::new(),
        local: false,
        management: true,
        create_time: now_rfc3339(ctx),
        create_index: index,
        modify_index: index,
    };
    let mut batch = Batch::default();
    batch.put(
        format!("acl/token/{}", t.accessor_id),
        serde_json::to_vec(&t).unwrap_or_default(),
        Table::Acl,
    );
    batch.put(
        "acl/bootstrap".into(),
        index.to_be_bytes().to_vec(),
        Table::Acl,
    );
    s.acl.tokens.insert(t.accessor_id.clone(), t.clone());
    s.acl.bootstrapped = Some(index);
    commit(ctx, &mut s, batch)?;
    Ok(t)
}

pub async fn bootstrap(State(ctx): State<Arc<Ctx>>) -> Response {
    if let Some(r) = acl_disabled(&ctx) {
        return r;
    }
    match bootstrap_token(&ctx, None) {
        Ok(t) => {
            let s = ctx.store.lock();
            json_at(token_json(&s, &t, true), s.table_index(Table::Acl))
        }
        Err(r) => r,
    }
}

/// The shape of every ACL write handler: caller needs acl:write, the body is JSON, `check`
/// looks at the body before `write` stores it.
fn write_object(
    ctx: &Ctx,
    headers: &HeaderMap,
    raw: &Option<String>,
    body: &Bytes,
    check: impl FnOnce(&Value) -> Result<(), Response>,
    write: impl FnOnce(&Ctx, &Value) -> Result<Value, Response>,
) -> Response {
    if let Some(r) = acl_disabled(ctx) {
        return r;
    }
    let result = caller(ctx, headers, raw)
        .and_then(|c| c.require_singleton(Singleton::Acl, Access::Write))
        .and_then(|()| parse_body(body))
        .and_then(|v| check(&v).map(|()| v))
        .and_then(|v| write(ctx, &v));
    match result {
        Ok(v) => json_at(v, 0),
        Err(r) => r,
    }
}

/// An ID in the URL must match the body's, when the body has one.
fn same_id<'a>(
    field: &'static str,
    url_id: &'a str,
    message: &'static str,
) -> impl FnOnce(&Value) -> Result<(), Response> + 'a {
    move |v| {
        let body_id = str_of(v, field);
        if body_id.is_empty() || body_id == url_id {
            Ok(())
        } else {
            Err(text(StatusCode::BAD_REQUEST, message))
        }
    }
}

#[derive(Clone, Copy)]
enum Object {
    Policy,
    Role,
    Token,
}

/// Deletes a policy, role or token by ID.
fn delete_object(
    ctx: &Ctx,
    headers: &HeaderMap,
    raw: &Option<String>,
    what: Object,
    id: &str,
) -> Response {
    if let Some(r) = acl_disabled(ctx) {
        return r;
    }
    if let Err(r) =
        caller(ctx, headers, raw).and_then(|c| c.require_singleton(Singleton::Acl, Access::Write))
    {
        return r;
    }
    let mut s = ctx.store.lock();
    let (removed, key, missing) = match what {
        Object::Policy => (
            s.acl.policies.remove(id).is_some(),
            "policy",
            "Cannot find policy to delete",
        ),
        Object::Role => (
            s.acl.roles.remove(id).is_some(),
            "role",
            "Cannot find role to delete",
        ),
        Object::Token => (
            s.acl.tokens.remove(id).is_some(),
            "token",
            "Cannot find token to delete",
        ),
    };
    if !removed {
        return text(StatusCode::NOT_FOUND, missing);
    }
    Store::next_index(&mut s);
    let mut batch = Batch::default();
    batch.delete(format!("acl/{key}/{id}"), Table::Acl);
    match commit(ctx, &mut s, batch) {
        Ok(()) => text(StatusCode::OK, "true"),
        Err(r) => r,
    }
}

// === policies ===

fn write_policy(ctx: &Ctx, id: Option<String>, v: &Value) -> Result<Value, Response> {
    let name = str_of(v, "Name");
    if let Some(msg) = acl::validate_policy_name(&name) {
        return Err(text(StatusCode::INTERNAL_SERVER_ERROR, msg));
    }
    let rules = rules_of(v);
    if let Err(d) = acl::parse_rules(&rules, mesh_diagnostics::FileId(0), 0) {
        let msg = d.first().map(|d| d.message.clone()).unwrap_or_default();
        return Err(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Invalid Policy: {msg}"),
        ));
    }
    let mut s = ctx.store.lock();
    if s.acl
        .policies
        .values()
        .any(|p| p.name == name && Some(&p.id) != id.as_ref())
    {
        return Err(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Invalid Policy: A Policy with Name {name:?} already exists"),
        ));
    }
    let existing = id.as_ref().and_then(|i| s.acl.policies.get(i)).cloned();
    if id.is_some() && existing.is_none() {
        return Err(text(StatusCode::NOT_FOUND, "Cannot find policy to update"));
    }
    let index = Store::next_index(&mut s);
    let p = AclPolicyStored {
        id: id.unwrap_or_else(|| ctx.env.ids.next()),
        name,
        description: str_of(v, "Description"),
        rules,
        datacenters: v
            .get("Datacenters")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        create_index: existing.map(|e| e.create_index).unwrap_or(index),
        modify_index: index,
    };
    let mut batch = Batch::default();
    batch.put(
        format!("acl/policy/{}", p.id),
        serde_json::to_vec(&p).unwrap_or_default(),
        Table::Acl,
    );
    s.acl.policies.insert(p.id.clone(), p.clone());
    commit(ctx, &mut s, batch)?;
    Ok(policy_json(&p))
}

macro_rules! guard {
    ($ctx:expr, $headers:expr, $raw:expr, $access:expr) => {{
        if let Some(r) = acl_disabled(&$ctx) {
            return r;
        }
        let c = match caller(&$ctx, &$headers, &$raw) {
            Ok(c) => c,
            Err(r) => return r,
        };
        if let Err(r) = c.require_singleton(Singleton::Acl, $access) {
            return r;
        }
        c
    }};
}

pub async fn policy_create(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    write_object(
        &ctx,
        &headers,
        &raw,
        &body,
        |v: &Value| {
            if str_of(v, "ID").is_empty() {
                Ok(())
            } else {
                Err(text(
                    StatusCode::BAD_REQUEST,
                    "Cannot specify the ID when creating a new policy",
                ))
            }
        },
        |ctx, v| write_policy(ctx, None, v),
    )
}

pub async fn policy_update(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    write_object(
        &ctx,
        &headers,
        &raw,
        &body,
        same_id("ID", &id, "Policy ID in URL and payload do not match"),
        |ctx, v| write_policy(ctx, Some(id.clone()), v),
    )
}

pub async fn policy_read(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    guard!(ctx, headers, raw, Access::Read);
    let s = ctx.store.lock();
    match s.acl.policies.get(&id) {
        Some(p) => json_at(policy_json(p), s.table_index(Table::Acl)),
        None => text(StatusCode::NOT_FOUND, "ACL not found"),
    }
}

pub async fn policy_by_name(
    State(ctx): State<Arc<Ctx>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    guard!(ctx, headers, raw, Access::Read);
    let s = ctx.store.lock();
    match s.acl.policies.values().find(|p| p.name == name) {
        Some(p) => json_at(policy_json(p), s.table_index(Table::Acl)),
        None => text(StatusCode::NOT_FOUND, "ACL not found"),
    }
}

pub async fn policy_delete(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    delete_object(&ctx, &headers, &raw, Object::Policy, &id)
}

pub async fn policy_list(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    guard!(ctx, headers, raw, Access::Read);
    let s = ctx.store.lock();
    let list: Vec<Value> = s.acl.policies.values().map(policy_json).collect();
    json_at(Value::Array(list), s.table_index(Table::Acl))
}

// === roles ===

fn write_role(ctx: &Ctx, id: Option<String>, v: &Value) -> Result<Value, Response> {
    let name = str_of(v, "Name");
    if let Some(msg) = acl::validate_role_name(&name) {
        return Err(text(StatusCode::INTERNAL_SERVER_ERROR, msg));
    }
    let mut s = ctx.store.lock();
    if s.acl
        .roles
        .values()
        .any(|r| r.name == name && Some(&r.id) != id.as_ref())
    {
        return Err(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Invalid Role: A Role with Name {name:?} already exists"),
        ));
    }
    let policy_ids = resolve_links(&s, get_ci(v, "Policies"), false)?;
    let existing = id.as_ref().and_then(|i| s.acl.roles.get(i)).cloned();
    if id.is_some() && existing.is_none() {
        return Err(text(StatusCode::NOT_FOUND, "Cannot find role to update"));
    }
    let index = Store::next_index(&mut s);
    let arr = |k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let r = AclRoleStored {
        id: id.unwrap_or_else(|| ctx.env.ids.next()),
        name,
        description: str_of(v, "Description"),
        policy_ids,
        service_identities: arr("ServiceIdentities"),
        node_identities: arr("NodeIdentities"),
        create_index: existing.map(|e| e.create_index).unwrap_or(index),
        modify_index: index,
    };
    let mut batch = Batch::default();
    batch.put(
        format!("acl/role/{}", r.id),
        serde_json::to_vec(&r).unwrap_or_default(),
        Table::Acl,
    );
    s.acl.roles.insert(r.id.clone(), r.clone());
    commit(ctx, &mut s, batch)?;
    Ok(role_json(&s, &r))
}

pub async fn role_create(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    write_object(
        &ctx,
        &headers,
        &raw,
        &body,
        |_: &Value| Ok(()),
        |ctx, v| write_role(ctx, None, v),
    )
}

pub async fn role_update(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    write_object(
        &ctx,
        &headers,
        &raw,
        &body,
        same_id("ID", &id, "Role ID in URL and payload do not match"),
        |ctx, v| write_role(ctx, Some(id.clone()), v),
    )
}

pub async fn role_read(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    guard!(ctx, headers, raw, Access::Read);
    let s = ctx.store.lock();
    match s.acl.roles.get(&id) {
        Some(r) => json_at(role_json(&s, r), s.table_index(Table::Acl)),
        None => text(StatusCode::NOT_FOUND, "ACL not found"),
    }
}

pub async fn role_by_name(
    State(ctx): State<Arc<Ctx>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    guard!(ctx, headers, raw, Access::Read);
    let s = ctx.store.lock();
    match s.acl.roles.values().find(|r| r.name == name) {
        Some(r) => json_at(role_json(&s, r), s.table_index(Table::Acl)),
        None => text(StatusCode::NOT_FOUND, "ACL not found"),
    }
}

pub async fn role_delete(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    delete_object(&ctx, &headers, &raw, Object::Role, &id)
}

pub async fn role_list(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    guard!(ctx, headers, raw, Access::Read);
    let s = ctx.store.lock();
    let list: Vec<Value> = s.acl.roles.values().map(|r| role_json(&s, r)).collect();
    json_at(Value::Array(list), s.table_index(Table::Acl))
}

// === tokens ===

fn write_token(ctx: &Ctx, accessor: Option<String>, v: &Value) -> Result<Value, Response> {
    let mut s = ctx.store.lock();
    let existing = accessor.as_ref().and_then(|a| s.acl.tokens.get(a)).cloned();
    if accessor.is_some() && existing.is_none() {
        return Err(text(StatusCode::NOT_FOUND, "Cannot find token to update"));
    }
    let secret = str_of(v, "SecretID");
    let wanted = str_of(v, "AccessorID");
    let accessor_taken = !wanted.is_empty() && s.acl.tokens.contains_key(&wanted);
    if let Some(e) = &existing {
        if !secret.is_empty() && secret != e.secret_id {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "Changing a token's SecretID is not permitted",
            ));
        }
        if get_ci(v, "Local")
            .and_then(Value::as_bool)
            .unwrap_or(e.local)
            != e.local
        {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "Cannot toggle local mode of an existing token",
            ));
        }
    } else if accessor_taken {
        return Err(text(
            StatusCode::BAD_REQUEST,
            "Invalid Token: AccessorID is already in use",
        ));
    } else if !secret.is_empty() {
        if uuid::Uuid::parse_str(&secret).is_err() {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "Invalid Token: SecretID is not a valid UUID",
            ));
        }
        if s.acl.tokens.values().any(|t| t.secret_id == secret) {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "Invalid Token: SecretID is already in use",
            ));
        }
    }
    for i in v
        .get("ServiceIdentities")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        if let Some(msg) = acl::validate_service_identity_name(&str_of(i, "ServiceName")) {
            return Err(text(StatusCode::INTERNAL_SERVER_ERROR, msg));
        }
    }
    let policy_ids = resolve_links(&s, get_ci(v, "Policies"), false)?;
    let role_ids = resolve_links(&s, get_ci(v, "Roles"), true)?;
    let index = Store::next_index(&mut s);
    let arr = |k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let t = AclTokenStored {
        accessor_id: accessor.unwrap_or_else(|| {
            Some(str_of(v, "AccessorID"))
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| ctx.env.ids.next())
        }),
        secret_id: existing
            .as_ref()
            .map(|e| e.secret_id.clone())
            .unwrap_or_else(|| {
                if secret.is_empty() {
                    ctx.env.ids.next()
                } else {
                    secret
                }
            }),
        description: str_of(v, "Description"),
        management: policy_ids.iter().any(|p| p == GLOBAL_MANAGEMENT),
        policy_ids,
        role_ids,
        service_identities: arr("ServiceIdentities"),
        node_identities: arr("NodeIdentities"),
        local: get_ci(v, "Local").and_then(Value::as_bool).unwrap_or(false),
        create_time: existing
            .as_ref()
            .map(|e| e.create_time.clone())
            .unwrap_or_else(|| now_rfc3339(ctx)),
        create_index: existing.as_ref().map(|e| e.create_index).unwrap_or(index),
        modify_index: index,
    };
    let mut batch = Batch::default();
    batch.put(
        format!("acl/token/{}", t.accessor_id),
        serde_json::to_vec(&t).unwrap_or_default(),
        Table::Acl,
    );
    s.acl.tokens.insert(t.accessor_id.clone(), t.clone());
    commit(ctx, &mut s, batch)?;
    Ok(token_json(&s, &t, true))
}

pub async fn token_create(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    write_object(
        &ctx,
        &headers,
        &raw,
        &body,
        |_: &Value| Ok(()),
        |ctx, v| write_token(ctx, None, v),
    )
}

pub async fn token_update(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    write_object(
        &ctx,
        &headers,
        &raw,
        &body,
        same_id(
            "AccessorID",
            &id,
            "Token Accessor ID in URL and payload do not match",
        ),
        |ctx, v| write_token(ctx, Some(id.clone()), v),
    )
}

pub async fn token_read(
    State(ctx): State<Arc<Ctx>>,
    Path(accessor): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let c = guard!(ctx, headers, raw, Access::Read);
    let s = ctx.store.lock();
    match s.acl.tokens.get(&accessor) {
        Some(t) => json_at(
            token_json(&s, t, c.authz.acl_write()),
            s.table_index(Table::Acl),
        ),
        None => text(StatusCode::NOT_FOUND, "ACL not found"),
    }
}

pub async fn token_self(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Some(r) = acl_disabled(&ctx) {
        return r;
    }
    let Some(secret) = secret_of(&headers, &raw) else {
        return text(StatusCode::FORBIDDEN, "ACL not found");
    };
    let s = ctx.store.lock();
    match s.acl.tokens.values().find(|t| t.secret_id == secret) {
        Some(t) => json_at(token_json(&s, t, true), s.table_index(Table::Acl)),
        None => text(StatusCode::FORBIDDEN, "ACL not found"),
    }
}

pub async fn token_delete(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    delete_object(&ctx, &headers, &raw, Object::Token, &id)
}

pub async fn token_list(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    guard!(ctx, headers, raw, Access::Read);
    let s = ctx.store.lock();
    // Lists never carry secrets.
    let list: Vec<Value> = s
        .acl
        .tokens
        .values()
        .map(|t| token_json(&s, t, false))
        .collect();
    json_at(Value::Array(list), s.table_index(Table::Acl))
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_format_is_rfc3339_utc() {
        assert_eq!(super::time_fmt(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::time_fmt(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::time_fmt(951_782_400), "2000-02-29T00:00:00Z");
    }
}
