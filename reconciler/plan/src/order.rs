//! The whole plan: config entries, ACL objects and the CA configuration, ordered as a
//! dependency graph.
//!
//! Edges are the real dependencies: a role after the policies it links, a token after its
//! policies and roles, a deleted token before the deleted roles and policies it linked, and the
//! config-entry steps as the chain [`crate::plan`] already ordered (protocol kinds, then the
//! make-before-break intention writes, then deletions in reverse). Among steps the graph leaves
//! free, a fixed priority decides: ACL writes, config entries, ACL deletions, inventory
//! clean-up, and the CA configuration last, because a root rotation should happen with every
//! other change already in place.

use crate::acl::{self, AclKind, DesiredAcl, Inventory, ObservedAcl, ObservedCa};
use crate::{Action, ObjectKind, ObservedEntry, Plan, PlanError, PlanOptions, Step};
use mesh_model::{CaConfig, ConfigEntry};
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// Everything a plan is computed from.
pub struct PlanInput<'a> {
    /// Desired config entries, normalized and marked ([`crate::marked_entries`]).
    pub entries: &'a [ConfigEntry],
    pub observed_entries: &'a [ObservedEntry],
    /// Declared upstreams whose reachability the order protects.
    pub declared: &'a [(String, String)],
    pub default_allow: bool,
    pub acl: &'a [DesiredAcl],
    pub observed_acl: &'a [ObservedAcl],
    pub inventory: &'a Inventory,
    pub ca: Option<&'a CaConfig>,
    pub observed_ca: Option<&'a ObservedCa>,
}

fn phase(s: &Step) -> u8 {
    match (&s.kind, s.action) {
        (ObjectKind::CaConfig, _) => 4,
        (ObjectKind::Acl(_), Action::Forget) => 3,
        (ObjectKind::Acl(_), Action::Delete) => 2,
        (ObjectKind::Acl(_), _) => 0,
        (ObjectKind::ConfigEntry(_), _) => 1,
    }
}

fn acl_rank(s: &Step) -> usize {
    let k = s.kind.acl().map(|k| k as usize).unwrap_or(0);
    if s.action == Action::Delete {
        2 - k
    } else {
        k
    }
}

/// Names an observed body links to.
fn linked(body: Option<&Value>) -> Vec<(AclKind, String)> {
    let names = |k: &str| -> Vec<String> {
        body.and_then(|b| b.get(k))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    names("Policies")
        .into_iter()
        .map(|n| (AclKind::Policy, n))
        .chain(names("Roles").into_iter().map(|n| (AclKind::Role, n)))
        .collect()
}

/// Plans every object the repository manages and orders the steps.
pub fn plan_all(input: &PlanInput<'_>, opts: &PlanOptions) -> Result<Plan, PlanError> {
    let entry_opts = PlanOptions {
        allow_empty: true,
        recorded: input.inventory.entries().collect(),
        ..opts.clone()
    };
    let entries = crate::plan(
        input.entries,
        input.observed_entries,
        input.declared,
        input.default_allow,
        &entry_opts,
    )?;
    let acl = acl::plan_acl(input.acl, input.observed_acl, input.inventory, opts.adopt);
    let ca = acl::plan_ca(input.ca, input.observed_ca);

    // The empty-prune guard over everything owned.
    let owned_entries = crate::ownership::owned_count(input.observed_entries, &entry_opts);
    let owned = owned_entries + acl.owned_total;
    let deleted = entries
        .steps
        .iter()
        .chain(&acl.steps)
        .filter(|s| s.action == Action::Delete)
        .count();
    if owned > 0 && deleted == owned && !opts.allow_empty {
        return Err(PlanError::WouldDeleteEverything(owned));
    }
    if let Some(max) = opts.max_deletes.filter(|max| deleted > *max) {
        return Err(PlanError::TooManyDeletes {
            deletes: deleted,
            max,
        });
    }

    let steps: Vec<Step> = entries
        .steps
        .into_iter()
        .chain(acl.steps)
        .chain(ca)
        .collect();
    let mut graph: DiGraph<usize, ()> = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..steps.len()).map(|i| graph.add_node(i)).collect();
    // The config-entry chain, in the order `plan` chose.
    let entry_nodes: Vec<usize> = (0..steps.len())
        .filter(|&i| phase(&steps[i]) == 1)
        .collect();
    for w in entry_nodes.windows(2) {
        graph.add_edge(nodes[w[0]], nodes[w[1]], ());
    }
    let by_name: BTreeMap<(AclKind, &str, bool), usize> = steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let k = s.kind.acl()?;
            Some(((k, s.name.as_str(), s.action == Action::Delete), i))
        })
        .collect();
    let desired_links: BTreeMap<(AclKind, &str), &[(AclKind, String)]> = input
        .acl
        .iter()
        .map(|d| ((d.kind, d.name.as_str()), d.links.as_slice()))
        .collect();
    for (i, s) in steps.iter().enumerate() {
        let Some(kind) = s.kind.acl() else {
            continue;
        };
        match s.action {
            Action::Create | Action::Update | Action::Record => {
                for (lk, ln) in desired_links
                    .get(&(kind, s.name.as_str()))
                    .copied()
                    .unwrap_or(&[])
                {
                    if let Some(&j) = by_name.get(&(*lk, ln.as_str(), false)) {
                        graph.add_edge(nodes[j], nodes[i], ());
                    }
                }
            }
            Action::Delete => {
                for (lk, ln) in linked(s.before.as_ref()) {
                    if let Some(&j) = by_name.get(&(lk, ln.as_str(), true)) {
                        graph.add_edge(nodes[i], nodes[j], ());
                    }
                }
            }
            Action::Forget => {}
        }
    }
    let priority = |i: usize| {
        let s = &steps[i];
        let within = if phase(s) == 1 { i } else { acl_rank(s) };
        Reverse((phase(s), within, s.name.clone(), i))
    };
    let mut indegree: Vec<usize> = nodes
        .iter()
        .map(|&n| {
            graph
                .neighbors_directed(n, petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: BinaryHeap<_> = (0..steps.len())
        .filter(|&i| indegree[i] == 0)
        .map(priority)
        .collect();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(Reverse((_, _, _, i))) = ready.pop() {
        order.push(i);
        for n in graph.neighbors_directed(nodes[i], petgraph::Direction::Outgoing) {
            let j = graph[n];
            indegree[j] -= 1;
            if indegree[j] == 0 {
                ready.push(priority(j));
            }
        }
    }
    // Links between objects form no cycle (roles link policies, tokens link both), so every
    // step is placed; any left over would be appended rather than dropped.
    let mut placed = vec![false; steps.len()];
    order.iter().for_each(|&i| placed[i] = true);
    order.extend((0..steps.len()).filter(|&i| !placed[i]));
    let mut slots: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
    let mut plan = Plan {
        steps: order.into_iter().filter_map(|i| slots[i].take()).collect(),
        refused: entries.refused,
        unavoidable_breaks: entries.unavoidable_breaks,
    };
    plan.refused.extend(acl.refused);
    Ok(plan)
}
