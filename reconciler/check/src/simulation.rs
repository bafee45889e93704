//! The simulation `check` runs by default and `simulate` runs alone: the repository's mesh in
//! the deterministic simulator, and with a base, the planner's rollout from the base to the head
//! while traffic flows.

use crate::Result;
use mesh_model::{ConfigEntry, DesiredState};
use mesh_plan::{Action, ObservedEntry, PlanOptions};
use mesh_sim::{RolloutStep, SimOptions, SimReport};

/// Which seeds to run and under which faults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSettings {
    /// The first seed (all randomness comes from it).
    pub seed: u64,
    /// How many seeds, starting at `seed`.
    pub seeds: u64,
    /// Faults on a schedule, in `mesh_sim::FaultSpec` syntax.
    pub faults: Option<String>,
    /// Seeds simulated at once (each on its own thread); `None`: one per core. The report is
    /// the same whatever this is.
    pub workers: Option<usize>,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            seed: 1,
            seeds: 1,
            faults: None,
            workers: None,
        }
    }
}

/// What the simulation found, for every seed of the sweep. Data only: `mesh_report::simulation`
/// renders it.
pub struct Simulation {
    pub reports: Vec<SimReport>,
    /// Why there is no simulation (e.g. no service with a sidecar), when that is not a failure.
    pub skipped: Option<String>,
}

impl Simulation {
    pub fn failed(&self) -> bool {
        self.reports.iter().any(|r| !r.passed())
    }
}

/// Declared edges that carried traffic (requests got through, the intentions allow them), and
/// probes that ended as expected. The denied declared upstreams are `SimReport::denied`.
pub fn counts(r: &SimReport) -> (usize, usize) {
    (
        r.edges.iter().filter(|e| e.carried()).count(),
        r.probes.iter().filter(|p| p.outcome == p.expected).count(),
    )
}

/// The rollout from `base` to `head` in the planner's order: every config entry of both sides
/// counts as owned, so the plan is exactly the difference.
pub fn rollout_steps(base: &DesiredState, head: &DesiredState) -> Vec<RolloutStep> {
    let owner = "simulation";
    let none = |_: &ConfigEntry| String::new();
    let desired = mesh_plan::marked_entries(head, owner, &none);
    let observed: Vec<ObservedEntry> = mesh_plan::marked_entries(base, owner, &none)
        .into_iter()
        .map(|entry| ObservedEntry {
            entry,
            modify_index: 1,
        })
        .collect();
    let mut declared = mesh_plan::declared_edges(head);
    declared.extend(mesh_plan::declared_edges(base));
    declared.sort();
    declared.dedup();
    let opts = PlanOptions {
        owner: owner.into(),
        adopt: false,
        allow_empty: true,
        ..PlanOptions::default()
    };
    let Ok(plan) = mesh_plan::plan(
        &desired,
        &observed,
        &declared,
        head.settings.acl.default_intention_allows(),
        &opts,
    ) else {
        return Vec::new();
    };
    plan.steps
        .iter()
        // Inventory records are not Consul writes.
        .filter(|s| !matches!(s.action, Action::Record | Action::Forget))
        .filter_map(|s| {
            let kind = s.kind.entry()?.clone();
            let entry = match s.action {
                Action::Delete => None,
                _ => head.config_entry(kind.clone(), &s.name).cloned(),
            };
            Some(RolloutStep {
                kind,
                name: s.name.clone(),
                entry,
            })
        })
        .collect()
}

/// Node hosts at most; beyond that, service instances share hosts (each keeps its own agent
/// cache, proxy and application ports).
const MAX_NODE_HOSTS: usize = 32;

/// Simulates `head` (from `base` when given) for every seed of the sweep.
pub fn simulate(
    head: &DesiredState,
    base: Option<&DesiredState>,
    repo: &str,
    args: &SimSettings,
) -> Result<Simulation> {
    simulate_with(head, base, repo, args, &mut |_, _| {})
}

/// As [`simulate`], telling `progress` the seeds done of the total after every seed. Seeds run
/// on `args.workers` threads; the reports come back in seed order.
pub fn simulate_with(
    head: &DesiredState,
    base: Option<&DesiredState>,
    repo: &str,
    args: &SimSettings,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Simulation> {
    let steps = base.map(|b| rollout_steps(b, head)).unwrap_or_default();
    simulate_steps(head, base, &steps, repo, args, progress)
}

/// As [`simulate_with`], with the rollout's steps given (the plan's own, from the live state).
pub fn simulate_steps(
    head: &DesiredState,
    base: Option<&DesiredState>,
    steps: &[RolloutStep],
    repo: &str,
    args: &SimSettings,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Simulation> {
    let faults = match &args.faults {
        Some(spec) => mesh_sim::FaultSpec::parse(spec)?,
        None => mesh_sim::FaultSpec::default(),
    };
    let seeds = args.seed..args.seed.saturating_add(args.seeds.max(1));
    let workers = args.workers.unwrap_or_else(crate::sweep::default_workers);
    let run = |seed| {
        let opts = SimOptions {
            seed,
            faults: faults.clone(),
            steps: steps.to_vec(),
            repo: repo.to_owned(),
            // turmoil's cost grows steeply with hosts: large meshes share node hosts.
            max_nodes: Some(MAX_NODE_HOSTS),
            ..SimOptions::default()
        };
        mesh_sim::simulate(head, base, &opts)
    };
    let results = crate::sweep::run_seeds(seeds, workers, run, Result::is_err, progress);
    let mut reports = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(r) => reports.push(r),
            Err(mesh_sim::SimError::NoServices) => {
                return Ok(Simulation {
                    reports: Vec::new(),
                    skipped: Some("the repository declares no service with a sidecar".into()),
                })
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Simulation {
        reports,
        skipped: None,
    })
}
