//! On small random meshes, what the simulated proxies decide once converged equals the static
//! decisions of `mesh-analysis`, the declared edges that carried traffic are exactly those the
//! analysis allows (and the denied ones exactly those `check` reports as `E1001`), and nothing
//! violates safety or liveness.

mod common;

use mesh_sim::{simulate, SimOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use std::collections::{BTreeMap, BTreeSet};

const NAMES: [&str; 4] = ["alpha", "beta", "gamma", "delta"];

#[derive(Debug, Clone)]
struct Mesh {
    services: usize,
    /// (source, destination) index pairs.
    upstreams: Vec<(usize, usize)>,
    /// destination (None = `*`) -> source (None = `*`) -> allow.
    intentions: BTreeMap<Option<usize>, BTreeMap<Option<usize>, bool>>,
    default_deny: bool,
}

fn mesh() -> impl Strategy<Value = Mesh> {
    (2usize..=4).prop_flat_map(|n| {
        let pair = (0..n, 0..n).prop_filter("no self edges", |(a, b)| a != b);
        let name = prop::option::weighted(0.8, 0..n);
        (
            Just(n),
            prop::collection::vec(pair, 1..=4),
            prop::collection::btree_map(
                name.clone(),
                prop::collection::btree_map(name, any::<bool>(), 1..=3),
                0..=3,
            ),
            any::<bool>(),
        )
            .prop_map(|(services, upstreams, intentions, default_deny)| Mesh {
                services,
                upstreams,
                intentions,
                default_deny,
            })
    })
}

fn files(m: &Mesh) -> Vec<(String, String)> {
    let name = |i: Option<usize>| i.map(|i| NAMES[i]).unwrap_or("*");
    let mut out = vec![(
        "mesh-gitops.hcl".to_owned(),
        common::settings(m.default_deny),
    )];
    for (i, svc) in NAMES.iter().enumerate().take(m.services) {
        let mut ups: Vec<(&str, u16)> = m
            .upstreams
            .iter()
            .filter(|(s, _)| *s == i)
            .map(|(_, d)| (NAMES[*d], 9000 + *d as u16))
            .collect();
        ups.sort();
        ups.dedup();
        out.push((
            format!("services/{svc}.json"),
            common::service(svc, 8080, &ups),
        ));
    }
    for (k, (dst, sources)) in m.intentions.iter().enumerate() {
        let srcs: Vec<(&str, &str)> = sources
            .iter()
            .map(|(s, allow)| (name(*s), if *allow { "allow" } else { "deny" }))
            .collect();
        out.push((
            format!("intentions/{k}.json"),
            common::intentions(name(*dst), &srcs),
        ));
    }
    out
}

proptest! {
    #![proptest_config(Config {
        cases: 8,
        rng_seed: RngSeed::Fixed(20261130),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn simulated_decisions_equal_static_ones(m in mesh(), seed in 0u64..1000) {
        let state = common::repo(&files(&m));
        let r = simulate(&state, None, &SimOptions { seed, ..SimOptions::default() }).unwrap();
        prop_assert!(r.violations.is_empty(), "{:#?}\n{}", r.violations, mesh_sim::render_text(&r));
        for e in &r.edges {
            prop_assert_eq!(e.converged_allowed, Some(e.expected_allowed), "{:?}", e);
            prop_assert_eq!(e.carried(), e.expected_allowed, "{:?}", e);
        }
        // The analysis `check` runs: its declared edges that the intentions deny, each an
        // `E1001` finding naming the same decision.
        let analysis = mesh_analysis::analyze(&state, &[]);
        let static_denied: BTreeMap<(String, String), String> = analysis
            .edges
            .iter()
            .filter(|e| e.declared && !e.allowed)
            .map(|e| ((e.source.clone(), e.destination.clone()), e.reason.clone()))
            .collect();
        let simulated_denied: BTreeMap<(String, String), String> = r
            .denied()
            .map(|e| ((e.source.clone(), e.destination.clone()), e.denied_by.clone().unwrap()))
            .collect();
        prop_assert_eq!(&simulated_denied, &static_denied);
        let e1001: BTreeSet<&str> = analysis
            .findings
            .iter()
            .filter(|f| f.code == mesh_diagnostics::Code::UpstreamDenied)
            .map(|f| f.message.as_str())
            .collect();
        prop_assert_eq!(e1001.len(), static_denied.len(), "{:?}", e1001);
        prop_assert_eq!(r.passed(), static_denied.is_empty());
        for p in &r.probes {
            prop_assert_eq!(p.outcome, p.expected, "{:?}", p);
        }
    }
}
