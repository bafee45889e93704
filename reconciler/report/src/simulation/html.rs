//! The "Simulation" section of the HTML report: the first seed's seed and trace hash, how many
//! declared upstreams carried traffic and which the intentions denied, its violations, every adversarial probe (a row out of line when it did not end as expected) and
//! the rollout's transients.

use crate::escape::xml as esc;
use mesh_check::Simulation;
use std::fmt::Write as _;

/// The name the JSON report gives an enum value (e.g. `denied_by_intention`), so the HTML and
/// the JSON of one run agree.
fn json_name(v: impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The section; `None` when the check ran without the simulation. A skipped simulation has a
/// heading only (the verdict does not depend on it).
pub fn section(sim: Option<&Simulation>) -> String {
    let mut out = String::from("<section id=\"simulation\">\n<h2>Simulation</h2>\n");
    let Some(sim) = sim else {
        out.push_str("<p class=\"muted\">This result carries no simulation.</p>\n</section>\n");
        return out;
    };
    let Some(r) = sim.reports.first() else {
        out.push_str("</section>\n");
        return out;
    };
    let _ = writeln!(
        out,
        "<dl class=\"facts\"><dt>seed</dt><dd><code>{}</code></dd><dt>trace hash</dt><dd><code>{}</code></dd></dl>",
        r.seed,
        esc(&r.trace_hash)
    );
    let (carried, _) = mesh_check::counts(r);
    let _ = writeln!(
        out,
        "<h3>Declared upstreams</h3>\n<p>{} of {} carried traffic.</p>",
        carried,
        plural(r.edges.len(), "declared upstream", "declared upstreams")
    );
    let denials: Vec<String> = r
        .edges
        .iter()
        .filter_map(|e| e.denial())
        .chain(r.targets.iter().filter_map(|t| t.denial()))
        .collect();
    if !denials.is_empty() {
        out.push_str("<ul class=\"violations\">\n");
        for d in &denials {
            let _ = writeln!(out, "<li>denied: {}</li>", esc(d));
        }
        out.push_str("</ul>\n");
    }
    if r.violations.is_empty() {
        out.push_str("<h3>Violations</h3>\n<p>No violations.</p>\n");
    } else {
        out.push_str("<h3>Violations</h3>\n<ul class=\"violations\">\n");
        for v in &r.violations {
            let _ = writeln!(out, "<li>{}</li>", esc(v));
        }
        out.push_str("</ul>\n");
    }
    let mismatches = r.probes.iter().filter(|p| p.outcome != p.expected).count();
    let _ = writeln!(
        out,
        "<h3>Probes</h3>\n<p>{}, {} not as expected.</p>",
        plural(r.probes.len(), "probe", "probes"),
        mismatches
    );
    out.push_str("<table class=\"probes\">\n<thead><tr><th>source</th><th>destination</th><th>kind</th><th>outcome</th><th>expected</th></tr></thead>\n<tbody>\n");
    for p in &r.probes {
        let _ = writeln!(
            out,
            "<tr{}><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if p.outcome != p.expected {
                " class=\"mismatch\""
            } else {
                ""
            },
            esc(&p.source),
            esc(&p.destination),
            esc(&json_name(p.kind)),
            esc(&json_name(p.outcome)),
            esc(&json_name(p.expected))
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out.push_str("<h3>Transient</h3>\n");
    if r.transient.is_empty() {
        out.push_str("<p>Nothing transient.</p>\n");
    } else {
        out.push_str("<ul class=\"transient\">\n");
        for t in &r.transient {
            let _ = writeln!(out, "<li><code>{}</code></li>", esc(&json_name(t)));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::section;
    use crate::simulation::fixture::{denied, report, simulation, skipped};

    #[test]
    fn no_simulation_says_so() {
        let html = section(None);
        assert!(html.starts_with("<section id=\"simulation\">"));
        assert!(html.contains("carries no simulation"));
    }

    #[test]
    fn the_first_seed_renders_every_field_escaped() {
        let sim = simulation(vec![
            report(42, &["evil -> db admitted <without> an intention"]),
            report(43, &[]),
        ]);
        let html = section(Some(&sim));
        assert!(
            html.contains("<dt>seed</dt><dd><code>42</code></dd>"),
            "{html}"
        );
        assert!(!html.contains("<code>43</code>"), "{html}");
        assert!(html.contains("<code>0123456789abcdef0123456789abcdef</code>"));
        assert!(html.contains("2 probes, 1 not as expected."), "{html}");
        assert!(
            html.contains("<tr class=\"mismatch\"><td><code>evil&lt;x&gt;</code></td><td><code>db</code></td><td>denied-identity</td><td>allowed</td><td>denied_by_intention</td></tr>"),
            "{html}"
        );
        assert!(html.contains("admitted &lt;without&gt; an intention"));
        assert!(
            html.contains(
                "<li><code>{&quot;kind&quot;:&quot;break&quot;,&quot;source&quot;:&quot;web&quot;"
            ),
            "{html}"
        );
    }

    #[test]
    fn the_declared_upstreams_say_what_carried_traffic_and_what_was_denied() {
        let html = section(Some(&simulation(vec![report(1, &[])])));
        assert!(
            html.contains("<p>1 of 1 declared upstream carried traffic.</p>"),
            "{html}"
        );
        assert!(!html.contains("denied: "), "{html}");
        let html = section(Some(&simulation(vec![denied(1)])));
        assert!(
            html.contains("<p>0 of 1 declared upstream carried traffic.</p>"),
            "{html}"
        );
        assert!(html.contains("<li>denied: web -&gt; api: declared upstream denied, 3 of 3 request(s) refused by the intentions (Matched L4 intention: web -&gt; api (precedence 9))</li>"), "{html}");
    }

    #[test]
    fn a_skipped_simulation_has_the_heading_only() {
        assert_eq!(
            section(Some(&skipped())),
            "<section id=\"simulation\">\n<h2>Simulation</h2>\n</section>\n"
        );
    }
}
