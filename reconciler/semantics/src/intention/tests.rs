use super::*;
use mesh_model::{IntentionHttpHeaderPermission, IntentionHttpPermission};

fn l4(name: &str, action: IntentionAction) -> SourceIntention {
    SourceIntention {
        name: name.into(),
        action: Some(action),
        ..SourceIntention::default()
    }
}

fn l7(name: &str, perms: Vec<IntentionPermission>) -> SourceIntention {
    SourceIntention {
        name: name.into(),
        permissions: perms,
        ..SourceIntention::default()
    }
}

fn perm(action: IntentionAction, http: IntentionHttpPermission) -> IntentionPermission {
    IntentionPermission {
        action,
        http: Some(http),
        jwt: None,
        span: Span::default(),
    }
}

fn entry(dest: &str, sources: Vec<SourceIntention>) -> ServiceIntentions {
    let mut e = ServiceIntentions {
        name: dest.into(),
        sources,
        ..ServiceIntentions::default()
    };
    normalize(&mut e);
    e
}

use IntentionAction::{Allow, Deny};

#[test]
fn precedence_table_7a() {
    let rows = [
        (("default", "web"), ("default", "db"), 9),
        (("default", "*"), ("default", "db"), 8),
        (("*", "*"), ("default", "db"), 7),
        (("default", "web"), ("default", "*"), 6),
        (("default", "*"), ("default", "*"), 5),
        (("*", "*"), ("default", "*"), 4),
        (("default", "web"), ("*", "*"), 3),
        (("default", "*"), ("*", "*"), 2),
        (("*", "*"), ("*", "*"), 1),
    ];
    for ((sns, s), (dns, d), want) in rows {
        assert_eq!(
            precedence_ns(sns, s, dns, d),
            want,
            "{sns}/{s} -> {dns}/{d}"
        );
    }
    assert_eq!(precedence("*", "*"), 5, "CE * -> * reports 5");
}

#[test]
fn normalize_sorts_sources_stably_by_precedence_and_sets_type() {
    // consul's "L4 normalize" test: [*, foo, bar] on `test` is stored as foo(9), bar(9), *(8).
    let e = entry(
        "test",
        vec![l4("*", Allow), l4("foo", Allow), l4("bar", Deny)],
    );
    let got: Vec<(&str, u32)> = e
        .sources
        .iter()
        .map(|s| (s.name.as_str(), s.precedence))
        .collect();
    assert_eq!(got, [("foo", 9), ("bar", 9), ("*", 8)]);
    assert!(e.sources.iter().all(|s| s.r#type == "consul"));
    let mut again = e.clone();
    normalize(&mut again);
    assert_eq!(again, e, "normalization is idempotent");
}

#[test]
fn normalize_upper_cases_methods() {
    let e = entry(
        "api",
        vec![l7(
            "web",
            vec![perm(
                Allow,
                IntentionHttpPermission {
                    methods: vec!["get".into(), "Post".into()],
                    ..Default::default()
                },
            )],
        )],
    );
    assert_eq!(
        e.sources[0].permissions[0].http.as_ref().unwrap().methods,
        ["GET", "POST"]
    );
}

/// The entries of consul's TestStore_IntentionDecision (7b rows 1-7).
fn store_decision_fixture() -> IntentionSet {
    let redis = entry(
        "redis",
        vec![
            l7(
                "web",
                vec![perm(
                    Allow,
                    IntentionHttpPermission {
                        methods: vec!["GET".into()],
                        ..Default::default()
                    },
                )],
            ),
            l4("api", Deny),
        ],
    );
    let web = entry("web", vec![l4("api", Allow)]);
    let mysql = entry("mysql", vec![l4("*", Allow)]);
    IntentionSet::new([&redis, &web, &mysql])
}

#[test]
fn decisions_7b_store_rows() {
    let set = store_decision_fixture();
    assert!(!set.decide("does-not-exist", "ditto", false).allowed);
    assert!(set.decide("does-not-exist", "ditto", true).allowed);
    for default in [true, false] {
        let d = set.decide("web", "redis", default);
        assert!(!d.allowed, "L7 match is deny at L4");
        assert!(d.reason.starts_with("Matched L7 intention"));
        assert!(!set.decide("api", "redis", default).allowed);
        assert!(set.decide("api", "web", default).allowed);
        assert!(set.decide("anything", "mysql", default).allowed);
    }
    let get = HttpRequest {
        method: "GET".into(),
        path: "/".into(),
        headers: vec![],
    };
    let post = HttpRequest {
        method: "POST".into(),
        ..get.clone()
    };
    assert!(set.decide_request("web", "redis", &get, false).allowed);
    assert!(
        !set.decide_request("web", "redis", &post, false).allowed,
        "POST falls to the default"
    );
    assert!(set.decide_request("web", "redis", &post, true).allowed);
}

#[test]
fn decisions_7b_derived_rows() {
    let set = IntentionSet::new([&entry("db", vec![l4("web", Deny), l4("*", Allow)])]);
    assert!(!set.decide("web", "db", false).allowed, "9 beats 8");
    assert!(set.decide("api", "db", false).allowed);

    let a = entry("db", vec![l4("*", Deny)]);
    let b = entry("*", vec![l4("web", Allow)]);
    let set = IntentionSet::new([&a, &b]);
    assert!(!set.decide("web", "db", true).allowed, "8 beats 6");

    let set = IntentionSet::new([&entry("*", vec![l4("*", Deny)])]);
    assert!(!set.decide("web", "db", true).allowed);
    let set = IntentionSet::new([&entry("*", vec![l4("*", Allow)])]);
    assert!(
        set.decide("web", "db", false).allowed,
        "an intention beats the ACL default"
    );
    let empty = IntentionSet::new([]);
    assert!(
        empty.decide("web", "db", true).allowed,
        "ACLs disabled: allow"
    );
    assert_eq!(
        empty.decide("web", "db", true).reason,
        "Default behavior configured by ACLs"
    );
}

#[test]
fn l7_deny_with_default_allow_lets_other_paths_through() {
    // hashicorp/consul#10536: a request no permission matches goes to the default.
    let set = IntentionSet::new([&entry(
        "api",
        vec![l7(
            "web",
            vec![perm(
                Deny,
                IntentionHttpPermission {
                    path_exact: Some("/health".into()),
                    ..Default::default()
                },
            )],
        )],
    )]);
    let health = HttpRequest {
        method: "GET".into(),
        path: "/health".into(),
        headers: vec![],
    };
    let other = HttpRequest {
        path: "/orders".into(),
        ..health.clone()
    };
    assert!(!set.decide_request("web", "api", &health, true).allowed);
    assert!(set.decide_request("web", "api", &other, true).allowed);
    assert!(!set.decide_request("web", "api", &other, false).allowed);
}

#[test]
fn header_matches_and_invert() {
    let h = |m: IntentionHttpHeaderPermission| {
        IntentionSet::new([&entry(
            "api",
            vec![l7(
                "web",
                vec![perm(
                    Allow,
                    IntentionHttpPermission {
                        header: vec![m],
                        ..Default::default()
                    },
                )],
            )],
        )])
    };
    let req = |v: &str| HttpRequest {
        method: "GET".into(),
        path: "/".into(),
        headers: vec![("X-Team".into(), v.into())],
    };
    let exact = h(IntentionHttpHeaderPermission {
        name: "x-team".into(),
        exact: Some("ops".into()),
        ..Default::default()
    });
    assert!(
        exact
            .decide_request("web", "api", &req("ops"), false)
            .allowed
    );
    assert!(
        !exact
            .decide_request("web", "api", &req("dev"), false)
            .allowed
    );
    let inverted = h(IntentionHttpHeaderPermission {
        name: "X-Team".into(),
        prefix: Some("o".into()),
        invert: true,
        ..Default::default()
    });
    assert!(
        !inverted
            .decide_request("web", "api", &req("ops"), false)
            .allowed
    );
    assert!(
        inverted
            .decide_request("web", "api", &req("dev"), false)
            .allowed
    );
}

#[test]
fn validation_messages_are_consuls() {
    let msg = |e: &ServiceIntentions| {
        validate(e)
            .into_iter()
            .map(|d| (d.code, d.message))
            .collect::<Vec<_>>()
    };
    let e = entry("db", vec![l4("web*", Allow)]);
    assert_eq!(
        msg(&e),
        [(
            Code::IntentionName,
            "Sources[0].Name: wildcard character '*' cannot be used with partial values".to_owned()
        )]
    );
    let e = entry("db", vec![]);
    assert_eq!(msg(&e)[0].1, "At least one source is required");
    let e = entry("db", vec![l4("web", Allow), l4("web", Deny)]);
    assert_eq!(
        msg(&e),
        [(
            Code::IntentionDuplicateSource,
            "Sources[1] defines \"web\" more than once".to_owned()
        )]
    );
    let mut both = l7(
        "web",
        vec![perm(
            Allow,
            IntentionHttpPermission {
                path_prefix: Some("/".into()),
                ..Default::default()
            },
        )],
    );
    both.action = Some(Allow);
    assert_eq!(
        msg(&entry("db", vec![both]))[0].1,
        "Sources[0].Action must be omitted if Permissions are specified"
    );
    let wild = l7(
        "web",
        vec![perm(
            Allow,
            IntentionHttpPermission {
                path_prefix: Some("/".into()),
                ..Default::default()
            },
        )],
    );
    assert_eq!(
        msg(&entry("*", vec![wild]))[0].1,
        "Sources[0].Permissions cannot be specified on intentions with wildcarded destinations"
    );
    let bad = l7(
        "web",
        vec![perm(
            Allow,
            IntentionHttpPermission {
                path_prefix: Some("admin".into()),
                methods: vec!["FETCH".into()],
                ..Default::default()
            },
        )],
    );
    let m = msg(&entry("db", vec![bad]));
    assert!(m
        .iter()
        .any(|(_, t)| t
            == "Sources[0].Permissions[0].HTTP.PathPrefix doesn't start with '/': \"admin\""));
    assert!(m
        .iter()
        .any(|(_, t)| t
            == "Sources[0].Permissions[0].HTTP.Methods contains an invalid method \"FETCH\""));
    let empty = l7("web", vec![perm(Allow, IntentionHttpPermission::default())]);
    assert_eq!(
        msg(&entry("db", vec![empty]))[0].1,
        "Sources[0].Permissions[0].HTTP should not be empty"
    );
    let mut typed = l4("web", Allow);
    typed.r#type = "nomad".into();
    assert_eq!(
        msg(&entry("db", vec![typed]))[0].1,
        "Sources[0].Type must be set to 'consul'"
    );
}

#[test]
fn matching_and_exact_sources() {
    let a = entry("db", vec![l4("web", Allow), l4("*", Deny)]);
    let b = entry("*", vec![l4("api", Allow)]);
    let set = IntentionSet::new([&a, &b]);
    let by_dest: Vec<(String, u32)> = set
        .matching(MatchBy::Destination, "db")
        .into_iter()
        .map(|i| (i.source, i.precedence))
        .collect();
    assert_eq!(
        by_dest,
        [
            ("web".to_owned(), 9),
            ("*".to_owned(), 8),
            ("api".to_owned(), 6)
        ]
    );
    let by_src: Vec<String> = set
        .matching(MatchBy::Source, "web")
        .into_iter()
        .map(|i| i.destination)
        .collect();
    assert_eq!(by_src, ["db", "db"]);
    assert_eq!(set.exact_sources("db"), ["api", "web"]);
}

mod brute_force {
    use super::*;
    use proptest::prelude::*;

    /// Consul's rule written plainly: collect matching intentions, sort by precedence (ties by
    /// source then destination name), the first decides.
    fn reference(entries: &[ServiceIntentions], src: &str, dst: &str, default: bool) -> bool {
        let mut all: Vec<(u32, &str, &str, &SourceIntention)> = Vec::new();
        for e in entries {
            if e.name != dst && e.name != "*" {
                continue;
            }
            for s in &e.sources {
                if s.name == src || s.name == "*" {
                    all.push((precedence(&s.name, &e.name), &s.name, &e.name, s));
                }
            }
        }
        all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)).then(a.2.cmp(b.2)));
        match all.first() {
            Some((_, _, _, s)) if !s.permissions.is_empty() => false,
            Some((_, _, _, s)) => s.action == Some(Allow),
            None => default,
        }
    }

    fn name() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", "c", "*"]).prop_map(str::to_owned)
    }

    fn source() -> impl Strategy<Value = SourceIntention> {
        (name(), any::<bool>(), prop::bool::weighted(0.15)).prop_map(|(n, allow, is_l7)| {
            if is_l7 {
                l7(
                    &n,
                    vec![perm(
                        Allow,
                        IntentionHttpPermission {
                            path_prefix: Some("/".into()),
                            ..Default::default()
                        },
                    )],
                )
            } else {
                l4(&n, if allow { Allow } else { Deny })
            }
        })
    }

    fn entries() -> impl Strategy<Value = Vec<ServiceIntentions>> {
        prop::collection::btree_map(name(), prop::collection::vec(source(), 1..4), 0..4).prop_map(
            |m| {
                m.into_iter()
                    .map(|(dest, mut sources)| {
                        // One entry holds each source name once, as validation requires.
                        let mut seen = std::collections::BTreeSet::new();
                        sources.retain(|s| seen.insert(s.name.clone()));
                        entry(&dest, sources)
                    })
                    .collect()
            },
        )
    }

    proptest! {
        #[test]
        fn set_equals_brute_force(es in entries(), default in any::<bool>()) {
            let set = IntentionSet::new(&es);
            for src in ["a", "b", "c", "d"] {
                for dst in ["a", "b", "c", "d"] {
                    prop_assert_eq!(set.decide(src, dst, default).allowed, reference(&es, src, dst, default), "{} -> {}", src, dst);
                }
            }
        }

        #[test]
        fn entry_order_does_not_matter(es in entries(), default in any::<bool>()) {
            let forward = IntentionSet::new(&es);
            let reversed: Vec<ServiceIntentions> = es.iter().rev().cloned().collect();
            let backward = IntentionSet::new(&reversed);
            for src in ["a", "b", "z"] {
                for dst in ["a", "c", "z"] {
                    prop_assert_eq!(forward.decide(src, dst, default), backward.decide(src, dst, default));
                }
            }
        }
    }
}
