//! The discovery-chain compiler, following Consul's `agent/consul/discoverychain/compile.go`:
//! the router of the requested service (with a catch-all route appended), splitters followed
//! recursively and flattened, resolvers with redirects, default subsets and failover, and the
//! protocol rules. The result has Consul's shape (`structs.CompiledDiscoveryChain`): nodes keyed
//! `router:`, `splitter:`, `resolver:`, and targets keyed by Consul's target ID.

use crate::config_entry::{config_protocol, is_http_like};
use mesh_model::chain::{
    ChainEntry, ResolverSubset, ServiceResolver, ServiceRoute, ServiceRouter, ServiceSplitter,
};
use mesh_model::ConfigEntry;
use std::collections::{BTreeMap, HashMap};

/// The entries a chain compiles from, indexed once for many compilations.
#[derive(Debug, Default)]
pub struct ChainIndex<'a> {
    routers: HashMap<&'a str, &'a ServiceRouter>,
    splitters: HashMap<&'a str, &'a ServiceSplitter>,
    resolvers: HashMap<&'a str, &'a ServiceResolver>,
    /// `Protocol` of every service-defaults entry (absent: `tcp`, `recordServiceProtocol`).
    service_protocols: HashMap<&'a str, String>,
    global_protocol: Option<String>,
    datacenter: String,
}

impl<'a> ChainIndex<'a> {
    pub fn new(entries: &'a [ConfigEntry], datacenter: &str) -> Self {
        let mut ix = ChainIndex {
            datacenter: datacenter.to_owned(),
            ..ChainIndex::default()
        };
        for e in entries {
            match e {
                ConfigEntry::Chain(ChainEntry::Router(r)) => {
                    ix.routers.insert(&r.name, r);
                }
                ConfigEntry::Chain(ChainEntry::Splitter(s)) => {
                    ix.splitters.insert(&s.name, s);
                }
                ConfigEntry::Chain(ChainEntry::Resolver(r)) => {
                    ix.resolvers.insert(&r.name, r);
                }
                ConfigEntry::ServiceDefaults(sd) => {
                    let p = sd
                        .protocol
                        .as_deref()
                        .filter(|p| !p.is_empty())
                        .map_or_else(|| "tcp".to_owned(), str::to_ascii_lowercase);
                    ix.service_protocols.insert(&sd.name, p);
                }
                ConfigEntry::ProxyDefaults(pd) => ix.global_protocol = config_protocol(&pd.config),
                _ => {}
            }
        }
        ix
    }

    /// Whether `service` has any chain entry of its own (its chain may differ from the default).
    pub fn has_entries(&self, service: &str) -> bool {
        self.routers.contains_key(service)
            || self.splitters.contains_key(service)
            || self.resolvers.contains_key(service)
    }

    /// `recordServiceProtocol`: service-defaults decides alone, else proxy-defaults, else tcp.
    pub fn protocol(&self, service: &str) -> String {
        self.protocol_ref(service).to_owned()
    }

    fn protocol_ref(&self, service: &str) -> &str {
        match self.service_protocols.get(service) {
            Some(p) => p,
            None => self.global_protocol.as_deref().unwrap_or("tcp"),
        }
    }

    pub fn datacenter(&self) -> &str {
        &self.datacenter
    }
}

/// A place a request can end: a service (and subset) in a datacenter, or on a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Consul's `DiscoveryTarget.ID`: `[subset.]service.namespace.partition.datacenter`.
    pub id: String,
    pub service: String,
    pub subset: Option<String>,
    pub datacenter: String,
    pub peer: Option<String>,
    /// The resolver subset definition that selects the target's instances.
    pub filter: ResolverSubset,
    /// The resolver's `ConnectTimeout`, 5s when unset (`getResolverNode`).
    pub connect_timeout: String,
}

impl Target {
    fn new(service: &str, subset: Option<&str>, datacenter: &str, peer: Option<&str>) -> Self {
        let tail = match peer {
            Some(p) => format!("default.default.external-peer.{p}"),
            None => format!("default.default.{datacenter}"),
        };
        let id = match subset {
            Some(s) => format!("{s}.{service}.{tail}"),
            None => format!("{service}.{tail}"),
        };
        Target {
            id,
            service: service.to_owned(),
            subset: subset.map(str::to_owned),
            datacenter: if peer.is_some() {
                String::new()
            } else {
                datacenter.to_owned()
            },
            peer: peer.map(str::to_owned),
            filter: ResolverSubset::default(),
            connect_timeout: "5s".to_owned(),
        }
    }
}

/// One node of a compiled chain (`structs.DiscoveryGraphNode`).
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// The routes in order, the catch-all (`PathPrefix "/"` to the service itself) last; each
    /// with the key of its next node.
    Router {
        name: String,
        routes: Vec<(ServiceRoute, String)>,
    },
    /// Weights (percent, normalized) and next nodes; never followed by another splitter.
    Splitter {
        name: String,
        splits: Vec<(f64, String)>,
    },
    /// The target, and the failover targets in order.
    Resolver {
        name: String,
        default: bool,
        target: String,
        failover: Vec<String>,
    },
}

impl Node {
    /// `DiscoveryGraphNode.MapKey`.
    pub fn key(&self) -> String {
        match self {
            Node::Router { name, .. } => format!("router:{name}"),
            Node::Splitter { name, .. } => format!("splitter:{name}"),
            Node::Resolver { name, .. } => format!("resolver:{name}"),
        }
    }
}

/// `structs.CompiledDiscoveryChain`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledChain {
    pub service: String,
    pub datacenter: String,
    pub protocol: String,
    /// No routing, no splitting, and the default resolution of the service itself.
    pub default: bool,
    pub start: String,
    pub nodes: BTreeMap<String, Node>,
    pub targets: BTreeMap<String, Target>,
}

/// Why a chain does not compile (`structs.ConfigEntryGraphError`), with Consul's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("discovery chain {chain:?} uses a protocol {protocol:?} that does not permit advanced routing or splitting behavior")]
    NeedsHttp { chain: String, protocol: String },
    #[error("discovery chain {chain:?} uses inconsistent protocols; service {service:?} has {protocol:?} which is not {first:?}")]
    Protocols {
        chain: String,
        service: String,
        protocol: String,
        first: String,
    },
    #[error("service {service:?} does not have a subset named {subset:?}")]
    NoSubset { service: String, subset: String },
    #[error("detected circular resolver redirect: [{}]", .0.join(" -> "))]
    RedirectCycle(Vec<String>),
    #[error("detected circular reference: [{}]", .0.join(" -> "))]
    Cycle(Vec<String>),
}

impl ChainError {
    pub fn help(&self) -> String {
        match self {
            ChainError::NeedsHttp { chain, .. } => format!(
                "routers and splitters need an HTTP protocol: add a service-defaults entry for {chain:?} with Protocol = \"http\" (or http2, grpc)"
            ),
            ChainError::Protocols { .. } => {
                "every service a chain reaches must have the same protocol".to_owned()
            }
            ChainError::NoSubset { service, .. } => {
                format!("define the subset in the service-resolver of {service:?}")
            }
            ChainError::RedirectCycle(_) | ChainError::Cycle(_) => {
                "break the cycle: a chain must end at a resolver".to_owned()
            }
        }
    }
}

struct Compiler<'i, 'a> {
    ix: &'i ChainIndex<'a>,
    service: String,
    protocol: Option<String>,
    advanced: bool,
    nodes: BTreeMap<String, Node>,
    targets: BTreeMap<String, Target>,
}

/// Compiles the discovery chain of `service` (`discoverychain.Compile`).
pub fn compile(ix: &ChainIndex<'_>, service: &str) -> Result<CompiledChain, ChainError> {
    let mut c = Compiler {
        ix,
        service: service.to_owned(),
        protocol: None,
        advanced: false,
        nodes: BTreeMap::new(),
        targets: BTreeMap::new(),
    };
    let start = c.assemble()?;
    c.detect_cycles(&start)?;
    c.flatten_splitters();
    c.remove_unused(&start);
    let protocol = c.protocol.clone().unwrap_or_else(|| "tcp".to_owned());
    if c.advanced && !is_http_like(&protocol) {
        return Err(ChainError::NeedsHttp {
            chain: service.to_owned(),
            protocol,
        });
    }
    // `determineIfDefaultChain`.
    let default = match c.nodes.get(&start) {
        Some(Node::Resolver {
            default, target, ..
        }) => *default && c.targets.get(target).is_some_and(|t| t.service == service),
        _ => false,
    };
    Ok(CompiledChain {
        service: service.to_owned(),
        datacenter: ix.datacenter.clone(),
        protocol,
        default,
        start,
        nodes: c.nodes,
        targets: c.targets,
    })
}

impl Compiler<'_, '_> {
    /// `recordServiceProtocol` and `recordProtocol`: the first protocol seen is the chain's.
    fn record_protocol(&mut self, service: &str) -> Result<(), ChainError> {
        let p = self.ix.protocol_ref(service);
        match &self.protocol {
            None => self.protocol = Some(p.to_owned()),
            Some(first) if first != p => {
                return Err(ChainError::Protocols {
                    chain: self.service.clone(),
                    service: format!("{service}.default.default"),
                    protocol: p.to_owned(),
                    first: first.clone(),
                })
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn target(
        &self,
        service: &str,
        subset: Option<&str>,
        dc: Option<&str>,
        peer: Option<&str>,
    ) -> Target {
        Target::new(service, subset, dc.unwrap_or(&self.ix.datacenter), peer)
    }

    /// `assembleChain`: returns the start node's key.
    fn assemble(&mut self) -> Result<String, ChainError> {
        let service = self.service.clone();
        let Some(router) = self.ix.routers.get(service.as_str()).copied() else {
            let t = self.target(&service, None, None, None);
            return self.splitter_or_resolver(t);
        };
        self.advanced = true;
        self.record_protocol(&router.name)?;
        let mut routes = Vec::with_capacity(router.routes.len() + 1);
        for route in &router.routes {
            let dest = route.destination.as_ref();
            let svc = dest.and_then(|d| d.service.as_deref()).unwrap_or(&service);
            let next = match dest.and_then(|d| d.service_subset.as_deref()) {
                None => {
                    let t = self.target(svc, None, None, None);
                    self.splitter_or_resolver(t)?
                }
                Some(subset) => {
                    let t = self.target(svc, Some(subset), None, None);
                    self.resolver(t, false)?.0
                }
            };
            routes.push((route.clone(), next));
        }
        let t = self.target(&router.name, None, None, None);
        let next = self.splitter_or_resolver(t)?;
        routes.push((default_route(&router.name), next));
        let node = Node::Router {
            name: format!("{}.default.default", router.name),
            routes,
        };
        let key = node.key();
        self.nodes.insert(key.clone(), node);
        Ok(key)
    }

    /// `getSplitterOrResolverNode`.
    fn splitter_or_resolver(&mut self, t: Target) -> Result<String, ChainError> {
        if let Some(key) = self.splitter(&t.service)? {
            return Ok(key);
        }
        Ok(self.resolver(t, false)?.0)
    }

    /// `getSplitterNode`: the splitter of `service`, if it has one.
    fn splitter(&mut self, service: &str) -> Result<Option<String>, ChainError> {
        let name = format!("{service}.default.default");
        let key = format!("splitter:{name}");
        if self.nodes.contains_key(&key) {
            return Ok(Some(key));
        }
        let Some(splitter) = self.ix.splitters.get(service).copied() else {
            return Ok(None);
        };
        // Recorded before recursing, so a loop below ends here (and is reported as a cycle).
        self.nodes.insert(
            key.clone(),
            Node::Splitter {
                name: name.clone(),
                splits: Vec::new(),
            },
        );
        let mut splits = Vec::with_capacity(splitter.splits.len());
        for split in &splitter.splits {
            let svc = split.service.as_deref().unwrap_or(service);
            if svc != service && split.service_subset.is_none() {
                if let Some(next) = self.splitter(svc)? {
                    splits.push((split.weight, next));
                    continue;
                }
            }
            let t = self.target(svc, split.service_subset.as_deref(), None, None);
            splits.push((split.weight, self.resolver(t, false)?.0));
        }
        self.nodes
            .insert(key.clone(), Node::Splitter { name, splits });
        self.advanced = true;
        Ok(Some(key))
    }

    /// `rewriteTarget`: a redirect or failover applied to a target.
    fn rewrite(
        &self,
        t: &Target,
        service: Option<&str>,
        subset: Option<&str>,
        dc: Option<&str>,
        peer: Option<&str>,
    ) -> Target {
        let mut svc = t.service.as_str();
        let mut sub = t.subset.as_deref();
        if let Some(s) = service.filter(|s| *s != t.service) {
            svc = s;
            sub = None;
        }
        if subset.is_some() {
            sub = subset;
        }
        let dc = dc.unwrap_or(&t.datacenter);
        let dc = if dc.is_empty() { None } else { Some(dc) };
        self.target(svc, sub, dc, peer)
    }

    /// `getResolverNode`: the resolver node for a target (redirects and default subsets
    /// applied), its key and its final target ID.
    fn resolver(
        &mut self,
        mut t: Target,
        for_failover: bool,
    ) -> Result<(String, String), ChainError> {
        let mut history: Vec<String> = Vec::new();
        let resolver = loop {
            let key = format!("resolver:{}", t.id);
            if !for_failover && self.nodes.contains_key(&key) {
                return Ok((key, t.id));
            }
            if t.peer.is_none() {
                self.record_protocol(&t.service)?;
            }
            let resolver = self.ix.resolvers.get(t.service.as_str()).copied();
            if history.contains(&t.id) {
                history.push(t.id.clone());
                return Err(ChainError::RedirectCycle(history));
            }
            history.push(t.id.clone());
            if let Some(r) = resolver.and_then(|r| r.redirect.as_ref()) {
                let next = self.rewrite(
                    &t,
                    r.service.as_deref(),
                    r.service_subset.as_deref(),
                    r.datacenter.as_deref(),
                    r.peer.as_deref(),
                );
                if next.id != t.id {
                    t = next;
                    continue;
                }
            }
            if let (None, Some(d)) = (
                &t.subset,
                resolver.and_then(|r| r.default_subset.as_deref()),
            ) {
                // `rewriteTarget` with no Peer: Consul drops a peer here too.
                t = self.rewrite(&t, None, Some(d), None, None);
                continue;
            }
            break resolver;
        };
        if let Some(subset) = &t.subset {
            if !resolver.is_some_and(|r| r.subsets.contains_key(subset)) {
                return Err(ChainError::NoSubset {
                    service: t.service.clone(),
                    subset: subset.clone(),
                });
            }
            t.filter = resolver
                .and_then(|r| r.subsets.get(subset))
                .cloned()
                .unwrap_or_default();
        }
        if let Some(ct) = resolver
            .and_then(|r| r.rest.get("ConnectTimeout"))
            .and_then(|v| v.as_str())
        {
            t.connect_timeout = ct.to_owned();
        }
        let key = format!("resolver:{}", t.id);
        let default = resolver.is_none_or(is_default_resolver);
        let target_id = t.id.clone();
        self.targets.insert(t.id.clone(), t.clone());
        let mut node = Node::Resolver {
            name: t.id.clone(),
            default,
            target: t.id.clone(),
            failover: Vec::new(),
        };
        if for_failover {
            return Ok((key, target_id));
        }
        self.nodes.insert(key.clone(), node.clone());
        let failover = resolver.and_then(|r| {
            t.subset
                .as_deref()
                .and_then(|s| r.failover.get(s))
                .or_else(|| r.failover.get("*"))
        });
        if let Some(f) = failover {
            let mut candidates = Vec::new();
            if !f.datacenters.is_empty() {
                for dc in &f.datacenters {
                    candidates.push(self.rewrite(
                        &t,
                        f.service.as_deref(),
                        f.service_subset.as_deref(),
                        Some(dc),
                        None,
                    ));
                }
            } else if !f.targets.is_empty() {
                for ft in &f.targets {
                    candidates.push(self.rewrite(
                        &t,
                        ft.service.as_deref(),
                        ft.service_subset.as_deref(),
                        ft.datacenter.as_deref(),
                        ft.peer.as_deref(),
                    ));
                }
            } else {
                candidates.push(self.rewrite(
                    &t,
                    f.service.as_deref(),
                    f.service_subset.as_deref(),
                    None,
                    None,
                ));
            }
            let mut ids = Vec::new();
            for c in candidates.into_iter().filter(|c| c.id != t.id) {
                ids.push(self.resolver(c, true)?.1);
            }
            if let Node::Resolver { failover, .. } = &mut node {
                *failover = ids;
            }
            self.nodes.insert(key.clone(), node);
        }
        Ok((key, target_id))
    }

    /// `detectCircularReferences`: a path from the start that visits a node twice.
    fn detect_cycles(&self, start: &str) -> Result<(), ChainError> {
        fn walk(c: &Compiler<'_, '_>, key: &str, path: &mut Vec<String>) -> Result<(), ChainError> {
            if path.iter().any(|p| p == key) {
                path.push(key.to_owned());
                return Err(ChainError::Cycle(path.clone()));
            }
            path.push(key.to_owned());
            let next: Vec<&String> = match c.nodes.get(key) {
                Some(Node::Router { routes, .. }) => routes.iter().map(|(_, n)| n).collect(),
                Some(Node::Splitter { splits, .. }) => splits.iter().map(|(_, n)| n).collect(),
                _ => Vec::new(),
            };
            for n in next {
                walk(c, n, path)?;
            }
            path.pop();
            Ok(())
        }
        walk(self, start, &mut Vec::new())
    }

    /// `flattenAdjacentSplitterNodes`: a split into another splitter becomes that splitter's
    /// splits, weights multiplied (and normalized to 0.01).
    fn flatten_splitters(&mut self) {
        loop {
            let mut changed = false;
            let keys: Vec<String> = self.nodes.keys().cloned().collect();
            for key in keys {
                let Some(Node::Splitter { name, splits }) = self.nodes.get(&key).cloned() else {
                    continue;
                };
                let mut fixed = Vec::with_capacity(splits.len());
                let mut here = false;
                for (w, next) in splits {
                    match self.nodes.get(&next) {
                        Some(Node::Splitter { splits: inner, .. }) => {
                            here = true;
                            for (iw, inext) in inner {
                                let eff = w * iw / 100.0;
                                fixed.push((
                                    super::scaled_weight(eff) as f64 / 100.0,
                                    inext.clone(),
                                ));
                            }
                        }
                        _ => fixed.push((w, next)),
                    }
                }
                if here {
                    changed = true;
                    self.nodes.insert(
                        key,
                        Node::Splitter {
                            name,
                            splits: fixed,
                        },
                    );
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// `removeUnusedNodes`, and the targets no retained node names.
    fn remove_unused(&mut self, start: &str) {
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = vec![start.to_owned()];
        while let Some(k) = todo.pop() {
            if !seen.insert(k.clone()) {
                continue;
            }
            match self.nodes.get(&k) {
                Some(Node::Router { routes, .. }) => {
                    todo.extend(routes.iter().map(|(_, n)| n.clone()))
                }
                Some(Node::Splitter { splits, .. }) => {
                    todo.extend(splits.iter().map(|(_, n)| n.clone()))
                }
                _ => {}
            }
        }
        self.nodes.retain(|k, _| seen.contains(k));
        let mut used = std::collections::BTreeSet::new();
        for n in self.nodes.values() {
            if let Node::Resolver {
                target, failover, ..
            } = n
            {
                used.insert(target.clone());
                used.extend(failover.iter().cloned());
            }
        }
        self.targets.retain(|k, _| used.contains(k));
    }
}

/// `newDefaultServiceRoute`: the catch-all route a router ends with.
fn default_route(service: &str) -> ServiceRoute {
    use mesh_model::chain::{RouteDestination, RouteHttpMatch, RouteMatch};
    ServiceRoute {
        matches: Some(RouteMatch {
            http: Some(RouteHttpMatch {
                path_prefix: Some("/".to_owned()),
                ..RouteHttpMatch::default()
            }),
        }),
        destination: Some(RouteDestination {
            service: Some(service.to_owned()),
            ..RouteDestination::default()
        }),
        span: Default::default(),
    }
}

/// `ServiceResolverConfigEntry.IsDefault`.
fn is_default_resolver(r: &ServiceResolver) -> bool {
    r.default_subset.is_none()
        && r.subsets.is_empty()
        && r.redirect.is_none()
        && r.failover.is_empty()
        && !r.rest.contains_key("ConnectTimeout")
        && !r.rest.contains_key("RequestTimeout")
        && !r.rest.contains_key("LoadBalancer")
}
