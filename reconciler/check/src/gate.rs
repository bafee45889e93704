//! The gate `apply` and `reconcile` share before anything is written: the repository
//! validates, the analysis `check` runs finds no error, and the simulation of the declared mesh
//! (seed 1, no faults) finds no violation and no declared upstream denied. The outcome is data; callers render it.

use crate::{simulate, CheckError, SimSettings, Simulation};

use mesh_diagnostics::Diagnostic;
use mesh_loader::Loaded;

/// What passed: enough to say why an apply went ahead.
pub struct GatePass {
    /// Declared upstreams the analysis found (edges of the policy graph marked declared).
    pub declared_upstreams: usize,
    /// Findings below error severity.
    pub warnings: usize,
    /// The simulation that passed; `None` when it was not asked for.
    pub simulation: Option<Simulation>,
}

/// Why a repository may not be applied.
pub enum GateFailure {
    /// The repository does not validate: its error diagnostics, in load order.
    Invalid { errors: Vec<Diagnostic> },
    /// The analysis `check` runs found errors: those findings, sorted by location.
    Check { findings: Vec<Diagnostic> },
    /// The simulation ran and failed: violations, or a declared upstream the intentions denied.
    Simulation(Simulation),
    /// The simulation could not run.
    SimulationError(CheckError),
}

impl GateFailure {
    /// Whether the failure is one `apply --skip-check` may go past (everything but invalid
    /// input: nothing can be written from a repository that does not validate).
    pub fn skippable(&self) -> bool {
        !matches!(self, GateFailure::Invalid { .. })
    }
}

// `Simulation` holds whole traces; a failure's debug form names the case and its size only.
impl std::fmt::Debug for GateFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GateFailure::Invalid { errors } => {
                f.debug_struct("Invalid").field("errors", errors).finish()
            }
            GateFailure::Check { findings } => {
                f.debug_struct("Check").field("findings", findings).finish()
            }
            GateFailure::Simulation(sim) => f
                .debug_struct("Simulation")
                .field("reports", &sim.reports.len())
                .field("failed", &sim.failed())
                .finish(),
            GateFailure::SimulationError(e) => f.debug_tuple("SimulationError").field(e).finish(),
        }
    }
}

/// Runs the gate on a loaded repository. With `simulate` false (`apply --skip-check`) the
/// simulation is not run. `repo` names the repository in the simulation's replay command.
pub fn gate(loaded: &Loaded, repo: &str, simulate_mesh: bool) -> Result<GatePass, GateFailure> {
    if loaded.has_errors() {
        return Err(GateFailure::Invalid {
            errors: loaded
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .cloned()
                .collect(),
        });
    }
    let analysis = mesh_analysis::analyze(&loaded.state, &loaded.guardrail_files);
    if analysis.has_errors() {
        return Err(GateFailure::Check {
            findings: analysis
                .findings
                .into_iter()
                .filter(Diagnostic::is_error)
                .collect(),
        });
    }
    let mut pass = GatePass {
        declared_upstreams: analysis.edges.iter().filter(|e| e.declared).count(),
        warnings: analysis.findings.len(),
        simulation: None,
    };
    if !simulate_mesh {
        return Ok(pass);
    }
    match simulate(&loaded.state, None, repo, &SimSettings::default()) {
        Ok(sim) if sim.failed() => Err(GateFailure::Simulation(sim)),
        Ok(sim) => {
            pass.simulation = Some(sim);
            Ok(pass)
        }
        Err(e) => Err(GateFailure::SimulationError(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(dir: &Path) -> Loaded {
        mesh_loader::load_dir(dir, &Default::default())
    }

    fn example(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name)
    }

    #[test]
    fn a_valid_repository_passes_with_its_counts_and_simulation() {
        let loaded = load(&example("countdash"));
        let pass = gate(&loaded, "countdash", true).expect("countdash passes");
        assert_eq!(pass.declared_upstreams, 1);
        let sim = pass.simulation.expect("the simulation ran");
        assert!(!sim.failed());
        assert_eq!(sim.reports.len(), 1);
        let pass = gate(&loaded, "countdash", false).expect("countdash passes");
        assert!(pass.simulation.is_none());
    }

    #[test]
    fn invalid_input_fails_with_its_diagnostics_and_cannot_be_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mesh-gitops.hcl"), "owner = \"t\"\n").unwrap();
        std::fs::write(
            dir.path().join("bad.hcl"),
            "Kind = \"service-intentions\"\nName = \n",
        )
        .unwrap();
        let loaded = load(dir.path());
        match gate(&loaded, "bad", true) {
            Err(f @ GateFailure::Invalid { .. }) => {
                assert!(!f.skippable());
                let GateFailure::Invalid { errors } = f else {
                    unreachable!()
                };
                assert!(!errors.is_empty());
                assert!(errors.iter().all(Diagnostic::is_error));
            }
            Err(other) => panic!("expected an invalid repository, got {other:?}"),
            Ok(_) => panic!("an invalid repository passed the gate"),
        }
    }
}
