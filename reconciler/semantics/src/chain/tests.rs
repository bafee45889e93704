//! The compiler against Consul's compile tests (`agent/consul/discoverychain/compile_test.go`)
//! and, as a property, against a brute-force walk of the entries themselves.

use super::*;
use mesh_model::chain::*;
use mesh_model::{ConfigEntry, ProxyDefaults, ServiceDefaults};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn http_global() -> ConfigEntry {
    let mut config = serde_json::Map::new();
    config.insert("protocol".into(), "http".into());
    ConfigEntry::ProxyDefaults(ProxyDefaults {
        name: "global".into(),
        config,
        ..Default::default()
    })
}

fn splitter(name: &str, splits: &[(f64, Option<&str>, Option<&str>)]) -> ConfigEntry {
    ConfigEntry::Chain(ChainEntry::Splitter(ServiceSplitter {
        name: name.into(),
        splits: splits
            .iter()
            .map(|(w, s, sub)| ServiceSplit {
                weight: *w,
                service: s.map(str::to_owned),
                service_subset: sub.map(str::to_owned),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }))
}

fn resolver(name: &str, f: impl FnOnce(&mut ServiceResolver)) -> ConfigEntry {
    let mut r = ServiceResolver {
        name: name.into(),
        ..Default::default()
    };
    f(&mut r);
    ConfigEntry::Chain(ChainEntry::Resolver(r))
}

fn get(req_path: &str) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        path: req_path.into(),
        ..Default::default()
    }
}

#[test]
fn a_service_without_entries_compiles_to_its_default_resolver() {
    let entries = vec![];
    let ix = ChainIndex::new(&entries, "dc1");
    let c = compile(&ix, "main").unwrap();
    assert!(c.default);
    assert_eq!(c.protocol, "tcp");
    assert_eq!(c.start, "resolver:main.default.default.dc1");
    assert_eq!(
        c.route(&get("/"), 0.0).targets,
        ["main.default.default.dc1"]
    );
}

/// `testcase_SplitterRequiresValidProtocol`, `testcase_RouterRequiresValidProtocol`.
#[test]
fn routers_and_splitters_need_an_http_protocol() {
    let entries = vec![splitter("main", &[(100.0, None, None)])];
    let ix = ChainIndex::new(&entries, "dc1");
    assert_eq!(
        compile(&ix, "main").unwrap_err().to_string(),
        "discovery chain \"main\" uses a protocol \"tcp\" that does not permit advanced routing or splitting behavior"
    );
    let mut with_http = entries.clone();
    with_http.push(http_global());
    assert!(compile(&ChainIndex::new(&with_http, "dc1"), "main").is_ok());
}

/// `testcase_ServiceProtocolInconsistency`-like: a split to a tcp service in an http chain.
#[test]
fn every_service_a_chain_reaches_shares_its_protocol() {
    let entries = vec![
        http_global(),
        ConfigEntry::ServiceDefaults(ServiceDefaults {
            name: "legacy".into(),
            protocol: Some("tcp".into()),
            ..Default::default()
        }),
        splitter("main", &[(50.0, None, None), (50.0, Some("legacy"), None)]),
    ];
    let err = compile(&ChainIndex::new(&entries, "dc1"), "main").unwrap_err();
    assert_eq!(
        err.to_string(),
        "discovery chain \"main\" uses inconsistent protocols; service \"legacy.default.default\" has \"tcp\" which is not \"http\""
    );
}

/// `testcase_SplitterDoesFlatten`-like: a split into another splitter is flattened.
#[test]
fn nested_splitters_flatten_with_multiplied_weights() {
    let entries = vec![
        http_global(),
        splitter("main", &[(60.0, Some("next"), None), (40.0, None, None)]),
        splitter("next", &[(50.0, None, None), (50.0, Some("other"), None)]),
    ];
    let c = compile(&ChainIndex::new(&entries, "dc1"), "main").unwrap();
    let Node::Splitter { splits, .. } = &c.nodes[&c.start] else {
        panic!("{:?}", c.nodes)
    };
    let got: Vec<(f64, &str)> = splits.iter().map(|(w, n)| (*w, n.as_str())).collect();
    assert_eq!(
        got,
        [
            (30.0, "resolver:next.default.default.dc1"),
            (30.0, "resolver:other.default.default.dc1"),
            (40.0, "resolver:main.default.default.dc1"),
        ]
    );
    assert!(!c.nodes.contains_key("splitter:next.default.default"));
}

#[test]
fn redirects_default_subsets_and_failover_resolve_to_targets() {
    let entries = vec![
        resolver("main", |r| {
            r.redirect = Some(ResolverRedirect {
                service: Some("other".into()),
                ..Default::default()
            })
        }),
        resolver("other", |r| {
            r.subsets.insert(
                "v1".into(),
                ResolverSubset {
                    filter: Some("Service.Meta.version == v1".into()),
                    only_passing: false,
                },
            );
            r.default_subset = Some("v1".into());
            r.failover.insert(
                "*".into(),
                ResolverFailover {
                    service: Some("backup".into()),
                    ..Default::default()
                },
            );
        }),
    ];
    let c = compile(&ChainIndex::new(&entries, "dc1"), "main").unwrap();
    assert_eq!(
        c.route(&get("/"), 0.0).targets,
        ["v1.other.default.default.dc1", "backup.default.default.dc1"]
    );
    assert!(!c.default);
    let target = &c.targets["v1.other.default.default.dc1"];
    assert_eq!(
        target.filter.filter.as_deref(),
        Some("Service.Meta.version == v1")
    );
}

/// `testcase_CircularRedirect`, `testcase_RedirectToMissingSubset`.
#[test]
fn redirect_cycles_and_missing_subsets_are_graph_errors() {
    let to = |from: &str, to: &str| {
        let to = to.to_owned();
        resolver(from, move |r| {
            r.redirect = Some(ResolverRedirect {
                service: Some(to),
                ..Default::default()
            })
        })
    };
    let entries = vec![to("main", "other"), to("other", "main")];
    assert_eq!(
        compile(&ChainIndex::new(&entries, "dc1"), "main").unwrap_err().to_string(),
        "detected circular resolver redirect: [main.default.default.dc1 -> other.default.default.dc1 -> main.default.default.dc1]"
    );
    let entries = vec![resolver("main", |r| {
        r.redirect = Some(ResolverRedirect {
            service: Some("other".into()),
            service_subset: Some("v1".into()),
            ..Default::default()
        })
    })];
    assert_eq!(
        compile(&ChainIndex::new(&entries, "dc1"), "main")
            .unwrap_err()
            .to_string(),
        "service \"other\" does not have a subset named \"v1\""
    );
}

#[test]
fn a_router_matches_in_order_and_falls_through_to_the_service() {
    let route = |prefix: &str, to: &str| ServiceRoute {
        matches: Some(RouteMatch {
            http: Some(RouteHttpMatch {
                path_prefix: Some(prefix.into()),
                ..Default::default()
            }),
        }),
        destination: Some(RouteDestination {
            service: Some(to.into()),
            ..Default::default()
        }),
        span: Default::default(),
    };
    let entries = vec![
        http_global(),
        ConfigEntry::Chain(ChainEntry::Router(ServiceRouter {
            name: "web".into(),
            routes: vec![route("/api/v2", "api-v2"), route("/api", "api")],
            ..Default::default()
        })),
    ];
    let c = compile(&ChainIndex::new(&entries, "dc1"), "web").unwrap();
    let r = c.route(&get("/api/v2/x"), 0.0);
    assert_eq!(
        (r.route, r.targets[0].as_str()),
        (Some(0), "api-v2.default.default.dc1")
    );
    assert_eq!(c.route(&get("/api"), 0.0).route, Some(1));
    let r = c.route(&get("/"), 0.0);
    assert_eq!(
        (r.route, r.targets[0].as_str()),
        (None, "web.default.default.dc1")
    );
}

#[test]
fn subset_filters_select_instances_by_metadata() {
    let f =
        route::Filter::parse("Service.Meta.version == v2 and \"canary\" in Service.Tags").unwrap();
    let mut i = route::Instance {
        service: "api".into(),
        tags: vec!["canary".into()],
        ..Default::default()
    };
    i.meta.insert("version".into(), "v2".into());
    assert!(f.matches(&i));
    i.tags.clear();
    assert!(!f.matches(&i));
    assert!(route::Filter::parse("Service.Meta.version = v2").is_err());
    assert!(route::Filter::parse(
        "not (Service.Meta.version is empty) or Service.ID matches \"^api-\""
    )
    .is_ok());
}

// ---- the property: compiled targets against a brute-force walk ------------------------------

const SERVICES: [&str; 4] = ["a", "b", "c", "d"];
const SUBSETS: [&str; 2] = ["v1", "v2"];

/// Walks the entries for one request the direct way, with no compilation: the router's first
/// matching route, splitters recursively (weights multiplied), then redirects, default subsets
/// and failover. `None` when the walk finds a problem (a missing subset, a cycle).
struct Brute<'a> {
    routers: BTreeMap<&'a str, &'a ServiceRouter>,
    splitters: BTreeMap<&'a str, &'a ServiceSplitter>,
    resolvers: BTreeMap<&'a str, &'a ServiceResolver>,
}

type Dist = BTreeMap<Vec<String>, f64>;

impl<'a> Brute<'a> {
    fn new(entries: &'a [ConfigEntry]) -> Self {
        let mut b = Brute {
            routers: BTreeMap::new(),
            splitters: BTreeMap::new(),
            resolvers: BTreeMap::new(),
        };
        for e in entries {
            match e {
                ConfigEntry::Chain(ChainEntry::Router(r)) => {
                    b.routers.insert(&r.name, r);
                }
                ConfigEntry::Chain(ChainEntry::Splitter(s)) => {
                    b.splitters.insert(&s.name, s);
                }
                ConfigEntry::Chain(ChainEntry::Resolver(r)) => {
                    b.resolvers.insert(&r.name, r);
                }
                _ => {}
            }
        }
        b
    }

    fn destination(&self, service: &str, req: &HttpRequest) -> (String, Option<String>) {
        if let Some(r) = self.routers.get(service) {
            for route in &r.routes {
                if route::route_matches(route, req) {
                    let d = route.destination.clone().unwrap_or_default();
                    return (
                        d.service.unwrap_or_else(|| service.into()),
                        d.service_subset,
                    );
                }
            }
        }
        (service.into(), None)
    }

    fn request(&self, service: &str, req: &HttpRequest) -> Option<Dist> {
        let (svc, subset) = self.destination(service, req);
        let mut out = Dist::new();
        match subset {
            Some(s) => *out.entry(self.resolve(&svc, Some(&s))?).or_default() += 100.0,
            None => self.split(&svc, None, 100.0, 0, &mut out)?,
        }
        Some(out)
    }

    /// Follows `service`'s splitter if it has one (`parent`: the splitter that led here).
    fn split(
        &self,
        service: &str,
        parent: Option<&str>,
        share: f64,
        depth: u32,
        out: &mut Dist,
    ) -> Option<()> {
        if depth > 8 {
            return None;
        }
        let Some(s) = self
            .splitters
            .get(service)
            .filter(|_| parent != Some(service))
        else {
            *out.entry(self.resolve(service, None)?).or_default() += share;
            return Some(());
        };
        for sp in &s.splits {
            let svc = sp.service.as_deref().unwrap_or(service);
            let w = share * sp.weight / 100.0;
            match (&sp.service_subset, svc == service) {
                (None, false) => self.split(svc, Some(service), w, depth + 1, out)?,
                (sub, _) => *out.entry(self.resolve(svc, sub.as_deref())?).or_default() += w,
            }
        }
        Some(())
    }

    /// The final target and its failover targets.
    fn resolve(&self, service: &str, subset: Option<&str>) -> Option<Vec<String>> {
        let (svc, sub) = self.land(service, subset)?;
        let id = |s: &str, sub: Option<&str>| match sub {
            Some(x) => format!("{x}.{s}.default.default.dc1"),
            None => format!("{s}.default.default.dc1"),
        };
        let mut out = vec![id(&svc, sub.as_deref())];
        let r = self.resolvers.get(svc.as_str());
        let f = r.and_then(|r| {
            sub.as_deref()
                .and_then(|s| r.failover.get(s))
                .or_else(|| r.failover.get("*"))
        });
        if let Some(f) = f {
            let (fs, fsub) = match &f.service {
                Some(s) if *s != svc => (s.clone(), f.service_subset.clone()),
                _ => (svc.clone(), f.service_subset.clone().or(sub.clone())),
            };
            if id(&fs, fsub.as_deref()) != out[0] {
                let (ls, lsub) = self.land(&fs, fsub.as_deref())?;
                out.push(id(&ls, lsub.as_deref()));
            }
        }
        Some(out)
    }

    /// Applies redirects and default subsets until neither changes the target.
    fn land(&self, service: &str, subset: Option<&str>) -> Option<(String, Option<String>)> {
        let (mut svc, mut sub) = (service.to_owned(), subset.map(str::to_owned));
        for _ in 0..16 {
            let r = self.resolvers.get(svc.as_str());
            if let Some(red) = r.and_then(|r| r.redirect.as_ref()) {
                let (ns, nsub) = match &red.service {
                    Some(s) if *s != svc => (s.clone(), red.service_subset.clone()),
                    _ => (svc.clone(), red.service_subset.clone().or(sub.clone())),
                };
                if (&ns, &nsub) != (&svc, &sub) {
                    (svc, sub) = (ns, nsub);
                    continue;
                }
            }
            if sub.is_none() {
                if let Some(d) = r.and_then(|r| r.default_subset.clone()) {
                    sub = Some(d);
                    continue;
                }
            }
            if let Some(s) = &sub {
                if !r.is_some_and(|r| r.subsets.contains_key(s)) {
                    return None;
                }
            }
            return Some((svc, sub));
        }
        None
    }
}

fn arb_service() -> impl Strategy<Value = String> {
    prop::sample::select(&SERVICES[..]).prop_map(str::to_owned)
}

fn arb_subset() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.3,
        prop::sample::select(&SUBSETS[..]).prop_map(str::to_owned),
    )
}

fn arb_resolver(name: &'static str) -> impl Strategy<Value = Option<ConfigEntry>> {
    let subsets = prop::collection::btree_set(prop::sample::select(&SUBSETS[..]), 0..=2);
    let redirect = prop::option::weighted(0.25, (arb_service(), arb_subset()));
    let failover = prop::option::weighted(0.3, (arb_service(), arb_subset()));
    let default = prop::option::weighted(0.3, prop::sample::select(&SUBSETS[..]));
    prop::option::weighted(0.7, (subsets, redirect, failover, default)).prop_map(move |r| {
        r.map(|(subsets, redirect, failover, default)| {
            resolver(name, |r| {
                for s in &subsets {
                    r.subsets.insert(
                        (*s).to_owned(),
                        ResolverSubset {
                            filter: Some(format!("Service.Meta.version == {s}")),
                            only_passing: false,
                        },
                    );
                }
                r.default_subset = default.filter(|d| subsets.contains(d)).map(str::to_owned);
                match (redirect, failover) {
                    (Some((service, subset)), _) => {
                        r.redirect = Some(ResolverRedirect {
                            service: Some(service),
                            service_subset: subset,
                            ..Default::default()
                        })
                    }
                    (None, Some((service, subset))) => {
                        r.failover.insert(
                            "*".into(),
                            ResolverFailover {
                                service: Some(service),
                                service_subset: subset,
                                ..Default::default()
                            },
                        );
                    }
                    (None, None) => {}
                }
            })
        })
    })
}

fn arb_splitter(name: &'static str) -> impl Strategy<Value = Option<ConfigEntry>> {
    let split = (arb_service(), arb_subset());
    prop::option::weighted(0.5, (prop::collection::vec(split, 1..=3), 0u32..=100)).prop_map(
        move |s| {
            s.map(|(splits, cut)| {
                // Weights summing to 100 in whole percent: the first takes `cut`, the rest share.
                let n = splits.len();
                let mut weights = vec![0.0; n];
                weights[0] = if n == 1 { 100.0 } else { f64::from(cut) };
                let rest = 100.0 - weights[0];
                for (i, w) in weights.iter_mut().enumerate().skip(1) {
                    *w = if i + 1 == n {
                        rest - (rest / (n - 1) as f64).floor() * (n - 2) as f64
                    } else {
                        (rest / (n - 1) as f64).floor()
                    };
                }
                ConfigEntry::Chain(ChainEntry::Splitter(ServiceSplitter {
                    name: name.into(),
                    splits: splits
                        .into_iter()
                        .zip(weights)
                        .map(|((service, subset), weight)| ServiceSplit {
                            weight,
                            service: Some(service),
                            service_subset: subset,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }))
            })
        },
    )
}

fn arb_route() -> impl Strategy<Value = ServiceRoute> {
    let path = prop::sample::select(vec!["/api", "/api/v2", "/admin"]);
    (
        0u8..3,
        path,
        prop::option::of(prop::sample::select(vec!["GET", "POST"])),
        any::<bool>(),
        arb_service(),
        arb_subset(),
    )
        .prop_map(
            |(kind, path, method, header, service, subset)| ServiceRoute {
                matches: Some(RouteMatch {
                    http: Some(RouteHttpMatch {
                        path_prefix: (kind == 0).then(|| path.to_owned()),
                        path_exact: (kind == 1).then(|| path.to_owned()),
                        path_regex: (kind == 2).then(|| format!("{path}(/.*)?")),
                        methods: method.into_iter().map(str::to_owned).collect(),
                        header: if header {
                            vec![RouteHeaderMatch {
                                name: "x-canary".into(),
                                present: true,
                                ..Default::default()
                            }]
                        } else {
                            Vec::new()
                        },
                        ..Default::default()
                    }),
                }),
                destination: Some(RouteDestination {
                    service: Some(service),
                    service_subset: subset,
                    ..Default::default()
                }),
                span: Default::default(),
            },
        )
}

fn arb_entries() -> impl Strategy<Value = Vec<ConfigEntry>> {
    (
        prop::collection::vec(arb_route(), 0..=3),
        [
            arb_splitter("a"),
            arb_splitter("b"),
            arb_splitter("c"),
            arb_splitter("d"),
        ],
        [
            arb_resolver("a"),
            arb_resolver("b"),
            arb_resolver("c"),
            arb_resolver("d"),
        ],
    )
        .prop_map(|(routes, splitters, resolvers)| {
            let mut out = vec![http_global()];
            if !routes.is_empty() {
                out.push(ConfigEntry::Chain(ChainEntry::Router(ServiceRouter {
                    name: "a".into(),
                    routes,
                    ..Default::default()
                })));
            }
            out.extend(splitters.into_iter().flatten());
            out.extend(resolvers.into_iter().flatten());
            out
        })
}

fn arb_request() -> impl Strategy<Value = HttpRequest> {
    let path = prop::sample::select(vec!["/", "/api", "/api/v2", "/api/v2/x", "/admin", "/apix"]);
    (
        path,
        prop::sample::select(vec!["GET", "POST"]),
        any::<bool>(),
    )
        .prop_map(|(path, method, canary)| HttpRequest {
            method: method.into(),
            path: path.into(),
            headers: if canary {
                vec![("X-Canary".into(), "1".into())]
            } else {
                Vec::new()
            },
            query: Vec::new(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn compiled_chains_route_like_a_brute_force_walk(
        entries in arb_entries(),
        requests in prop::collection::vec(arb_request(), 1..8),
    ) {
        let ix = ChainIndex::new(&entries, "dc1");
        let brute = Brute::new(&entries);
        match compile(&ix, "a") {
            Ok(chain) => {
                for req in &requests {
                    let want = brute.request("a", req).expect("the chain compiled, so every walk succeeds");
                    let mut got = Dist::new();
                    for (w, routed) in chain.outcomes(req) {
                        *got.entry(routed.targets).or_default() += w;
                    }
                    prop_assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{:?}", req);
                    for (k, w) in &want {
                        prop_assert!((got[k] - w).abs() < 0.02, "{:?}: {} vs {}", k, got[k], w);
                    }
                    // One roll through the chain lands on one of the walk's outcomes.
                    let one = chain.route(req, 37.5);
                    prop_assert!(want.contains_key(&one.targets));
                }
            }
            Err(_) => {
                // Some destination the chain starts from (a route's, or the catch-all) fails
                // the walk too.
                let any_fails = brute.routers.get("a").map_or(Vec::new(), |r| r.routes.clone())
                    .iter()
                    .map(|r| {
                        let d = r.destination.clone().unwrap_or_default();
                        (d.service.unwrap_or_else(|| "a".into()), d.service_subset)
                    })
                    .chain(std::iter::once(("a".to_owned(), None)))
                    .any(|(svc, sub)| {
                        let mut out = Dist::new();
                        match sub {
                            Some(s) => brute.resolve(&svc, Some(&s)).is_none(),
                            None => brute.split(&svc, None, 100.0, 0, &mut out).is_none(),
                        }
                    });
                prop_assert!(any_fails);
            }
        }
    }
}
