//! `apply --format json`: one object for automation, with what the gate decided and every step
//! the apply carried out (action, kind, name, outcome, CAS index, milliseconds).

use mesh_apply::{ApplyReport, Journal};
use mesh_check::{GateFailure, GatePass};
use mesh_loader::Loaded;
use serde_json::{json, Value};

/// What the gate decided before the apply.
pub enum Gate<'a> {
    Pass(&'a GatePass),
    /// It refused; `overridden` when `--skip-check` went past it.
    Failed {
        failure: &'a GateFailure,
        overridden: bool,
    },
}

/// One apply, as far as it went.
pub struct ApplyRun<'a> {
    pub loaded: &'a Loaded,
    pub gate: Gate<'a>,
    /// Where it applied (none when the gate stopped it first).
    pub target: Option<&'a str>,
    pub journal: &'a Journal,
    /// The engine's report, when it finished.
    pub report: Option<&'a ApplyReport>,
    /// Why it failed, when it did.
    pub error: Option<&'a str>,
}

fn gate(run: &ApplyRun<'_>) -> Value {
    match &run.gate {
        Gate::Pass(pass) => json!({
            "result": "pass",
            "declared_upstreams": pass.declared_upstreams,
            "warnings": pass.warnings,
            "simulation": pass.simulation.as_ref().map(crate::simulation::json::value),
        }),
        Gate::Failed {
            failure,
            overridden,
        } => json!({
            "result": if *overridden { "overridden" } else { "fail" },
            "reason": crate::gate::text::reason(failure, run.loaded),
            "simulation": match failure {
                GateFailure::Simulation(sim) => Some(crate::simulation::json::value(sim)),
                _ => None,
            },
        }),
    }
}

pub fn value(run: &ApplyRun<'_>) -> Value {
    let steps: Vec<Value> = run
        .journal
        .steps
        .iter()
        .map(|s| {
            json!({
                "action": s.action,
                "kind": s.kind,
                "name": s.name,
                "outcome": s.outcome.as_str(),
                "cas": s.cas,
                "milliseconds": u64::try_from(s.elapsed.as_millis()).unwrap_or(u64::MAX),
            })
        })
        .collect();
    let result = match (&run.gate, run.error, run.report) {
        (
            Gate::Failed {
                overridden: false, ..
            },
            _,
            _,
        ) => "refused",
        (_, Some(_), _) => "failed",
        (_, None, Some(r)) if r.stopped => "stopped",
        _ => "applied",
    };
    json!({
        "result": result,
        "gate": gate(run),
        "target": run.target,
        "refused": run.journal.refused,
        "steps": steps,
        "writes": run.report.map(|r| r.writes),
        "conflicts": run.report.map(|r| r.conflicts),
        "error": run.error,
    })
}

pub fn render(run: &ApplyRun<'_>) -> String {
    format!("{:#}\n", value(run))
}
