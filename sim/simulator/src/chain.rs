//! The sidecar's routing by the discovery chain, as Envoy runs the configuration Consul generates
//! from it: the agent's answer of `/v1/discovery-chain/<upstream>` decoded back into a compiled
//! chain, the route a request matches (path, header, query, method), the split a seeded roll
//! picks, the resolver's target with its subset filter over the instances' `Service.Meta`, and
//! failover to the next target when none of a target's instances can be reached. The connection
//! then goes to the target's sidecar with mTLS verifying the target's SPIFFE identity, and the
//! target's intentions decide.

use crate::keepalive::Pool;
use crate::node::{AgentCache, Failure};
use crate::wire::Endpoint;
use crate::Outcome;
use mesh_model::chain::{ResolverSubset, ServiceRoute};
use mesh_semantics::chain::route::{Filter, Instance};
use mesh_semantics::chain::{CompiledChain, HttpRequest, Node, Target};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

/// Decodes `structs.CompiledDiscoveryChain` as the control plane answers it (`{"Chain": …}`).
pub(crate) fn decode(answer: &Value) -> Result<CompiledChain, String> {
    let c = &answer["Chain"];
    let text = |v: &Value, what: &str| {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{what} is not a string"))
    };
    let mut nodes = BTreeMap::new();
    for (key, n) in c["Nodes"].as_object().into_iter().flatten() {
        let name = text(&n["Name"], "Name")?;
        let node = match n["Type"].as_str() {
            Some("router") => {
                let mut routes = Vec::new();
                for r in n["Routes"].as_array().into_iter().flatten() {
                    let def: ServiceRoute = serde_json::from_value(r["Definition"].clone())
                        .map_err(|e| format!("route of {key}: {e}"))?;
                    routes.push((def, text(&r["NextNode"], "NextNode")?));
                }
                if routes.is_empty() {
                    return Err(format!("router {key} has no route"));
                }
                Node::Router { name, routes }
            }
            Some("splitter") => {
                let mut splits = Vec::new();
                for s in n["Splits"].as_array().into_iter().flatten() {
                    let w = s["Weight"].as_f64().ok_or("a split has no Weight")?;
                    splits.push((w, text(&s["NextNode"], "NextNode")?));
                }
                Node::Splitter { name, splits }
            }
            Some("resolver") => {
                let r = &n["Resolver"];
                let failover = r["Failover"]["Targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect();
                Node::Resolver {
                    name,
                    default: r["Default"].as_bool().unwrap_or(false),
                    target: text(&r["Target"], "Target")?,
                    failover,
                }
            }
            other => return Err(format!("node {key} has type {other:?}")),
        };
        nodes.insert(key.clone(), node);
    }
    let mut targets = BTreeMap::new();
    for (id, t) in c["Targets"].as_object().into_iter().flatten() {
        let opt = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        targets.insert(
            id.clone(),
            Target {
                id: id.clone(),
                service: text(&t["Service"], "Service")?,
                subset: opt(&t["ServiceSubset"]),
                datacenter: t["Datacenter"].as_str().unwrap_or("").to_owned(),
                peer: opt(&t["Peer"]),
                filter: ResolverSubset {
                    filter: opt(&t["Subset"]["Filter"]),
                    only_passing: t["Subset"]["OnlyPassing"].as_bool().unwrap_or(false),
                },
                connect_timeout: t["ConnectTimeout"].as_str().unwrap_or("5s").to_owned(),
            },
        );
    }
    let chain = CompiledChain {
        service: text(&c["ServiceName"], "ServiceName")?,
        datacenter: c["Datacenter"].as_str().unwrap_or("").to_owned(),
        protocol: c["Protocol"].as_str().unwrap_or("tcp").to_owned(),
        default: c["Default"].as_bool().unwrap_or(false),
        start: text(&c["StartNode"], "StartNode")?,
        nodes,
        targets,
    };
    if !chain.nodes.contains_key(&chain.start) {
        return Err(format!("no start node {:?}", chain.start));
    }
    Ok(chain)
}

/// The attributes a route matches, from the request the application sent: the query string
/// split off the path.
pub(crate) fn request_of(req: &mesh_semantics::intention::HttpRequest) -> HttpRequest {
    let (path, query) = match req.path.split_once('?') {
        Some((p, q)) => (p, q),
        None => (req.path.as_str(), ""),
    };
    HttpRequest {
        method: req.method.clone(),
        path: path.to_owned(),
        headers: req.headers.clone(),
        query: query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (kv.to_owned(), String::new()),
            })
            .collect(),
    }
}

/// A request that a route matches, built on the application's usual request: the route's path,
/// first method, headers and query parameters (regular expressions and inverted matches are
/// left as they are), so that traffic exercises every route.
pub(crate) fn request_for_route(
    base: &mesh_semantics::intention::HttpRequest,
    route: &ServiceRoute,
) -> mesh_semantics::intention::HttpRequest {
    let mut req = base.clone();
    let Some(m) = route.http() else {
        return req;
    };
    if let Some(p) = m.path_exact.as_ref().or(m.path_prefix.as_ref()) {
        req.path = p.clone();
    }
    if let Some(method) = m.methods.first() {
        req.method = method.to_ascii_uppercase();
    }
    for h in m.header.iter().filter(|h| !h.invert) {
        let value = if let Some(v) = h.exact.as_ref().or(h.prefix.as_ref()) {
            v.clone()
        } else if let Some(v) = &h.suffix {
            format!("x{v}")
        } else {
            "1".to_owned()
        };
        let name = h.name.to_ascii_lowercase();
        req.headers.retain(|(k, _)| *k != name);
        req.headers.push((name, value));
    }
    let query: Vec<String> = m
        .query_param
        .iter()
        .map(|q| format!("{}={}", q.name, q.exact.as_deref().unwrap_or("1")))
        .collect();
    if !query.is_empty() {
        req.path = format!("{}?{}", req.path, query.join("&"));
    }
    req
}

/// The requests the application sends on an upstream: its usual one, then one per route of the
/// upstream's router (the catch-all excepted) that is not the same request again.
pub(crate) fn requests(
    base: &mesh_semantics::intention::HttpRequest,
    chain: Option<&CompiledChain>,
) -> Vec<mesh_semantics::intention::HttpRequest> {
    let mut out = vec![base.clone()];
    let Some(Node::Router { routes, .. }) = chain.and_then(|c| c.nodes.get(&c.start)) else {
        return out;
    };
    for (route, _) in &routes[..routes.len().saturating_sub(1)] {
        let r = request_for_route(base, route);
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// The instances of a target: those of its service whose `Service.Meta` (and ID, name) the
/// subset's filter accepts (`OnlyPassing` changes nothing: the agent watches passing instances
/// only). Consul applies the filter to the health results of the target's service
/// (`agent/proxycfg/upstreams.go`, `watchUpstreamTarget`, `Filter: opts.filter`).
pub(crate) fn endpoints(cache: &AgentCache, target: &Target) -> Vec<Endpoint> {
    let all = cache
        .catalog
        .get(&target.service)
        .cloned()
        .unwrap_or_default();
    let Some(expr) = &target.filter.filter else {
        return all;
    };
    let Ok(filter) = Filter::parse(expr) else {
        return Vec::new();
    };
    all.into_iter()
        .filter(|e| {
            filter.matches(&Instance {
                id: e.id.clone(),
                service: target.service.clone(),
                tags: Vec::new(),
                meta: e.meta.clone(),
                node_meta: BTreeMap::new(),
            })
        })
        .collect()
}

/// Whether a failed call may go on to the next target: nothing was reached (no instance
/// answered the connection), as Envoy's priority failover moves on when a target's endpoints
/// are unhealthy. A refusal by the target's proxy is its answer, not a failover.
pub(crate) fn fails_over(f: &Failure) -> bool {
    !f.handshake && matches!(f.outcome, Outcome::Unreachable | Outcome::TimedOut)
}

/// The agent cache's versions a TLS configuration was built from: (roots, the service's leaf).
type TlsVersion = (u64, u64);

/// The routing half of one upstream's sidecar: its generator of split rolls (from the seed),
/// its TLS configurations per target service, and its round robin per target.
pub(crate) struct ChainProxy {
    /// The calling service (whose leaf the sidecar presents).
    pub service: String,
    pub upstream: String,
    pub cache: Rc<RefCell<AgentCache>>,
    pub pool: Rc<Pool>,
    pub rng: RefCell<StdRng>,
    pub configs: RefCell<BTreeMap<String, (TlsVersion, Arc<rustls::ClientConfig>)>>,
    pub next: RefCell<BTreeMap<String, usize>>,
}

impl ChainProxy {
    /// The client configuration for `target`'s identity, rebuilt when roots or leaves changed.
    fn config(&self, target: &str) -> Option<Arc<rustls::ClientConfig>> {
        let k = self.cache.borrow();
        let mut configs = self.configs.borrow_mut();
        // As for the other proxies: new roots or this service's own new leaf only.
        let version = (
            k.roots_version,
            k.leaf_versions.get(&self.service).copied().unwrap_or(0),
        );
        if let Some((v, c)) = configs.get(target) {
            if *v == version {
                return Some(c.clone());
            }
        }
        let (_, me, _) = k.leaves.get(&self.service)?;
        let cfg = crate::tls::client_config(&k.roots, &k.trust_domain, target, Some(me)).ok()?;
        configs.insert(target.to_owned(), (version, cfg.clone()));
        Some(cfg)
    }

    /// The instances of `target`, from the next one in turn (round robin) round to the rest.
    fn endpoints(&self, target: &Target) -> Vec<Endpoint> {
        let mut eps = endpoints(&self.cache.borrow(), target);
        let mut next = self.next.borrow_mut();
        let i = next.entry(target.id.clone()).or_default();
        if !eps.is_empty() {
            let n = eps.len();
            eps.rotate_left(*i % n);
        }
        *i = i.wrapping_add(1);
        eps
    }

    /// Routes the request `head` by the chain and sends it to the target it picks, failing over
    /// in order; returns the target service reached (or last tried) and its answer.
    pub(crate) async fn call(&self, head: &[u8]) -> (Option<String>, Result<Vec<u8>, Failure>) {
        let Some(req) = crate::wire::parse_request(head) else {
            return (
                None,
                Err(Failure::new(Outcome::Unreachable, false, "not HTTP")),
            );
        };
        let chain = self.cache.borrow().chains.get(&self.upstream).cloned();
        let Some(chain) = chain else {
            return (
                None,
                Err(Failure::new(
                    Outcome::Unreachable,
                    false,
                    "no discovery chain yet",
                )),
            );
        };
        let roll = self.rng.borrow_mut().random_range(0.0..100.0);
        let routed = chain.route(&request_of(&req), roll);
        let mut last = (
            None,
            Err(Failure::new(Outcome::Unreachable, false, "no target")),
        );
        for id in &routed.targets {
            // Peers are not simulated: a peer target has no instance here.
            let Some(t) = chain.targets.get(id).filter(|t| t.peer.is_none()) else {
                continue;
            };
            let eps = self.endpoints(t);
            if eps.is_empty() {
                let why = format!("no healthy instance of {}", t.id);
                last = (
                    Some(t.service.clone()),
                    Err(Failure::new(Outcome::Unreachable, false, why)),
                );
                continue;
            }
            let Some(cfg) = self.config(&t.service) else {
                let f = Failure::new(Outcome::Unreachable, false, "no certificate yet");
                return (Some(t.service.clone()), Err(f));
            };
            // Another instance of the target before the next target: failover is for a
            // target none of whose instances answers.
            for ep in &eps {
                match self.pool.call(ep, cfg.clone(), &t.service, head).await {
                    Err(f) if fails_over(&f) => last = (Some(t.service.clone()), Err(f)),
                    r => return (Some(t.service.clone()), r),
                }
            }
        }
        last
    }
}

/// The response with the header naming the target service that answered (or was tried), so
/// that the calling application knows where its request went.
pub(crate) fn with_target(mut response: Vec<u8>, target: &str) -> Vec<u8> {
    let at = response
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(response.len(), |i| i + 2);
    let header = format!("{TARGET_HEADER}: {target}\r\n");
    response.splice(at..at, header.into_bytes());
    response
}

/// The response header naming the chain's target.
pub(crate) const TARGET_HEADER: &str = "x-sim-target";

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_model::chain::{RouteHeaderMatch, RouteHttpMatch, RouteMatch, RouteQueryMatch};

    fn base() -> mesh_semantics::intention::HttpRequest {
        mesh_semantics::intention::HttpRequest {
            method: "GET".into(),
            path: "/".into(),
            headers: vec![("host".into(), "api".into())],
        }
    }

    #[test]
    fn a_route_s_request_matches_it_and_its_query_is_read_back() {
        let route = ServiceRoute {
            matches: Some(RouteMatch {
                http: Some(RouteHttpMatch {
                    path_prefix: Some("/v2".into()),
                    methods: vec!["POST".into()],
                    header: vec![RouteHeaderMatch {
                        name: "X-Canary".into(),
                        suffix: Some("yes".into()),
                        ..RouteHeaderMatch::default()
                    }],
                    query_param: vec![RouteQueryMatch {
                        name: "beta".into(),
                        present: true,
                        ..RouteQueryMatch::default()
                    }],
                    ..RouteHttpMatch::default()
                }),
            }),
            ..ServiceRoute::default()
        };
        let req = request_for_route(&base(), &route);
        assert_eq!(req.path, "/v2?beta=1");
        assert_eq!(req.method, "POST");
        let attrs = request_of(&req);
        assert_eq!(attrs.path, "/v2");
        assert_eq!(attrs.query, [("beta".to_owned(), "1".to_owned())]);
        assert!(mesh_semantics::chain::route::route_matches(&route, &attrs));
        assert!(!mesh_semantics::chain::route::route_matches(
            &route,
            &request_of(&base())
        ));
    }

    #[test]
    fn the_target_header_goes_after_the_status_line() {
        let r = crate::wire::response(200, "OK", &[("x-sim-service", "api")], "api");
        let r = with_target(r, "api-v2");
        let parsed = crate::wire::parse_response(&r).unwrap();
        assert_eq!(parsed.headers[TARGET_HEADER], "api-v2");
        assert_eq!(parsed.body, "api");
        assert!(r.starts_with(b"HTTP/1.1 200 OK\r\nx-sim-target: api-v2\r\n"));
    }
}
