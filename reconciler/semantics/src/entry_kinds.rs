//! Normalization and validation of the gateway, route, certificate, exported-services,
//! sameness-group, JWT-provider and request-limit entries, as Consul CE's `Normalize()` and
//! `Validate()` do them (`agent/structs/config_entry_gateways.go`, `config_entry_routes.go`,
//! `config_entry_exports.go`, `config_entry_jwt_provider.go`, `config_entry_ce.go`). Messages
//! are Consul's texts; each problem names the field it is about, so the loader points at it.
//!
//! The entries are [`OtherEntry`] values whose body the loader decoded by schema into canonical
//! JSON (Consul's spelling, zero values left out), so this module reads JSON.

use crate::config_entry::validate_meta;
use mesh_diagnostics::{Code, Diagnostic};
use mesh_model::OtherEntry;
use serde_json::{Map, Value};

/// What Consul does to an entry of one of these kinds before storing it.
pub fn normalize(e: &mut OtherEntry) {
    match e.kind.as_str() {
        // `IngressGatewayConfigEntry.Normalize`: a listener without a protocol is tcp; lower case.
        "ingress-gateway" => {
            for l in objects_mut(&mut e.body, "Listeners") {
                let p = str_of(l, "Protocol").unwrap_or("tcp").to_ascii_lowercase();
                l.insert("Protocol".into(), Value::String(p));
            }
        }
        // `APIGatewayConfigEntry.Normalize`: protocol lower-cased, a certificate reference
        // without a kind is an inline-certificate.
        "api-gateway" => {
            for l in objects_mut(&mut e.body, "Listeners") {
                if let Some(Value::String(p)) = l.get_mut("Protocol") {
                    *p = p.to_ascii_lowercase();
                }
                if let Some(Value::Object(tls)) = l.get_mut("TLS") {
                    for c in objects_mut(tls, "Certificates") {
                        default_str(c, "Kind", "inline-certificate");
                    }
                }
            }
        }
        // `HTTPRouteConfigEntry.Normalize`: parents default to api-gateway, methods upper-cased,
        // a match without a path matches the prefix "/", a weight below 1 is 1.
        "http-route" => {
            for p in objects_mut(&mut e.body, "Parents") {
                default_str(p, "Kind", "api-gateway");
            }
            for rule in objects_mut(&mut e.body, "Rules") {
                for m in objects_mut(rule, "Matches") {
                    if let Some(Value::String(method)) = m.get_mut("Method") {
                        *method = method.to_ascii_uppercase();
                    }
                    let path = m.entry("Path").or_insert_with(|| Value::Object(Map::new()));
                    if let Some(path) = path.as_object_mut() {
                        if str_of(path, "Match").is_none() {
                            path.insert("Match".into(), "prefix".into());
                            path.insert("Value".into(), "/".into());
                        }
                    }
                }
                for s in objects_mut(rule, "Services") {
                    if s.get("Weight").and_then(Value::as_i64).unwrap_or(0) <= 0 {
                        s.insert("Weight".into(), 1.into());
                    }
                }
            }
        }
        // `TCPRouteConfigEntry.Normalize`.
        "tcp-route" => {
            for p in objects_mut(&mut e.body, "Parents") {
                default_str(p, "Kind", "api-gateway");
            }
        }
        // `JWTProviderConfigEntry.Normalize`: `DefaultClockSkewSeconds`.
        "jwt-provider"
            if e.body
                .get("ClockSkewSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                == 0 =>
        {
            e.body.insert("ClockSkewSeconds".into(), 30.into());
        }
        _ => {}
    }
}

/// Consul CE's `Validate()` for `e`; empty when Consul accepts it.
pub fn validate(e: &OtherEntry) -> Vec<Diagnostic> {
    let mut out = validate_meta(&e.meta, e.span);
    let problem = match e.kind.as_str() {
        "ingress-gateway" => ingress_gateway(&e.body),
        "terminating-gateway" => terminating_gateway(&e.body),
        "api-gateway" => api_gateway(&e.body),
        "http-route" => http_route(&e.body),
        "tcp-route" => tcp_route(&e.body),
        "exported-services" => exported_services(&e.name, &e.body),
        "jwt-provider" => jwt_provider(&e.body),
        // `SamenessGroupConfigEntry.Validate` (`config_entry_sameness_group_ce.go`).
        "sameness-group" => Some(Problem::new(
            Code::EnterpriseOnly,
            "",
            "sameness-groups are an enterprise-only feature",
        )),
        _ => None,
    };
    if let Some(p) = problem {
        let help = p.help(&e.kind);
        let mut d = Diagnostic::new(p.code, e.span, p.message).with_help(help);
        if !p.field.is_empty() {
            d = d.with_field(p.field);
        }
        out.push(d);
    }
    out
}

/// The first problem Consul's `Validate()` returns (it stops at the first).
struct Problem {
    code: Code,
    field: String,
    message: String,
}

impl Problem {
    fn new(code: Code, field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    fn help(&self, kind: &str) -> String {
        match self.code {
            Code::EnterpriseOnly => "Consul CE refuses this; remove it".to_owned(),
            Code::GatewayListener => {
                format!("fix the listener; see `mesh-gitops explain E0420` ({kind})")
            }
            Code::GatewayService => {
                format!("fix the service or route; see `mesh-gitops explain E0421` ({kind})")
            }
            Code::ExportedServices => "see `mesh-gitops explain E0425`".to_owned(),
            _ => format!("Consul refuses this {kind} entry as written"),
        }
    }
}

fn ingress_gateway(body: &Map<String, Value>) -> Option<Problem> {
    let tls_enabled = body
        .get("TLS")
        .and_then(|t| t.get("Enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut ports = std::collections::BTreeSet::new();
    for (i, l) in objects(body, "Listeners").enumerate() {
        let at = format!("Listeners[{i}]");
        let port = l.get("Port").and_then(Value::as_i64).unwrap_or(0);
        let protocol = str_of(l, "Protocol").unwrap_or("tcp");
        let listener = |field: &str, m: String| {
            Some(Problem::new(
                Code::GatewayListener,
                format!("{at}.{field}"),
                m,
            ))
        };
        if !ports.insert(port) {
            return listener("Port", format!("port {port} declared on two listeners"));
        }
        if !matches!(protocol, "tcp" | "http" | "http2" | "grpc") {
            return listener("Protocol", format!("protocol must be 'tcp', 'http', 'http2', or 'grpc'. '{protocol}' is an unsupported protocol"));
        }
        let services: Vec<&Map<String, Value>> = objects(l, "Services").collect();
        if services.is_empty() {
            return listener(
                "Services",
                format!("No service declared for listener with port {port}"),
            );
        }
        let http_like = crate::config_entry::is_http_like(protocol);
        if !http_like && services.len() > 1 {
            return listener("Services", format!("Multiple services per listener are only supported for L7 protocols, 'http', 'grpc' and 'http2' (listener on port {port})"));
        }
        let mut names = std::collections::BTreeSet::new();
        let mut hosts = std::collections::BTreeSet::new();
        for (j, s) in services.iter().enumerate() {
            let field = format!("{at}.Services[{j}]");
            let service = |m: String| Some(Problem::new(Code::GatewayService, field.clone(), m));
            let name = str_of(s, "Name").unwrap_or("");
            let service_hosts: Vec<&str> = strs(s, "Hosts").collect();
            if (s.contains_key("RequestHeaders") || s.contains_key("ResponseHeaders")) && !http_like
            {
                // `HTTPHeaderModifiers.Validate` (`config_entry_discoverychain.go`).
                let which = if s.contains_key("RequestHeaders") {
                    "request"
                } else {
                    "response"
                };
                return service(format!("{which} headers only valid for http, http2 and grpc protocols (service \"{name}\" on listener on port {port})"));
            }
            if protocol == "tcp" {
                if name == "*" {
                    return service(format!("Wildcard service name is only valid for protocol = 'http' (listener on port {port})"));
                }
                if !service_hosts.is_empty() {
                    return service(format!("Associating hosts to a service is not supported for the {protocol} protocol (listener on port {port})"));
                }
            }
            if name.is_empty() {
                return service(format!(
                    "Service name cannot be blank (listener on port {port})"
                ));
            }
            if name == "*" && !service_hosts.is_empty() {
                return service(format!("Associating hosts to a wildcard service is not supported (listener on port {port})"));
            }
            if !names.insert(name) {
                return service(format!(
                    "Service {name} cannot be added multiple times (listener on port {port})"
                ));
            }
            if let Some(m) = service_sds(body.get("TLS"), l.get("TLS"), s, port) {
                return service(m);
            }
            for h in service_hosts {
                if !hosts.insert(h) {
                    return service(format!(
                        "Hosts must be unique within a specific listener (listener on port {port})"
                    ));
                }
                if let Some(m) = host_problem(tls_enabled, h) {
                    return service(m);
                }
            }
        }
    }
    None
}

/// `IngressGatewayConfigEntry.validateServiceSDS`: SDS certificates at the gateway, listener
/// and service levels, each needing a cluster from its own level or one above.
fn service_sds(
    gateway: Option<&Value>,
    listener: Option<&Value>,
    service: &Map<String, Value>,
    port: i64,
) -> Option<String> {
    let sds = |tls: Option<&Value>, key: &str| {
        tls.and_then(|t| t.get("SDS"))
            .and_then(|s| s.get(key))
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
    };
    let (gw_cluster, gw_cert) = (sds(gateway, "ClusterName"), sds(gateway, "CertResource"));
    if !gw_cluster && gw_cert {
        return Some("TLS.SDS.ClusterName is required if CertResource is set".to_owned());
    }
    let (lis_cluster, lis_cert) = (sds(listener, "ClusterName"), sds(listener, "CertResource"));
    if gw_cluster && !gw_cert && !lis_cert {
        return Some(format!("TLS.SDS.CertResource is required if ClusterName is set for gateway (listener on port {port})"));
    }
    if lis_cluster && !lis_cert {
        return Some(format!("TLS.SDS.CertResource is required if ClusterName is set for listener (listener on port {port})"));
    }
    if lis_cert && !lis_cluster && !gw_cluster {
        return Some(format!(
            "TLS.SDS.ClusterName is required if CertResource is set (listener on port {port})"
        ));
    }
    let svc_tls = service.get("TLS");
    let name = str_of(service, "Name").unwrap_or("");
    if sds(svc_tls, "CertResource") {
        if strs(service, "Hosts").next().is_none() {
            return Some(format!("A service specifying TLS.SDS.CertResource must have at least one item in Hosts (service {name:?} on listener on port {port})"));
        }
        if !sds(svc_tls, "ClusterName") && !lis_cluster && !gw_cluster {
            return Some(format!("TLS.SDS.ClusterName is required if CertResource is set (service {name:?} on listener on port {port})"));
        }
    }
    None
}

/// `validateHost` (`agent/structs/config_entry_gateways.go`).
fn host_problem(tls_enabled: bool, host: &str) -> Option<String> {
    if host == "*" {
        return tls_enabled.then(|| "Host '*' is not allowed when TLS is enabled, all hosts must be valid DNS records to add as a DNSSAN".to_owned());
    }
    if !is_domain_name(host) {
        return Some(format!("Host {host:?} must be a valid DNS hostname"));
    }
    if host.strip_prefix("*.").unwrap_or(host).contains('*') {
        return Some(format!(
            "Host {host:?} is not valid, a wildcard specifier is only allowed as the leftmost label"
        ));
    }
    None
}

/// `dns.IsDomainName` of `github.com/miekg/dns`, which is liberal: any bytes, but no empty
/// label, labels of at most 63 bytes and at most 255 bytes on the wire.
fn is_domain_name(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    if s == "." {
        return true;
    }
    let trimmed = s.strip_suffix('.').unwrap_or(s);
    let labels: Vec<&str> = trimmed.split('.').collect();
    let wire: usize = labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1;
    labels.iter().all(|l| !l.is_empty() && l.len() <= 63) && wire <= 255
}

fn terminating_gateway(body: &Map<String, Value>) -> Option<Problem> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, s) in objects(body, "Services").enumerate() {
        let field = format!("Services[{i}]");
        let service = |m: String| Some(Problem::new(Code::GatewayService, field.clone(), m));
        let name = str_of(s, "Name").unwrap_or("");
        if name.is_empty() {
            return service("Service name cannot be blank.".to_owned());
        }
        if !seen.insert(name) {
            return service(format!(
                "Service {name:?} was specified more than once within a namespace"
            ));
        }
        let (ca, cert, key) = (
            str_of(s, "CAFile").is_some(),
            str_of(s, "CertFile").is_some(),
            str_of(s, "KeyFile").is_some(),
        );
        if (cert || key) && !(ca && cert && key) {
            return service(format!("Service {name:?} must have a CertFile, CAFile, and KeyFile specified for TLS origination"));
        }
    }
    None
}

fn api_gateway(body: &Map<String, Value>) -> Option<Problem> {
    let listeners: Vec<&Map<String, Value>> = objects(body, "Listeners").collect();
    let listener = |i: usize, m: String| {
        Some(Problem::new(
            Code::GatewayListener,
            format!("Listeners[{i}]"),
            m,
        ))
    };
    if listeners.is_empty() {
        return Some(Problem::new(
            Code::GatewayListener,
            "Listeners",
            "api gateway must have at least one listener",
        ));
    }
    // `validateListenerNames`: DNS-label names, unique.
    let mut names = std::collections::BTreeSet::new();
    for (i, l) in listeners.iter().enumerate() {
        let name = str_of(l, "Name").unwrap_or("");
        if !is_listener_name(name) {
            return listener(i, format!("listener name {name:?} is invalid, must be at least 1 character and contain only letters, numbers, or dashes"));
        }
        if !names.insert(name) {
            return listener(
                i,
                format!("found multiple listeners with the name {name:?}"),
            );
        }
    }
    // `validateMergedListeners`: listeners on one port agree on hostname and protocol.
    let mut by_port: std::collections::BTreeMap<i64, &Map<String, Value>> = Default::default();
    for (i, l) in listeners.iter().enumerate() {
        let port = l.get("Port").and_then(Value::as_i64).unwrap_or(0);
        if let Some(m) = by_port.get(&port) {
            if str_of(m, "Hostname") != str_of(l, "Hostname")
                || str_of(m, "Protocol") != str_of(l, "Protocol")
            {
                return listener(
                    i,
                    format!(
                        "listeners {:?} and {:?} cannot be merged",
                        str_of(m, "Name").unwrap_or(""),
                        str_of(l, "Name").unwrap_or("")
                    ),
                );
            }
        }
        by_port.insert(port, l);
    }
    for (i, l) in listeners.iter().enumerate() {
        let protocol = str_of(l, "Protocol").unwrap_or("");
        let hostname = str_of(l, "Hostname").unwrap_or("");
        let port = l.get("Port").and_then(Value::as_i64).unwrap_or(0);
        if !matches!(protocol, "http" | "tcp") {
            return listener(
                i,
                format!(
                    "unsupported listener protocol {protocol:?}, must be one of 'tcp', or 'http'"
                ),
            );
        }
        if protocol == "tcp" && !hostname.is_empty() {
            return listener(
                i,
                "hostname specification is not supported when using TCP".to_owned(),
            );
        }
        if !(1..=65535).contains(&port) {
            return listener(i, format!("listener port {port} not in the range 1-65535"));
        }
        if hostname
            .strip_prefix("*.")
            .unwrap_or(hostname)
            .contains('*')
        {
            return listener(i, format!("host {hostname:?} is not valid, a wildcard specifier is only allowed as the left-most label"));
        }
        let certs = l.get("TLS").map_or(Vec::new(), |t| {
            t.get("Certificates")
                .and_then(Value::as_array)
                .map(|c| c.iter().filter_map(Value::as_object).collect())
                .unwrap_or_default()
        });
        for c in certs {
            let kind = str_of(c, "Kind").unwrap_or("");
            if !matches!(kind, "inline-certificate" | "file-system-certificate") {
                return listener(i, format!("unsupported certificate kind: {kind:?}, must be 'inline-certificate' or 'file-system-certificate'"));
            }
            if str_of(c, "Name").is_none() {
                return listener(i, "certificate reference must have a name".to_owned());
            }
        }
    }
    None
}

/// `listenerNameRegex` (`agent/structs/config_entry_gateways.go`): DNS-1123 subdomain labels.
fn is_listener_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// The parents of a route (`HTTPRouteConfigEntry.Validate`, `TCPRouteConfigEntry.Validate`).
fn route_parents(body: &Map<String, Value>) -> Option<Problem> {
    let mut seen = Vec::new();
    for (i, p) in objects(body, "Parents").enumerate() {
        let kind = str_of(p, "Kind").unwrap_or("");
        let at = format!("Parents[{i}]");
        if kind != "api-gateway" {
            return Some(Problem::new(
                Code::GatewayService,
                at,
                format!("unsupported parent kind: {kind:?}, must be 'api-gateway'"),
            ));
        }
        if seen.contains(&p) {
            return Some(Problem::new(
                Code::GatewayService,
                at,
                "route parents must be unique",
            ));
        }
        seen.push(p);
    }
    None
}

fn http_route(body: &Map<String, Value>) -> Option<Problem> {
    for (i, host) in strs(body, "Hostnames").enumerate() {
        let at = format!("Hostnames[{i}]");
        if !is_domain_name(host) {
            return Some(Problem::new(
                Code::GatewayService,
                at,
                format!("host {host:?} must be a valid DNS hostname"),
            ));
        }
        if host.contains('*') {
            return Some(Problem::new(
                Code::GatewayService,
                at,
                format!("host {host:?} must not be a wildcard"),
            ));
        }
    }
    if let Some(p) = route_parents(body) {
        return Some(p);
    }
    for (i, rule) in objects(body, "Rules").enumerate() {
        for (j, m) in objects(rule, "Matches").enumerate() {
            if let Some(msg) = http_match(m) {
                return Some(Problem::new(
                    Code::GatewayService,
                    format!("Rules[{i}].Matches[{j}]"),
                    format!("Rule[{i}], Match[{j}], {msg}"),
                ));
            }
        }
    }
    None
}

/// `validateMatch` (`agent/structs/config_entry_routes.go`).
fn http_match(m: &Map<String, Value>) -> Option<String> {
    if let Some(method) = str_of(m, "Method") {
        if !matches!(
            method,
            "CONNECT" | "DELETE" | "GET" | "HEAD" | "OPTIONS" | "PATCH" | "POST" | "PUT" | "TRACE"
        ) {
            return Some(format!("Method contains an invalid method {method:?}"));
        }
    }
    for (k, q) in objects(m, "Query").enumerate() {
        if str_of(q, "Name").is_none() {
            return Some(format!("Query[{k}], missing required Name field"));
        }
        if !matches!(str_of(q, "Match"), Some("exact" | "present" | "regex")) {
            return Some(format!(
                "Query[{k}], match type should be one of present, exact, or regex"
            ));
        }
    }
    for (k, h) in objects(m, "Headers").enumerate() {
        if str_of(h, "Name").is_none() {
            return Some(format!("Headers[{k}], missing required Name field"));
        }
        if !matches!(
            str_of(h, "Match"),
            Some("exact" | "prefix" | "regex" | "suffix" | "present")
        ) {
            return Some(format!("Headers[{k}], match type should be one of present, exact, prefix, suffix, or regex"));
        }
    }
    let path = m.get("Path").and_then(Value::as_object);
    let (kind, value) = path.map_or((None, ""), |p| {
        (str_of(p, "Match"), str_of(p, "Value").unwrap_or(""))
    });
    match kind {
        Some(k @ ("exact" | "prefix")) if !value.starts_with('/') => Some(format!(
            "Path, {k} type match doesn't start with '/': {value:?}"
        )),
        Some("exact" | "prefix" | "regex") => None,
        _ => Some("Path, match type should be one of exact, prefix, or regex".to_owned()),
    }
}

fn tcp_route(body: &Map<String, Value>) -> Option<Problem> {
    if objects(body, "Services").count() > 1 {
        return Some(Problem::new(
            Code::GatewayService,
            "Services",
            "tcp-route currently only supports one service",
        ));
    }
    route_parents(body)
}

/// `ExportedServicesConfigEntry.Validate`: the name, then CE's Enterprise check
/// (`validateServicesEnterprise`, `config_entry_exports_ce.go`), then the services.
fn exported_services(name: &str, body: &Map<String, Value>) -> Option<Problem> {
    if name != "default" {
        return Some(Problem::new(
            Code::ExportedServices,
            "Name",
            "exported-services Name must be \"default\"",
        ));
    }
    let services: Vec<&Map<String, Value>> = objects(body, "Services").collect();
    for (i, s) in services.iter().enumerate() {
        for (j, c) in objects(s, "Consumers").enumerate() {
            let at = format!("Services[{i}].Consumers[{j}]");
            if !matches!(str_of(c, "Partition"), None | Some("default")) {
                return Some(Problem::new(
                    Code::EnterpriseOnly,
                    format!("{at}.Partition"),
                    format!("{at}: partitions are an enterprise-only feature"),
                ));
            }
            if str_of(c, "SamenessGroup").is_some() {
                return Some(Problem::new(
                    Code::EnterpriseOnly,
                    format!("{at}.SamenessGroup"),
                    format!("{at}: sameness-groups are an enterprise-only feature"),
                ));
            }
        }
    }
    for (i, s) in services.iter().enumerate() {
        let at = format!("Services[{i}]");
        let problem =
            |field: String, m: String| Some(Problem::new(Code::ExportedServices, field, m));
        if str_of(s, "Name").is_none() {
            return problem(at.clone(), format!("{at}: service name cannot be empty"));
        }
        let consumers: Vec<&Map<String, Value>> = objects(s, "Consumers").collect();
        if consumers.is_empty() {
            return problem(at.clone(), format!("{at}: must have at least one consumer"));
        }
        for (j, c) in consumers.iter().enumerate() {
            let at = format!("{at}.Consumers[{j}]");
            let set = ["Peer", "Partition", "SamenessGroup"]
                .iter()
                .filter(|k| str_of(c, k).is_some())
                .count();
            if set > 1 {
                return problem(
                    at.clone(),
                    format!("{at}: must define at most one of Peer, Partition, or SamenessGroup"),
                );
            }
            if str_of(c, "Partition") == Some("*") {
                return problem(
                    at.clone(),
                    format!("{at}: exporting to all partitions (wildcard) is not supported"),
                );
            }
            if str_of(c, "Peer") == Some("*") {
                return problem(
                    at.clone(),
                    format!("{at}: exporting to all peers (wildcard) is not supported"),
                );
            }
        }
    }
    None
}

/// `JWTProviderConfigEntry.Validate` (`agent/structs/config_entry_jwt_provider.go`).
fn jwt_provider(body: &Map<String, Value>) -> Option<Problem> {
    let problem = |field: &str, m: &str| Some(Problem::new(Code::EntryField, field, m));
    let Some(jwks) = body.get("JSONWebKeySet").and_then(Value::as_object) else {
        return problem("JSONWebKeySet", "JSONWebKeySet is required");
    };
    let local = jwks.get("Local").and_then(Value::as_object);
    let remote = jwks.get("Remote").and_then(Value::as_object);
    match (local, remote) {
        (Some(_), Some(_)) | (None, None) => {
            return problem(
                "JSONWebKeySet",
                "must specify exactly one of Local or Remote JSON Web key set",
            )
        }
        (None, Some(r)) => {
            let Some(uri) = str_of(r, "URI") else {
                return problem("JSONWebKeySet.Remote.URI", "Remote JWKS URI is required");
            };
            // `url.ParseRequestURI`: an absolute URI or an absolute path.
            let absolute = uri.starts_with('/')
                || uri.split_once(':').is_some_and(|(scheme, _)| {
                    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                        && scheme
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                });
            if !absolute {
                return Some(Problem::new(
                    Code::EntryField,
                    "JSONWebKeySet.Remote.URI",
                    format!("Remote JWKS URI is invalid: parse {uri:?}: invalid URI for request, uri: {uri}"),
                ));
            }
            if let Some(p) = r.get("JWKSCluster").and_then(jwks_cluster) {
                return Some(Problem::new(
                    Code::EntryField,
                    "JSONWebKeySet.Remote.JWKSCluster",
                    p,
                ));
            }
            if let Some(b) = r
                .get("RetryPolicy")
                .and_then(|p| p.get("RetryPolicyBackOff"))
            {
                let ns = |k: &str| {
                    b.get(k)
                        .and_then(Value::as_str)
                        .and_then(crate::duration::parse_go)
                        .unwrap_or(0)
                };
                let (base, max) = (ns("BaseInterval"), ns("MaxInterval"));
                if max != 0 && base > max {
                    return problem("JSONWebKeySet.Remote.RetryPolicy.RetryPolicyBackOff", "retry policy backoff's MaxInterval should be greater or equal to BaseInterval");
                }
            }
        }
        (Some(l), None) => {
            let (file, jwks_text) = (str_of(l, "Filename"), str_of(l, "JWKS"));
            if file.is_some() == jwks_text.is_some() {
                return problem(
                    "JSONWebKeySet.Local",
                    "must specify exactly one of String or filename for local keyset",
                );
            }
            if jwks_text.is_some_and(|t| !is_std_base64(t)) {
                return problem(
                    "JSONWebKeySet.Local.JWKS",
                    "JWKS must be valid base64 encoded string",
                );
            }
        }
    }
    for (i, loc) in objects(body, "Locations").enumerate() {
        let at = format!("Locations[{i}]");
        let set: Vec<&str> = ["Header", "QueryParam", "Cookie"]
            .into_iter()
            .filter(|k| loc.contains_key(*k))
            .collect();
        if set.len() != 1 {
            return Some(Problem::new(
                Code::EntryField,
                at,
                "must set exactly one of: JWT location header, query param or cookie",
            ));
        }
        let named = loc[set[0]].get("Name").and_then(Value::as_str).is_some();
        if !named {
            let what = match set[0] {
                "Header" => "header",
                "Cookie" => "cookie",
                _ => "query param",
            };
            return Some(Problem::new(
                Code::EntryField,
                format!("{at}.{}", set[0]),
                format!("JWT location {what} name must be specified"),
            ));
        }
    }
    if let Some(f) = body.get("Forwarding").and_then(Value::as_object) {
        if str_of(f, "HeaderName").is_none() {
            return problem("Forwarding", "Header name required for forwarding config");
        }
    }
    None
}

/// `JWKSCluster.Validate`: a known discovery type, exactly one CA source.
fn jwks_cluster(c: &Value) -> Option<String> {
    if let Some(t) = c.get("DiscoveryType").and_then(Value::as_str) {
        if !matches!(
            t,
            "STATIC" | "STRICT_DNS" | "LOGICAL_DNS" | "EDS" | "ORIGINAL_DST"
        ) {
            return Some(format!("unsupported jwks cluster discovery type: {t:?}"));
        }
    }
    let certs = c.get("TLSCertificates")?;
    let trusted = certs.get("TrustedCA");
    if certs.get("CaCertificateProviderInstance").is_some() == trusted.is_some() {
        return Some("must specify exactly one of: CaCertificateProviderInstance or TrustedCA for JKWS' TLSCertificates".to_owned());
    }
    let set = [
        "Filename",
        "EnvironmentVariable",
        "InlineString",
        "InlineBytes",
    ]
    .iter()
    .filter(|k| trusted.and_then(|t| t.get(**k)).is_some())
    .count();
    if trusted.is_some() && set != 1 {
        return Some("must specify exactly one of: Filename, EnvironmentVariable, InlineString or InlineBytes for JWKS' TrustedCA".to_owned());
    }
    None
}

/// Go's `base64.StdEncoding.DecodeString` accepts exactly padded standard base64.
fn is_std_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|c| **c == b'=').count();
    pad <= 2
        && b[..b.len() - pad]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

// ---- JSON helpers --------------------------------------------------------------------------

fn str_of<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn objects<'a>(
    o: &'a Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a Map<String, Value>> {
    o.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

fn objects_mut<'a>(
    o: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    o.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn strs<'a>(o: &'a Map<String, Value>, key: &str) -> impl Iterator<Item = &'a str> {
    o.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn default_str(o: &mut Map<String, Value>, key: &str, value: &str) {
    if str_of(o, key).is_none() {
        o.insert(key.into(), Value::String(value.to_owned()));
    }
}
