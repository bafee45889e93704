//! `check --format json`: `verdict`, every edge with its decision, the findings with their
//! locations, the identities, with a base a `diff`, and the `simulation` when it ran.

use super::{base_errors, decision, verdict};
use mesh_check::{location, CheckResult};
use mesh_diagnostics::Diagnostic;
use serde_json::{json, Value};

fn finding(d: &Diagnostic, r: &CheckResult) -> Value {
    let loc = location(d, &r.head.sources);
    json!({
        "code": d.code.as_str(),
        "severity": d.severity.as_str(),
        "message": d.message,
        "file": loc.as_ref().map(|l| l.0.clone()),
        "line": loc.as_ref().map(|l| l.1),
        "column": loc.as_ref().map(|l| l.2),
        "help": d.help,
    })
}

pub fn value(r: &CheckResult) -> Value {
    let edges: Vec<Value> = r
        .analysis
        .edges
        .iter()
        .map(|e| {
            let mut edge = json!({
                "source": e.source,
                "destination": e.destination,
                "declared": e.declared,
                "decision": decision(e.allowed),
                "l7": e.l7,
                "reason": e.reason,
            });
            // Only against the live mesh, so other checks' documents stay as they were.
            if r.live.is_some() {
                edge["live_only"] = json!(!super::live_mark(r, &e.source).is_empty());
            }
            edge
        })
        .collect();
    let findings: Vec<Value> = r.analysis.findings.iter().map(|d| finding(d, r)).collect();
    let chains: Vec<Value> = r
        .analysis
        .chain_edges
        .iter()
        .map(|c| {
            json!({
                "source": c.source,
                "upstream": c.upstream,
                "target": c.target,
                "subset": c.subset,
                "condition": c.condition,
                "share": c.share,
                "failover": c.failover,
                "decision": decision(c.allowed),
                "reason": c.reason,
            })
        })
        .collect();
    let identities: Vec<Value> = r
        .analysis
        .identities
        .iter()
        .map(|i| json!({ "subject": i.subject, "can_obtain_certificates_for": i.writable, "can_reach": i.reachable }))
        .collect();
    let mut out = json!({
        "verdict": verdict(r),
        "edges": edges,
        "chains": chains,
        "findings": findings,
        "identities": identities,
    });
    if let (Some(diff), Some(base)) = (&r.diff, &r.base) {
        let (new, fixed) =
            mesh_analysis::findings_diff(&base.analysis.findings, &r.analysis.findings);
        out["diff"] = json!({
            "base": base.label,
            "base_errors": base_errors(base),
            "opened": diff.opened.iter().map(|(s, d)| json!([s, d])).collect::<Vec<_>>(),
            "closed": diff.closed.iter().map(|(s, d)| json!([s, d])).collect::<Vec<_>>(),
            "new_findings": new.iter().map(|d| finding(d, r)).collect::<Vec<_>>(),
            "fixed_findings": fixed.iter().map(|d| json!({"code": d.code.as_str(), "message": d.message})).collect::<Vec<_>>(),
        });
    }
    if let Some(live) = &r.live {
        out["live"] = json!({
            "address": live.address,
            "entries": live.entries,
            "only_live": live.only_live,
        });
    }
    if let Some(sim) = &r.simulation {
        out["simulation"] = crate::simulation::json::value(sim);
    }
    out
}

/// The document, pretty-printed, with a final newline.
pub fn render(r: &CheckResult) -> String {
    format!("{:#}\n", value(r))
}

#[cfg(test)]
mod tests {
    use super::value;
    use crate::check::fixture::{api_opened, one_denied};

    #[test]
    fn the_denied_upstream_is_an_edge_and_a_located_finding() {
        let v = value(&one_denied());
        assert_eq!(v["verdict"], "fail");
        let denied: Vec<_> = v["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["declared"] == true && e["decision"] == "deny")
            .map(|e| (e["source"].clone(), e["destination"].clone()))
            .collect();
        assert_eq!(denied, [("web".into(), "api".into())]);
        let error = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["severity"] == "error")
            .expect("a finding for the denied upstream");
        assert_eq!(error["file"], "services.hcl");
        assert!(v.get("diff").is_none() && v.get("simulation").is_none());
    }

    #[test]
    fn the_diff_names_the_base_and_the_opened_edge() {
        let v = value(&api_opened());
        assert_eq!(v["diff"]["base"], "main");
        assert_eq!(v["diff"]["opened"], serde_json::json!([["web", "api"]]));
        assert_eq!(v["diff"]["closed"], serde_json::json!([]));
        assert!(!v["diff"]["fixed_findings"].as_array().unwrap().is_empty());
    }
}
