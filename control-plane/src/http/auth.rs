//! Who is asking: token resolution and enforcement with the shared authorizer
//! (consul-semantics section 3; `agent/consul/acl.go`, `ResolveToken`).

use super::{ApiError, Ctx};
use crate::store::{AclTokenStored, State as StoreState};
use axum::http::{HeaderMap, StatusCode};
use mesh_semantics::acl::{
    self, Access, Authorizer, DefaultAuthorizer, PolicyRules, Resource, Singleton,
};
use serde_json::Value;

pub const ANONYMOUS: &str = "00000000-0000-0000-0000-000000000002";

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
) -> Result<Caller, ApiError> {
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
    let s = ctx.store.read();
    match secret_of(headers, raw_query) {
        None => Ok(Caller {
            accessor: ANONYMOUS.into(),
            authz: Authorizer::new(PolicyRules::default(), default),
        }),
        Some(secret) => {
            let Some(t) = s.acl.tokens.values().find(|t| t.secret_id == secret) else {
                return Err(ApiError::new(StatusCode::FORBIDDEN, "ACL not found"));
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
pub fn denied(c: &Caller, permission: &str, segment: &str) -> ApiError {
    let on = if segment.is_empty() {
        String::new()
    } else {
        format!(" on {segment:?}")
    };
    ApiError::new(
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
    ) -> Result<(), ApiError> {
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

    pub fn require_singleton(&self, s: Singleton, access: Access) -> Result<(), ApiError> {
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

/// The ACL endpoints answer 401 while ACLs are off.
pub(crate) fn require_enabled(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.acl.enabled {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "ACL support disabled",
        ))
    }
}
