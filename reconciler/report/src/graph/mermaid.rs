//! `graph --format mermaid`, and the graph in `check`'s Markdown report (GitHub renders it in
//! PR comments and step summaries). Mermaid ids must be plain: names map to `n0`, `n1`, ...
//! with the name as label; each edge's colour is a `linkStyle` by its index.

use super::{chain_links, edges, label, nodes, Style};
use mesh_check::CheckResult;
use std::fmt::Write as _;

pub fn render(r: &CheckResult) -> String {
    let names = nodes(r);
    let id = |n: &str| format!("n{}", names.iter().position(|x| x == n).unwrap_or(0));
    let mut out = String::from("flowchart LR\n");
    for n in &names {
        let shown = format!("{}{}", label(n), crate::check::live_mark(r, n));
        let _ = writeln!(out, "  {}[\"{}\"]", id(n), shown.replace('"', "'"));
    }
    let mut link_styles = Vec::new();
    for (i, ((s, d), style)) in edges(r).into_iter().enumerate() {
        let (arrow, color) = match style {
            Style::DeclaredAllowed => ("-->", "#2e7d32"),
            Style::DeclaredDenied => ("-. denied .->", "#c62828"),
            Style::Allowed => ("-->", "#9e9e9e"),
            Style::Opened => ("== opened ==>", "#2e7d32"),
            Style::Closed => ("-. closed .->", "#c62828"),
            Style::ChainAllowed | Style::ChainDenied => continue,
        };
        let _ = writeln!(out, "  {} {arrow} {}", id(&s), id(&d));
        link_styles.push(format!("  linkStyle {i} stroke:{color}"));
    }
    // The chains' targets, dotted and labelled, after the other edges (link indices go on).
    for l in chain_links(r) {
        let i = link_styles.len();
        let (color, denied) = if l.allowed {
            ("#1565c0", "")
        } else {
            ("#c62828", " denied")
        };
        let text = format!("{}{denied}", l.label).replace('"', "'");
        let _ = writeln!(
            out,
            "  {} -.->|\"{text}\"| {}",
            id(&l.source),
            id(&l.target)
        );
        link_styles.push(format!("  linkStyle {i} stroke:{color}"));
    }
    for l in link_styles {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::check::fixture::{api_opened, one_denied};

    #[test]
    fn every_edge_has_the_link_style_of_its_index() {
        let m = render(&one_denied());
        // api n0, db n1, web n2; edges sorted by (source, destination).
        assert!(
            m.starts_with("flowchart LR\n  n0[\"api\"]\n  n1[\"db\"]\n  n2[\"web\"]\n"),
            "{m}"
        );
        assert!(m.contains("  n2 -. denied .-> n0\n  n2 --> n1\n"), "{m}");
        let edges = m
            .lines()
            .filter(|l| l.contains(" n") && l.contains("->"))
            .count();
        let styles = m.lines().filter(|l| l.starts_with("  linkStyle ")).count();
        assert_eq!(edges, styles, "{m}");
        assert!(render(&api_opened()).contains("  n2 == opened ==> n0\n"));
    }
}
