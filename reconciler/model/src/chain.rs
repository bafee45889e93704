//! The discovery-chain config entries: `service-router`, `service-splitter` and
//! `service-resolver` (`agent/structs/config_entry_discoverychain.go`). The fields that decide
//! where a request goes are typed; the rest (timeouts, retries, header changes, load balancing)
//! is kept as canonical JSON in `rest`, as for service-defaults.

use mesh_diagnostics::Span;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

fn is_false(b: &bool) -> bool {
    !*b
}

/// A weight as Go's encoder writes a `float32`: `90`, not `90.0`.
fn go_float<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

/// One of the three discovery-chain kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainEntry {
    Router(ServiceRouter),
    Splitter(ServiceSplitter),
    Resolver(ServiceResolver),
}

impl ChainEntry {
    /// The three kinds' names, as Consul spells them.
    pub const KINDS: [&'static str; 3] = ["service-router", "service-splitter", "service-resolver"];

    pub fn kind(&self) -> &'static str {
        match self {
            ChainEntry::Router(_) => "service-router",
            ChainEntry::Splitter(_) => "service-splitter",
            ChainEntry::Resolver(_) => "service-resolver",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ChainEntry::Router(e) => &e.name,
            ChainEntry::Splitter(e) => &e.name,
            ChainEntry::Resolver(e) => &e.name,
        }
    }

    pub fn span(&self) -> Span {
        match self {
            ChainEntry::Router(e) => e.span,
            ChainEntry::Splitter(e) => e.span,
            ChainEntry::Resolver(e) => e.span,
        }
    }

    pub fn meta(&self) -> &BTreeMap<String, String> {
        match self {
            ChainEntry::Router(e) => &e.meta,
            ChainEntry::Splitter(e) => &e.meta,
            ChainEntry::Resolver(e) => &e.meta,
        }
    }

    pub fn meta_mut(&mut self) -> &mut BTreeMap<String, String> {
        match self {
            ChainEntry::Router(e) => &mut e.meta,
            ChainEntry::Splitter(e) => &mut e.meta,
            ChainEntry::Resolver(e) => &mut e.meta,
        }
    }

    /// The body fields after `Kind`, in Consul's order.
    pub fn to_value(&self) -> serde_json::Result<Value> {
        match self {
            ChainEntry::Router(e) => serde_json::to_value(e),
            ChainEntry::Splitter(e) => serde_json::to_value(e),
            ChainEntry::Resolver(e) => serde_json::to_value(e),
        }
    }
}

/// `service-router`: L7 routes; the first that matches decides, and anything unmatched goes to
/// the service itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceRouter {
    #[serde(default)]
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub routes: Vec<ServiceRoute>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub meta: BTreeMap<String, String>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceRoute {
    #[serde(rename = "Match", skip_serializing_if = "Option::is_none", default)]
    pub matches: Option<RouteMatch>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub destination: Option<RouteDestination>,
    #[serde(skip)]
    pub span: Span,
}

impl ServiceRoute {
    /// The HTTP criteria, if any are set (`ServiceRouteMatch.IsEmpty`).
    pub fn http(&self) -> Option<&RouteHttpMatch> {
        self.matches
            .as_ref()
            .and_then(|m| m.http.as_ref())
            .filter(|h| !h.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RouteMatch {
    #[serde(rename = "HTTP", skip_serializing_if = "Option::is_none", default)]
    pub http: Option<RouteHttpMatch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RouteHttpMatch {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path_exact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path_regex: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub header: Vec<RouteHeaderMatch>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub query_param: Vec<RouteQueryMatch>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub methods: Vec<String>,
}

impl RouteHttpMatch {
    /// `ServiceRouteHTTPMatch.IsEmpty`.
    pub fn is_empty(&self) -> bool {
        self.path_exact.is_none()
            && self.path_prefix.is_none()
            && self.path_regex.is_none()
            && self.header.is_empty()
            && self.query_param.is_empty()
            && self.methods.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RouteHeaderMatch {
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RouteQueryMatch {
    #[serde(default)]
    pub name: String,
    #[serde(skip_serializing_if = "is_false", default)]
    pub present: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub regex: Option<String>,
}

/// Where a matched request goes: a service (default: the router's own) and subset; the
/// request-handling fields are kept in `rest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RouteDestination {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service_subset: Option<String>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

/// `service-splitter`: weighted splits summing to 100.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceSplitter {
    #[serde(default)]
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub splits: Vec<ServiceSplit>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub meta: BTreeMap<String, String>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceSplit {
    /// Percent, 0 to 100, in steps of 0.01 once normalized (`NormalizeServiceSplitWeight`).
    /// Consul writes `Weight` even when zero (no omitempty).
    #[serde(default, serialize_with = "go_float")]
    pub weight: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service_subset: Option<String>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
    #[serde(skip)]
    pub span: Span,
}

/// `service-resolver`: subsets, a default subset, a redirect or failover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceResolver {
    #[serde(default)]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub default_subset: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub subsets: BTreeMap<String, ResolverSubset>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub redirect: Option<ResolverRedirect>,
    /// Keyed by subset name, `*` for any subset without its own.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub failover: BTreeMap<String, ResolverFailover>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub meta: BTreeMap<String, String>,
    /// `ConnectTimeout`, `RequestTimeout`, `LoadBalancer`, as canonical JSON.
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ResolverSubset {
    /// A go-bexpr filter over the service instance (`Service.Meta.version == v2`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub filter: Option<String>,
    #[serde(skip_serializing_if = "is_false", default)]
    pub only_passing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ResolverRedirect {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service_subset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub datacenter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub peer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ResolverFailover {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service_subset: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub datacenters: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub targets: Vec<FailoverTarget>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub policy: Option<FailoverPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct FailoverTarget {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service_subset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub datacenter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub peer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct FailoverPolicy {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub regions: Vec<String>,
}
