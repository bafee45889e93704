//! Rolling out intention changes one entry at a time while traffic flows: breaking before
//! making shows a transient break, making before breaking shows none.

mod common;

use mesh_model::{ConfigEntry, DesiredState, EntryKind};
use mesh_sim::{simulate, RolloutStep, SimOptions, TransientKind};

/// web -> db allowed first by a `web -> *` intention, then by a `web -> db` one.
fn states() -> (DesiredState, DesiredState) {
    let svc = |d: &str| {
        vec![
            (
                "services/web.json".to_owned(),
                common::service("web", 8080, &[("db", 9000)]),
            ),
            (
                "services/db.json".to_owned(),
                common::service("db", 5432, &[]),
            ),
            ("mesh-gitops.hcl".to_owned(), common::settings(true)),
            ("intentions/entry.json".to_owned(), d.to_owned()),
        ]
    };
    let base = common::repo(&svc(&common::intentions("*", &[("web", "allow")])));
    let desired = common::repo(&svc(&common::intentions("db", &[("web", "allow")])));
    (base, desired)
}

fn entry(state: &DesiredState, name: &str) -> Option<ConfigEntry> {
    state
        .config_entry(EntryKind::ServiceIntentions, name)
        .cloned()
}

fn rollout(delete_first: bool) -> mesh_sim::SimReport {
    let (base, desired) = states();
    let write = RolloutStep {
        kind: EntryKind::ServiceIntentions,
        name: "db".into(),
        entry: entry(&desired, "db"),
    };
    let delete = RolloutStep {
        kind: EntryKind::ServiceIntentions,
        name: "*".into(),
        entry: None,
    };
    let steps = if delete_first {
        vec![delete, write]
    } else {
        vec![write, delete]
    };
    let opts = SimOptions {
        seed: 3,
        steps,
        probes: false,
        ..SimOptions::default()
    };
    let r = simulate(&desired, Some(&base), &opts).unwrap();
    println!("{}", mesh_sim::render_text(&r));
    r
}

#[test]
fn breaking_before_making_shows_a_transient_break() {
    let r = rollout(true);
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert!(!r.transient.is_empty());
    for t in &r.transient {
        assert_eq!(t.kind, TransientKind::Break);
        assert_eq!((t.source.as_str(), t.destination.as_str()), ("web", "db"));
        assert_eq!(t.step, 0, "the break follows the deletion");
        assert!(t.at_ms >= 2000, "{t:?}");
    }
}

#[test]
fn making_before_breaking_shows_none() {
    let r = rollout(false);
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert!(r.transient.is_empty(), "{:#?}", r.transient);
    assert!(r.edges[0].outcomes.len() == 1, "{:?}", r.edges[0]);
}

#[test]
fn a_step_whose_entry_does_not_match_is_refused() {
    let (base, desired) = states();
    let opts = SimOptions {
        steps: vec![RolloutStep {
            kind: EntryKind::ServiceIntentions,
            name: "other".into(),
            entry: entry(&desired, "db"),
        }],
        ..SimOptions::default()
    };
    assert!(matches!(
        simulate(&desired, Some(&base), &opts),
        Err(mesh_sim::SimError::Step { index: 0, .. })
    ));
}

#[test]
fn a_rollout_that_stops_short_is_a_violation_with_a_replay_command() {
    // Only the deletion is applied: the mesh ends up denying what the desired state allows.
    let (base, desired) = states();
    let opts = SimOptions {
        seed: 9,
        steps: vec![RolloutStep {
            kind: EntryKind::ServiceIntentions,
            name: "*".into(),
            entry: None,
        }],
        probes: false,
        repo: "repo".into(),
        ..SimOptions::default()
    };
    let r = simulate(&desired, Some(&base), &opts).unwrap();
    assert!(!r.passed());
    assert!(
        r.violations
            .iter()
            .any(|v| v.starts_with("decision: web -> db was denied")),
        "{:#?}",
        r.violations
    );
    assert!(r
        .violations
        .iter()
        .any(|v| v.starts_with("liveness: web -> db")));
    assert_eq!(r.replay, "mesh-gitops simulate repo --seed 9");
    assert!(mesh_sim::render_text(&r).contains("replay: mesh-gitops simulate repo --seed 9"));
}
