//! `check --format sarif`: SARIF 2.1.0 for code scanning; one rule per code that occurs, one
//! result per finding, located in the repository (`%SRCROOT%`).

use mesh_check::{location, CheckResult};
use mesh_diagnostics::{Code, Severity};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

pub fn value(r: &CheckResult) -> Value {
    let mut rules: BTreeMap<&str, Code> = BTreeMap::new();
    for d in &r.analysis.findings {
        rules.insert(d.code.as_str(), d.code);
    }
    let rules: Vec<Value> = rules
        .values()
        .map(|c| {
            json!({
                "id": c.as_str(),
                "shortDescription": { "text": c.summary() },
                "defaultConfiguration": { "level": level(c.default_severity()) },
            })
        })
        .collect();
    let results: Vec<Value> = r
        .analysis
        .findings
        .iter()
        .map(|d| {
            let mut result = json!({
                "ruleId": d.code.as_str(),
                "level": level(d.severity),
                "message": { "text": d.message },
            });
            if let Some((file, line, col, end_line, end_col)) = location(d, &r.head.sources) {
                // SARIF regions are not empty: a point becomes one column wide.
                result["locations"] = json!([{
                    "physicalLocation": {
                        "artifactLocation": { "uri": file, "uriBaseId": "%SRCROOT%" },
                        "region": {
                            "startLine": line,
                            "startColumn": col,
                            "endLine": end_line.max(line),
                            "endColumn": if end_line > line { end_col } else { end_col.max(col + 1) },
                        }
                    }
                }]);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "mesh-gitops",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://github.com/mesh-gitops/mesh-gitops",
                    "rules": rules,
                }
            },
            "results": results,
        }]
    })
}

/// The document, pretty-printed, with a final newline.
pub fn render(r: &CheckResult) -> String {
    format!("{:#}\n", value(r))
}

#[cfg(test)]
mod tests {
    use super::value;
    use crate::check::fixture::one_denied;

    #[test]
    fn every_result_has_a_rule_and_a_non_empty_region() {
        let v = value(&one_denied());
        let run = &v["runs"][0];
        let rules: Vec<&str> = run["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        let results = run["results"].as_array().unwrap();
        assert!(!results.is_empty());
        for result in results {
            assert!(
                rules.contains(&result["ruleId"].as_str().unwrap()),
                "{result}"
            );
            if let Some(region) = result["locations"][0]["physicalLocation"]["region"].as_object() {
                let start = (region["startLine"].as_u64(), region["startColumn"].as_u64());
                let end = (region["endLine"].as_u64(), region["endColumn"].as_u64());
                assert!(end > start, "{result}");
            }
        }
    }
}
