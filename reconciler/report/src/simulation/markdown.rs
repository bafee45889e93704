//! `simulate --format markdown` and the "Simulation" section of `check`'s Markdown report: the
//! simulated rollout's transient breaks and openings first (what a reviewer must see), then the
//! violations and the command that replays the run.

use crate::escape::markdown as md_escape;
use mesh_check::Simulation;
use std::fmt::Write as _;

pub fn render(sim: &Simulation) -> String {
    let mut out = String::from("### Simulation\n\n");
    if let Some(why) = &sim.skipped {
        let _ = writeln!(out, "Skipped: {}.\n", md_escape(why));
        return out;
    }
    for r in &sim.reports {
        let (carried, refused) = mesh_check::counts(r);
        let _ = writeln!(
            out,
            "Seed `{}` (trace `{}`): {} declared edge(s) carried traffic over mTLS; {}{}/{} adversarial probes refused as expected; {} violation(s).\n",
            r.seed,
            r.trace_hash.get(..16).unwrap_or(&r.trace_hash),
            carried,
            super::denied_count(r).replace(", ", "; "),
            refused,
            r.probes.len(),
            r.violations.len()
        );
        if !r.transient.is_empty() {
            out.push_str("| during the rollout | source | destination | after step | at |\n|---|---|---|---|---|\n");
            for t in &r.transient {
                let _ = writeln!(
                    out,
                    "| {:?} | `{}` | `{}` | {} | {} ms |",
                    t.kind,
                    md_escape(&t.source),
                    md_escape(&t.destination),
                    t.step,
                    t.at_ms
                );
            }
            out.push('\n');
        }
        for t in super::target_lines(r) {
            let _ = writeln!(out, "- chain: {}", md_escape(&t));
        }
        for d in r.edges.iter().filter_map(|e| e.denial()) {
            let _ = writeln!(out, "- 🔴 denied: {}", md_escape(&d));
        }
        for d in r.targets.iter().filter_map(|t| t.denial()) {
            let _ = writeln!(out, "- 🔴 denied: {}", md_escape(&d));
        }
        for v in &r.violations {
            let _ = writeln!(out, "- 🔴 {}", md_escape(v));
        }
        // The replay command is there when it passes too: a reviewer can rerun the same run.
        let _ = writeln!(out, "\nReplay: `{}`\n", r.replay);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::simulation::fixture::{denied, report, simulation, skipped};

    #[test]
    fn transients_come_before_violations_and_the_replay_is_always_there() {
        let md = render(&simulation(vec![report(3, &["safety: a | b"])]));
        let table = md
            .find("| Break | `web` | `api` | 1 | 2500 ms |")
            .expect(&md);
        let violation = md.find("- 🔴 safety: a \\| b").expect(&md);
        assert!(table < violation);
        assert!(md.contains("Replay: `mesh-gitops simulate repo --seed 3`"));
        let passing = render(&simulation(vec![report(4, &[])]));
        assert!(passing.contains("Replay: `mesh-gitops simulate repo --seed 4`"));
    }

    #[test]
    fn a_denied_declared_upstream_is_in_the_summary_and_listed() {
        let md = render(&simulation(vec![denied(2)]));
        assert!(md.contains("0 declared edge(s) carried traffic over mTLS; 1 declared upstream(s) denied by the intentions; 1/2 adversarial probes"), "{md}");
        assert!(md.contains("- 🔴 denied: web -> api: declared upstream denied, 3 of 3 request(s) refused by the intentions (Matched L4 intention: web -> api (precedence 9))"), "{md}");
    }

    #[test]
    fn a_skipped_simulation_is_one_sentence() {
        assert_eq!(
            render(&skipped()),
            "### Simulation\n\nSkipped: the repository declares no service with a sidecar.\n\n"
        );
    }
}
