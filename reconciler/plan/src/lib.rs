//! Plans for config entries: what must change in Consul for it to hold the desired entries, as
//! an ordered list of steps, computed purely from the desired state and the observed entries.
//!
//! - Both sides are compared after Consul's normalization, so nothing differs that Consul would
//!   not store differently (no perpetual diffs).
//! - Ownership ([`ownership`]): an entry is ours when the owner's inventory in Consul KV records
//!   it, or when it carries our mark (`Meta["mesh-gitops-owner"]`, written with the source path
//!   on every entry, and kept as the visible sign). An outside write that replaces the Meta does
//!   not disown it: the difference is drift, restored with the mark. Another owner's mark on an
//!   entry our inventory records is a conflict, refused. Unowned entries are adopted only when
//!   asked; another owner's never. Only owned entries are pruned (not those marked
//!   `mesh-gitops-prune = "never"`), a plan that would delete every owned entry is refused unless
//!   allowed, and one deleting more than `--max-deletes` is refused.
//! - Order: protocol-bearing kinds before the intentions that need them, deletions in reverse;
//!   intention writes are ordered so that no declared upstream allowed before and after the
//!   change is denied in between (checked with the shared intention evaluation).
//!
//! - ACL objects and the CA configuration are planned in [`acl`]; [`plan_all`] puts every step
//!   in one dependency graph and orders it.

pub mod acl;
mod order;
pub mod ownership;
pub mod shared;

pub use order::{plan_all, PlanInput};

use acl::AclKind;
use mesh_model::{ConfigEntry, DesiredState, EntryKind, ServiceIntentions};
use mesh_semantics::intention::IntentionSet;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The Meta key naming the owner of an entry.
pub const OWNER_KEY: &str = "mesh-gitops-owner";
/// The Meta key naming the repository file an entry came from.
pub const SOURCE_KEY: &str = "mesh-gitops-source";
/// The Meta key that, set to [`NEVER`] on an entry in the repository, keeps mesh-gitops from
/// ever deleting it once it leaves the repository (it is then left in Consul, still owned).
pub const PRUNE_KEY: &str = "mesh-gitops-prune";
/// The value of [`PRUNE_KEY`] that protects an entry.
pub const NEVER: &str = "never";

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedEntry {
    pub entry: ConfigEntry,
    pub modify_index: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    /// Recorded in the inventory as owned (adoption, or an inventory behind Consul); Consul's
    /// object is not written.
    Record,
    /// Removed from the inventory: owned, no longer declared, already gone from Consul.
    Forget,
}

impl Action {
    /// The sign shown in plans and apply reports.
    pub fn sign(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::Record => "=",
            Action::Forget => ".",
        }
    }
}

/// The kind of Consul object a step writes. Plans, apply reports and the inventory spell it as
/// Consul does (`service-intentions`, `acl-token`) and `ca-config` for the CA configuration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectKind {
    ConfigEntry(EntryKind),
    Acl(AclKind),
    /// The Connect CA configuration, a cluster singleton named [`acl::CA_NAME`].
    CaConfig,
}

impl ObjectKind {
    pub fn as_str(&self) -> &str {
        match self {
            ObjectKind::ConfigEntry(k) => k.as_str(),
            ObjectKind::Acl(k) => k.as_str(),
            ObjectKind::CaConfig => "ca-config",
        }
    }

    /// The kind of a config-entry step, if it is one.
    pub fn entry(&self) -> Option<&EntryKind> {
        match self {
            ObjectKind::ConfigEntry(k) => Some(k),
            _ => None,
        }
    }

    /// The kind of an ACL step, if it is one.
    pub fn acl(&self) -> Option<AclKind> {
        match self {
            ObjectKind::Acl(k) => Some(*k),
            _ => None,
        }
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// As a plain string, so `plan --format json` keeps Consul's spelling.
impl Serialize for ObjectKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One write, with the index it must find (`cas`) so a concurrent change is never overwritten.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub action: Action,
    pub kind: ObjectKind,
    pub name: String,
    pub reason: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// `0` creates only; otherwise the ModifyIndex the entry must still have.
    pub cas: u64,
    /// The Consul ID of an ACL object (AccessorID for tokens); not a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A CA change that generates a new root.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub root_rotation: bool,
}

/// The reasons of ordinary steps, which plans leave unsaid; any other reason (drift restored
/// after an outside write, an adoption, a recreation) is shown.
pub const ROUTINE_REASONS: [&str; 3] = [
    "differs from the repository",
    "declared in the repository, absent from Consul",
    "owned by mesh-gitops and no longer in the repository",
];

impl Step {
    /// Whether the reason is one of [`ROUTINE_REASONS`] (or none).
    pub fn is_routine(&self) -> bool {
        self.reason.is_empty() || ROUTINE_REASONS.contains(&self.reason.as_str())
    }
}

/// An object the plan leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    pub kind: ObjectKind,
    pub name: String,
    pub reason: String,
    /// The repository cannot be reached while this object is left as it is: it is declared
    /// and differs (unowned, not adopted), or another owner holds it.
    pub blocking: bool,
    /// The other owner whose mark the object carries, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub refused: Vec<Refusal>,
    /// Declared upstreams that no order of the intention writes keeps allowed throughout.
    pub unavoidable_breaks: Vec<(String, String)>,
}

/// What a plan says about Consul against the repository, as the exit codes of `plan`, `apply`
/// and `status` say it (`in-sync` 0, `changes` 2, `blocked` 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Consul matches the repository.
    InSync,
    /// The plan changes something, and then Consul matches the repository.
    Changes,
    /// Some declared object cannot be brought to the repository's state as things stand (owned
    /// elsewhere, or unowned, different and not adopted), whatever else changes.
    Blocked,
}

impl Outcome {
    /// The process exit code that reports it.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::InSync => 0,
            Outcome::Changes => 2,
            Outcome::Blocked => 4,
        }
    }
}

impl Plan {
    pub fn outcome(&self) -> Outcome {
        if self.refused.iter().any(|r| r.blocking) {
            Outcome::Blocked
        } else if self.steps.is_empty() {
            Outcome::InSync
        } else {
            Outcome::Changes
        }
    }

    /// The refusals that keep the repository out of reach.
    pub fn blocked(&self) -> impl Iterator<Item = &Refusal> {
        self.refused.iter().filter(|r| r.blocking)
    }
}

#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub owner: String,
    /// Take over existing unowned entries (identical or not: the repository's fields are
    /// written); never one another owner marks.
    pub adopt: bool,
    /// Allow a plan that deletes every owned entry.
    pub allow_empty: bool,
    /// Refuse a plan that deletes more objects than this.
    pub max_deletes: Option<usize>,
    /// The config entries the owner's inventory records as owned.
    pub recorded: BTreeSet<(EntryKind, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the plan would delete all {0} objects mesh-gitops owns; pass --allow-empty if that is intended")]
    WouldDeleteEverything(usize),
    #[error("the plan would delete {deletes} objects, more than --max-deletes {max}; nothing was written")]
    TooManyDeletes { deletes: usize, max: usize },
}

/// The desired entries as they will be written: normalized, with the ownership marks.
pub fn marked_entries(
    state: &DesiredState,
    owner: &str,
    source_of: &dyn Fn(&ConfigEntry) -> String,
) -> Vec<ConfigEntry> {
    state
        .config_entries
        .iter()
        .map(|e| {
            let mut e = e.clone();
            mesh_semantics::config_entry::normalize(&mut e);
            if let (true, ConfigEntry::ServiceIntentions(i)) = (shared::is_shared(&e), &mut e) {
                shared::mark(i, owner);
                return e;
            }
            let source = source_of(&e);
            let meta = e.meta_mut();
            meta.insert(OWNER_KEY.into(), owner.into());
            meta.insert(SOURCE_KEY.into(), source);
            e
        })
        .collect()
}

fn key(e: &ConfigEntry) -> (EntryKind, String) {
    (e.kind(), e.name().to_owned())
}

/// Plans the writes that make `observed` hold `desired` (already marked, see
/// [`marked_entries`]). `declared` are the declared upstreams (source, destination) whose
/// reachability the order must protect; `default_allow` is the ACL default for intentions.
/// Which entries are ours is decided in [`ownership`] (the inventory in `opts.recorded`, and
/// our mark).
pub fn plan(
    desired: &[ConfigEntry],
    observed: &[ObservedEntry],
    declared: &[(String, String)],
    default_allow: bool,
    opts: &PlanOptions,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    let observed_by: BTreeMap<(EntryKind, String), &ObservedEntry> =
        observed.iter().map(|o| (key(&o.entry), o)).collect();
    let mut writes = Vec::new();
    let mut records = Vec::new();
    for d in desired {
        let k = key(d);
        let recorded = opts.recorded.contains(&k);
        match observed_by.get(&k) {
            _ if shared::is_shared(d) => match shared::decide(d, observed_by.get(&k).copied(), recorded, opts) {
                ownership::Decision::Write(s) => writes.push(s),
                ownership::Decision::Record(s) => records.push(s),
                ownership::Decision::Refuse(r) => plan.refused.push(r),
                ownership::Decision::Nothing => {}
            },
            None => writes.push(entry_step(
                Action::Create,
                &k,
                if recorded {
                    "owned by mesh-gitops but deleted outside it; recreated"
                } else {
                    "declared in the repository, absent from Consul"
                },
                None,
                Some(d.to_json()),
                0,
            )),
            Some(o) if shared::is_shared(&o.entry) => plan.refused.push(Refusal {
                kind: ObjectKind::ConfigEntry(k.0.clone()),
                name: k.1.clone(),
                reason: "the destination is shared by owners in Consul; declare it with \"mesh-gitops-shared\" = \"true\" to own sources in it".into(),
                blocking: true,
                owner: None,
            }),
            Some(o) => match ownership::decide(d, o, recorded, opts) {
                ownership::Decision::Write(s) => writes.push(s),
                ownership::Decision::Record(s) => records.push(s),
                ownership::Decision::Refuse(r) => plan.refused.push(r),
                ownership::Decision::Nothing => {}
            },
        }
    }
    let desired_keys: BTreeSet<(EntryKind, String)> = desired.iter().map(key).collect();
    let prune = ownership::prune(observed, &desired_keys, opts);
    plan.refused.extend(prune.kept);
    records.extend(prune.forgotten);
    writes.extend(prune.updates);
    let deletes = prune.deletes;
    let owned_total = prune.owned_total;
    if owned_total > 0 && deletes.len() == owned_total && desired.is_empty() && !opts.allow_empty {
        return Err(PlanError::WouldDeleteEverything(owned_total));
    }
    let order = |s: &Step| s.kind.entry().map(EntryKind::order).unwrap_or(6);
    let is_intentions = |s: &Step| s.kind == ObjectKind::ConfigEntry(EntryKind::ServiceIntentions);
    let mut head: Vec<Step> = writes
        .iter()
        .filter(|s| !is_intentions(s))
        .cloned()
        .collect();
    head.sort_by(|a, b| (order(a), &a.kind, &a.name).cmp(&(order(b), &b.kind, &b.name)));
    let mut tail: Vec<Step> = deletes
        .iter()
        .filter(|s| !is_intentions(s))
        .cloned()
        .collect();
    tail.sort_by(|a, b| (order(b), &b.kind, &b.name).cmp(&(order(a), &a.kind, &a.name)));
    records.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
    let intention_steps: Vec<Step> = writes
        .into_iter()
        .chain(deletes)
        .filter(|s| is_intentions(s))
        .collect();
    let current: Vec<ServiceIntentions> = observed
        .iter()
        .filter_map(|o| match &o.entry {
            ConfigEntry::ServiceIntentions(i) => {
                let mut i = i.clone();
                mesh_semantics::intention::normalize(&mut i);
                Some(i)
            }
            _ => None,
        })
        .collect();
    let (ordered, breaks) =
        order_intentions(current, intention_steps, desired, declared, default_allow);
    plan.unavoidable_breaks = breaks;
    plan.steps = head
        .into_iter()
        .chain(ordered)
        .chain(tail)
        .chain(records)
        .collect();
    Ok(plan)
}

/// A config-entry step.
fn entry_step(
    action: Action,
    k: &(EntryKind, String),
    reason: &str,
    before: Option<Value>,
    after: Option<Value>,
    cas: u64,
) -> Step {
    Step {
        action,
        kind: ObjectKind::ConfigEntry(k.0.clone()),
        name: k.1.clone(),
        reason: reason.to_owned(),
        // An inline-certificate's private key (and the reference to it) never reaches a plan.
        before: before.map(mesh_model::entry_secret::without_secrets),
        after: after.map(mesh_model::entry_secret::without_secrets),
        cas,
        id: None,
        root_rotation: false,
    }
}

/// Intention entries by destination name. A decision for `dst` depends only on the entry named
/// `dst` and the wildcard entry `*`, which keeps each check small.
type ByDestination = BTreeMap<String, ServiceIntentions>;

fn allowed(entries: &ByDestination, src: &str, dst: &str, default_allow: bool) -> bool {
    let set = IntentionSet::new(entries.get(dst).into_iter().chain(entries.get("*")));
    set.decide(src, dst, default_allow).allowed || set.has_l7(src, dst)
}

/// The entry a step leaves for its destination (`None`: deleted).
fn after_step(
    step: &Step,
    desired: &BTreeMap<&str, &ServiceIntentions>,
) -> Option<ServiceIntentions> {
    match step.action {
        Action::Delete => None,
        _ => desired.get(step.name.as_str()).map(|d| (*d).clone()),
    }
}

fn set_entry(
    entries: &mut ByDestination,
    name: &str,
    e: Option<ServiceIntentions>,
) -> Option<ServiceIntentions> {
    match e {
        Some(e) => entries.insert(name.to_owned(), e),
        None => entries.remove(name),
    }
}

/// Make-before-break: repeatedly take the first remaining intention write (by name) that keeps
/// every protected edge allowed; when none does, take the first and record the edges it breaks.
/// A write to `dst` is checked only against the protected edges into `dst` (all of them for the
/// wildcard entry).
fn order_intentions(
    current: Vec<ServiceIntentions>,
    mut steps: Vec<Step>,
    desired: &[ConfigEntry],
    declared: &[(String, String)],
    default_allow: bool,
) -> (Vec<Step>, Vec<(String, String)>) {
    steps.sort_by(|a, b| {
        (a.action == Action::Delete, &a.name).cmp(&(b.action == Action::Delete, &b.name))
    });
    // What each write leaves: the declared entry, or for a shared destination the merged one
    // the step carries.
    let merged: Vec<ServiceIntentions> = steps
        .iter()
        .filter(|s| s.action != Action::Delete)
        .filter(|s| {
            s.after
                .as_ref()
                .is_some_and(|a| a["Meta"].get(shared::SHARED_KEY).is_some())
        })
        .filter_map(|s| serde_json::from_value(s.after.clone()?).ok())
        .collect();
    let desired: BTreeMap<&str, &ServiceIntentions> = desired
        .iter()
        .filter_map(|d| match d {
            ConfigEntry::ServiceIntentions(i) => Some((i.name.as_str(), i)),
            _ => None,
        })
        .chain(merged.iter().map(|i| (i.name.as_str(), i)))
        .collect();
    let mut current: ByDestination = current.into_iter().map(|i| (i.name.clone(), i)).collect();
    let mut target = current.clone();
    for s in &steps {
        set_entry(&mut target, &s.name, after_step(s, &desired));
    }
    let mut protected: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (src, dst) in declared {
        if allowed(&current, src, dst, default_allow) && allowed(&target, src, dst, default_allow) {
            protected
                .entry(dst.as_str())
                .or_default()
                .push(src.as_str());
        }
    }
    let affected = |name: &str| -> Vec<(&str, &str)> {
        protected
            .iter()
            .filter(|(dst, _)| name == "*" || **dst == name)
            .flat_map(|(dst, srcs)| srcs.iter().map(move |s| (*s, *dst)))
            .collect()
    };
    // Whether `step` keeps every protected edge it touches allowed; the first it breaks, if any.
    let breaks = |current: &mut ByDestination, step: &Step| -> Vec<(String, String)> {
        let edges = affected(&step.name);
        if edges.is_empty() {
            return Vec::new();
        }
        let old = set_entry(current, &step.name, after_step(step, &desired));
        let broken = edges
            .iter()
            .filter(|(src, dst)| !allowed(current, src, dst, default_allow))
            .map(|(s, d)| ((*s).to_owned(), (*d).to_owned()))
            .collect();
        set_entry(current, &step.name, old);
        broken
    };
    let mut out = Vec::with_capacity(steps.len());
    let mut unavoidable = BTreeSet::new();
    // Usually the first step is safe: a deque makes taking it O(1).
    let mut steps: std::collections::VecDeque<Step> = steps.into();
    while !steps.is_empty() {
        let pick = (0..steps.len()).find(|&i| breaks(&mut current, &steps[i]).is_empty());
        let i = pick.unwrap_or_else(|| {
            unavoidable.extend(breaks(&mut current, &steps[0]));
            0
        });
        let Some(s) = steps.remove(i) else { break };
        set_entry(&mut current, &s.name, after_step(&s, &desired));
        out.push(s);
    }
    (out, unavoidable.into_iter().collect())
}

/// The declared upstreams of a desired state, for [`plan`].
pub fn declared_edges(state: &DesiredState) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = state
        .services
        .iter()
        .flat_map(|s| {
            s.upstreams
                .iter()
                .map(move |u| (s.name.clone(), u.destination_name.clone()))
        })
        .filter(|(_, d)| !d.contains("${"))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
