//! The apply engine behind `mesh-gitops plan`, `apply` and `reconcile`: config entries, ACL
//! policies, roles and tokens, and the CA configuration, against Consul (`--consul` or the
//! consul CLI's environment) or the embedded control plane started in-process.
//!
//! Reading is a handful of requests ([`observe`]): one list per config-entry kind, one per ACL
//! object type (only when the repository or the inventory has ACL objects), the inventory, and
//! the CA configuration when declared. Writing follows the plan's order; config entries carry
//! `?cas=`, ACL objects and the CA configuration (whose API has no CAS) are re-read just before
//! they are written and skipped into a re-plan if their ModifyIndex moved. The inventory is
//! written with CAS, claims before creates, and always flushed, so a killed apply converges on
//! the next run.
//!
//! Nothing here prints: [`apply`] reports what it does as [`ApplyEvent`]s and returns an
//! [`ApplyReport`]; the caller renders both.

mod engine;
mod error;
mod hcl_out;
pub mod import;
mod journal;
mod ledger;
mod live;
mod observe;
mod saved;
mod secrets;
mod steps;
mod target;
mod waves;

pub use engine::{apply, apply_saved, apply_vetted, ApplyEvent, ApplyReport, Vet};
pub use error::{AclListError, ApplyError, StepError};
pub use journal::{Journal, StepOutcome, StepRecord};
pub use live::{
    after_writes, catalog_services, entry_writes, live_base, writes_intentions, EntryWrite, Rollout,
};
pub use observe::{make_plan, make_plan_and, observe, plan_of, Desired, Observed, PlanStats};
pub use saved::{
    live_indexes, live_state_hash, repository_digest, SavedConsul, SavedOptions, SavedPlan,
    SavedPlanError, SavedRepository, Stale,
};
pub use target::{connect, connect_with_env, Target};
pub use waves::DEFAULT_PARALLELISM;

use std::path::PathBuf;

/// Where to apply, and what the plan may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyConfig {
    /// Consul's address; else `CONSUL_HTTP_ADDR`; with neither, the embedded control plane.
    pub consul: Option<String>,
    /// The embedded control plane's state directory.
    pub state_dir: PathBuf,
    /// Take over existing unowned objects: config entries whatever their content (the
    /// repository's fields are written), ACL objects when identical.
    pub adopt: bool,
    /// Allow a plan that deletes every object mesh-gitops owns.
    pub allow_empty: bool,
    /// Refuse a plan that deletes more objects than this (before anything is written).
    pub max_deletes: Option<usize>,
    /// Steps written at once where the plan allows it; `None`: [`DEFAULT_PARALLELISM`], `1`:
    /// one after another.
    pub parallelism: Option<usize>,
}

pub type Result<T, E = ApplyError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
