//! `check --format markdown`, for PR comments and step summaries: the verdict, what the change
//! opened and closed, the simulation, the findings grouped by file (linked to their lines), the
//! graph in Mermaid and the declared upstreams, the last two folded.

use super::{counts, decision, verdict};
use crate::escape::markdown as md_escape;
use mesh_check::{location, CheckResult};
use mesh_diagnostics::Diagnostic;
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub fn render(r: &CheckResult) -> String {
    let mut out = String::new();
    let (errors, warnings) = counts(r);
    let icon = if r.failed() { "❌" } else { "✅" };
    let _ = writeln!(
        out,
        "## {icon} mesh-gitops check: {}\n\n{errors} error(s), {warnings} warning(s).\n",
        verdict(r)
    );
    if let Some(diff) = &r.diff {
        let label = r.base.as_ref().map(|b| b.label.as_str()).unwrap_or("base");
        let _ = writeln!(out, "### Reachability since `{}`\n", md_escape(label));
        if diff.opened.is_empty() && diff.closed.is_empty() {
            out.push_str("No edge opened or closed.\n\n");
        } else {
            out.push_str("| change | source | destination |\n|---|---|---|\n");
            for (s, d) in &diff.opened {
                let live = super::live_mark(r, s);
                let _ = writeln!(
                    out,
                    "| opened | `{}`{live} | `{}` |",
                    md_escape(s),
                    md_escape(d)
                );
            }
            for (s, d) in &diff.closed {
                let live = super::live_mark(r, s);
                let _ = writeln!(
                    out,
                    "| closed | `{}`{live} | `{}` |",
                    md_escape(s),
                    md_escape(d)
                );
            }
            out.push_str("\n`*` stands for every service no intention names.\n\n");
        }
    }
    if let Some(sim) = &r.simulation {
        out.push_str(&crate::simulation::markdown::render(sim));
    }
    findings(&mut out, r);
    if !r.analysis.graph.services.is_empty() {
        // Mermaid renders on GitHub, in PR comments and step summaries alike.
        out.push_str("<details><summary>Reachability graph</summary>\n\n```mermaid\n");
        out.push_str(&crate::graph::mermaid::render(r));
        out.push_str("```\n\n</details>\n\n");
    }
    out.push_str(&super::chains::markdown(r));
    let declared: Vec<_> = r.analysis.edges.iter().filter(|e| e.declared).collect();
    if !declared.is_empty() {
        out.push_str("<details><summary>Declared upstreams</summary>\n\n| source | destination | decision | reason |\n|---|---|---|---|\n");
        for e in declared {
            let _ = writeln!(
                out,
                "| `{}`{} | `{}` | {}{} | {} |",
                md_escape(&e.source),
                super::live_mark(r, &e.source),
                md_escape(&e.destination),
                decision(e.allowed),
                if e.l7 { " (L7)" } else { "" },
                md_escape(&e.reason)
            );
        }
        out.push_str("\n</details>\n");
    }
    out
}

/// The findings grouped by file, each linked to its line.
fn findings(out: &mut String, r: &CheckResult) {
    if r.analysis.findings.is_empty() {
        return;
    }
    out.push_str("### Findings\n\n");
    let mut by_file: BTreeMap<String, Vec<&Diagnostic>> = BTreeMap::new();
    for d in &r.analysis.findings {
        let file = location(d, &r.head.sources)
            .map(|l| l.0)
            .unwrap_or_else(|| "(repository)".into());
        by_file.entry(file).or_default().push(d);
    }
    for (file, ds) in by_file {
        let _ = writeln!(out, "**{}**\n", md_escape(&file));
        for d in ds {
            let at = location(d, &r.head.sources)
                .map(|l| format!("[{}:{}]({}#L{}) ", l.0, l.1, l.0, l.1))
                .unwrap_or_default();
            let mark = if d.is_error() { "🔴" } else { "🟡" };
            let _ = writeln!(out, "- {mark} {at}`{}` {}", d.code, md_escape(&d.message));
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::check::fixture::{api_opened, one_denied};

    #[test]
    fn findings_link_to_their_line_and_the_graph_is_folded() {
        let md = render(&one_denied());
        assert!(
            md.starts_with("## ❌ mesh-gitops check: fail\n\n1 error(s)"),
            "{md}"
        );
        assert!(
            md.contains("**services.hcl**\n\n- 🔴 [services.hcl:"),
            "{md}"
        );
        assert!(md.contains("```mermaid\nflowchart LR\n"), "{md}");
        assert!(md.contains("| `web` | `api` | deny |"), "{md}");
    }

    #[test]
    fn the_opened_edge_is_a_table_row() {
        let md = render(&api_opened());
        assert!(
            md.contains("### Reachability since `main`\n\n| change | source | destination |\n|---|---|---|\n| opened | `web` | `api` |\n"),
            "{md}"
        );
    }
}
