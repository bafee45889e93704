//! The reachability graph as one self-contained SVG (`graph --format svg`, and the picture in
//! the HTML report), laid out here without Graphviz.
//!
//! The layout is layered and deterministic: a greedy order with few backward edges (Eades, Lin
//! and Smyth; ties by name) decides which edges close a cycle, and those are drawn as arcs
//! underneath; every service goes in the layer after the furthest service that reaches it over
//! the rest (upstreams flow left to right); a few barycenter sweeps order each layer to shorten
//! edges; a layer taller than `ROWS_PER_COLUMN` wraps into more columns. All geometry is integer
//! pixels, so the same repository always gives the same bytes.
//!
//! Without a base, declared upstreams are green (allowed) or red dashed (denied) and pairs an
//! intention allows by name thin grey. With a base, edges the change opened are green, edges it
//! closed red dashed, and everything unchanged grey.

use super::{label, Style};
use crate::escape::xml as xml_escape;
use mesh_check::CheckResult;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

const ROWS_PER_COLUMN: usize = 12;
const NODE_H: i64 = 28;
const ROW_PITCH: i64 = 44;
const COL_GAP: i64 = 96;
const MARGIN: i64 = 24;
const MIN_NODE_W: i64 = 64;
/// Extra room below the nodes for the arcs of edges that point backwards.
const BACK_ROOM: i64 = 44;
const LEGEND_H: i64 = 36;
const SWEEPS: usize = 4;

/// Text width estimate at 13 px sans-serif: 7.5 px a character.
fn text_width(s: &str) -> i64 {
    (s.chars().count() as i64 * 15 + 1) / 2
}

/// One edge to draw.
struct DrawEdge {
    from: usize,
    to: usize,
    style: Style,
}

/// Where each node goes: its box (x, y, width), which edges point backwards (closing a cycle),
/// and the picture's size.
struct Layout {
    boxes: Vec<(i64, i64, i64)>,
    back: Vec<bool>,
    width: i64,
    height: i64,
}

/// A node order in which few edges point backwards (Eades, Lin and Smyth's greedy heuristic):
/// sinks go to the right end, sources to the left, and otherwise the node with the most
/// outgoing over incoming edges goes left; ties go to the first name.
fn feedback_order(n: usize, edges: &[DrawEdge]) -> Vec<usize> {
    let mut outs: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut ins: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in edges {
        outs[e.from].push(e.to);
        ins[e.to].push(e.from);
    }
    let mut indegree: Vec<i64> = ins.iter().map(|l| l.len() as i64).collect();
    let mut outdegree: Vec<i64> = outs.iter().map(|l| l.len() as i64).collect();
    let key = |v: usize, i: &[i64], o: &[i64]| (i[v] - o[v], v);
    let mut by_delta: BTreeSet<(i64, usize)> =
        (0..n).map(|v| key(v, &indegree, &outdegree)).collect();
    let mut sinks: BTreeSet<usize> = (0..n).filter(|&v| outdegree[v] == 0).collect();
    let mut sources: BTreeSet<usize> = (0..n).filter(|&v| indegree[v] == 0).collect();
    let mut alive = vec![true; n];
    let (mut left, mut right) = (Vec::new(), Vec::new());
    loop {
        let (v, to_left) = if let Some(v) = sinks.pop_first() {
            (v, false)
        } else if let Some(v) = sources.pop_first() {
            (v, true)
        } else if let Some(&(_, v)) = by_delta.first() {
            (v, true)
        } else {
            break;
        };
        if to_left {
            left.push(v);
        } else {
            right.push(v);
        }
        alive[v] = false;
        by_delta.remove(&key(v, &indegree, &outdegree));
        sinks.remove(&v);
        sources.remove(&v);
        for &w in &outs[v] {
            if alive[w] {
                by_delta.remove(&key(w, &indegree, &outdegree));
                indegree[w] -= 1;
                by_delta.insert(key(w, &indegree, &outdegree));
                if indegree[w] == 0 {
                    sources.insert(w);
                }
            }
        }
        for &u in &ins[v] {
            if alive[u] {
                by_delta.remove(&key(u, &indegree, &outdegree));
                outdegree[u] -= 1;
                by_delta.insert(key(u, &indegree, &outdegree));
                if outdegree[u] == 0 {
                    sinks.insert(u);
                }
            }
        }
    }
    right.reverse();
    left.extend(right);
    left
}

/// The layer of every node: 0 for nodes nothing reaches, otherwise one more than the furthest
/// predecessor, over the edges that point forwards in `feedback_order`. Also returns which
/// edges point backwards (each closes a cycle).
fn layers(n: usize, edges: &[DrawEdge]) -> (Vec<usize>, Vec<bool>) {
    let mut rank = vec![0usize; n];
    for (i, v) in feedback_order(n, edges).into_iter().enumerate() {
        rank[v] = i;
    }
    let back: Vec<bool> = edges.iter().map(|e| rank[e.from] > rank[e.to]).collect();
    // Longest path, visiting nodes in rank order (every forward edge goes to a later rank).
    let mut by_rank: Vec<usize> = (0..n).collect();
    by_rank.sort_by_key(|&v| rank[v]);
    let mut outs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, e) in edges.iter().enumerate() {
        if !back[i] {
            outs[e.from].push(e.to);
        }
    }
    let mut layer = vec![0usize; n];
    for v in by_rank {
        for &w in &outs[v] {
            layer[w] = layer[w].max(layer[v] + 1);
        }
    }
    (layer, back)
}

/// Orders the nodes of each layer by the mean position of their neighbours in the layer before
/// (sweeping right) or after (sweeping left); ties keep the previous order.
fn order(n: usize, layer: &[usize], edges: &[DrawEdge]) -> Vec<Vec<usize>> {
    let count = layer.iter().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); count];
    for v in 0..n {
        rows[layer[v]].push(v);
    }
    let mut neighbours: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in edges {
        neighbours[e.from].push(e.to);
        neighbours[e.to].push(e.from);
    }
    let mut pos = vec![0i64; n];
    let index = |rows: &Vec<Vec<usize>>, pos: &mut Vec<i64>| {
        for row in rows {
            for (i, &v) in row.iter().enumerate() {
                pos[v] = i as i64;
            }
        }
    };
    index(&rows, &mut pos);
    for _ in 0..SWEEPS {
        let forward: Vec<(usize, usize)> = (1..count).map(|l| (l, l - 1)).collect();
        let backward: Vec<(usize, usize)> = (0..count.saturating_sub(1))
            .rev()
            .map(|l| (l, l + 1))
            .collect();
        for (l, other) in forward.into_iter().chain(backward) {
            // (sum of neighbour positions, how many); a node with none keeps its own place.
            let key = |v: usize| -> (i64, i64) {
                let near: Vec<i64> = neighbours[v]
                    .iter()
                    .filter(|&&w| layer[w] == other)
                    .map(|&w| pos[w])
                    .collect();
                if near.is_empty() {
                    (pos[v], 1)
                } else {
                    (near.iter().sum(), near.len() as i64)
                }
            };
            let mut keyed: Vec<((i64, i64), i64, usize)> =
                rows[l].iter().map(|&v| (key(v), pos[v], v)).collect();
            keyed.sort_by(|a, b| {
                let ((sa, ca), pa, _) = *a;
                let ((sb, cb), pb, _) = *b;
                (sa * cb).cmp(&(sb * ca)).then(pa.cmp(&pb))
            });
            rows[l] = keyed.into_iter().map(|(_, _, v)| v).collect();
            for (i, &v) in rows[l].iter().enumerate() {
                pos[v] = i as i64;
            }
        }
    }
    rows
}

fn layout(names: &[String], edges: &[DrawEdge], legend_w: i64) -> Layout {
    let n = names.len();
    let (layer, back) = layers(n, edges);
    let back_room = if back.iter().any(|b| *b) {
        BACK_ROOM
    } else {
        0
    };
    let rows = order(n, &layer, edges);
    let columns: Vec<&[usize]> = rows
        .iter()
        .flat_map(|row| row.chunks(ROWS_PER_COLUMN))
        .collect();
    let tallest = columns.iter().map(|c| c.len()).max().unwrap_or(0) as i64;
    let mut boxes = vec![(0, 0, 0); n];
    let mut x = MARGIN;
    for column in &columns {
        let w = column
            .iter()
            .map(|&v| text_width(label(&names[v])) + 24)
            .max()
            .unwrap_or(0)
            .max(MIN_NODE_W);
        // Shorter columns are centred on the tallest.
        let top = MARGIN + (tallest - column.len() as i64) * ROW_PITCH / 2;
        for (i, &v) in column.iter().enumerate() {
            boxes[v] = (x, top + i as i64 * ROW_PITCH, w);
        }
        x += w + COL_GAP;
    }
    let graph_w = x - COL_GAP + MARGIN;
    let graph_h = MARGIN + tallest * ROW_PITCH - (ROW_PITCH - NODE_H);
    Layout {
        boxes,
        back,
        width: graph_w.max(legend_w + 2 * MARGIN),
        height: graph_h + back_room + LEGEND_H,
    }
}

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
    match (style, diff) {
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

/// The legend's entries, in order.
fn legend(diff: bool) -> Vec<Style> {
    if diff {
        vec![Style::Opened, Style::Closed, Style::Allowed]
    } else {
        vec![
            Style::DeclaredAllowed,
            Style::DeclaredDenied,
            Style::Allowed,
        ]
    }
}

fn legend_text(style: Style, diff: bool) -> &'static str {
    match (style, diff) {
        (Style::Allowed, true) => "unchanged",
        _ => look(style, diff).4,
    }
}

fn legend_width(diff: bool) -> i64 {
    legend(diff)
        .into_iter()
        .map(|s| 40 + text_width(legend_text(s, diff)) + 24)
        .sum()
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
    let styled = super::edges(r);
    let edges: Vec<DrawEdge> = styled
        .iter()
        .filter(|((s, d), _)| s != d)
        .filter_map(|((s, d), style)| {
            Some(DrawEdge {
                from: *id.get(s.as_str())?,
                to: *id.get(d.as_str())?,
                style: *style,
            })
        })
        .collect();
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
    let l = layout(&names, &edges, legend_width(diff));
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"13\" role=\"img\" aria-label=\"{t}\">\n<title>{t}</title>",
        w = l.width,
        h = l.height,
        t = xml_escape(&title)
    );
    out.push_str("<defs>\n");
    let mut markers: BTreeSet<(&str, &str)> = BTreeSet::new();
    for s in legend(diff)
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
        let path = if l.back[i] || tx <= sx {
            // Backwards: an arc under both nodes, bottom centre to bottom centre.
            let (ax, ay) = (sx + sw / 2, sy + NODE_H);
            let (bx, by) = (tx + tw / 2, ty + NODE_H);
            let low = bottom + BACK_ROOM - 8;
            format!("M{ax},{ay} C{ax},{low} {bx},{low} {bx},{by}")
        } else {
            let (ax, ay) = (sx + sw, sy + NODE_H / 2);
            let (bx, by) = (tx, ty + NODE_H / 2);
            let dx = (bx - ax) / 2;
            format!("M{ax},{ay} C{},{ay} {},{by} {bx},{by}", ax + dx, bx - dx)
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
    for s in legend(diff) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: usize, to: usize) -> DrawEdge {
        DrawEdge {
            from,
            to,
            style: Style::DeclaredAllowed,
        }
    }

    #[test]
    fn layers_follow_upstreams_and_cycles_are_broken_deterministically() {
        // 0 -> 1 -> 2, 0 -> 2, and 2 -> 0 closes a cycle.
        let edges = [edge(0, 1), edge(1, 2), edge(0, 2), edge(2, 0)];
        let (layer, back) = layers(4, &edges);
        assert_eq!(layer, [0, 1, 2, 0]);
        assert_eq!(back, [false, false, false, true]);
    }

    #[test]
    fn a_cycle_is_broken_at_the_edge_back_to_the_front() {
        // api 0, cache 1, db 2, metrics 3, web 4: web fans out to api and cache, both reach db,
        // db declares web (the cycle), metrics reaches api and db.
        let edges = [
            edge(4, 0),
            edge(4, 1),
            edge(0, 2),
            edge(1, 2),
            edge(2, 4),
            edge(3, 0),
            edge(3, 2),
        ];
        let (layer, back) = layers(5, &edges);
        assert_eq!(back, [false, false, false, false, true, false, false]);
        assert_eq!(layer, [1, 1, 2, 0, 0]);
    }

    #[test]
    fn ordering_pulls_neighbours_level() {
        // 0 -> 3 and 1 -> 2: layer 1 is reordered so the edges do not cross.
        let edges = [edge(0, 3), edge(1, 2)];
        let (layer, _) = layers(4, &edges);
        let rows = order(4, &layer, &edges);
        assert_eq!(rows, [vec![0, 1], vec![3, 2]]);
    }

    #[test]
    fn fifty_services_wrap_into_columns() {
        let names: Vec<String> = (0..50).map(|i| format!("service-{i:02}")).collect();
        let edges: Vec<DrawEdge> = (1..50).map(|i| edge(0, i)).collect();
        let l = layout(&names, &edges, 0);
        // One source, then 49 upstreams in columns of at most ROWS_PER_COLUMN.
        let xs: BTreeSet<i64> = l.boxes.iter().map(|b| b.0).collect();
        assert_eq!(xs.len(), 1 + 49usize.div_ceil(ROWS_PER_COLUMN));
        assert!(l.height < 12 * ROW_PITCH + 2 * MARGIN + LEGEND_H + BACK_ROOM);
    }
}
