use super::*;
use mesh_model::{IntentionAction, ProxyDefaults, ServiceDefaults, SourceIntention};

fn opts() -> PlanOptions {
    PlanOptions {
        owner: "team".into(),
        adopt: false,
        allow_empty: false,
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
    assert_eq!(
        steps,
        [
            (Action::Update, "db", 3),
            (Action::Create, "web", 0),
            (Action::Delete, "old", 9)
        ]
    );
    // Applying the plan's after-state gives an empty plan.
    let obs2: Vec<ObservedEntry> = desired_db
        .iter()
        .cloned()
        .map(|e| observed(e, 20))
        .collect();
    assert!(plan(&desired_db, &obs2, &[], false, &opts())
        .unwrap()
        .steps
        .is_empty());
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
    assert_eq!(adopt.steps.len(), 1);
    assert_eq!(
        (
            adopt.steps[0].action,
            adopt.steps[0].name.as_str(),
            adopt.steps[0].cas
        ),
        (Action::Update, "web", 4)
    );
    let mut other = sd("api", "grpc");
    other
        .meta_mut()
        .insert(OWNER_KEY.into(), "someone-else".into());
    let p = plan(&desired, &[observed(other, 8)], &[], false, &opts()).unwrap();
    assert!(p.refused[0].reason.contains("someone-else"));
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
