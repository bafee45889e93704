//! Declared upstreams through their discovery chains: every place a request on an upstream can
//! end (a route's, a split's or a failover's target), decided by the intentions of the service
//! actually reached, since that is the one whose sidecar admits the connection. Findings: a
//! target the intentions deny (at the upstream and at the route, split or resolver), a route an
//! earlier one always matches first, a target declared nowhere.

use crate::graph::{DestinationRow, PolicyGraph};
use mesh_diagnostics::{Code, Diagnostic, Span};
use mesh_model::chain::{ChainEntry, RouteHttpMatch, ServiceRoute};
use mesh_model::{ConfigEntry, DesiredState};
use mesh_semantics::chain::{compile, ChainIndex, CompiledChain, Node};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// How a request on an upstream reaches a target.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainEdge {
    pub source: String,
    pub upstream: String,
    /// The target service (and subset).
    pub target: String,
    pub subset: Option<String>,
    /// Which requests go there: the route's match, the split's share, failover.
    pub condition: String,
    /// The share of the matching requests (percent), 100 without a split.
    pub share: f64,
    pub failover: bool,
    pub allowed: bool,
    pub reason: String,
    /// The declared upstream.
    pub span: Span,
    /// The route, split or resolver that sends requests there.
    pub via: Span,
    /// What `via` is: `route`, `split`, `router` (its catch-all) or `resolver`.
    pub via_kind: &'static str,
}

/// One way through a compiled chain: the condition, the share, and the resolver's targets.
struct Path {
    condition: String,
    share: f64,
    via: Span,
    via_kind: &'static str,
    targets: Vec<(String, bool)>,
}

/// Where the chain entries of each service are written.
#[derive(Default)]
struct Spans<'a> {
    entries: BTreeMap<&'a str, Span>,
    routes: BTreeMap<&'a str, Vec<Span>>,
    splits: BTreeMap<&'a str, Vec<Span>>,
}

impl<'a> Spans<'a> {
    fn of(entries: &'a [ConfigEntry]) -> Self {
        let mut spans = Spans::default();
        for e in entries {
            let ConfigEntry::Chain(c) = e else { continue };
            // The entry that starts a chain: its router, else its splitter, else its resolver
            // (entries are sorted resolver, splitter, router).
            spans.entries.insert(c.name(), c.span());
            match c {
                ChainEntry::Router(r) => {
                    let routes = r.routes.iter().map(|x| x.span).collect();
                    spans.routes.insert(&r.name, routes);
                }
                ChainEntry::Splitter(s) => {
                    let splits = s.splits.iter().map(|x| x.span).collect();
                    spans.splits.insert(&s.name, splits);
                }
                ChainEntry::Resolver(_) => {}
            }
        }
        spans
    }

    fn entry(&self, service: &str) -> Span {
        self.entries.get(service).copied().unwrap_or_default()
    }
}

/// The ways through `chain`, with the spans of the entries that make them.
fn paths(chain: &CompiledChain, spans: &Spans<'_>) -> Vec<Path> {
    let mut out = Vec::new();
    let after_router =
        |next: &str, condition: String, via: Span, via_kind: &'static str, out: &mut Vec<Path>| {
            match chain.nodes.get(next) {
                Some(Node::Splitter { splits, name }) => {
                    let service = name.split('.').next().unwrap_or_default();
                    let at = spans.splits.get(service);
                    for (i, (w, n)) in splits.iter().enumerate() {
                        out.push(Path {
                            condition: format!("{condition}{w}% of requests"),
                            share: *w,
                            via: at.and_then(|s| s.get(i)).copied().unwrap_or(via),
                            via_kind: "split",
                            targets: resolver_targets(chain, n),
                        });
                    }
                }
                _ => out.push(Path {
                    condition: match condition.trim_end_matches(", ") {
                        "" => "every request".to_owned(),
                        c => c.to_owned(),
                    },
                    share: 100.0,
                    via,
                    via_kind,
                    targets: resolver_targets(chain, next),
                }),
            }
        };
    match chain.nodes.get(&chain.start) {
        Some(Node::Router { routes, .. }) => {
            let at = spans.routes.get(chain.service.as_str());
            let last = routes.len() - 1;
            for (i, (route, next)) in routes.iter().enumerate() {
                if i == last {
                    let via = spans.entry(&chain.service);
                    let condition = "requests no route matches, ".to_owned();
                    after_router(next, condition, via, "router", &mut out);
                } else {
                    let via = at.and_then(|s| s.get(i)).copied().unwrap_or_default();
                    let condition = format!("requests matching {}, ", describe(route));
                    after_router(next, condition, via, "route", &mut out);
                }
            }
        }
        _ => {
            let via = spans.entry(&chain.service);
            after_router(&chain.start, String::new(), via, "resolver", &mut out);
        }
    }
    out
}

fn resolver_targets(chain: &CompiledChain, key: &str) -> Vec<(String, bool)> {
    match chain.nodes.get(key) {
        Some(Node::Resolver {
            target, failover, ..
        }) => std::iter::once((target.clone(), false))
            .chain(failover.iter().map(|f| (f.clone(), true)))
            .collect(),
        _ => Vec::new(),
    }
}

/// A route's match in a few words.
pub fn describe(route: &ServiceRoute) -> String {
    let Some(h) = route.http() else {
        return "every request".to_owned();
    };
    let mut parts = Vec::new();
    if let Some(p) = &h.path_exact {
        parts.push(format!("path {p}"));
    }
    if let Some(p) = &h.path_prefix {
        parts.push(format!("path prefix {p}"));
    }
    if let Some(p) = &h.path_regex {
        parts.push(format!("path ~ {p}"));
    }
    for x in &h.header {
        parts.push(format!("header {}", x.name));
    }
    for q in &h.query_param {
        parts.push(format!("query {}", q.name));
    }
    if !h.methods.is_empty() {
        parts.push(h.methods.join("|"));
    }
    parts.join(" ")
}

/// A target of one way through a chain, resolved once per chain: the service, its subset,
/// whether it is a failover.
struct Reached<'g> {
    service: String,
    subset: Option<String>,
    failover: bool,
    /// The decisions of the service reached, looked up once (`None`: a service the graph does
    /// not know, decided by the intentions alone).
    row: Option<&'g DestinationRow>,
}

/// The ways through a chain, each with its targets resolved.
type Ways<'g> = Vec<(Path, Vec<Reached<'g>>)>;

/// The ways through a chain with their targets resolved, computed once per upstream name.
fn ways<'g>(chain: &CompiledChain, spans: &Spans<'_>, graph: &'g PolicyGraph) -> Ways<'g> {
    paths(chain, spans)
        .into_iter()
        .map(|mut p| {
            let targets = std::mem::take(&mut p.targets);
            let reached = targets
                .into_iter()
                .filter_map(|(id, failover)| {
                    let t = chain.targets.get(&id)?;
                    Some(Reached {
                        row: graph.rows.get(&t.service),
                        service: t.service.clone(),
                        subset: t.subset.clone(),
                        failover,
                    })
                })
                .collect();
            (p, reached)
        })
        .collect()
}

/// Every declared upstream with chain entries, through its chain.
pub fn edges(state: &DesiredState, graph: &PolicyGraph) -> Vec<ChainEdge> {
    let ix = ChainIndex::new(&state.config_entries, &state.settings.datacenter);
    let spans = Spans::of(&state.config_entries);
    // Per upstream name: the ways through its chain, computed once (`None`: no chain entries of
    // its own, or a chain that does not compile, which is E0426 already). One lookup per
    // declared upstream.
    let mut compiled: BTreeMap<&str, Option<Ways<'_>>> = BTreeMap::new();
    let mut out = Vec::new();
    for s in &state.services {
        for u in &s.upstreams {
            let name = u.destination_name.as_str();
            let chain = compiled.entry(name).or_insert_with(|| {
                if name.contains("${") || !ix.has_entries(name) {
                    return None;
                }
                compile(&ix, name).ok().map(|c| ways(&c, &spans, graph))
            });
            let Some(ways) = chain else { continue };
            for (p, reached) in ways.iter() {
                for t in reached {
                    let d = match t.row {
                        Some(row) => Cow::Borrowed(row.named.get(&s.name).unwrap_or(&row.others)),
                        None => graph.decide_ref(&s.name, &t.service),
                    };
                    out.push(ChainEdge {
                        source: s.name.clone(),
                        upstream: name.to_owned(),
                        target: t.service.clone(),
                        subset: t.subset.clone(),
                        condition: p.condition.clone(),
                        share: p.share,
                        failover: t.failover,
                        allowed: d.allowed,
                        reason: d.reason.clone(),
                        span: u.span,
                        via: p.via,
                        via_kind: if t.failover { "resolver" } else { p.via_kind },
                    });
                }
            }
        }
    }
    out
}

/// Findings about the chains: denied targets, routes that never match, unknown targets.
pub fn findings(state: &DesiredState, graph: &PolicyGraph, edges: &[ChainEdge]) -> Vec<Diagnostic> {
    // A target that is the upstream itself is E1001's (the upstream's own decision).
    let denied: Vec<&ChainEdge> = edges
        .iter()
        .filter(|e| !e.allowed && e.target != e.upstream)
        .collect();
    let mut out = Vec::with_capacity(2 * denied.len());
    for e in denied {
        let what = if e.failover { "fails over" } else { "sends" };
        let (source, upstream, target) = (&*e.source, &*e.upstream, &*e.target);
        let (condition, reason) = (&*e.condition, &*e.reason);
        out.push(
            Diagnostic::new(
                Code::ChainTargetDenied,
                e.span,
                concat(&[
                    "service \"",
                    source,
                    "\" declares upstream \"",
                    upstream,
                    "\", whose discovery chain ",
                    what,
                    " ",
                    condition,
                    " to \"",
                    target,
                    "\", which the intentions deny: ",
                    reason,
                ]),
            )
            .with_label(e.via, "routed here")
            .with_help(concat(&[
                "add `{ Name = \"",
                source,
                "\", Action = \"allow\" }` to the service-intentions entry for \"",
                target,
                "\"",
            ])),
        );
        out.push(
            Diagnostic::new(
                Code::ChainTargetDenied,
                e.via,
                concat(&[
                    "this ",
                    e.via_kind,
                    " ",
                    what,
                    " ",
                    condition,
                    " on \"",
                    source,
                    "\"'s upstream \"",
                    upstream,
                    "\" to \"",
                    target,
                    "\", which the intentions deny: ",
                    reason,
                ]),
            )
            .with_help(concat(&[
                "allow \"",
                source,
                "\" in the service-intentions entry for \"",
                target,
                "\", or send the requests elsewhere",
            ])),
        );
    }
    for e in &state.config_entries {
        match e {
            ConfigEntry::Chain(ChainEntry::Router(r)) => {
                never_matching(&r.routes, &mut out);
                for route in &r.routes {
                    let to = route
                        .destination
                        .as_ref()
                        .and_then(|d| d.service.as_deref());
                    unknown(graph, &r.name, to, route.span, &mut out);
                }
            }
            ConfigEntry::Chain(ChainEntry::Splitter(s)) => {
                for split in &s.splits {
                    unknown(
                        graph,
                        &s.name,
                        split.service.as_deref(),
                        split.span,
                        &mut out,
                    );
                }
            }
            ConfigEntry::Chain(ChainEntry::Resolver(r)) => {
                let mut to = vec![r.redirect.as_ref().and_then(|x| x.service.as_deref())];
                for f in r.failover.values() {
                    to.push(f.service.as_deref());
                    let targets = f.targets.iter().filter(|t| t.peer.is_none());
                    to.extend(targets.map(|t| t.service.as_deref()));
                }
                for t in to {
                    unknown(graph, &r.name, t, r.span, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

/// The pieces joined in one allocation of the exact size (`format!` grows its buffer as it goes).
fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

fn unknown(graph: &PolicyGraph, own: &str, to: Option<&str>, at: Span, out: &mut Vec<Diagnostic>) {
    let Some(to) = to.filter(|t| *t != own) else {
        return;
    };
    if !graph.services.contains(to) {
        out.push(
            Diagnostic::new(
                Code::ChainTargetUnknown,
                at,
                format!("the discovery chain of \"{own}\" sends requests to \"{to}\", which is declared nowhere"),
            )
            .with_help(format!(
                "declare \"{to}\" (a service definition, a job, or service-defaults), or fix the name"
            )),
        );
    }
}

/// Routes that an earlier route always matches first: one with no criteria, a path prefix
/// alone that covers the later route's path, or the same match again.
fn never_matching(routes: &[ServiceRoute], out: &mut Vec<Diagnostic>) {
    for (i, later) in routes.iter().enumerate() {
        let shadow = routes[..i]
            .iter()
            .position(|earlier| shadows(earlier.http(), later.http()));
        if let Some(j) = shadow {
            out.push(
                Diagnostic::new(
                    Code::RouteNeverMatches,
                    later.span,
                    format!(
                        "Routes[{i}] never matches: Routes[{j}] matches every request it would"
                    ),
                )
                .with_label(routes[j].span, "matches first")
                .with_help("move the more specific route before the general one, or remove it"),
            );
        }
    }
}

fn shadows(earlier: Option<&RouteHttpMatch>, later: Option<&RouteHttpMatch>) -> bool {
    let Some(e) = earlier else {
        return true;
    };
    if Some(e) == later {
        return true;
    }
    let prefix_only = RouteHttpMatch {
        path_prefix: e.path_prefix.clone(),
        ..RouteHttpMatch::default()
    };
    if *e != prefix_only {
        return false;
    }
    let p = e.path_prefix.as_deref().unwrap_or("/");
    match later {
        None => p == "/",
        Some(l) => {
            p == "/"
                || l.path_exact.as_deref().is_some_and(|x| x.starts_with(p))
                || l.path_prefix.as_deref().is_some_and(|x| x.starts_with(p))
        }
    }
}

/// What routing changes open and close: a target a declared upstream's chain reaches, allowed,
/// in one state and not in the other, as `(source, "target via upstream")`. The target the
/// upstream names itself is the policy diff's.
pub fn routed_diff(base: &[ChainEdge], head: &[ChainEdge]) -> crate::ReachDiff {
    use std::collections::BTreeSet;
    let reached = |edges: &[ChainEdge]| -> BTreeSet<(String, String)> {
        edges
            .iter()
            .filter(|e| e.allowed && e.target != e.upstream)
            .map(|e| (e.source.clone(), format!("{} via {}", e.target, e.upstream)))
            .collect()
    };
    let (b, h) = (reached(base), reached(head));
    crate::ReachDiff {
        opened: h.difference(&b).cloned().collect(),
        closed: b.difference(&h).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[(&str, &str)]) -> DesiredState {
        let files = files
            .iter()
            .map(|(p, c)| mesh_loader::RepoFile {
                path: (*p).into(),
                contents: c.as_bytes().to_vec(),
            })
            .collect();
        let loaded = mesh_loader::load_files(files, &mesh_loader::LoadOptions::default());
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        loaded.state
    }

    const BASE: &[(&str, &str)] = &[
        ("mesh-gitops.hcl", "acl {\n  enabled = true\n  default_policy = \"deny\"\n}\n"),
        ("web.hcl", "service {\n  name = \"web\"\n  connect { sidecar_service { proxy { upstreams = [{ destination_name = \"api\", local_bind_port = 9090 }] } } }\n}\n"),
        ("api.hcl", "Kind = \"service-defaults\"\nName = \"api\"\nProtocol = \"http\"\n"),
        ("api-v2.hcl", "Kind = \"service-defaults\"\nName = \"api-v2\"\nProtocol = \"http\"\n"),
        ("allow.hcl", "Kind = \"service-intentions\"\nName = \"api\"\nSources = [{ Name = \"web\", Action = \"allow\" }]\n"),
    ];
    const SPLIT: (&str, &str) = (
        "split.hcl",
        "Kind = \"service-splitter\"\nName = \"api\"\nSplits = [{ Weight = 90 }, { Weight = 10, Service = \"api-v2\" }]\n",
    );
    const ALLOW_V2: (&str, &str) = (
        "allow-v2.hcl",
        "Kind = \"service-intentions\"\nName = \"api-v2\"\nSources = [{ Name = \"web\", Action = \"allow\" }]\n",
    );

    #[test]
    fn a_split_target_is_decided_by_its_own_intentions() {
        let mut files = BASE.to_vec();
        files.push(SPLIT);
        let state = load(&files);
        let a = crate::analyze(&state, &[]);
        let denied: Vec<_> = a.chain_edges.iter().filter(|e| !e.allowed).collect();
        assert_eq!(denied.len(), 1);
        assert_eq!(
            (denied[0].target.as_str(), denied[0].share),
            ("api-v2", 10.0)
        );
        let codes: Vec<_> = a.findings.iter().map(|d| d.code).collect();
        assert_eq!(codes, [Code::ChainTargetDenied, Code::ChainTargetDenied]);
        files.push(ALLOW_V2);
        let a = crate::analyze(&load(&files), &[]);
        assert!(a.chain_edges.iter().all(|e| e.allowed));
        assert!(!a.has_errors());
    }

    #[test]
    fn routing_changes_open_and_close_edges() {
        let mut files = BASE.to_vec();
        files.push(ALLOW_V2);
        let base = crate::analyze(&load(&files), &[]);
        files.push(SPLIT);
        let head = crate::analyze(&load(&files), &[]);
        // The intentions are the same; only the split makes web reach api-v2.
        assert_eq!(
            crate::diff(&base.graph, &head.graph),
            crate::ReachDiff::default()
        );
        let d = routed_diff(&base.chain_edges, &head.chain_edges);
        assert_eq!(d.opened, [("web".to_owned(), "api-v2 via api".to_owned())]);
        assert_eq!(
            routed_diff(&head.chain_edges, &base.chain_edges).closed,
            d.opened
        );
    }

    #[test]
    fn a_borrowed_decision_is_the_owned_one() {
        let state = load(BASE);
        let g = PolicyGraph::build(&state);
        for (src, dst) in [("web", "api"), ("api", "web"), ("web", "declared-nowhere")] {
            let d = g.decide_ref(src, dst);
            assert_eq!(*d, g.decide(src, dst));
            assert_eq!(matches!(d, Cow::Borrowed(_)), g.rows.contains_key(dst));
        }
        assert!(g.decide_ref("web", "api").allowed);
        assert!(!g.decide_ref("api", "web").allowed);
    }

    #[test]
    fn a_route_after_a_covering_prefix_never_matches() {
        let m = |prefix: Option<&str>, exact: Option<&str>| {
            Some(RouteHttpMatch {
                path_prefix: prefix.map(str::to_owned),
                path_exact: exact.map(str::to_owned),
                ..Default::default()
            })
        };
        assert!(shadows(
            m(Some("/api"), None).as_ref(),
            m(None, Some("/api/x")).as_ref()
        ));
        assert!(shadows(m(Some("/"), None).as_ref(), None));
        assert!(!shadows(
            m(Some("/api"), None).as_ref(),
            m(Some("/admin"), None).as_ref()
        ));
        assert!(!shadows(
            m(Some("/api/v2"), None).as_ref(),
            m(Some("/api"), None).as_ref()
        ));
    }
}
