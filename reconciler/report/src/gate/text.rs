//! The gate's outcome ([`mesh_check::gate`]) as text: the summary `apply` prints when it goes
//! ahead, the simulation's failure it prints on stderr, and the one-line reason `reconcile`
//! records.

use mesh_check::{GateFailure, GatePass};
use mesh_loader::Loaded;

/// What passed: the analysis counts, then the simulation's summary when it ran.
pub fn summary(pass: &GatePass) -> String {
    let check = format!(
        "check: pass ({} declared upstream(s), {} warning(s))",
        pass.declared_upstreams, pass.warnings
    );
    match &pass.simulation {
        Some(sim) => format!(
            "{check}\n{}",
            crate::simulation::text::render(sim).trim_end()
        ),
        None => check,
    }
}

pub fn invalid_reason(errors: usize) -> String {
    format!("the repository does not validate ({errors} error(s))")
}

/// The simulation's failure as `apply` prints it: its summary, or why it could not run.
pub fn simulation_text(failure: &GateFailure) -> Option<String> {
    match failure {
        GateFailure::Simulation(sim) => Some(crate::simulation::text::render(sim)),
        GateFailure::SimulationError(e) => {
            Some(format!("violation: the simulation could not run: {e}\n"))
        }
        _ => None,
    }
}

/// One line: why the gate refused.
pub fn reason(failure: &GateFailure, loaded: &Loaded) -> String {
    match failure {
        GateFailure::Invalid { errors } => invalid_reason(errors.len()),
        GateFailure::Check { findings } => {
            let mut out = format!("check fails ({} error finding(s))", findings.len());
            if let Some(first) = findings.first() {
                let text = mesh_diagnostics::render_text(first, &loaded.sources);
                out.push_str(": ");
                out.push_str(text.lines().next().unwrap_or("").trim());
            }
            out
        }
        GateFailure::Simulation(sim) => {
            // A denied declared upstream first, worded as `simulate` words it.
            let denied = sim
                .reports
                .iter()
                .flat_map(|r| r.edges.iter().filter_map(|e| e.denial()))
                .next();
            let first = sim.reports.iter().flat_map(|r| &r.violations).next();
            match (denied, first) {
                (Some(d), _) => format!("the simulation found a denied declared upstream: {d}"),
                (None, Some(v)) => format!(
                    "the simulation found violations: {}",
                    format!("violation: {v}")
                        .lines()
                        .next()
                        .unwrap_or("")
                        .trim()
                ),
                (None, None) => "the simulation found violations".to_owned(),
            }
        }
        GateFailure::SimulationError(e) => {
            let line = format!("violation: the simulation could not run: {e}");
            format!("the simulation found violations: {}", line.trim())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reason;
    use crate::simulation::fixture::{denied, report, simulation};
    use mesh_check::GateFailure;

    #[test]
    fn a_refusal_names_the_denied_declared_upstream_as_simulate_does() {
        let loaded = mesh_loader::load_files(Vec::new(), &mesh_loader::LoadOptions::default());
        let failure = GateFailure::Simulation(simulation(vec![denied(1)]));
        assert_eq!(
            reason(&failure, &loaded),
            "the simulation found a denied declared upstream: web -> api: declared upstream denied, 3 of 3 request(s) refused by the intentions (Matched L4 intention: web -> api (precedence 9))"
        );
        let failure = GateFailure::Simulation(simulation(vec![report(1, &["safety: x\ny"])]));
        assert_eq!(
            reason(&failure, &loaded),
            "the simulation found violations: violation: safety: x"
        );
    }
}
