//! `check --format github`: GitHub workflow commands (`::error file=...,line=...,col=...,
//! title=...::message`), one per finding and per simulated violation, then a notice with the
//! verdict.

use super::{counts, verdict};
use mesh_check::{location, CheckResult};
use std::fmt::Write as _;

/// A command's message: `%`, CR and LF are escaped (GitHub's `escapeData`).
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A command's property: also `:` and `,`, which end it (GitHub's `escapeProperty`).
fn prop(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

pub fn render(r: &CheckResult) -> String {
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

#[cfg(test)]
mod tests {
    use super::{prop, render};
    use crate::check::fixture::one_denied;

    #[test]
    fn properties_cannot_end_early() {
        assert_eq!(prop("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }

    #[test]
    fn each_line_is_one_command_and_the_last_the_verdict() {
        let out = render(&one_denied());
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.iter().all(|l| l.starts_with("::")), "{out}");
        assert!(
            lines[0].starts_with("::error file=services.hcl,line="),
            "{out}"
        );
        assert!(lines
            .last()
            .unwrap()
            .starts_with("::notice title=mesh-gitops check::fail (1 errors"));
    }
}
