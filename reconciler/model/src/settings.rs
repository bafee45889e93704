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
    /// Where the reconcile loop reports what it did.
    #[serde(default)]
    pub notifications: Notifications,
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
            notifications: Notifications::default(),
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

/// `notifications { ... }`: the reconcile loop's reports of applied, refused, healed, blocked
/// and failed passes. Every URL or token is a secret reference: a webhook URL carries its
/// token.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Notifications {
    /// `webhook { url_from = "env:VAR" }`: a JSON document per event.
    pub webhook: Option<crate::SecretSource>,
    /// `slack { url_from = "file:path" }`: a Slack-compatible incoming-webhook message.
    pub slack: Option<crate::SecretSource>,
    /// `github { ... }`: a commit status on the revision.
    pub github: Option<GithubStatus>,
}

/// `github { repository = "org/repo" token_from = "env:GITHUB_TOKEN" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubStatus {
    /// `owner/name`.
    pub repository: String,
    pub token: crate::SecretSource,
    /// The REST API's root (GitHub Enterprise: `https://HOST/api/v3`); default
    /// `https://api.github.com`.
    pub api_url: Option<String>,
    /// The status's context; default `mesh-gitops/<owner>`.
    pub context: Option<String>,
}
