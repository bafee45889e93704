use mesh_diagnostics::Span;
use serde::{Deserialize, Serialize};

/// A service in the mesh and the upstreams it depends on, from a Consul service definition or a
/// Nomad job group service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    /// The application's port, when known as a number.
    pub port: Option<u16>,
    /// The port as written when it is a Nomad port label rather than a number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_label: Option<String>,
    /// The address the application listens on, when the definition gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Joins the mesh through a sidecar proxy (`connect { sidecar_service {} }`).
    pub sidecar: bool,
    /// Connect-native (`connect { native = true }`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub native: bool,
    /// Instances to run (Nomad group `count`; 1 for a service definition).
    pub instances: u32,
    pub upstreams: Vec<Upstream>,
    /// The proxy's opaque `config` map (e.g. `protocol`), if any.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub proxy_config: serde_json::Map<String, serde_json::Value>,
    /// The service's `meta` (what a resolver subset's `Filter` reads as `Service.Meta`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub meta: std::collections::BTreeMap<String, String>,
    pub origin: ServiceOrigin,
    /// The whole service block.
    #[serde(skip)]
    pub span: Span,
}

/// Where a service was declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case")]
pub enum ServiceOrigin {
    /// A Consul agent service definition (`service { ... }`).
    ServiceDefinition,
    /// A Nomad job file; the group is the unit that shares a network namespace.
    NomadJob {
        job: String,
        group: String,
        /// `network { mode }` of the group, `host` when absent.
        network_mode: String,
    },
    /// Known only from Consul's catalog (a live Connect service the repository does not
    /// declare), with the upstreams its sidecars declare there.
    Catalog,
}

/// A declared dependency: the sidecar listens on `local_bind_port` and forwards to
/// `destination_name` over mTLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    pub destination_name: String,
    pub local_bind_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_bind_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_type: Option<String>,
    #[serde(skip)]
    pub span: Span,
}
