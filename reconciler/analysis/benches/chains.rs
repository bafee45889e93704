//! The all-pairs analysis with discovery chains: `cargo bench -p mesh-analysis --bench chains`.
//!
//! The same 10,000-service mesh as `all_pairs` (100,000 intention sources), with every service
//! declaring three upstreams. Without chains: the policy graph (every pair's decision) and the
//! allowed pairs, as `all_pairs` times them. With chains (a splitter, a resolver with failover
//! or a router on three services in four): the same, plus every declared upstream through its
//! compiled chain (`chains::edges`) and the chain findings. Target: within 2x. Then the time
//! with chains by step: the graph, the allowed pairs, the chain edges, the chain findings.

use mesh_model::chain::{
    ChainEntry, ResolverFailover, RouteDestination, RouteHttpMatch, RouteMatch, ServiceResolver,
    ServiceRoute, ServiceRouter, ServiceSplit, ServiceSplitter,
};
use mesh_model::{
    ConfigEntry, DesiredState, IntentionAction, ProxyDefaults, Service, ServiceIntentions,
    ServiceOrigin, Settings, SourceIntention, Upstream,
};
use std::time::Instant;

fn name(i: usize) -> String {
    format!("svc-{i:05}")
}

fn mesh(services: usize, sources: usize, chains: bool) -> DesiredState {
    let mut x: u64 = 0x9E37_79B9;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as usize
    };
    let per_dest = sources / services;
    let mut entries = Vec::new();
    let mut svcs = Vec::new();
    for d in 0..services {
        let mut seen = std::collections::BTreeSet::new();
        let mut srcs = Vec::new();
        for _ in 0..per_dest {
            let s = next() % services;
            if s == d || !seen.insert(s) {
                continue;
            }
            let action = if next() % 5 == 0 {
                IntentionAction::Deny
            } else {
                IntentionAction::Allow
            };
            srcs.push(SourceIntention {
                name: name(s),
                action: Some(action),
                ..SourceIntention::default()
            });
        }
        let mut e = ServiceIntentions {
            name: name(d),
            sources: srcs,
            ..ServiceIntentions::default()
        };
        mesh_semantics::intention::normalize(&mut e);
        entries.push(ConfigEntry::ServiceIntentions(e));
        let upstreams = (0..3)
            .map(|k| Upstream {
                destination_name: name((d + 1 + k * 7 + next() % 50) % services),
                local_bind_port: 9000 + k as u16,
                local_bind_address: None,
                datacenter: None,
                destination_type: None,
                span: Default::default(),
            })
            .collect();
        svcs.push(Service {
            name: name(d),
            port: Some(8080),
            port_label: None,
            address: None,
            sidecar: true,
            native: false,
            instances: 1,
            upstreams,
            proxy_config: Default::default(),
            meta: Default::default(),
            origin: ServiceOrigin::ServiceDefinition,
            span: Default::default(),
        });
        if chains {
            entries.extend(chain_entries(d, services));
        }
    }
    let mut config = serde_json::Map::new();
    config.insert("protocol".into(), "http".into());
    entries.push(ConfigEntry::ProxyDefaults(ProxyDefaults {
        name: "global".into(),
        config,
        ..ProxyDefaults::default()
    }));
    let mut settings = Settings::default();
    settings.acl.enabled = true;
    settings.acl.default_policy = mesh_model::DefaultPolicy::Deny;
    let mut state = DesiredState {
        settings,
        services: svcs,
        config_entries: entries,
        ..DesiredState::default()
    };
    state.sort();
    state
}

/// A splitter, a resolver with failover, or a router, on three services in four.
fn chain_entries(d: usize, services: usize) -> Option<ConfigEntry> {
    let other = |k: usize| Some(name((d + k) % services));
    let e = match d % 4 {
        0 => ChainEntry::Splitter(ServiceSplitter {
            name: name(d),
            splits: vec![
                ServiceSplit {
                    weight: 90.0,
                    ..ServiceSplit::default()
                },
                ServiceSplit {
                    weight: 10.0,
                    service: other(1),
                    ..ServiceSplit::default()
                },
            ],
            ..ServiceSplitter::default()
        }),
        1 => {
            let mut r = ServiceResolver {
                name: name(d),
                ..ServiceResolver::default()
            };
            r.failover.insert(
                "*".into(),
                ResolverFailover {
                    service: other(2),
                    ..ResolverFailover::default()
                },
            );
            ChainEntry::Resolver(r)
        }
        2 => ChainEntry::Router(ServiceRouter {
            name: name(d),
            routes: vec![ServiceRoute {
                matches: Some(RouteMatch {
                    http: Some(RouteHttpMatch {
                        path_prefix: Some("/admin".into()),
                        ..RouteHttpMatch::default()
                    }),
                }),
                destination: Some(RouteDestination {
                    service: other(3),
                    ..RouteDestination::default()
                }),
                span: Default::default(),
            }],
            ..ServiceRouter::default()
        }),
        _ => return None,
    };
    Some(ConfigEntry::Chain(e))
}

fn main() {
    println!(
        "services  chain_entries  chain_edges  findings  without_ms  with_ms  ratio  (target: ratio <= 2)"
    );
    let mut breakdown = Vec::new();
    for services in [1_000, 5_000, 10_000] {
        let plain = mesh(services, services * 10, false);
        let start = Instant::now();
        let g = mesh_analysis::PolicyGraph::build(&plain);
        let allowed = g.allowed_pairs();
        let without = start.elapsed().as_secs_f64() * 1000.0;
        assert!(mesh_analysis::chains::edges(&plain, &g).is_empty());
        let chained = mesh(services, services * 10, true);
        let n = chained
            .config_entries
            .iter()
            .filter(|e| matches!(e, ConfigEntry::Chain(_)))
            .count();
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
        let start = Instant::now();
        let g = mesh_analysis::PolicyGraph::build(&chained);
        let graph_ms = ms(start);
        let t = Instant::now();
        assert_eq!(g.allowed_pairs(), allowed);
        let pairs_ms = ms(t);
        let t = Instant::now();
        let edges = mesh_analysis::chains::edges(&chained, &g);
        let edges_ms = ms(t);
        let t = Instant::now();
        let findings = mesh_analysis::chains::findings(&chained, &g, &edges);
        let findings_ms = ms(t);
        let with = start.elapsed().as_secs_f64() * 1000.0;
        let denied = findings.len();
        println!(
            "{services:>8}  {n:>13}  {:>11}  {denied:>8}  {without:>10.1}  {with:>7.1}  {:>5.2}",
            edges.len(),
            with / without
        );
        breakdown.push((services, graph_ms, pairs_ms, edges_ms, findings_ms));
    }
    println!("\nwith chains, by step:");
    println!("services  graph_ms  pairs_ms  edges_ms  findings_ms");
    for (services, graph, pairs, edges, findings) in breakdown {
        println!("{services:>8}  {graph:>8.1}  {pairs:>8.1}  {edges:>8.1}  {findings:>11.1}");
    }
}
