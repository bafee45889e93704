//! Whose a config entry is, and what the plan does about it.
//!
//! An entry is ours when the owner's inventory (`mesh-gitops/<owner>/inventory`, the same KV
//! record that owns ACL objects) lists it, or when it carries our mark in `Meta`. The inventory
//! is what survives an outside write: `consul config write` replaces the whole entry, `Meta`
//! included, so a mark alone would let any such write switch mesh-gitops off for that entry. The
//! mark stays as the sign a human sees, and as the fallback for entries written before the
//! inventory listed config entries (or by an apply killed before it recorded them): those are
//! recorded on the next apply.
//!
//! The cases, for an entry that exists in Consul:
//!
//! | inventory | mark         | whose        |
//! |-----------|--------------|--------------|
//! | any       | ours         | ours         |
//! | listed    | none         | ours (drift) |
//! | listed    | another's    | conflict     |
//! | not       | another's    | foreign      |
//! | not       | none         | unowned      |

use crate::{entry_step, key, Action, ObservedEntry, PlanOptions, Refusal, Step};
use crate::{NEVER, OWNER_KEY, PRUNE_KEY, SOURCE_KEY};
use mesh_model::{ConfigEntry, EntryKind};
use serde_json::Value;
use std::collections::BTreeSet;

/// Whose an existing entry is, for the owner planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Ours,
    /// Listed in our inventory, but another owner's mark is on it.
    Conflict(String),
    /// Another owner's, and not in our inventory.
    Foreign(String),
    Unowned,
}

/// The owner named by an entry's mark.
pub fn owner_of(e: &ConfigEntry) -> Option<&str> {
    e.meta().get(OWNER_KEY).map(String::as_str)
}

/// Whose `e` is, for `owner`; `recorded`: our inventory lists it.
pub fn claim(e: &ConfigEntry, recorded: bool, owner: &str) -> Claim {
    match owner_of(e) {
        Some(o) if o == owner => Claim::Ours,
        Some(other) if recorded => Claim::Conflict(other.to_owned()),
        Some(other) => Claim::Foreign(other.to_owned()),
        None if recorded => Claim::Ours,
        None => Claim::Unowned,
    }
}

/// The entry's body without our marks, to compare content regardless of ownership.
fn content(e: &ConfigEntry) -> Value {
    let mut e = e.clone();
    let meta = e.meta_mut();
    meta.remove(OWNER_KEY);
    meta.remove(SOURCE_KEY);
    mesh_model::entry_secret::without_secrets(e.to_json())
}

/// What to do with one declared entry that exists in Consul.
pub(crate) enum Decision {
    Write(Step),
    /// Only the inventory changes.
    Record(Step),
    Refuse(Refusal),
    Nothing,
}

fn refusal(d: &ConfigEntry, reason: String, blocking: bool, owner: Option<String>) -> Refusal {
    Refusal {
        kind: crate::ObjectKind::ConfigEntry(d.kind()),
        name: d.name().to_owned(),
        reason,
        blocking,
        owner,
    }
}

/// The decision for the declared `d` (normalized and marked) against the observed `o`.
pub(crate) fn decide(
    d: &ConfigEntry,
    o: &ObservedEntry,
    recorded: bool,
    opts: &PlanOptions,
) -> Decision {
    let k = key(d);
    let mut observed = o.entry.clone();
    mesh_semantics::config_entry::normalize(&mut observed);
    // Compared without an inline-certificate's private key: Consul answers the key, the
    // repository names where it is.
    let before = mesh_model::entry_secret::without_secrets(observed.to_json());
    let after = mesh_model::entry_secret::without_secrets(d.to_json());
    let ours = opts.owner.as_str();
    let step = |reason: &str| {
        entry_step(
            Action::Update,
            &k,
            reason,
            Some(before.clone()),
            Some(after.clone()),
            o.modify_index,
        )
    };
    match claim(&observed, recorded, ours) {
        Claim::Ours if before == after && recorded => Decision::Nothing,
        // Written with our mark before the inventory listed config entries (or by an apply
        // stopped before it recorded them): recorded now, so a later outside write of its Meta
        // does not disown it.
        Claim::Ours if before == after => Decision::Record(entry_step(
            Action::Record,
            &k,
            "carries the owner's mark but is not in the inventory yet; recorded as owned",
            Some(before.clone()),
            Some(after.clone()),
            o.modify_index,
        )),
        Claim::Ours if owner_of(&observed) != Some(ours) => Decision::Write(step(
            "changed outside mesh-gitops, its owner mark replaced; the inventory records it as owned, so it is restored",
        )),
        Claim::Ours => Decision::Write(step("differs from the repository")),
        Claim::Conflict(other) => Decision::Refuse(refusal(
            d,
            format!(
                "conflict: the inventory of \"{ours}\" records it, but it carries the mark of owner \"{other}\"; it is left unchanged until one of \"{ours}\" and \"{other}\" gives it up"
            ),
            true,
            Some(other),
        )),
        Claim::Foreign(other) => Decision::Refuse(refusal(
            d,
            format!("exists and is owned by \"{other}\"; it is left unchanged"),
            true,
            Some(other),
        )),
        Claim::Unowned => {
            let same = content(&observed) == content(d);
            match (same, opts.adopt) {
                (true, true) => Decision::Write(step(
                    "adopted: identical to the repository, now marked as owned",
                )),
                (false, true) => Decision::Write(step(
                    "adopted: differs from the repository; the repository's fields are written and it is marked as owned",
                )),
                (true, false) => Decision::Refuse(refusal(
                    d,
                    "exists with the same content but is not owned by mesh-gitops; pass --adopt to take it over".into(),
                    false,
                    None,
                )),
                (false, false) => Decision::Refuse(refusal(
                    d,
                    "exists, differs from the repository and is not owned by mesh-gitops; it is left unchanged (pass --adopt to take it over and write the repository's fields)".into(),
                    true,
                    None,
                )),
            }
        }
    }
}

/// What happens to the entries that are no longer declared.
pub(crate) struct Prune {
    pub deletes: Vec<Step>,
    /// Shared destinations no longer declared: our sources removed, others' kept.
    pub updates: Vec<Step>,
    /// Owned entries kept because they are marked never to be pruned.
    pub kept: Vec<Refusal>,
    /// Inventory records dropped: gone from Consul, or taken by another owner.
    pub forgotten: Vec<Step>,
    /// Owned entries that exist, for the empty-prune guard.
    pub owned_total: usize,
}

/// Deletes owned entries that are no longer declared, keeps those marked never to be pruned,
/// and drops inventory records of entries gone from Consul or taken by another owner.
pub(crate) fn prune(
    observed: &[ObservedEntry],
    desired: &BTreeSet<(EntryKind, String)>,
    opts: &PlanOptions,
) -> Prune {
    let ours = opts.owner.as_str();
    let mut out = Prune {
        deletes: Vec::new(),
        updates: Vec::new(),
        kept: Vec::new(),
        forgotten: Vec::new(),
        owned_total: 0,
    };
    let mut seen = BTreeSet::new();
    for o in observed {
        let k = key(&o.entry);
        seen.insert(k.clone());
        if crate::shared::is_shared(&o.entry) {
            if !desired.contains(&k) {
                match crate::shared::prune(o, opts) {
                    Some(s) if s.action == Action::Delete => out.deletes.push(s),
                    Some(s) => out.updates.push(s),
                    None => {}
                }
            }
            continue;
        }
        let claim = claim(&o.entry, opts.recorded.contains(&k), ours);
        if claim == Claim::Ours {
            out.owned_total += 1;
        }
        if desired.contains(&k) {
            continue;
        }
        match claim {
            Claim::Ours if o.entry.meta().get(PRUNE_KEY).map(String::as_str) == Some(NEVER) => {
                out.kept.push(Refusal {
                    kind: crate::ObjectKind::ConfigEntry(k.0.clone()),
                    name: k.1.clone(),
                    reason: format!(
                        "no longer in the repository, but marked {PRUNE_KEY} = \"{NEVER}\"; it is kept"
                    ),
                    blocking: false,
                    owner: None,
                });
            }
            Claim::Ours => out.deletes.push(entry_step(
                Action::Delete,
                &k,
                "owned by mesh-gitops and no longer in the repository",
                Some(o.entry.to_json()),
                None,
                o.modify_index,
            )),
            Claim::Conflict(other) => out.forgotten.push(entry_step(
                Action::Forget,
                &k,
                &format!("conflict: recorded by \"{ours}\", now marked by owner \"{other}\"; no longer declared here, so dropped from the inventory and left to \"{other}\""),
                None,
                None,
                0,
            )),
            Claim::Foreign(_) | Claim::Unowned => {}
        }
    }
    for k in &opts.recorded {
        if !seen.contains(k) && !desired.contains(k) {
            out.forgotten.push(entry_step(
                Action::Forget,
                k,
                "owned, no longer in the repository, already gone from Consul",
                None,
                None,
                0,
            ));
        }
    }
    out
}

/// The existing entries that are ours, for the empty-prune guard over everything owned.
pub fn owned_count(observed: &[ObservedEntry], opts: &PlanOptions) -> usize {
    observed
        .iter()
        // A shared destination is never wholly ours.
        .filter(|o| !crate::shared::is_shared(&o.entry))
        .filter(|o| {
            let k = key(&o.entry);
            claim(&o.entry, opts.recorded.contains(&k), &opts.owner) == Claim::Ours
        })
        .count()
}
