//! `simulate --format json`, and the `simulation` object of `check --format json`: the first
//! seed's report (seed, trace_hash, probes, violations, ...) and, for a sweep, one line per seed.

use mesh_check::Simulation;
use serde_json::{json, Value};

pub fn value(sim: &Simulation) -> Value {
    let Some(first) = sim.reports.first() else {
        return json!({ "skipped": sim.skipped });
    };
    let mut v = serde_json::to_value(first).unwrap_or(Value::Null);
    if sim.reports.len() > 1 {
        v["sweep"] = sim
            .reports
            .iter()
            .map(|r| json!({"seed": r.seed, "trace_hash": r.trace_hash, "violations": r.violations, "replay": r.replay}))
            .collect();
    }
    v
}

/// The document, pretty-printed, with a final newline.
pub fn render(sim: &Simulation) -> String {
    format!("{:#}\n", value(sim))
}

#[cfg(test)]
mod tests {
    use super::value;
    use crate::simulation::fixture::{report, simulation, skipped};

    #[test]
    fn a_sweep_lists_every_seed_after_the_first_report() {
        let v = value(&simulation(vec![report(1, &[]), report(2, &["x"])]));
        assert_eq!(v["seed"], 1);
        let seeds: Vec<_> = v["sweep"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["seed"].clone())
            .collect();
        assert_eq!(seeds, [1, 2]);
        assert_eq!(v["sweep"][1]["violations"][0], "x");
    }

    #[test]
    fn one_seed_has_no_sweep_and_a_skipped_one_only_the_reason() {
        assert!(value(&simulation(vec![report(1, &[])]))
            .get("sweep")
            .is_none());
        let v = value(&skipped());
        assert_eq!(v.as_object().unwrap().len(), 1);
        assert_eq!(
            v["skipped"],
            "the repository declares no service with a sidecar"
        );
    }
}
