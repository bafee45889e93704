//! The rollout simulated from the live state, before an apply writes: base = what Consul holds
//! now ([`mesh_apply::live_base`]), steps = the plan's own config-entry writes in the order apply
//! runs them, end = the live state with those writes made, traffic on every declared upstream.
//! `plan --simulate` reports it; `apply` and `reconcile` refuse a plan whose rollout breaks, even
//! briefly, an edge allowed live and in the end state, unless transient breaks are allowed.

use crate::{simulate_steps, Result, SimSettings, Simulation};
use mesh_apply::{after_writes, entry_writes, live_base, Rollout};
use mesh_model::DesiredState;
use mesh_sim::{RolloutStep, Transient, TransientKind};

/// A rollout simulated from the live state.
pub struct LiveRollout {
    /// The plan's config-entry writes, in apply's order; a transient's `step` indexes them.
    pub steps: Vec<RolloutStep>,
    pub simulation: Simulation,
}

impl LiveRollout {
    fn transients(&self, kind: TransientKind) -> impl Iterator<Item = &Transient> {
        self.simulation
            .reports
            .iter()
            .flat_map(|r| &r.transient)
            .filter(move |t| t.kind == kind)
    }

    /// Edges allowed live and in the end state that failed in between.
    pub fn breaks(&self) -> impl Iterator<Item = &Transient> {
        self.transients(TransientKind::Break)
    }

    /// Edges denied live and in the end state that got through in between.
    pub fn openings(&self) -> impl Iterator<Item = &Transient> {
        self.transients(TransientKind::Opening)
    }

    /// The step a transient happened after, as plans name it (`service-intentions "api"`).
    pub fn step(&self, t: &Transient) -> String {
        match self.steps.get(t.step) {
            Some(s) => format!(
                "step {} of {} ({}{} \"{}\")",
                t.step + 1,
                self.steps.len(),
                if s.entry.is_some() { "" } else { "delete " },
                s.kind.as_str(),
                s.name
            ),
            None => format!("step {}", t.step + 1),
        }
    }

    /// One line per transient break and opening, with the step it followed.
    pub fn lines(&self) -> Vec<String> {
        let line = |what: &str, t: &Transient| {
            format!(
                "{what}: {} -> {} after {} at {} ms",
                t.source,
                t.destination,
                self.step(t),
                t.at_ms
            )
        };
        self.breaks()
            .map(|t| line("transient break", t))
            .chain(self.openings().map(|t| line("transient opening", t)))
            .collect()
    }

    /// Why the rollout may not be applied: a kept edge broken on the way (unless
    /// `allow_transient`), or a violation of the simulation.
    pub fn refusal(&self, allow_transient: bool) -> Option<String> {
        let broken: Vec<String> = self
            .breaks()
            .map(|t| format!("{} -> {} after {}", t.source, t.destination, self.step(t)))
            .collect();
        if !broken.is_empty() && !allow_transient {
            return Some(format!(
                "the rollout from the live state breaks {} edge(s) that are allowed now and after it: {} (pass --allow-transient to apply anyway)",
                broken.len(),
                broken.join("; ")
            ));
        }
        let violations: Vec<&String> = self
            .simulation
            .reports
            .iter()
            .flat_map(|r| &r.violations)
            .collect();
        (!violations.is_empty()).then(|| {
            format!(
                "the rollout from the live state violates: {}",
                violations
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
    }

    /// A one-line summary for the apply's output.
    pub fn summary(&self) -> String {
        format!(
            "rollout from the live state: {} step(s) simulated, {} transient break(s), {} transient opening(s)",
            self.steps.len(),
            self.breaks().count(),
            self.openings().count()
        )
    }
}

/// Simulates the rollout of `rollout.plan` from the live state, with the repository's services
/// (`repo`) sending traffic. `None` when the plan writes no `service-intentions` entry (the
/// simulated proxies enforce only intentions) or there is no service with a sidecar. Runs on its own thread, so it
/// may be called from within an async runtime.
pub fn simulate_live_rollout(
    repo: &DesiredState,
    rollout: &Rollout<'_>,
    label: &str,
    settings: &SimSettings,
) -> Result<Option<LiveRollout>> {
    let writes = entry_writes(rollout.plan, rollout.desired);
    // Only intentions change what the simulated proxies enforce; a rollout of other kinds alone
    // cannot break or open an edge there.
    if !writes
        .iter()
        .any(|w| w.kind == mesh_model::EntryKind::ServiceIntentions)
    {
        return Ok(None);
    }
    let base = live_base(repo, rollout.observed, rollout.catalog);
    let end = after_writes(&base, &writes);
    let steps: Vec<RolloutStep> = writes
        .into_iter()
        .map(|w| RolloutStep {
            kind: w.kind,
            name: w.name,
            entry: w.entry,
        })
        .collect();
    let simulation = std::thread::scope(|s| {
        s.spawn(|| simulate_steps(&end, Some(&base), &steps, label, settings, &mut |_, _| {}))
            .join()
    })
    .map_err(|_| mesh_sim::SimError::Sim("the simulation thread panicked".into()))??;
    if simulation.skipped.is_some() {
        return Ok(None);
    }
    Ok(Some(LiveRollout { steps, simulation }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_model::EntryKind;
    use mesh_sim::SimReport;

    fn transient(kind: TransientKind, step: usize) -> Transient {
        Transient {
            kind,
            source: "web".into(),
            destination: "api".into(),
            step,
            at_ms: 2100,
        }
    }

    fn rollout(transients: Vec<Transient>, violations: Vec<String>) -> LiveRollout {
        let report = SimReport {
            seed: 1,
            trace_hash: String::new(),
            duration_ms: 0,
            hosts: Vec::new(),
            probes: Vec::new(),
            edges: Vec::new(),
            targets: Vec::new(),
            violations,
            transient: transients,
            calls: 0,
            handshakes: 0,
            handshake_time: std::time::Duration::ZERO,
            replay: String::new(),
            trace: Vec::new(),
        };
        let step = |name: &str, write: bool| RolloutStep {
            kind: EntryKind::ServiceIntentions,
            name: name.into(),
            entry: write.then(|| {
                mesh_model::ConfigEntry::ServiceIntentions(mesh_model::ServiceIntentions {
                    name: name.into(),
                    ..Default::default()
                })
            }),
        };
        LiveRollout {
            steps: vec![step("*", true), step("api", false)],
            simulation: Simulation {
                reports: vec![report],
                skipped: None,
            },
        }
    }

    #[test]
    fn a_break_refuses_unless_allowed_and_names_its_step_an_opening_only_reports() {
        let r = rollout(
            vec![
                transient(TransientKind::Break, 0),
                transient(TransientKind::Opening, 1),
            ],
            Vec::new(),
        );
        assert_eq!(
            r.lines(),
            [
                "transient break: web -> api after step 1 of 2 (service-intentions \"*\") at 2100 ms",
                "transient opening: web -> api after step 2 of 2 (delete service-intentions \"api\") at 2100 ms",
            ]
        );
        let why = r.refusal(false).expect("a break refuses");
        assert!(why.contains("breaks 1 edge(s)"), "{why}");
        assert!(why.contains("--allow-transient"), "{why}");
        assert_eq!(r.refusal(true), None);
        let opening_only = rollout(vec![transient(TransientKind::Opening, 0)], Vec::new());
        assert_eq!(opening_only.refusal(false), None);
        assert_eq!(
            opening_only.summary(),
            "rollout from the live state: 2 step(s) simulated, 0 transient break(s), 1 transient opening(s)"
        );
    }

    #[test]
    fn a_violation_refuses_even_when_transients_are_allowed() {
        let r = rollout(Vec::new(), vec!["safety: evil -> api got through".into()]);
        let why = r.refusal(true).expect("a violation refuses");
        assert!(
            why.ends_with("violates: safety: evil -> api got through"),
            "{why}"
        );
    }
}
