use mesh_diagnostics::Span;
use serde::{Deserialize, Serialize};

/// `mesh-gitops.hcl` at the repository root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub datacenter: String,
    pub acl: AclSettings,
    /// Ownership id written on everything mesh-gitops manages.
    pub owner: String,
    /// Built-in guardrail packs to enable, e.g. `production`.
    pub guardrails: Vec<String>,
    #[serde(skip)]
    pub span: Option<Span>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            datacenter: "dc1".into(),
            acl: AclSettings::default(),
            owner: "mesh-gitops".into(),
            guardrails: Vec::new(),
            span: None,
        }
    }
}

/// The Consul ACL settings the repository targets. Absent: ACLs disabled, as in Consul.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AclSettings {
    pub enabled: bool,
    pub default_policy: DefaultPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultPolicy {
    #[default]
    Allow,
    Deny,
}

impl AclSettings {
    /// The decision when no intention matches (consul-semantics 2.6): allow with ACLs off,
    /// otherwise the ACL default policy.
    pub fn default_intention_allows(&self) -> bool {
        !self.enabled || self.default_policy == DefaultPolicy::Allow
    }
}
