//! The simulation `check` runs and `simulate` runs alone: every seed's `SimReport`, or why it
//! was skipped.

pub mod combine;
pub mod html;
pub mod json;
pub mod markdown;
pub mod text;

use mesh_sim::SimReport;

/// "N declared upstream(s) denied by the intentions, " when some are, else nothing: the
/// summary line of a mesh whose declared upstreams all work reads as it always did.
pub(crate) fn denied_count(r: &SimReport) -> String {
    let targets = match r.denied_targets().count() {
        0 => String::new(),
        n => format!("{n} chain target(s) denied by the intentions, "),
    };
    match r.denied().count() {
        0 => targets,
        n => format!("{n} declared upstream(s) denied by the intentions, {targets}"),
    }
}

/// One line per target of an upstream routed by its discovery chain: where the requests went
/// and what the target's intentions decided.
pub(crate) fn target_lines(r: &SimReport) -> impl Iterator<Item = String> + '_ {
    r.targets.iter().map(|t| {
        format!(
            "{} -> {} -> target {}: {} allowed, {} denied, {} failed (expected {})",
            t.source,
            t.upstream,
            t.target,
            t.allowed,
            t.denied,
            t.failed,
            if t.expected_allowed {
                "allowed"
            } else {
                "denied"
            }
        )
    })
}

#[cfg(test)]
pub(crate) mod fixture {
    use mesh_check::Simulation;
    use mesh_sim::{Outcome, Probe, ProbeKind, SimReport, Transient, TransientKind};

    /// One seed's report: `web -> api` carried traffic, one probe refused as expected, one
    /// admitted that should not have been, and a break during the rollout.
    pub(crate) fn report(seed: u64, violations: &[&str]) -> SimReport {
        let probe = |source: &str, outcome, expected| Probe {
            source: source.into(),
            destination: "db".into(),
            kind: ProbeKind::DeniedIdentity,
            outcome,
            expected,
            handshake: true,
            at_ms: 5000,
            detail: String::new(),
        };
        SimReport {
            seed,
            trace_hash: "0123456789abcdef0123456789abcdef".into(),
            duration_ms: 6000,
            hosts: vec!["server".into(), "web-1".into()],
            probes: vec![
                probe(
                    "web",
                    Outcome::DeniedByIntention,
                    Outcome::DeniedByIntention,
                ),
                probe("evil<x>", Outcome::Allowed, Outcome::DeniedByIntention),
            ],
            edges: vec![mesh_sim::EdgeReport {
                source: "web".into(),
                destination: "api".into(),
                expected_allowed: true,
                l7: false,
                attempts: 3,
                outcomes: [(Outcome::Allowed, 3)].into_iter().collect(),
                denied_after_handshake: 0,
                converged_allowed: Some(true),
                recovered_at_ms: None,
                denied_by: None,
            }],
            targets: Vec::new(),
            violations: violations.iter().map(|v| (*v).to_owned()).collect(),
            transient: vec![Transient {
                kind: TransientKind::Break,
                source: "web".into(),
                destination: "api".into(),
                step: 1,
                at_ms: 2500,
            }],
            calls: 3,
            handshakes: 1,
            handshake_time: std::time::Duration::ZERO,
            replay: format!("mesh-gitops simulate repo --seed {seed}"),
            trace: Vec::new(),
        }
    }

    /// One seed whose only declared upstream, `web -> api`, the intentions denied.
    pub(crate) fn denied(seed: u64) -> SimReport {
        let mut r = report(seed, &[]);
        let e = &mut r.edges[0];
        e.expected_allowed = false;
        e.outcomes = [(Outcome::DeniedByIntention, 3)].into_iter().collect();
        e.denied_after_handshake = 3;
        e.converged_allowed = Some(false);
        e.denied_by = Some("Matched L4 intention: web -> api (precedence 9)".into());
        r.transient.clear();
        r
    }

    pub(crate) fn simulation(reports: Vec<SimReport>) -> Simulation {
        Simulation {
            reports,
            skipped: None,
        }
    }

    pub(crate) fn skipped() -> Simulation {
        Simulation {
            reports: Vec::new(),
            skipped: Some("the repository declares no service with a sidecar".into()),
        }
    }
}
