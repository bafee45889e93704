//! Properties of the planner over random desired and observed states.
//!
//! - Convergence: applying a plan's steps to a model of the control plane (entries by kind and
//!   name, CAS honoured as Consul's `ensureConfigEntryTxn` in
//!   `agent/consul/state/config_entry.go` does) and of the owner's inventory, and planning
//!   again gives no steps, and no step touches an entry another owner marks.
//! - Make-before-break: after every prefix of the intention writes, every declared upstream
//!   allowed before and after the change is still allowed (by the shared intention
//!   evaluation), unless the plan reports it as an unavoidable break.

use mesh_model::{
    ConfigEntry, EntryKind, IntentionAction, ProxyDefaults, ServiceDefaults, ServiceIntentions,
    SourceIntention,
};
use mesh_plan::{Action, ObservedEntry, PlanOptions, OWNER_KEY, SOURCE_KEY};
use mesh_semantics::intention::IntentionSet;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const US: &str = "us";
const NAMES: &[&str] = &["a", "b", "c", "d"];

/// Who an observed entry's Meta says owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Us,
    Other,
    Nobody,
}

fn marked(mut e: ConfigEntry, owner: Owner) -> ConfigEntry {
    mesh_semantics::config_entry::normalize(&mut e);
    let who = match owner {
        Owner::Us => US,
        Owner::Other => "them",
        Owner::Nobody => return e,
    };
    e.meta_mut().insert(OWNER_KEY.into(), who.into());
    e.meta_mut().insert(SOURCE_KEY.into(), "repo.hcl".into());
    e
}

fn intentions(name: &str, sources: &[(String, bool)]) -> ServiceIntentions {
    let mut seen = BTreeSet::new();
    ServiceIntentions {
        name: name.into(),
        sources: sources
            .iter()
            .filter(|(s, _)| seen.insert(s.clone()))
            .map(|(s, allow)| SourceIntention {
                name: s.clone(),
                action: Some(if *allow {
                    IntentionAction::Allow
                } else {
                    IntentionAction::Deny
                }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES).prop_map(str::to_owned)
}

/// One entry of a few kinds, names from a small pool.
fn entry() -> impl Strategy<Value = ConfigEntry> {
    let protocol = prop::sample::select(&["tcp", "http", "grpc"][..]);
    let source = (
        prop::sample::select(&["a", "b", "c", "d", "*"][..]),
        any::<bool>(),
    )
        .prop_map(|(s, allow)| (s.to_owned(), allow));
    prop_oneof![
        (name(), protocol.clone()).prop_map(|(name, p)| {
            ConfigEntry::ServiceDefaults(ServiceDefaults {
                name,
                protocol: Some(p.into()),
                ..Default::default()
            })
        }),
        (name(), prop::collection::vec(source, 0..3))
            .prop_map(|(name, s)| ConfigEntry::ServiceIntentions(intentions(&name, &s))),
        protocol.prop_map(|p| {
            let mut config = serde_json::Map::new();
            config.insert("protocol".into(), p.into());
            ConfigEntry::ProxyDefaults(ProxyDefaults {
                name: "global".into(),
                config,
                ..Default::default()
            })
        }),
    ]
}

fn owner() -> impl Strategy<Value = Owner> {
    prop_oneof![Just(Owner::Us), Just(Owner::Other), Just(Owner::Nobody)]
}

type Key = (EntryKind, String);

fn key(e: &ConfigEntry) -> Key {
    (e.kind(), e.name().to_owned())
}

/// Entries unique by kind and name (the first of each wins).
fn unique(entries: Vec<ConfigEntry>) -> Vec<ConfigEntry> {
    let mut seen = BTreeSet::new();
    entries
        .into_iter()
        .filter(|e| seen.insert(key(e)))
        .collect()
}

/// The control plane as the planner sees it: entries with their ModifyIndex, one raft index.
struct Model {
    entries: BTreeMap<Key, (ConfigEntry, u64)>,
    index: u64,
}

impl Model {
    fn observed(&self) -> Vec<ObservedEntry> {
        self.entries
            .values()
            .map(|(entry, modify_index)| ObservedEntry {
                entry: entry.clone(),
                modify_index: *modify_index,
            })
            .collect()
    }

    /// A write or delete with `?cas=`: `false` when the index does not match.
    fn cas(&mut self, k: Key, cas: u64, write: Option<ConfigEntry>) -> bool {
        let current = self.entries.get(&k).map(|(_, i)| *i);
        let ok = match (current, write.is_some()) {
            (None, true) => cas == 0,
            (Some(i), _) => i == cas,
            (None, false) => false,
        };
        if ok {
            self.index += 1;
            match write {
                Some(e) => self.entries.insert(k, (e, self.index)),
                None => self.entries.remove(&k),
            };
        }
        ok
    }
}

fn options(adopt: bool) -> PlanOptions {
    PlanOptions {
        owner: US.into(),
        adopt,
        allow_empty: true,
        ..PlanOptions::default()
    }
}

fn with_inventory(adopt: bool, recorded: &BTreeSet<Key>) -> PlanOptions {
    PlanOptions {
        recorded: recorded.clone(),
        ..options(adopt)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn applying_a_plan_converges(
        desired in prop::collection::vec(entry(), 0..8),
        observed in prop::collection::vec((entry(), owner(), any::<bool>()), 0..8),
        adopt in any::<bool>(),
    ) {
        let desired: Vec<ConfigEntry> =
            unique(desired).into_iter().map(|e| marked(e, Owner::Us)).collect();
        let mut model = Model { entries: BTreeMap::new(), index: 0 };
        let mut seen = BTreeSet::new();
        let mut owners = BTreeMap::new();
        // The inventory: entries recorded as ours, whatever their mark says now.
        let mut recorded = BTreeSet::new();
        for (e, o, listed) in observed {
            if seen.insert(key(&e)) {
                model.index += 1;
                owners.insert(key(&e), o);
                if listed {
                    recorded.insert(key(&e));
                }
                model.entries.insert(key(&e), (marked(e, o), model.index));
            }
        }
        let before = model.observed();
        let plan = mesh_plan::plan(&desired, &before, &[], false, &with_inventory(adopt, &recorded)).unwrap();
        let wanted: BTreeMap<Key, &ConfigEntry> = desired.iter().map(|d| (key(d), d)).collect();
        for s in &plan.steps {
            let kind = s.kind.entry().expect("a config-entry step").clone();
            let k = (kind, s.name.clone());
            // Only our entries (marked or recorded) are changed, or, when adopting, unmarked
            // ones; never one another owner marks.
            match owners.get(&k) {
                None => prop_assert!(matches!(s.action, Action::Create | Action::Forget)),
                Some(Owner::Us) => {}
                Some(Owner::Nobody) if recorded.contains(&k) => {}
                Some(Owner::Nobody) => {
                    prop_assert!(adopt && s.action == Action::Update, "changed {:?}", k);
                }
                Some(Owner::Other) => {
                    prop_assert_eq!(s.action, Action::Forget, "touched another owner's {:?}", k);
                    prop_assert!(recorded.contains(&k) && !wanted.contains_key(&k));
                }
            }
            let write = match s.action {
                Action::Delete => None,
                Action::Record | Action::Forget => {
                    if s.action == Action::Record {
                        recorded.insert(k);
                    } else {
                        recorded.remove(&k);
                    }
                    continue;
                }
                _ => Some((*wanted.get(&k).expect("a write of a desired entry")).clone()),
            };
            prop_assert!(model.cas(k.clone(), s.cas, write.clone()), "CAS failed for {:?}", k);
            if write.is_some() {
                recorded.insert(k);
            } else {
                recorded.remove(&k);
            }
        }
        let again = mesh_plan::plan(&desired, &model.observed(), &[], false, &with_inventory(adopt, &recorded)).unwrap();
        prop_assert!(again.steps.is_empty(), "not converged: {:?}", again.steps);
        prop_assert_eq!(again.refused, plan.refused);
    }

    #[test]
    fn intention_writes_never_break_a_kept_upstream(
        current in prop::collection::vec((name_or_wildcard(), sources()), 0..5),
        target in prop::collection::vec((name_or_wildcard(), sources()), 0..5),
        declared in prop::collection::vec((name(), name()), 0..8),
        default_allow in any::<bool>(),
    ) {
        let build = |v: Vec<(String, Vec<(String, bool)>)>| -> Vec<ConfigEntry> {
            unique(v.iter().map(|(n, s)| ConfigEntry::ServiceIntentions(intentions(n, s))).collect())
                .into_iter()
                .map(|e| marked(e, Owner::Us))
                .collect()
        };
        let (current, target) = (build(current), build(target));
        let observed: Vec<ObservedEntry> = current
            .iter()
            .enumerate()
            .map(|(i, e)| ObservedEntry { entry: e.clone(), modify_index: i as u64 + 1 })
            .collect();
        let declared: Vec<(String, String)> = declared.into_iter().filter(|(s, d)| s != d).collect();
        let plan = mesh_plan::plan(&target, &observed, &declared, default_allow, &options(false)).unwrap();

        let by_name = |entries: &[ConfigEntry]| -> BTreeMap<String, ServiceIntentions> {
            entries
                .iter()
                .filter_map(|e| match e {
                    ConfigEntry::ServiceIntentions(i) => Some((i.name.clone(), i.clone())),
                    _ => None,
                })
                .collect()
        };
        let allowed = |state: &BTreeMap<String, ServiceIntentions>, src: &str, dst: &str| {
            IntentionSet::new(state.values()).decide(src, dst, default_allow).allowed
        };
        let desired = by_name(&target);
        let mut state = by_name(&current);
        let end = desired.clone();
        let kept: Vec<&(String, String)> = declared
            .iter()
            .filter(|(s, d)| allowed(&state, s, d) && allowed(&end, s, d))
            .collect();
        for step in &plan.steps {
            match step.action {
                Action::Delete => state.remove(&step.name),
                _ => state.insert(step.name.clone(), desired[&step.name].clone()),
            };
            for (s, d) in &kept {
                prop_assert!(
                    allowed(&state, s, d)
                        || plan.unavoidable_breaks.contains(&(s.clone(), d.clone())),
                    "{} -> {} denied after {} {}", s, d, step.action.sign(), step.name
                );
            }
        }
        prop_assert_eq!(state, end);
    }
}

fn name_or_wildcard() -> impl Strategy<Value = String> {
    prop::sample::select(&["a", "b", "c", "d", "*"][..]).prop_map(str::to_owned)
}

fn sources() -> impl Strategy<Value = Vec<(String, bool)>> {
    prop::collection::vec((name_or_wildcard(), any::<bool>()), 0..4)
}
