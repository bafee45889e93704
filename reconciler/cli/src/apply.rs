//! `mesh-gitops plan` and `apply` over `mesh-apply`: the command-line target arguments, and the
//! wiring of the engine's events to `mesh-report`'s text.

use anyhow::Result;
use mesh_apply::{ApplyConfig, ApplyEvent, ApplyReport};
use mesh_plan::Plan;
use std::path::{Path, PathBuf};

pub use mesh_apply::Target;

#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Consul's address (else CONSUL_HTTP_ADDR; with neither, the embedded control plane).
    #[arg(long, value_name = "URL")]
    pub consul: Option<String>,
    /// The embedded control plane's state directory.
    #[arg(long, default_value = ".mesh-gitops")]
    pub state_dir: PathBuf,
    /// Take over existing unowned objects: config entries even when they differ (the plan
    /// shows the fields written), ACL objects when identical. Never another owner's.
    #[arg(long)]
    pub adopt: bool,
    /// Allow a plan that deletes every object mesh-gitops owns.
    #[arg(long)]
    pub allow_empty: bool,
    /// Refuse a plan that deletes more than N objects (nothing is written).
    #[arg(long, value_name = "N")]
    pub max_deletes: Option<usize>,
}

impl From<&TargetArgs> for ApplyConfig {
    fn from(a: &TargetArgs) -> Self {
        ApplyConfig {
            consul: a.consul.clone(),
            state_dir: a.state_dir.clone(),
            adopt: a.adopt,
            allow_empty: a.allow_empty,
            max_deletes: a.max_deletes,
        }
    }
}

/// Connects to Consul or starts the embedded control plane (see [`mesh_apply::connect`]).
pub async fn connect(args: &TargetArgs, acl: mesh_model::AclSettings) -> Result<Target> {
    Ok(mesh_apply::connect(&args.into(), acl).await?)
}

/// A plan, and what reading Consul cost (as `mesh_report::apply::text::stats` says it).
pub async fn make_plan(
    loaded: &mesh_loader::Loaded,
    target: &Target,
    args: &TargetArgs,
) -> Result<(Plan, String)> {
    let (plan, stats) = mesh_apply::make_plan(loaded, target, &args.into()).await?;
    Ok((plan, mesh_report::apply::text::stats(&stats)))
}

/// Applies the repository, writing its progress to `out` line by line and asking `stop` before
/// every step (see [`mesh_apply::apply`]).
pub async fn apply_with(
    loaded: &mesh_loader::Loaded,
    target: &Target,
    args: &TargetArgs,
    out: &mut dyn std::io::Write,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<ApplyReport> {
    let mut written: std::io::Result<()> = Ok(());
    let mut events = |e: ApplyEvent<'_>| {
        if written.is_ok() {
            written = writeln!(out, "{}", mesh_report::apply::text::event(&e));
        }
    };
    let report = mesh_apply::apply(loaded, target, &args.into(), stop, &mut events).await;
    // A failed write of the progress (a closed pipe) is reported as it was: before the result.
    written?;
    Ok(report?)
}

pub fn state_dir_note(target: &Target, dir: &Path) -> Option<String> {
    target
        .embedded
        .then(|| format!("(embedded control plane, state in {})", dir.display()))
}
