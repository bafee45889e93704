//! Why an apply (or the reading and planning before it) stopped.

use mesh_consul::ConsulError;
use mesh_plan::{ObjectKind, PlanError};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The client settings (`--consul`, the consul CLI's environment) are unusable.
    #[error(transparent)]
    Settings(ConsulError),
    #[error("cannot create {}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the embedded control plane in {}", path.display())]
    ControlPlane {
        path: PathBuf,
        #[source]
        source: mesh_control_plane::ServeError,
    },
    /// The embedded control plane's management token.
    #[error("cannot read {}", path.display())]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A read while observing; `what` names it (`cannot list mesh entries`).
    #[error("{what}")]
    Read {
        what: String,
        #[source]
        source: ConsulError,
    },
    #[error("cannot list {kind} objects")]
    AclList {
        kind: &'static str,
        #[source]
        source: AclListError,
    },
    #[error("the inventory {key} is unreadable ({reason}); refusing to plan without knowing what is owned")]
    InventoryUnreadable { key: String, reason: String },
    #[error("the inventory {key} became unreadable during the apply ({reason})")]
    InventoryCorrupted { key: String, reason: String },
    #[error("cannot write the inventory {key}")]
    InventoryWrite {
        key: String,
        #[source]
        source: ConsulError,
    },
    #[error("the inventory {key} kept changing; gave up after 5 attempts")]
    InventoryContended { key: String },
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Names the source only; the value is never part of an error.
    #[error("the secret source env:{0} is not set")]
    SecretUnset(String),
    #[error("cannot read the secret source file:{path}")]
    SecretUnreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {kind} \"{name}\"")]
    Step {
        kind: ObjectKind,
        name: String,
        #[source]
        source: StepError,
    },
    #[error(
        "Consul kept changing under the apply; gave up after 5 rounds without overwriting anything"
    )]
    KeptChanging,
    #[error(transparent)]
    Consul(#[from] ConsulError),
    /// The plan was refused before its first write (the rollout simulated from the live state
    /// breaks a kept edge); nothing of it was written.
    #[error("nothing applied: {0}")]
    Vetoed(String),
    /// `apply --plan`: the saved plan no longer applies; nothing was written.
    #[error("the saved plan is stale, nothing written: {0}")]
    Stale(crate::Stale),
    /// `apply --plan`: a step found its object changed between the check and its write.
    #[error("Consul changed during the apply: {kind} \"{name}\" moved before it was written; {written} earlier write(s) were made and recorded, nothing was overwritten; make a new plan")]
    MovedDuringApply {
        kind: ObjectKind,
        name: String,
        written: usize,
    },
}

/// Listing ACL objects failed; a 401 means Consul's ACL system is off.
#[derive(Debug, thiserror::Error)]
pub enum AclListError {
    // The Consul error is shown, not chained: the help line must follow it.
    #[error("{0}\n  = help: the repository declares ACL objects but Consul's ACL system is disabled; enable ACLs or remove the acl-* files")]
    Disabled(ConsulError),
    #[error(transparent)]
    Consul(ConsulError),
}

impl From<ConsulError> for AclListError {
    fn from(e: ConsulError) -> Self {
        match e {
            ConsulError::Status { status: 401, .. } => AclListError::Disabled(e),
            e => AclListError::Consul(e),
        }
    }
}

/// Why one step could not be written.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Consul(#[from] ConsulError),
    #[error("a planned object is missing from the repository")]
    NotDeclared,
    #[error("the token was not claimed before its creation")]
    Unclaimed,
    #[error("a planned {0} without an ID")]
    NoId(&'static str),
}
