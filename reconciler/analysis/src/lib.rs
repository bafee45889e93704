//! Who can reach whom, offline, for every pair: the policy graph built on the one shared
//! intention evaluation, findings about the mesh and its security posture, guardrails, and the
//! reachability difference between two states of a repository.
//!
//! Pure: no IO, no clock.

mod agent;
pub mod chains;
pub mod findings;
pub mod graph;
pub mod guardrail;

pub use findings::Identity;
pub use graph::{DestinationRow, PairDecision, PolicyGraph, OTHER};

use mesh_diagnostics::{Diagnostic, FileId, Span};
use mesh_model::DesiredState;
use mesh_syntax::Node;
use std::collections::BTreeSet;

/// One edge of the report: a declared upstream, a pair an intention names, or (source `*`)
/// every other service towards a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub source: String,
    pub destination: String,
    pub declared: bool,
    pub allowed: bool,
    pub l7: bool,
    pub reason: String,
    /// The declared upstream, if any.
    pub span: Option<Span>,
}

/// The result of analysing one desired state.
#[derive(Debug)]
pub struct Analysis {
    pub graph: PolicyGraph,
    pub edges: Vec<Edge>,
    /// Findings and guardrail failures, sorted by location.
    pub findings: Vec<Diagnostic>,
    /// Per token and role: the services it can obtain certificates for, and where they reach.
    pub identities: Vec<Identity>,
    /// Declared upstreams through their discovery chains: every target a request can reach.
    pub chain_edges: Vec<chains::ChainEdge>,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(Diagnostic::is_error)
    }
}

/// Analyses `state` with the guardrail files of its repository (`policies/*.hcl`, parsed) and the
/// built-in packs its settings enable.
pub fn analyze(state: &DesiredState, guardrail_files: &[(FileId, Node)]) -> Analysis {
    let graph = PolicyGraph::build(state);
    let (mut findings, identities) = findings::all(state, &graph);
    let chain_edges = chains::edges(state, &graph);
    findings.extend(chains::findings(state, &graph, &chain_edges));
    let mut rails = Vec::new();
    for (_, node) in guardrail_files {
        rails.extend(guardrail::parse(node, None, &mut findings));
    }
    rails.extend(guardrail::packs(
        &state.settings.guardrails,
        state.settings.span,
        &mut findings,
    ));
    guardrail::evaluate(&rails, &graph, state.settings.span, &mut findings);
    findings.sort_by(|a, b| (a.span, a.code, &a.message).cmp(&(b.span, b.code, &b.message)));
    findings.dedup();
    let edges = edges(state, &graph);
    Analysis {
        graph,
        edges,
        findings,
        identities,
        chain_edges,
    }
}

fn edges(state: &DesiredState, g: &PolicyGraph) -> Vec<Edge> {
    let mut out = Vec::new();
    let mut declared: BTreeSet<(String, String)> = BTreeSet::new();
    for s in &state.services {
        for u in &s.upstreams {
            if u.destination_name.contains("${") {
                continue;
            }
            let d = g.decide(&s.name, &u.destination_name);
            declared.insert((s.name.clone(), u.destination_name.clone()));
            out.push(Edge {
                source: s.name.clone(),
                destination: u.destination_name.clone(),
                declared: true,
                allowed: d.allowed,
                l7: d.l7,
                reason: d.reason,
                span: Some(u.span),
            });
        }
    }
    for (dst, row) in &g.rows {
        for (src, d) in &row.named {
            if src == dst || declared.contains(&(src.clone(), dst.clone())) {
                continue;
            }
            out.push(Edge {
                source: src.clone(),
                destination: dst.clone(),
                declared: false,
                allowed: d.allowed,
                l7: d.l7,
                reason: d.reason.clone(),
                span: None,
            });
        }
        out.push(Edge {
            source: "*".to_owned(),
            destination: dst.clone(),
            declared: false,
            allowed: row.others.allowed,
            l7: row.others.l7,
            reason: row.others.reason.clone(),
            span: None,
        });
    }
    out.sort_by(|a, b| (&a.destination, &a.source).cmp(&(&b.destination, &b.source)));
    out
}

/// What a change opens and closes. `*` as a source means "every service not named".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReachDiff {
    pub opened: Vec<(String, String)>,
    pub closed: Vec<(String, String)>,
}

/// Compares reachability of `base` and `head` over every destination either knows.
pub fn diff(base: &PolicyGraph, head: &PolicyGraph) -> ReachDiff {
    let mut out = ReachDiff::default();
    let destinations: BTreeSet<&String> = base.services.iter().chain(&head.services).collect();
    for dst in destinations {
        let mut sources: BTreeSet<String> = BTreeSet::new();
        for g in [base, head] {
            if let Some(row) = g.rows.get(dst.as_str()) {
                sources.extend(row.named.keys().cloned());
            }
        }
        // Services that exist on one side only are compared too: appearing is not opening,
        // but a service that both sides know and whose decision changed is.
        sources.insert(OTHER.to_owned());
        for src in sources {
            if src == **dst {
                continue;
            }
            let before = base.decide(&src, dst).allowed;
            let after = head.decide(&src, dst).allowed;
            let shown = if src == OTHER {
                "*".to_owned()
            } else {
                src.clone()
            };
            match (before, after) {
                (false, true) => out.opened.push((shown, (*dst).clone())),
                (true, false) => out.closed.push((shown, (*dst).clone())),
                _ => {}
            }
        }
    }
    out
}

/// Findings present in `head` and not in `base`, and the other way round, compared by code and
/// message (locations move between revisions).
pub fn findings_diff<'a>(
    base: &'a [Diagnostic],
    head: &'a [Diagnostic],
) -> (Vec<&'a Diagnostic>, Vec<&'a Diagnostic>) {
    let key = |d: &Diagnostic| (d.code, d.message.clone());
    let b: BTreeSet<_> = base.iter().map(key).collect();
    let h: BTreeSet<_> = head.iter().map(key).collect();
    (
        head.iter().filter(|d| !b.contains(&key(d))).collect(),
        base.iter().filter(|d| !h.contains(&key(d))).collect(),
    )
}
