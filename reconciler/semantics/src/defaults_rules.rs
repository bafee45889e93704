//! The parts of `ServiceConfigEntry.Validate` and `ProxyConfigEntry.Validate`
//! (`agent/structs/config_entry.go`) about destinations, upstream connection balancing and
//! Envoy extensions. Messages are Consul's texts.

use mesh_diagnostics::{Code, Diagnostic, Span};
use mesh_model::ServiceDefaults;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The extension names Consul builds in (`api.Builtin*Extension`, `envoyextensions`).
const BUILTIN_EXTENSIONS: &[&str] = &[
    "builtin/aws/lambda",
    "builtin/ext-authz",
    "builtin/lua",
    "builtin/http/localratelimit",
    "builtin/otel-access-logging",
    "builtin/property-override",
    "builtin/wasm",
];

fn push(out: &mut Vec<Diagnostic>, span: Span, field: &str, message: String) {
    out.push(
        Diagnostic::new(Code::EntryField, span, message)
            .with_field(field)
            .with_help("Consul refuses this value; see the message"),
    );
}

/// Destination addresses and upstream connection balancing of a service-defaults entry.
pub(crate) fn service_defaults(e: &ServiceDefaults, out: &mut Vec<Diagnostic>) {
    if let Some(addresses) = e
        .rest
        .get("Destination")
        .and_then(|d| d.get("Addresses"))
        .and_then(Value::as_array)
    {
        let mut seen = BTreeSet::new();
        for (i, a) in addresses.iter().filter_map(Value::as_str).enumerate() {
            let field = format!("Destination.Addresses[{i}]");
            if !seen.insert(a) {
                push(
                    out,
                    e.span,
                    &field,
                    format!("Duplicate address '{a}' is not allowed"),
                );
            } else if !is_endpoint_address(a) {
                push(out, e.span, &field, format!("Destination address '{a}' is invalid Could not validate address {a} as an IP or Hostname"));
            }
        }
    }
    // `UpstreamConfig.validate`: `isValidConnectionBalance`.
    if let Some(u) = e.rest.get("UpstreamConfig") {
        let overrides = u.get("Overrides").and_then(Value::as_array);
        let all = overrides
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, o)| (format!("UpstreamConfig.Overrides[{i}]"), o))
            .chain(
                u.get("Defaults")
                    .map(|d| ("UpstreamConfig.Defaults".to_owned(), d)),
            );
        for (at, o) in all {
            if let Some(b) = o.get("BalanceOutboundConnections").and_then(Value::as_str) {
                if !b.is_empty() && b != "exact_balance" {
                    push(
                        out,
                        e.span,
                        &format!("{at}.BalanceOutboundConnections"),
                        format!("invalid value for balance_outbound_connections: {b}"),
                    );
                }
            }
        }
    }
    envoy_extensions(&e.rest, e.span, out);
}

/// `validateEndpointAddress`: an IP, or a domain name (`dns.IsDomainName`) without `*`.
fn is_endpoint_address(a: &str) -> bool {
    a.parse::<std::net::IpAddr>().is_ok() || (!a.contains('*') && is_domain_name(a))
}

/// `dns.IsDomainName` of `github.com/miekg/dns`: no empty label, labels of at most 63 bytes,
/// at most 255 bytes on the wire.
fn is_domain_name(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    if s == "." {
        return true;
    }
    let labels: Vec<&str> = s.strip_suffix('.').unwrap_or(s).split('.').collect();
    let wire: usize = labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1;
    labels.iter().all(|l| !l.is_empty() && l.len() <= 63) && wire <= 255
}

/// `envoyextensions.ValidateExtensions`: each extension is named, and a built-in one.
pub(crate) fn envoy_extensions(
    rest: &BTreeMap<String, Value>,
    span: Span,
    out: &mut Vec<Diagnostic>,
) {
    let Some(list) = rest.get("EnvoyExtensions").and_then(Value::as_array) else {
        return;
    };
    for (i, x) in list.iter().enumerate() {
        let field = format!("EnvoyExtensions[{i}].Name");
        match x.get("Name").and_then(Value::as_str) {
            None | Some("") => {
                push(
                    out,
                    span,
                    &field,
                    format!("invalid EnvoyExtensions[{i}]: Name is required"),
                );
            }
            Some(n) if !BUILTIN_EXTENSIONS.contains(&n) => {
                push(
                    out,
                    span,
                    &field,
                    format!(
                        "invalid EnvoyExtensions[{i}][{n}]: name {n:?} is not a built-in extension"
                    ),
                );
            }
            Some(_) => {}
        }
    }
}

/// `ProxyConfigEntry.Validate` beyond the name: access logs (`AccessLogsConfig.Validate`), the
/// opaque config (`validateOpaqueProxyConfig`) and the failover policy
/// (`ServiceResolverFailoverPolicy.validate`).
pub(crate) fn proxy_defaults(
    rest: &BTreeMap<String, Value>,
    config: &serde_json::Map<String, Value>,
    span: Span,
    out: &mut Vec<Diagnostic>,
) {
    if let Some(logs) = rest.get("AccessLogs") {
        if let Some(m) = access_logs(logs) {
            push(out, span, "AccessLogs", m);
        }
    }
    if let Some(dir) = config
        .get("envoy_hcp_metrics_bind_socket_dir")
        .and_then(Value::as_str)
    {
        // The longest Unix socket path Envoy can bind, less the file name Consul appends.
        if dir.len() > 70 {
            push(
                out,
                span,
                "Config",
                format!(
                    "Config: envoy_hcp_metrics_bind_socket_dir length {} exceeds max 70",
                    dir.len()
                ),
            );
        }
    }
    let mode = rest
        .get("FailoverPolicy")
        .and_then(|p| p.get("Mode"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if !matches!(mode, "" | "sequential" | "order-by-locality") {
        push(
            out,
            span,
            "FailoverPolicy.Mode",
            "Failover-policy mode must be one of '', 'sequential', or 'order-by-locality'"
                .to_owned(),
        );
    }
}

fn access_logs(logs: &Value) -> Option<String> {
    let field = |k: &str| logs.get(k).and_then(Value::as_str).unwrap_or("");
    let kind = field("Type");
    if !matches!(kind, "" | "file" | "stderr" | "stdout") {
        return Some(format!("invalid access log type: {kind}"));
    }
    let (json, text, path) = (field("JSONFormat"), field("TextFormat"), field("Path"));
    if !json.is_empty() && !text.is_empty() {
        return Some("cannot specify both access log JSONFormat and TextFormat".to_owned());
    }
    if kind != "file" && !path.is_empty() {
        return Some("path is only valid for file type access logs".to_owned());
    }
    if kind == "file" && path.is_empty() {
        return Some("path must be specified when using file type access logs".to_owned());
    }
    if !json.is_empty() {
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(json) {
            return Some(format!("invalid access log json for JSON format: {e}"));
        }
    }
    None
}
