//! The discovery chains of the declared upstreams, as a small picture: per upstream, where its
//! chain sends requests (each route, split and failover target, with its condition and share)
//! and whether the target's intentions admit the caller. Markdown gets a Mermaid flowchart
//! (GitHub renders it); the self-contained HTML a table, drawn without scripts.

use crate::escape::{markdown as md_escape, xml};
use mesh_analysis::chains::ChainEdge;
use mesh_check::CheckResult;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The chain edges by declared upstream (`source`, `upstream`), in order.
fn by_upstream(r: &CheckResult) -> BTreeMap<(&str, &str), Vec<&ChainEdge>> {
    let mut out: BTreeMap<(&str, &str), Vec<&ChainEdge>> = BTreeMap::new();
    for c in &r.analysis.chain_edges {
        out.entry((c.source.as_str(), c.upstream.as_str()))
            .or_default()
            .push(c);
    }
    out
}

/// Mermaid node ids: letters, digits and `_` only.
fn id(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn label(s: &str) -> String {
    s.replace('"', "#quot;")
}

/// A folded Markdown section with the Mermaid picture; empty without chains.
pub fn markdown(r: &CheckResult) -> String {
    let groups = by_upstream(r);
    if groups.is_empty() {
        return String::new();
    }
    let mut out =
        String::from("<details><summary>Discovery chains</summary>\n\n```mermaid\nflowchart LR\n");
    let mut n = 0;
    for ((source, upstream), edges) in &groups {
        let chain = format!("chain_{}_{}", id(source), id(upstream));
        let _ = writeln!(
            out,
            "  {}[\"{}\"] -->|upstream| {chain}{{\"{}\"}}",
            id(source),
            label(source),
            label(upstream)
        );
        for e in edges {
            let target = format!(
                "{}_{}",
                id(&e.target),
                id(e.subset.as_deref().unwrap_or(""))
            );
            let _ = writeln!(
                out,
                "  {chain} -->|\"{}{}\"| {target}[\"{}{}\"]",
                label(&e.condition),
                if e.failover { ", failover" } else { "" },
                label(&e.target),
                e.subset
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            );
            if !e.allowed {
                let _ = writeln!(out, "  linkStyle {} stroke:#c62828,stroke-width:3px", n + 1);
            }
            n += 1;
        }
        n += 1;
    }
    out.push_str("```\n\n| source | upstream | requests | target | decision | reason |\n|---|---|---|---|---|---|\n");
    for ((source, upstream), edges) in &groups {
        for e in edges {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {}{} | `{}` | {} | {} |",
                md_escape(source),
                md_escape(upstream),
                md_escape(&e.condition),
                if e.failover { " (failover)" } else { "" },
                md_escape(&e.target),
                super::decision(e.allowed),
                md_escape(&e.reason)
            );
        }
    }
    out.push_str("\n</details>\n");
    out
}

/// The HTML section; empty without chains.
pub fn html(r: &CheckResult) -> String {
    let groups = by_upstream(r);
    if groups.is_empty() {
        return String::new();
    }
    let mut out = String::from("<section id=\"chains\">\n<h2>Discovery chains</h2>\n");
    for ((source, upstream), edges) in &groups {
        let _ = writeln!(
            out,
            "<h3><code>{}</code> → upstream <code>{}</code></h3>\n<table>\n<tr><th>requests</th><th>target</th><th>decision</th><th>reason</th></tr>",
            xml(source),
            xml(upstream)
        );
        for e in edges {
            let _ = writeln!(
                out,
                "<tr class=\"{}\"><td>{}{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                if e.allowed { "ok" } else { "bad" },
                xml(&e.condition),
                if e.failover { " (failover)" } else { "" },
                xml(&e.target),
                if e.allowed { "✓ allow" } else { "✗ deny" },
                xml(&e.reason)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
    out
}
