//! `check --format junit`: JUnit XML for CI test reports. One test case per declared upstream
//! (failing when denied), per finding (failing when an error) and per simulated seed (failing
//! with its violations and the command that replays it).

use crate::escape::xml as xml_escape;
use mesh_check::{location, CheckResult};
use std::fmt::Write as _;

pub fn render(r: &CheckResult) -> String {
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

#[cfg(test)]
mod tests {
    use super::render;
    use crate::check::fixture::one_denied;
    use crate::simulation::fixture::{report, simulation};

    /// The value of `attribute="..."` in the first line that has it.
    fn attribute<'a>(xml: &'a str, attribute: &str) -> &'a str {
        let start = xml.find(&format!(" {attribute}=\"")).unwrap() + attribute.len() + 3;
        &xml[start..start + xml[start..].find('"').unwrap()]
    }

    #[test]
    fn the_counts_match_the_cases_and_a_failing_seed_is_a_failure() {
        let mut r = one_denied();
        r.simulation = Some(simulation(vec![
            report(1, &[]),
            report(2, &["safety: <x>"]),
        ]));
        let xml = render(&r);
        let cases = xml.matches("<testcase ").count();
        let failed = xml.matches("<failure ").count();
        assert_eq!(attribute(&xml, "tests"), cases.to_string());
        assert_eq!(attribute(&xml, "failures"), failed.to_string());
        // web -> api denied, its finding, and seed 2.
        assert!(failed >= 3, "{xml}");
        assert!(xml.contains("<failure message=\"1 violation(s)\">safety: &lt;x&gt;\nreplay: mesh-gitops simulate repo --seed 2</failure>"), "{xml}");
        assert!(xml.contains("<testcase classname=\"simulation\" name=\"simulation seed 1\"/>"));
    }
}
