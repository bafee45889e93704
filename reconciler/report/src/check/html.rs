//! `check --format html`: the whole result as one self-contained HTML file (inline CSS and SVG,
//! no script, nothing fetched), for a CI artifact or a browser. In order: the verdict, the
//! graph (`graph::svg`), the decision matrix (every source against every destination, the deciding
//! intention in each cell's tooltip), the findings grouped by file, with a base the edges the
//! change opened and closed, and the simulation (`simulation::html`).

use super::{base_errors, counts, verdict};
use crate::escape::xml as esc;
use mesh_analysis::graph::action_text;
use mesh_analysis::{PairDecision, OTHER};
use mesh_check::{location, CheckResult};
use mesh_diagnostics::Diagnostic;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// More services than this get no matrix (it would have their square of cells); the graph and
/// the findings still cover them.
const MATRIX_LIMIT: usize = 150;

const CSS: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0; color: #263238; background: #fafafa; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 1.5rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 32px 0 8px; border-bottom: 1px solid #cfd8dc; padding-bottom: 4px; }
h3 { font-size: 1rem; margin: 16px 0 6px; font-family: ui-monospace, monospace; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.92em; }
nav a { margin-right: 12px; color: #1565c0; }
#verdict { padding: 16px 20px; border-radius: 8px; border: 1px solid; }
#verdict.pass { background: #e8f5e9; border-color: #66bb6a; }
#verdict.fail { background: #ffebee; border-color: #ef5350; }
#verdict p { margin: 4px 0; }
.scroll { overflow: auto; background: #fff; border: 1px solid #cfd8dc; border-radius: 6px; padding: 8px; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #cfd8dc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eceff1; font-weight: 600; }
#matrix table td, #matrix table th { padding: 2px 4px; text-align: center; font-size: 0.85rem; }
#matrix thead th[scope=col] { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; vertical-align: bottom; }
#matrix tbody th { text-align: right; white-space: nowrap; }
#matrix td { min-width: 22px; cursor: help; }
td.allow { background: #c8e6c9; color: #1b5e20; }
td.l7 { background: #fff9c4; color: #795548; }
td.deny { background: #ffcdd2; color: #b71c1c; }
td.self { background: #eceff1; color: #90a4ae; }
td.declared { outline: 2px solid #263238; outline-offset: -3px; font-weight: 700; }
td.opened { box-shadow: inset 0 0 0 3px #2e7d32; }
td.closed { box-shadow: inset 0 0 0 3px #c62828; }
.badge { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 0.8rem; font-weight: 600; }
.badge.error { background: #ffcdd2; color: #b71c1c; }
.badge.warning { background: #fff3e0; color: #e65100; }
.badge.note { background: #e3f2fd; color: #0d47a1; }
.badge.new { background: #263238; color: #fff; }
tr.bad td { color: #b71c1c; font-weight: 600; }
.help { color: #546e7a; font-size: 0.9em; }
tr.opened td:first-child { color: #2e7d32; font-weight: 700; }
tr.closed td:first-child { color: #c62828; font-weight: 700; }
tr.mismatch { background: #ffebee; }
.muted { color: #78909c; }
";

/// The report.
pub fn render(r: &CheckResult) -> String {
    let mut out = String::new();
    let v = verdict(r);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>mesh-gitops check: {v}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
    );
    out.push_str(&verdict_section(r));
    out.push_str("<nav><a href=\"#graph\">Graph</a><a href=\"#matrix\">Decision matrix</a><a href=\"#findings\">Findings</a>");
    if r.diff.is_some() {
        out.push_str("<a href=\"#diff\">Opened and closed</a>");
    }
    out.push_str("<a href=\"#simulation\">Simulation</a></nav>\n");
    out.push_str("<section id=\"graph\">\n<h2>Reachability graph</h2>\n<div class=\"scroll\">\n");
    out.push_str(&crate::graph::svg::render(r));
    out.push_str("</div>\n</section>\n");
    out.push_str(&matrix(r));
    out.push_str(&super::chains::html(r));
    out.push_str(&findings(r));
    out.push_str(&diff(r));
    out.push_str(&crate::simulation::html::section(r.simulation.as_ref()));
    let _ = write!(
        out,
        "<footer><p class=\"muted\">mesh-gitops {}</p></footer>\n</main>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn verdict_section(r: &CheckResult) -> String {
    let v = verdict(r);
    let (errors, warnings) = counts(r);
    let icon = if r.failed() { "✗" } else { "✓" };
    let declared: Vec<_> = r.analysis.edges.iter().filter(|e| e.declared).collect();
    let denied = declared.iter().filter(|e| !e.allowed).count();
    let mut out = format!(
        "<header id=\"verdict\" class=\"{v}\" data-verdict=\"{v}\">\n<h1>{icon} mesh-gitops check: {v}</h1>\n<p>{}, {}.</p>\n<p>{}, {} ({} denied), {} allowed among them.</p>\n",
        plural(errors, "error", "errors"),
        plural(warnings, "warning", "warnings"),
        plural(r.analysis.graph.services.len(), "service", "services"),
        plural(declared.len(), "declared upstream", "declared upstreams"),
        denied,
        plural(
            r.analysis.graph.allowed_pairs() as usize,
            "pair",
            "pairs"
        ),
    );
    match (&r.base, &r.diff) {
        (Some(b), Some(d)) => {
            let _ = writeln!(
                out,
                "<p>Compared with <code>{}</code>: {} opened, {} closed.</p>",
                esc(&b.label),
                plural(d.opened.len(), "edge", "edges"),
                plural(d.closed.len(), "edge", "edges")
            );
        }
        _ => out.push_str("<p>No base: nothing to compare with.</p>\n"),
    }
    out.push_str("</header>\n");
    out
}

/// The tooltip of one cell: the decision, the intention that decides it, Consul's reason.
fn tooltip(source: &str, destination: &str, d: &PairDecision, declared: bool) -> String {
    let mut t = format!(
        "{source} → {destination}: {}",
        match (d.allowed, d.l7) {
            (true, true) => "allowed, each request decided by L7 permissions",
            (true, false) => "allowed",
            (false, _) => "denied",
        }
    );
    match &d.matched {
        Some(i) => {
            let _ = write!(
                t,
                "\ndeciding intention: {} → {} ({}, precedence {})",
                i.source,
                i.destination,
                action_text(i),
                i.precedence
            );
        }
        None => t.push_str("\nno intention matches: the default decides"),
    }
    if !d.reason.is_empty() {
        let _ = write!(t, "\n{}", d.reason);
    }
    if declared {
        t.push_str("\ndeclared upstream");
    }
    t
}

fn matrix(r: &CheckResult) -> String {
    let g = &r.analysis.graph;
    let mut out = String::from("<section id=\"matrix\">\n<h2>Decision matrix</h2>\n");
    if g.services.is_empty() {
        out.push_str("<p>No services.</p>\n</section>\n");
        return out;
    }
    if g.services.len() > MATRIX_LIMIT {
        let _ = writeln!(
            out,
            "<p>{} services: too many for a matrix (the limit is {MATRIX_LIMIT}). The graph and the JSON format (<code>--format json</code>) list every edge.</p>\n</section>",
            g.services.len()
        );
        return out;
    }
    let declared: BTreeSet<(&str, &str)> = r
        .analysis
        .edges
        .iter()
        .filter(|e| e.declared)
        .map(|e| (e.source.as_str(), e.destination.as_str()))
        .collect();
    let mut changed: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    if let Some(d) = &r.diff {
        for (s, t) in &d.opened {
            changed.insert((s.as_str(), t.as_str()), "opened");
        }
        for (s, t) in &d.closed {
            changed.insert((s.as_str(), t.as_str()), "closed");
        }
    }
    out.push_str("<p>Rows are sources, columns destinations. Hover a cell for the deciding intention. ✓ allowed, L7 allowed with each request decided by permissions, ✗ denied; a framed cell is a declared upstream");
    if r.diff.is_some() {
        out.push_str(", a green or red inner border an edge this change opened or closed");
    }
    out.push_str(".</p>\n<div class=\"scroll\">\n<table>\n<thead><tr><th><span class=\"muted\">source \\ destination</span></th>");
    for d in &g.services {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(d));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let sources = g
        .services
        .iter()
        .map(|s| (s.as_str(), s.as_str()))
        .chain([(OTHER, "*")]);
    for (source, shown) in sources {
        let heading = if source == OTHER {
            "<span title=\"every service no intention names\">* (any other)</span>".to_owned()
        } else {
            format!("{}{}", esc(shown), super::live_mark(r, source))
        };
        let _ = write!(out, "<tr><th scope=\"row\">{heading}</th>");
        for destination in &g.services {
            if source == destination {
                out.push_str("<td class=\"self\" title=\"the same service\">·</td>");
                continue;
            }
            let d = g.decide(source, destination);
            let is_declared = declared.contains(&(shown, destination.as_str()));
            let (class, mark) = match (d.allowed, d.l7) {
                (true, true) => ("l7", "L7"),
                (true, false) => ("allow", "✓"),
                (false, _) => ("deny", "✗"),
            };
            let mut classes = vec![class];
            if is_declared {
                classes.push("declared");
            }
            if let Some(c) = changed.get(&(shown, destination.as_str())) {
                classes.push(c);
            }
            let _ = write!(
                out,
                "<td class=\"{}\" title=\"{}\">{mark}</td>",
                classes.join(" "),
                esc(&tooltip(shown, destination, &d, is_declared))
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n</section>\n");
    out
}

/// A finding and its line and column.
type Located<'a> = (&'a Diagnostic, Option<(u32, u32)>);

fn findings(r: &CheckResult) -> String {
    let mut out = String::from("<section id=\"findings\">\n<h2>Findings</h2>\n");
    if r.analysis.findings.is_empty() {
        out.push_str("<p>No findings.</p>\n</section>\n");
        return out;
    }
    let new: Vec<&Diagnostic> = match &r.base {
        Some(b) => mesh_analysis::findings_diff(&b.analysis.findings, &r.analysis.findings).0,
        None => Vec::new(),
    };
    let mut by_file: BTreeMap<String, Vec<Located>> = BTreeMap::new();
    for d in &r.analysis.findings {
        match location(d, &r.head.sources) {
            Some((file, line, col, ..)) => by_file
                .entry(file)
                .or_default()
                .push((d, Some((line, col)))),
            None => by_file
                .entry("(repository)".to_owned())
                .or_default()
                .push((d, None)),
        }
    }
    for (file, ds) in by_file {
        let _ = writeln!(
            out,
            "<h3 class=\"file\">{}</h3>\n<table class=\"findings\">\n<thead><tr><th>line</th><th>severity</th><th>code</th><th>finding</th></tr></thead>\n<tbody>",
            esc(&file)
        );
        for (d, at) in ds {
            let at = at
                .map(|(l, c)| format!("<code>{l}:{c}</code>"))
                .unwrap_or_default();
            let sev = d.severity.as_str();
            let is_new = new.iter().any(|n| std::ptr::eq(*n, d));
            let _ = writeln!(
                out,
                "<tr class=\"finding {sev}\"><td>{at}</td><td><span class=\"badge {sev}\">{sev}</span>{}</td><td><code>{}</code></td><td>{}{}</td></tr>",
                if is_new {
                    " <span class=\"badge new\">new</span>"
                } else {
                    ""
                },
                esc(d.code.as_str()),
                esc(&d.message),
                d.help
                    .as_deref()
                    .map(|h| format!("<div class=\"help\">{}</div>", esc(h)))
                    .unwrap_or_default()
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n");
    out
}

fn diff(r: &CheckResult) -> String {
    let (Some(base), Some(d)) = (&r.base, &r.diff) else {
        return String::new();
    };
    let mut out = format!(
        "<section id=\"diff\">\n<h2>Opened and closed since <code>{}</code></h2>\n",
        esc(&base.label)
    );
    let errors = base_errors(base);
    if errors > 0 {
        let _ = writeln!(
            out,
            "<p>The base has {} loading; it is compared with what it declares.</p>",
            plural(errors, "error", "errors")
        );
    }
    if d.opened.is_empty() && d.closed.is_empty() {
        out.push_str("<p>No edge opened or closed.</p>\n");
    } else {
        out.push_str("<table class=\"edges\">\n<thead><tr><th>change</th><th>source</th><th>destination</th><th>now</th></tr></thead>\n<tbody>\n");
        for (change, pairs) in [("opened", &d.opened), ("closed", &d.closed)] {
            for (s, t) in pairs {
                let source = if s == "*" { OTHER } else { s.as_str() };
                let now = r.analysis.graph.decide(source, t);
                let _ = writeln!(
                    out,
                    "<tr class=\"{change}\"><td>{change}</td><td><code>{}</code>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                    esc(s),
                    super::live_mark(r, s),
                    esc(t),
                    esc(&now.reason)
                );
            }
        }
        out.push_str("</tbody>\n</table>\n<p class=\"muted\"><code>*</code> stands for every service no intention names.</p>\n");
    }
    let fixed = mesh_analysis::findings_diff(&base.analysis.findings, &r.analysis.findings).1;
    if !fixed.is_empty() {
        out.push_str("<p>Findings this change fixes:</p>\n<ul>\n");
        for f in fixed {
            let _ = writeln!(
                out,
                "<li><code>{}</code> {}</li>",
                esc(f.code.as_str()),
                esc(&f.message)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::check::fixture::{api_opened, one_denied};

    #[test]
    fn the_matrix_frames_declared_upstreams_and_marks_the_opened_edge() {
        let html = render(&api_opened());
        assert!(html.contains("data-verdict=\"pass\""), "{html}");
        // Row web, column api: allowed, declared, opened by the change.
        assert!(
            html.contains("<td class=\"allow declared opened\" title=\"web → api: allowed"),
            "{html}"
        );
        assert!(html.contains("<section id=\"diff\">"));
        assert!(html.contains("This result carries no simulation."));
    }

    #[test]
    fn a_denied_upstream_is_a_framed_red_cell_and_the_report_is_one_document() {
        let html = render(&one_denied());
        assert!(html.starts_with("<!DOCTYPE html>\n") && html.ends_with("</html>\n"));
        assert!(
            html.contains("<td class=\"deny declared\" title=\"web → api: denied"),
            "{html}"
        );
        assert!(!html.contains("<section id=\"diff\">"));
        assert!(!html.contains("<script"));
    }
}
