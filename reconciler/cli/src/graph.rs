//! Pictures of the reachability graph: Graphviz DOT and Mermaid (SVG, laid out here, is in
//! `svg`). Nodes are the services the repository knows; edges are declared upstreams (solid:
//! allowed, dashed red: denied) and pairs an intention allows by name (thin grey). With a base,
//! edges the change opened are bold green and edges it closed dotted red.

use mesh_check::CheckResult;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    DeclaredAllowed,
    DeclaredDenied,
    Allowed,
    Opened,
    Closed,
}

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

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn dot(r: &CheckResult) -> String {
    let mut out = String::from("digraph mesh {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
    for n in nodes(r) {
        let label = if n == "*" {
            "every other service".to_owned()
        } else {
            n.clone()
        };
        let _ = writeln!(out, "  {} [label={}];", quote(&n), quote(&label));
    }
    for ((s, d), style) in edges(r) {
        let attrs = match style {
            Style::DeclaredAllowed => "color=\"#2e7d32\"",
            Style::DeclaredDenied => "color=\"#c62828\", style=dashed, label=\"denied\"",
            Style::Allowed => "color=\"#9e9e9e\"",
            Style::Opened => "color=\"#2e7d32\", penwidth=2.5, label=\"opened\"",
            Style::Closed => "color=\"#c62828\", style=dotted, penwidth=2.5, label=\"closed\"",
        };
        let _ = writeln!(out, "  {} -> {} [{attrs}];", quote(&s), quote(&d));
    }
    out.push_str("}\n");
    out
}

/// Mermaid ids must be plain; names map to `n0`, `n1`, ... with the name as label.
pub fn mermaid(r: &CheckResult) -> String {
    let names = nodes(r);
    let id = |n: &str| format!("n{}", names.iter().position(|x| x == n).unwrap_or(0));
    let label = |n: &str| {
        let shown = if n == "*" { "every other service" } else { n };
        shown.replace('"', "'")
    };
    let mut out = String::from("flowchart LR\n");
    for n in &names {
        let _ = writeln!(out, "  {}[\"{}\"]", id(n), label(n));
    }
    let mut link_styles = Vec::new();
    for (i, ((s, d), style)) in edges(r).into_iter().enumerate() {
        let (arrow, color) = match style {
            Style::DeclaredAllowed => ("-->", "#2e7d32"),
            Style::DeclaredDenied => ("-. denied .->", "#c62828"),
            Style::Allowed => ("-->", "#9e9e9e"),
            Style::Opened => ("== opened ==>", "#2e7d32"),
            Style::Closed => ("-. closed .->", "#c62828"),
        };
        let _ = writeln!(out, "  {} {arrow} {}", id(&s), id(&d));
        link_styles.push(format!("  linkStyle {i} stroke:{color}"));
    }
    for l in link_styles {
        out.push_str(&l);
        out.push('\n');
    }
    out
}
