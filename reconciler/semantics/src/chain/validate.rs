//! `Validate()` of the three discovery-chain kinds, with Consul's messages
//! (`agent/structs/config_entry_discoverychain.go`), and the rules Consul's state store checks
//! across entries by compiling every affected chain (`validateProposedConfigEntryInGraph` in
//! `agent/consul/state/config_entry.go`).

use super::compile::{compile, ChainIndex};
use crate::config_entry::validate_meta;
use mesh_diagnostics::{Code, Diagnostic, Span};
use mesh_model::chain::{ChainEntry, ServiceResolver, ServiceRouter, ServiceSplitter};
use mesh_model::ConfigEntry;
use std::collections::{BTreeMap, BTreeSet, HashSet};

fn field(span: Span, message: String, path: String) -> Diagnostic {
    Diagnostic::new(Code::EntryField, span, message).with_field(path)
}

/// Kind-specific validation; every problem Consul would refuse, each with Consul's text.
pub fn validate(entry: &ChainEntry) -> Vec<Diagnostic> {
    let (name, span) = (entry.name(), entry.span());
    if name.is_empty() {
        return vec![Diagnostic::new(Code::EntryName, span, "Name is required")
            .with_help("name the service whose discovery chain this entry configures")];
    }
    let mut out = validate_meta(entry.meta(), span);
    match entry {
        ChainEntry::Router(r) => router(r, &mut out),
        ChainEntry::Splitter(s) => splitter(s, &mut out),
        ChainEntry::Resolver(r) => resolver(r, &mut out),
    }
    out
}

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
];

const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// `ServiceRouterConfigEntry.Validate`, and a warning for a regular expression Consul stores
/// without checking that Envoy (RE2) will refuse, taking the route's listener down.
fn router(r: &ServiceRouter, out: &mut Vec<Diagnostic>) {
    for (i, route) in r.routes.iter().enumerate() {
        // At the entry, with the path from its top: the loader moves it onto the field.
        let at = r.span;
        let mut prefix_rewrite_ok = false;
        if let Some(http) = route.matches.as_ref().and_then(|m| m.http.as_ref()) {
            let mut parts = 0;
            if let Some(p) = &http.path_exact {
                prefix_rewrite_ok = true;
                parts += 1;
                if !p.starts_with('/') {
                    out.push(field(
                        at,
                        format!("Route[{i}] PathExact doesn't start with '/': {p:?}"),
                        format!("Routes[{i}].Match.HTTP.PathExact"),
                    ));
                }
            }
            if let Some(p) = &http.path_prefix {
                prefix_rewrite_ok = true;
                parts += 1;
                if !p.starts_with('/') {
                    out.push(field(
                        at,
                        format!("Route[{i}] PathPrefix doesn't start with '/': {p:?}"),
                        format!("Routes[{i}].Match.HTTP.PathPrefix"),
                    ));
                }
            }
            if let Some(re) = &http.path_regex {
                parts += 1;
                regex_warning(re, at, &format!("Routes[{i}].Match.HTTP.PathRegex"), out);
            }
            if parts > 1 {
                out.push(field(
                    at,
                    format!("Route[{i}] should only contain at most one of PathExact, PathPrefix, or PathRegex"),
                    format!("Routes[{i}].Match.HTTP"),
                ));
            }
            for (j, h) in http.header.iter().enumerate() {
                let path = format!("Routes[{i}].Match.HTTP.Header[{j}]");
                if h.name.is_empty() {
                    out.push(field(
                        at,
                        format!("Route[{i}] Header[{j}] missing required Name field"),
                        path.clone(),
                    ));
                }
                let n = usize::from(h.present)
                    + usize::from(h.exact.is_some())
                    + usize::from(h.regex.is_some())
                    + usize::from(h.prefix.is_some())
                    + usize::from(h.suffix.is_some());
                if n != 1 {
                    out.push(field(
                        at,
                        format!("Route[{i}] Header[{j}] should only contain one of Present, Exact, Prefix, Suffix, or Regex"),
                        path.clone(),
                    ));
                }
                if let Some(re) = &h.regex {
                    regex_warning(re, at, &format!("{path}.Regex"), out);
                }
            }
            for (j, q) in http.query_param.iter().enumerate() {
                let path = format!("Routes[{i}].Match.HTTP.QueryParam[{j}]");
                if q.name.is_empty() {
                    out.push(field(
                        at,
                        format!("Route[{i}] QueryParam[{j}] missing required Name field"),
                        path.clone(),
                    ));
                }
                let n = usize::from(q.present)
                    + usize::from(q.exact.is_some())
                    + usize::from(q.regex.is_some());
                if n != 1 {
                    out.push(field(
                        at,
                        format!("Route[{i}] QueryParam[{j}] should only contain one of Present, Exact, or Regex"),
                        path.clone(),
                    ));
                }
                if let Some(re) = &q.regex {
                    regex_warning(re, at, &format!("{path}.Regex"), out);
                }
            }
            let mut seen = HashSet::new();
            for m in &http.methods {
                if !METHODS.contains(&m.as_str()) {
                    out.push(field(
                        at,
                        format!("Route[{i}] Methods contains an invalid method {m:?}"),
                        format!("Routes[{i}].Match.HTTP.Methods"),
                    ));
                } else if !seen.insert(m) {
                    out.push(field(
                        at,
                        format!("Route[{i}] Methods contains {m:?} more than once"),
                        format!("Routes[{i}].Match.HTTP.Methods"),
                    ));
                }
            }
        }
        if let Some(dest) = &route.destination {
            if dest.rest.contains_key("PrefixRewrite") && !prefix_rewrite_ok {
                out.push(field(
                    at,
                    format!("Route[{i}] cannot make use of PrefixRewrite without configuring either PathExact or PathPrefix"),
                    format!("Routes[{i}].Destination.PrefixRewrite"),
                ));
            }
            let retry_on = dest.rest.get("RetryOn").and_then(|v| v.as_array());
            for r in retry_on.into_iter().flatten().filter_map(|v| v.as_str()) {
                if !RETRY_ON.contains(&r) {
                    out.push(field(
                        at,
                        format!("Route[{i}] contains an invalid retry condition: {r:?}"),
                        format!("Routes[{i}].Destination.RetryOn"),
                    ));
                }
            }
        }
    }
}

/// Consul stores any regular expression; Envoy compiles it with RE2 when the route is pushed
/// and rejects the whole listener update if it does not compile. The `regex` crate accepts
/// RE2's syntax (no look-around, no back-references), so what it refuses Envoy refuses too.
fn regex_warning(re: &str, at: Span, path: &str, out: &mut Vec<Diagnostic>) {
    if let Err(e) = regex::Regex::new(re) {
        let why = e.to_string();
        let why = why.lines().last().unwrap_or("invalid").trim().to_owned();
        out.push(
            Diagnostic::new(
                Code::RouteRegex,
                at,
                format!("{path} {re:?} is not an RE2 expression ({why}): Consul stores it, Envoy rejects the route"),
            )
            .with_field(path)
            .with_help("use RE2 syntax (no look-around, no back-references)"),
        );
    }
}

/// `ServiceSplitterConfigEntry.Validate`.
fn splitter(s: &ServiceSplitter, out: &mut Vec<Diagnostic>) {
    if s.splits.is_empty() {
        out.push(
            Diagnostic::new(Code::EntryField, s.span, "no splits configured")
                .with_field("Splits")
                .with_help("add at least one split; the weights sum to 100"),
        );
        return;
    }
    let mut seen = BTreeSet::new();
    for (i, split) in s.splits.iter().enumerate() {
        let service = split.service.as_deref().unwrap_or(&s.name);
        let subset = split.service_subset.as_deref().unwrap_or("");
        if !seen.insert((service, subset)) {
            out.push(field(
                s.span,
                format!("split destination occurs more than once: service={service:?}, subset={subset:?}, namespace=\"\", partition=\"\""),
                format!("Splits[{i}]"),
            ));
        }
    }
    let sum: i64 = s
        .splits
        .iter()
        .map(|x| super::scaled_weight(x.weight))
        .sum();
    if sum != 100 * 100 {
        out.push(
            Diagnostic::new(
                Code::EntryField,
                s.span,
                format!(
                    "the sum of all split weights must be 100, not {:.6}",
                    sum as f64 / 100.0
                ),
            )
            .with_field("Splits")
            .with_help("make the weights add up to exactly 100"),
        );
    }
}

/// `validateServiceSubset`: a DNS label, used in SNI names.
fn subset_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 63 {
        return Some("must be non-empty and 63 characters or fewer");
    }
    let b = name.as_bytes();
    let ok_inner = b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    let ends = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !ok_inner || !ends(b[0]) || !ends(b[b.len() - 1]) {
        return Some("must be 63 characters or fewer, begin or end with lower case alphanumeric characters, and contain lower case alphanumeric characters or '-' in between");
    }
    None
}

/// `ServiceResolverConfigEntry.Validate`.
fn resolver(r: &ServiceResolver, out: &mut Vec<Diagnostic>) {
    let at = r.span;
    let is_subset = |s: &str| r.subsets.contains_key(s);
    for (name, subset) in &r.subsets {
        if name.is_empty() {
            out.push(field(
                at,
                "Subset defined with empty name".into(),
                "Subsets".into(),
            ));
        } else if let Some(why) = subset_name_problem(name) {
            out.push(field(
                at,
                format!("Subset {name:?} is invalid: {why}"),
                format!("Subsets.{name}"),
            ));
        }
        if let Some(filter) = &subset.filter {
            if let Err(e) = crate::chain::route::Filter::parse(filter) {
                out.push(field(
                    at,
                    format!("Filter for subset {name:?} is not a valid expression: {e}"),
                    format!("Subsets.{name}.Filter"),
                ));
            }
        }
    }
    if let Some(d) = &r.default_subset {
        if !is_subset(d) {
            out.push(field(
                at,
                format!("DefaultSubset {d:?} is not a valid subset"),
                "DefaultSubset".into(),
            ));
        }
    }
    if let Some(red) = &r.redirect {
        let msg = if !r.failover.is_empty() {
            Some("Redirect and Failover cannot both be set".to_owned())
        } else if red == &Default::default() {
            Some("Redirect is empty".to_owned())
        } else if red.peer.is_some() && red.service_subset.is_some() {
            Some("Redirect.Peer cannot be set with Redirect.ServiceSubset".to_owned())
        } else if red.peer.is_some() && red.datacenter.is_some() {
            Some("Redirect.Peer cannot be set with Redirect.Datacenter".to_owned())
        } else if red.service.is_none() {
            if red.service_subset.is_some() {
                Some("Redirect.ServiceSubset defined without Redirect.Service".to_owned())
            } else if red.peer.is_some() {
                Some("Redirect.Peer defined without Redirect.Service".to_owned())
            } else {
                None
            }
        } else {
            match &red.service_subset {
                Some(s) if red.service.as_deref() == Some(&r.name) && !is_subset(s) => {
                    Some(format!(
                        "Redirect.ServiceSubset {s:?} is not a valid subset of {:?}",
                        r.name
                    ))
                }
                _ => None,
            }
        };
        if let Some(m) = msg {
            out.push(field(at, m, "Redirect".into()));
        }
    }
    for (subset, f) in &r.failover {
        let prefix = format!("Bad Failover[{subset:?}]: ");
        let path = format!("Failover.{subset}");
        let mut bad = |m: String| out.push(field(at, m, path.clone()));
        if subset != "*" && !is_subset(subset) {
            bad(format!("{prefix}not a valid subset subset"));
        }
        if f.service.is_none()
            && f.service_subset.is_none()
            && f.datacenters.is_empty()
            && f.targets.is_empty()
        {
            bad(format!("{prefix}one of Service, ServiceSubset, Namespace, Targets, or Datacenters is required"));
        }
        let mode = f.policy.as_ref().and_then(|p| p.mode.as_deref());
        if !matches!(mode, None | Some("default") | Some("order-by-locality")) {
            bad(format!("Bad Failover[{subset:?}]: Policy must be one of '', 'default', or 'order-by-locality'"));
        }
        if let Some(s) = &f.service_subset {
            let own = f.service.as_deref().is_none_or(|x| x == r.name);
            if own && !is_subset(s) {
                bad(format!(
                    "{prefix}ServiceSubset {s:?} is not a valid subset of {:?}",
                    f.service.as_deref().unwrap_or("")
                ));
            }
        }
        if !f.datacenters.is_empty() && !f.targets.is_empty() {
            bad(format!(
                "Bad Failover[{subset:?}]: Targets cannot be set with Datacenters"
            ));
        }
        if f.service_subset.is_some() && !f.targets.is_empty() {
            bad(format!(
                "Bad Failover[{subset:?}]: Targets cannot be set with ServiceSubset"
            ));
        }
        if f.service.is_some() && !f.targets.is_empty() {
            bad(format!(
                "Bad Failover[{subset:?}]: Targets cannot be set with Service"
            ));
        }
        for (i, t) in f.targets.iter().enumerate() {
            let tp = format!("Bad Failover[{subset:?}].Targets[{i}]: ");
            if t.peer.is_some() && t.service_subset.is_some() {
                bad(format!("{tp}Peer cannot be set with ServiceSubset"));
            } else if t.peer.is_some() && t.datacenter.is_some() {
                bad(format!("{tp}Peer cannot be set with Datacenter"));
            } else if let Some(s) = &t.service_subset {
                if t.service.as_deref().is_none_or(|x| x == r.name) && !is_subset(s) {
                    bad(format!(
                        "{tp}ServiceSubset {s:?} is not a valid subset of {:?}",
                        r.name
                    ));
                }
            }
        }
        if f.datacenters.iter().any(String::is_empty) {
            bad(format!(
                "Bad Failover[{subset:?}].Datacenters: found empty datacenter"
            ));
        }
    }
    load_balancer(r, out);
}

/// The `LoadBalancer` part of `ServiceResolverConfigEntry.Validate`.
fn load_balancer(r: &ServiceResolver, out: &mut Vec<Diagnostic>) {
    let Some(lb) = r.rest.get("LoadBalancer") else {
        return;
    };
    let policy = lb.get("Policy").and_then(|v| v.as_str()).unwrap_or("");
    let mut bad = |m: String| out.push(field(r.span, m, "LoadBalancer".into()));
    if ![
        "",
        "random",
        "round_robin",
        "least_request",
        "ring_hash",
        "maglev",
    ]
    .contains(&policy)
    {
        bad(format!(
            "Bad LoadBalancer policy: {policy:?} is not supported"
        ));
        return;
    }
    if policy != "ring_hash" && lb.get("RingHashConfig").is_some() {
        bad(format!("Bad LoadBalancer configuration. RingHashConfig specified for incompatible load balancing policy {policy:?}"));
    }
    if policy != "least_request" && lb.get("LeastRequestConfig").is_some() {
        bad(format!("Bad LoadBalancer configuration. LeastRequestConfig specified for incompatible load balancing policy {policy:?}"));
    }
    let hashes = lb.get("HashPolicies").and_then(|v| v.as_array());
    if !matches!(policy, "ring_hash" | "maglev") && hashes.is_some_and(|h| !h.is_empty()) {
        bad(format!("Bad LoadBalancer configuration: HashPolicies specified for non-hash-based Policy: {policy:?}"));
    }
}

/// The cross-entry rules: every discovery chain the entries touch must compile, as Consul's
/// state store compiles each affected chain before it accepts a write. A problem is reported
/// at the entry that starts the chain (its router, splitter or resolver).
pub fn validate_graph(entries: &[ConfigEntry]) -> Vec<Diagnostic> {
    let index = ChainIndex::new(entries, "dc1");
    // Per chain, the entry that starts it: its router, else its splitter, else its resolver.
    let mut starts: BTreeMap<&str, &ChainEntry> = BTreeMap::new();
    for e in entries {
        let ConfigEntry::Chain(c) = e else { continue };
        let rank = |c: &ChainEntry| match c {
            ChainEntry::Router(_) => 0,
            ChainEntry::Splitter(_) => 1,
            ChainEntry::Resolver(_) => 2,
        };
        let slot = starts.entry(c.name()).or_insert(c);
        if rank(c) < rank(slot) {
            *slot = c;
        }
    }
    let mut out = Vec::new();
    for (name, c) in starts {
        if let Err(err) = compile(&index, name) {
            let field = match c {
                ChainEntry::Router(_) => "Routes",
                ChainEntry::Splitter(_) => "Splits",
                ChainEntry::Resolver(r) if r.redirect.is_some() => "Redirect",
                ChainEntry::Resolver(r) if !r.failover.is_empty() => "Failover",
                ChainEntry::Resolver(_) => "Name",
            };
            out.push(
                Diagnostic::new(Code::ChainInvalid, c.span(), err.to_string())
                    .with_field(field)
                    .with_help(err.help()),
            );
        }
    }
    out
}
