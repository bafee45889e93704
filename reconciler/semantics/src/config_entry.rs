//! Config entries: normalization and validation as Consul applies them on write, and the
//! cross-entry rule that L7 intentions need an HTTP-like protocol (consul-semantics 1.6, 1.8).

use crate::intention;
use mesh_diagnostics::{Code, Diagnostic, Span};
use mesh_model::{ConfigEntry, EntryKind};
use serde_json::Value;
use std::collections::BTreeMap;

/// What Consul does to an entry before storing it.
pub fn normalize(entry: &mut ConfigEntry) {
    match entry {
        ConfigEntry::ServiceIntentions(e) => intention::normalize(e),
        // `ServiceConfigEntry.Normalize` (`agent/structs/config_entry.go`).
        ConfigEntry::ServiceDefaults(e) => {
            if let Some(p) = &mut e.protocol {
                *p = p.to_ascii_lowercase();
            }
            if e.protocol.as_deref() == Some("") {
                e.protocol = None;
            }
            if let Some(Value::Object(upstreams)) = e.rest.get_mut("UpstreamConfig") {
                if let Some(Value::Array(overrides)) = upstreams.get_mut("Overrides") {
                    overrides
                        .iter_mut()
                        .filter_map(Value::as_object_mut)
                        .for_each(normalize_upstream);
                }
                if let Some(Value::Object(defaults)) = upstreams.get_mut("Defaults") {
                    normalize_upstream(defaults);
                }
                // What normalizing emptied is absent, as the decoder has it.
                upstreams.retain(|_, v| v.as_object().is_none_or(|o| !o.is_empty()));
                if upstreams.is_empty() {
                    e.rest.remove("UpstreamConfig");
                }
            }
        }
        ConfigEntry::ProxyDefaults(e) => {
            if e.name.is_empty() {
                e.name = "global".to_owned();
            }
        }
        ConfigEntry::Other(e) => crate::entry_kinds::normalize(e),
        ConfigEntry::Chain(c) => crate::chain::normalize(c),
        ConfigEntry::Mesh(_) => {}
    }
}

/// `UpstreamConfig.normalize` (`agent/structs/config_entry.go`): Protocol lower-cased, a
/// negative ConnectTimeoutMs made 0. Zero and empty values are left out, as the decoder
/// leaves them out (Go's `omitempty`), so the normal form has one spelling.
fn normalize_upstream(u: &mut serde_json::Map<String, Value>) {
    if let Some(Value::String(p)) = u.get_mut("Protocol") {
        *p = p.to_ascii_lowercase();
    }
    if u.get("Protocol").and_then(Value::as_str) == Some("") {
        u.remove("Protocol");
    }
    if u.get("ConnectTimeoutMs")
        .and_then(Value::as_i64)
        .is_some_and(|t| t <= 0)
    {
        u.remove("ConnectTimeoutMs");
    }
}

/// Meta limits shared by every kind: 64 pairs, keys up to 128 bytes, values up to 512 bytes.
pub fn validate_meta(meta: &BTreeMap<String, String>, span: Span) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let d = |m: String| {
        Diagnostic::new(Code::MetaLimits, span, m)
            .with_help("Consul limits Meta to 64 pairs, keys of 128 bytes and values of 512 bytes")
            .with_field("Meta")
    };
    if meta.len() > 64 {
        out.push(d("Meta exceeds maximum element count 64".to_owned()));
    }
    for (k, v) in meta {
        if k.len() > 128 {
            out.push(d(format!("Meta key {k:?} exceeds maximum length 128")));
        }
        if v.len() > 512 {
            out.push(d(format!(
                "Meta value for key {k:?} exceeds maximum length 512"
            )));
        }
    }
    out
}

fn str_field<'a>(rest: &'a BTreeMap<String, Value>, key: &str) -> Option<&'a str> {
    rest.get(key).and_then(Value::as_str)
}

fn one_of(
    rest: &BTreeMap<String, Value>,
    key: &str,
    allowed: &[&str],
    span: Span,
    out: &mut Vec<Diagnostic>,
    message: impl Fn(&str) -> String,
) {
    if let Some(v) = str_field(rest, key) {
        if !allowed.contains(&v) {
            out.push(
                Diagnostic::new(Code::EntryField, span, message(v))
                    .with_field(key)
                    .with_help(format!(
                        "{key} is one of: {}",
                        allowed
                            .iter()
                            .map(|a| if a.is_empty() {
                                "\"\"".to_owned()
                            } else {
                                format!("\"{a}\"")
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
            );
        }
    }
}

fn common_fields(rest: &BTreeMap<String, Value>, span: Span, out: &mut Vec<Diagnostic>) {
    one_of(
        rest,
        "Mode",
        &["", "transparent", "direct"],
        span,
        out,
        |v| format!("invalid value for Mode: {v:?}"),
    );
    one_of(
        rest,
        "MutualTLSMode",
        &["", "strict", "permissive"],
        span,
        out,
        |v| {
            format!(
                "Invalid MutualTLSMode {v:?}. Must be one of \"\", \"strict\", or \"permissive\"."
            )
        },
    );
    if let Some(mgw) = rest
        .get("MeshGateway")
        .and_then(|m| m.get("Mode"))
        .and_then(Value::as_str)
    {
        if !["", "none", "local", "remote"].contains(&mgw) {
            out.push(
                Diagnostic::new(
                    Code::EntryField,
                    span,
                    format!("MeshGateway: invalid mesh gateway mode {mgw:?}"),
                )
                .with_field("MeshGateway.Mode")
                .with_help("MeshGateway.Mode is \"\", \"none\", \"local\" or \"remote\""),
            );
        }
    }
}

/// Kind-specific validation (Consul's `Validate()`); messages are Consul's texts.
pub fn validate(entry: &ConfigEntry) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    match entry {
        ConfigEntry::ServiceIntentions(e) => return intention::validate(e),
        ConfigEntry::ServiceDefaults(e) => {
            if e.name.is_empty() {
                out.push(
                    Diagnostic::new(Code::EntryName, e.span, "Name is required")
                        .with_help("name the service"),
                );
            } else if e.name == "*" {
                out.push(
                    Diagnostic::new(Code::EntryName, e.span, "service-defaults name must be the name of a service, and not a wildcard")
                        .with_field("Name")
                        .with_help("write one service-defaults per service; use proxy-defaults for mesh-wide defaults"),
                );
            }
            common_fields(&e.rest, e.span, &mut out);
            // `validateRatelimit` (`agent/structs/config_entry_ce.go`).
            if e.rest.contains_key("RateLimits") {
                out.push(
                    Diagnostic::new(
                        Code::EnterpriseOnly,
                        e.span,
                        "invalid rate_limit config. Rate limiting is a consul enterprise feature",
                    )
                    .with_field("RateLimits")
                    .with_help("remove RateLimits; Consul CE refuses it"),
                );
            }
            one_of(
                &e.rest,
                "BalanceInboundConnections",
                &["", "exact_balance"],
                e.span,
                &mut out,
                |v| format!("invalid value for balance_inbound_connections: {v}"),
            );
            if e.rest.contains_key("Destination") && e.rest.contains_key("UpstreamConfig") {
                out.push(
                    Diagnostic::new(
                        Code::EntryField,
                        e.span,
                        "UpstreamConfig and Destination are mutually exclusive for service defaults",
                    )
                    .with_field("Destination")
                    .with_help("a destination (terminating gateway target) has no upstream config"),
                );
            }
            if let Some(dest) = e.rest.get("Destination") {
                let addrs = dest
                    .get("Addresses")
                    .and_then(Value::as_array)
                    .map(Vec::len)
                    .unwrap_or(0);
                if addrs == 0 {
                    out.push(
                        Diagnostic::new(
                            Code::EntryField,
                            e.span,
                            "Destination must contain at least one valid address",
                        )
                        .with_field("Destination.Addresses"),
                    );
                }
                let port = dest.get("Port").and_then(Value::as_i64).unwrap_or(0);
                if !(1..=65535).contains(&port) {
                    out.push(
                        Diagnostic::new(
                            Code::EntryField,
                            e.span,
                            format!("Invalid Port number {port}"),
                        )
                        .with_field("Destination.Port"),
                    );
                }
            }
            if let Some(overrides) = e
                .rest
                .get("UpstreamConfig")
                .and_then(|u| u.get("Overrides"))
                .and_then(Value::as_array)
            {
                for (i, o) in overrides.iter().enumerate() {
                    match o.get("Name").and_then(Value::as_str) {
                        None | Some("") => out.push(
                            Diagnostic::new(
                                Code::EntryField,
                                e.span,
                                format!("UpstreamConfig.Overrides[{i}]: Name is required"),
                            )
                            .with_field(format!("UpstreamConfig.Overrides[{i}].Name")),
                        ),
                        Some("*") => out.push(
                            Diagnostic::new(
                                Code::EntryField,
                                e.span,
                                format!("UpstreamConfig.Overrides[{i}]: Name cannot be a wildcard"),
                            )
                            .with_field(format!("UpstreamConfig.Overrides[{i}].Name")),
                        ),
                        _ => {}
                    }
                }
            }
            if let Some(defaults) = e.rest.get("UpstreamConfig").and_then(|u| u.get("Defaults")) {
                if defaults.get("Name").is_some() {
                    out.push(
                        Diagnostic::new(
                            Code::EntryField,
                            e.span,
                            "error in upstream defaults: Name must be empty",
                        )
                        .with_field("UpstreamConfig.Defaults.Name"),
                    );
                }
            }
            crate::defaults_rules::service_defaults(e, &mut out);
            out.extend(validate_meta(&e.meta, e.span));
        }
        ConfigEntry::ProxyDefaults(e) => {
            if e.name != "global" {
                out.push(
                    Diagnostic::new(
                        Code::EntryName,
                        e.span,
                        format!("invalid name ({:?}), only \"global\" is supported", e.name),
                    )
                    .with_field("Name")
                    .with_help("proxy-defaults is the mesh-wide singleton named \"global\""),
                );
            }
            common_fields(&e.rest, e.span, &mut out);
            crate::defaults_rules::envoy_extensions(&e.rest, e.span, &mut out);
            crate::defaults_rules::proxy_defaults(&e.rest, &e.config, e.span, &mut out);
            out.extend(validate_meta(&e.meta, e.span));
        }
        ConfigEntry::Mesh(e) => out.extend(validate_meta(&e.meta, e.span)),
        ConfigEntry::Chain(c) => return crate::chain::validate(c),
        ConfigEntry::Other(e) => out.extend(crate::entry_kinds::validate(e)),
    }
    out
}

/// The protocol a service's discovery chain compiles to, as Consul's compiler records it
/// (`agent/consul/discoverychain/compile.go`, `recordServiceProtocol` and `recordProtocol`):
/// a service-defaults entry decides alone, its empty `Protocol` meaning `tcp` (it does not fall
/// through to proxy-defaults); without one, proxy-defaults `Config.protocol`; else `tcp`.
/// Lower-cased either way.
pub fn protocol_of(service: &str, entries: &[ConfigEntry]) -> String {
    let mut global = None;
    for e in entries {
        match e {
            ConfigEntry::ServiceDefaults(sd) if sd.name == service => {
                return match sd.protocol.as_deref() {
                    None | Some("") => "tcp".to_owned(),
                    Some(p) => p.to_ascii_lowercase(),
                };
            }
            ConfigEntry::ProxyDefaults(pd) => global = config_protocol(&pd.config),
            _ => {}
        }
    }
    global.unwrap_or_else(|| "tcp".to_owned())
}

/// `protocol` of a proxy-defaults `Config` as `mapstructure.WeakDecode` into a struct with
/// `mapstructure:"protocol"` reads it (`recordServiceProtocol`): the exact key first, then any
/// key equal to it ignoring case; a number or bool converted to its string (weak typing); any
/// other value an error Consul ignores, so no protocol. Empty is no protocol.
pub fn config_protocol(config: &serde_json::Map<String, Value>) -> Option<String> {
    let v = config.get("protocol").or_else(|| {
        config
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("protocol"))
            .map(|(_, v)| v)
    })?;
    let p = match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!p.is_empty()).then(|| p.to_ascii_lowercase())
}

/// `http`, `http2` and `grpc` are HTTP-like; anything else behaves as `tcp`.
pub fn is_http_like(protocol: &str) -> bool {
    matches!(protocol, "http" | "http2" | "grpc")
}

/// The cross-entry rules Consul checks inside the write transaction (1.8), over a whole proposed
/// set of entries: a non-wildcard destination with L7 permissions needs an HTTP-like protocol,
/// and those of [`crate::cross_entry::validate_set`].
pub fn validate_graph(entries: &[ConfigEntry]) -> Vec<Diagnostic> {
    let mut out = crate::cross_entry::validate_set(entries);
    for e in entries {
        let ConfigEntry::ServiceIntentions(i) = e else {
            continue;
        };
        if i.name == intention::WILDCARD {
            continue;
        }
        let Some(src) = i.sources.iter().find(|s| !s.permissions.is_empty()) else {
            continue;
        };
        let protocol = protocol_of(&i.name, entries);
        if !is_http_like(&protocol) {
            out.push(
                Diagnostic::new(
                    Code::IntentionL7NeedsHttp,
                    src.span,
                    format!(
                        "service {:?} has protocol {protocol:?}, which is incompatible with L7 intentions permissions",
                        i.name
                    ),
                )
                .with_field("Permissions")
                .with_help(format!(
                    "add a service-defaults entry for {:?} with Protocol = \"http\" (or http2, grpc)",
                    i.name
                )),
            );
        }
    }
    out.extend(crate::chain::validate_graph(entries));
    out
}

/// Whether `kind` is one whose protocol matters to other entries.
pub fn affects_protocol(kind: &EntryKind) -> bool {
    matches!(kind, EntryKind::ServiceDefaults | EntryKind::ProxyDefaults)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_model::{
        IntentionAction, IntentionHttpPermission, IntentionPermission, ProxyDefaults,
        ServiceDefaults, ServiceIntentions, SourceIntention,
    };

    fn l7_on(dest: &str) -> ConfigEntry {
        ConfigEntry::ServiceIntentions(ServiceIntentions {
            name: dest.into(),
            sources: vec![SourceIntention {
                name: "web".into(),
                permissions: vec![IntentionPermission {
                    action: IntentionAction::Allow,
                    http: Some(IntentionHttpPermission {
                        path_prefix: Some("/".into()),
                        ..Default::default()
                    }),
                    jwt: None,
                    span: Span::default(),
                }],
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    #[test]
    fn l7_intentions_need_an_http_protocol_from_service_or_proxy_defaults() {
        let entries = vec![l7_on("api")];
        let d = validate_graph(&entries);
        assert_eq!(d[0].message, "service \"api\" has protocol \"tcp\", which is incompatible with L7 intentions permissions");
        let mut with_sd = entries.clone();
        with_sd.push(ConfigEntry::ServiceDefaults(ServiceDefaults {
            name: "api".into(),
            protocol: Some("HTTP".into()),
            ..Default::default()
        }));
        assert!(validate_graph(&with_sd).is_empty());
        let mut with_pd = entries.clone();
        let mut config = serde_json::Map::new();
        config.insert("protocol".into(), "grpc".into());
        with_pd.push(ConfigEntry::ProxyDefaults(ProxyDefaults {
            name: "global".into(),
            config,
            ..Default::default()
        }));
        assert!(validate_graph(&with_pd).is_empty());
        // service-defaults wins over proxy-defaults, even without a Protocol: its empty
        // Protocol is tcp (`recordServiceProtocol`).
        let mut without = with_pd.clone();
        without.push(ConfigEntry::ServiceDefaults(ServiceDefaults {
            name: "api".into(),
            ..Default::default()
        }));
        assert_eq!(protocol_of("api", &without), "tcp");
        assert_eq!(validate_graph(&without).len(), 1);
        with_pd.push(ConfigEntry::ServiceDefaults(ServiceDefaults {
            name: "api".into(),
            protocol: Some("tcp".into()),
            ..Default::default()
        }));
        assert_eq!(validate_graph(&with_pd).len(), 1);
    }

    #[test]
    fn proxy_defaults_protocol_is_read_weakly_case_insensitively_and_lowercased() {
        let config = |v: serde_json::Value| v.as_object().unwrap().clone();
        let pd = |c| {
            vec![ConfigEntry::ProxyDefaults(ProxyDefaults {
                name: "global".into(),
                config: c,
                ..Default::default()
            })]
        };
        assert_eq!(
            protocol_of("api", &pd(config(serde_json::json!({"Protocol": "HTTP"})))),
            "http"
        );
        assert_eq!(
            protocol_of("api", &pd(config(serde_json::json!({"PROTOCOL": "grpc"})))),
            "grpc"
        );
        // An exact key wins over one differing in case.
        assert_eq!(
            protocol_of(
                "api",
                &pd(config(
                    serde_json::json!({"Protocol": "grpc", "protocol": "http2"})
                ))
            ),
            "http2"
        );
        // A value WeakDecode cannot make a string is an error Consul ignores: tcp.
        assert_eq!(
            protocol_of(
                "api",
                &pd(config(serde_json::json!({"protocol": ["http"]})))
            ),
            "tcp"
        );
        assert_eq!(
            protocol_of("api", &pd(config(serde_json::json!({"protocol": ""})))),
            "tcp"
        );
    }

    #[test]
    fn names_and_meta_limits() {
        let pd = ConfigEntry::ProxyDefaults(ProxyDefaults {
            name: "web".into(),
            ..Default::default()
        });
        assert_eq!(
            validate(&pd)[0].message,
            "invalid name (\"web\"), only \"global\" is supported"
        );
        let mut meta = BTreeMap::new();
        for i in 0..65 {
            meta.insert(format!("k{i}"), "v".into());
        }
        let sd = ConfigEntry::ServiceDefaults(ServiceDefaults {
            name: "web".into(),
            meta,
            ..Default::default()
        });
        assert_eq!(
            validate(&sd)[0].message,
            "Meta exceeds maximum element count 64"
        );
        let mut e = ConfigEntry::ProxyDefaults(ProxyDefaults::default());
        normalize(&mut e);
        assert_eq!(e.name(), "global");
    }
}
