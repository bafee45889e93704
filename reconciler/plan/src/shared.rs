//! Destinations shared by owners. Consul keeps one `service-intentions` entry per destination;
//! a repository that declares it with `Meta { "mesh-gitops-shared" = "true" }` owns only the
//! sources it declares there. Each owner's sources are listed in the entry's Meta under
//! `mesh-gitops-sources-<owner>` (comma-separated names), the visible mark of a shared entry;
//! the entry carries no single owner mark. A write merges: the sources no one else lists and
//! the other owners' sources are kept as they are (normalization orders sources by precedence,
//! stably, so their relative order never changes), ours are replaced; every write carries the
//! ModifyIndex it read (`?cas=`). Pruning removes only our sources, and deletes the entry only
//! when none is left.

use crate::ownership::{claim, Claim, Decision};
use crate::{entry_step, key, Action, ObjectKind, ObservedEntry, PlanOptions, Refusal, Step};
use crate::{OWNER_KEY, SOURCE_KEY};
use mesh_model::{ConfigEntry, ServiceIntentions};
use std::collections::{BTreeMap, BTreeSet};

/// The Meta key that declares a service-intentions entry shared by owners.
pub const SHARED_KEY: &str = ServiceIntentions::SHARED_KEY;
/// The prefix of the Meta key listing one owner's sources in a shared entry.
pub const SOURCES_PREFIX: &str = "mesh-gitops-sources-";

/// The Meta key listing `owner`'s sources.
pub fn sources_key(owner: &str) -> String {
    format!("{SOURCES_PREFIX}{owner}")
}

/// Whether an entry is a shared service-intentions entry.
pub fn is_shared(e: &ConfigEntry) -> bool {
    matches!(e, ConfigEntry::ServiceIntentions(i) if i.is_shared())
}

fn listed(i: &ServiceIntentions, owner_key: &str) -> BTreeSet<String> {
    i.meta
        .get(owner_key)
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The sources `owner` lists in a shared entry.
pub fn listed_sources(i: &ServiceIntentions, owner: &str) -> BTreeSet<String> {
    listed(i, &sources_key(owner))
}

/// Source name to the other owner that lists it.
fn others(i: &ServiceIntentions, owner: &str) -> BTreeMap<String, String> {
    let ours = sources_key(owner);
    i.meta
        .iter()
        .filter(|(k, _)| k.starts_with(SOURCES_PREFIX) && **k != ours)
        .flat_map(|(k, v)| {
            let who = k[SOURCES_PREFIX.len()..].to_owned();
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(move |s| (s.to_owned(), who.clone()))
        })
        .collect()
}

/// Marks a declared shared entry: our sources listed, no single owner mark.
pub(crate) fn mark(i: &mut ServiceIntentions, owner: &str) {
    i.meta.remove(OWNER_KEY);
    i.meta.remove(SOURCE_KEY);
    let names: Vec<&str> = i.sources.iter().map(|s| s.name.as_str()).collect();
    let names = names.join(",");
    i.meta.insert(sources_key(owner), names);
}

fn intentions(e: &ConfigEntry) -> Option<ServiceIntentions> {
    match e {
        ConfigEntry::ServiceIntentions(i) => {
            let mut i = i.clone();
            mesh_semantics::intention::normalize(&mut i);
            Some(i)
        }
        _ => None,
    }
}

fn refuse(d: &ConfigEntry, reason: String, owner: Option<String>) -> Decision {
    Decision::Refuse(Refusal {
        kind: ObjectKind::ConfigEntry(d.kind()),
        name: d.name().to_owned(),
        reason,
        blocking: true,
        owner,
    })
}

/// `owner "x" (a, b)` for every other owner, and the unowned sources, for the plan's reason.
fn context(kept: &[&str], theirs: &BTreeMap<String, String>) -> String {
    let mut by_owner: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for name in kept {
        let who = theirs.get(*name).map(String::as_str).unwrap_or("");
        by_owner.entry(who).or_default().push(name);
    }
    if by_owner.is_empty() {
        return "no other sources".into();
    }
    by_owner
        .iter()
        .map(|(who, names)| match *who {
            "" => format!("unowned ({})", names.join(", ")),
            who => format!("owner \"{who}\" ({})", names.join(", ")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The longest Meta value Consul stores (`metaValueMaxLength`, checked by
/// `validateConfigEntryMeta` in `agent/structs/config_entry.go`): an owner's source list must
/// fit in it.
pub const META_VALUE_MAX: usize = 512;

/// The decision for a declared shared entry `d` (normalized and marked by [`mark`]).
pub(crate) fn decide(
    d: &ConfigEntry,
    o: Option<&ObservedEntry>,
    recorded: bool,
    opts: &PlanOptions,
) -> Decision {
    let k = key(d);
    let Some(want) = intentions(d) else {
        return Decision::Nothing;
    };
    let listed_len = want
        .meta
        .get(&sources_key(&opts.owner))
        .map_or(0, String::len);
    if listed_len > META_VALUE_MAX {
        return refuse(
            d,
            format!("this owner's source names take {listed_len} characters in the entry's Meta, more than the {META_VALUE_MAX} Consul stores; split the sources among owners"),
            None,
        );
    }
    let Some(o) = o else {
        return Decision::Write(entry_step(
            Action::Create,
            &k,
            "shared destination, absent from Consul: created with this owner's sources",
            None,
            Some(d.to_json()),
            0,
        ));
    };
    let Some(have) = intentions(&o.entry) else {
        return Decision::Nothing;
    };
    let owner = opts.owner.as_str();
    let previous: BTreeSet<String> = if is_shared(&o.entry) {
        listed(&have, &sources_key(owner))
    } else {
        match claim(&o.entry, recorded, owner) {
            // Ours as a whole until now: every source is ours, and it becomes shared.
            Claim::Ours => have.sources.iter().map(|s| s.name.clone()).collect(),
            Claim::Conflict(other) | Claim::Foreign(other) => {
                return refuse(
                    d,
                    format!("declared shared, but owner \"{other}\" owns the whole entry; it is left unchanged"),
                    Some(other),
                )
            }
            Claim::Unowned => {
                return refuse(
                    d,
                    "declared shared, but an unowned entry that is not shared exists; it is left unchanged (mark it \"mesh-gitops-shared\" = \"true\" to share it)".into(),
                    None,
                )
            }
        }
    };
    let theirs = others(&have, owner);
    let declared: BTreeSet<&str> = want.sources.iter().map(|s| s.name.as_str()).collect();
    if let Some((name, other)) = theirs.iter().find(|(n, _)| declared.contains(n.as_str())) {
        return refuse(
            d,
            format!("source \"{name}\" is owned by \"{other}\" in this shared destination; it is left unchanged"),
            Some(other.clone()),
        );
    }
    let unowned_clash: Vec<&str> = have
        .sources
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| !previous.contains(*n) && !theirs.contains_key(*n) && declared.contains(n))
        .collect();
    if !unowned_clash.is_empty() && !opts.adopt {
        return refuse(
            d,
            format!("source(s) {} exist unowned in this shared destination; pass --adopt to take them over", unowned_clash.join(", ")),
            None,
        );
    }
    let kept: Vec<_> = have
        .sources
        .iter()
        .filter(|s| !previous.contains(&s.name) && !declared.contains(s.name.as_str()))
        .cloned()
        .collect();
    // In place: ours where they were, new ones after, everyone else's untouched.
    let mut placed = BTreeSet::new();
    let mut sources = Vec::with_capacity(have.sources.len() + want.sources.len());
    for s in &have.sources {
        if previous.contains(&s.name) || declared.contains(s.name.as_str()) {
            if let Some(w) = want.sources.iter().find(|w| w.name == s.name) {
                placed.insert(w.name.as_str());
                sources.push(w.clone());
            }
        } else {
            sources.push(s.clone());
        }
    }
    sources.extend(
        want.sources
            .iter()
            .filter(|w| !placed.contains(w.name.as_str()))
            .cloned(),
    );
    let mut merged = have.clone();
    merged.sources = sources;
    merged.meta.remove(OWNER_KEY);
    merged.meta.remove(SOURCE_KEY);
    merged.meta.extend(want.meta.clone());
    mesh_semantics::intention::normalize(&mut merged);
    let before = ConfigEntry::ServiceIntentions(have).to_json();
    let after = ConfigEntry::ServiceIntentions(merged).to_json();
    if before == after {
        return Decision::Nothing;
    }
    let kept_names: Vec<&str> = kept.iter().map(|s| s.name.as_str()).collect();
    Decision::Write(entry_step(
        Action::Update,
        &k,
        &format!(
            "shared destination: writes the sources of \"{owner}\"; keeps {}",
            context(&kept_names, &theirs)
        ),
        Some(before),
        Some(after),
        o.modify_index,
    ))
}

/// For a shared entry that is no longer declared: our sources removed (the entry deleted when
/// no source is left), or nothing when we list none.
pub(crate) fn prune(o: &ObservedEntry, opts: &PlanOptions) -> Option<Step> {
    let have = intentions(&o.entry)?;
    let owner = opts.owner.as_str();
    let ours = listed(&have, &sources_key(owner));
    if ours.is_empty() {
        return None;
    }
    let k = key(&o.entry);
    let before = o.entry.to_json();
    let mut left = have.clone();
    left.sources.retain(|s| !ours.contains(&s.name));
    left.meta.remove(&sources_key(owner));
    let others_left = left.meta.keys().any(|k| k.starts_with(SOURCES_PREFIX));
    if left.sources.is_empty() && !others_left {
        return Some(entry_step(
            Action::Delete,
            &k,
            "shared destination: this owner's sources were the last; the entry is deleted",
            Some(before),
            None,
            o.modify_index,
        ));
    }
    let theirs = others(&have, owner);
    let kept: Vec<&str> = left.sources.iter().map(|s| s.name.as_str()).collect();
    let reason = format!(
        "shared destination: this owner's sources are removed; keeps {}",
        context(&kept, &theirs)
    );
    Some(entry_step(
        Action::Update,
        &k,
        &reason,
        Some(before),
        Some(ConfigEntry::ServiceIntentions(left).to_json()),
        o.modify_index,
    ))
}
