//! Pictures of the reachability graph of a check result: Mermaid, Graphviz DOT and SVG (laid
//! out here). Nodes are the services the repository knows; edges are declared upstreams
//! (allowed or denied) and pairs an intention allows by name. With a base, the edges the change
//! opened and closed. A declared upstream's discovery chain adds an edge to each target it
//! routes to, labelled with the route, the split's share or `failover`.

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
    /// A discovery chain routes requests on a declared upstream to a target the intentions
    /// allow, or deny.
    ChainAllowed,
    ChainDenied,
}

/// An edge from a service to a target of its upstream's discovery chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ChainLink {
    pub source: String,
    pub target: String,
    /// `/v2`, `90%`, `/v2 10%`, `failover`, `redirect`.
    pub label: String,
    pub allowed: bool,
}

impl ChainLink {
    pub(crate) fn style(&self) -> Style {
        if self.allowed {
            Style::ChainAllowed
        } else {
            Style::ChainDenied
        }
    }
}

/// A share as Consul writes a weight: `90`, `12.5`.
fn percent(share: f64) -> String {
    if share.fract() == 0.0 {
        format!("{}%", share as i64)
    } else {
        format!("{share}%")
    }
}

/// The edges of the declared upstreams' chains, sorted, without the plain way to the upstream
/// itself (the declared edge already shows it).
pub(crate) fn chain_links(r: &CheckResult) -> Vec<ChainLink> {
    let mut out = std::collections::BTreeSet::new();
    for e in &r.analysis.chain_edges {
        let route = e
            .condition
            .strip_prefix("requests matching ")
            .map(|c| c.split(", ").next().unwrap_or(c))
            .map(|c| {
                c.strip_prefix("path prefix ")
                    .or_else(|| c.strip_prefix("path "))
                    .unwrap_or(c)
                    .to_owned()
            });
        let label = if e.failover {
            "failover".to_owned()
        } else if e.via_kind == "split" {
            match route {
                Some(r) => format!("{r} {}", percent(e.share)),
                None => percent(e.share),
            }
        } else if let Some(r) = route {
            r
        } else if e.target == e.upstream {
            continue;
        } else {
            "redirect".to_owned()
        };
        out.insert(ChainLink {
            source: e.source.clone(),
            target: e.target.clone(),
            label,
            allowed: e.allowed,
        });
    }
    out.into_iter().collect()
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
    let links = chain_links(r);
    let ends = links.iter().map(|l| (&l.source, &l.target));
    for (s, d) in edges(r).keys().map(|(s, d)| (s, d)).chain(ends) {
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
