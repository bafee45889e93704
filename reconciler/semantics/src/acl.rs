//! Consul's ACL system: policy rules, authorization with exact-beats-longest-prefix matching and
//! policy merging, the derived intentions rule, and service/node identities
//! (consul-semantics section 3, `acl/policy.go`, `acl/policy_authorizer.go`).

use mesh_diagnostics::{Code, Diagnostic, FileId, Span};
use mesh_syntax::{EntryStyle, Node};
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
    /// A level as Consul spells it: lower case only (`isPolicyValid` in `acl/policy.go`
    /// compares exactly; `Write` is not a level).
    pub fn parse(s: &str) -> Option<AccessLevel> {
        match s {
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

/// One policy's rules. A service rule's `intentions` level is kept as an `Intention` rule only
/// when written: the authorizer derives the others after merging, as Consul does.
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

    /// Several policies merged (`MergePolicies` in `acl/policy_merger.go`): for each rule the
    /// level that takes precedence, a service rule's `policy` and `intentions` each on their own.
    pub fn merged<'a>(policies: impl IntoIterator<Item = &'a PolicyRules>) -> PolicyRules {
        let mut rules = PolicyRules::default();
        for p in policies {
            rules.merge(p);
        }
        rules
    }

    /// The rules with every service rule's intentions level: written, or derived from its
    /// policy (read or write give read, deny gives deny; `loadRules` in
    /// `acl/policy_authorizer.go`).
    pub fn with_derived_intentions(&self) -> PolicyRules {
        let mut out = self.clone();
        let derive = |map: &BTreeMap<(Resource, String), AccessLevel>,
                      into: &mut BTreeMap<(Resource, String), AccessLevel>| {
            for ((r, s), l) in map {
                if *r == Resource::Service {
                    let derived = if *l == AccessLevel::Deny {
                        AccessLevel::Deny
                    } else {
                        AccessLevel::Read
                    };
                    into.entry((Resource::Intention, s.clone()))
                        .or_insert(derived);
                }
            }
        };
        derive(&self.exact, &mut out.exact);
        derive(&self.prefix, &mut out.prefix);
        out
    }

    /// Merges `other` in (deny > write > list > read for the same rule: `takesPrecedenceOver`).
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

/// Parses policy rules (HCL, or JSON when the text starts with `{`) as Consul CE does
/// (`NewPolicyFromSource` in `acl/policy.go`, decoded by HCL 1 in `acl/policy_ce.go`): a key
/// HCL 1 does not map to a field (an unknown resource or field, Enterprise's `namespace` and
/// `partition` blocks, `intentions` outside a service rule) is ignored, and keys match in any
/// case, as HCL 1's `ObjectList.Filter` matches them. Spans of the returned diagnostics are
/// offsets into `text` shifted by `base`, in `file`.
pub fn parse_rules(text: &str, file: FileId, base: u32) -> Result<PolicyRules, Vec<Diagnostic>> {
    RulesParser::new(file, base, false).parse(text)
}

/// As [`parse_rules`], and a key Consul would ignore is an error: in a repository it is a typo
/// that grants nothing.
pub fn parse_rules_strict(
    text: &str,
    file: FileId,
    base: u32,
) -> Result<PolicyRules, Vec<Diagnostic>> {
    RulesParser::new(file, base, true).parse(text)
}

struct RulesParser {
    file: FileId,
    base: u32,
    strict: bool,
    errors: Vec<Diagnostic>,
}

impl RulesParser {
    fn new(file: FileId, base: u32, strict: bool) -> Self {
        RulesParser {
            file,
            base,
            strict,
            errors: Vec::new(),
        }
    }

    fn shift(&self, s: Span) -> Span {
        Span {
            file: self.file,
            start: s.start + self.base,
            end: s.end + self.base,
        }
    }

    fn err(&mut self, span: Span, msg: String, help: &str) {
        let d = Diagnostic::new(Code::AclRule, self.shift(span), msg).with_help(help.to_owned());
        self.errors.push(d);
    }

    /// A key Consul ignores: an error only when strict.
    fn ignored(&mut self, span: Span, msg: String, help: &str) {
        if self.strict {
            self.err(span, msg, help);
        }
    }

    fn parse(mut self, text: &str) -> Result<PolicyRules, Vec<Diagnostic>> {
        // Empty rules are an empty policy (`NewPolicyFromSource`'s hot path).
        if text.trim().is_empty() {
            return Ok(PolicyRules::default());
        }
        let parsed = if text.trim_start().starts_with('{') {
            mesh_syntax::parse_json(self.file, text)
        } else {
            mesh_syntax::parse_hcl(self.file, text)
        };
        let node = parsed.map_err(|errs| {
            errs.into_iter()
                .map(|mut d| {
                    d.code = Code::AclRulesSyntax;
                    d.span = d.span.map(|s| self.shift(s));
                    d.message = format!("Failed to parse ACL rules: {}", d.message);
                    d
                })
                .collect::<Vec<_>>()
        })?;
        let mut rules = PolicyRules::default();
        for entry in node.as_object().unwrap_or(&[]) {
            self.entry(entry, &mut rules);
        }
        if self.errors.is_empty() {
            Ok(rules)
        } else {
            Err(self.errors)
        }
    }

    fn entry(&mut self, entry: &mesh_syntax::Entry, rules: &mut PolicyRules) {
        let key = entry.key.to_ascii_lowercase();
        if let Some(&(_, s)) = SINGLETONS.iter().find(|(n, _)| *n == key) {
            // `parseCurrent`: these may be empty (no rule); otherwise read, write or deny.
            match entry.value.as_str() {
                Some("") => {}
                Some(v) => match AccessLevel::parse(v) {
                    Some(level) if level != AccessLevel::List => rules.add_singleton(s, level),
                    _ => self.err(
                        entry.value.span,
                        format!("Invalid {key} policy: {v:?}"),
                        "the access level is \"read\", \"write\" or \"deny\"",
                    ),
                },
                None => self.err(
                    entry.value.span,
                    format!("Invalid {key} policy: expected a string"),
                    "write `operator = \"read\"`",
                ),
            }
            return;
        }
        let (base_name, is_prefix) = match key.strip_suffix("_prefix") {
            Some(b) => (b, true),
            None => (key.as_str(), false),
        };
        let Some(&(_, resource)) = SEGMENTED.iter().find(|(n, _)| *n == base_name) else {
            let known: Vec<String> = SEGMENTED
                .iter()
                .flat_map(|(n, _)| [n.to_string(), format!("{n}_prefix")])
                .chain(SINGLETONS.iter().map(|(n, _)| n.to_string()))
                .collect();
            self.ignored(
                entry.key_span,
                format!("Invalid ACL rule resource {:?}", entry.key),
                &format!("resources are: {}", known.join(", ")),
            );
            return;
        };
        // Rules are blocks with a segment label (`service "web" {}`) or, in JSON, an object of
        // segment -> body (`"service": {"web": {...}}`).
        let mut items: Vec<(String, &Node)> = Vec::new();
        if entry.style == EntryStyle::Block {
            if entry.labels.len() != 1 {
                self.err(
                    entry.key_span,
                    format!("{key} rule needs exactly one name label"),
                    &format!("write `{key} \"name\" {{ policy = \"read\" }}`"),
                );
                return;
            }
            items.push((entry.labels[0].value.clone(), &entry.value));
        } else if let Some(segments) = entry.value.as_object() {
            items.extend(segments.iter().map(|s| (s.key.clone(), &s.value)));
        } else {
            self.err(
                entry.value.span,
                format!("{key} rule must be a block"),
                &format!("write `{key} \"name\" {{ policy = \"read\" }}`"),
            );
            return;
        }
        for (segment, body) in items {
            let rule = SegmentRule {
                key: &key,
                segment: &segment,
                resource,
            };
            let Some((policy, intentions)) = self.levels(&rule, body) else {
                continue;
            };
            let mut add = |r: Resource, l: AccessLevel| {
                if is_prefix {
                    rules.add_prefix(r, &segment, l)
                } else {
                    rules.add_exact(r, &segment, l)
                }
            };
            add(resource, policy);
            // Only an explicit intentions level is kept: the authorizer derives the others
            // after merging (`loadRules` in `acl/policy_authorizer.go`).
            if let Some(i) = intentions {
                add(Resource::Intention, i);
            }
        }
    }

    /// The `policy` and `intentions` levels of one segment's body, checked as `parseCurrent`
    /// checks them: `policy` must be read, write or deny (`list` too for keys) and may not be
    /// missing or empty; `intentions` may be empty, else read, write or deny.
    fn levels(
        &mut self,
        rule: &SegmentRule,
        body: &Node,
    ) -> Option<(AccessLevel, Option<AccessLevel>)> {
        let SegmentRule {
            key,
            segment,
            resource,
        } = *rule;
        let Some(fields) = body.as_object() else {
            self.err(
                body.span,
                format!("{key} {segment:?}: expected a block"),
                "write `{ policy = \"read\" }`",
            );
            return None;
        };
        let mut policy: Option<(&str, Span)> = None;
        let mut intentions: Option<(&str, Span)> = None;
        for f in fields {
            let field = f.key.to_ascii_lowercase();
            let slot = match field.as_str() {
                "policy" => &mut policy,
                "intentions" if resource == Resource::Service => &mut intentions,
                _ => {
                    self.ignored(
                        f.key_span,
                        format!("{key} {segment:?}: unknown field {:?}", f.key),
                        if resource == Resource::Service {
                            "service rules take `policy` and `intentions`"
                        } else {
                            "rules take `policy`"
                        },
                    );
                    continue;
                }
            };
            match f.value.as_str() {
                Some(v) => *slot = Some((v, f.value.span)),
                None => {
                    self.err(
                        f.value.span,
                        format!("{key} {segment:?}: {field} must be a string"),
                        "write `policy = \"read\"`",
                    );
                    return None;
                }
            }
        }
        let list_ok = resource == Resource::Key;
        let level = policy
            .and_then(|(v, _)| AccessLevel::parse(v))
            .filter(|l| *l != AccessLevel::List || list_ok);
        let Some(level) = level else {
            let (v, span) = policy.unwrap_or(("", body.span));
            self.err(
                span,
                format!("Invalid {key} policy: {v:?}"),
                if list_ok {
                    "the access level is \"read\", \"list\", \"write\" or \"deny\""
                } else {
                    "the access level is \"read\", \"write\" or \"deny\""
                },
            );
            return None;
        };
        let intentions = match intentions {
            None | Some(("", _)) => None,
            Some((v, span)) => match AccessLevel::parse(v).filter(|l| *l != AccessLevel::List) {
                Some(l) => Some(l),
                None => {
                    self.err(
                        span,
                        format!("Invalid {key} intentions policy: {v:?}"),
                        "the access level is \"read\", \"write\" or \"deny\"",
                    );
                    return None;
                }
            },
        };
        Some((level, intentions))
    }
}

/// One rule's segment (`service "web" { ... }`): what its fields are checked against.
struct SegmentRule<'a> {
    key: &'a str,
    segment: &'a str,
    resource: Resource,
}

/// Rules a service identity expands to (`aclServiceIdentityTemplate` in
/// `agent/structs/acl.go`): its intentions rules are derived, as for any policy.
pub fn service_identity_rules(name: &str) -> PolicyRules {
    let mut r = PolicyRules::default();
    r.add_exact(Resource::Service, name, AccessLevel::Write);
    r.add_exact(
        Resource::Service,
        &format!("{name}-sidecar-proxy"),
        AccessLevel::Write,
    );
    r.add_prefix(Resource::Service, "", AccessLevel::Read);
    r.add_prefix(Resource::Node, "", AccessLevel::Read);
    r
}

/// Rules a node identity expands to (`aclNodeIdentityTemplate`).
pub fn node_identity_rules(name: &str) -> PolicyRules {
    let mut r = PolicyRules::default();
    r.add_exact(Resource::Node, name, AccessLevel::Write);
    r.add_prefix(Resource::Service, "", AccessLevel::Read);
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

/// A policy authorizer's answer (`EnforcementDecision` in `acl/authorizer.go`): `Default` when
/// no rule decides, and the next authorizer of the chain (the default policy) answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    Default,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Default => "default",
        }
    }
}

/// `enforce` in `acl/policy_authorizer.go`.
fn enforce(level: AccessLevel, access: Access) -> Decision {
    if level.grants(access) {
        Decision::Allow
    } else {
        Decision::Deny
    }
}

/// One node of Consul's radix tree: the exact and the prefix rule of a segment.
type Leaf = (Option<AccessLevel>, Option<AccessLevel>);

/// A token's effective permissions: its merged rules, then the default.
#[derive(Debug, Clone)]
pub struct Authorizer {
    rules: PolicyRules,
    default: DefaultAuthorizer,
}

impl Authorizer {
    /// The authorizer of one (merged) policy; service rules without `intentions` get theirs.
    pub fn new(rules: PolicyRules, default: DefaultAuthorizer) -> Self {
        Authorizer {
            rules: rules.with_derived_intentions(),
            default,
        }
    }

    /// Merges several policies' rules (order does not matter), then derives intentions, as
    /// `newPolicyAuthorizer` merges before `loadRules`.
    pub fn from_policies<'a>(
        policies: impl IntoIterator<Item = &'a PolicyRules>,
        default: DefaultAuthorizer,
    ) -> Self {
        Authorizer::new(PolicyRules::merged(policies), default)
    }

    pub fn management() -> Self {
        Authorizer {
            rules: PolicyRules::default(),
            default: DefaultAuthorizer::Manage,
        }
    }

    /// The rules enforced (intentions derived).
    pub fn rules(&self) -> &PolicyRules {
        &self.rules
    }

    /// The rule deciding `segment` (`getPolicy`): an exact rule for the name wins outright;
    /// otherwise the longest prefix rule.
    pub(crate) fn lookup(&self, r: Resource, segment: &str) -> Option<AccessLevel> {
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

    /// The tree of `r`'s rules, by segment.
    fn leaves(&self, r: Resource) -> BTreeMap<&str, Leaf> {
        let mut out: BTreeMap<&str, Leaf> = BTreeMap::new();
        for ((rr, s), l) in &self.rules.exact {
            if *rr == r {
                out.entry(s.as_str()).or_default().0 = Some(*l);
            }
        }
        for ((rr, s), l) in &self.rules.prefix {
            if *rr == r {
                out.entry(s.as_str()).or_default().1 = Some(*l);
            }
        }
        out
    }

    /// The policy's own answer, `Default` when no rule decides.
    pub fn decide(&self, resource: Resource, segment: &str, access: Access) -> Decision {
        match self.lookup(resource, segment) {
            Some(level) => enforce(level, access),
            None => Decision::Default,
        }
    }

    pub fn decide_singleton(&self, s: Singleton, access: Access) -> Decision {
        match self.rules.singletons.get(&s) {
            Some(l) => enforce(*l, access),
            // `MeshRead`, `PeeringRead`...: without their own rule, the operator rule decides.
            None if matches!(s, Singleton::Mesh | Singleton::Peering) => {
                self.decide_singleton(Singleton::Operator, access)
            }
            None => Decision::Default,
        }
    }

    /// `anyAllowed` (`acl/policy_authorizer.go`): allowed if any rule of `r` allows `access`;
    /// else the catch-all prefix rule's answer, or `Default` without one.
    pub fn any_allowed(&self, r: Resource, access: Access) -> Decision {
        let leaves = self.leaves(r);
        let mut decision = Decision::Default;
        if let Some(l) = leaves.get("").and_then(|(_, p)| *p) {
            decision = enforce(l, access);
            if decision == Decision::Allow {
                return decision;
            }
        }
        let allows = |(exact, prefix): &Leaf| {
            prefix.map(|l| enforce(l, access)) == Some(Decision::Allow)
                || exact.map(|l| enforce(l, access)) == Some(Decision::Allow)
        };
        if leaves.values().any(allows) {
            return Decision::Allow;
        }
        decision
    }

    /// `allAllowed`: denied if the catch-all prefix rule or any rule of `r` denies `access`;
    /// else the catch-all prefix rule's answer, or `Default` without one.
    pub fn all_allowed(&self, r: Resource, access: Access) -> Decision {
        let leaves = self.leaves(r);
        let mut decision = Decision::Default;
        if let Some(l) = leaves.get("").and_then(|(_, p)| *p) {
            decision = enforce(l, access);
            if decision == Decision::Deny {
                return decision;
            }
        }
        let denies = |(exact, prefix): &Leaf| {
            let p = prefix.map_or(Decision::Default, |l| enforce(l, access));
            if p == Decision::Deny {
                return true;
            }
            exact.map_or(p, |l| enforce(l, access)) == Decision::Deny
        };
        if leaves.values().any(denies) {
            return Decision::Deny;
        }
        decision
    }

    /// `IntentionRead`: `*` asks whether any intention may be read (`anyAllowed`).
    pub fn decide_intention_read(&self, name: &str) -> Decision {
        if name == "*" {
            return self.any_allowed(Resource::Intention, Access::Read);
        }
        self.decide(Resource::Intention, name, Access::Read)
    }

    /// `IntentionWrite`: `*` asks whether every intention may be written (`allAllowed`).
    pub fn decide_intention_write(&self, name: &str) -> Decision {
        if name == "*" {
            return self.all_allowed(Resource::Intention, Access::Write);
        }
        self.decide(Resource::Intention, name, Access::Write)
    }

    /// `KeyWritePrefix`: the longest prefix rule on the way to `prefix` must grant write (no
    /// such rule: `Default`), and no rule at or beneath `prefix` may withhold it.
    pub fn decide_key_write_prefix(&self, prefix: &str) -> Decision {
        let leaves = self.leaves(Resource::Key);
        let base = leaves
            .iter()
            .filter(|(s, (_, p))| prefix.starts_with(**s) && p.is_some())
            .max_by_key(|(s, _)| s.len())
            .and_then(|(_, (_, p))| *p)
            .map_or(Decision::Default, |l| enforce(l, Access::Write));
        if base == Decision::Deny {
            return base;
        }
        let withheld = |l: &Option<AccessLevel>| l.is_some_and(|l| l != AccessLevel::Write);
        let beneath_denies = leaves
            .iter()
            .filter(|(s, _)| s.starts_with(prefix))
            .any(|(_, (e, p))| withheld(p) || withheld(e));
        if beneath_denies {
            Decision::Deny
        } else {
            base
        }
    }

    /// The chain's answer to a policy decision: the default policy decides `Default`.
    fn resolve(&self, d: Decision, acl_resource: bool) -> bool {
        match (self.default, d) {
            (DefaultAuthorizer::Manage, _) => true,
            (_, Decision::Allow) => true,
            (_, Decision::Deny) => false,
            // Neither allow-all nor deny-all grants ACL administration.
            (DefaultAuthorizer::AllowAll, Decision::Default) => !acl_resource,
            (DefaultAuthorizer::DenyAll, Decision::Default) => false,
        }
    }

    /// Whether `access` on `resource`/`segment` is allowed.
    pub fn check(&self, resource: Resource, segment: &str, access: Access) -> bool {
        self.resolve(self.decide(resource, segment, access), false)
    }

    pub fn check_singleton(&self, s: Singleton, access: Access) -> bool {
        self.resolve(self.decide_singleton(s, access), s == Singleton::Acl)
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
        self.resolve(self.decide_intention_read(name), false)
    }

    pub fn intention_write(&self, name: &str) -> bool {
        self.resolve(self.decide_intention_write(name), false)
    }

    /// `KeyWritePrefix`: write on the prefix and on every rule beneath it.
    pub fn key_write_prefix(&self, prefix: &str) -> bool {
        self.resolve(self.decide_key_write_prefix(prefix), false)
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
