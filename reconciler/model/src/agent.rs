//! Consul agent configuration and consul-k8s Helm values found in the repository: not config
//! entries (nothing here is written to Consul), but the posture of the agents that run the mesh,
//! which `check` lints. Each setting is kept by its key path with where it is written; a secret's
//! value is never kept, only that one is written there.

use mesh_diagnostics::Span;
use serde::Serialize;
use std::collections::BTreeMap;

/// What kind of file the settings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentOrigin {
    /// A Consul agent configuration file (HCL or JSON), as `consul agent -config-file` reads it.
    ConsulAgent,
    /// consul-k8s Helm chart values (`global:`, `server:`, `connectInject:` ...).
    HelmValues,
}

/// One value as written. Secrets are never kept: a literal secret is [`AgentValue::Secret`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AgentValue {
    Bool(bool),
    Int(i64),
    Str(String),
    /// A list, with its scalar items (objects in it are not kept).
    List(Vec<AgentValue>),
    /// A literal secret: its value is not kept.
    #[serde(serialize_with = "redacted")]
    Secret,
}

fn redacted<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<secret>")
}

/// A setting: its value and where it is written (the key through the end of the value).
/// Serialized as the value alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AgentSetting {
    pub value: AgentValue,
    #[serde(skip)]
    pub span: Span,
}

/// One agent configuration file or Helm values file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentConfig {
    /// The file, relative to the repository's root. Consul merges the files of one directory
    /// (`-config-dir`), so the findings about a setting that is missing read them together.
    pub path: String,
    pub origin: AgentOrigin,
    /// Every scalar setting by its key path: for an agent file in Consul's lower-case spelling
    /// (`tls.internal_rpc.verify_server_hostname`, `acl.tokens.agent`), for Helm values as
    /// written (`global.tls.enabled`).
    pub settings: BTreeMap<String, AgentSetting>,
    /// The file's top-level object, where a finding about a missing setting points.
    #[serde(skip)]
    pub span: Span,
}

impl AgentConfig {
    pub fn get(&self, path: &str) -> Option<&AgentSetting> {
        self.settings.get(path)
    }

    /// The boolean at `path`, when one is written there.
    pub fn bool(&self, path: &str) -> Option<(bool, Span)> {
        match self.settings.get(path) {
            Some(AgentSetting {
                value: AgentValue::Bool(b),
                span,
            }) => Some((*b, *span)),
            _ => None,
        }
    }

    /// The string at `path`, when one is written there.
    pub fn str(&self, path: &str) -> Option<(&str, Span)> {
        match self.settings.get(path) {
            Some(AgentSetting {
                value: AgentValue::Str(s),
                span,
            }) => Some((s.as_str(), *span)),
            _ => None,
        }
    }

    /// The integer at `path`, when one is written there.
    pub fn int(&self, path: &str) -> Option<(i64, Span)> {
        match self.settings.get(path) {
            Some(AgentSetting {
                value: AgentValue::Int(i),
                span,
            }) => Some((*i, *span)),
            _ => None,
        }
    }

    /// Whether any setting is written under `prefix.` (or at `prefix` itself).
    pub fn has_under(&self, prefix: &str) -> bool {
        let dotted = format!("{prefix}.");
        self.settings
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .any(|(k, _)| k.as_str() == prefix || k.starts_with(&dotted))
    }

    /// Literal secrets: their key paths and where they are written.
    pub fn secrets(&self) -> impl Iterator<Item = (&str, Span)> {
        self.settings
            .iter()
            .filter(|(_, s)| s.value == AgentValue::Secret)
            .map(|(k, s)| (k.as_str(), s.span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_serialized_without_its_value() {
        let mut c = AgentConfig {
            path: "consul/agent.hcl".into(),
            origin: AgentOrigin::ConsulAgent,
            settings: BTreeMap::new(),
            span: Span::default(),
        };
        c.settings.insert(
            "acl.tokens.agent".into(),
            AgentSetting {
                value: AgentValue::Secret,
                span: Span::default(),
            },
        );
        c.settings.insert(
            "acl.enabled".into(),
            AgentSetting {
                value: AgentValue::Bool(true),
                span: Span::default(),
            },
        );
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["settings"]["acl.tokens.agent"], "<secret>");
        assert_eq!(json["settings"]["acl.enabled"], true);
        assert!(c.has_under("acl.tokens"));
        assert!(!c.has_under("acl.token"));
        assert_eq!(c.secrets().count(), 1);
        assert_eq!(c.bool("acl.enabled").map(|b| b.0), Some(true));
    }
}
