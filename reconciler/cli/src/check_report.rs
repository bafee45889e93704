//! Renderings of a check result: text, JSON, Markdown (PR comments, step summaries), SARIF 2.1.0,
//! JUnit XML and GitHub workflow annotations.

use mesh_check::{location, CheckResult};
use mesh_diagnostics::{Code, Diagnostic, Severity};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub(crate) fn verdict(r: &CheckResult) -> &'static str {
    if r.failed() {
        "fail"
    } else {
        "pass"
    }
}

pub(crate) fn counts(r: &CheckResult) -> (usize, usize) {
    let errors = r.analysis.findings.iter().filter(|d| d.is_error()).count();
    (errors, r.analysis.findings.len() - errors)
}

pub(crate) fn decision(allowed: bool, l7: bool) -> &'static str {
    match (allowed, l7) {
        (true, true) => "allow",
        (true, false) => "allow",
        (false, _) => "deny",
    }
}

fn finding_json(d: &Diagnostic, r: &CheckResult) -> Value {
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

pub fn json(r: &CheckResult) -> Value {
    let edges: Vec<Value> = r
        .analysis
        .edges
        .iter()
        .map(|e| {
            json!({
                "source": e.source,
                "destination": e.destination,
                "declared": e.declared,
                "decision": decision(e.allowed, e.l7),
                "l7": e.l7,
                "reason": e.reason,
            })
        })
        .collect();
    let findings: Vec<Value> = r
        .analysis
        .findings
        .iter()
        .map(|d| finding_json(d, r))
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
        "findings": findings,
        "identities": identities,
    });
    if let (Some(diff), Some(base)) = (&r.diff, &r.base) {
        let (new, fixed) =
            mesh_analysis::findings_diff(&base.analysis.findings, &r.analysis.findings);
        out["diff"] = json!({
            "base": base.label,
            "base_errors": base.loaded.diagnostics.iter().filter(|d| d.is_error()).count(),
            "opened": diff.opened.iter().map(|(s, d)| json!([s, d])).collect::<Vec<_>>(),
            "closed": diff.closed.iter().map(|(s, d)| json!([s, d])).collect::<Vec<_>>(),
            "new_findings": new.iter().map(|d| finding_json(d, r)).collect::<Vec<_>>(),
            "fixed_findings": fixed.iter().map(|d| json!({"code": d.code.as_str(), "message": d.message})).collect::<Vec<_>>(),
        });
    }
    if let Some(sim) = &r.simulation {
        out["simulation"] = sim.to_json();
    }
    out
}

pub fn text(r: &CheckResult) -> String {
    let mut out = String::new();
    let (errors, warnings) = counts(r);
    let _ = writeln!(
        out,
        "check: {} ({errors} error{}, {warnings} warning{})",
        verdict(r).to_uppercase(),
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" }
    );
    for d in &r.analysis.findings {
        out.push_str(&mesh_diagnostics::render_text(d, &r.head.sources));
    }
    let declared: Vec<_> = r.analysis.edges.iter().filter(|e| e.declared).collect();
    if !declared.is_empty() {
        out.push_str("\ndeclared upstreams:\n");
        for e in declared {
            let _ = writeln!(
                out,
                "  {} -> {}: {}{} ({})",
                e.source,
                e.destination,
                decision(e.allowed, e.l7),
                if e.l7 { ", per request" } else { "" },
                e.reason
            );
        }
    }
    if let Some(diff) = &r.diff {
        let label = r.base.as_ref().map(|b| b.label.as_str()).unwrap_or("base");
        let _ = writeln!(out, "\nreachability since {label}:");
        if let Some(b) = &r.base {
            let n = b.loaded.diagnostics.iter().filter(|d| d.is_error()).count();
            if n > 0 {
                let _ = writeln!(
                    out,
                    "  (the base has {n} load error(s); compared with what it declares)"
                );
            }
        }
        if diff.opened.is_empty() && diff.closed.is_empty() {
            out.push_str("  no change\n");
        }
        for (s, d) in &diff.opened {
            let _ = writeln!(out, "  + {s} -> {d} opened");
        }
        for (s, d) in &diff.closed {
            let _ = writeln!(out, "  - {s} -> {d} closed");
        }
    }
    if let Some(sim) = &r.simulation {
        out.push('\n');
        out.push_str(&sim.summary());
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(r: &CheckResult) -> String {
    let mut out = String::new();
    let (errors, warnings) = counts(r);
    let icon = if r.failed() { "❌" } else { "✅" };
    let _ = writeln!(
        out,
        "## {icon} mesh-gitops check: {}\n\n{errors} error(s), {warnings} warning(s).\n",
        verdict(r)
    );
    if let Some(diff) = &r.diff {
        let label = r.base.as_ref().map(|b| b.label.as_str()).unwrap_or("base");
        let _ = writeln!(out, "### Reachability since `{}`\n", md_escape(label));
        if diff.opened.is_empty() && diff.closed.is_empty() {
            out.push_str("No edge opened or closed.\n\n");
        } else {
            out.push_str("| change | source | destination |\n|---|---|---|\n");
            for (s, d) in &diff.opened {
                let _ = writeln!(out, "| opened | `{}` | `{}` |", md_escape(s), md_escape(d));
            }
            for (s, d) in &diff.closed {
                let _ = writeln!(out, "| closed | `{}` | `{}` |", md_escape(s), md_escape(d));
            }
            out.push_str("\n`*` stands for every service no intention names.\n\n");
        }
    }
    if let Some(sim) = &r.simulation {
        simulation_markdown(&mut out, sim);
    }
    if !r.analysis.findings.is_empty() {
        out.push_str("### Findings\n\n");
        let mut by_file: BTreeMap<String, Vec<&Diagnostic>> = BTreeMap::new();
        for d in &r.analysis.findings {
            let file = location(d, &r.head.sources)
                .map(|l| l.0)
                .unwrap_or_else(|| "(repository)".into());
            by_file.entry(file).or_default().push(d);
        }
        for (file, ds) in by_file {
            let _ = writeln!(out, "**{}**\n", md_escape(&file));
            for d in ds {
                let at = location(d, &r.head.sources)
                    .map(|l| format!("[{}:{}]({}#L{}) ", l.0, l.1, l.0, l.1))
                    .unwrap_or_default();
                let mark = if d.is_error() { "🔴" } else { "🟡" };
                let _ = writeln!(out, "- {mark} {at}`{}` {}", d.code, md_escape(&d.message));
            }
            out.push('\n');
        }
    }
    if !r.analysis.graph.services.is_empty() {
        // Mermaid renders on GitHub, in PR comments and step summaries alike.
        out.push_str("<details><summary>Reachability graph</summary>\n\n```mermaid\n");
        out.push_str(&crate::graph::mermaid(r));
        out.push_str("```\n\n</details>\n\n");
    }
    let declared: Vec<_> = r.analysis.edges.iter().filter(|e| e.declared).collect();
    if !declared.is_empty() {
        out.push_str("<details><summary>Declared upstreams</summary>\n\n| source | destination | decision | reason |\n|---|---|---|---|\n");
        for e in declared {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {}{} | {} |",
                md_escape(&e.source),
                md_escape(&e.destination),
                decision(e.allowed, e.l7),
                if e.l7 { " (L7)" } else { "" },
                md_escape(&e.reason)
            );
        }
        out.push_str("\n</details>\n");
    }
    out
}

/// The simulated rollout's transient breaks and openings first (what a reviewer must see), then
/// the violations and the command that replays the run.
pub fn simulation_markdown(out: &mut String, sim: &mesh_check::Simulation) {
    out.push_str("### Simulation\n\n");
    if let Some(why) = &sim.skipped {
        let _ = writeln!(out, "Skipped: {}.\n", md_escape(why));
        return;
    }
    for r in &sim.reports {
        let (carried, refused) = mesh_check::counts(r);
        let _ = writeln!(
            out,
            "Seed `{}` (trace `{}`): {} declared edge(s) carried traffic over mTLS; {}/{} adversarial probes refused as expected; {} violation(s).\n",
            r.seed,
            r.trace_hash.get(..16).unwrap_or(&r.trace_hash),
            carried,
            refused,
            r.probes.len(),
            r.violations.len()
        );
        if !r.transient.is_empty() {
            out.push_str("| during the rollout | source | destination | after step | at |\n|---|---|---|---|---|\n");
            for t in &r.transient {
                let _ = writeln!(
                    out,
                    "| {:?} | `{}` | `{}` | {} | {} ms |",
                    t.kind,
                    md_escape(&t.source),
                    md_escape(&t.destination),
                    t.step,
                    t.at_ms
                );
            }
            out.push('\n');
        }
        for v in &r.violations {
            let _ = writeln!(out, "- 🔴 {}", md_escape(v));
        }
        // The replay command is there when it passes too: a reviewer can rerun the same run.
        let _ = writeln!(out, "\nReplay: `{}`\n", r.replay);
    }
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

pub fn sarif(r: &CheckResult) -> Value {
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
                "defaultConfiguration": { "level": sarif_level(c.default_severity()) },
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
                "level": sarif_level(d.severity),
                "message": { "text": d.message },
            });
            if let Some((file, line, col, end_line, end_col)) = location(d, &r.head.sources) {
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

pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

pub fn junit(r: &CheckResult) -> String {
    let mut cases = String::new();
    let mut tests = 0;
    let mut failures = 0;
    for e in r.analysis.edges.iter().filter(|e| e.declared) {
        tests += 1;
        let name = xml_escape(&format!("{} -> {}", e.source, e.destination));
        if e.allowed {
            let _ = writeln!(
                cases,
                "    <testcase classname=\"upstreams\" name=\"{name}\"/>"
            );
        } else {
            failures += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"upstreams\" name=\"{name}\">\n      <failure message=\"denied\">{}</failure>\n    </testcase>",
                xml_escape(&e.reason)
            );
        }
    }
    for d in &r.analysis.findings {
        tests += 1;
        let loc = location(d, &r.head.sources)
            .map(|l| format!("{}:{}:{}", l.0, l.1, l.2))
            .unwrap_or_default();
        let name = xml_escape(&format!("{} {}", d.code, loc));
        if d.is_error() {
            failures += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"findings\" name=\"{name}\">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                xml_escape(&d.message),
                xml_escape(d.help.as_deref().unwrap_or(""))
            );
        } else {
            let _ = writeln!(
                cases,
                "    <testcase classname=\"findings\" name=\"{name}\">\n      <system-out>{}</system-out>\n    </testcase>",
                xml_escape(&d.message)
            );
        }
    }
    for sim in r.simulation.iter().flat_map(|s| &s.reports) {
        tests += 1;
        let name = xml_escape(&format!("simulation seed {}", sim.seed));
        if sim.passed() {
            let _ = writeln!(
                cases,
                "    <testcase classname=\"simulation\" name=\"{name}\"/>"
            );
        } else {
            failures += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"simulation\" name=\"{name}\">\n      <failure message=\"{} violation(s)\">{}\nreplay: {}</failure>\n    </testcase>",
                sim.violations.len(),
                xml_escape(&sim.violations.join("\n")),
                xml_escape(&sim.replay)
            );
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"mesh-gitops check\" tests=\"{tests}\" failures=\"{failures}\">\n  <testsuite name=\"mesh-gitops check\" tests=\"{tests}\" failures=\"{failures}\">\n{cases}  </testsuite>\n</testsuites>\n"
    )
}

/// GitHub workflow commands: `::error file=...,line=...,col=...,title=...::message`.
pub fn github(r: &CheckResult) -> String {
    fn data(s: &str) -> String {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    }
    fn prop(s: &str) -> String {
        data(s).replace(':', "%3A").replace(',', "%2C")
    }
    let mut out = String::new();
    for d in &r.analysis.findings {
        let kind = if d.is_error() { "error" } else { "warning" };
        let mut props = vec![format!("title={}", prop(d.code.as_str()))];
        if let Some((file, line, col, end_line, end_col)) = location(d, &r.head.sources) {
            props.insert(0, format!("file={}", prop(&file)));
            props.insert(1, format!("line={line}"));
            props.insert(2, format!("col={col}"));
            props.insert(3, format!("endLine={end_line}"));
            if end_line == line {
                props.insert(4, format!("endColumn={end_col}"));
            }
        }
        let _ = writeln!(out, "::{kind} {}::{}", props.join(","), data(&d.message));
    }
    for sim in r.simulation.iter().flat_map(|s| &s.reports) {
        for v in &sim.violations {
            let _ = writeln!(
                out,
                "::error title=simulation seed {}::{} (replay: {})",
                sim.seed,
                data(v),
                data(&sim.replay)
            );
        }
    }
    let (errors, warnings) = counts(r);
    let _ = writeln!(
        out,
        "::notice title=mesh-gitops check::{} ({errors} errors, {warnings} warnings)",
        verdict(r)
    );
    out
}
