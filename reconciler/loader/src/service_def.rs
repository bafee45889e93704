//! Consul agent service definitions: `service { ... }` or `services [ ... ]`, HCL or JSON.

use crate::decode::Decoded;
use crate::entry::decode_with;
use crate::schema;
use mesh_diagnostics::{Code, Diagnostic, Diagnostics, Span};
use mesh_model::{Service, ServiceOrigin, Upstream};
use mesh_syntax::{Node, NodeKind};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// True when the object looks like a service definition file.
pub(crate) fn is_service_definition(node: &Node) -> bool {
    node.get_ci("service").is_some() || node.get_ci("services").is_some()
}

pub(crate) fn service_definitions(node: &Node, diags: &mut Diagnostics) -> Vec<Service> {
    let mut out = Vec::new();
    let Some(entries) = node.as_object() else {
        return out;
    };
    for e in entries {
        let lower = e.key.to_ascii_lowercase();
        if lower != "service" && lower != "services" {
            diags.push(
                Diagnostic::new(
                    Code::UnknownKey,
                    crate::decode::entry_span(e),
                    format!("unexpected key \"{}\" in a service definition file", e.key),
                )
                .with_field(e.key.as_str())
                .with_help(
                    "a service definition file holds `service { ... }` or `services [ ... ]`",
                ),
            );
            continue;
        }
        out.extend(service_entry(e, diags));
    }
    out
}

/// The services of one `service { ... }` or `services [ ... ]` entry (of a service definition
/// file, or of an agent configuration file, which may hold them too).
pub(crate) fn service_entry(e: &mesh_syntax::Entry, diags: &mut Diagnostics) -> Vec<Service> {
    let items: Vec<&Node> = match &e.value.kind {
        NodeKind::List(items) => items.iter().collect(),
        _ => vec![&e.value],
    };
    items
        .into_iter()
        .filter_map(|item| definition(item, diags))
        .collect()
}

fn definition(node: &Node, diags: &mut Diagnostics) -> Option<Service> {
    let d = decode_with(node, &schema::SERVICE_DEFINITION, &[], diags);
    let json = &d.json;
    if json.contains_key("token") {
        diags.push(
            d.locate(
                Diagnostic::new(
                    Code::LiteralSecret,
                    d.at("/token").unwrap_or(node.span),
                    "token is a secret and must not be written in the repository",
                ),
                "/token",
            )
            .with_help(
                "remove it and declare an `acl-token` for the service with \
                 `SecretIDFrom = \"env:VAR\"`",
            ),
        );
    }
    let Some(name) = json
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        diags.push(
            Diagnostic::new(
                Code::ServiceDefinition,
                node.span,
                "service definition has no name",
            )
            .with_help("add `name = \"...\"`"),
        );
        return None;
    };
    let kind = json.get("kind").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() {
        diags.push(
            d.locate(
                Diagnostic::new(
                    Code::ServiceDefinition,
                    d.at("/kind").unwrap_or(node.span),
                    format!(
                    "service \"{name}\" has kind \"{kind}\"; mesh-gitops reads typical services"
                ),
                ),
                "/kind",
            )
            .with_help(
                "declare the application service with `connect { sidecar_service {} }` instead of \
                 registering its proxy or gateway separately",
            ),
        );
        return None;
    }
    let port = port_of(json.get("port"), d.span("/port"), node.span, diags);
    let connect = json.get("connect").and_then(Value::as_object);
    let native = connect
        .and_then(|c| c.get("native"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let sidecar = connect.and_then(|c| c.get("sidecar_service"));
    let legacy = connect.and_then(|c| c.get("proxy"));
    let mut upstreams = Vec::new();
    let mut proxy_config = Map::new();
    let is_sidecar = sidecar.is_some() || legacy.is_some();
    if let Some(sc) = sidecar.and_then(Value::as_object) {
        if let Some(proxy) = sc.get("proxy").and_then(Value::as_object) {
            if let Some(Value::Object(cfg)) = proxy.get("config") {
                proxy_config = cfg.clone();
            }
            upstreams = read_upstreams(
                proxy.get("upstreams"),
                "/connect/sidecar_service/proxy/upstreams",
                &d,
                diags,
            );
        }
    } else if let Some(legacy) = legacy {
        // Consul 1.2-1.5: `connect { proxy { config { upstreams = [...] } } }`. Read it as the
        // sidecar it became, and say so.
        diags.push(
            d.locate(
                Diagnostic::new(
                    Code::LegacyManagedProxy,
                    d.at("/connect/proxy").unwrap_or(node.span),
                    format!(
                    "service \"{name}\" uses a managed proxy, removed in Consul 1.6; read as a \
                     sidecar service"
                ),
                ),
                "/connect/proxy",
            )
            .with_help("write `connect { sidecar_service { proxy { upstreams = [...] } } }`"),
        );
        if let Some(cfg) = legacy.get("config").and_then(Value::as_object) {
            let mut rest = cfg.clone();
            let ups = rest.remove("upstreams");
            upstreams = legacy_upstreams(ups.as_ref(), &d, diags);
            proxy_config = rest;
        }
    }
    check_bind_ports(name, &upstreams, diags);
    Some(Service {
        name: name.to_owned(),
        port,
        port_label: None,
        address: json
            .get("address")
            .and_then(Value::as_str)
            .map(str::to_owned),
        sidecar: is_sidecar,
        native,
        instances: 1,
        upstreams,
        proxy_config,
        // `meta`: string values only, as Consul's agent keeps them (`structs.ServiceDefinition`).
        meta: json
            .get("meta")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
        origin: ServiceOrigin::ServiceDefinition,
        span: node.span,
    })
}

fn port_of(
    v: Option<&Value>,
    span: Option<Span>,
    fallback: Span,
    diags: &mut Diagnostics,
) -> Option<u16> {
    let n = v?.as_i64()?;
    match u16::try_from(n) {
        Ok(p) => Some(p),
        Err(_) => {
            diags.push(Diagnostic::new(
                Code::ServiceDefinition,
                span.unwrap_or(fallback),
                format!("port {n} is outside 0-65535"),
            ));
            None
        }
    }
}

fn read_upstreams(
    v: Option<&Value>,
    ptr: &str,
    d: &Decoded,
    diags: &mut Diagnostics,
) -> Vec<Upstream> {
    let mut out = Vec::new();
    let Some(items) = v.and_then(Value::as_array) else {
        return out;
    };
    for (i, u) in items.iter().enumerate() {
        let p = format!("{ptr}/{i}");
        let span = d.span(&p).unwrap_or_default();
        if let Some(up) = upstream(u, span, d.span(&format!("{p}/local_bind_port")), diags) {
            out.push(up);
        }
    }
    out
}

fn legacy_upstreams(v: Option<&Value>, d: &Decoded, diags: &mut Diagnostics) -> Vec<Upstream> {
    // The legacy block is opaque JSON (keys as written); spans stop at the proxy block.
    let span = d.span("/connect/proxy").unwrap_or_default();
    let mut out = Vec::new();
    for u in v.and_then(Value::as_array).into_iter().flatten() {
        let normalized: Map<String, Value> = u
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (crate::decode::loose(k), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut m = Map::new();
        for (k, canonical) in [
            ("destinationname", "destination_name"),
            ("localbindport", "local_bind_port"),
            ("localbindaddress", "local_bind_address"),
            ("datacenter", "datacenter"),
            ("destinationtype", "destination_type"),
        ] {
            if let Some(v) = normalized.get(k) {
                m.insert(canonical.to_owned(), v.clone());
            }
        }
        if let Some(up) = upstream(&Value::Object(m), span, None, diags) {
            out.push(up);
        }
    }
    out
}

fn upstream(
    u: &Value,
    span: Span,
    port_span: Option<Span>,
    diags: &mut Diagnostics,
) -> Option<Upstream> {
    let name = u
        .get("destination_name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        diags.push(
            Diagnostic::new(
                Code::ServiceDefinition,
                span,
                "upstream has no destination_name",
            )
            .with_help("write `destination_name = \"<service>\"`"),
        );
        return None;
    }
    let socket = u
        .get("local_bind_socket_path")
        .and_then(Value::as_str)
        .is_some();
    let port = match u.get("local_bind_port").map(|p| p.as_i64()) {
        Some(Some(p)) if (1..=65535).contains(&p) => p as u16,
        Some(Some(p)) => {
            diags.push(Diagnostic::new(
                Code::ServiceDefinition,
                port_span.unwrap_or(span),
                format!("upstream \"{name}\": local_bind_port {p} is outside 1-65535"),
            ));
            return None;
        }
        _ if socket => 0,
        _ => {
            diags.push(
                Diagnostic::new(
                    Code::ServiceDefinition,
                    span,
                    format!("upstream \"{name}\" has no local_bind_port"),
                )
                .with_help("the sidecar listens on local_bind_port for the application"),
            );
            return None;
        }
    };
    let s = |k: &str| u.get(k).and_then(Value::as_str).map(str::to_owned);
    Some(Upstream {
        destination_name: name.to_owned(),
        local_bind_port: port,
        local_bind_address: s("local_bind_address"),
        datacenter: s("datacenter"),
        destination_type: s("destination_type"),
        span,
    })
}

/// Consul rejects two upstreams of one proxy on the same bind address and port.
fn check_bind_ports(service: &str, upstreams: &[Upstream], diags: &mut Diagnostics) {
    let mut seen: BTreeMap<(String, u16), &Upstream> = BTreeMap::new();
    for u in upstreams.iter().filter(|u| u.local_bind_port != 0) {
        let addr = u
            .local_bind_address
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        let key = (addr.clone(), u.local_bind_port);
        if let Some(first) = seen.get(&key) {
            diags.push(
                Diagnostic::new(
                    Code::ServiceDuplicateBindPort,
                    u.span,
                    format!(
                        "upstreams \"{}\" and \"{}\" of service \"{service}\" both bind {addr}:{}",
                        first.destination_name, u.destination_name, u.local_bind_port
                    ),
                )
                .with_label(first.span, "first bound here")
                .with_help("give each upstream its own local_bind_port"),
            );
        } else {
            seen.insert(key, u);
        }
    }
}
