//! `check`'s text report: the verdict, every finding as the diagnostics print, the declared
//! upstreams and their decisions, with a base the edges opened and closed, and the simulation.

use super::{base_errors, counts, decision, live_mark, verdict};
use mesh_check::CheckResult;
use std::fmt::Write as _;

pub fn render(r: &CheckResult) -> String {
    let mut out = String::new();
    let (errors, warnings) = counts(r);
    let _ = writeln!(
        out,
        "check: {} ({errors} error{}, {warnings} warning{})",
        verdict(r).to_uppercase(),
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" }
    );
    for d in &r.analysis.findings {
        out.push_str(&mesh_diagnostics::render_text(d, &r.head.sources));
    }
    let declared: Vec<_> = r.analysis.edges.iter().filter(|e| e.declared).collect();
    if !declared.is_empty() {
        out.push_str("\ndeclared upstreams:\n");
        for e in declared {
            let _ = writeln!(
                out,
                "  {}{} -> {}: {}{} ({})",
                e.source,
                live_mark(r, &e.source),
                e.destination,
                decision(e.allowed),
                if e.l7 { ", per request" } else { "" },
                e.reason
            );
            // Where the upstream's discovery chain sends requests, each target decided by its
            // own intentions.
            let routed = r.analysis.chain_edges.iter();
            for c in routed.filter(|c| c.source == e.source && c.upstream == e.destination) {
                let _ = writeln!(
                    out,
                    "    {} {}: {} -> {}: {} ({})",
                    if c.failover { "fails over" } else { "routes" },
                    c.condition,
                    c.source,
                    c.target,
                    decision(c.allowed),
                    c.reason
                );
            }
        }
    }
    if let Some(diff) = &r.diff {
        let label = r.base.as_ref().map(|b| b.label.as_str()).unwrap_or("base");
        let _ = writeln!(out, "\nreachability since {label}:");
        if let Some(n) = r.base.as_ref().map(base_errors).filter(|n| *n > 0) {
            let _ = writeln!(
                out,
                "  (the base has {n} load error(s); compared with what it declares)"
            );
        }
        if diff.opened.is_empty() && diff.closed.is_empty() {
            out.push_str("  no change\n");
        }
        for (s, d) in &diff.opened {
            let _ = writeln!(out, "  + {s}{} -> {d} opened", live_mark(r, s));
        }
        for (s, d) in &diff.closed {
            let _ = writeln!(out, "  - {s}{} -> {d} closed", live_mark(r, s));
        }
    }
    if let Some(sim) = &r.simulation {
        out.push('\n');
        out.push_str(&crate::simulation::text::render(sim));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::check::fixture::{api_opened, one_denied};

    #[test]
    fn a_denied_upstream_fails_and_is_listed_with_its_decision() {
        let text = render(&one_denied());
        assert!(text.starts_with("check: FAIL (1 error"), "{text}");
        assert!(
            text.contains("\ndeclared upstreams:\n  web -> api: deny ("),
            "{text}"
        );
        assert!(text.contains("\n  web -> db: allow ("), "{text}");
        assert!(!text.contains("reachability since"), "{text}");
    }

    #[test]
    fn a_base_adds_what_the_change_opened() {
        let text = render(&api_opened());
        assert!(text.starts_with("check: PASS"), "{text}");
        assert!(
            text.ends_with("\nreachability since main:\n  + web -> api opened\n"),
            "{text}"
        );
    }
}
