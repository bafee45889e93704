//! The apply loop: observe, plan, read the secrets, claim names, run the steps; on a conflict,
//! record what was done and start over from a fresh read, at most five rounds.

use crate::ledger::Ledger;
use crate::steps::{run_steps, Outcome, StepContext};
use crate::{observe, plan_of, ApplyConfig, ApplyError, Desired, Result, Target};
use mesh_plan::{Refusal, Step};

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
        events(if round == 0 {
            ApplyEvent::Planned {
                steps: plan.steps.len(),
            }
        } else {
            ApplyEvent::Replanned {
                steps: plan.steps.len(),
            }
        });
        let secrets = crate::secrets::secrets_for(&plan, &desired)?;
        if ledger.claim_creates(&plan) {
            ledger.flush(client).await?;
        }
        let cx = StepContext {
            desired: &desired,
            entries: desired
                .entries
                .iter()
                .map(|e| ((e.kind(), e.name()), e))
                .collect(),
            secrets: &secrets,
            client,
            parallelism: config.parallelism.unwrap_or(crate::DEFAULT_PARALLELISM),
        };
        let result = run_steps(&plan, &cx, &mut ledger, stop, events).await;
        // Whatever happened, what was done is recorded.
        let flushed = ledger.flush(client).await;
        let (n, outcome) = result?;
        flushed?;
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
