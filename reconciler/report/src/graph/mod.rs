//! Pictures of the reachability graph of a check result: Mermaid, Graphviz DOT and SVG (laid
//! out here). Nodes are the services the repository knows; edges are declared upstreams
//! (allowed or denied) and pairs an intention allows by name. With a base, the edges the change
//! opened and closed.

pub mod dot;
mod layout;
pub mod mermaid;
pub mod svg;

use mesh_check::CheckResult;
use std::collections::BTreeMap;

/// What an edge of the picture stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    DeclaredAllowed,
    DeclaredDenied,
    Allowed,
    Opened,
    Closed,
}

/// Every edge to draw and its style; an edge the change opened or closed is drawn as that.
pub(crate) fn edges(r: &CheckResult) -> BTreeMap<(String, String), Style> {
    let mut out = BTreeMap::new();
    for e in &r.analysis.edges {
        if e.source == "*" {
            continue;
        }
        let style = match (e.declared, e.allowed) {
            (true, true) => Style::DeclaredAllowed,
            (true, false) => Style::DeclaredDenied,
            (false, true) => Style::Allowed,
            (false, false) => continue,
        };
        out.insert((e.source.clone(), e.destination.clone()), style);
    }
    if let Some(diff) = &r.diff {
        for (s, d) in &diff.opened {
            out.insert((s.clone(), d.clone()), Style::Opened);
        }
        for (s, d) in &diff.closed {
            out.insert((s.clone(), d.clone()), Style::Closed);
        }
    }
    out
}

/// Every service the repository knows and every end of an edge, sorted.
pub(crate) fn nodes(r: &CheckResult) -> Vec<String> {
    let mut names: Vec<String> = r.analysis.graph.services.iter().cloned().collect();
    for (s, d) in edges(r).keys() {
        for n in [s, d] {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    names.sort();
    names
}

/// How a node is labelled: `*` (a diff's "every service no intention names") in words.
pub(crate) fn label(name: &str) -> &str {
    if name == "*" {
        "every other service"
    } else {
        name
    }
}
