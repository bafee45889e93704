//! The policy graph's compressed all-pairs decisions equal a brute-force evaluation of Consul's
//! rules for every pair, on random meshes with wildcards, allows, denies and both defaults.

use mesh_analysis::PolicyGraph;
use mesh_model::{
    ConfigEntry, DefaultPolicy, DesiredState, IntentionAction, IntentionHttpPermission,
    IntentionPermission, ServiceIntentions, Settings, SourceIntention,
};
use proptest::prelude::*;

const NAMES: &[&str] = &["a", "b", "c", "d", "*"];

/// Consul's rule written plainly (consul-semantics 2.5): collect every intention that matches,
/// sort by precedence then names, the first decides; an L7 match admits the connection for
/// per-request decisions; nothing matching gives the default.
fn brute(entries: &[ServiceIntentions], src: &str, dst: &str, default_allow: bool) -> bool {
    let prec = |s: &str, d: &str| mesh_semantics::intention::precedence(s, d);
    let mut all = Vec::new();
    for e in entries {
        if e.name != dst && e.name != "*" {
            continue;
        }
        for s in &e.sources {
            if s.name == src || s.name == "*" {
                all.push((
                    prec(&s.name, &e.name),
                    s.name.clone(),
                    e.name.clone(),
                    s.clone(),
                ));
            }
        }
    }
    all.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    match all.first() {
        Some((_, _, _, s)) if !s.permissions.is_empty() => true,
        Some((_, _, _, s)) => s.action == Some(IntentionAction::Allow),
        None => default_allow,
    }
}

fn source() -> impl Strategy<Value = SourceIntention> {
    (
        prop::sample::select(NAMES),
        any::<bool>(),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(n, allow, l7)| SourceIntention {
            name: n.to_string(),
            action: if l7 {
                None
            } else {
                Some(if allow {
                    IntentionAction::Allow
                } else {
                    IntentionAction::Deny
                })
            },
            permissions: if l7 {
                vec![IntentionPermission {
                    action: IntentionAction::Allow,
                    http: Some(IntentionHttpPermission {
                        path_prefix: Some("/".into()),
                        ..Default::default()
                    }),
                    jwt: None,
                    span: Default::default(),
                }]
            } else {
                Vec::new()
            },
            ..SourceIntention::default()
        })
}

fn mesh() -> impl Strategy<Value = (Vec<ServiceIntentions>, bool, bool)> {
    (
        prop::collection::btree_map(
            prop::sample::select(NAMES),
            prop::collection::vec(source(), 1..4),
            0..5,
        ),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(m, acl, deny)| {
            let entries = m
                .into_iter()
                .map(|(dest, mut sources)| {
                    let mut seen = std::collections::BTreeSet::new();
                    sources.retain(|s| seen.insert(s.name.clone()));
                    let mut e = ServiceIntentions {
                        name: dest.to_string(),
                        sources,
                        ..Default::default()
                    };
                    mesh_semantics::intention::normalize(&mut e);
                    e
                })
                .collect();
            (entries, acl, deny)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_pair_matches_brute_force((entries, acl, deny) in mesh()) {
        let mut settings = Settings::default();
        settings.acl.enabled = acl;
        settings.acl.default_policy = if deny { DefaultPolicy::Deny } else { DefaultPolicy::Allow };
        let default_allow = settings.acl.default_intention_allows();
        let state = DesiredState {
            settings,
            config_entries: entries.iter().cloned().map(ConfigEntry::ServiceIntentions).collect(),
            ..DesiredState::default()
        };
        let g = PolicyGraph::build(&state);
        // Known services, plus names no intention mentions.
        for src in ["a", "b", "c", "d", "zz", "yy"] {
            for dst in ["a", "b", "c", "d", "zz"] {
                prop_assert_eq!(
                    g.decide(src, dst).allowed,
                    brute(&entries, src, dst, default_allow),
                    "{} -> {}", src, dst
                );
            }
        }
        // The pair count agrees with counting the pairs one by one.
        let names: Vec<&String> = g.services.iter().collect();
        let mut count = 0u64;
        for s in &names {
            for d in &names {
                if s != d && brute(&entries, s, d, default_allow) {
                    count += 1;
                }
            }
        }
        prop_assert_eq!(g.allowed_pairs(), count);
    }
}
