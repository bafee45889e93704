//! Requests routed by the discovery chain: a canary split reaches both targets and each
//! target's intentions decide; failover reaches the backup when the primary's instances are
//! down; a router's path match sends its requests to the route's service; and the simulated
//! per-target decisions agree with the static analysis of the chains.

mod common;

use mesh_model::chain::{
    ChainEntry, RouteDestination, RouteHttpMatch, RouteMatch, ServiceRoute, ServiceRouter,
};
use mesh_model::{ConfigEntry, DesiredState, EntryKind};
use mesh_sim::{simulate, FaultSpec, SimOptions, SimReport, TargetReport};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn run(state: &DesiredState, seed: u64, faults: &str) -> SimReport {
    let opts = SimOptions {
        seed,
        faults: FaultSpec::parse(faults).unwrap(),
        probes: false,
        ..SimOptions::default()
    };
    let r = simulate(state, None, &opts).unwrap();
    println!("{}", mesh_sim::render_text(&r));
    r
}

fn target<'a>(r: &'a SimReport, name: &str) -> &'a TargetReport {
    r.targets
        .iter()
        .find(|t| t.source == "web" && t.upstream == "api" && t.target == name)
        .unwrap_or_else(|| panic!("no target {name}: {:#?}", r.targets))
}

/// The example without the service-intentions entry of `name`.
fn without_intentions(example: &str, name: &str) -> DesiredState {
    let mut state = common::example(example);
    state
        .config_entries
        .retain(|e| !(e.kind() == EntryKind::ServiceIntentions && e.name() == name));
    state
}

#[test]
fn a_canary_split_reaches_both_targets_and_both_intentions_admit_it() {
    let r = run(&common::example("canary"), 3, "");
    assert!(r.passed(), "{:#?}", r.violations);
    let (api, v2) = (target(&r, "api"), target(&r, "api-v2"));
    assert!(api.expected_allowed && v2.expected_allowed);
    assert!(api.allowed > 0 && v2.allowed > 0, "{:#?}", r.targets);
    // Nine in ten go to api (seeded rolls: not exactly).
    assert!(api.allowed > v2.allowed, "{:#?}", r.targets);
    assert_eq!((api.denied, v2.denied), (0, 0));
}

#[test]
fn a_canary_without_its_intention_is_denied_at_that_target_and_agrees_with_the_analysis() {
    let r = run(&without_intentions("canary", "api-v2"), 3, "");
    // The simulation agrees with the analysis (no violation), but the denial fails the run.
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert!(!r.passed());
    let v2 = target(&r, "api-v2");
    assert!(!v2.expected_allowed);
    assert!(v2.denied > 0 && v2.allowed == 0, "{v2:?}");
    assert!(v2.denied_by.is_some(), "{v2:?}");
    let api = target(&r, "api");
    assert!(api.allowed > 0 && api.denied_by.is_none(), "{api:?}");
    // The upstream as a whole still carried traffic.
    assert!(r.edges[0].delivered() > 0);
    assert_eq!(r.denied_targets().count(), 1);
}

#[test]
fn failover_reaches_the_backup_when_the_primary_is_down_and_its_intentions_decide() {
    let r = run(&common::example("failover"), 5, "crash=api@2s");
    assert!(r.passed(), "{:#?}", r.violations);
    let backup = target(&r, "api-backup");
    assert!(backup.allowed > 0, "{:#?}", r.targets);
    assert!(
        target(&r, "api").allowed > 0,
        "before the crash: {:#?}",
        r.targets
    );

    // Without the backup's intention, failover is refused exactly when it is needed.
    let r = run(
        &without_intentions("failover", "api-backup"),
        5,
        "crash=api@2s",
    );
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    let backup = target(&r, "api-backup");
    assert!(!backup.expected_allowed);
    assert!(backup.denied > 0 && backup.allowed == 0, "{backup:?}");
    assert!(!r.passed());
}

#[test]
fn without_a_fault_failover_carries_nothing() {
    let r = run(&common::example("failover"), 5, "");
    assert!(r.passed(), "{:#?}", r.violations);
    let backup = target(&r, "api-backup");
    assert_eq!(backup.allowed + backup.denied, 0, "{backup:?}");
}

#[test]
fn a_router_path_match_sends_its_requests_to_the_route_s_service() {
    let mut state = common::example("canary");
    state
        .config_entries
        .retain(|e| !matches!(e, ConfigEntry::Chain(ChainEntry::Splitter(_))));
    state
        .config_entries
        .push(ConfigEntry::Chain(ChainEntry::Router(ServiceRouter {
            name: "api".into(),
            routes: vec![ServiceRoute {
                matches: Some(RouteMatch {
                    http: Some(RouteHttpMatch {
                        path_prefix: Some("/v2".into()),
                        ..RouteHttpMatch::default()
                    }),
                }),
                destination: Some(RouteDestination {
                    service: Some("api-v2".into()),
                    ..RouteDestination::default()
                }),
                ..ServiceRoute::default()
            }],
            ..ServiceRouter::default()
        })));
    let r = run(&state, 9, "");
    assert!(r.passed(), "{:#?}", r.violations);
    // The application alternates its usual request with one the route matches.
    let (api, v2) = (target(&r, "api"), target(&r, "api-v2"));
    assert!(api.allowed > 0 && v2.allowed > 0, "{:#?}", r.targets);
    assert!(api.allowed.abs_diff(v2.allowed) <= 1, "{:#?}", r.targets);
    assert!(r
        .trace
        .iter()
        .any(|(_, _, e)| e.contains("app api-v2 served web GET /v2")));
}

#[test]
fn the_same_seed_routes_the_same_way() {
    let state = common::example("canary");
    let (a, b) = (run(&state, 11, ""), run(&state, 11, ""));
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.targets, b.targets);
}

/// alpha calls beta, whose splitter sends `weight`% to beta and the rest to gamma; the
/// intentions allow or deny alpha at each.
fn split_mesh(weight: u32, beta: bool, gamma: bool, default_deny: bool) -> DesiredState {
    let action = |a: bool| if a { "allow" } else { "deny" };
    let defaults = |name: &str| {
        format!(r#"{{"Kind": "service-defaults", "Name": "{name}", "Protocol": "http"}}"#)
    };
    let splitter = format!(
        r#"{{"Kind": "service-splitter", "Name": "beta", "Splits": [{{"Weight": {weight}, "Service": "beta"}}, {{"Weight": {}, "Service": "gamma"}}]}}"#,
        100 - weight
    );
    let files: Vec<(String, String)> = vec![
        ("mesh-gitops.hcl".into(), common::settings(default_deny)),
        (
            "services/alpha.json".into(),
            common::service("alpha", 8080, &[("beta", 9001)]),
        ),
        (
            "services/beta.json".into(),
            common::service("beta", 8080, &[]),
        ),
        (
            "services/gamma.json".into(),
            common::service("gamma", 8080, &[]),
        ),
        ("config/beta.json".into(), defaults("beta")),
        ("config/gamma.json".into(), defaults("gamma")),
        ("config/split.json".into(), splitter),
        (
            "intentions/beta.json".into(),
            common::intentions("beta", &[("alpha", action(beta))]),
        ),
        (
            "intentions/gamma.json".into(),
            common::intentions("gamma", &[("alpha", action(gamma))]),
        ),
    ];
    common::repo(&files)
}

proptest! {
    #![proptest_config(Config {
        cases: 6,
        rng_seed: RngSeed::Fixed(20261201),
        failure_persistence: None,
        ..Config::default()
    })]

    /// Per target, the simulated decision once converged is the static analysis's, traffic got
    /// through exactly where it allows it, and a denied target fails the run.
    #[test]
    fn simulated_per_target_decisions_equal_the_chain_analysis(
        weight in 20u32..=80,
        beta in any::<bool>(),
        gamma in any::<bool>(),
        default_deny in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let state = split_mesh(weight, beta, gamma, default_deny);
        let opts = SimOptions { seed, probes: false, ..SimOptions::default() };
        let r = simulate(&state, None, &opts).unwrap();
        prop_assert!(r.violations.is_empty(), "{:#?}", r.violations);
        let graph = mesh_analysis::PolicyGraph::build(&state);
        let analysis: std::collections::BTreeMap<String, bool> =
            mesh_analysis::chains::edges(&state, &graph)
                .into_iter()
                .map(|e| (e.target, e.allowed))
                .collect();
        prop_assert_eq!(analysis.len(), 2);
        for t in &r.targets {
            prop_assert_eq!(Some(&t.expected_allowed), analysis.get(&t.target), "{:?}", t);
            prop_assert_eq!(t.allowed > 0, t.expected_allowed, "{:?}", t);
            prop_assert_eq!(t.denied_by.is_some(), !t.expected_allowed, "{:?}", t);
        }
        prop_assert_eq!(r.targets.len(), 2, "{:#?}", r.targets);
        prop_assert_eq!(r.passed(), beta && gamma);
    }
}

/// The canary example's files, and one more.
fn canary_with(path: &str, text: &str) -> DesiredState {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/canary");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let rel = p.strip_prefix(&root).unwrap().display().to_string();
                files.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    files.push((path.to_owned(), text.to_owned()));
    common::repo(&files)
}

/// A resolver's default subset selects instances by `Service.Meta`: api-v2's instance has
/// `version = "2"`, so a subset filtering on it gets the canary's traffic; one filtering on a
/// version no instance has leaves the target empty, and the resolver's failover takes over.
#[test]
fn a_subset_filter_over_the_instances_meta_picks_the_target_s_instances() {
    let resolver = |version: u32| {
        format!(
            "Kind = \"service-resolver\"\nName = \"api-v2\"\nDefaultSubset = \"v\"\n\
             Subsets = {{ v = {{ Filter = \"Service.Meta.version == {version}\" }} }}\n\
             Failover = {{ \"*\" = {{ Service = \"api\" }} }}\n"
        )
    };
    let r = run(
        &canary_with("config/api-v2-resolver.hcl", &resolver(2)),
        4,
        "",
    );
    assert!(r.passed(), "{:#?}", r.violations);
    assert!(target(&r, "api-v2").allowed > 0, "{:#?}", r.targets);

    let r = run(
        &canary_with("config/api-v2-resolver.hcl", &resolver(3)),
        4,
        "",
    );
    assert!(r.passed(), "{:#?}", r.violations);
    assert_eq!(target(&r, "api-v2").allowed, 0, "{:#?}", r.targets);
    let api = target(&r, "api");
    assert_eq!((api.denied, api.failed), (0, 0), "{api:?}");
    // Every request went to api: the canary's tenth through failover.
    assert_eq!(api.allowed, r.edges[0].attempts, "{:#?}", r.targets);
}

#[test]
fn failover_reaches_the_backup_when_the_primary_is_partitioned_away() {
    let r = run(&common::example("failover"), 6, "partition=web/api@2s");
    assert!(r.passed(), "{:#?}", r.violations);
    assert!(target(&r, "api-backup").allowed > 0, "{:#?}", r.targets);
}
