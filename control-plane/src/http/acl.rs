//! `/v1/acl` (`agent/acl_endpoint.go`): bootstrap, and create, read, update, delete and list of
//! policies, roles and tokens, written once for the three kinds through [`AclEndpoint`].

use super::auth::{caller, require_enabled, secret_of, Caller};
use super::{json_at, json_body, Answer, ApiError, Ctx};
use crate::store::{
    AclObject, AclPolicyStored, AclRoleStored, AclTokenStored, AclWrite, Link, PolicyWrite,
    RoleWrite, State as StoreState, Table, TokenWrite, GLOBAL_MANAGEMENT,
};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use mesh_semantics::acl::{Access, Singleton};
use serde_json::{json, Value};
use std::sync::Arc;

/// How one ACL object kind is read from requests and shown in answers.
pub(super) trait AclEndpoint: AclObject + Send + Sync + 'static {
    type Write: AclWrite<Object = Self>;
    /// The body field holding the object's ID, and Consul's message when it differs from the
    /// URL's.
    const ID_FIELD: &'static str;
    const ID_MISMATCH: &'static str;
    /// The write a body asks for; `target` is the object to update.
    fn parse(target: Option<String>, v: &Value) -> Self::Write;
    /// A check of the body that only a create makes.
    fn check_create(_: &Value) -> Result<(), ApiError> {
        Ok(())
    }
    /// The object as the API shows it; `secret` shows a token's SecretID.
    fn json(s: &StoreState, o: &Self, secret: bool) -> Value;
    fn name(&self) -> Option<&str>;
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

/// An array field, matched exactly.
fn arr(v: &Value, k: &str) -> Vec<Value> {
    v.get(k)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// `[{ID}|{Name}]` links as sent.
fn links_of(v: &Value, k: &str) -> Vec<Link> {
    get_ci(v, k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|l| Link {
                    id: str_of(l, "ID"),
                    name: str_of(l, "Name"),
                })
                .collect()
        })
        .unwrap_or_default()
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

/// Links shown by ID with the current names.
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

impl AclEndpoint for AclPolicyStored {
    type Write = PolicyWrite;
    const ID_FIELD: &'static str = "ID";
    const ID_MISMATCH: &'static str = "Policy ID in URL and payload do not match";

    fn parse(id: Option<String>, v: &Value) -> PolicyWrite {
        PolicyWrite {
            id,
            name: str_of(v, "Name"),
            description: str_of(v, "Description"),
            rules: rules_of(v),
            datacenters: v
                .get("Datacenters")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn check_create(v: &Value) -> Result<(), ApiError> {
        if str_of(v, "ID").is_empty() {
            Ok(())
        } else {
            Err(ApiError::bad_request(
                "Cannot specify the ID when creating a new policy",
            ))
        }
    }

    fn json(_: &StoreState, p: &Self, _: bool) -> Value {
        json!({"ID": p.id, "Name": p.name, "Description": p.description, "Rules": p.rules,
               "Datacenters": p.datacenters, "CreateIndex": p.create_index, "ModifyIndex": p.modify_index})
    }

    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
}

impl AclEndpoint for AclRoleStored {
    type Write = RoleWrite;
    const ID_FIELD: &'static str = "ID";
    const ID_MISMATCH: &'static str = "Role ID in URL and payload do not match";

    fn parse(id: Option<String>, v: &Value) -> RoleWrite {
        RoleWrite {
            id,
            name: str_of(v, "Name"),
            description: str_of(v, "Description"),
            policies: links_of(v, "Policies"),
            service_identities: arr(v, "ServiceIdentities"),
            node_identities: arr(v, "NodeIdentities"),
        }
    }

    fn json(s: &StoreState, r: &Self, _: bool) -> Value {
        json!({"ID": r.id, "Name": r.name, "Description": r.description,
               "Policies": links(s, &r.policy_ids, false), "ServiceIdentities": r.service_identities,
               "NodeIdentities": r.node_identities, "CreateIndex": r.create_index, "ModifyIndex": r.modify_index})
    }

    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
}

impl AclEndpoint for AclTokenStored {
    type Write = TokenWrite;
    const ID_FIELD: &'static str = "AccessorID";
    const ID_MISMATCH: &'static str = "Token Accessor ID in URL and payload do not match";

    fn parse(accessor: Option<String>, v: &Value) -> TokenWrite {
        TokenWrite {
            accessor,
            accessor_id: str_of(v, "AccessorID"),
            secret_id: str_of(v, "SecretID"),
            description: str_of(v, "Description"),
            policies: links_of(v, "Policies"),
            roles: links_of(v, "Roles"),
            service_identities: arr(v, "ServiceIdentities"),
            node_identities: arr(v, "NodeIdentities"),
            local: get_ci(v, "Local").and_then(Value::as_bool),
        }
    }

    /// The SecretID is shown only where Consul shows it: to callers with acl:write, on writes
    /// and to the token itself; never in lists.
    fn json(s: &StoreState, t: &Self, secret: bool) -> Value {
        let mut policies = t.policy_ids.clone();
        if t.management && !policies.iter().any(|p| p == GLOBAL_MANAGEMENT) {
            policies.insert(0, GLOBAL_MANAGEMENT.to_owned());
        }
        let mut v = json!({"AccessorID": t.accessor_id, "Description": t.description,
               "Policies": links(s, &policies, false), "Roles": links(s, &t.role_ids, true),
               "ServiceIdentities": t.service_identities, "NodeIdentities": t.node_identities,
               "Local": t.local, "CreateTime": t.create_time, "CreateIndex": t.create_index, "ModifyIndex": t.modify_index});
        if secret {
            v["SecretID"] = json!(t.secret_id);
        }
        v
    }

    fn name(&self) -> Option<&str> {
        None
    }
}

/// ACLs on, and a caller with `access` on the ACL system.
fn guard(
    ctx: &Ctx,
    headers: &HeaderMap,
    raw: &Option<String>,
    access: Access,
) -> Result<Caller, ApiError> {
    require_enabled(ctx)?;
    let c = caller(ctx, headers, raw)?;
    c.require_singleton(Singleton::Acl, access)?;
    Ok(c)
}

/// The shape of every ACL write: the caller needs acl:write, the body is JSON, `check` looks
/// at it before the write; the answer is the object as stored.
fn write<O: AclEndpoint>(
    ctx: &Ctx,
    headers: &HeaderMap,
    raw: &Option<String>,
    body: &[u8],
    target: Option<String>,
) -> Answer {
    guard(ctx, headers, raw, Access::Write)?;
    let v = json_body(body)?;
    match &target {
        None => O::check_create(&v)?,
        Some(id) => {
            let body_id = str_of(&v, O::ID_FIELD);
            if !body_id.is_empty() && &body_id != id {
                return Err(ApiError::bad_request(O::ID_MISMATCH));
            }
        }
    }
    let o = ctx
        .store
        .acl_write(O::parse(target, &v), &ctx.env.ids, ctx.env.now())?;
    Ok(json_at(O::json(&ctx.store.read(), &o, true), 0))
}

pub(super) async fn create<O: AclEndpoint>(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Answer {
    write::<O>(&ctx, &headers, &raw, &body, None)
}

pub(super) async fn update<O: AclEndpoint>(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Answer {
    write::<O>(&ctx, &headers, &raw, &body, Some(id))
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "ACL not found")
}

pub(super) async fn read<O: AclEndpoint>(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let c = guard(&ctx, &headers, &raw, Access::Read)?;
    let s = ctx.store.read();
    let o = O::all(&s.acl).get(&id).ok_or_else(not_found)?;
    Ok(json_at(
        O::json(&s, o, c.authz.acl_write()),
        s.table_index(Table::Acl),
    ))
}

pub(super) async fn by_name<O: AclEndpoint>(
    State(ctx): State<Arc<Ctx>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    guard(&ctx, &headers, &raw, Access::Read)?;
    let s = ctx.store.read();
    let o = O::all(&s.acl)
        .values()
        .find(|o| o.name() == Some(name.as_str()))
        .ok_or_else(not_found)?;
    Ok(json_at(O::json(&s, o, false), s.table_index(Table::Acl)))
}

pub(super) async fn delete<O: AclEndpoint>(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    guard(&ctx, &headers, &raw, Access::Write)?;
    ctx.store.acl_delete::<O>(&id)?;
    Ok(super::bool_body(true))
}

pub(super) async fn list<O: AclEndpoint>(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    guard(&ctx, &headers, &raw, Access::Read)?;
    let s = ctx.store.read();
    // Lists never carry secrets.
    let list: Vec<Value> = O::all(&s.acl)
        .values()
        .map(|o| O::json(&s, o, false))
        .collect();
    Ok(json_at(Value::Array(list), s.table_index(Table::Acl)))
}

pub(super) async fn bootstrap(State(ctx): State<Arc<Ctx>>) -> Answer {
    require_enabled(&ctx)?;
    let t = ctx.store.acl_bootstrap(None, &ctx.env.ids, ctx.env.now())?;
    let s = ctx.store.read();
    Ok(json_at(
        AclTokenStored::json(&s, &t, true),
        s.table_index(Table::Acl),
    ))
}

pub(super) async fn token_self(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    require_enabled(&ctx)?;
    let forbidden = || ApiError::new(StatusCode::FORBIDDEN, "ACL not found");
    let secret = secret_of(&headers, &raw).ok_or_else(forbidden)?;
    let s = ctx.store.read();
    let t = s
        .acl
        .tokens
        .values()
        .find(|t| t.secret_id == secret)
        .ok_or_else(forbidden)?;
    Ok(json_at(
        AclTokenStored::json(&s, t, true),
        s.table_index(Table::Acl),
    ))
}
