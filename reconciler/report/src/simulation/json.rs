//! `simulate --format json`, and the `simulation` object of `check --format json`: the first
//! seed's report (seed, trace_hash, probes, violations, ...) with the verdict (`passed`, the
//! number of declared edges that `carried_traffic`, the `denied` declared upstreams with their
//! deciding intention) and, for a sweep, one line per seed.

use mesh_check::Simulation;
use mesh_sim::SimReport;
use serde_json::{json, Value};

/// The declared upstreams the intentions denied: who, and the deciding intention.
fn denied(r: &SimReport) -> Value {
    let upstreams = r.denied().map(
        |e| json!({"source": e.source, "destination": e.destination, "denied_by": e.denied_by}),
    );
    // A target of an upstream's discovery chain: the upstream, and the target denied.
    let targets = r.denied_targets().map(|t| {
        json!({"source": t.source, "destination": t.upstream, "target": t.target, "denied_by": t.denied_by})
    });
    upstreams.chain(targets).collect()
}

pub fn value(sim: &Simulation) -> Value {
    let Some(first) = sim.reports.first() else {
        return json!({ "skipped": sim.skipped });
    };
    let mut v = serde_json::to_value(first).unwrap_or(Value::Null);
    v["passed"] = first.passed().into();
    v["carried_traffic"] = mesh_check::counts(first).0.into();
    v["denied"] = denied(first);
    if sim.reports.len() > 1 {
        v["sweep"] = sim
            .reports
            .iter()
            .map(|r| json!({"seed": r.seed, "trace_hash": r.trace_hash, "passed": r.passed(), "denied": denied(r), "violations": r.violations, "replay": r.replay}))
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
    use crate::simulation::fixture::{denied, report, simulation, skipped};

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
    fn the_verdict_counts_carried_edges_and_names_the_denied_ones() {
        let v = value(&simulation(vec![report(1, &[])]));
        assert_eq!(
            (v["passed"].clone(), v["carried_traffic"].clone()),
            (true.into(), 1.into())
        );
        assert_eq!(v["denied"], serde_json::json!([]));
        assert!(v["edges"][0].get("denied_by").is_none());
        let v = value(&simulation(vec![denied(1), report(2, &[])]));
        assert_eq!(v["passed"], false);
        assert_eq!(v["carried_traffic"], 0);
        let intention = "Matched L4 intention: web -> api (precedence 9)";
        let named =
            serde_json::json!([{"source": "web", "destination": "api", "denied_by": intention}]);
        assert_eq!(v["denied"], named);
        assert_eq!(v["edges"][0]["denied_by"], intention);
        assert_eq!(v["sweep"][0]["denied"], named);
        assert_eq!(v["sweep"][1]["passed"], true);
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
