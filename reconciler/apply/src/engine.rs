//! The apply loop: observe, plan, read the secrets, claim names, run the steps; on a conflict,
//! record what was done and start over from a fresh read, at most five rounds.

use crate::ledger::Ledger;
use crate::steps::{run_steps, Outcome, StepContext};
use crate::{observe, plan_of, ApplyConfig, ApplyError, Desired, Result, Target};
use crate::{Rollout, SavedPlan};
use mesh_plan::{Plan, Refusal, Step};

/// Rounds of observe-plan-write before giving up on a control plane that keeps changing.
const ROUNDS: usize = 5;

/// What an apply did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ApplyReport {
    /// Writes to Consul objects.
    pub writes: usize,
    /// CAS conflicts (or moved ACL/CA objects) that made it re-read and re-plan.
    pub conflicts: usize,
    /// It stopped at a step boundary because `stop` said so; what was done is recorded.
    pub stopped: bool,
    /// Declared objects the last plan could not bring to the repository's state (owned
    /// elsewhere, or unowned and different): the repository is not reached.
    pub blocked: usize,
}

/// What an apply tells as it goes, in order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ApplyEvent<'a> {
    /// An object the first plan leaves alone, and why.
    Refused(&'a Refusal),
    /// The first plan has this many steps (told only when there is something to do).
    Planned { steps: usize },
    /// This step is about to be carried out; `Applied` or `Conflict` follows, unless the
    /// apply fails on it.
    Started(&'a Step),
    /// A step was carried out (a write, or an inventory record).
    Applied(&'a Step),
    /// This step found its object changed in Consul; the apply re-reads.
    Conflict(&'a Step),
    /// After a conflict, the new plan has this many steps left.
    Replanned { steps: usize },
}

/// A check of each plan before its first write (the rollout simulated from the live state):
/// `Err(why)` refuses it, and nothing of that plan is written.
pub type Vet<'v> = &'v (dyn Fn(&Rollout<'_>) -> std::result::Result<(), String> + Sync);

/// Applies the repository to the target step by step, asking `stop` before every step: when
/// it answers `true`, the inventory is flushed and the apply returns with `stopped` (a later
/// apply converges from there). `events` hears what happens as it happens.
pub async fn apply(
    loaded: &mesh_loader::Loaded,
    target: &Target,
    config: &ApplyConfig,
    stop: &(dyn Fn() -> bool + Sync),
    events: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<ApplyReport> {
    apply_vetted(loaded, target, config, &|_| Ok(()), stop, events).await
}

/// As [`apply`], with every plan (the first, and each after a conflict) put to `vet` before
/// its writes; a refusal stops the apply with [`ApplyError::Vetoed`].
pub async fn apply_vetted(
    loaded: &mesh_loader::Loaded,
    target: &Target,
    config: &ApplyConfig,
    vet: Vet<'_>,
    stop: &(dyn Fn() -> bool + Sync),
    events: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<ApplyReport> {
    let desired = Desired::of(loaded);
    let client = &target.client;
    let mut report = ApplyReport::default();
    for round in 0..ROUNDS {
        if stop() {
            report.stopped = true;
            return Ok(report);
        }
        let observed = observe(client, &desired).await?;
        let plan = plan_of(&desired, &observed, config)?;
        if round == 0 {
            plan.refused
                .iter()
                .for_each(|r| events(ApplyEvent::Refused(r)));
        }
        report.blocked = plan.blocked().count();
        let mut ledger = Ledger::new(&desired, &observed);
        if plan.steps.is_empty() {
            ledger.flush(client).await?;
            return Ok(report);
        }
        let catalog = crate::live::read_catalog(client, &plan).await?;
        vet(&Rollout {
            desired: &desired,
            observed: &observed,
            plan: &plan,
            catalog: &catalog,
        })
        .map_err(ApplyError::Vetoed)?;
        events(if round == 0 {
            ApplyEvent::Planned {
                steps: plan.steps.len(),
            }
        } else {
            ApplyEvent::Replanned {
                steps: plan.steps.len(),
            }
        });
        let (n, outcome) =
            write_round(&plan, &desired, &mut ledger, client, config, stop, events).await?;
        report.writes += n;
        match outcome {
            Outcome::Done => return Ok(report),
            Outcome::Stopped => {
                report.stopped = true;
                return Ok(report);
            }
            Outcome::Conflict(steps) => {
                report.conflicts += steps.len();
                steps
                    .iter()
                    .for_each(|&i| events(ApplyEvent::Conflict(&plan.steps[i])));
            }
        }
    }
    Err(ApplyError::KeptChanging)
}

/// One round of writes: the secrets read, the names claimed, the steps run, and what was done
/// recorded in the inventory whatever happened.
async fn write_round(
    plan: &Plan,
    desired: &Desired,
    ledger: &mut Ledger,
    client: &mesh_consul::Client,
    config: &ApplyConfig,
    stop: &(dyn Fn() -> bool + Sync),
    events: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<(usize, Outcome)> {
    let secrets = crate::secrets::secrets_for(plan, desired)?;
    if ledger.claim_creates(plan) {
        ledger.flush(client).await?;
    }
    let cx = StepContext {
        desired,
        entries: desired
            .entries
            .iter()
            .map(|e| ((e.kind(), e.name()), e))
            .collect(),
        secrets: &secrets,
        client,
        parallelism: config.parallelism.unwrap_or(crate::DEFAULT_PARALLELISM),
    };
    // Whatever happened, what was done is recorded.
    let result = run_steps(plan, &cx, ledger, stop, events).await;
    let flushed = ledger.flush(client).await;
    let done = result?;
    flushed?;
    Ok(done)
}

/// Applies a saved plan exactly, or nothing: Consul is read again and the plan made again from
/// the repository; unless the repository is the one the plan was made from, every object the
/// plan was read against has the index it had, and the new plan is the saved one, nothing is
/// written ([`ApplyError::Stale`]). Then its steps run once, in order, without re-planning: a
/// step that finds its object moved in the meantime stops the apply there
/// ([`ApplyError::MovedDuringApply`]), with what was written before it recorded.
pub async fn apply_saved(
    loaded: &mesh_loader::Loaded,
    target: &Target,
    saved: &SavedPlan,
    vet: Vet<'_>,
    stop: &(dyn Fn() -> bool + Sync),
    events: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<ApplyReport> {
    let config = ApplyConfig {
        adopt: saved.options.adopt,
        allow_empty: saved.options.allow_empty,
        max_deletes: saved.options.max_deletes,
        ..ApplyConfig::default()
    };
    let desired = Desired::of(loaded);
    let client = &target.client;
    let observed = observe(client, &desired).await?;
    let plan = plan_of(&desired, &observed, &config)?;
    if let Some(stale) = saved.staleness(&desired, &observed, &plan) {
        return Err(ApplyError::Stale(stale));
    }
    plan.refused
        .iter()
        .for_each(|r| events(ApplyEvent::Refused(r)));
    let mut report = ApplyReport {
        blocked: plan.blocked().count(),
        ..ApplyReport::default()
    };
    let mut ledger = Ledger::new(&desired, &observed);
    if plan.steps.is_empty() {
        ledger.flush(client).await?;
        return Ok(report);
    }
    let catalog = crate::live::read_catalog(client, &plan).await?;
    vet(&Rollout {
        desired: &desired,
        observed: &observed,
        plan: &plan,
        catalog: &catalog,
    })
    .map_err(ApplyError::Vetoed)?;
    events(ApplyEvent::Planned {
        steps: plan.steps.len(),
    });
    let (n, outcome) =
        write_round(&plan, &desired, &mut ledger, client, &config, stop, events).await?;
    report.writes = n;
    match outcome {
        Outcome::Done => Ok(report),
        Outcome::Stopped => {
            report.stopped = true;
            Ok(report)
        }
        Outcome::Conflict(steps) => {
            steps
                .iter()
                .for_each(|&i| events(ApplyEvent::Conflict(&plan.steps[i])));
            // The first step (in the plan's order) that found its object moved names the stop.
            let first = steps.iter().copied().min().unwrap_or_default();
            let s = &plan.steps[first];
            Err(ApplyError::MovedDuringApply {
                kind: s.kind.clone(),
                name: s.name.clone(),
                written: n,
            })
        }
    }
}
