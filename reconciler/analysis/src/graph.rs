//! The policy graph: every service the repository knows, its declared upstreams, and the
//! decision of the one shared intention evaluation for every pair, kept compressed.
//!
//! For a destination, every source that no intention names exactly gets the same decision (the
//! wildcard and default rules do not look at the name). So each destination stores the
//! decisions of the sources named exactly, plus one decision for everyone else; all pairs of
//! 10,000 services cost one evaluation per intention source, not one per pair.

use mesh_model::{DesiredState, IntentionAction};
use mesh_semantics::intention::{IntentionRef, IntentionSet};
use petgraph::graph::{DiGraph, NodeIndex};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// A name no service can have: stands for "any service not named exactly".
pub const OTHER: &str = "\u{0}other";

/// The decision for one pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairDecision {
    /// Connections are admitted (an L4 allow, an L7 intention that decides per request, or the
    /// default).
    pub allowed: bool,
    /// Admitted, with each HTTP request decided by L7 permissions.
    pub l7: bool,
    /// The intention that decides, if any.
    pub matched: Option<IntentionRef>,
    /// Why, in Consul's words.
    pub reason: String,
}

/// Decisions for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationRow {
    /// Sources named exactly by an intention that applies to this destination.
    pub named: BTreeMap<String, PairDecision>,
    /// Every other source.
    pub others: PairDecision,
}

/// Services, intentions and decisions.
#[derive(Debug)]
pub struct PolicyGraph {
    pub set: IntentionSet,
    pub default_allow: bool,
    /// Services declared by definitions, jobs, service-defaults or named by intentions.
    pub services: BTreeSet<String>,
    pub rows: BTreeMap<String, DestinationRow>,
    /// Services as nodes; edges carry whether the pair is declared and whether it is allowed.
    pub graph: DiGraph<String, EdgeKind>,
    pub nodes: BTreeMap<String, NodeIndex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeKind {
    pub declared: bool,
    pub allowed: bool,
}

impl PolicyGraph {
    pub fn build(state: &DesiredState) -> PolicyGraph {
        let set = IntentionSet::new(state.intentions());
        let default_allow = state.settings.acl.default_intention_allows();
        let mut services: BTreeSet<String> =
            state.services.iter().map(|s| s.name.clone()).collect();
        for e in &state.config_entries {
            if let mesh_model::ConfigEntry::ServiceDefaults(sd) = e {
                services.insert(sd.name.clone());
            }
        }
        for i in state.intentions() {
            if i.name != "*" {
                services.insert(i.name.clone());
            }
            for s in &i.sources {
                if s.name != "*" && s.peer.is_none() && s.sameness_group.is_none() {
                    services.insert(s.name.clone());
                }
            }
        }
        for s in &state.services {
            for u in &s.upstreams {
                if !u.destination_name.contains("${") {
                    services.insert(u.destination_name.clone());
                }
            }
        }
        let mut rows = BTreeMap::new();
        for dst in &services {
            rows.insert(dst.clone(), row(&set, dst, default_allow));
        }
        let mut graph = DiGraph::new();
        let mut nodes = BTreeMap::new();
        for s in &services {
            nodes.insert(s.clone(), graph.add_node(s.clone()));
        }
        let mut pg = PolicyGraph {
            set,
            default_allow,
            services,
            rows,
            graph,
            nodes,
        };
        // Edges: every declared upstream, plus every named allowed pair.
        let mut edges: BTreeMap<(String, String), EdgeKind> = BTreeMap::new();
        for s in &state.services {
            for u in &s.upstreams {
                if u.destination_name.contains("${") {
                    continue;
                }
                let d = pg.decide_ref(&s.name, &u.destination_name);
                edges.insert(
                    (s.name.clone(), u.destination_name.clone()),
                    EdgeKind {
                        declared: true,
                        allowed: d.allowed,
                    },
                );
            }
        }
        for (dst, row) in &pg.rows {
            for (src, d) in &row.named {
                if d.allowed && pg.nodes.contains_key(src) {
                    edges.entry((src.clone(), dst.clone())).or_insert(EdgeKind {
                        declared: false,
                        allowed: true,
                    });
                }
            }
        }
        for ((a, b), kind) in edges {
            let (ia, ib) = (pg.nodes[&a], pg.nodes[&b]);
            pg.graph.add_edge(ia, ib, kind);
        }
        pg
    }

    /// The decision for `source -> destination` (any names, known or not).
    pub fn decide(&self, source: &str, destination: &str) -> PairDecision {
        self.decide_ref(source, destination).into_owned()
    }

    /// [`decide`](Self::decide) without copying the decision of a known destination.
    pub fn decide_ref(&self, source: &str, destination: &str) -> Cow<'_, PairDecision> {
        match self.rows.get(destination) {
            Some(row) => Cow::Borrowed(row.named.get(source).unwrap_or(&row.others)),
            None => Cow::Owned(pair(&self.set, source, destination, self.default_allow)),
        }
    }

    /// Allowed destinations of `source` among known services (the blast radius of its identity).
    pub fn reachable_from(&self, source: &str) -> Vec<String> {
        self.services
            .iter()
            .filter(|d| *d != source && self.decide(source, d).allowed)
            .cloned()
            .collect()
    }

    /// Number of allowed ordered pairs among the known services (self-pairs excluded).
    pub fn allowed_pairs(&self) -> u64 {
        let n = self.services.len() as u64;
        let mut total = 0u64;
        for (dst, row) in &self.rows {
            let named_known: Vec<&String> = row
                .named
                .keys()
                .filter(|s| self.services.contains(*s) && *s != dst)
                .collect();
            total += named_known
                .iter()
                .filter(|s| row.named[**s].allowed)
                .count() as u64;
            let rest = n.saturating_sub(1 + named_known.len() as u64);
            if row.others.allowed {
                total += rest;
            }
        }
        total
    }
}

fn pair(set: &IntentionSet, source: &str, destination: &str, default_allow: bool) -> PairDecision {
    let d = set.decide(source, destination, default_allow);
    let l7 = set.has_l7(source, destination);
    PairDecision {
        allowed: d.allowed || l7,
        l7,
        matched: d.matched,
        reason: d.reason,
    }
}

fn row(set: &IntentionSet, destination: &str, default_allow: bool) -> DestinationRow {
    let named = set
        .exact_sources(destination)
        .into_iter()
        .map(|s| (s.to_owned(), pair(set, s, destination, default_allow)))
        .collect();
    DestinationRow {
        named,
        others: pair(set, OTHER, destination, default_allow),
    }
}

/// The action of an L4 intention, for messages.
pub fn action_text(i: &IntentionRef) -> &'static str {
    match (i.l7, i.action) {
        (true, _) => "L7 permissions",
        (false, Some(IntentionAction::Allow)) => "allow",
        (false, _) => "deny",
    }
}
