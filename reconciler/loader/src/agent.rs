//! Consul agent configuration files (HCL or JSON) and consul-k8s Helm values (YAML), recognised
//! by their top-level keys and kept as [`AgentConfig`]: every scalar setting by its key path,
//! with its span, a literal secret's value never kept.
//!
//! Agent files are read as Consul reads them (`agent/config/config.go`, `Parse` and
//! `FileSource.Parse`): keys match without regard to case (mapstructure), an HCL block or a
//! one-element list of objects is the object itself (`decode.HookWeakDecodeFromSlice`), and
//! values are not converted between types (no `WeaklyTypedInput`), so `verify_incoming = "true"`
//! stops the agent. A file may also hold service definitions (`service`, `services`), which are
//! read as service definition files are.

use crate::decode::entry_span;
use crate::service_def;
use base64::Engine as _;
use mesh_diagnostics::{Code, Diagnostic, Diagnostics, Span};
use mesh_model::{AgentConfig, AgentOrigin, AgentSetting, AgentValue, Service};
use mesh_syntax::{Entry, Node, NodeKind};
use std::collections::BTreeMap;

/// Top-level keys only a Consul agent configuration has (`agent/config/config.go`, `Config`
/// and `DeprecatedConfig` in `deprecated.go`). One of them makes a file an agent file.
const AGENT_KEYS: &[&str] = &[
    "acl",
    "acl_agent_master_token",
    "acl_agent_token",
    "acl_datacenter",
    "acl_default_policy",
    "acl_master_token",
    "acl_replication_token",
    "acl_token",
    "addresses",
    "advertise_addr",
    "auto_config",
    "auto_encrypt",
    "bind_addr",
    "bootstrap",
    "bootstrap_expect",
    "ca_file",
    "ca_path",
    "cert_file",
    "client_addr",
    "connect",
    "data_dir",
    "datacenter",
    "disable_remote_exec",
    "dns_config",
    "enable_local_script_checks",
    "enable_script_checks",
    "encrypt",
    "encrypt_verify_incoming",
    "encrypt_verify_outgoing",
    "key_file",
    "log_level",
    "node_name",
    "performance",
    "ports",
    "primary_datacenter",
    "recursors",
    "retry_join",
    "retry_join_wan",
    "server",
    "start_join",
    "telemetry",
    "tls",
    "ui",
    "ui_config",
    "verify_incoming",
    "verify_incoming_https",
    "verify_incoming_rpc",
    "verify_outgoing",
    "verify_server_hostname",
];

/// Keys of an agent file that are not agent settings: service and check definitions.
const NOT_SETTINGS: &[&str] = &["service", "services", "check", "checks"];

/// True for an object with a top-level agent key and nothing of a config entry, a Kubernetes
/// resource or a Nomad job (`Kind`, `Name`, `apiVersion`, `job`).
pub(crate) fn is_agent_config(node: &Node) -> bool {
    let Some(entries) = node.as_object() else {
        return false;
    };
    ["kind", "name", "apiversion", "job"]
        .iter()
        .all(|k| node.get_ci(k).is_none())
        && entries
            .iter()
            .any(|e| AGENT_KEYS.contains(&e.key.to_ascii_lowercase().as_str()))
}

/// Top-level sections of the consul-k8s chart's `values.yaml` besides `global`.
const HELM_SECTIONS: &[&str] = &[
    "client",
    "connectInject",
    "dns",
    "externalServers",
    "ingressGateways",
    "meshGateway",
    "server",
    "syncCatalog",
    "terminatingGateways",
    "ui",
];

/// True for consul-k8s Helm values: a top-level `global` object and another chart section,
/// and no Kubernetes resource's `apiVersion`/`kind`.
pub(crate) fn is_helm_values(node: &Node) -> bool {
    let Some(entries) = node.as_object() else {
        return false;
    };
    node.get_ci("apiVersion").is_none()
        && node.get_ci("kind").is_none()
        && entries
            .iter()
            .any(|e| e.key == "global" && e.value.as_object().is_some())
        && entries
            .iter()
            .any(|e| HELM_SECTIONS.contains(&e.key.as_str()))
}

/// Reads an agent file: its settings and the services it defines.
pub(crate) fn agent_config(
    path: &str,
    node: &Node,
    diags: &mut Diagnostics,
    redact: &mut Vec<Span>,
) -> (AgentConfig, Vec<Service>) {
    let mut config = AgentConfig {
        path: path.to_owned(),
        origin: AgentOrigin::ConsulAgent,
        settings: BTreeMap::new(),
        span: node.span,
    };
    let mut services = Vec::new();
    for e in node.as_object().unwrap_or(&[]) {
        let key = e.key.to_ascii_lowercase();
        if key == "service" || key == "services" {
            services.extend(service_def::service_entry(e, diags));
        } else if !NOT_SETTINGS.contains(&key.as_str()) {
            let mut f = Flat {
                agent: true,
                out: &mut config.settings,
                redact,
            };
            flatten(&key, e, &mut f);
        }
    }
    validate(&config, diags);
    gossip_key(node, diags);
    (config, services)
}

/// Reads Helm values. Keys are kept as written (Helm's are case-sensitive); a server's or
/// client's `extraConfig` (agent configuration as a JSON string) is searched for literal
/// secrets, which are kept as `server.extraConfig.<path>` at the string.
pub(crate) fn helm_values(path: &str, node: &Node, redact: &mut Vec<Span>) -> AgentConfig {
    let mut config = AgentConfig {
        path: path.to_owned(),
        origin: AgentOrigin::HelmValues,
        settings: BTreeMap::new(),
        span: node.span,
    };
    for e in node.as_object().unwrap_or(&[]) {
        let mut f = Flat {
            agent: false,
            out: &mut config.settings,
            redact: &mut *redact,
        };
        flatten(&e.key, e, &mut f);
    }
    let extra: Vec<(String, String, Span)> = config
        .settings
        .iter()
        .filter(|(k, _)| k.ends_with(".extraConfig"))
        .filter_map(|(k, s)| match &s.value {
            AgentValue::Str(text) => Some((k.clone(), text.clone(), s.span)),
            _ => None,
        })
        .collect();
    for (key, text, span) in extra {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let before = config.settings.len();
        json_secrets(&key, &v, "", span, &mut config.settings);
        if config.settings.len() > before {
            // The whole string holds a secret somewhere: mask its value.
            let value = key
                .split('.')
                .try_fold(node, |n, k| n.get_ci(k).map(|e| &e.value));
            redact.extend(value.map(|v| v.span));
        }
    }
    config
}

/// Key paths whose values are secrets: the gossip key, ACL tokens (and their pre-1.4 top-level
/// forms, `deprecated.go`), auto-config's intro token, the CA provider's private key and Vault
/// token, the Circonus API token, HCP's client secret.
pub(crate) fn is_secret_path(path: &str) -> bool {
    let path = path.to_ascii_lowercase();
    matches!(
        path.as_str(),
        "encrypt"
            | "acl_master_token"
            | "acl_token"
            | "acl_agent_token"
            | "acl_agent_master_token"
            | "acl_replication_token"
            | "auto_config.intro_token"
            | "connect.ca_config.private_key"
            | "connect.ca_config.token"
            | "telemetry.circonus_api_token"
            | "cloud.client_secret"
    ) || (path.starts_with("acl.tokens.") && !path.ends_with("accessor_id"))
}

/// Helm values whose scalar value is a literal secret: the chart takes a secret reference
/// (`secretName`/`secretKey`) there, so a string is the secret itself.
fn is_helm_secret_path(path: &str) -> bool {
    matches!(
        path,
        "global.acls.bootstrapToken"
            | "global.acls.replicationToken"
            | "global.acls.partitionToken"
            | "global.gossipEncryption"
            | "global.gossipEncryption.key"
    )
}

/// Where flattened settings go: the settings, and the spans of literal secrets' values, which
/// the loader masks in the source map so that no excerpt prints them.
struct Flat<'a> {
    agent: bool,
    out: &'a mut BTreeMap<String, AgentSetting>,
    redact: &'a mut Vec<Span>,
}

fn flatten(path: &str, e: &Entry, f: &mut Flat) {
    flatten_value(path, &e.value, entry_span(e), f);
}

fn flatten_value(path: &str, value: &Node, span: Span, f: &mut Flat) {
    let agent = f.agent;
    let secret = if agent {
        is_secret_path(path)
    } else {
        is_helm_secret_path(path)
    };
    let scalar = |v: &Node| -> Option<AgentValue> {
        match &v.kind {
            NodeKind::Bool(b) => Some(AgentValue::Bool(*b)),
            NodeKind::Int(i) => Some(AgentValue::Int(*i)),
            NodeKind::Float(f) => Some(AgentValue::Str(f.to_string())),
            NodeKind::String(s) if secret && !s.is_empty() && !is_template(s) => {
                Some(AgentValue::Secret)
            }
            NodeKind::String(s) => Some(AgentValue::Str(s.clone())),
            _ => None,
        }
    };
    let value_of = match &value.kind {
        NodeKind::Null => return,
        NodeKind::Object(entries) => {
            for e in entries {
                let key = if agent {
                    e.key.to_ascii_lowercase()
                } else {
                    e.key.clone()
                };
                flatten(&format!("{path}.{key}"), e, f);
            }
            return;
        }
        // A list of objects is each object in turn (an HCL block written as a list).
        NodeKind::List(items)
            if !items.is_empty() && items.iter().all(|i| i.as_object().is_some()) =>
        {
            for item in items {
                flatten_value(path, item, span, f);
            }
            return;
        }
        NodeKind::List(items) => AgentValue::List(items.iter().filter_map(scalar).collect()),
        _ => match scalar(value) {
            Some(v) => v,
            None => return,
        },
    };
    if value_of == AgentValue::Secret {
        f.redact.push(value.span);
    }
    f.out.insert(
        path.to_owned(),
        AgentSetting {
            value: value_of,
            span,
        },
    );
}

fn json_secrets(
    key: &str,
    v: &serde_json::Value,
    path: &str,
    span: Span,
    out: &mut BTreeMap<String, AgentSetting>,
) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = if path.is_empty() {
                    k.to_ascii_lowercase()
                } else {
                    format!("{path}.{}", k.to_ascii_lowercase())
                };
                json_secrets(key, v, &p, span, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                json_secrets(key, item, path, span, out);
            }
        }
        serde_json::Value::String(s)
            if !s.is_empty() && !is_template(s) && is_secret_path(path) =>
        {
            out.insert(
                format!("{key}.{path}"),
                AgentSetting {
                    value: AgentValue::Secret,
                    span,
                },
            );
        }
        _ => {}
    }
}

/// Settings Consul decodes into a `*bool` (`agent/config/config.go`).
const BOOLS: &[&str] = &[
    "acl.enabled",
    "auto_encrypt.allow_tls",
    "auto_encrypt.tls",
    "bootstrap",
    "connect.enabled",
    "disable_remote_exec",
    "enable_local_script_checks",
    "enable_script_checks",
    "encrypt_verify_incoming",
    "encrypt_verify_outgoing",
    "server",
    "tls.defaults.verify_incoming",
    "tls.defaults.verify_outgoing",
    "tls.grpc.verify_incoming",
    "tls.https.verify_incoming",
    "tls.internal_rpc.verify_incoming",
    "tls.internal_rpc.verify_outgoing",
    "tls.internal_rpc.verify_server_hostname",
    "verify_incoming",
    "verify_incoming_https",
    "verify_incoming_rpc",
    "verify_outgoing",
    "verify_server_hostname",
];

/// What Consul refuses while it decodes the file, for the settings `check` reads: a value of
/// another type where it decodes a `*bool` or a port (`agent/config/config.go`, `Parse`).
fn validate(config: &AgentConfig, diags: &mut Diagnostics) {
    let invalid = |span: Span, path: &str, message: String, help: &str| {
        Diagnostic::new(Code::AgentConfigInvalid, span, message)
            .with_field(path)
            .with_help(help.to_owned())
    };
    for (path, s) in &config.settings {
        let is_bool = matches!(s.value, AgentValue::Bool(_));
        if BOOLS.contains(&path.as_str()) && !is_bool {
            diags.push(invalid(
                s.span,
                path,
                format!("{path} must be true or false: Consul does not convert other values"),
                "write the value unquoted: `true` or `false`",
            ));
        }
        let port = path.strip_prefix("ports.").is_some();
        if port && !matches!(s.value, AgentValue::Int(_)) {
            diags.push(invalid(
                s.span,
                path,
                format!("{path} must be a number"),
                "write the port unquoted, or -1 to disable the listener",
            ));
        }
    }
}

/// The gossip key is checked here, on the text, which never enters the model. `builder.go`
/// `Validate` refuses "encrypt has invalid key" unless it decodes as standard base64, and
/// memberlist's keyring then takes 16, 24 or 32 bytes (AES-128, -192, -256). The value is
/// never printed.
fn gossip_key(node: &Node, diags: &mut Diagnostics) {
    let Some(e) = node.get_ci("encrypt") else {
        return;
    };
    let Some(key) = e.value.as_str() else {
        diags.push(
            Diagnostic::new(
                Code::AgentConfigInvalid,
                entry_span(e),
                format!("encrypt must be a string, not a {}", e.value.type_name()),
            )
            .with_field("encrypt")
            .with_help("the gossip key is a base64 string, from `consul keygen`"),
        );
        return;
    };
    if !key.is_empty() && !is_template(key) && !is_gossip_key(key) {
        diags.push(
            Diagnostic::new(
                Code::AgentConfigInvalid,
                entry_span(e),
                "encrypt is not a gossip key: Consul takes 16, 24 or 32 bytes in standard base64",
            )
            .with_field("encrypt")
            .with_help("generate one with `consul keygen` (and keep it out of the repository)"),
        );
    }
}

/// A value a template fills in at deploy time (consul-template, Nomad's `template`, Helm,
/// Terraform: `{{ ... }}` or `${...}`), so the file in git holds a reference, not the secret.
fn is_template(value: &str) -> bool {
    value.contains("{{") || value.contains("${")
}

/// Whether `key` decodes as a gossip key (standard base64 of 16, 24 or 32 bytes).
pub(crate) fn is_gossip_key(key: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_ok_and(|b| matches!(b.len(), 16 | 24 | 32))
}
