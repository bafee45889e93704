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
            let first = sim.reports.iter().flat_map(|r| &r.violations).next();
            match first {
                Some(v) => format!(
                    "the simulation found violations: {}",
                    format!("violation: {v}")
                        .lines()
                        .next()
                        .unwrap_or("")
                        .trim()
                ),
                None => "the simulation found violations".to_owned(),
            }
        }
        GateFailure::SimulationError(e) => {
            let line = format!("violation: the simulation could not run: {e}");
            format!("the simulation found violations: {}", line.trim())
        }
    }
}
