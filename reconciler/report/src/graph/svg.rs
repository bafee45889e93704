//! The reachability graph as one self-contained SVG (`graph --format svg`, and the picture in
//! the HTML report), placed by `layout`.
//!
//! Without a base, declared upstreams are green (allowed) or red dashed (denied) and pairs an
//! intention allows by name thin grey. With a base, edges the change opened are green, edges it
//! closed red dashed, and everything unchanged grey.

use super::layout::{layout, text_width, DrawEdge, BACK_ROOM, LEGEND_H, MARGIN, NODE_H};
use super::{label, Style};
use crate::escape::xml as xml_escape;
use mesh_check::CheckResult;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// How an edge looks: CSS class, colour, width, dash pattern, what it means.
fn look(
    style: Style,
    diff: bool,
) -> (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
) {
    const GREEN: &str = "#2e7d32";
    const RED: &str = "#c62828";
    const GREY: &str = "#9e9e9e";
    const BLUE: &str = "#1565c0";
    match (style, diff) {
        (Style::ChainAllowed, _) => (
            "chain",
            BLUE,
            "1.4",
            Some("2 3"),
            "routed by the discovery chain",
        ),
        (Style::ChainDenied, _) => (
            "chain-denied",
            RED,
            "1.4",
            Some("2 3"),
            "routed by the discovery chain, denied",
        ),
        (Style::Opened, _) => ("opened", GREEN, "3", None, "opened by this change"),
        (Style::Closed, _) => ("closed", RED, "3", Some("7 4"), "closed by this change"),
        (Style::DeclaredAllowed, false) => (
            "declared-allowed",
            GREEN,
            "1.6",
            None,
            "declared upstream, allowed",
        ),
        (Style::DeclaredDenied, false) => (
            "declared-denied",
            RED,
            "1.6",
            Some("6 4"),
            "declared upstream, denied",
        ),
        (Style::Allowed, false) => ("allowed", GREY, "1", None, "allowed by an intention"),
        (Style::DeclaredAllowed, true) => (
            "unchanged",
            GREY,
            "1.6",
            None,
            "declared upstream, allowed, unchanged",
        ),
        (Style::DeclaredDenied, true) => (
            "unchanged",
            GREY,
            "1.6",
            Some("6 4"),
            "declared upstream, denied, unchanged",
        ),
        (Style::Allowed, true) => (
            "unchanged",
            GREY,
            "1",
            None,
            "allowed by an intention, unchanged",
        ),
    }
}

/// The legend's entries, in order; the chain's only when the picture has chain edges.
fn legend(diff: bool, chains: bool) -> Vec<Style> {
    let mut out = if diff {
        vec![Style::Opened, Style::Closed, Style::Allowed]
    } else {
        vec![
            Style::DeclaredAllowed,
            Style::DeclaredDenied,
            Style::Allowed,
        ]
    };
    if chains {
        out.extend([Style::ChainAllowed, Style::ChainDenied]);
    }
    out
}

fn legend_text(style: Style, diff: bool) -> &'static str {
    match (style, diff) {
        (Style::Allowed, true) => "unchanged",
        _ => look(style, diff).4,
    }
}

fn legend_width(diff: bool, chains: bool) -> i64 {
    legend(diff, chains)
        .into_iter()
        .map(|s| 40 + text_width(legend_text(s, diff)) + 24)
        .sum()
}

/// The edges to draw with their labels: the declared and allowed pairs, then the chains'
/// targets with the route, the share or `failover`.
fn draw_edges<'a>(
    r: &CheckResult,
    links: &'a [super::ChainLink],
    id: &BTreeMap<&str, usize>,
) -> Vec<(DrawEdge, Option<&'a str>)> {
    super::edges(r)
        .iter()
        .filter(|((s, d), _)| s != d)
        .filter_map(|((s, d), style)| {
            Some((
                DrawEdge {
                    from: *id.get(s.as_str())?,
                    to: *id.get(d.as_str())?,
                    style: *style,
                },
                None,
            ))
        })
        .chain(
            links
                .iter()
                .filter(|l| l.source != l.target)
                .filter_map(|l| {
                    Some((
                        DrawEdge {
                            from: *id.get(l.source.as_str())?,
                            to: *id.get(l.target.as_str())?,
                            style: l.style(),
                        },
                        Some(l.label.as_str()),
                    ))
                }),
        )
        .collect()
}

/// The SVG document for `r`'s graph (and its diff, if `r` has a base).
pub fn render(r: &CheckResult) -> String {
    let diff = r.diff.is_some();
    let names = super::nodes(r);
    let id: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let links = super::chain_links(r);
    let chains = !links.is_empty();
    let labelled = draw_edges(r, &links, &id);
    let edges: Vec<DrawEdge> = labelled.iter().map(|(e, _)| e.clone()).collect();
    let reasons: BTreeMap<(&str, &str), &str> = r
        .analysis
        .edges
        .iter()
        .map(|e| {
            (
                (e.source.as_str(), e.destination.as_str()),
                e.reason.as_str(),
            )
        })
        .collect();

    let title = if let Some(b) = &r.base {
        format!("Reachability, and what changed since {}", b.label)
    } else {
        "Reachability: who can reach whom".to_owned()
    };
    let mut out = String::new();
    if names.is_empty() {
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"240\" height=\"48\" viewBox=\"0 0 240 48\" font-family=\"sans-serif\" font-size=\"13\" role=\"img\" aria-label=\"{t}\">\n<title>{t}</title>\n<text x=\"{MARGIN}\" y=\"28\" fill=\"#455a64\">No services.</text>\n</svg>\n",
            t = xml_escape(&title)
        );
        return out;
    }
    let l = layout(&names, &edges, legend_width(diff, chains));
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"13\" role=\"img\" aria-label=\"{t}\">\n<title>{t}</title>",
        w = l.width,
        h = l.height,
        t = xml_escape(&title)
    );
    out.push_str("<defs>\n");
    let mut markers: BTreeSet<(&str, &str)> = BTreeSet::new();
    for s in legend(diff, chains)
        .into_iter()
        .chain(edges.iter().map(|e| e.style))
    {
        let (class, colour, ..) = look(s, diff);
        markers.insert((class, colour));
    }
    for (class, colour) in &markers {
        let _ = writeln!(
            out,
            "  <marker id=\"mg-arrow-{class}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"9\" markerHeight=\"9\" markerUnits=\"userSpaceOnUse\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{colour}\"/></marker>"
        );
    }
    out.push_str("</defs>\n<g class=\"edges\" fill=\"none\">\n");
    let bottom = MARGIN
        + l.boxes
            .iter()
            .map(|b| b.1 - MARGIN + NODE_H)
            .max()
            .unwrap_or(0);
    for (i, e) in edges.iter().enumerate() {
        let (sx, sy, sw) = l.boxes[e.from];
        let (tx, ty, tw) = l.boxes[e.to];
        // The path, and the middle of it for a label.
        let (path, mid) = if l.back[i] || tx <= sx {
            // Backwards: an arc under both nodes, bottom centre to bottom centre.
            let (ax, ay) = (sx + sw / 2, sy + NODE_H);
            let (bx, by) = (tx + tw / 2, ty + NODE_H);
            let low = bottom + BACK_ROOM - 8;
            let mid = ((ax + bx) / 2, (ay + by) / 8 + low * 3 / 4 - 4);
            (format!("M{ax},{ay} C{ax},{low} {bx},{low} {bx},{by}"), mid)
        } else {
            let (ax, ay) = (sx + sw, sy + NODE_H / 2);
            let (bx, by) = (tx, ty + NODE_H / 2);
            let dx = (bx - ax) / 2;
            let mid = ((ax + bx) / 2, (ay + by) / 2 - 4);
            let path = format!("M{ax},{ay} C{},{ay} {},{by} {bx},{by}", ax + dx, bx - dx);
            (path, mid)
        };
        let (class, colour, width, dash, meaning) = look(e.style, diff);
        let (s, d) = (&names[e.from], &names[e.to]);
        let why = reasons
            .get(&(s.as_str(), d.as_str()))
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  <path class=\"edge {class}\" data-from=\"{}\" data-to=\"{}\" d=\"{path}\" stroke=\"{colour}\" stroke-width=\"{width}\"{} marker-end=\"url(#mg-arrow-{class})\"><title>{} → {}: {meaning}{}</title></path>",
            xml_escape(s),
            xml_escape(d),
            dash.map(|p| format!(" stroke-dasharray=\"{p}\""))
                .unwrap_or_default(),
            xml_escape(label(s)),
            xml_escape(label(d)),
            xml_escape(&why)
        );
        if let Some(text) = labelled[i].1 {
            let _ = writeln!(
                out,
                "  <text class=\"edge-label {class}\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\" fill=\"{colour}\" stroke=\"none\">{}</text>",
                mid.0,
                mid.1,
                xml_escape(text)
            );
        }
    }
    out.push_str("</g>\n<g class=\"nodes\">\n");
    for (v, name) in names.iter().enumerate() {
        let (x, y, w) = l.boxes[v];
        let (fill, dash) = if name == "*" {
            ("#f5f5f5", " stroke-dasharray=\"4 3\"")
        } else {
            ("#ffffff", "")
        };
        let _ = writeln!(
            out,
            "  <g class=\"node\" id=\"mg-node-{v}\" data-service=\"{}\"><title>{}</title><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{NODE_H}\" rx=\"6\" fill=\"{fill}\" stroke=\"#455a64\"{dash}/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#263238\">{}</text></g>",
            xml_escape(name),
            xml_escape(label(name)),
            x + w / 2,
            y + 18,
            xml_escape(label(name))
        );
    }
    out.push_str("</g>\n<g class=\"legend\">\n");
    let mut x = MARGIN;
    let y = l.height - LEGEND_H / 2;
    for s in legend(diff, chains) {
        let (class, colour, width, dash, _) = look(s, diff);
        let text = legend_text(s, diff);
        let _ = writeln!(
            out,
            "  <path d=\"M{x},{y} L{},{y}\" stroke=\"{colour}\" stroke-width=\"{width}\"{} marker-end=\"url(#mg-arrow-{class})\"/><text x=\"{}\" y=\"{}\" fill=\"#455a64\">{}</text>",
            x + 30,
            dash.map(|p| format!(" stroke-dasharray=\"{p}\""))
                .unwrap_or_default(),
            x + 40,
            y + 4,
            xml_escape(text)
        );
        x += 40 + text_width(text) + 24;
    }
    out.push_str("</g>\n</svg>\n");
    out
}
