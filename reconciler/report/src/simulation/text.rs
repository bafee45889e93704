//! `simulate`'s text, the simulation block of `check`'s text report, and what the apply gate
//! prints: one line per seed, then its rollout transients, violations and replay command.

use mesh_check::Simulation;
use std::fmt::Write as _;

pub fn render(sim: &Simulation) -> String {
    let mut out = String::new();
    if let Some(why) = &sim.skipped {
        let _ = writeln!(out, "simulation: skipped ({why})");
        return out;
    }
    for r in &sim.reports {
        let (carried, refused) = mesh_check::counts(r);
        let _ = writeln!(
            out,
            "simulation: seed {} trace {}: {} declared edge(s) carried traffic, {}{}/{} probes refused as expected, {} transient(s), {} violation(s)",
            r.seed,
            r.trace_hash.get(..16).unwrap_or(&r.trace_hash),
            carried,
            super::denied_count(r),
            refused,
            r.probes.len(),
            r.transient.len(),
            r.violations.len()
        );
        for t in &r.transient {
            let _ = writeln!(
                out,
                "  {:?} {} -> {} after rollout step {} at {} ms",
                t.kind, t.source, t.destination, t.step, t.at_ms
            );
        }
        for t in super::target_lines(r) {
            let _ = writeln!(out, "  chain: {t}");
        }
        for d in r.edges.iter().filter_map(|e| e.denial()) {
            let _ = writeln!(out, "  denied: {d}");
        }
        for d in r.targets.iter().filter_map(|t| t.denial()) {
            let _ = writeln!(out, "  denied: {d}");
        }
        for v in &r.violations {
            let _ = writeln!(out, "  violation: {v}");
        }
        if !r.passed() {
            let _ = writeln!(out, "  replay: {}", r.replay);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::simulation::fixture::{denied, report, simulation, skipped};

    #[test]
    fn the_replay_command_is_printed_only_for_a_failing_seed() {
        let text = render(&simulation(vec![
            report(1, &[]),
            report(2, &["safety: evil"]),
        ]));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "simulation: seed 1 trace 0123456789abcdef: 1 declared edge(s) carried traffic, 1/2 probes refused as expected, 1 transient(s), 0 violation(s)"
        );
        assert_eq!(
            lines[1],
            "  Break web -> api after rollout step 1 at 2500 ms"
        );
        assert!(!text.contains("--seed 1"), "{text}");
        assert!(text.ends_with(
            "  violation: safety: evil\n  replay: mesh-gitops simulate repo --seed 2\n"
        ));
    }

    #[test]
    fn a_denied_declared_upstream_carried_nothing_and_is_named_with_its_intention() {
        let sim = simulation(vec![denied(1)]);
        assert!(sim.failed());
        assert_eq!(
            render(&sim),
            "simulation: seed 1 trace 0123456789abcdef: 0 declared edge(s) carried traffic, 1 declared upstream(s) denied by the intentions, 1/2 probes refused as expected, 0 transient(s), 0 violation(s)\n  denied: web -> api: declared upstream denied, 3 of 3 request(s) refused by the intentions (Matched L4 intention: web -> api (precedence 9))\n  replay: mesh-gitops simulate repo --seed 1\n"
        );
    }

    #[test]
    fn a_skipped_simulation_says_why() {
        assert_eq!(
            render(&skipped()),
            "simulation: skipped (the repository declares no service with a sidecar)\n"
        );
    }
}
