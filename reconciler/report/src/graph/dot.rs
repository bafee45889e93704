//! `graph --format dot`: declared upstreams solid green (allowed) or dashed red (denied), pairs
//! an intention allows by name thin grey; with a base, edges the change opened bold green and
//! edges it closed dotted red; a discovery chain's targets dotted blue (red when denied) with
//! the route, the share or `failover` as label.

use super::{chain_links, edges, label, nodes, Style};
use mesh_check::CheckResult;
use std::fmt::Write as _;

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn render(r: &CheckResult) -> String {
    let mut out = String::from("digraph mesh {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
    for n in nodes(r) {
        let _ = writeln!(out, "  {} [label={}];", quote(&n), quote(label(&n)));
    }
    for ((s, d), style) in edges(r) {
        let attrs = match style {
            Style::DeclaredAllowed => "color=\"#2e7d32\"",
            Style::DeclaredDenied => "color=\"#c62828\", style=dashed, label=\"denied\"",
            Style::Allowed => "color=\"#9e9e9e\"",
            Style::Opened => "color=\"#2e7d32\", penwidth=2.5, label=\"opened\"",
            Style::Closed => "color=\"#c62828\", style=dotted, penwidth=2.5, label=\"closed\"",
            Style::ChainAllowed | Style::ChainDenied => continue,
        };
        let _ = writeln!(out, "  {} -> {} [{attrs}];", quote(&s), quote(&d));
    }
    // The chains' targets: dotted, labelled with the route, the share or `failover`.
    for l in chain_links(r) {
        let (color, denied) = if l.allowed {
            ("#1565c0", "")
        } else {
            ("#c62828", " denied")
        };
        let _ = writeln!(
            out,
            "  {} -> {} [color=\"{color}\", style=dotted, label={}];",
            quote(&l.source),
            quote(&l.target),
            quote(&format!("{}{denied}", l.label))
        );
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::check::fixture::api_opened;

    #[test]
    fn an_opened_edge_is_labelled() {
        let dot = render(&api_opened());
        assert!(
            dot.contains(
                "  \"web\" -> \"api\" [color=\"#2e7d32\", penwidth=2.5, label=\"opened\"];\n"
            ),
            "{dot}"
        );
        assert!(
            dot.contains("  \"web\" -> \"db\" [color=\"#2e7d32\"];\n"),
            "{dot}"
        );
        assert!(dot.ends_with("}\n"));
    }

    #[test]
    fn quotes_escape_backslashes_before_quotes() {
        assert_eq!(super::quote(r#"a"b\"#), r#""a\"b\\""#);
    }
}
