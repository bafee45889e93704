//! ACL policies, roles and tokens (`agent/consul/state/acl.go`, with the endpoint checks of
//! `agent/consul/acl_endpoint.go`), written once for the three kinds through [`AclObject`] and
//! [`AclWrite`].

use super::{
    AclPolicyStored, AclRoleStored, AclState, AclTokenStored, Change, State, StateError, Store,
};
use crate::env::Ids;
use mesh_semantics::acl;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::SystemTime;

pub const GLOBAL_MANAGEMENT: &str = "00000000-0000-0000-0000-000000000001";

/// A stored ACL object kind.
pub trait AclObject: Clone + Sized {
    /// `policy`, `role` or `token`, as Consul's messages name it.
    const KIND: &'static str;
    fn all(acl: &AclState) -> &BTreeMap<String, Self>;
    fn change(id: String, value: Option<Self>) -> Change;
    fn id(&self) -> &str;
}

impl AclObject for AclPolicyStored {
    const KIND: &'static str = "policy";
    fn all(acl: &AclState) -> &BTreeMap<String, Self> {
        &acl.policies
    }
    fn change(id: String, value: Option<Self>) -> Change {
        Change::Policy(id, value)
    }
    fn id(&self) -> &str {
        &self.id
    }
}

impl AclObject for AclRoleStored {
    const KIND: &'static str = "role";
    fn all(acl: &AclState) -> &BTreeMap<String, Self> {
        &acl.roles
    }
    fn change(id: String, value: Option<Self>) -> Change {
        Change::Role(id, value)
    }
    fn id(&self) -> &str {
        &self.id
    }
}

impl AclObject for AclTokenStored {
    const KIND: &'static str = "token";
    fn all(acl: &AclState) -> &BTreeMap<String, Self> {
        &acl.tokens
    }
    fn change(id: String, value: Option<Self>) -> Change {
        Change::Token(id, value)
    }
    fn id(&self) -> &str {
        &self.accessor_id
    }
}

/// A create (`target` none) or update of one ACL object.
pub trait AclWrite {
    type Object: AclObject;
    /// Checks the write against the state and builds the object stored at `index`. IDs are
    /// drawn from `ids` only once the write is known to be valid.
    fn build(
        self,
        s: &State,
        index: u64,
        ids: &Ids,
        now: SystemTime,
    ) -> Result<Self::Object, StateError>;
}

/// A link to a policy or role, by ID or by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Default)]
pub struct PolicyWrite {
    /// The policy to update; `None` creates one.
    pub id: Option<String>,
    pub name: String,
    pub description: String,
    pub rules: String,
    pub datacenters: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RoleWrite {
    pub id: Option<String>,
    pub name: String,
    pub description: String,
    pub policies: Vec<Link>,
    pub service_identities: Vec<Value>,
    pub node_identities: Vec<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct TokenWrite {
    /// The token to update (by AccessorID); `None` creates one.
    pub accessor: Option<String>,
    /// A chosen AccessorID and SecretID for a new token (empty: drawn).
    pub accessor_id: String,
    pub secret_id: String,
    pub description: String,
    pub policies: Vec<Link>,
    pub roles: Vec<Link>,
    pub service_identities: Vec<Value>,
    pub node_identities: Vec<Value>,
    pub local: Option<bool>,
}

/// Resolves links to IDs (`agent/structs/acl.go`, policy and role links by ID or name).
fn resolve_links(s: &State, links: &[Link], roles: bool) -> Result<Vec<String>, StateError> {
    let mut out = Vec::new();
    for Link { id, name } in links {
        let found = if !id.is_empty() {
            let exists = if roles {
                s.acl.roles.contains_key(id)
            } else {
                s.acl.policies.contains_key(id) || id == GLOBAL_MANAGEMENT
            };
            exists.then_some(id.clone())
        } else if roles {
            s.acl
                .roles
                .values()
                .find(|r| &r.name == name)
                .map(|r| r.id.clone())
        } else {
            s.acl
                .policies
                .values()
                .find(|p| &p.name == name)
                .map(|p| p.id.clone())
        };
        let what = if roles { "role" } else { "policy" };
        match found {
            Some(id) if !out.contains(&id) => out.push(id),
            Some(_) => {}
            None if !name.is_empty() => {
                return Err(StateError::Rejected(format!(
                    "No such ACL {what} with name {name:?}"
                )))
            }
            None => {
                return Err(StateError::Rejected(format!(
                    "No such ACL {what} with ID {id:?}"
                )))
            }
        }
    }
    Ok(out)
}

impl AclWrite for PolicyWrite {
    type Object = AclPolicyStored;

    fn build(
        self,
        s: &State,
        index: u64,
        ids: &Ids,
        _: SystemTime,
    ) -> Result<AclPolicyStored, StateError> {
        if let Some(msg) = acl::validate_policy_name(&self.name) {
            return Err(StateError::Rejected(msg));
        }
        if let Err(d) = acl::parse_rules(&self.rules, mesh_diagnostics::FileId(0), 0) {
            // `ACL.PolicySet` (`agent/consul/acl_endpoint.go`) answers the parser's error as is.
            let msg = d.first().map(|d| d.message.clone()).unwrap_or_default();
            return Err(StateError::Rejected(msg));
        }
        let name = self.name;
        if s.acl
            .policies
            .values()
            .any(|p| p.name == name && Some(&p.id) != self.id.as_ref())
        {
            return Err(StateError::Rejected(format!(
                "Invalid Policy: A Policy with Name {name:?} already exists"
            )));
        }
        let existing = self.id.as_ref().and_then(|i| s.acl.policies.get(i));
        if self.id.is_some() && existing.is_none() {
            return Err(StateError::NotFound("Cannot find policy to update".into()));
        }
        Ok(AclPolicyStored {
            create_index: existing.map(|e| e.create_index).unwrap_or(index),
            id: self.id.unwrap_or_else(|| ids.next()),
            name,
            description: self.description,
            rules: self.rules,
            datacenters: self.datacenters,
            modify_index: index,
        })
    }
}

impl AclWrite for RoleWrite {
    type Object = AclRoleStored;

    fn build(
        self,
        s: &State,
        index: u64,
        ids: &Ids,
        _: SystemTime,
    ) -> Result<AclRoleStored, StateError> {
        let name = self.name;
        if let Some(msg) = acl::validate_role_name(&name) {
            return Err(StateError::Rejected(msg));
        }
        if s.acl
            .roles
            .values()
            .any(|r| r.name == name && Some(&r.id) != self.id.as_ref())
        {
            return Err(StateError::Rejected(format!(
                "Invalid Role: A Role with Name {name:?} already exists"
            )));
        }
        let policy_ids = resolve_links(s, &self.policies, false)?;
        let existing = self.id.as_ref().and_then(|i| s.acl.roles.get(i));
        if self.id.is_some() && existing.is_none() {
            return Err(StateError::NotFound("Cannot find role to update".into()));
        }
        Ok(AclRoleStored {
            create_index: existing.map(|e| e.create_index).unwrap_or(index),
            id: self.id.unwrap_or_else(|| ids.next()),
            name,
            description: self.description,
            policy_ids,
            service_identities: self.service_identities,
            node_identities: self.node_identities,
            modify_index: index,
        })
    }
}

impl AclWrite for TokenWrite {
    type Object = AclTokenStored;

    fn build(
        self,
        s: &State,
        index: u64,
        ids: &Ids,
        now: SystemTime,
    ) -> Result<AclTokenStored, StateError> {
        let existing = self.accessor.as_ref().and_then(|a| s.acl.tokens.get(a));
        if self.accessor.is_some() && existing.is_none() {
            return Err(StateError::NotFound("Cannot find token to update".into()));
        }
        let secret = self.secret_id;
        let invalid = |m: &str| Err(StateError::Invalid(m.into()));
        if let Some(e) = existing {
            if !secret.is_empty() && secret != e.secret_id {
                return invalid("Changing a token's SecretID is not permitted");
            }
            if self.local.unwrap_or(e.local) != e.local {
                return invalid("Cannot toggle local mode of an existing token");
            }
        } else if !self.accessor_id.is_empty() && s.acl.tokens.contains_key(&self.accessor_id) {
            return invalid("Invalid Token: AccessorID is already in use");
        } else if !secret.is_empty() {
            if uuid::Uuid::parse_str(&secret).is_err() {
                return invalid("Invalid Token: SecretID is not a valid UUID");
            }
            if s.acl.tokens.values().any(|t| t.secret_id == secret) {
                return invalid("Invalid Token: SecretID is already in use");
            }
        }
        for i in &self.service_identities {
            let name = i
                .as_object()
                .and_then(|m| {
                    m.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("ServiceName"))
                })
                .and_then(|(_, v)| v.as_str())
                .unwrap_or("");
            if let Some(msg) = acl::validate_service_identity_name(name) {
                return Err(StateError::Rejected(msg));
            }
        }
        let policy_ids = resolve_links(s, &self.policies, false)?;
        let role_ids = resolve_links(s, &self.roles, true)?;
        let accessor_id = self.accessor.unwrap_or_else(|| {
            Some(self.accessor_id)
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| ids.next())
        });
        let secret_id = match existing {
            Some(e) => e.secret_id.clone(),
            None if secret.is_empty() => ids.next(),
            None => secret,
        };
        Ok(AclTokenStored {
            accessor_id,
            secret_id,
            description: self.description,
            management: policy_ids.iter().any(|p| p == GLOBAL_MANAGEMENT),
            policy_ids,
            role_ids,
            service_identities: self.service_identities,
            node_identities: self.node_identities,
            local: self.local.unwrap_or(false),
            create_time: existing
                .map(|e| e.create_time.clone())
                .unwrap_or_else(|| rfc3339(now)),
            create_index: existing.map(|e| e.create_index).unwrap_or(index),
            modify_index: index,
        })
    }
}

/// `now` as RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(now: SystemTime) -> String {
    let secs = now
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

impl Store {
    /// Creates or updates a policy, role or token; returns it as stored.
    pub fn acl_write<W: AclWrite>(
        &self,
        w: W,
        ids: &Ids,
        now: SystemTime,
    ) -> Result<W::Object, StateError> {
        self.write(|s, tx| {
            let o = w.build(s, tx.index(), ids, now)?;
            tx.change(W::Object::change(o.id().to_owned(), Some(o.clone())));
            Ok(o)
        })
    }

    /// Deletes a policy, role or token by ID; returns the index.
    pub fn acl_delete<O: AclObject>(&self, id: &str) -> Result<u64, StateError> {
        self.write(|s, tx| {
            if !O::all(&s.acl).contains_key(id) {
                return Err(StateError::NotFound(format!(
                    "Cannot find {} to delete",
                    O::KIND
                )));
            }
            let index = tx.index();
            tx.change(O::change(id.to_owned(), None));
            Ok(index)
        })
    }

    /// Creates the first management token, once (`ACL.BootstrapTokens`).
    pub fn acl_bootstrap(
        &self,
        secret: Option<String>,
        ids: &Ids,
        now: SystemTime,
    ) -> Result<AclTokenStored, StateError> {
        self.write(|s, tx| {
            if let Some(at) = s.acl.bootstrapped {
                return Err(StateError::BootstrapDone(at));
            }
            let index = tx.index();
            let t = AclTokenStored {
                accessor_id: ids.next(),
                secret_id: secret.unwrap_or_else(|| ids.next()),
                description: "Bootstrap Token (Global Management)".into(),
                policy_ids: vec![GLOBAL_MANAGEMENT.into()],
                role_ids: Vec::new(),
                service_identities: Vec::new(),
                node_identities: Vec::new(),
                local: false,
                management: true,
                create_time: rfc3339(now),
                create_index: index,
                modify_index: index,
            };
            tx.change(Change::Token(t.accessor_id.clone(), Some(t.clone())));
            tx.change(Change::AclBootstrap(index));
            Ok(t)
        })
    }
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
