//! Intentions: precedence, normalization, validation and evaluation, as Consul implements them
//! (`agent/structs/config_entry_intentions.go`, `state.IntentionDecision`,
//! `connect.AuthorizeIntentionTarget`).

use mesh_diagnostics::{Code, Diagnostic, Span};
use mesh_model::{IntentionAction, IntentionPermission, ServiceIntentions, SourceIntention};
use std::collections::BTreeMap;

/// Consul CE's namespace: every name lives in `default`.
pub const DEFAULT_NAMESPACE: &str = "default";
pub const WILDCARD: &str = "*";

/// Precedence with explicit namespaces (consul-semantics 2.4). `countExact`: 0 if the namespace
/// is `*`, 1 if the name is `*`, else 2.
pub fn precedence_ns(src_ns: &str, src: &str, dst_ns: &str, dst: &str) -> u32 {
    fn count_exact(ns: &str, name: &str) -> u32 {
        if ns == WILDCARD {
            0
        } else if name == WILDCARD {
            1
        } else {
            2
        }
    }
    let max = match count_exact(dst_ns, dst) {
        2 => 9,
        1 => 6,
        _ => 3,
    };
    max - (2 - count_exact(src_ns, src))
}

/// Precedence in Consul CE (both namespaces `default`): 9, 8, 6 or 5.
pub fn precedence(source: &str, destination: &str) -> u32 {
    precedence_ns(DEFAULT_NAMESPACE, source, DEFAULT_NAMESPACE, destination)
}

/// What Consul does to an entry on write (2.2): Type defaults to `consul`, Precedence is
/// recomputed, HTTP methods are upper-cased, sources are stable-sorted by precedence, highest
/// first. Idempotent.
pub fn normalize(entry: &mut ServiceIntentions) {
    for s in &mut entry.sources {
        if s.r#type.is_empty() {
            s.r#type = "consul".to_owned();
        }
        s.precedence = precedence(&s.name, &entry.name);
        for p in &mut s.permissions {
            if let Some(http) = &mut p.http {
                for m in &mut http.methods {
                    *m = m.to_ascii_uppercase();
                }
            }
        }
    }
    entry
        .sources
        .sort_by_key(|s| std::cmp::Reverse(s.precedence));
}

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
];

fn name_error(field: &str, name: &str) -> Option<String> {
    if name.contains('*') && name != WILDCARD {
        return Some(format!(
            "{field}: wildcard character '*' cannot be used with partial values"
        ));
    }
    None
}

/// Every rule of consul-semantics 2.3 that applies in CE. Messages are Consul's own texts (the
/// control plane returns them as the HTTP 500 body); spans point at the most specific object.
pub fn validate(entry: &ServiceIntentions) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let at = |span: Span, code: Code, msg: String, help: &str| {
        Diagnostic::new(code, span, msg).with_help(help.to_owned())
    };
    if entry.name.is_empty() {
        out.push(at(
            entry.span,
            Code::IntentionName,
            "Name is required".into(),
            "name the destination service",
        ));
    } else if let Some(m) = name_error("Name", &entry.name) {
        out.push(
            at(
                entry.span,
                Code::IntentionName,
                m,
                "use an exact service name or \"*\"",
            )
            .with_field("Name"),
        );
    }
    if entry.sources.is_empty() {
        out.push(at(
            entry.span,
            Code::IntentionNoSources,
            "At least one source is required".into(),
            "add a source, or delete the entry to remove every intention to this destination",
        ));
    }
    let wildcard_dest = entry.name == WILDCARD;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, s) in entry.sources.iter().enumerate() {
        validate_source(i, s, wildcard_dest, &mut out);
        let key = match (&s.peer, &s.sameness_group) {
            (Some(p), _) => format!("peer(\"{p}\") default/{}", s.name),
            (_, Some(g)) => format!("sameness-group(\"{g}\") default/{}", s.name),
            _ => format!("default/{}", s.name),
        };
        if let Some(first) = seen.get(&key) {
            // `ServiceIntentionsConfigEntry.validate` (`config_entry_intentions.go`) prints
            // `ServiceName.String()`, which on CE is the bare name (`structs_ce.go`).
            let shown = match (&s.peer, &s.sameness_group) {
                (Some(p), _) => format!("peer({p:?}) {:?}", s.name),
                (_, Some(g)) => format!("sameness-group({g:?}) {:?}", s.name),
                _ => format!("{:?}", s.name),
            };
            out.push(
                at(
                    s.span,
                    Code::IntentionDuplicateSource,
                    format!("Sources[{i}] defines {shown} more than once"),
                    "merge the two sources into one",
                )
                .with_label(entry.sources[*first].span, "first defined here"),
            );
        } else {
            seen.insert(key, i);
        }
    }
    out.extend(crate::config_entry::validate_meta(&entry.meta, entry.span));
    out
}

fn validate_source(i: usize, s: &SourceIntention, wildcard_dest: bool, out: &mut Vec<Diagnostic>) {
    let d = |code: Code, msg: String, help: &str| {
        Diagnostic::new(code, s.span, msg).with_help(help.to_owned())
    };
    // A problem with one written field of the source points at it.
    let f = |code: Code, field: &str, msg: String, help: &str| d(code, msg, help).with_field(field);
    if s.name.is_empty() {
        out.push(d(
            Code::IntentionName,
            format!("Sources[{i}].Name is required"),
            "name the source service or \"*\"",
        ));
    } else if let Some(m) = name_error(&format!("Sources[{i}].Name"), &s.name) {
        out.push(f(
            Code::IntentionName,
            "Name",
            m,
            "use an exact service name or \"*\"",
        ));
    }
    for (field, v) in [("Peer", &s.peer), ("SamenessGroup", &s.sameness_group)] {
        if v.as_deref() == Some(WILDCARD) {
            let what = if field == "Peer" {
                "peer"
            } else {
                "sameness group"
            };
            out.push(f(
                Code::IntentionName,
                field,
                format!("Sources[{i}].{field}: cannot use wildcard '*' in {what}"),
                "name one peer or sameness group",
            ));
        }
    }
    if s.peer.is_some() && s.sameness_group.is_some() {
        out.push(f(
            Code::IntentionPeer,
            "SamenessGroup",
            format!(
                "Sources[{i}].SamenessGroup: cannot set SamenessGroup and Peer at the same time."
            ),
            "a source comes from one peer or one sameness group",
        ));
    }
    if s.description.as_ref().is_some_and(|x| x.len() > 512) {
        out.push(f(
            Code::IntentionDescription,
            "Description",
            format!("Sources[{i}].Description exceeds maximum length 512"),
            "shorten the description",
        ));
    }
    if s.permissions.is_empty() {
        if s.action.is_none() {
            out.push(d(
                Code::IntentionAction,
                format!("Sources[{i}].Action must be set to 'allow' or 'deny'"),
                "add `Action = \"allow\"` or `Action = \"deny\"`",
            ));
        }
    } else {
        if s.action.is_some() {
            out.push(f(
                Code::IntentionActionAndPermissions,
                "Action",
                format!("Sources[{i}].Action must be omitted if Permissions are specified"),
                "an L7 source decides per request through its Permissions",
            ));
        }
        if wildcard_dest {
            out.push(f(
                Code::IntentionWildcardPermissions,
                "Permissions",
                format!(
                    "Sources[{i}].Permissions cannot be specified on intentions with wildcarded destinations"
                ),
                "write L7 permissions on an entry for one destination service",
            ));
        }
        for (j, p) in s.permissions.iter().enumerate() {
            validate_permission(i, j, p, out);
        }
    }
    if s.r#type != "consul" && !s.r#type.is_empty() {
        out.push(f(
            Code::IntentionType,
            "Type",
            format!("Sources[{i}].Type must be set to 'consul'"),
            "remove Type or set it to \"consul\"",
        ));
    }
}

fn validate_permission(i: usize, j: usize, p: &IntentionPermission, out: &mut Vec<Diagnostic>) {
    let prefix = format!("Sources[{i}].Permissions[{j}]");
    let d = |msg: String, help: &str| {
        Diagnostic::new(Code::IntentionPermission, p.span, msg).with_help(help.to_owned())
    };
    // A problem with one written field of the permission points at it.
    let f = |field: String, msg: String, help: &str| d(msg, help).with_field(field);
    let Some(http) = &p.http else {
        out.push(d(
            format!("{prefix}.HTTP is required"),
            "add `HTTP { PathPrefix = \"/\" }` or another match",
        ));
        return;
    };
    let paths = [&http.path_exact, &http.path_prefix, &http.path_regex]
        .iter()
        .filter(|x| x.is_some())
        .count();
    if paths > 1 {
        out.push(f(
            "HTTP".into(),
            format!("{prefix}.HTTP should only contain at most one of PathExact, PathPrefix, or PathRegex"),
            "keep one path match",
        ));
    }
    for (field, v) in [
        ("PathExact", &http.path_exact),
        ("PathPrefix", &http.path_prefix),
    ] {
        if let Some(v) = v {
            if !v.starts_with('/') {
                out.push(f(
                    format!("HTTP.{field}"),
                    format!("{prefix}.HTTP.{field} doesn't start with '/': {v:?}"),
                    "paths start with '/'",
                ));
            }
        }
    }
    if let Some(re) = &http.path_regex {
        if regex::Regex::new(re).is_err() {
            out.push(f(
                "HTTP.PathRegex".into(),
                format!("{prefix}.HTTP.PathRegex {re:?} is not a valid regular expression"),
                "check the regular expression",
            ));
        }
    }
    for (k, h) in http.header.iter().enumerate() {
        if h.name.is_empty() {
            out.push(f(
                format!("HTTP.Header[{k}]"),
                format!("{prefix}.HTTP.Header[{k}] missing required Name field"),
                "name the header to match",
            ));
        }
        let set = [
            h.present,
            h.exact.is_some(),
            h.prefix.is_some(),
            h.suffix.is_some(),
            h.regex.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if set != 1 {
            out.push(f(
                format!("HTTP.Header[{k}]"),
                format!("{prefix}.HTTP.Header[{k}] should only contain one of Present, Exact, Prefix, Suffix, or Regex"),
                "keep exactly one header match",
            ));
        }
    }
    let mut seen = Vec::new();
    for (k, m) in http.methods.iter().enumerate() {
        if !METHODS.contains(&m.as_str()) {
            out.push(f(
                format!("HTTP.Methods[{k}]"),
                format!("{prefix}.HTTP.Methods contains an invalid method {m:?}"),
                "methods are GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS, TRACE",
            ));
        } else if seen.contains(&m) {
            out.push(f(
                format!("HTTP.Methods[{k}]"),
                format!("{prefix}.HTTP.Methods contains {m:?} more than once"),
                "list each method once",
            ));
        }
        seen.push(m);
    }
    if paths == 0 && http.header.is_empty() && http.methods.is_empty() {
        out.push(f(
            "HTTP".into(),
            format!("{prefix}.HTTP should not be empty"),
            "match on a path, a header or a method",
        ));
    }
}

/// One intention, as the evaluation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentionRef {
    pub destination: String,
    pub source: String,
    pub precedence: u32,
    /// `None` for an L7 source (decided per request by its permissions).
    pub action: Option<IntentionAction>,
    pub l7: bool,
}

/// The outcome of evaluating a connection or a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub matched: Option<IntentionRef>,
    /// Consul's reason text (`/v1/agent/connect/authorize`).
    pub reason: String,
}

/// An HTTP request, for L7 permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchBy {
    Source,
    Destination,
}

#[derive(Debug, Clone)]
struct Indexed {
    destination: String,
    source: SourceIntention,
}

/// Every intention of a mesh, indexed for evaluation: per destination (exact and `*`), sources
/// pre-sorted into evaluation order.
#[derive(Debug, Clone, Default)]
pub struct IntentionSet {
    by_destination: BTreeMap<String, Vec<Indexed>>,
    /// The `*` destination's sources.
    wildcard: Vec<Indexed>,
}

impl IntentionSet {
    pub fn new<'a>(entries: impl IntoIterator<Item = &'a ServiceIntentions>) -> Self {
        let mut set = IntentionSet::default();
        for e in entries {
            for s in &e.sources {
                let mut s = s.clone();
                s.precedence = precedence(&s.name, &e.name);
                let item = Indexed {
                    destination: e.name.clone(),
                    source: s,
                };
                if e.name == WILDCARD {
                    set.wildcard.push(item);
                } else {
                    set.by_destination
                        .entry(e.name.clone())
                        .or_default()
                        .push(item);
                }
            }
        }
        for list in set.by_destination.values_mut() {
            list.sort_by(order);
        }
        set.wildcard.sort_by(order);
        set
    }

    /// Intentions whose destination matches `destination`, in evaluation order.
    fn candidates<'s>(&'s self, destination: &str) -> impl Iterator<Item = &'s Indexed> {
        let exact = self
            .by_destination
            .get(destination)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        merge_sorted(exact, &self.wildcard)
    }

    /// The first intention that matches `source -> destination` (2.5 steps 1-3).
    pub fn first_match(&self, source: &str, destination: &str) -> Option<IntentionRef> {
        self.first(source, destination).map(to_ref)
    }

    fn first(&self, source: &str, destination: &str) -> Option<&Indexed> {
        self.candidates(destination).find(|i| {
            i.source.peer.is_none()
                && i.source.sameness_group.is_none()
                && (i.source.name == WILDCARD || i.source.name == source)
        })
    }

    /// The connection-level decision (`/v1/connect/intentions/check`, `/v1/agent/connect/
    /// authorize`): an L7 match denies, because permissions need a request to decide.
    pub fn decide(&self, source: &str, destination: &str, default_allow: bool) -> Decision {
        match self.first(source, destination) {
            Some(i) if !i.source.permissions.is_empty() => Decision {
                allowed: false,
                reason: format!("Matched L7 intention: {}", describe(i)),
                matched: Some(to_ref(i)),
            },
            Some(i) => Decision {
                allowed: i.source.action == Some(IntentionAction::Allow),
                reason: format!("Matched L4 intention: {}", describe(i)),
                matched: Some(to_ref(i)),
            },
            None => default_decision(default_allow),
        }
    }

    /// Whether the first matching intention is L7 (the connection is admitted and each request
    /// is then decided by `decide_request`).
    pub fn has_l7(&self, source: &str, destination: &str) -> bool {
        self.first(source, destination)
            .is_some_and(|i| !i.source.permissions.is_empty())
    }

    /// The per-request decision: an L4 match decides as it does for connections; an L7 match's
    /// first matching permission decides; a request matching no permission gets the default,
    /// never a lower-precedence intention (hashicorp/consul#10536).
    pub fn decide_request(
        &self,
        source: &str,
        destination: &str,
        req: &HttpRequest,
        default_allow: bool,
    ) -> Decision {
        let Some(i) = self.first(source, destination) else {
            return default_decision(default_allow);
        };
        if i.source.permissions.is_empty() {
            return self.decide(source, destination, default_allow);
        }
        for p in &i.source.permissions {
            if permission_matches(p, req) {
                return Decision {
                    allowed: p.action == IntentionAction::Allow,
                    reason: format!("Matched L7 intention: {}", describe(i)),
                    matched: Some(to_ref(i)),
                };
            }
        }
        default_decision(default_allow)
    }

    /// Intentions matching `name` as a source or as a destination, wildcards resolved, in
    /// evaluation order (`/v1/connect/intentions/match`).
    pub fn matching(&self, by: MatchBy, name: &str) -> Vec<IntentionRef> {
        let mut out: Vec<&Indexed> = match by {
            MatchBy::Destination => self.candidates(name).collect(),
            MatchBy::Source => self
                .by_destination
                .values()
                .flatten()
                .chain(&self.wildcard)
                .filter(|i| i.source.name == name || i.source.name == WILDCARD)
                .collect(),
        };
        out.sort_by(|a, b| order(a, b));
        out.into_iter().map(to_ref).collect()
    }

    /// Source names that some intention to `destination` (or to `*`) names exactly. Every other
    /// source gets the same decision, so analysis can group them.
    pub fn exact_sources(&self, destination: &str) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .candidates(destination)
            .filter(|i| i.source.name != WILDCARD)
            .map(|i| i.source.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Destinations that have intentions of their own (not only `*` ones).
    pub fn destinations(&self) -> impl Iterator<Item = &str> {
        self.by_destination.keys().map(String::as_str)
    }

    /// Every intention, in evaluation order over all destinations.
    pub fn all(&self) -> Vec<IntentionRef> {
        let mut all: Vec<&Indexed> = self
            .by_destination
            .values()
            .flatten()
            .chain(&self.wildcard)
            .collect();
        all.sort_by(|a, b| order(a, b));
        all.into_iter().map(to_ref).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.by_destination.is_empty() && self.wildcard.is_empty()
    }
}

fn default_decision(default_allow: bool) -> Decision {
    Decision {
        allowed: default_allow,
        matched: None,
        reason: "Default behavior configured by ACLs".to_owned(),
    }
}

fn describe(i: &Indexed) -> String {
    format!(
        "{} -> {} (precedence {})",
        i.source.name, i.destination, i.source.precedence
    )
}

fn to_ref(i: &Indexed) -> IntentionRef {
    IntentionRef {
        destination: i.destination.clone(),
        source: i.source.name.clone(),
        precedence: i.source.precedence,
        action: if i.source.permissions.is_empty() {
            i.source.action
        } else {
            None
        },
        l7: !i.source.permissions.is_empty(),
    }
}

/// Precedence descending, then Consul's tie-break on (source ns, source name, destination ns,
/// destination name). Namespaces are all `default` in CE.
fn order(a: &Indexed, b: &Indexed) -> std::cmp::Ordering {
    b.source
        .precedence
        .cmp(&a.source.precedence)
        .then_with(|| a.source.name.cmp(&b.source.name))
        .then_with(|| a.destination.cmp(&b.destination))
}

fn merge_sorted<'s>(a: &'s [Indexed], b: &'s [Indexed]) -> impl Iterator<Item = &'s Indexed> {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        let next = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => {
                if order(x, y) != std::cmp::Ordering::Greater {
                    i += 1;
                    x
                } else {
                    j += 1;
                    y
                }
            }
            (Some(x), None) => {
                i += 1;
                x
            }
            (None, Some(y)) => {
                j += 1;
                y
            }
            (None, None) => return None,
        };
        Some(next)
    })
}

fn permission_matches(p: &IntentionPermission, req: &HttpRequest) -> bool {
    let Some(http) = &p.http else {
        return false;
    };
    if let Some(x) = &http.path_exact {
        if req.path != *x {
            return false;
        }
    }
    if let Some(x) = &http.path_prefix {
        if !req.path.starts_with(x.as_str()) {
            return false;
        }
    }
    if let Some(x) = &http.path_regex {
        // Envoy matches the whole path.
        match regex::Regex::new(&format!("^(?:{x})$")) {
            Ok(re) if re.is_match(&req.path) => {}
            _ => return false,
        }
    }
    if !http.methods.is_empty()
        && !http
            .methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&req.method))
    {
        return false;
    }
    for h in &http.header {
        let value = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&h.name))
            .map(|(_, v)| v.as_str());
        let matched = if h.present {
            value.is_some()
        } else if let Some(x) = &h.exact {
            value == Some(x.as_str())
        } else if let Some(x) = &h.prefix {
            value.is_some_and(|v| v.starts_with(x.as_str()))
        } else if let Some(x) = &h.suffix {
            value.is_some_and(|v| v.ends_with(x.as_str()))
        } else if let Some(x) = &h.regex {
            match (value, regex::Regex::new(&format!("^(?:{x})$"))) {
                (Some(v), Ok(re)) => re.is_match(v),
                _ => false,
            }
        } else {
            false
        };
        if matched == h.invert {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests;
