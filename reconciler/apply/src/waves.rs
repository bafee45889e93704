//! Which of a plan's steps may be written at the same time (`apply --parallelism N`).
//!
//! The plan is a topological order of its dependency graph ([`mesh_plan::plan_all`]): ACL
//! policies before the roles and tokens that link them, protocol-bearing config-entry kinds
//! before the intentions that need them, the make-before-break intention writes, deletions in
//! reverse, inventory records, the CA configuration last. A wave is a run of consecutive steps
//! of one class (the same object kind and the same kind of action), which no edge of that graph
//! joins, so any order among them is as good as the plan's:
//!
//! - config entries of one kind for distinct services: Consul checks an entry against the
//!   service's own chain and intentions (`validateProposedConfigEntryInServiceGraph`,
//!   `agent/consul/state/config_entry.go`), which steps of an earlier class already wrote;
//! - intention writes to distinct destinations: whether an edge into `dst` is allowed depends
//!   only on the entry of `dst` and the wildcard entry (`IntentionSet` in mesh-semantics), so
//!   the make-before-break order holds whichever write lands first;
//! - ACL objects of one kind: links go from roles to policies and from tokens to both.
//!
//! Steps whose order among themselves matters run alone: the wildcard intentions entry (it
//! decides edges into every destination), discovery-chain kinds (a router, splitter or
//! resolver of one service may name another service's subsets, which Consul checks when it
//! compiles the chain), and the CA configuration. A wave never holds one object twice.

use mesh_model::EntryKind;
use mesh_plan::{Action, ObjectKind, Step};
use std::collections::BTreeSet;
use std::ops::Range;

/// The default for `apply --parallelism`: writes in flight at once. Enough for the embedded
/// control plane to commit most of them together and for Consul's leader to batch them into
/// few Raft entries, few enough to stay far below Consul's `http_max_conns_per_client` (200)
/// and to keep a failure from finding many writes in flight.
pub const DEFAULT_PARALLELISM: usize = 8;

/// How a step's writes may be grouped.
#[derive(Debug, PartialEq, Eq)]
enum Class<'a> {
    /// Runs in a wave of its own.
    Alone,
    /// Runs with the adjacent steps of the same class.
    With(&'a ObjectKind, Phase),
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Write,
    Delete,
    /// Inventory only (`Record`, `Forget`): nothing in Consul moves.
    Inventory,
}

fn class(step: &Step) -> Class<'_> {
    let phase = match step.action {
        Action::Create | Action::Update => Phase::Write,
        Action::Delete => Phase::Delete,
        Action::Record | Action::Forget => Phase::Inventory,
    };
    match &step.kind {
        ObjectKind::CaConfig => Class::Alone,
        ObjectKind::ConfigEntry(EntryKind::ServiceIntentions)
            if step.name == "*" && phase != Phase::Inventory =>
        {
            Class::Alone
        }
        ObjectKind::ConfigEntry(EntryKind::Other(k))
            if phase != Phase::Inventory
                && matches!(
                    k.as_str(),
                    "service-router" | "service-splitter" | "service-resolver"
                ) =>
        {
            Class::Alone
        }
        kind => Class::With(kind, phase),
    }
}

/// The plan's steps cut into waves, in order; the steps of one wave may run concurrently, and
/// a wave starts once the one before it is done.
pub(crate) fn waves(steps: &[Step]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut objects: BTreeSet<(&ObjectKind, &str)> = BTreeSet::new();
    for (i, step) in steps.iter().enumerate() {
        let joins = i > start
            && class(step) != Class::Alone
            && class(step) == class(&steps[start])
            && !objects.contains(&(&step.kind, step.name.as_str()));
        if i > start && !joins {
            out.push(start..i);
            start = i;
            objects.clear();
        }
        objects.insert((&step.kind, step.name.as_str()));
    }
    if start < steps.len() {
        out.push(start..steps.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_plan::acl::AclKind;

    fn step(action: Action, kind: ObjectKind, name: &str) -> Step {
        Step {
            action,
            kind,
            name: name.into(),
            reason: String::new(),
            before: None,
            after: None,
            cas: 0,
            id: None,
            root_rotation: false,
        }
    }

    fn entry(action: Action, kind: EntryKind, name: &str) -> Step {
        step(action, ObjectKind::ConfigEntry(kind), name)
    }

    fn other(kind: &str) -> EntryKind {
        EntryKind::Other(kind.into())
    }

    #[test]
    fn steps_of_one_class_share_a_wave_and_classes_follow_the_plan() {
        use Action::*;
        let steps = vec![
            step(Create, ObjectKind::Acl(AclKind::Policy), "p1"),
            step(Create, ObjectKind::Acl(AclKind::Policy), "p2"),
            step(Create, ObjectKind::Acl(AclKind::Role), "r1"),
            entry(Create, EntryKind::ProxyDefaults, "global"),
            entry(Create, EntryKind::ServiceDefaults, "a"),
            entry(Update, EntryKind::ServiceDefaults, "b"),
            entry(Create, EntryKind::ServiceIntentions, "a"),
            entry(Update, EntryKind::ServiceIntentions, "b"),
            entry(Delete, EntryKind::ServiceIntentions, "c"),
            entry(Delete, EntryKind::ServiceDefaults, "c"),
            entry(Record, EntryKind::ServiceDefaults, "d"),
            entry(Record, EntryKind::ServiceDefaults, "e"),
            step(Update, ObjectKind::CaConfig, "ca"),
        ];
        assert_eq!(
            waves(&steps),
            [0..2, 2..3, 3..4, 4..6, 6..8, 8..9, 9..10, 10..12, 12..13]
        );
    }

    #[test]
    fn the_wildcard_intentions_and_chain_kinds_run_alone() {
        use Action::*;
        let steps = vec![
            entry(Create, other("service-resolver"), "a"),
            entry(Create, other("service-resolver"), "b"),
            entry(Create, EntryKind::ServiceIntentions, "a"),
            entry(Update, EntryKind::ServiceIntentions, "*"),
            entry(Create, EntryKind::ServiceIntentions, "b"),
            entry(Create, EntryKind::ServiceIntentions, "c"),
        ];
        assert_eq!(waves(&steps), [0..1, 1..2, 2..3, 3..4, 4..6]);
    }

    #[test]
    fn one_object_is_never_twice_in_a_wave() {
        let steps = vec![
            entry(Action::Update, EntryKind::ServiceDefaults, "a"),
            entry(Action::Update, EntryKind::ServiceDefaults, "a"),
        ];
        assert_eq!(waves(&steps), [0..1, 1..2]);
        assert!(waves(&[]).is_empty());
    }
}
