//! The reconcile loop behind `mesh-gitops reconcile`: it fetches a git branch, and for each new
//! head commit loads the repository from the object database, verifies the signature (when
//! keys are trusted), passes it through the gate `apply` uses, and applies it. Between commits
//! it keeps Consul at the last applied revision: every interval, and whenever a blocking query
//! on an owned kind or the inventory sees a change, it plans again, and a non-empty plan
//! without a new commit is drift, healed unless self-heal is off.
//!
//! Level-triggered: every pass compares the whole desired state with what Consul holds, so a
//! missed event costs only time. Only the replica holding the leader lock plans to write; work
//! stops at a step boundary when a newer commit arrives, the lock is lost, the pass runs out
//! of time or the process is asked to stop.
//!
//! The decisions ([`Reconciler`]) are separate from the world: commits come through a
//! [`Source`], the gate, plan and apply through an [`Applier`], the status record goes to a
//! [`StatusSink`], and time is a [`Clock`]. [`run`] wires them to git, Consul and tokio.

mod applier;
mod backoff;
mod clock;
mod driver;
mod leader;
mod machine;
pub mod notify;
pub mod signing;
pub mod source;
pub mod status;
pub mod suspend;
mod watch;
pub mod webhook;

pub use applier::{Applied, Applier};
pub use clock::{Clock, SystemClock};
pub use driver::{drive, run};
pub use leader::Lease;
pub use machine::{
    summarize, watched_paths, Config, Effects, Inputs, Next, PassResult, Reconciler, Turn,
};
pub use source::{CommitFiles, GitSource, Signed, Source, SourceError};
pub use status::{KvStatus, Shared, Status, StatusSink};
pub use watch::{Watchers, Watches};

/// Why the loop could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A task reading or gating a commit did not finish (it panicked or was cancelled).
    #[error("the task reading the commit failed")]
    Task(#[from] tokio::task::JoinError),
}

/// An error and its causes, `: `-separated (as `anyhow` prints with `{:#}`).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
