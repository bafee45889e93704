//! Findings about the mesh: denied upstreams, intentions that never or needlessly decide,
//! wildcard exposure, and the security posture of HashiCorp's production checklist.

use crate::graph::{action_text, PolicyGraph, OTHER};
use mesh_diagnostics::{Code, Diagnostic, Span};
use mesh_model::{AclLink, DesiredState, IntentionAction, ServiceOrigin, SourceIntention};
use mesh_semantics::acl::{self, Authorizer, DefaultAuthorizer, PolicyRules};
use mesh_semantics::intention::{IntentionRef, MatchBy};
use std::collections::{BTreeMap, BTreeSet};

/// What a token or role may do, for the identity checks and the blast radius.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `token "web"` or `role "ops"`.
    pub subject: String,
    pub span: Span,
    /// Known services whose certificates it can obtain (service:write).
    pub writable: Vec<String>,
    /// Every destination those services may reach.
    pub reachable: Vec<String>,
}

pub(crate) fn all(state: &DesiredState, g: &PolicyGraph) -> (Vec<Diagnostic>, Vec<Identity>) {
    let mut out = Vec::new();
    upstreams(state, g, &mut out);
    intentions(state, g, &mut out);
    acl_posture(state, &mut out);
    let identities = identities(state, g, &mut out);
    listeners(state, &mut out);
    secrets(state, &mut out);
    shared(state, &mut out);
    crate::agent::findings(state, &mut out);
    (out, identities)
}

/// A destination shared by owners: this repository holds only its own sources, so what the
/// analysis decides for other sources may be decided otherwise by another owner's.
fn shared(state: &DesiredState, out: &mut Vec<Diagnostic>) {
    for e in state.intentions().filter(|e| e.is_shared()) {
        out.push(
            Diagnostic::new(
                Code::SharedDestination,
                e.span,
                format!(
                    "the intentions for \"{}\" are shared by owners: sources other repositories declare also decide who reaches \"{}\", and this analysis sees only this repository's",
                    e.name, e.name
                ),
            )
            .with_help(format!(
                "`mesh-gitops plan` against Consul names the other owners' sources of \"{}\"",
                e.name
            )),
        );
    }
}

fn upstreams(state: &DesiredState, g: &PolicyGraph, out: &mut Vec<Diagnostic>) {
    for s in &state.services {
        for u in &s.upstreams {
            if u.destination_name.contains("${") {
                continue;
            }
            let d = g.decide(&s.name, &u.destination_name);
            if d.allowed {
                continue;
            }
            let why = match &d.matched {
                Some(i) => format!("the intention {} -> {} denies it", i.source, i.destination),
                None => "no intention allows it and the default policy is deny".to_owned(),
            };
            let mut diag = Diagnostic::new(
                Code::UpstreamDenied,
                u.span,
                format!("service \"{}\" declares upstream \"{}\", but {why}", s.name, u.destination_name),
            )
            .with_help(format!(
                "add `{{ Name = \"{}\", Action = \"allow\" }}` to the service-intentions entry for \"{}\", or remove the upstream",
                s.name, u.destination_name
            ));
            if let Some(src) = d.matched.as_ref().and_then(|i| source_of(state, i)) {
                diag = diag.with_label(src.span, "denied here");
            }
            out.push(diag);
        }
    }
}

/// The source intention a reference points at.
fn source_of<'s>(state: &'s DesiredState, i: &IntentionRef) -> Option<&'s SourceIntention> {
    state
        .intentions()
        .find(|e| e.name == i.destination)?
        .sources
        .iter()
        .find(|s| s.name == i.source && s.peer.is_none() && s.sameness_group.is_none())
}

/// L4 decision of an intention (`None` for L7).
fn decision_of(i: &IntentionRef) -> Option<bool> {
    if i.l7 {
        None
    } else {
        Some(i.action == Some(IntentionAction::Allow))
    }
}

fn intentions(state: &DesiredState, g: &PolicyGraph, out: &mut Vec<Diagnostic>) {
    // Whether "any other destination" stands for a declared service too; the same for every
    // intention, so computed once (per intention, it made the analysis quadratic).
    let own_entries: BTreeSet<&str> = g.set.destinations().collect();
    let other_dst_known = g.services.iter().any(|x| !own_entries.contains(x.as_str()));
    for entry in state.intentions() {
        for src in &entry.sources {
            if src.peer.is_some() || src.sameness_group.is_some() {
                continue;
            }
            let me = IntentionRef {
                destination: entry.name.clone(),
                source: src.name.clone(),
                precedence: src.precedence,
                action: if src.permissions.is_empty() {
                    src.action
                } else {
                    None
                },
                l7: !src.permissions.is_empty(),
            };
            // The pairs this intention could decide, grouped as in the graph: names that some
            // intention states exactly, plus "any other" standing for all the rest.
            let destinations: Vec<String> = if entry.name == "*" {
                g.set
                    .destinations()
                    .map(str::to_owned)
                    .chain([OTHER.to_owned()])
                    .collect()
            } else {
                vec![entry.name.clone()]
            };
            let mut decides = 0usize;
            let mut decides_known = 0usize;
            let mut changes = false;
            let mut shadowed_by: Option<IntentionRef> = None;
            for d in &destinations {
                let order = g.set.matching(MatchBy::Destination, d);
                let sources: Vec<String> = if src.name == "*" {
                    g.set
                        .exact_sources(d)
                        .into_iter()
                        .map(str::to_owned)
                        .chain([OTHER.to_owned()])
                        .collect()
                } else {
                    vec![src.name.clone()]
                };
                // "Any other" stands for declared services too, when some are not named.
                let exact: BTreeSet<&str> = g.set.exact_sources(d).into_iter().collect();
                let other_src_known = g
                    .services
                    .iter()
                    .any(|x| x != d && !exact.contains(x.as_str()));
                for s in &sources {
                    let mut matching = order.iter().filter(|i| i.source == *s || i.source == "*");
                    let first = matching.next();
                    if first != Some(&me) {
                        if shadowed_by.is_none() {
                            shadowed_by = first.cloned();
                        }
                        continue;
                    }
                    decides += 1;
                    // A service calling itself says nothing about the repository's edges.
                    let src_known = s != OTHER || other_src_known;
                    let dst_known = d != OTHER || other_dst_known;
                    if src_known && dst_known && s != d {
                        decides_known += 1;
                    }
                    let without = matching
                        .next()
                        .map(decision_of)
                        .unwrap_or(Some(g.default_allow));
                    if decision_of(&me).is_none() || without != decision_of(&me) {
                        changes = true;
                    }
                }
            }
            let declares_services = !state.services.is_empty();
            if decides == 0 || (decides_known == 0 && declares_services) {
                let what = if decides == 0 {
                    "never takes effect"
                } else {
                    "takes effect only for services this repository does not declare"
                };
                let mut d = Diagnostic::new(
                    Code::IntentionShadowed,
                    src.span,
                    format!("the intention {} -> {} {what}", src.name, entry.name),
                )
                .with_help("higher-precedence intentions decide every connection it matches; remove it or change them");
                if let Some(by) = shadowed_by
                    .as_ref()
                    .and_then(|i| source_of(state, i).map(|s| (i, s)))
                {
                    d = d.with_label(
                        by.1.span,
                        format!("{} -> {} decides first", by.0.source, by.0.destination),
                    );
                }
                out.push(d);
            } else if !changes {
                out.push(
                    Diagnostic::new(
                        Code::IntentionRedundant,
                        src.span,
                        format!(
                            "the intention {} -> {} ({}) changes nothing: every connection it decides would be decided the same way without it",
                            src.name,
                            entry.name,
                            action_text(&me)
                        ),
                    )
                    .with_help("remove it, or keep it on purpose as documentation of the default"),
                );
            }
            wildcard(entry.name.as_str(), src, out);
            permissions(entry.name.as_str(), src, out);
        }
    }
}

fn wildcard(destination: &str, src: &SourceIntention, out: &mut Vec<Diagnostic>) {
    let allows = src.action == Some(IntentionAction::Allow) || !src.permissions.is_empty();
    if !allows || (src.name != "*" && destination != "*") {
        return;
    }
    let message = match (src.name.as_str(), destination) {
        ("*", "*") => {
            "the intention * -> * allows every service to reach every other service".to_owned()
        }
        ("*", d) => format!("the intention * -> {d} lets every service reach \"{d}\""),
        (s, _) => format!("the intention {s} -> * lets \"{s}\" reach every service"),
    };
    out.push(
        Diagnostic::new(Code::WildcardExposure, src.span, message)
            .with_help("allow the callers (or destinations) by name"),
    );
}

/// Permissions after one that matches every request never match.
fn permissions(destination: &str, src: &SourceIntention, out: &mut Vec<Diagnostic>) {
    let mut catch_all: Option<usize> = None;
    for (j, p) in src.permissions.iter().enumerate() {
        if let Some(first) = catch_all {
            out.push(
                Diagnostic::new(
                    Code::PermissionShadowed,
                    p.span,
                    format!(
                        "permission {j} of {} -> {destination} never matches: permission {first} matches every request",
                        src.name
                    ),
                )
                .with_help("order permissions from the most specific to the most general"),
            );
            continue;
        }
        let Some(h) = &p.http else { continue };
        let every_path = h.path_exact.is_none()
            && h.path_regex.is_none()
            && h.path_prefix.as_deref().is_none_or(|x| x == "/");
        if every_path && h.methods.is_empty() && h.header.is_empty() {
            catch_all = Some(j);
        }
    }
}

fn acl_posture(state: &DesiredState, out: &mut Vec<Diagnostic>) {
    let settings = &state.settings;
    let span = settings.span.unwrap_or_default();
    let message = if !settings.acl.enabled {
        "ACLs are disabled: any service can register as any other, and intentions default to allow"
    } else if settings.acl.default_intention_allows() {
        "the ACL default policy is allow: every connection without an intention is allowed"
    } else {
        return;
    };
    let mut d = Diagnostic::new(Code::AclPosture, span, message)
        .with_help("set `acl { enabled = true  default_policy = \"deny\" }` in mesh-gitops.hcl");
    if settings.span.is_none() {
        d.span = None;
    }
    out.push(d);
}

fn parsed_policies(state: &DesiredState) -> BTreeMap<&str, PolicyRules> {
    state
        .acl
        .policies
        .iter()
        .filter_map(|p| {
            acl::parse_rules(&p.rules, p.span.file, 0)
                .ok()
                .map(|r| (p.name.as_str(), r))
        })
        .collect()
}

/// A name that no exact rule can name, to probe prefix rules.
const ANY_SERVICE: &str = "\u{1}any";

/// Policies that grant write on every service or every intention, whoever holds them.
fn broad_policies(
    state: &DesiredState,
    policies: &BTreeMap<&str, PolicyRules>,
    out: &mut Vec<Diagnostic>,
) {
    for p in &state.acl.policies {
        let Some(rules) = policies.get(p.name.as_str()) else {
            continue;
        };
        let a = Authorizer::new(rules.clone(), DefaultAuthorizer::DenyAll);
        if a.service_write(ANY_SERVICE) {
            out.push(
                Diagnostic::new(
                    Code::BroadServiceWrite,
                    p.rules_span,
                    format!("policy \"{}\" grants service:write on every service", p.name),
                )
                .with_help("a holder can register as any service and obtain its certificate; grant write on named services"),
            );
        }
        if a.intention_write("*") {
            out.push(
                Diagnostic::new(
                    Code::BroadIntentionWrite,
                    p.rules_span,
                    format!(
                        "policy \"{}\" grants intentions:write on every service",
                        p.name
                    ),
                )
                .with_help("a holder can open any edge of the mesh; limit it to an operator role"),
            );
        }
    }
}

fn identities(state: &DesiredState, g: &PolicyGraph, out: &mut Vec<Diagnostic>) -> Vec<Identity> {
    let policies = parsed_policies(state);
    broad_policies(state, &policies, out);
    let role_rules = |links: &[AclLink]| -> Vec<PolicyRules> {
        links
            .iter()
            .filter_map(|l| policies.get(l.name.as_str()).cloned())
            .collect()
    };
    let mut result = Vec::new();
    let services: Vec<&str> = g.services.iter().map(String::as_str).collect();
    let check = |subject: String,
                 span: Span,
                 rules: Vec<PolicyRules>,
                 own: BTreeSet<String>,
                 out: &mut Vec<Diagnostic>| {
        let a = Authorizer::from_policies(&rules, DefaultAuthorizer::DenyAll);
        let writable: Vec<String> = a
            .services_writable(&services)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let foreign: Vec<&String> = writable
            .iter()
            .filter(|w| {
                !own.contains(*w) && !own.iter().any(|o| **w == format!("{o}-sidecar-proxy"))
            })
            .collect();
        if !foreign.is_empty() && !own.is_empty() {
            let names: Vec<&str> = foreign.iter().take(5).map(|s| s.as_str()).collect();
            let more = if foreign.len() > 5 {
                format!(" and {} more", foreign.len() - 5)
            } else {
                String::new()
            };
            out.push(
                Diagnostic::new(
                    Code::TokenWritesOthers,
                    span,
                    format!("{subject} can write {}{more} besides its own service, so it can obtain their identity", names.join(", ")),
                )
                .with_help("limit service:write to the token's own service and its sidecar (a service identity does exactly that)"),
            );
        }
        let mut reachable: BTreeSet<String> = BTreeSet::new();
        for w in &writable {
            reachable.extend(g.reachable_from(w));
        }
        Identity {
            subject,
            span,
            writable,
            reachable: reachable.into_iter().collect(),
        }
    };
    for r in &state.acl.roles {
        let mut rules = role_rules(&r.policies);
        rules.extend(
            r.service_identities
                .iter()
                .map(|i| acl::service_identity_rules(&i.service_name)),
        );
        rules.extend(
            r.node_identities
                .iter()
                .map(|i| acl::node_identity_rules(&i.node_name)),
        );
        let own: BTreeSet<String> = r
            .service_identities
            .iter()
            .map(|i| i.service_name.clone())
            .collect();
        result.push(check(
            format!("role \"{}\"", r.name),
            r.span,
            rules,
            own,
            out,
        ));
    }
    for t in &state.acl.tokens {
        let mut rules = role_rules(&t.policies);
        for role in t
            .roles
            .iter()
            .filter_map(|l| state.acl.roles.iter().find(|r| r.name == l.name))
        {
            rules.extend(role_rules(&role.policies));
            rules.extend(
                role.service_identities
                    .iter()
                    .map(|i| acl::service_identity_rules(&i.service_name)),
            );
        }
        rules.extend(
            t.service_identities
                .iter()
                .map(|i| acl::service_identity_rules(&i.service_name)),
        );
        rules.extend(
            t.node_identities
                .iter()
                .map(|i| acl::node_identity_rules(&i.node_name)),
        );
        let mut own: BTreeSet<String> = t
            .service_identities
            .iter()
            .map(|i| i.service_name.clone())
            .collect();
        if own.is_empty() && g.services.contains(&t.name) {
            own.insert(t.name.clone());
        }
        if t.service_identities.len() > 1 {
            out.push(
                Diagnostic::new(
                    Code::SharedToken,
                    t.span,
                    format!(
                        "token \"{}\" carries the identities of {} services",
                        t.name,
                        t.service_identities.len()
                    ),
                )
                .with_help(
                    "give each service its own token, so one leaked secret exposes one service",
                ),
            );
        }
        result.push(check(
            format!("token \"{}\"", t.name),
            t.span,
            rules,
            own,
            out,
        ));
    }
    result
}

fn is_loopback(addr: &str) -> bool {
    addr == "localhost" || addr.starts_with("127.") || addr == "::1"
}

fn listeners(state: &DesiredState, out: &mut Vec<Diagnostic>) {
    for s in &state.services {
        if !s.sidecar {
            continue;
        }
        let around = match (&s.origin, &s.address) {
            (ServiceOrigin::ServiceDefinition, Some(a)) if !is_loopback(a) => {
                Some(format!("listens on {a}"))
            }
            (ServiceOrigin::NomadJob { network_mode, .. }, _) if network_mode == "host" => {
                Some("runs in host networking".to_owned())
            }
            _ => None,
        };
        if let Some(how) = around {
            out.push(
                Diagnostic::new(
                    Code::ListenerAroundProxy,
                    s.span,
                    format!("service \"{}\" {how}, so clients can reach it without going through its sidecar", s.name),
                )
                .with_help("bind the application to 127.0.0.1 (or use bridge networking) so only the proxy reaches it"),
            );
        }
    }
}

fn secrets(state: &DesiredState, out: &mut Vec<Diagnostic>) {
    for e in &state.workload_env {
        if e.is_literal_secret() {
            // Never print the value.
            out.push(
                Diagnostic::new(
                    Code::SecretInEnv,
                    e.span,
                    format!(
                        "{} sets {} to a literal value in the job file",
                        e.workload, e.key
                    ),
                )
                .with_help(
                    "read it from Vault or Nomad variables in a template instead of committing it",
                ),
            );
        }
    }
}
