//! `apply`'s report of a refusing gate on stderr; the texts are `mesh_report::gate::text`'s.

use mesh_check::GateFailure;
use mesh_loader::Loaded;
use mesh_report::gate::text::simulation_text;

/// Prints a failure as `apply` does, on stderr. Whether the apply may go ahead: only past a
/// failing check or simulation, and only with `--skip-check`.
pub fn print_failure(failure: &GateFailure, loaded: &Loaded, skip_check: bool) -> bool {
    let (what, skip_hint) = match failure {
        GateFailure::Invalid { .. } => {
            eprintln!("mesh-gitops: nothing applied: the repository does not validate");
            return false;
        }
        GateFailure::Check { findings } => {
            for f in findings {
                eprint!("{}", mesh_diagnostics::render_text(f, &loaded.sources));
            }
            (
                "check fails",
                " (run `mesh-gitops check` for the report, or pass --skip-check)",
            )
        }
        GateFailure::Simulation(_) | GateFailure::SimulationError(_) => {
            eprint!("{}", simulation_text(failure).unwrap_or_default());
            (
                "the simulation failed",
                " (pass --skip-check to apply anyway)",
            )
        }
    };
    if skip_check {
        eprintln!("mesh-gitops: WARNING: applying although {what} (--skip-check)");
    } else {
        eprintln!("mesh-gitops: nothing applied: {what}{skip_hint}");
    }
    skip_check
}
