//! Connections as Envoy keeps them: an HTTP-family upstream reuses pooled mTLS connections, a
//! TCP upstream handshakes for every application connection, and a root rotation or a leaf
//! renewal makes the next connections handshake again.

mod common;

use common::{intentions, repo, service, settings};
use mesh_sim::{simulate, FaultSpec, Outcome, SimOptions, SimReport};

/// `web` calling `api`, whose protocol is `protocol`, allowed by an intention.
fn run(protocol: &str, faults: &str) -> SimReport {
    let state = repo(&[
        ("mesh-gitops.hcl".into(), settings(true)),
        ("web.json".into(), service("web", 8080, &[("api", 9191)])),
        ("api.json".into(), service("api", 9090, &[])),
        (
            "api-defaults.json".into(),
            format!(r#"{{"Kind": "service-defaults", "Name": "api", "Protocol": "{protocol}"}}"#),
        ),
        (
            "api-intentions.json".into(),
            intentions("api", &[("web", "allow")]),
        ),
    ]);
    let opts = SimOptions {
        seed: 3,
        faults: FaultSpec::parse(faults).unwrap(),
        probes: false,
        ..SimOptions::default()
    };
    let r = simulate(&state, None, &opts).unwrap();
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert_eq!(r.calls, r.edges[0].attempts);
    assert!(r.calls >= 10, "{} calls", r.calls);
    r
}

fn all_allowed(r: &SimReport) -> bool {
    r.edges[0].outcomes.keys().eq([&Outcome::Allowed])
}

#[test]
fn http_calls_share_one_connection_and_tcp_calls_each_make_one() {
    let http = run("http", "");
    assert!(all_allowed(&http), "{:?}", http.edges[0].outcomes);
    assert_eq!(http.handshakes, 1, "{} calls", http.calls);
    let tcp = run("tcp", "");
    assert!(all_allowed(&tcp), "{:?}", tcp.edges[0].outcomes);
    // One each, and the last call may still be on its way when the run ends.
    assert!(
        (tcp.calls..=tcp.calls + 1).contains(&tcp.handshakes),
        "{} handshakes for {} calls",
        tcp.handshakes,
        tcp.calls
    );
}

#[test]
fn a_rotation_or_a_renewal_makes_pooled_calls_handshake_again() {
    // New roots, then the leaf signed by the new root: connections opened before are not reused.
    let rotated = run("http", "rotate@3s");
    assert!(
        (2..=4).contains(&rotated.handshakes),
        "{} handshakes",
        rotated.handshakes
    );
    // A leaf living two seconds is renewed every one or so: each renewal costs a handshake, and
    // the calls keep working on certificates that are never expired.
    let renewed = run("http", "leaf-ttl=2s");
    assert!(all_allowed(&renewed), "{:?}", renewed.edges[0].outcomes);
    assert!(
        renewed.handshakes >= 3 && renewed.handshakes < renewed.calls,
        "{} handshakes for {} calls",
        renewed.handshakes,
        renewed.calls
    );
}
