//! The desired state of a Consul service mesh, as loaded from a repository.
//!
//! Pure data: no IO, no clock, no parsing. Config entries use Consul's own field names
//! (serde renames to Consul's CamelCase), because those names *are* the domain vocabulary and
//! the serialized form is exactly the body Consul accepts on `PUT /v1/config`. Each object
//! keeps the [`Span`](mesh_diagnostics::Span) it was loaded from (never serialized) so every
//! finding can point at `path:line:col`.

pub mod acl;
pub mod agent;
pub mod ca;
pub mod chain;
pub mod config_entry;
pub mod entry_secret;
pub mod service;
pub mod settings;

pub use acl::{
    Acl, AclLink, AclPolicy, AclRole, AclToken, NodeIdentity, SecretSource, ServiceIdentity,
};
pub use agent::{AgentConfig, AgentOrigin, AgentSetting, AgentValue};
pub use ca::CaConfig;
pub use chain::ChainEntry;
pub use config_entry::{
    ConfigEntry, EntryKind, IntentionAction, IntentionHttpHeaderPermission,
    IntentionHttpPermission, IntentionPermission, MeshEntry, OtherEntry, ProxyDefaults,
    ServiceDefaults, ServiceIntentions, SourceIntention,
};
pub use service::{Service, ServiceOrigin, Upstream};
pub use settings::{AclSettings, DefaultPolicy, GithubStatus, Notifications, Settings};

/// Everything a repository declares, normalized and sorted (services by name, config entries by
/// kind then name, ACL objects by name), so two loads of the same content compare equal whatever
/// the order of files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredState {
    pub settings: Settings,
    pub services: Vec<Service>,
    pub config_entries: Vec<ConfigEntry>,
    pub acl: Acl,
    pub ca_config: Option<CaConfig>,
    /// Consul agent configuration and consul-k8s Helm values files, in path order: the posture
    /// of the agents, which `check` lints. Nothing here is written to Consul.
    pub agents: Vec<AgentConfig>,
    /// Literal environment values of workloads (Nomad task `env`), for the secrets check.
    /// Never printed: values may be secrets.
    pub workload_env: Vec<WorkloadEnv>,
}

/// One literal environment variable of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadEnv {
    /// `job/group/task`.
    pub workload: String,
    pub key: String,
    pub value: String,
    pub span: mesh_diagnostics::Span,
}

impl WorkloadEnv {
    /// A value written literally (not a `${...}` interpolation or a `{{...}}` template) under a
    /// name that says it is a secret: the check warns about it, and its text is masked.
    pub fn is_literal_secret(&self) -> bool {
        let k = self.key.to_ascii_lowercase();
        let secret_name = [
            "password",
            "passwd",
            "secret",
            "token",
            "api_key",
            "apikey",
            "private_key",
            "credential",
        ]
        .iter()
        .any(|w| k.contains(w));
        secret_name
            && !self.value.is_empty()
            && !self.value.contains("${")
            && !self.value.contains("{{")
    }
}

impl DesiredState {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn config_entry(&self, kind: EntryKind, name: &str) -> Option<&ConfigEntry> {
        self.config_entries
            .iter()
            .find(|e| e.kind() == kind && e.name() == name)
    }

    pub fn intentions(&self) -> impl Iterator<Item = &ServiceIntentions> {
        self.config_entries.iter().filter_map(|e| match e {
            ConfigEntry::ServiceIntentions(i) => Some(i),
            _ => None,
        })
    }

    /// Sorts every collection into its canonical order.
    pub fn sort(&mut self) {
        self.services.sort_by(|a, b| a.name.cmp(&b.name));
        self.config_entries.sort_by(|a, b| {
            (a.kind().order(), a.kind().as_str(), a.name()).cmp(&(
                b.kind().order(),
                b.kind().as_str(),
                b.name(),
            ))
        });
        self.acl.policies.sort_by(|a, b| a.name.cmp(&b.name));
        self.acl.roles.sort_by(|a, b| a.name.cmp(&b.name));
        self.acl.tokens.sort_by(|a, b| a.name.cmp(&b.name));
    }
}
