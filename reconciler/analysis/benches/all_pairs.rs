//! All-pairs decisions: `cargo bench -p mesh-analysis`.
//!
//! Builds meshes of growing size (services, and intention sources spread over them with
//! wildcards, allows and denies), then times building the policy graph (every destination's
//! decisions for every source) and counting the allowed ordered pairs. Target: 10,000 services
//! and 100,000 intention sources under 2 s.

use mesh_model::{DesiredState, IntentionAction, ServiceIntentions, Settings, SourceIntention};
use std::time::Instant;

fn mesh(services: usize, sources: usize, seed: u64) -> DesiredState {
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let name = |i: usize| format!("svc-{i:05}");
    let per_dest = sources / services.max(1);
    let mut entries = Vec::new();
    for d in 0..services {
        let mut seen = std::collections::BTreeSet::new();
        let mut srcs = Vec::new();
        for _ in 0..per_dest {
            let s = (next() as usize) % services;
            if s == d || !seen.insert(s) {
                continue;
            }
            srcs.push(SourceIntention {
                name: name(s),
                action: Some(if next() % 5 == 0 {
                    IntentionAction::Deny
                } else {
                    IntentionAction::Allow
                }),
                ..SourceIntention::default()
            });
        }
        if d % 7 == 0 {
            srcs.push(SourceIntention {
                name: "*".into(),
                action: Some(IntentionAction::Deny),
                ..SourceIntention::default()
            });
        }
        let mut e = ServiceIntentions {
            name: name(d),
            sources: srcs,
            ..ServiceIntentions::default()
        };
        mesh_semantics::intention::normalize(&mut e);
        entries.push(mesh_model::ConfigEntry::ServiceIntentions(e));
    }
    let mut settings = Settings::default();
    settings.acl.enabled = true;
    settings.acl.default_policy = mesh_model::DefaultPolicy::Deny;
    DesiredState {
        settings,
        config_entries: entries,
        ..DesiredState::default()
    }
}

fn main() {
    println!("services  intention_sources  graph_ms  allowed_pairs  (of all ordered pairs)");
    for (services, sources) in [
        (1_000, 10_000),
        (2_500, 25_000),
        (5_000, 50_000),
        (10_000, 100_000),
    ] {
        let state = mesh(services, sources, 0x9E37_79B9);
        let n_sources: usize = state.intentions().map(|e| e.sources.len()).sum();
        let start = Instant::now();
        let g = mesh_analysis::PolicyGraph::build(&state);
        let allowed = g.allowed_pairs();
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        println!(
            "{services:>8}  {n_sources:>17}  {ms:>8.1}  {allowed:>13}  ({})",
            services as u64 * (services as u64 - 1)
        );
    }
}
