//! Consul's ACL objects and the Connect CA configuration, in Consul's spelling, as the HTTP API
//! answers and accepts them (`api/acl.go`, `api/connect_ca.go` in hashicorp/consul).
//!
//! One type serves both directions, never mixed:
//! - answers decode tolerantly ([`decode`]): fields a newer Consul adds land in `unknown`,
//!   server-managed fields (`Hash`, `CreateIndex`, `ModifyIndex`, `CreateTime`) in `server`;
//!   neither is ever compared (their `PartialEq` is always true), and a zero value equals an
//!   absent one, as Go's `omitempty` writes them;
//! - request bodies serialize from the same types, without `server` and `unknown`.
//!
//! Secrets never enter: a token has no `SecretID` field at all, `unknown` drops every key named
//! `SecretID`, `PrivateKey` or `Token` at any depth, and the CA `Config` map drops `PrivateKey`
//! and `Token` on decode. Nothing downstream can print what was never kept.

use serde::de::{DeserializeOwned, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The keys that hold secrets in Consul's answers, matched case-insensitively.
pub const SECRET_KEYS: [&str; 3] = ["SecretID", "PrivateKey", "Token"];

fn is_secret(k: &str) -> bool {
    SECRET_KEYS.iter().any(|s| s.eq_ignore_ascii_case(k))
}

/// Removes every secret key from a JSON value, at any depth.
pub fn strip_secrets(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !is_secret(k));
            m.values_mut().for_each(strip_secrets);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_secrets),
        _ => {}
    }
}

/// Why an answer did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes an answer tolerantly (unknown fields kept apart, secrets dropped).
pub fn decode<T: DeserializeOwned>(v: &Value) -> Result<T, DecodeError> {
    T::deserialize(v).map_err(|e| DecodeError(e.to_string()))
}

/// The fields of an answer this crate does not type, by path (`Policies/0/Extra`): a renamed
/// or new field shows up here instead of being silently zero.
pub trait Fields {
    fn unknown_fields(&self) -> Vec<String>;
}

fn unknown_in<T: Fields>(prefix: &str, items: &[T]) -> Vec<String> {
    items
        .iter()
        .enumerate()
        .flat_map(|(i, x)| {
            x.unknown_fields()
                .into_iter()
                .map(move |f| format!("{prefix}/{i}/{f}"))
        })
        .collect()
}

macro_rules! fields {
    ($t:ty $(, $list:ident = $name:literal)*) => {
        impl Fields for $t {
            fn unknown_fields(&self) -> Vec<String> {
                self.unknown
                    .0
                    .keys()
                    .cloned()
                    $(.chain(unknown_in($name, &self.$list)))*
                    .collect()
            }
        }
    };
}

fields!(AclLink);
fields!(ServiceIdentity);
fields!(NodeIdentity);
fields!(AclPolicy);
fields!(AclPolicyListEntry);
fields!(
    AclRole,
    policies = "Policies",
    service_identities = "ServiceIdentities",
    node_identities = "NodeIdentities"
);
fields!(
    AclToken,
    policies = "Policies",
    roles = "Roles",
    service_identities = "ServiceIdentities",
    node_identities = "NodeIdentities"
);
fields!(AclBindingRule);
fields!(AclAuthMethod);
fields!(CaConfiguration);

/// Decodes an answer and refuses any field this crate does not type: for tests holding a
/// Consul-compatible server to Consul's spelling.
pub fn decode_strict<T: DeserializeOwned + Fields>(v: &Value) -> Result<T, DecodeError> {
    let t: T = decode(v)?;
    let unknown = t.unknown_fields();
    if unknown.is_empty() {
        Ok(t)
    } else {
        Err(DecodeError(format!(
            "fields not in Consul's API: {}",
            unknown.join(", ")
        )))
    }
}

/// The request body of an object: its Consul fields, without server-managed and unknown ones.
pub fn request<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// `null` decodes as the zero value, as Go's `encoding/json` leaves a nil slice or string.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Fields of an answer no type here knows (a newer Consul's), secrets removed: kept for
/// diagnosis, never compared, never sent.
#[derive(Debug, Clone, Default)]
pub struct Unknown(pub BTreeMap<String, Value>);

impl PartialEq for Unknown {
    fn eq(&self, _: &Unknown) -> bool {
        true
    }
}

impl<'de> Deserialize<'de> for Unknown {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Unknown, D::Error> {
        let mut m = BTreeMap::<String, Value>::deserialize(d)?;
        m.retain(|k, _| !is_secret(k));
        m.values_mut().for_each(strip_secrets);
        Ok(Unknown(m))
    }
}

impl Serialize for Unknown {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
}

/// What the server sets on every object (`Hash`, `CreateIndex`, `ModifyIndex`, and a token's
/// `CreateTime`): read, never sent, never compared.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Server {
    /// Go's `[]byte`, base64 in JSON.
    #[serde(rename = "Hash", default, deserialize_with = "nullable")]
    pub hash: String,
    #[serde(rename = "CreateIndex", default)]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex", default)]
    pub modify_index: u64,
    #[serde(rename = "CreateTime", default, deserialize_with = "nullable")]
    pub create_time: String,
}

impl PartialEq for Server {
    fn eq(&self, _: &Server) -> bool {
        true
    }
}

impl Serialize for Server {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
}

/// A link to a policy or role, by ID or name (`ACLLink`, `ACLTokenPolicyLink`,
/// `ACLTokenRoleLink`, `ACLRolePolicyLink` in api/acl.go).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AclLink {
    #[serde(
        rename = "ID",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    #[serde(
        rename = "Name",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `ACLServiceIdentity` in api/acl.go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceIdentity {
    #[serde(rename = "ServiceName", default, deserialize_with = "nullable")]
    pub service_name: String,
    #[serde(
        rename = "Datacenters",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub datacenters: Vec<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `ACLNodeIdentity` in api/acl.go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeIdentity {
    #[serde(rename = "NodeName", default, deserialize_with = "nullable")]
    pub node_name: String,
    #[serde(rename = "Datacenter", default, deserialize_with = "nullable")]
    pub datacenter: String,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `ACLPolicy` in api/acl.go: `GET /v1/acl/policy/:id`, the body of `PUT /v1/acl/policy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AclPolicy {
    #[serde(
        rename = "ID",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    #[serde(rename = "Name", default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(rename = "Description", default, deserialize_with = "nullable")]
    pub description: String,
    #[serde(rename = "Rules", default, deserialize_with = "nullable")]
    pub rules: String,
    #[serde(rename = "Datacenters", default, deserialize_with = "nullable")]
    pub datacenters: Vec<String>,
    #[serde(flatten)]
    pub server: Server,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `ACLPolicyListEntry` in api/acl.go: an element of `GET /v1/acl/policies`, without the rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AclPolicyListEntry {
    #[serde(rename = "ID", default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(rename = "Name", default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(rename = "Description", default, deserialize_with = "nullable")]
    pub description: String,
    #[serde(rename = "Datacenters", default, deserialize_with = "nullable")]
    pub datacenters: Vec<String>,
    #[serde(flatten)]
    pub server: Server,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `ACLRole` in api/acl.go: `GET /v1/acl/role/:id`, an element of `GET /v1/acl/roles`, the
/// body of `PUT /v1/acl/role`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AclRole {
    #[serde(
        rename = "ID",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    #[serde(rename = "Name", default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(rename = "Description", default, deserialize_with = "nullable")]
    pub description: String,
    #[serde(rename = "Policies", default, deserialize_with = "nullable")]
    pub policies: Vec<AclLink>,
    #[serde(rename = "ServiceIdentities", default, deserialize_with = "nullable")]
    pub service_identities: Vec<ServiceIdentity>,
    #[serde(rename = "NodeIdentities", default, deserialize_with = "nullable")]
    pub node_identities: Vec<NodeIdentity>,
    #[serde(flatten)]
    pub server: Server,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// A Go `time.Duration` as Consul's JSON carries it: nanoseconds, or a duration string a
/// request may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GoDuration {
    Nanos(i64),
    Text(String),
}

/// `ACLToken` and `ACLTokenListEntry` in api/acl.go: `GET /v1/acl/token/:accessor`, an element
/// of `GET /v1/acl/tokens`, the body of `PUT /v1/acl/token`. There is no `SecretID` field: a
/// token's secret is sent by the executor beside this body, never read back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AclToken {
    #[serde(
        rename = "AccessorID",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub accessor_id: String,
    #[serde(rename = "Description", default, deserialize_with = "nullable")]
    pub description: String,
    #[serde(rename = "Policies", default, deserialize_with = "nullable")]
    pub policies: Vec<AclLink>,
    #[serde(rename = "Roles", default, deserialize_with = "nullable")]
    pub roles: Vec<AclLink>,
    #[serde(rename = "ServiceIdentities", default, deserialize_with = "nullable")]
    pub service_identities: Vec<ServiceIdentity>,
    #[serde(rename = "NodeIdentities", default, deserialize_with = "nullable")]
    pub node_identities: Vec<NodeIdentity>,
    #[serde(rename = "Local", default, deserialize_with = "nullable")]
    pub local: bool,
    #[serde(
        rename = "AuthMethod",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub auth_method: String,
    #[serde(
        rename = "ExpirationTTL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub expiration_ttl: Option<GoDuration>,
    #[serde(
        rename = "ExpirationTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub expiration_time: Option<String>,
    #[serde(flatten)]
    pub server: Server,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `ACLBindingRule` in api/acl.go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AclBindingRule {
    #[serde(
        rename = "ID",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    #[serde(rename = "Description", default, deserialize_with = "nullable")]
    pub description: String,
    #[serde(rename = "AuthMethod", default, deserialize_with = "nullable")]
    pub auth_method: String,
    #[serde(rename = "Selector", default, deserialize_with = "nullable")]
    pub selector: String,
    #[serde(rename = "BindType", default, deserialize_with = "nullable")]
    pub bind_type: String,
    #[serde(rename = "BindName", default, deserialize_with = "nullable")]
    pub bind_name: String,
    #[serde(flatten)]
    pub server: Server,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `ACLAuthMethod` in api/acl.go. Its `Config` is the method's own (a JWT or OIDC secret may sit
/// in it under another name); it is kept as Consul answers it, secret keys removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AclAuthMethod {
    #[serde(rename = "Name", default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(rename = "Type", default, deserialize_with = "nullable")]
    pub method_type: String,
    #[serde(
        rename = "DisplayName",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub display_name: String,
    #[serde(
        rename = "Description",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub description: String,
    #[serde(
        rename = "MaxTokenTTL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_token_ttl: Option<GoDuration>,
    #[serde(
        rename = "TokenLocality",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub token_locality: String,
    #[serde(rename = "Config", default, deserialize_with = "secret_free_map")]
    pub config: Map<String, Value>,
    #[serde(flatten)]
    pub server: Server,
    #[serde(flatten)]
    pub unknown: Unknown,
}

fn secret_free_map<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    let mut v = Value::Object(nullable::<D, Map<String, Value>>(d)?);
    strip_secrets(&mut v);
    match v {
        Value::Object(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

/// `CAConfig` in api/connect_ca.go: `GET`/`PUT /v1/connect/ca/configuration`. `Config` loses
/// `PrivateKey` and `Token` on decode; `State` is the provider's own and is never sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaConfiguration {
    #[serde(rename = "Provider", default, deserialize_with = "nullable")]
    pub provider: String,
    #[serde(rename = "Config", default, deserialize_with = "secret_free_map")]
    pub config: Map<String, Value>,
    #[serde(
        rename = "State",
        default,
        deserialize_with = "nullable",
        skip_serializing
    )]
    pub state: BTreeMap<String, String>,
    #[serde(
        rename = "ForceWithoutCrossSigning",
        default,
        deserialize_with = "nullable"
    )]
    pub force_without_cross_signing: bool,
    #[serde(flatten)]
    pub server: Server,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// One ACL object as the API answers it; a policy listed without its rules is a stub.
#[derive(Debug, Clone, PartialEq)]
pub enum AclObject {
    Policy(AclPolicy),
    PolicyStub(AclPolicyListEntry),
    Role(AclRole),
    Token(AclToken),
}

impl AclObject {
    /// The object's identifier (`AccessorID` for tokens).
    pub fn id(&self) -> &str {
        match self {
            AclObject::Policy(p) => &p.id,
            AclObject::PolicyStub(p) => &p.id,
            AclObject::Role(r) => &r.id,
            AclObject::Token(t) => &t.accessor_id,
        }
    }

    /// The name of a policy or role; empty for a token (tokens have none in Consul).
    pub fn name(&self) -> &str {
        match self {
            AclObject::Policy(p) => &p.name,
            AclObject::PolicyStub(p) => &p.name,
            AclObject::Role(r) => &r.name,
            AclObject::Token(_) => "",
        }
    }

    pub fn server(&self) -> &Server {
        match self {
            AclObject::Policy(p) => &p.server,
            AclObject::PolicyStub(p) => &p.server,
            AclObject::Role(r) => &r.server,
            AclObject::Token(t) => &t.server,
        }
    }

    pub fn modify_index(&self) -> u64 {
        self.server().modify_index
    }

    /// The policy links of a role or token.
    pub fn policies(&self) -> &[AclLink] {
        match self {
            AclObject::Role(r) => &r.policies,
            AclObject::Token(t) => &t.policies,
            _ => &[],
        }
    }

    /// A policy answer: whole when it carries `Rules` (a single read, or a list that includes
    /// them), a stub otherwise.
    pub fn policy(v: &Value) -> Result<AclObject, DecodeError> {
        if v.get("Rules").is_some() {
            decode(v).map(AclObject::Policy)
        } else {
            decode(v).map(AclObject::PolicyStub)
        }
    }

    pub fn role(v: &Value) -> Result<AclObject, DecodeError> {
        decode(v).map(AclObject::Role)
    }

    pub fn token(v: &Value) -> Result<AclObject, DecodeError> {
        decode(v).map(AclObject::Token)
    }
}

#[cfg(test)]
mod tests;
