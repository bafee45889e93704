use super::*;
use mesh_model::{IntentionAction, ProxyDefaults, ServiceDefaults, SourceIntention};

fn opts() -> PlanOptions {
    PlanOptions {
        owner: "team".into(),
        adopt: false,
        allow_empty: false,
        ..PlanOptions::default()
    }
}

fn mark(mut e: ConfigEntry) -> ConfigEntry {
    mesh_semantics::config_entry::normalize(&mut e);
    e.meta_mut().insert(OWNER_KEY.into(), "team".into());
    e.meta_mut().insert(SOURCE_KEY.into(), "repo.hcl".into());
    e
}

fn sd(name: &str, proto: &str) -> ConfigEntry {
    ConfigEntry::ServiceDefaults(ServiceDefaults {
        name: name.into(),
        protocol: Some(proto.into()),
        ..Default::default()
    })
}

fn ixn(dest: &str, sources: &[(&str, IntentionAction)]) -> ConfigEntry {
    ConfigEntry::ServiceIntentions(ServiceIntentions {
        name: dest.into(),
        sources: sources
            .iter()
            .map(|(n, a)| SourceIntention {
                name: (*n).into(),
                action: Some(*a),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

fn observed(e: ConfigEntry, index: u64) -> ObservedEntry {
    ObservedEntry {
        entry: e,
        modify_index: index,
    }
}

use IntentionAction::{Allow, Deny};

#[test]
fn creates_updates_and_deletes_with_cas_and_no_perpetual_diff() {
    let desired = vec![mark(sd("web", "http")), mark(sd("api", "HTTP"))];
    // Consul stores what it normalized, and the entry from "api" matches after normalization.
    let obs = vec![
        observed(mark(sd("api", "http")), 7),
        observed(mark(sd("old", "tcp")), 9),
        observed(mark(sd("db", "grpc")), 3),
    ];
    let mut desired_db = desired.clone();
    desired_db.push(mark(sd("db", "tcp")));
    let p = plan(&desired_db, &obs, &[], false, &opts()).unwrap();
    let steps: Vec<(Action, &str, u64)> = p
        .steps
        .iter()
        .map(|s| (s.action, s.name.as_str(), s.cas))
        .collect();
    // "api" carries our mark but no inventory lists it yet (written before the inventory
    // listed config entries): it is recorded, not written.
    assert_eq!(
        steps,
        [
            (Action::Update, "db", 3),
            (Action::Create, "web", 0),
            (Action::Delete, "old", 9),
            (Action::Record, "api", 7)
        ]
    );
    // Applying the plan's after-state gives an empty plan.
    let obs2: Vec<ObservedEntry> = desired_db
        .iter()
        .cloned()
        .map(|e| observed(e, 20))
        .collect();
    let recorded = PlanOptions {
        recorded: desired_db.iter().map(key).collect(),
        ..opts()
    };
    let again = plan(&desired_db, &obs2, &[], false, &recorded).unwrap();
    assert!(again.steps.is_empty(), "{:?}", again.steps);
    assert_eq!(again.outcome(), Outcome::InSync);
}

#[test]
fn unowned_entries_are_refused_or_adopted_and_never_pruned() {
    let desired = vec![mark(sd("web", "http")), mark(sd("api", "http"))];
    let obs = vec![
        observed(sd("web", "http"), 4),   // same content, unowned
        observed(sd("api", "grpc"), 5),   // different, unowned
        observed(sd("legacy", "tcp"), 6), // unowned, not desired
    ];
    let p = plan(&desired, &obs, &[], false, &opts()).unwrap();
    assert!(p.steps.is_empty(), "{:?}", p.steps);
    assert_eq!(p.refused.len(), 2);
    assert!(p.refused[0].reason.contains("--adopt"));
    assert!(p.refused[1].reason.contains("differs"));
    // The identical one is only a note; the different one keeps the repository out of reach.
    assert_eq!(
        p.refused.iter().map(|r| r.blocking).collect::<Vec<_>>(),
        [false, true]
    );
    assert_eq!(p.outcome(), Outcome::Blocked);
    let adopt = plan(
        &desired,
        &obs,
        &[],
        false,
        &PlanOptions {
            adopt: true,
            ..opts()
        },
    )
    .unwrap();
    // Both are taken over, the different one showing the fields it writes; the unowned entry
    // that is not declared is not pruned.
    let taken: Vec<(Action, &str, u64)> = adopt
        .steps
        .iter()
        .map(|s| (s.action, s.name.as_str(), s.cas))
        .collect();
    assert_eq!(
        taken,
        [(Action::Update, "api", 5), (Action::Update, "web", 4)]
    );
    let api = &adopt.steps[0];
    assert!(api.reason.starts_with("adopted: differs"), "{}", api.reason);
    assert_eq!(
        (
            api.before.as_ref().unwrap()["Protocol"].as_str(),
            api.after.as_ref().unwrap()["Protocol"].as_str()
        ),
        (Some("grpc"), Some("http"))
    );
    assert!(adopt.refused.is_empty());
    // Another owner's entry is never adopted, identical or not.
    let mut other = sd("api", "http");
    other
        .meta_mut()
        .insert(OWNER_KEY.into(), "someone-else".into());
    let adopting = PlanOptions {
        adopt: true,
        ..opts()
    };
    let p = plan(&desired[1..], &[observed(other, 8)], &[], false, &adopting).unwrap();
    assert!(p.steps.is_empty(), "{:?}", p.steps);
    assert!(p.refused[0].reason.contains("someone-else"));
    assert_eq!(p.refused[0].owner.as_deref(), Some("someone-else"));
    assert_eq!(p.outcome(), Outcome::Blocked);
}

/// `consul config write` replaces the whole entry, Meta included: the inventory still says the
/// entry is ours, so the difference is drift, restored with the mark.
#[test]
fn an_outside_write_that_drops_the_mark_is_drift_restored_with_the_mark() {
    let desired = vec![mark(sd("api", "http"))];
    let rewritten = sd("api", "grpc");
    let recorded = PlanOptions {
        recorded: [(EntryKind::ServiceDefaults, "api".to_owned())].into(),
        ..opts()
    };
    let p = plan(
        &desired,
        &[observed(rewritten.clone(), 11)],
        &[],
        false,
        &recorded,
    )
    .unwrap();
    assert_eq!(p.outcome(), Outcome::Changes);
    let s = &p.steps[0];
    assert_eq!((s.action, s.cas), (Action::Update, 11));
    assert!(s.reason.contains("owner mark replaced"), "{}", s.reason);
    let after = s.after.as_ref().unwrap();
    assert_eq!(after["Meta"][OWNER_KEY], "team");
    assert_eq!(after["Protocol"], "http");
    // Without the inventory it would be someone else's entry.
    let unrecorded = plan(&desired, &[observed(rewritten, 11)], &[], false, &opts()).unwrap();
    assert!(unrecorded.steps.is_empty());
    assert_eq!(unrecorded.outcome(), Outcome::Blocked);
    // Recorded and not declared any more: it is pruned, mark or not.
    let p = plan(
        &[mark(sd("web", "http"))],
        &[observed(sd("api", "grpc"), 12)],
        &[],
        false,
        &recorded,
    )
    .unwrap();
    let actions: Vec<(Action, &str)> = p
        .steps
        .iter()
        .map(|s| (s.action, s.name.as_str()))
        .collect();
    assert_eq!(actions, [(Action::Create, "web"), (Action::Delete, "api")]);
}

#[test]
fn another_owners_mark_on_a_recorded_entry_is_a_conflict_naming_both() {
    let mut theirs = sd("api", "grpc");
    theirs
        .meta_mut()
        .insert(OWNER_KEY.into(), "payments".into());
    let recorded = PlanOptions {
        recorded: [(EntryKind::ServiceDefaults, "api".to_owned())].into(),
        adopt: true,
        ..opts()
    };
    let p = plan(
        &[mark(sd("api", "http"))],
        &[observed(theirs.clone(), 3)],
        &[],
        false,
        &recorded,
    )
    .unwrap();
    assert!(p.steps.is_empty(), "{:?}", p.steps);
    let r = &p.refused[0];
    assert!(r.blocking);
    assert!(
        r.reason.starts_with("conflict")
            && r.reason.contains("\"team\"")
            && r.reason.contains("\"payments\""),
        "{}",
        r.reason
    );
    // No longer declared here: dropped from our inventory, never deleted.
    let p = plan(&[], &[observed(theirs, 3)], &[], false, &recorded).unwrap();
    let actions: Vec<Action> = p.steps.iter().map(|s| s.action).collect();
    assert_eq!(actions, [Action::Forget]);
    assert!(p.steps[0].reason.contains("\"payments\""));
}

#[test]
fn an_entry_marked_never_to_prune_is_kept_and_a_gone_one_is_forgotten() {
    let mut keep = mark(sd("legacy", "tcp"));
    keep.meta_mut().insert(PRUNE_KEY.into(), NEVER.into());
    let recorded = PlanOptions {
        recorded: [
            (EntryKind::ServiceDefaults, "legacy".to_owned()),
            (EntryKind::ServiceDefaults, "gone".to_owned()),
            (EntryKind::ServiceDefaults, "old".to_owned()),
        ]
        .into(),
        ..opts()
    };
    let obs = vec![observed(keep, 2), observed(mark(sd("old", "tcp")), 3)];
    let p = plan(&[mark(sd("web", "http"))], &obs, &[], false, &recorded).unwrap();
    let actions: Vec<(Action, &str)> = p
        .steps
        .iter()
        .map(|s| (s.action, s.name.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            (Action::Create, "web"),
            (Action::Delete, "old"),
            (Action::Forget, "gone")
        ]
    );
    assert_eq!(p.refused.len(), 1);
    assert!(!p.refused[0].blocking);
    assert!(p.refused[0]
        .reason
        .contains("mesh-gitops-prune = \"never\""));
}

#[test]
fn deleting_everything_owned_needs_consent() {
    let obs = vec![observed(mark(sd("web", "http")), 4)];
    assert_eq!(
        plan(&[], &obs, &[], false, &opts()),
        Err(PlanError::WouldDeleteEverything(1))
    );
    let p = plan(
        &[],
        &obs,
        &[],
        false,
        &PlanOptions {
            allow_empty: true,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(p.steps[0].action, Action::Delete);
}

#[test]
fn protocols_come_before_intentions_and_go_after_them() {
    let l7 = ConfigEntry::ServiceIntentions(ServiceIntentions {
        name: "api".into(),
        sources: vec![SourceIntention {
            name: "web".into(),
            permissions: vec![mesh_model::IntentionPermission {
                action: Allow,
                http: Some(mesh_model::IntentionHttpPermission {
                    path_prefix: Some("/".into()),
                    ..Default::default()
                }),
                jwt: None,
                span: Default::default(),
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let pd = ConfigEntry::ProxyDefaults(ProxyDefaults {
        name: "global".into(),
        ..Default::default()
    });
    let desired = vec![mark(l7), mark(sd("api", "http")), mark(pd)];
    let p = plan(&desired, &[], &[], false, &opts()).unwrap();
    let kinds: Vec<&str> = p.steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["proxy-defaults", "service-defaults", "service-intentions"]
    );
    // Removing both: the intentions go first, then the protocol they needed.
    let obs: Vec<ObservedEntry> = desired
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, e)| observed(e, i as u64 + 1))
        .collect();
    let p = plan(&[mark(sd("keep", "tcp"))], &obs, &[], false, &opts()).unwrap();
    let order: Vec<(Action, &str)> = p
        .steps
        .iter()
        .map(|s| (s.action, s.kind.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            (Action::Create, "service-defaults"),
            (Action::Delete, "service-intentions"),
            (Action::Delete, "service-defaults"),
            (Action::Delete, "proxy-defaults")
        ]
    );
}

/// `web -> *` allowed web to reach db; the change denies `web -> *` and allows `web -> db`
/// explicitly. Written by name, `*` would go first and break web -> db in between.
#[test]
fn intention_writes_are_ordered_make_before_break() {
    let obs = vec![
        observed(mark(ixn("*", &[("web", Allow)])), 2),
        observed(mark(ixn("db", &[("api", Allow)])), 3),
    ];
    let desired = vec![
        mark(ixn("*", &[("web", Deny)])),
        mark(ixn("db", &[("api", Allow), ("web", Allow)])),
    ];
    let declared = vec![
        ("web".to_owned(), "db".to_owned()),
        ("api".to_owned(), "db".to_owned()),
    ];
    let p = plan(&desired, &obs, &declared, false, &opts()).unwrap();
    let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["db", "*"],
        "the explicit allow is written before the wildcard closes"
    );
    assert!(p.unavoidable_breaks.is_empty());
}

fn shared_ixn(dest: &str, sources: &[(&str, IntentionAction)], owner: &str) -> ConfigEntry {
    let mut e = ixn(dest, sources);
    e.meta_mut()
        .insert(shared::SHARED_KEY.into(), "true".into());
    let state = DesiredState {
        config_entries: vec![e],
        ..Default::default()
    };
    marked_entries(&state, owner, &|_| "repo.hcl".into()).remove(0)
}

fn as_intentions(v: &Value) -> ServiceIntentions {
    serde_json::from_value(v.clone()).unwrap()
}

/// Two owners, one destination: each writes only its sources, merged with CAS; pruning
/// removes only its own, and the entry goes with the last source.
#[test]
fn owners_share_a_destination_source_by_source() {
    let a = PlanOptions {
        owner: "a".into(),
        ..opts()
    };
    let b = PlanOptions {
        owner: "b".into(),
        ..opts()
    };
    let from_a = shared_ixn("api", &[("web", Allow)], "a");
    let p = plan(std::slice::from_ref(&from_a), &[], &[], false, &a).unwrap();
    assert_eq!(p.steps[0].action, Action::Create);
    let consul = observed(from_a.clone(), 5);
    // b merges its source into a's entry, keeping a's.
    let from_b = shared_ixn("api", &[("batch", Deny)], "b");
    let p = plan(
        std::slice::from_ref(&from_b),
        std::slice::from_ref(&consul),
        &[],
        false,
        &b,
    )
    .unwrap();
    let s = &p.steps[0];
    assert_eq!((s.action, s.cas), (Action::Update, 5));
    assert!(s.reason.contains("keeps owner \"a\" (web)"), "{}", s.reason);
    let merged = as_intentions(s.after.as_ref().unwrap());
    let names: Vec<&str> = merged.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["web", "batch"]);
    assert_eq!(merged.meta["mesh-gitops-sources-a"], "web");
    assert_eq!(merged.meta["mesh-gitops-sources-b"], "batch");
    let both = observed(ConfigEntry::ServiceIntentions(merged), 6);
    // Each is in sync with the merged entry.
    for (d, o) in [(&from_a, &a), (&from_b, &b)] {
        let p = plan(
            std::slice::from_ref(d),
            std::slice::from_ref(&both),
            &[],
            false,
            o,
        )
        .unwrap();
        assert!(p.steps.is_empty() && p.refused.is_empty(), "{p:?}");
    }
    // b may not declare a's source.
    let grab = shared_ixn("api", &[("web", Deny)], "b");
    let p = plan(&[grab], std::slice::from_ref(&both), &[], false, &b).unwrap();
    assert!(p.steps.is_empty());
    assert!(p.refused[0].blocking && p.refused[0].reason.contains("owned by \"a\""));
    // a leaves: only its source goes.
    let p = plan(&[], std::slice::from_ref(&both), &[], false, &a).unwrap();
    let s = &p.steps[0];
    assert_eq!((s.action, s.cas), (Action::Update, 6));
    let left = as_intentions(s.after.as_ref().unwrap());
    assert_eq!(left.sources.len(), 1);
    assert_eq!(left.sources[0].name, "batch");
    assert!(!left.meta.contains_key("mesh-gitops-sources-a"));
    // b leaves last: the entry is deleted.
    let only_b = observed(ConfigEntry::ServiceIntentions(left), 7);
    let p = plan(&[], &[only_b], &[], false, &b).unwrap();
    assert_eq!((p.steps[0].action, p.steps[0].cas), (Action::Delete, 7));
}

#[test]
fn a_shared_source_list_longer_than_consul_stores_is_refused() {
    let names: Vec<String> = (0..60).map(|i| format!("service-number-{i:03}")).collect();
    let sources: Vec<(&str, IntentionAction)> = names.iter().map(|n| (n.as_str(), Allow)).collect();
    let d = shared_ixn("api", &sources, "a");
    let a = PlanOptions {
        owner: "a".into(),
        ..opts()
    };
    let p = plan(&[d], &[], &[], false, &a).unwrap();
    assert!(p.steps.is_empty(), "{:?}", p.steps);
    assert!(p.refused[0].blocking);
    assert!(
        p.refused[0].reason.contains("more than the 512"),
        "{}",
        p.refused[0].reason
    );
}
