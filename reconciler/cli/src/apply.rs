//! `mesh-gitops plan` and `apply` over `mesh-apply`: the command-line target arguments, and the
//! wiring of the engine's events to `mesh-report`'s text.

use crate::exit::Exit;
use crate::progress::Progress;
use anyhow::Result;
use mesh_apply::{
    ApplyConfig, ApplyEvent, ApplyReport, Desired, Journal, Observed, Rollout, SavedOptions,
    SavedPlan, Vet,
};
use mesh_check::SimSettings;
use mesh_check::{GateFailure, GatePass};
use mesh_plan::Plan;
use mesh_report::apply::json::{ApplyRun, Gate};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    /// Write up to N independent steps of the plan at once (apply; default 8, 1: one after
    /// another). Dependencies and the make-before-break order still hold.
    #[arg(long, value_name = "N", value_parser = parse_parallelism)]
    pub parallelism: Option<usize>,
}

pub(crate) fn parse_parallelism(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a number of steps of at least 1")),
    }
}

impl From<&TargetArgs> for ApplyConfig {
    fn from(a: &TargetArgs) -> Self {
        ApplyConfig {
            consul: a.consul.clone(),
            state_dir: a.state_dir.clone(),
            adopt: a.adopt,
            allow_empty: a.allow_empty,
            max_deletes: a.max_deletes,
            parallelism: a.parallelism,
        }
    }
}

/// Connects to Consul or starts the embedded control plane (see [`mesh_apply::connect`]).
pub async fn connect(args: &TargetArgs, acl: mesh_model::AclSettings) -> Result<Target> {
    Ok(mesh_apply::connect(&args.into(), acl).await?)
}

/// What `plan` made for review: the plan, what reading Consul cost, the plan as `plan --out`
/// saves it, and with `simulate` (the repository's label) the rollout simulated from the live
/// state.
pub struct Reviewed {
    pub plan: Plan,
    pub stats: String,
    pub saved: SavedPlan,
    pub rollout: Option<mesh_check::Result<Option<mesh_check::LiveRollout>>>,
}

/// Observes the target, plans, and prepares the plan for review (see [`Reviewed`]).
pub async fn plan_for_review(
    loaded: &mesh_loader::Loaded,
    target: &Target,
    args: &TargetArgs,
    revision: Option<String>,
    simulate: Option<&str>,
) -> Result<Reviewed> {
    let options = SavedOptions {
        adopt: args.adopt,
        allow_empty: args.allow_empty,
        max_deletes: args.max_deletes,
    };
    let address = target.client.address().to_owned();
    // The rollout's traffic includes the services only Consul's catalog knows.
    let catalog = match simulate {
        Some(_) => mesh_apply::catalog_services(&target.client).await?,
        None => Vec::new(),
    };
    let also = |desired: &Desired, observed: &Observed, plan: &Plan| {
        let saved = SavedPlan::new(desired, observed, plan, options, revision.clone(), &address);
        let rollout = simulate.map(|label| {
            let r = Rollout {
                desired,
                observed,
                plan,
                catalog: &catalog,
            };
            mesh_check::simulate_live_rollout(&loaded.state, &r, label, &SimSettings::default())
        });
        (saved, rollout)
    };
    let (plan, stats, (saved, rollout)) =
        mesh_apply::make_plan_and(loaded, target, &args.into(), &also).await?;
    Ok(Reviewed {
        plan,
        stats: mesh_report::apply::text::stats(&stats),
        saved,
        rollout,
    })
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
    vet: Vet<'_>,
    out: &mut dyn std::io::Write,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<ApplyReport> {
    apply_lines(loaded, target, args, None, vet, out, stop, None).await
}

/// As [`apply_with`], with the steps done of the total drawn by `progress` (on a terminal);
/// with `saved`, that saved plan exactly, or nothing (see [`mesh_apply::apply_saved`]); every
/// plan is put to `vet` before its writes.
// The engine's inputs, the output and the progress; a struct for two callers would only
// rename them.
#[allow(clippy::too_many_arguments)]
pub async fn apply_lines(
    loaded: &mesh_loader::Loaded,
    target: &Target,
    args: &TargetArgs,
    saved: Option<&SavedPlan>,
    vet: Vet<'_>,
    out: &mut dyn std::io::Write,
    stop: &(dyn Fn() -> bool + Sync),
    mut progress: Option<&mut Progress>,
) -> Result<ApplyReport> {
    let mut written: std::io::Result<()> = Ok(());
    let mut journal = Journal::default();
    let mut events = |e: ApplyEvent<'_>| {
        journal.hear(&e);
        if let Some(p) = progress.as_deref_mut() {
            p.clear();
        }
        if let (Some(line), true) = (mesh_report::apply::text::event(&e), written.is_ok()) {
            written = writeln!(out, "{line}");
        }
        if let Some(p) = progress.as_deref_mut() {
            p.set(journal.done as u64, journal.total as u64);
        }
    };
    let report = match saved {
        Some(saved) => mesh_apply::apply_saved(loaded, target, saved, vet, stop, &mut events).await,
        None => {
            mesh_apply::apply_vetted(loaded, target, &args.into(), vet, stop, &mut events).await
        }
    };
    if let Some(p) = progress {
        p.clear();
    }
    // A failed write of the progress (a closed pipe) is reported as it was: before the result.
    written?;
    Ok(report?)
}

pub fn state_dir_note(target: &Target, dir: &Path) -> Option<String> {
    target
        .embedded
        .then(|| format!("(embedded control plane, state in {})", dir.display()))
}

/// `apply --format json`: the gate's outcome and every step, as one object on stdout (also when
/// the gate refuses or the apply fails; the exit code says which). Problems still go to stderr.
pub fn apply_json(
    loaded: &mesh_loader::Loaded,
    gate: &Result<GatePass, GateFailure>,
    args: &TargetArgs,
    saved: Option<&SavedPlan>,
    vet: Vet<'_>,
    skip_check: bool,
) -> Result<ExitCode> {
    let gate_view = match gate {
        Ok(pass) => Gate::Pass(pass),
        Err(failure) => Gate::Failed {
            failure,
            overridden: crate::gate::print_failure(failure, loaded, skip_check),
        },
    };
    let mut run = ApplyRun {
        loaded,
        gate: gate_view,
        target: None,
        journal: &Journal::default(),
        report: None,
        error: None,
    };
    if let Gate::Failed {
        overridden: false, ..
    } = run.gate
    {
        print(&run)?;
        return Ok(Exit::Error.into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut journal = Journal::default();
    let mut progress = Progress::new("applying", "step(s)");
    let mut address = None;
    let result: Result<ApplyReport> = runtime.block_on(async {
        let target = connect(args, loaded.state.settings.acl).await?;
        address = Some(target.client.address().to_owned());
        let mut events = |e: ApplyEvent<'_>| {
            journal.hear(&e);
            progress.set(journal.done as u64, journal.total as u64);
        };
        let config = args.into();
        Ok(match saved {
            Some(saved) => {
                mesh_apply::apply_saved(loaded, &target, saved, vet, &|| false, &mut events).await?
            }
            None => {
                mesh_apply::apply_vetted(loaded, &target, &config, vet, &|| false, &mut events)
                    .await?
            }
        })
    });
    progress.clear();
    let stale = result.as_ref().is_err_and(crate::saved::is_stale);
    let (report, error) = match result {
        Ok(report) => (Some(report), None),
        Err(e) => {
            journal.failed();
            (None, Some(format!("{e:#}")))
        }
    };
    run.target = address.as_deref();
    run.journal = &journal;
    run.report = report.as_ref();
    run.error = error.as_deref();
    print(&run)?;
    Ok(match &error {
        Some(e) => {
            eprintln!("mesh-gitops: {e}");
            if stale {
                Exit::Stale
            } else {
                Exit::Error
            }
        }
        None => Exit::Ok,
    }
    .into())
}

fn print(run: &ApplyRun<'_>) -> Result<()> {
    use std::io::Write as _;
    std::io::stdout()
        .lock()
        .write_all(mesh_report::apply::json::render(run).as_bytes())?;
    Ok(())
}
