//! Consul's ACL system: policy rules, authorization with exact-beats-longest-prefix matching and
//! policy merging, the derived intentions rule, and service/node identities
//! (consul-semantics section 3, `acl/policy.go`, `acl/policy_authorizer.go`).

use mesh_diagnostics::{Code, Diagnostic, FileId, Span};
use mesh_syntax::{EntryStyle, Node, NodeKind};
use std::collections::BTreeMap;

/// An access level. The derived order `Read < List < Write < Deny` is the merge precedence:
/// when several policies set the same rule, the highest wins (deny > write > list > read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessLevel {
    Read,
    List,
    Write,
    Deny,
}

impl AccessLevel {
    pub fn parse(s: &str) -> Option<AccessLevel> {
        match s.to_ascii_lowercase().as_str() {
            "read" => Some(AccessLevel::Read),
            "list" => Some(AccessLevel::List),
            "write" => Some(AccessLevel::Write),
            "deny" => Some(AccessLevel::Deny),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Read => "read",
            AccessLevel::List => "list",
            AccessLevel::Write => "write",
            AccessLevel::Deny => "deny",
        }
    }

    /// Whether this level grants `access` (`enforce` in Consul).
    fn grants(self, access: Access) -> bool {
        match (self, access) {
            (AccessLevel::Deny, _) => false,
            (AccessLevel::Write, _) => true,
            (AccessLevel::List, Access::Read | Access::List) => true,
            (AccessLevel::Read, Access::Read) => true,
            _ => false,
        }
    }
}

/// What is being asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    Read,
    List,
    Write,
}

/// Resources with a segment (a name) and exact/prefix rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Agent,
    Event,
    Key,
    Node,
    Query,
    Service,
    Session,
    /// The `intentions` sub-rule of service rules.
    Intention,
}

impl Resource {
    pub fn name(self) -> &'static str {
        match self {
            Resource::Agent => "agent",
            Resource::Event => "event",
            Resource::Key => "key",
            Resource::Node => "node",
            Resource::Query => "query",
            Resource::Service => "service",
            Resource::Session => "session",
            Resource::Intention => "intentions",
        }
    }
}

/// Resources without a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Singleton {
    Acl,
    Keyring,
    Mesh,
    Operator,
    Peering,
}

impl Singleton {
    pub fn name(self) -> &'static str {
        match self {
            Singleton::Acl => "acl",
            Singleton::Keyring => "keyring",
            Singleton::Mesh => "mesh",
            Singleton::Operator => "operator",
            Singleton::Peering => "peering",
        }
    }
}

/// One policy's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRules {
    /// (resource, segment) -> level, for exact rules.
    pub exact: BTreeMap<(Resource, String), AccessLevel>,
    /// (resource, prefix) -> level, for `*_prefix` rules.
    pub prefix: BTreeMap<(Resource, String), AccessLevel>,
    pub singletons: BTreeMap<Singleton, AccessLevel>,
}

impl PolicyRules {
    fn set(
        map: &mut BTreeMap<(Resource, String), AccessLevel>,
        r: Resource,
        seg: &str,
        level: AccessLevel,
    ) {
        let e = map.entry((r, seg.to_owned())).or_insert(level);
        *e = (*e).max(level);
    }

    pub fn add_exact(&mut self, r: Resource, seg: &str, level: AccessLevel) {
        Self::set(&mut self.exact, r, seg, level);
    }

    pub fn add_prefix(&mut self, r: Resource, seg: &str, level: AccessLevel) {
        Self::set(&mut self.prefix, r, seg, level);
    }

    pub fn add_singleton(&mut self, s: Singleton, level: AccessLevel) {
        let e = self.singletons.entry(s).or_insert(level);
        *e = (*e).max(level);
    }

    /// Merges `other` in (deny > write > list > read for the same rule).
    pub fn merge(&mut self, other: &PolicyRules) {
        for ((r, s), l) in &other.exact {
            self.add_exact(*r, s, *l);
        }
        for ((r, s), l) in &other.prefix {
            self.add_prefix(*r, s, *l);
        }
        for (s, l) in &other.singletons {
            self.add_singleton(*s, *l);
        }
    }
}

const SEGMENTED: &[(&str, Resource)] = &[
    ("agent", Resource::Agent),
    ("event", Resource::Event),
    ("key", Resource::Key),
    ("node", Resource::Node),
    ("query", Resource::Query),
    ("service", Resource::Service),
    ("session", Resource::Session),
];

const SINGLETONS: &[(&str, Singleton)] = &[
    ("acl", Singleton::Acl),
    ("keyring", Singleton::Keyring),
    ("mesh", Singleton::Mesh),
    ("operator", Singleton::Operator),
    ("peering", Singleton::Peering),
];

/// Parses policy rules (HCL, or JSON when the text starts with `{`). Spans of the returned
/// diagnostics are offsets into `text` shifted by `base`, in `file`.
pub fn parse_rules(text: &str, file: FileId, base: u32) -> Result<PolicyRules, Vec<Diagnostic>> {
    let parsed = if text.trim_start().starts_with('{') {
        mesh_syntax::parse_json(file, text)
    } else {
        mesh_syntax::parse_hcl(file, text)
    };
    let shift = |s: Span| Span {
        file,
        start: s.start + base,
        end: s.end + base,
    };
    let node = parsed.map_err(|errs| {
        errs.into_iter()
            .map(|mut d| {
                d.code = Code::AclRulesSyntax;
                d.span = d.span.map(shift);
                d.message = format!("policy rules: {}", d.message);
                d
            })
            .collect::<Vec<_>>()
    })?;
    let mut rules = PolicyRules::default();
    let mut errors = Vec::new();
    let err = |span: Span, msg: String, help: &str| {
        Diagnostic::new(Code::AclRule, shift(span), msg).with_help(help.to_owned())
    };
    for entry in node.as_object().unwrap_or(&[]) {
        let key = entry.key.as_str();
        if let Some(&(_, s)) = SINGLETONS.iter().find(|(n, _)| *n == key) {
            match entry.value.as_str().map(|v| (v, AccessLevel::parse(v))) {
                Some((_, Some(AccessLevel::List))) | Some((_, None)) => errors.push(err(
                    entry.value.span,
                    format!(
                        "Invalid {key} policy: {:?}",
                        entry.value.as_str().unwrap_or("")
                    ),
                    "the access level is \"read\", \"write\" or \"deny\"",
                )),
                Some((_, Some(level))) => rules.add_singleton(s, level),
                None => errors.push(err(
                    entry.value.span,
                    format!("Invalid {key} policy: expected a string"),
                    "write `operator = \"read\"`",
                )),
            }
            continue;
        }
        let (base_name, is_prefix) = match key.strip_suffix("_prefix") {
            Some(b) => (b, true),
            None => (key, false),
        };
        let Some(&(_, resource)) = SEGMENTED.iter().find(|(n, _)| *n == base_name) else {
            let known: Vec<String> = SEGMENTED
                .iter()
                .flat_map(|(n, _)| [n.to_string(), format!("{n}_prefix")])
                .chain(SINGLETONS.iter().map(|(n, _)| n.to_string()))
                .collect();
            errors.push(err(
                entry.key_span,
                format!("Invalid ACL rule resource {key:?}"),
                &format!("resources are: {}", known.join(", ")),
            ));
            continue;
        };
        // Rules are blocks with a segment label (`service "web" {}`) or, in JSON, an object of
        // segment -> body (`"service": {"web": {...}}`).
        let mut items: Vec<(String, Span, &Node)> = Vec::new();
        if entry.style == EntryStyle::Block {
            if entry.labels.len() != 1 {
                errors.push(err(
                    entry.key_span,
                    format!("{key} rule needs exactly one name label"),
                    &format!("write `{key} \"name\" {{ policy = \"read\" }}`"),
                ));
                continue;
            }
            items.push((
                entry.labels[0].value.clone(),
                entry.labels[0].span,
                &entry.value,
            ));
        } else if let Some(segments) = entry.value.as_object() {
            for s in segments {
                items.push((s.key.clone(), s.key_span, &s.value));
            }
        } else {
            errors.push(err(
                entry.value.span,
                format!("{key} rule must be a block"),
                &format!("write `{key} \"name\" {{ policy = \"read\" }}`"),
            ));
            continue;
        }
        for (segment, _seg_span, body) in items {
            let Some(fields) = body.as_object() else {
                errors.push(err(
                    body.span,
                    format!("{key} {segment:?}: expected a block"),
                    "write `{ policy = \"read\" }`",
                ));
                continue;
            };
            let errors_before = errors.len();
            let (policy, intentions) = SegmentRule {
                key,
                base_name,
                segment: &segment,
                resource,
            }
            .levels(body, fields, &err, &mut errors);
            let Some(level) = policy.or(intentions.map(|_| AccessLevel::Read)) else {
                if intentions.is_none() && errors.len() == errors_before {
                    errors.push(err(
                        body.span,
                        format!("{key} {segment:?}: missing policy"),
                        "add `policy = \"read\"`",
                    ));
                }
                continue;
            };
            let add = |rules: &mut PolicyRules, r: Resource, l: AccessLevel| {
                if is_prefix {
                    rules.add_prefix(r, &segment, l)
                } else {
                    rules.add_exact(r, &segment, l)
                }
            };
            if policy.is_some() {
                add(&mut rules, resource, level);
            }
            if resource == Resource::Service {
                // The intentions sub-rule, derived when unset: read|write -> read, deny -> deny.
                let derived = intentions.or(policy.map(|p| {
                    if p == AccessLevel::Deny {
                        AccessLevel::Deny
                    } else {
                        AccessLevel::Read
                    }
                }));
                if let Some(i) = derived {
                    add(&mut rules, Resource::Intention, i);
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

/// One rule's segment (`service "web" { ... }`): what its fields are checked against.
struct SegmentRule<'a> {
    key: &'a str,
    base_name: &'a str,
    segment: &'a str,
    resource: Resource,
}

impl SegmentRule<'_> {
    /// The `policy` and `intentions` levels of one segment's body; problems go to `errors`.
    fn levels(
        &self,
        body: &Node,
        fields: &[mesh_syntax::Entry],
        err: &dyn Fn(Span, String, &str) -> Diagnostic,
        errors: &mut Vec<Diagnostic>,
    ) -> (Option<AccessLevel>, Option<AccessLevel>) {
        let SegmentRule {
            key,
            base_name,
            segment,
            resource,
        } = *self;
        let mut policy = None;
        let mut intentions = None;
        for f in fields {
            match f.key.as_str() {
                "policy" | "intentions" if matches!(f.value.kind, NodeKind::String(_)) => {
                    let v = f.value.as_str().unwrap_or("");
                    let level = AccessLevel::parse(v);
                    let list_ok = resource == Resource::Key && f.key == "policy";
                    match level {
                            Some(AccessLevel::List) if !list_ok => errors.push(err(
                                f.value.span,
                                format!("Invalid {base_name} {} policy: {v:?}", if f.key == "intentions" { "intentions" } else { "" })
                                    .replace("  ", " "),
                                "\"list\" is valid only for key rules; use \"read\", \"write\" or \"deny\"",
                            )),
                            Some(l) => {
                                if f.key == "policy" {
                                    policy = Some(l)
                                } else {
                                    intentions = Some(l)
                                }
                            }
                            None => errors.push(err(
                                f.value.span,
                                format!("Invalid {base_name} policy: {v:?}")
                                    .replace("policy: ", if f.key == "intentions" { "intentions policy: " } else { "policy: " }),
                                "the access level is \"read\", \"write\" or \"deny\"",
                            )),
                        }
                }
                "intentions" if resource != Resource::Service => {}
                _ => errors.push(err(
                    f.key_span,
                    format!("{key} {segment:?}: unknown field {:?}", f.key),
                    if resource == Resource::Service {
                        "service rules take `policy` and `intentions`"
                    } else {
                        "rules take `policy`"
                    },
                )),
            }
        }
        if intentions.is_some() && resource != Resource::Service {
            errors.push(err(
                body.span,
                format!("{key} {segment:?}: intentions apply only to service rules"),
                "remove `intentions`",
            ));
        }
        (policy, intentions)
    }
}

/// Rules a service identity expands to (`policies/ce/service.hcl`).
pub fn service_identity_rules(name: &str) -> PolicyRules {
    let mut r = PolicyRules::default();
    r.add_exact(Resource::Service, name, AccessLevel::Write);
    r.add_exact(Resource::Intention, name, AccessLevel::Read);
    let sidecar = format!("{name}-sidecar-proxy");
    r.add_exact(Resource::Service, &sidecar, AccessLevel::Write);
    r.add_exact(Resource::Intention, &sidecar, AccessLevel::Read);
    r.add_prefix(Resource::Service, "", AccessLevel::Read);
    r.add_prefix(Resource::Intention, "", AccessLevel::Read);
    r.add_prefix(Resource::Node, "", AccessLevel::Read);
    r
}

/// Rules a node identity expands to.
pub fn node_identity_rules(name: &str) -> PolicyRules {
    let mut r = PolicyRules::default();
    r.add_exact(Resource::Node, name, AccessLevel::Write);
    r.add_prefix(Resource::Service, "", AccessLevel::Read);
    r.add_prefix(Resource::Intention, "", AccessLevel::Read);
    r
}

/// The chain's last link: `acl.default_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAuthorizer {
    AllowAll,
    DenyAll,
    /// global-management: everything, ACL administration included.
    Manage,
}

/// A token's effective permissions: its merged rules, then the default.
#[derive(Debug, Clone)]
pub struct Authorizer {
    rules: PolicyRules,
    default: DefaultAuthorizer,
}

impl Authorizer {
    pub fn new(rules: PolicyRules, default: DefaultAuthorizer) -> Self {
        Authorizer { rules, default }
    }

    /// Merges several policies' rules (order does not matter).
    pub fn from_policies<'a>(
        policies: impl IntoIterator<Item = &'a PolicyRules>,
        default: DefaultAuthorizer,
    ) -> Self {
        let mut rules = PolicyRules::default();
        for p in policies {
            rules.merge(p);
        }
        Authorizer { rules, default }
    }

    pub fn management() -> Self {
        Authorizer {
            rules: PolicyRules::default(),
            default: DefaultAuthorizer::Manage,
        }
    }

    pub fn rules(&self) -> &PolicyRules {
        &self.rules
    }

    /// The rule deciding `segment`: an exact rule for the name wins outright; otherwise the
    /// longest prefix rule.
    fn lookup(&self, r: Resource, segment: &str) -> Option<AccessLevel> {
        if let Some(l) = self.rules.exact.get(&(r, segment.to_owned())) {
            return Some(*l);
        }
        let mut end = segment.len();
        loop {
            if segment.is_char_boundary(end) {
                if let Some(l) = self.rules.prefix.get(&(r, segment[..end].to_owned())) {
                    return Some(*l);
                }
            }
            if end == 0 {
                return None;
            }
            end -= 1;
        }
    }

    fn default_allows(&self, acl_resource: bool) -> bool {
        match self.default {
            DefaultAuthorizer::Manage => true,
            // Neither allow-all nor deny-all grants ACL administration.
            DefaultAuthorizer::AllowAll => !acl_resource,
            DefaultAuthorizer::DenyAll => false,
        }
    }

    /// Whether `access` on `resource`/`segment` is allowed.
    pub fn check(&self, resource: Resource, segment: &str, access: Access) -> bool {
        if self.default == DefaultAuthorizer::Manage {
            return true;
        }
        match self.lookup(resource, segment) {
            Some(level) => level.grants(access),
            None => self.default_allows(false),
        }
    }

    pub fn check_singleton(&self, s: Singleton, access: Access) -> bool {
        if self.default == DefaultAuthorizer::Manage {
            return true;
        }
        let level = self.rules.singletons.get(&s).copied().or(match s {
            // mesh and peering fall back to operator when unset.
            Singleton::Mesh | Singleton::Peering => {
                self.rules.singletons.get(&Singleton::Operator).copied()
            }
            _ => None,
        });
        match level {
            Some(l) => l.grants(access),
            None => self.default_allows(s == Singleton::Acl),
        }
    }

    pub fn service_read(&self, name: &str) -> bool {
        self.check(Resource::Service, name, Access::Read)
    }
    pub fn service_write(&self, name: &str) -> bool {
        self.check(Resource::Service, name, Access::Write)
    }
    pub fn node_read(&self, name: &str) -> bool {
        self.check(Resource::Node, name, Access::Read)
    }
    pub fn node_write(&self, name: &str) -> bool {
        self.check(Resource::Node, name, Access::Write)
    }
    pub fn key_read(&self, key: &str) -> bool {
        self.check(Resource::Key, key, Access::Read)
    }
    pub fn key_list(&self, key: &str) -> bool {
        self.check(Resource::Key, key, Access::List)
    }
    pub fn key_write(&self, key: &str) -> bool {
        self.check(Resource::Key, key, Access::Write)
    }
    pub fn session_read(&self, node: &str) -> bool {
        self.check(Resource::Session, node, Access::Read)
    }
    pub fn session_write(&self, node: &str) -> bool {
        self.check(Resource::Session, node, Access::Write)
    }
    pub fn agent_read(&self, node: &str) -> bool {
        self.check(Resource::Agent, node, Access::Read)
    }
    pub fn agent_write(&self, node: &str) -> bool {
        self.check(Resource::Agent, node, Access::Write)
    }
    pub fn operator_read(&self) -> bool {
        self.check_singleton(Singleton::Operator, Access::Read)
    }
    pub fn operator_write(&self) -> bool {
        self.check_singleton(Singleton::Operator, Access::Write)
    }
    pub fn mesh_read(&self) -> bool {
        self.check_singleton(Singleton::Mesh, Access::Read)
    }
    pub fn mesh_write(&self) -> bool {
        self.check_singleton(Singleton::Mesh, Access::Write)
    }
    pub fn acl_read(&self) -> bool {
        self.check_singleton(Singleton::Acl, Access::Read)
    }
    pub fn acl_write(&self) -> bool {
        self.check_singleton(Singleton::Acl, Access::Write)
    }

    pub fn intention_read(&self, name: &str) -> bool {
        if name == "*" {
            // anyAllowed: some intentions rule allows read; with no rule, the default decides.
            if self.default == DefaultAuthorizer::Manage {
                return true;
            }
            let mut any_rule = false;
            for ((r, _), l) in self.rules.exact.iter().chain(&self.rules.prefix) {
                if *r == Resource::Intention {
                    any_rule = true;
                    if l.grants(Access::Read) {
                        return true;
                    }
                }
            }
            return !any_rule && self.default_allows(false);
        }
        self.check(Resource::Intention, name, Access::Read)
    }

    pub fn intention_write(&self, name: &str) -> bool {
        if name == "*" {
            // allAllowed: the "" prefix must allow write and nothing anywhere may deny it.
            if self.default == DefaultAuthorizer::Manage {
                return true;
            }
            let all = self
                .rules
                .exact
                .iter()
                .chain(&self.rules.prefix)
                .filter(|((r, _), _)| *r == Resource::Intention);
            let mut any = false;
            for (_, l) in all {
                any = true;
                if !l.grants(Access::Write) {
                    return false;
                }
            }
            return match self.rules.prefix.get(&(Resource::Intention, String::new())) {
                Some(l) => l.grants(Access::Write),
                None => !any && self.default_allows(false),
            };
        }
        self.check(Resource::Intention, name, Access::Write)
    }

    /// `KeyWritePrefix`: write on the prefix and on every rule beneath it.
    pub fn key_write_prefix(&self, prefix: &str) -> bool {
        if self.default == DefaultAuthorizer::Manage {
            return true;
        }
        let beneath_ok = self
            .rules
            .exact
            .iter()
            .chain(&self.rules.prefix)
            .filter(|((r, s), _)| *r == Resource::Key && s.starts_with(prefix))
            .all(|(_, l)| l.grants(Access::Write));
        beneath_ok && self.key_write(prefix)
    }

    /// The services among `names` this token may write, and so obtain certificates for.
    pub fn services_writable<'n>(&self, names: &[&'n str]) -> Vec<&'n str> {
        names
            .iter()
            .copied()
            .filter(|n| self.service_write(n))
            .collect()
    }
}

/// Policy names: `^[A-Za-z0-9\-_]+/?[A-Za-z0-9\-_]*$`, at most 128 characters, not `builtin/`.
pub fn validate_policy_name(name: &str) -> Option<String> {
    let valid = !name.is_empty() && name.len() <= 128 && !name.starts_with('/') && {
        let (a, b) = name.split_once('/').unwrap_or((name, ""));
        !a.is_empty()
            && a.chars()
                .chain(b.chars())
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if name.starts_with("builtin/") {
        return Some(format!("Invalid Policy: reserved name \"{name}\""));
    }
    (!valid).then(|| format!("Invalid Policy: invalid Name \"{name}\""))
}

/// Role names (and our token handles): `^[A-Za-z0-9\-_]{1,256}$`.
pub fn validate_role_name(name: &str) -> Option<String> {
    let valid = !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (!valid).then(|| format!("Invalid Role: invalid Name \"{name}\""))
}

/// `^[a-z0-9]([a-z0-9\-_]*[a-z0-9])?$`, at most 256 characters.
pub fn validate_service_identity_name(name: &str) -> Option<String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = !name.is_empty()
        && name.len() <= 256
        && name.starts_with(ok_char)
        && name.ends_with(ok_char)
        && name.chars().all(|c| ok_char(c) || c == '-' || c == '_');
    (!valid).then(|| format!("Service identity \"{name}\" has an invalid name"))
}

pub fn validate_node_identity(name: &str, datacenter: &str) -> Option<String> {
    if name.is_empty() {
        return Some("Node identity is missing the node name field on this token".to_owned());
    }
    if datacenter.is_empty() {
        return Some("Node identity is missing the datacenter field on this token".to_owned());
    }
    validate_service_identity_name(name).map(|_| format!("Node identity has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed: \"{name}\""))
}

#[cfg(test)]
mod tests;
