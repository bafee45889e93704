//! What the loop asks of the apply engine: the gate, a plan against what Consul holds, and an
//! apply that stops at a step boundary when asked. The binary implements it with the engine
//! `mesh-gitops apply` uses, so the loop and a manual apply cannot disagree.

use mesh_loader::Loaded;
use mesh_plan::Plan;
use std::future::Future;

pub trait Applier: Send + Sync + 'static {
    /// Shown in the status with `{:#}` (the whole chain of causes).
    type Error: std::fmt::Display;

    /// The gate `apply` uses (validation, check, simulation). Blocking; the loop calls it off
    /// the async workers. `Err`: why the commit is refused, as the status shows it.
    fn gate(&self, loaded: &Loaded) -> Result<(), String>;

    /// What must change in Consul for it to hold `loaded`.
    fn plan(&self, loaded: &Loaded) -> impl Future<Output = Result<Plan, Self::Error>>;

    /// Applies `loaded`, asking `stop` before every step; each line of progress is pushed to
    /// `log`, also when the apply fails.
    fn apply(
        &self,
        loaded: &Loaded,
        stop: &(dyn Fn() -> bool + Sync),
        log: &mut Vec<String>,
    ) -> impl Future<Output = Result<Applied, Self::Error>>;
}

/// What an apply did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Writes to Consul objects.
    pub writes: usize,
    /// Concurrent changes that made it re-read and re-plan.
    pub conflicts: usize,
    /// It stopped at a step boundary because `stop` said so.
    pub stopped: bool,
}
