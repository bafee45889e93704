//! What an apply did, step by step, as data: [`Journal`] listens to the [`ApplyEvent`]s and
//! keeps every step with how it ended and how long it took (`apply --format json` renders it),
//! and the steps done of the total (the progress on a terminal).

use crate::ApplyEvent;
use mesh_plan::{Action, ObjectKind, Refusal};
use std::time::{Duration, Instant};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Written (or recorded in the inventory).
    Applied,
    /// Consul had changed the object; the apply re-read and re-planned.
    Conflict,
    /// The apply failed on this step (the error says why).
    Failed,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Applied => "applied",
            StepOutcome::Conflict => "conflict",
            StepOutcome::Failed => "failed",
        }
    }
}

/// One step as it went.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub action: Action,
    pub kind: ObjectKind,
    pub name: String,
    pub outcome: StepOutcome,
    /// The ModifyIndex the step required (`0`: a create).
    pub cas: u64,
    pub elapsed: Duration,
}

/// The steps of one apply, in order, and the objects it refused.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    pub steps: Vec<StepRecord>,
    pub refused: Vec<Refusal>,
    /// Steps done (applied) and the total: the first plan's, grown by what re-plans added.
    pub done: usize,
    pub total: usize,
    /// Steps started and not yet finished (several with `--parallelism`).
    started: Vec<(StepRecord, Instant)>,
}

impl Journal {
    /// Takes in one event, at the time it is told.
    pub fn hear(&mut self, e: &ApplyEvent<'_>) {
        match e {
            ApplyEvent::Refused(r) => self.refused.push((*r).clone()),
            ApplyEvent::Planned { steps } => self.total = *steps,
            ApplyEvent::Replanned { steps } => self.total = self.done + steps,
            ApplyEvent::Started(s) => {
                let record = StepRecord {
                    action: s.action,
                    kind: s.kind.clone(),
                    name: s.name.clone(),
                    outcome: StepOutcome::Failed,
                    cas: s.cas,
                    elapsed: Duration::ZERO,
                };
                self.started.push((record, Instant::now()));
            }
            ApplyEvent::Applied(s) => {
                self.finish(s, StepOutcome::Applied);
                self.done += 1;
            }
            ApplyEvent::Conflict(s) => self.finish(s, StepOutcome::Conflict),
        }
    }

    /// The apply ended with an error: every step started and not finished failed.
    pub fn failed(&mut self) {
        for (mut record, at) in std::mem::take(&mut self.started) {
            record.outcome = StepOutcome::Failed;
            record.elapsed = at.elapsed();
            self.steps.push(record);
        }
    }

    /// A step in flight ended; steps are kept in the order they ended.
    fn finish(&mut self, step: &mesh_plan::Step, outcome: StepOutcome) {
        let Some(at) = self
            .started
            .iter()
            .position(|(r, _)| r.kind == step.kind && r.name == step.name)
        else {
            return;
        };
        let (mut record, at) = self.started.remove(at);
        record.outcome = outcome;
        record.elapsed = at.elapsed();
        self.steps.push(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_model::EntryKind;
    use mesh_plan::Step;

    fn step(name: &str, cas: u64) -> Step {
        Step {
            action: Action::Update,
            kind: ObjectKind::ConfigEntry(EntryKind::ServiceDefaults),
            name: name.into(),
            reason: String::new(),
            before: None,
            after: None,
            cas,
            id: None,
            root_rotation: false,
        }
    }

    #[test]
    fn steps_are_kept_with_their_outcome_and_the_total_follows_replans() {
        let (a, b) = (step("a", 7), step("b", 9));
        let mut j = Journal::default();
        j.hear(&ApplyEvent::Planned { steps: 2 });
        j.hear(&ApplyEvent::Started(&a));
        j.hear(&ApplyEvent::Applied(&a));
        j.hear(&ApplyEvent::Started(&b));
        j.hear(&ApplyEvent::Conflict(&b));
        j.hear(&ApplyEvent::Replanned { steps: 1 });
        assert_eq!((j.done, j.total), (1, 2));
        j.hear(&ApplyEvent::Started(&b));
        j.failed();
        let seen: Vec<_> = j
            .steps
            .iter()
            .map(|s| (s.name.as_str(), s.outcome, s.cas))
            .collect();
        assert_eq!(
            seen,
            [
                ("a", StepOutcome::Applied, 7),
                ("b", StepOutcome::Conflict, 9),
                ("b", StepOutcome::Failed, 9),
            ]
        );
    }

    #[test]
    fn steps_in_flight_at_once_each_keep_their_outcome() {
        let (a, b, c) = (step("a", 1), step("b", 2), step("c", 3));
        let mut j = Journal::default();
        j.hear(&ApplyEvent::Planned { steps: 3 });
        for s in [&a, &b, &c] {
            j.hear(&ApplyEvent::Started(s));
        }
        j.hear(&ApplyEvent::Applied(&b));
        j.hear(&ApplyEvent::Conflict(&c));
        j.failed();
        let seen: Vec<_> = j
            .steps
            .iter()
            .map(|s| (s.name.as_str(), s.outcome))
            .collect();
        assert_eq!(
            seen,
            [
                ("b", StepOutcome::Applied),
                ("c", StepOutcome::Conflict),
                ("a", StepOutcome::Failed),
            ]
        );
        assert_eq!(j.done, 1);
    }

    #[test]
    fn an_apply_that_fails_before_any_step_records_none() {
        let mut j = Journal::default();
        j.failed();
        assert!(j.steps.is_empty());
    }
}
