//! The text rendering of a report.

use crate::{SimReport, TransientKind};
use std::fmt::Write as _;

const MAX_EDGES_SHOWN: usize = 30;

/// A summary for people: edges, probes, rollout transients, violations and the replay command.
pub fn render_text(r: &SimReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "simulated {} hosts for {:.1} s (seed {}, trace {})",
        r.hosts.len(),
        r.duration_ms as f64 / 1000.0,
        r.seed,
        &r.trace_hash[..r.trace_hash.len().min(16)]
    );
    // Large meshes: only the edges that did not end as the analysis predicts.
    let all = r.edges.len() <= MAX_EDGES_SHOWN;
    let shown: Vec<_> = r
        .edges
        .iter()
        .filter(|e| all || e.converged_allowed != Some(e.expected_allowed))
        .collect();
    if !r.edges.is_empty() {
        if all {
            let _ = writeln!(out, "\nedges:");
        } else {
            let _ = writeln!(
                out,
                "\nedges: {} declared, {} not as expected{}",
                r.edges.len(),
                shown.len(),
                if shown.is_empty() { "" } else { ":" }
            );
        }
    }
    for e in shown {
        let outcomes: Vec<String> = e
            .outcomes
            .iter()
            .map(|(o, n)| format!("{} {n}", o.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "  {} -> {}: expected {}{}, {}",
            e.source,
            e.destination,
            if e.expected_allowed {
                "allowed"
            } else {
                "denied"
            },
            if e.l7 { " (L7)" } else { "" },
            if outcomes.is_empty() {
                "no calls".to_owned()
            } else {
                outcomes.join(", ")
            }
        );
    }
    if !r.targets.is_empty() {
        let _ = writeln!(out, "\nchain targets:");
        for t in &r.targets {
            let _ = writeln!(
                out,
                "  {} -> {} -> {}: expected {}, allowed {}, denied {}, failed {}",
                t.source,
                t.upstream,
                t.target,
                if t.expected_allowed {
                    "allowed"
                } else {
                    "denied"
                },
                t.allowed,
                t.denied,
                t.failed
            );
        }
    }
    if !r.probes.is_empty() {
        let ok = r.probes.iter().filter(|p| p.outcome == p.expected).count();
        let _ = writeln!(out, "\nprobes: {ok} of {} as expected", r.probes.len());
        for p in r.probes.iter().filter(|p| p.outcome != p.expected) {
            let _ = writeln!(
                out,
                "  {} {} -> {}: {} (expected {})",
                p.kind.as_str(),
                p.source,
                p.destination,
                p.outcome.as_str(),
                p.expected.as_str()
            );
        }
    }
    if !r.transient.is_empty() {
        let _ = writeln!(out, "\nduring the rollout:");
        for t in &r.transient {
            let _ = writeln!(
                out,
                "  {} {} -> {} after step {} at {} ms",
                match t.kind {
                    TransientKind::Break => "break:",
                    TransientKind::Opening => "opening:",
                },
                t.source,
                t.destination,
                t.step,
                t.at_ms
            );
        }
    }
    let denials = r.edges.iter().filter_map(|e| e.denial());
    for d in denials.chain(r.targets.iter().filter_map(|t| t.denial())) {
        let _ = writeln!(out, "\ndenied: {d}");
    }
    if r.violations.is_empty() {
        let _ = writeln!(out, "\nno violations");
    } else {
        let _ = writeln!(out, "\n{} violation(s):", r.violations.len());
        for v in &r.violations {
            let _ = writeln!(out, "  {v}");
        }
    }
    if !r.passed() {
        let _ = writeln!(out, "\nreplay: {}", r.replay);
    }
    out
}
