//! Text and JSON renderings of diagnostics.
//!
//! Text: `path:line:col: error[CODE]: message`, then the source line with a caret underline,
//! secondary labels, and `= help: ...`. The first line is what editors and CI logs match on.

use crate::{Diagnostic, SourceMap};
use serde::Serialize;

/// The JSON form: `{"code","severity","message","file","line","column"}` plus optional extras.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonDiagnostic {
    pub code: String,
    pub severity: String,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_column: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The field the problem is about (see `Diagnostic::field`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

pub fn render_json(diags: &[Diagnostic], sources: &SourceMap) -> Vec<JsonDiagnostic> {
    diags
        .iter()
        .map(|d| {
            let (file, line, column, end_line, end_column) = match d.span {
                Some(s) => {
                    let loc = sources.location(s);
                    let (el, ec) = sources.line_col(s.file, s.end);
                    (
                        Some(loc.file),
                        Some(loc.line),
                        Some(loc.column),
                        Some(el),
                        Some(ec),
                    )
                }
                None => (None, None, None, None, None),
            };
            JsonDiagnostic {
                code: d.code.as_str().to_owned(),
                severity: d.severity.as_str().to_owned(),
                message: d.message.clone(),
                file,
                line,
                column,
                end_line,
                end_column,
                help: d.help.clone(),
                field: d.field.clone(),
            }
        })
        .collect()
}

/// Renders one diagnostic as text (no colour; stable for golden files).
pub fn render_text(d: &Diagnostic, sources: &SourceMap) -> String {
    let mut out = String::new();
    let head = format!("{}[{}]: {}", d.severity.as_str(), d.code, d.message);
    match d.span {
        None => {
            out.push_str(&head);
            out.push('\n');
        }
        Some(span) => {
            let loc = sources.location(span);
            out.push_str(&format!(
                "{}:{}:{}: {}\n",
                loc.file, loc.line, loc.column, head
            ));
            excerpt(&mut out, sources, span, None);
            for (lspan, msg) in &d.labels {
                let l = sources.location(*lspan);
                out.push_str(&format!(
                    "  --> {}:{}:{}: {}\n",
                    l.file, l.line, l.column, msg
                ));
                excerpt(&mut out, sources, *lspan, None);
            }
        }
    }
    if let Some(help) = &d.help {
        out.push_str(&format!("  = help: {help}\n"));
    }
    out
}

fn excerpt(out: &mut String, sources: &SourceMap, span: crate::Span, label: Option<&str>) {
    let (line, col) = sources.line_col(span.file, span.start);
    let (end_line, end_col) = sources.line_col(span.file, span.end);
    let text = sources.line_text(span.file, line);
    let gutter = line.to_string();
    let pad = " ".repeat(gutter.len());
    // Tabs would misalign the caret; show them as single spaces.
    let shown: String = text
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    out.push_str(&format!("{pad} |\n{gutter} | {shown}\n"));
    let width = if end_line == line && end_col > col {
        (end_col - col) as usize
    } else {
        (shown.chars().count() + 1)
            .saturating_sub(col as usize)
            .max(1)
    };
    let width = width.clamp(1, 120);
    out.push_str(&format!(
        "{pad} | {}{}{}\n",
        " ".repeat(col as usize - 1),
        "^".repeat(width),
        label.map(|l| format!(" {l}")).unwrap_or_default()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Code, Span};

    #[test]
    fn text_has_the_location_line_first_then_an_excerpt_and_help() {
        let mut map = SourceMap::new();
        let f = map.add(
            "intentions/db.hcl",
            "Kind = \"service-intentions\"\nNmae = \"db\"\n",
        );
        let d = Diagnostic::new(
            Code::UnknownKey,
            Span::new(f, 28, 32),
            "unknown key \"Nmae\"",
        )
        .with_help("did you mean \"Name\"?");
        let text = render_text(&d, &map);
        assert_eq!(
            text,
            "intentions/db.hcl:2:1: error[E0201]: unknown key \"Nmae\"\n  |\n2 | Nmae = \"db\"\n  | ^^^^\n  = help: did you mean \"Name\"?\n"
        );
        let json = render_json(&[d], &map);
        assert_eq!(json[0].line, Some(2));
        assert_eq!(json[0].column, Some(1));
        assert_eq!(json[0].code, "E0201");
    }
}
