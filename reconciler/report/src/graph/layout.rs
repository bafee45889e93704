//! Where the SVG's nodes go, without Graphviz. The layout is layered and deterministic: a
//! greedy order with few backward edges (Eades, Lin and Smyth; ties by name) decides which edges
//! close a cycle, and those are drawn as arcs underneath; every service goes in the layer after
//! the furthest service that reaches it over the rest (upstreams flow left to right); a few
//! barycenter sweeps order each layer to shorten edges; a layer taller than `ROWS_PER_COLUMN`
//! wraps into more columns. All geometry is integer pixels, so the same repository always gives
//! the same bytes.

use super::{label, Style};
use std::collections::BTreeSet;

const ROWS_PER_COLUMN: usize = 12;
pub(super) const NODE_H: i64 = 28;
const ROW_PITCH: i64 = 44;
const COL_GAP: i64 = 96;
pub(super) const MARGIN: i64 = 24;
const MIN_NODE_W: i64 = 64;
/// Extra room below the nodes for the arcs of edges that point backwards.
pub(super) const BACK_ROOM: i64 = 44;
pub(super) const LEGEND_H: i64 = 36;
const SWEEPS: usize = 4;

/// Text width estimate at 13 px sans-serif: 7.5 px a character.
pub(super) fn text_width(s: &str) -> i64 {
    (s.chars().count() as i64 * 15 + 1) / 2
}

/// One edge to draw.
#[derive(Clone)]
pub(super) struct DrawEdge {
    pub(super) from: usize,
    pub(super) to: usize,
    pub(super) style: Style,
}

/// Where each node goes: its box (x, y, width), which edges point backwards (closing a cycle),
/// and the picture's size.
pub(super) struct Layout {
    pub(super) boxes: Vec<(i64, i64, i64)>,
    pub(super) back: Vec<bool>,
    pub(super) width: i64,
    pub(super) height: i64,
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

/// The boxes for `names` and the picture's size, at least as wide as the legend.
pub(super) fn layout(names: &[String], edges: &[DrawEdge], legend_w: i64) -> Layout {
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
