//! The example repositories, simulated: no violations, probes refused for the right reason,
//! a missing intention denied after a completed handshake, a root rotation that keeps edges up,
//! and a trace that depends only on the seed (with a root rotation too).

mod common;

use mesh_model::ConfigEntry;
use mesh_sim::{simulate, FaultSpec, Outcome, ProbeKind, SimOptions, SimReport};

fn run(name: &str, seed: u64, faults: &str) -> SimReport {
    let opts = SimOptions {
        seed,
        faults: FaultSpec::parse(faults).unwrap(),
        repo: format!("examples/{name}"),
        ..SimOptions::default()
    };
    let r = simulate(&common::example(name), None, &opts).unwrap();
    println!("{}", mesh_sim::render_text(&r));
    r
}

#[test]
fn every_example_simulates_without_violations() {
    let names = common::examples_with_sidecars();
    assert!(
        names.len() >= 4,
        "expected the four seed examples with sidecars, found {names:?}"
    );
    for name in &names {
        let r = run(name, 7, "");
        assert!(r.violations.is_empty(), "{name}: {:#?}", r.violations);
        assert!(!r.edges.is_empty(), "{name}");
        for e in &r.edges {
            let want = if e.expected_allowed {
                Outcome::Allowed
            } else {
                Outcome::DeniedByIntention
            };
            assert_eq!(
                e.outcomes.keys().copied().collect::<Vec<_>>(),
                vec![want],
                "{name}: {e:?}"
            );
        }
        assert!(r.replay.contains("--seed 7"));
    }
}

#[test]
fn adversarial_probes_are_refused_for_the_right_reason() {
    let r = run("production", 3, "");
    let kinds = [
        ProbeKind::NoClientCert,
        ProbeKind::ForeignCa,
        ProbeKind::ExpiredCert,
        ProbeKind::DeniedIdentity,
        ProbeKind::DirectToApp,
    ];
    // Every sidecar (web runs three instances) gets every probe.
    assert_eq!(r.probes.len(), 5 * kinds.len());
    for p in &r.probes {
        assert_eq!(p.outcome, p.expected, "{p:?}");
        match p.kind {
            ProbeKind::NoClientCert => assert!(p.detail.contains("CertificateRequired"), "{p:?}"),
            // The forged chain names the real root's subject, so the signature check fails.
            ProbeKind::ForeignCa => assert!(p.detail.contains("DecryptError"), "{p:?}"),
            ProbeKind::ExpiredCert => assert!(p.detail.contains("CertificateExpired"), "{p:?}"),
            ProbeKind::DeniedIdentity => {
                assert_eq!(p.outcome, Outcome::DeniedByIntention, "{p:?}");
                assert!(p.handshake, "{p:?}");
            }
            ProbeKind::DirectToApp => assert_eq!(p.outcome, Outcome::Unreachable, "{p:?}"),
        }
        if p.kind.bad_certificate() {
            assert!(!p.handshake, "{p:?}");
        }
    }
    // Nothing without a valid certificate appears among what the applications served.
    assert!(!r
        .trace
        .iter()
        .any(|(_, _, e)| e.contains("probe no-client-cert") && e.starts_with("app")));
}

#[test]
fn dynamic_app_without_its_intention_is_denied_after_the_handshake() {
    let mut state = common::example("dynamic-app");
    state
        .config_entries
        .retain(|e| !matches!(e, ConfigEntry::ServiceIntentions(_)));
    let r = simulate(&state, None, &SimOptions::default()).unwrap();
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    let e = r
        .edges
        .iter()
        .find(|e| e.source == "dynamic-app" && e.destination == "mysql-server")
        .unwrap();
    assert!(!e.expected_allowed);
    assert_eq!(e.converged_allowed, Some(false));
    assert!(e.attempts > 3);
    assert_eq!(
        e.outcomes.get(&Outcome::DeniedByIntention),
        Some(&e.attempts)
    );
    assert_eq!(e.denied_after_handshake, e.attempts);
    assert!(r.trace.iter().any(|(_, h, ev)| h == "node-mysql-server"
        && ev.starts_with("proxy mysql-server denied dynamic-app")));
}

#[test]
fn a_root_rotation_mid_run_keeps_the_edges_up() {
    // mysql-server's agent is cut off from the server across the rotation, so it keeps the old
    // roots and leaf while dynamic-app already presents a leaf of the new root: that leaf
    // verifies through the cross-signed intermediate.
    let r = run(
        "dynamic-app",
        5,
        "rotate@2s,partition=node-mysql-server/server@1500ms..4s",
    );
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    let e = &r.edges[0];
    assert_eq!(
        e.outcomes.keys().copied().collect::<Vec<_>>(),
        vec![Outcome::Allowed],
        "{e:?}"
    );
    let reissued = r
        .trace
        .iter()
        .filter(|(t, h, ev)| *t > 2000 && h == "server" && ev.starts_with("issued leaf"))
        .count();
    assert_eq!(reissued, 2, "both services get a leaf of the new root");
    // Calls kept succeeding while the two sides held leaves of different roots.
    let mixed = r
        .trace
        .iter()
        .filter(|(t, _, ev)| {
            (2300..4000).contains(t)
                && ev.contains("call dynamic-app->mysql-server")
                && ev.ends_with("allowed")
        })
        .count();
    assert!(mixed >= 3, "{mixed}");
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    let faults = "partition=agents-server@2s..3s,crash=node-api@2500ms..4s,rotate@3s,latency=20ms";
    let a = run("production", 11, faults);
    let b = run("production", 11, faults);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.trace, b.trace);
    assert!(a.violations.is_empty(), "{:#?}", a.violations);
    let c = run("production", 12, faults);
    assert_ne!(a.trace_hash, c.trace_hash);
}

#[test]
fn the_report_serializes_to_json() {
    let r = run("web-socat", 2, "latency=10ms");
    let v = serde_json::to_value(&r).unwrap();
    for key in [
        "seed",
        "trace_hash",
        "probes",
        "edges",
        "violations",
        "transient",
        "replay",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    assert_eq!(
        v["edges"][0]["outcomes"]["denied_by_intention"],
        serde_json::json!(r.edges[0].attempts)
    );
    assert_eq!(v["probes"][0]["kind"], "no-client-cert");
    assert!(
        v.get("trace").is_none(),
        "the trace stays out of the JSON report"
    );
    assert_eq!(r.trace_hash.len(), 64);
}

#[test]
fn unknown_hosts_in_faults_are_errors() {
    let state = common::example("web-socat");
    for faults in ["crash=node-nowhere@1s", "partition=server-nowhere@1s..2s"] {
        let opts = SimOptions {
            faults: FaultSpec::parse(faults).unwrap(),
            ..SimOptions::default()
        };
        assert!(
            matches!(
                simulate(&state, None, &opts),
                Err(mesh_sim::SimError::Faults(_))
            ),
            "{faults}"
        );
    }
}

#[test]
fn short_lived_leaves_are_renewed_before_they_expire_and_traffic_continues() {
    let r = run("production", 5, "leaf-ttl=2s,rotate@3s");
    assert!(r.passed(), "{:?}", r.violations);
    for service in ["web", "api", "cassandra-db"] {
        let renewals = r
            .trace
            .iter()
            .filter(|(_, _, e)| e.starts_with(&format!("agent leaf for {service} serial")))
            .count();
        // Several lifetimes of 2 s fit into the run: each needs a new leaf.
        assert!(renewals >= 3, "{service}: {renewals} leaves");
    }
    // Every declared edge kept working across the renewals.
    for e in &r.edges {
        assert!(
            e.outcomes.get(&Outcome::Allowed).copied().unwrap_or(0) > 5,
            "{e:?}"
        );
    }
}

#[test]
fn a_rotation_run_depends_only_on_the_seed() {
    // A rotation wakes every sidecar's blocked leaf query at once; the order they resume in
    // (and so the leaves' serials and the agents' events) must come from the seed alone.
    for (name, faults) in [
        ("countdash", "rotate@2s"),
        ("countdash", "rotate@2s,latency=20ms,leaf-ttl=2s"),
        ("production", "rotate@2s"),
    ] {
        let a = run(name, 1, faults);
        let b = run(name, 1, faults);
        let first = a.trace.iter().zip(&b.trace).position(|(x, y)| x != y);
        assert_eq!(
            first.map(|i| (&a.trace[i], &b.trace[i])),
            None,
            "{name} {faults}: the first event that differs"
        );
        assert_eq!(a.trace, b.trace, "{name} {faults}");
        assert_eq!(a.trace_hash, b.trace_hash, "{name} {faults}");
    }
}
