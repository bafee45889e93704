//! `mesh-gitops explain CODE`: the long explanation of a diagnostic code, with an example and
//! the fix, as `rustc --explain` prints one. The explanations are the Markdown files under
//! `docs/diagnostics/` (linked from `docs/diagnostics.md`), embedded here, so the binary and the
//! documentation say the same; a test checks that every `Code` has one and that each starts
//! with the code's summary.

use crate::exit::Exit;
use mesh_diagnostics::Code;
use std::io::Write as _;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// The code, e.g. E0311 (as printed in `error[E0311]`).
    #[arg(value_name = "CODE", required_unless_present = "list")]
    code: Option<String>,
    /// List every code with its one-line summary.
    #[arg(long, conflicts_with = "code")]
    list: bool,
}

macro_rules! explanations {
    ($($code:literal,)*) => {
        /// `(code, explanation)` for every code, from `docs/diagnostics/CODE.md`.
        const EXPLANATIONS: &[(&str, &str)] = &[
            $( ($code, include_str!(concat!("../../../docs/diagnostics/", $code, ".md"))), )*
        ];
    };
}

explanations! {
    "E0101",
    "E0102",
    "E0103",
    "E0104",
    "E0105",
    "E0106",
    "E0107",
    "E0201",
    "E0202",
    "E0203",
    "E0204",
    "E0205",
    "E0207",
    "E0208",
    "E0301",
    "E0302",
    "E0303",
    "E0304",
    "E0305",
    "E0306",
    "E0307",
    "E0308",
    "E0309",
    "E0310",
    "E0311",
    "E0312",
    "E0401",
    "E0402",
    "E0403",
    "E0420",
    "E0421",
    "E0422",
    "E0423",
    "E0424",
    "E0425",
    "E0426",
    "W0427",
    "E0501",
    "E0502",
    "E0503",
    "E0504",
    "E0505",
    "E0506",
    "E0507",
    "E0601",
    "E0602",
    "E0603",
    "E0604",
    "E0701",
    "E0702",
    "E0703",
    "E0704",
    "E0705",
    "E0706",
    "E0707",
    "E0708",
    "E0709",
    "W0710",
    "E0801",
    "E0802",
    "W0803",
    "E0901",
    "W0902",
    "E0903",
    "W0904",
    "W0905",
    "E1001",
    "W1002",
    "W1003",
    "W1004",
    "W1005",
    "W1006",
    "W1007",
    "W1008",
    "W1009",
    "W1010",
    "W1011",
    "W1012",
    "W1013",
    "E1014",
    "W1015",
    "W1016",
    "E1101",
    "E1102",
    "E1103",
    "E1201",
    "W1201",
    "W1202",
    "W1203",
    "W1204",
    "W1205",
    "W1206",
    "W1207",
    "W1208",
    "W1209",
}

/// The explanation of `code` (as printed, e.g. `E0311`).
pub fn explanation(code: &str) -> Option<&'static str> {
    EXPLANATIONS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, text)| *text)
}

pub fn run(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if args.list {
        for code in Code::ALL {
            let severity = code.default_severity().as_str();
            writeln!(out, "{code}  {severity:<7}  {}", code.summary())?;
        }
        return Ok(Exit::Ok.into());
    }
    let asked = args.code.as_deref().unwrap_or_default();
    let code = asked.trim().to_ascii_uppercase();
    match Code::from_code_str(&code).and_then(|c| explanation(c.as_str())) {
        Some(text) => {
            out.write_all(text.as_bytes())?;
            Ok(Exit::Ok.into())
        }
        None => {
            eprintln!(
                "mesh-gitops: no diagnostic code {asked:?}: codes look like E0311 or W1004, as \
                 printed in `error[E0311]`; `mesh-gitops explain --list` lists them all (and \
                 docs/diagnostics.md)"
            );
            Ok(Exit::Error.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_an_explanation_with_an_example_and_the_fix() {
        let mut problems = Vec::new();
        for code in Code::ALL {
            let Some(text) = explanation(code.as_str()) else {
                problems.push(format!(
                    "{code} has no explanation: write docs/diagnostics/{code}.md and list it here"
                ));
                continue;
            };
            let title = format!("# {code}: {}\n", code.summary());
            if !text.starts_with(&title) {
                problems.push(format!(
                    "docs/diagnostics/{code}.md does not start with {title:?}"
                ));
            }
            for part in ["\n## Example\n\n```", "\n## Fix\n\n"] {
                if !text.contains(part) {
                    problems.push(format!("docs/diagnostics/{code}.md has no {part:?}"));
                }
            }
            if text.matches("```").count() < 4 {
                problems.push(format!(
                    "docs/diagnostics/{code}.md needs an example and a fixed version"
                ));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn every_explanation_is_of_a_code_and_every_file_is_embedded() {
        for (code, _) in EXPLANATIONS {
            assert!(Code::from_code_str(code).is_some(), "{code} is not a Code");
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/diagnostics");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let code = name.trim_end_matches(".md");
            assert!(
                explanation(code).is_some(),
                "docs/diagnostics/{name} is not embedded: add {code} to EXPLANATIONS"
            );
        }
    }
}
