//! Consul config entries. The four kinds mesh-gitops reasons about are typed; every other kind
//! is carried through as canonical JSON.

use mesh_diagnostics::Span;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Config entry kinds, in the order writes must happen (protocol before the intentions that
/// depend on it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    ProxyDefaults,
    Mesh,
    ServiceDefaults,
    ServiceIntentions,
    /// Any other kind Consul knows (`service-router`, `ingress-gateway`, ...).
    Other(String),
}

impl EntryKind {
    /// Every kind Consul CE accepts (`AllConfigEntryKinds`).
    pub const CONSUL_KINDS: &'static [&'static str] = &[
        "service-defaults",
        "proxy-defaults",
        "service-router",
        "service-splitter",
        "service-resolver",
        "ingress-gateway",
        "terminating-gateway",
        "service-intentions",
        "mesh",
        "exported-services",
        "sameness-group",
        "api-gateway",
        "bound-api-gateway",
        "http-route",
        "tcp-route",
        "file-system-certificate",
        "inline-certificate",
        "control-plane-request-limit",
        "jwt-provider",
    ];

    pub fn parse(kind: &str) -> Option<EntryKind> {
        Some(match kind {
            "proxy-defaults" => EntryKind::ProxyDefaults,
            "mesh" => EntryKind::Mesh,
            "service-defaults" => EntryKind::ServiceDefaults,
            "service-intentions" => EntryKind::ServiceIntentions,
            k if Self::CONSUL_KINDS.contains(&k) => EntryKind::Other(k.to_owned()),
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            EntryKind::ProxyDefaults => "proxy-defaults",
            EntryKind::Mesh => "mesh",
            EntryKind::ServiceDefaults => "service-defaults",
            EntryKind::ServiceIntentions => "service-intentions",
            EntryKind::Other(k) => k,
        }
    }

    /// Position in the write order: defaults first, then discovery chain, then intentions.
    pub fn order(&self) -> u8 {
        match self {
            EntryKind::ProxyDefaults => 0,
            EntryKind::Mesh => 1,
            EntryKind::ServiceDefaults => 2,
            EntryKind::Other(k) if k == "service-resolver" => 3,
            EntryKind::Other(k) if k == "service-splitter" => 4,
            EntryKind::Other(k) if k == "service-router" => 5,
            EntryKind::Other(_) => 6,
            EntryKind::ServiceIntentions => 7,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConfigEntry {
    ServiceIntentions(ServiceIntentions),
    ServiceDefaults(ServiceDefaults),
    ProxyDefaults(ProxyDefaults),
    Mesh(MeshEntry),
    /// `service-router`, `service-splitter`, `service-resolver`.
    Chain(crate::chain::ChainEntry),
    Other(OtherEntry),
}

impl ConfigEntry {
    pub fn kind(&self) -> EntryKind {
        match self {
            ConfigEntry::ServiceIntentions(_) => EntryKind::ServiceIntentions,
            ConfigEntry::ServiceDefaults(_) => EntryKind::ServiceDefaults,
            ConfigEntry::ProxyDefaults(_) => EntryKind::ProxyDefaults,
            ConfigEntry::Mesh(_) => EntryKind::Mesh,
            ConfigEntry::Chain(c) => EntryKind::Other(c.kind().to_owned()),
            ConfigEntry::Other(o) => EntryKind::Other(o.kind.clone()),
        }
    }

    /// The entry's name; `mesh` for the mesh singleton.
    pub fn name(&self) -> &str {
        match self {
            ConfigEntry::ServiceIntentions(e) => &e.name,
            ConfigEntry::ServiceDefaults(e) => &e.name,
            ConfigEntry::ProxyDefaults(e) => &e.name,
            ConfigEntry::Mesh(_) => "mesh",
            ConfigEntry::Chain(c) => c.name(),
            ConfigEntry::Other(e) => &e.name,
        }
    }

    /// Where the entry was defined.
    pub fn span(&self) -> Span {
        match self {
            ConfigEntry::ServiceIntentions(e) => e.span,
            ConfigEntry::ServiceDefaults(e) => e.span,
            ConfigEntry::ProxyDefaults(e) => e.span,
            ConfigEntry::Mesh(e) => e.span,
            ConfigEntry::Chain(c) => c.span(),
            ConfigEntry::Other(e) => e.span,
        }
    }

    pub fn meta(&self) -> &BTreeMap<String, String> {
        match self {
            ConfigEntry::ServiceIntentions(e) => &e.meta,
            ConfigEntry::ServiceDefaults(e) => &e.meta,
            ConfigEntry::ProxyDefaults(e) => &e.meta,
            ConfigEntry::Mesh(e) => &e.meta,
            ConfigEntry::Chain(c) => c.meta(),
            ConfigEntry::Other(e) => &e.meta,
        }
    }

    pub fn meta_mut(&mut self) -> &mut BTreeMap<String, String> {
        match self {
            ConfigEntry::ServiceIntentions(e) => &mut e.meta,
            ConfigEntry::ServiceDefaults(e) => &mut e.meta,
            ConfigEntry::ProxyDefaults(e) => &mut e.meta,
            ConfigEntry::Mesh(e) => &mut e.meta,
            ConfigEntry::Chain(c) => c.meta_mut(),
            ConfigEntry::Other(e) => &mut e.meta,
        }
    }

    /// The JSON body for `PUT /v1/config`: `Kind`, then `Name` (not for `mesh`), then the
    /// kind's fields in Consul's order.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert(
            "Kind".into(),
            Value::String(self.kind().as_str().to_owned()),
        );
        let body = match self {
            ConfigEntry::ServiceIntentions(e) => serde_json::to_value(e),
            ConfigEntry::ServiceDefaults(e) => serde_json::to_value(e),
            ConfigEntry::ProxyDefaults(e) => serde_json::to_value(e),
            ConfigEntry::Mesh(e) => serde_json::to_value(e),
            ConfigEntry::Chain(c) => c.to_value(),
            ConfigEntry::Other(e) => {
                out.insert("Name".into(), Value::String(e.name.clone()));
                let mut body = e.body.clone();
                if !e.meta.is_empty() {
                    body.insert(
                        "Meta".into(),
                        serde_json::to_value(&e.meta).expect("string map serializes"),
                    );
                }
                Ok(Value::Object(body))
            }
        }
        .expect("config entries always serialize");
        if let Value::Object(fields) = body {
            out.extend(fields);
        }
        Value::Object(out)
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `service-intentions`: every intention whose destination is `name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceIntentions {
    /// The destination service, or `*`.
    pub name: String,
    /// Consul answers `"Sources": null` for none (`[]*SourceIntention` without omitempty).
    #[serde(default)]
    pub sources: Vec<SourceIntention>,
    #[serde(rename = "JWT", skip_serializing_if = "Option::is_none", default)]
    pub jwt: Option<Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub meta: BTreeMap<String, String>,
    #[serde(skip)]
    pub span: Span,
}

impl ServiceIntentions {
    /// The Meta key that, set to `"true"`, declares the entry shared by owners: each owns only
    /// the sources it declares (mesh-plan's `shared`), and other sources may exist in Consul.
    pub const SHARED_KEY: &'static str = "mesh-gitops-shared";

    pub fn is_shared(&self) -> bool {
        self.meta.get(Self::SHARED_KEY).map(String::as_str) == Some("true")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntentionAction {
    Allow,
    Deny,
}

impl IntentionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            IntentionAction::Allow => "allow",
            IntentionAction::Deny => "deny",
        }
    }
}

/// One source of a `service-intentions` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct SourceIntention {
    /// The source service, or `*`. Absent is empty, which validation reports.
    #[serde(default)]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub peer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sameness_group: Option<String>,
    /// L4 action; absent when `permissions` are given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub action: Option<IntentionAction>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub permissions: Vec<IntentionPermission>,
    /// Computed by Consul on write (consul-semantics 2.4); client values are ignored.
    #[serde(default)]
    pub precedence: u32,
    /// Always `consul` after normalization.
    #[serde(default)]
    pub r#type: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
    #[serde(skip)]
    pub span: Span,
}

/// An L7 permission: the first one matching a request decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IntentionPermission {
    pub action: IntentionAction,
    #[serde(rename = "HTTP", skip_serializing_if = "Option::is_none", default)]
    pub http: Option<IntentionHttpPermission>,
    #[serde(rename = "JWT", skip_serializing_if = "Option::is_none", default)]
    pub jwt: Option<Value>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct IntentionHttpPermission {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path_exact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path_regex: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub header: Vec<IntentionHttpHeaderPermission>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub methods: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct IntentionHttpHeaderPermission {
    /// Absent is empty, which validation reports.
    #[serde(default)]
    pub name: String,
    #[serde(skip_serializing_if = "is_false", default)]
    pub present: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub suffix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub regex: Option<String>,
    #[serde(skip_serializing_if = "is_false", default)]
    pub invert: bool,
}

/// `service-defaults`. `Protocol` is typed because L7 intentions depend on it; every other
/// field is kept as canonical JSON in `rest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceDefaults {
    pub name: String,
    /// Lower-cased on write; absent means `tcp`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub meta: BTreeMap<String, String>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
    #[serde(skip)]
    pub span: Span,
}

/// `proxy-defaults` (name always `global`). `Config` is opaque; `Config.protocol` is the
/// mesh-wide default protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ProxyDefaults {
    /// Always `global`; an empty name is normalized to it.
    #[serde(default)]
    pub name: String,
    #[serde(skip_serializing_if = "Map::is_empty", default)]
    pub config: Map<String, Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub meta: BTreeMap<String, String>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
    #[serde(skip)]
    pub span: Span,
}

/// The `mesh` singleton. It has no `Name` field in Consul.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct MeshEntry {
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub meta: BTreeMap<String, String>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
    #[serde(skip)]
    pub span: Span,
}

/// A kind mesh-gitops does not interpret, carried through with canonical key spelling.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OtherEntry {
    pub kind: String,
    pub name: String,
    pub meta: BTreeMap<String, String>,
    /// Every field except Kind, Name and Meta.
    pub body: Map<String, Value>,
    pub span: Span,
}
