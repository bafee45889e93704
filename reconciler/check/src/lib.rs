//! The check pipeline behind `check`, `simulate` and the apply gate: load and validate a
//! repository, analyse who can reach whom, compare with a base (a directory, or a git revision
//! read from the object database without a checkout), and simulate the mesh and its rollout.
//! Results are data; rendering them is `mesh-report`'s work.

pub mod gate;
mod git;
pub mod live;
mod rollout;
mod simulation;
mod sweep;

pub use gate::{gate, GateFailure, GatePass};
pub use git::{
    default_base, files_at_revision, files_in_tree, head_revision, BaseSpec, DefaultBase,
};
pub use live::{check_live, Live};
pub use rollout::{simulate_live_rollout, LiveRollout};
pub use simulation::{
    counts, rollout_steps, simulate, simulate_steps, simulate_with, SimSettings, Simulation,
};
pub use sweep::default_workers;

use mesh_analysis::{Analysis, ReachDiff};
use mesh_diagnostics::{Diagnostic, SourceMap};
use mesh_loader::{LoadOptions, Loaded};
use std::path::{Path, PathBuf};

/// Why the pipeline could not run (as opposed to a repository that does not pass).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The base revision cannot be found or read; `what` says which step failed.
    #[error("--base {rev}: {what}")]
    Base {
        rev: String,
        what: String,
        #[source]
        source: git2::Error,
    },
    /// Reading the files of the base revision failed.
    #[error("--base {rev}")]
    InRevision {
        rev: String,
        #[source]
        source: Box<CheckError>,
    },
    #[error("cannot resolve {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Git(#[from] git2::Error),
    #[error("cannot read a file: {0}")]
    Blob(git2::Error),
    #[error("{prefix} is not a directory")]
    NotADirectory {
        prefix: String,
        #[source]
        source: git2::Error,
    },
    #[error(transparent)]
    Sim(#[from] mesh_sim::SimError),
}

pub type Result<T, E = CheckError> = std::result::Result<T, E>;

/// The other side of a comparison.
pub struct Base {
    pub label: String,
    pub loaded: Loaded,
    pub analysis: Analysis,
}

pub struct CheckResult {
    pub head: Loaded,
    pub analysis: Analysis,
    pub base: Option<Base>,
    pub diff: Option<ReachDiff>,
    /// The simulation, unless skipped (`--no-sim`).
    pub simulation: Option<Simulation>,
    /// With `--consul`: the live mesh the base was read from ([`check_live`]).
    pub live: Option<Live>,
}

impl CheckResult {
    pub fn failed(&self) -> bool {
        self.analysis.has_errors() || self.simulation.as_ref().is_some_and(|s| s.failed())
    }
}

/// Loads `dir` and, if given, the base; `Err` only for IO and git failures.
pub fn run(
    dir: &Path,
    base: Option<&BaseSpec>,
    options: &LoadOptions,
) -> Result<Result<CheckResult, Loaded>> {
    let head = mesh_loader::load_dir(dir, options);
    if head.has_errors() {
        return Ok(Err(head));
    }
    let analysis = mesh_analysis::analyze(&head.state, &head.guardrail_files);
    let base = match base {
        None => None,
        Some(spec) => {
            let loaded = load_base(dir, &spec.rev, options)?;
            let analysis = mesh_analysis::analyze(&loaded.state, &loaded.guardrail_files);
            Some(Base {
                label: spec.label.clone(),
                loaded,
                analysis,
            })
        }
    };
    let diff = base.as_ref().map(|b| {
        let mut d = mesh_analysis::diff(&b.analysis.graph, &analysis.graph);
        // Edges routing changes open or close (a new split target, a removed failover).
        let routed =
            mesh_analysis::chains::routed_diff(&b.analysis.chain_edges, &analysis.chain_edges);
        d.opened.extend(routed.opened);
        d.closed.extend(routed.closed);
        d
    });
    Ok(Ok(CheckResult {
        head,
        analysis,
        base,
        diff,
        simulation: None,
        live: None,
    }))
}

/// A directory if one exists at `spec`, otherwise a revision of the git repository holding `dir`.
fn load_base(dir: &Path, spec: &str, options: &LoadOptions) -> Result<Loaded> {
    let as_dir = PathBuf::from(spec);
    if as_dir.is_dir() {
        return Ok(mesh_loader::load_dir(&as_dir, options));
    }
    let files = files_at_revision(dir, spec)?;
    Ok(mesh_loader::load_files(files, options))
}

/// A finding's location, relative to the repository root.
pub fn location(d: &Diagnostic, sources: &SourceMap) -> Option<(String, u32, u32, u32, u32)> {
    let s = d.span?;
    if s.file.0 as usize >= sources.len() {
        return None;
    }
    let loc = sources.location(s);
    let (el, ec) = sources.line_col(s.file, s.end);
    Some((loc.file, loc.line, loc.column, el, ec))
}
