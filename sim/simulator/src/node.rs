//! A node host: the agent (watching roots, leaves, intentions, the catalog and the discovery
//! chains of chained upstreams on the server with Consul's blocking queries over HTTP, and
//! caching them) and, per service instance, the application, its sidecar's inbound listener and
//! one upstream listener per declared upstream (routing by the chain when it has one), plus the
//! traffic the application sends through them (`traffic`).

use crate::client::{Conn, Reply};
use crate::obs::{log, now_ms, Obs, Receipt};
use crate::server::HTTP_PORT;
use crate::tls::{self, Identity};
use crate::wire::{self, Endpoint};
use crate::Outcome;
use mesh_semantics::intention::{HttpRequest, IntentionSet};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::{sleep, timeout};
use tokio_rustls::TlsAcceptor;
use turmoil::net::{TcpListener, TcpStream};

pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// The preamble an inbound proxy sends the application before the request (like the PROXY
/// protocol): the verified identity of the caller.
pub(crate) const PREAMBLE: &str = "SIM-PROXY ";

/// One declared upstream of an instance.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamPlan {
    pub destination: String,
    /// The port the sidecar listens on (the declared one unless another instance on the same
    /// node already uses it).
    pub bind_port: u16,
    /// What the application sends, in turn: its usual request, then one per route of the
    /// upstream's router, so that every route gets traffic.
    pub requests: Vec<HttpRequest>,
    /// The destination speaks an HTTP-family protocol: requests share pooled connections.
    pub http: bool,
    /// The agent watches the upstream's discovery chain and the sidecar routes by it.
    pub chained: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct InstancePlan {
    pub service: String,
    pub app_port: u16,
    pub inbound_port: u16,
    pub http: bool,
    pub upstreams: Vec<UpstreamPlan>,
    /// The service's meta, which its sidecar's registration carries too.
    pub meta: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub(crate) struct NodePlan {
    pub host: String,
    pub instances: Vec<InstancePlan>,
    /// The decision when no intention matches (the agent's ACL default policy).
    pub default_allow: bool,
    /// The run's seed: the sidecars' split rolls and the order of the applications' requests
    /// come from it.
    pub seed: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub poll: Duration,
    pub traffic_start: Duration,
    pub traffic_every: Duration,
}

/// What the agent knows; proxies on the host read it.
#[derive(Default)]
pub(crate) struct AgentCache {
    pub trust_domain: String,
    pub roots: Vec<Vec<u8>>,
    pub roots_index: u64,
    pub active_root_id: String,
    /// Per service: the active root when the leaf arrived, the leaf, and when it is due for
    /// renewal (simulated ms; two thirds into its remaining lifetime). The server decides when
    /// to sign a new one and answers the leaf's blocking query with it.
    pub leaves: BTreeMap<String, (String, Identity, u64)>,
    pub intentions: Rc<IntentionSet>,
    pub default_allow: bool,
    pub intentions_index: u64,
    pub catalog: BTreeMap<String, Vec<Endpoint>>,
    /// The compiled discovery chain of each chained upstream, decoded from the server's answer.
    pub chains: BTreeMap<String, Rc<mesh_semantics::chain::CompiledChain>>,
    /// The services whose instances the agent watches (upstreams and chain targets).
    pub watched: BTreeSet<String>,
    /// Bumped on every change.
    pub version: u64,
    /// Bumped on new roots or a new leaf, so proxies rebuild their TLS configs (and stop reusing
    /// pooled connections) only then.
    pub tls_version: u64,
    /// `tls_version` when the roots last changed.
    pub roots_version: u64,
    /// Per service: `tls_version` when its leaf last changed. A proxy's configuration depends on
    /// the roots and its own leaf only, as Envoy's SDS secrets are per service: another service's
    /// renewal on the same node leaves its connections alone.
    pub leaf_versions: BTreeMap<String, u64>,
}

impl AgentCache {
    /// New roots: every proxy on the node rebuilds its TLS configuration.
    fn roots_changed(&mut self) {
        self.tls_version += 1;
        self.roots_version = self.tls_version;
    }

    /// A new leaf for `service`: only that service's proxies rebuild theirs.
    fn leaf_changed(&mut self, service: &str) {
        self.tls_version += 1;
        let v = self.tls_version;
        self.leaf_versions.insert(service.to_owned(), v);
    }
}

type Cache = Rc<RefCell<AgentCache>>;

/// Rebuilds a proxy's TLS configuration when the agent's roots or leaves have changed since it
/// was built, and keeps it otherwise.
fn refresh<T>(
    config: &mut Option<((u64, u64), Arc<T>)>,
    cache: &Cache,
    service: &str,
    build: impl Fn(&AgentCache, &tls::Identity) -> Option<Arc<T>>,
) {
    let k = cache.borrow();
    let version = (
        k.roots_version,
        k.leaf_versions.get(service).copied().unwrap_or(0),
    );
    if config.as_ref().is_none_or(|(v, _)| *v != version) {
        *config = k
            .leaves
            .get(service)
            .and_then(|(_, me, _)| build(&k, me))
            .map(|c| (version, c));
    }
}

/// The node host's software.
pub(crate) async fn run(plan: Rc<NodePlan>, obs: Obs, timing: Timing) -> turmoil::Result {
    let cache: Cache = Rc::new(RefCell::new(AgentCache::default()));
    let host: Rc<str> = plan.host.as_str().into();
    log(&obs, &host, "started");
    for (i, inst) in plan.instances.iter().enumerate() {
        let inst = Rc::new(inst.clone());
        tokio::task::spawn_local(app(inst.clone(), host.clone(), obs.clone()));
        tokio::task::spawn_local(inbound(
            inst.clone(),
            host.clone(),
            cache.clone(),
            obs.clone(),
        ));
        for (j, up) in inst.upstreams.iter().enumerate() {
            let up = Rc::new(up.clone());
            tokio::task::spawn_local(upstream(
                inst.clone(),
                up.clone(),
                host.clone(),
                cache.clone(),
                obs.clone(),
                plan.seed,
            ));
            // Spread the callers over the period so they do not all dial at the same tick.
            let offset = Duration::from_millis(((i * 7 + j * 13) % 97) as u64 * 3);
            let label = format!("requests/{host}/{}/{}", inst.service, up.destination);
            let first = {
                use rand::Rng;
                crate::keys::rng(plan.seed, &label).random_range(0..up.requests.len().max(1))
            };
            tokio::task::spawn_local(crate::traffic::traffic(
                inst.service.clone(),
                up,
                host.clone(),
                obs.clone(),
                (timing.traffic_start + offset, timing.traffic_every),
                first,
            ));
        }
    }
    agent(&plan, host, cache, obs, timing.poll).await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Agent

/// How long a blocking query waits on the server. Short, because a partition or a crash loses
/// the answer silently and the client only notices when its own timeout ends.
const WAIT: Duration = Duration::from_secs(2);
/// The client's timeout of a blocking query: the wait, Consul's jitter (a sixteenth of it) and
/// the round trip.
const WATCH_TIMEOUT: Duration = Duration::from_millis(2750);

async fn agent(plan: &NodePlan, host: Rc<str>, cache: Cache, obs: Obs, poll: Duration) {
    let mut services: Vec<String> = plan.instances.iter().map(|i| i.service.clone()).collect();
    services.sort();
    services.dedup();
    let mut destinations: Vec<String> = plan
        .instances
        .iter()
        .flat_map(|i| i.upstreams.iter().map(|u| u.destination.clone()))
        .collect();
    destinations.sort();
    destinations.dedup();
    let chained: BTreeSet<String> = plan
        .instances
        .iter()
        .flat_map(|i| i.upstreams.iter().filter(|u| u.chained))
        .map(|u| u.destination.clone())
        .collect();
    cache.borrow_mut().watched = destinations.iter().cloned().collect();
    let default_allow = plan.default_allow;
    let w = |kind| Watcher {
        host: host.clone(),
        cache: cache.clone(),
        obs: obs.clone(),
        kind,
        poll,
    };
    tokio::task::spawn_local(w(Watch::Intentions(default_allow)).run(poll));
    for svc in services {
        tokio::task::spawn_local(w(Watch::Leaf(svc)).run(poll));
    }
    for dst in destinations {
        tokio::task::spawn_local(w(Watch::Catalog(dst)).run(poll));
    }
    // The chain of an upstream routed by more than its default resolver; the catalog watches
    // of its targets start when an answer names them. Consul's proxy configuration watches the
    // compiled chain of every service upstream (`agent/proxycfg/connect_proxy.go`,
    // `initialize`: `cachetype.CompiledDiscoveryChainName`) and then each target's health
    // (`agent/proxycfg/upstreams.go`, `watchUpstreamTarget`); a default chain names only the
    // upstream itself, whose catalog watch the agent has already, so those are left out here.
    for dst in chained {
        tokio::task::spawn_local(w(Watch::Chain(dst)).run(poll));
    }
    // The roots watch reports whether the agent reaches the server.
    w(Watch::Roots).run(poll).await;
}

/// One blocking query the agent keeps open.
enum Watch {
    Roots,
    Intentions(bool),
    Leaf(String),
    Catalog(String),
    Chain(String),
}

struct Watcher {
    host: Rc<str>,
    cache: Cache,
    obs: Obs,
    kind: Watch,
    poll: Duration,
}

impl Watcher {
    fn path(&self) -> String {
        match &self.kind {
            Watch::Roots => "/v1/connect/ca/roots".into(),
            Watch::Intentions(_) => "/v1/config/service-intentions".into(),
            Watch::Leaf(s) => format!("/v1/agent/connect/ca/leaf/{s}"),
            Watch::Catalog(s) => format!("/v1/health/connect/{s}?passing=1"),
            Watch::Chain(s) => format!("/v1/discovery-chain/{s}"),
        }
    }

    /// Queries, then blocks on the index of the last answer; reconnects after a failure.
    async fn run(self, poll: Duration) {
        let base = self.path();
        let sep = if base.contains('?') { '&' } else { '?' };
        let mut conn: Option<Conn> = None;
        let mut index = 0u64;
        let mut connected = false;
        loop {
            if conn.is_none() {
                if let Ok(Ok(c)) = timeout(
                    CONNECT_TIMEOUT,
                    Conn::connect(crate::server::HOST, HTTP_PORT),
                )
                .await
                {
                    conn = Some(c);
                }
            }
            let path = if index == 0 {
                base.clone()
            } else {
                format!("{base}{sep}index={index}&wait={}s", WAIT.as_secs())
            };
            let asked = tokio::time::Instant::now();
            let reply = match conn.as_mut() {
                Some(c) => timeout(WATCH_TIMEOUT, c.get(&path)).await.ok(),
                None => None,
            };
            let ok = match reply {
                Some(Ok(r)) if r.status == 200 => {
                    if r.index == index && asked.elapsed() < WAIT / 2 {
                        // Unchanged and early: the endpoint did not block. Do not spin.
                        sleep(poll).await;
                    } else if r.index != index {
                        match self.apply(&r) {
                            Ok(()) => index = r.index,
                            Err(e) => log(
                                &self.obs,
                                &self.host,
                                format!("agent cannot read {base}: {e}"),
                            ),
                        }
                    }
                    true
                }
                Some(Ok(r)) => {
                    log(
                        &self.obs,
                        &self.host,
                        format!("agent {base}: {} {}", r.status, r.text().trim()),
                    );
                    false
                }
                Some(Err(_)) | None => false,
            };
            // Log transitions only: a partition would otherwise fill the trace with one line a
            // retry.
            if matches!(self.kind, Watch::Roots) && ok != connected {
                connected = ok;
                log(
                    &self.obs,
                    &self.host,
                    if ok {
                        "agent connected to server"
                    } else {
                        "agent lost the server"
                    },
                );
            }
            if !ok {
                conn = None;
                sleep(poll).await;
            }
        }
    }

    /// Takes a new answer into the cache.
    fn apply(&self, r: &Reply) -> Result<(), String> {
        let v = r.json().map_err(|e| e.to_string())?;
        let (host, obs, index) = (&*self.host, &self.obs, r.index);
        let mut k = self.cache.borrow_mut();
        match &self.kind {
            Watch::Roots => {
                let mut bundle = Vec::new();
                for root in v["Roots"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    bundle.extend(pem_certs(root["RootCert"].as_str().unwrap_or(""))?);
                }
                k.roots_index = index;
                k.trust_domain = v["TrustDomain"].as_str().unwrap_or("").to_owned();
                k.active_root_id = v["ActiveRootID"].as_str().unwrap_or("").to_owned();
                log(
                    obs,
                    host,
                    format!("agent roots index {index} ({} roots)", bundle.len()),
                );
                k.roots = bundle;
                k.roots_changed();
            }
            Watch::Intentions(default_allow) => {
                let mut entries = Vec::new();
                for e in v.as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    let text = e.to_string();
                    let node = mesh_syntax::parse_json(mesh_diagnostics::FileId(0), &text)
                        .map_err(|_| "an entry is not JSON".to_owned())?;
                    match mesh_loader::decode_config_entry(&node) {
                        Ok(mesh_model::ConfigEntry::ServiceIntentions(i)) => entries.push(i),
                        _ => return Err("an entry is not service-intentions".into()),
                    }
                }
                k.intentions_index = index;
                k.default_allow = *default_allow;
                k.intentions = Rc::new(IntentionSet::new(&entries));
                log(obs, host, format!("agent intentions index {index}"));
            }
            Watch::Leaf(service) => {
                let chain = pem_certs(v["CertPEM"].as_str().unwrap_or(""))?;
                let key = pem_key(v["PrivateKeyPEM"].as_str().unwrap_or(""))?;
                let serial = v["SerialNumber"].as_str().unwrap_or("");
                let valid_before = v["ValidBefore"].as_str().unwrap_or("");
                let before_ms = time::OffsetDateTime::parse(
                    valid_before,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|e| format!("ValidBefore {valid_before:?}: {e}"))?
                .unix_timestamp()
                .max(0) as u64
                    * 1000;
                // The server renews the leaf; the agent's estimate is kept for the cache.
                let now = now_ms();
                let renew_at =
                    now + before_ms.saturating_sub(crate::EPOCH_UNIX * 1000 + now) * 2 / 3;
                log(
                    obs,
                    host,
                    format!("agent leaf for {service} serial {serial}"),
                );
                let root = k.active_root_id.clone();
                k.leaves
                    .insert(service.clone(), (root, Identity { chain, key }, renew_at));
                k.leaf_changed(service);
            }
            Watch::Catalog(service) => {
                let eps: Vec<Endpoint> = v
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|e| {
                        let meta = e["Service"]["Meta"].as_object().map(|m| {
                            m.iter()
                                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                                .collect()
                        });
                        Some(Endpoint {
                            host: e["Node"]["Node"].as_str()?.to_owned(),
                            port: u16::try_from(e["Service"]["Port"].as_u64()?).ok()?,
                            id: e["Service"]["ID"].as_str().unwrap_or("").to_owned(),
                            meta: meta.unwrap_or_default(),
                        })
                    })
                    .collect();
                if k.catalog.get(service) == Some(&eps) {
                    return Ok(());
                }
                k.catalog.insert(service.clone(), eps);
            }
            Watch::Chain(upstream) => {
                let chain = crate::chain::decode(&v)?;
                let targets: BTreeSet<String> =
                    chain.targets.values().map(|t| t.service.clone()).collect();
                log(
                    obs,
                    host,
                    format!(
                        "agent chain of {upstream} index {index}: {} target(s)",
                        chain.targets.len()
                    ),
                );
                k.chains.insert(upstream.clone(), Rc::new(chain));
                for t in targets {
                    if k.watched.insert(t.clone()) {
                        let w = Watcher {
                            host: self.host.clone(),
                            cache: self.cache.clone(),
                            obs: self.obs.clone(),
                            kind: Watch::Catalog(t),
                            poll: self.poll,
                        };
                        tokio::task::spawn_local(w.run(self.poll));
                    }
                }
            }
        }
        k.version += 1;
        let rec = crate::obs::AgentSync {
            at_ms: now_ms(),
            node: host.to_owned(),
            intentions_index: k.intentions_index,
            roots_index: k.roots_index,
        };
        obs.borrow_mut().syncs.push(rec);
        Ok(())
    }
}

pub(crate) fn pem_certs(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate".into());
    }
    Ok(certs)
}

fn pem_key(pem: &str) -> Result<Vec<u8>, String> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
        .map(|k| k.secret_pkcs8_der().to_vec())
        .map_err(|e| format!("private key PEM: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Application

async fn app(inst: Rc<InstancePlan>, host: Rc<str>, obs: Obs) {
    // Loopback only: nothing reaches the application around its sidecar.
    let listener = match TcpListener::bind(("127.0.0.1", inst.app_port)).await {
        Ok(l) => l,
        Err(e) => {
            log(
                &obs,
                &host,
                format!("app {} cannot listen: {e}", inst.service),
            );
            return;
        }
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::task::spawn_local(serve_app(stream, inst.clone(), host.clone(), obs.clone()));
    }
}

/// The application: answers each request on a connection in turn, until the caller closes it
/// (its sidecar keeps HTTP connections open across requests). The sidecar names the caller's
/// verified identity once, before the first request.
async fn serve_app(mut stream: TcpStream, inst: Rc<InstancePlan>, host: Rc<str>, obs: Obs) {
    let mut source: Option<String> = None;
    let mut first = true;
    loop {
        let wait = if first {
            REQUEST_TIMEOUT
        } else {
            crate::keepalive::IDLE_TIMEOUT
        };
        let Ok(Ok(head)) = timeout(wait, wire::read_head(&mut stream)).await else {
            return;
        };
        if head.is_empty() {
            break;
        }
        let rest = match head.strip_prefix(PREAMBLE.as_bytes()).filter(|_| first) {
            Some(after) => match after.iter().position(|b| *b == b'\n') {
                Some(nl) => {
                    source = Some(String::from_utf8_lossy(&after[..nl]).into_owned());
                    &after[nl + 1..]
                }
                None => after,
            },
            None => &head[..],
        };
        first = false;
        let Some(request) = wire::parse_request(rest) else {
            return;
        };
        let reply = serve_one(&inst, &host, &obs, source.clone(), request);
        if stream.write_all(&reply).await.is_err() {
            return;
        }
    }
    let _ = stream.shutdown().await;
}

/// One request to the application: logged, recorded and answered.
fn serve_one(
    inst: &InstancePlan,
    host: &str,
    obs: &Obs,
    source: Option<String>,
    request: HttpRequest,
) -> Vec<u8> {
    let probe = wire::header(&request, "x-sim-probe").map(str::to_owned);
    log(
        obs,
        host,
        format!(
            "app {} served {} {} {}{}",
            inst.service,
            source.as_deref().unwrap_or("<no proxy>"),
            request.method,
            request.path,
            probe
                .as_deref()
                .map(|p| format!(" probe {p}"))
                .unwrap_or_default()
        ),
    );
    obs.borrow_mut().receipts.push(Receipt {
        at_ms: now_ms(),
        destination: inst.service.clone(),
        source,
        request,
        probe,
    });
    wire::response(
        200,
        "OK",
        &[("x-sim-service", &inst.service)],
        &inst.service,
    )
}

// ---------------------------------------------------------------------------------------------
// Inbound: mTLS termination and authorization

async fn inbound(inst: Rc<InstancePlan>, host: Rc<str>, cache: Cache, obs: Obs) {
    let listener = match TcpListener::bind(("0.0.0.0", inst.inbound_port)).await {
        Ok(l) => l,
        Err(e) => {
            log(
                &obs,
                &host,
                format!("proxy {} cannot listen: {e}", inst.service),
            );
            return;
        }
    };
    let mut config: Option<((u64, u64), Arc<rustls::ServerConfig>)> = None;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        refresh(&mut config, &cache, &inst.service, |k, me| {
            tls::server_config(&k.roots, me).ok()
        });
        let Some((_, cfg)) = &config else {
            // No certificate yet: refuse, as Envoy does before its first SDS response.
            log(&obs, &host, format!("proxy {} not ready", inst.service));
            continue;
        };
        tokio::task::spawn_local(handle_inbound(
            stream,
            TlsAcceptor::from(cfg.clone()),
            inst.clone(),
            host.clone(),
            cache.clone(),
            obs.clone(),
        ));
    }
}

async fn handle_inbound(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    inst: Rc<InstancePlan>,
    host: Rc<str>,
    cache: Cache,
    obs: Obs,
) {
    let dst = &inst.service;
    let mut tls = match timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream).into_fallible()).await {
        Ok(Ok(t)) => t,
        Ok(Err((e, mut io))) => {
            log(
                &obs,
                &host,
                format!("proxy {dst} rejected a handshake: {e}"),
            );
            // Read what the caller still sends before closing: closing with unread data resets
            // the connection, and turmoil may deliver that reset ahead of our TLS alert.
            let _ = timeout(LINGER, wire::read_all(&mut io)).await;
            return;
        }
        Err(_) => {
            log(&obs, &host, format!("proxy {dst} handshake timed out"));
            return;
        }
    };
    let td = cache.borrow().trust_domain.clone();
    let source = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| tls::service_of(c, &td));
    let Some(source) = source else {
        log(
            &obs,
            &host,
            format!("proxy {dst} peer has no service identity"),
        );
        let _ = tls.shutdown().await;
        return;
    };
    // Authorize with the one shared evaluation: per request for HTTP, per connection for TCP.
    if inst.http {
        crate::keepalive::serve_requests(tls, &source, &inst, &host, &cache, &obs).await;
        return;
    }
    let decision = {
        let k = cache.borrow();
        k.intentions.decide(&source, dst, k.default_allow)
    };
    if !decision.allowed {
        log(
            &obs,
            &host,
            format!("proxy {dst} denied {source}: {}", decision.reason),
        );
        let _ = tls.shutdown().await;
        linger(tls).await;
        return;
    }
    log(&obs, &host, format!("proxy {dst} admitted {source}"));
    let mut app = match timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect(("127.0.0.1", inst.app_port)),
    )
    .await
    {
        Ok(Ok(s)) => s,
        _ => {
            let _ = tls
                .write_all(&wire::response(
                    503,
                    "Service Unavailable",
                    &[],
                    "no application",
                ))
                .await;
            let _ = tls.shutdown().await;
            return;
        }
    };
    let first = format!("{PREAMBLE}{source}\n").into_bytes();
    if app.write_all(&first).await.is_err() {
        return;
    }
    // The two directions separately: `copy_bidirectional` gives up on both at the first error,
    // and the application closing its socket early (an error on the way in) would then drop the
    // answer still on its way out.
    let (mut from_caller, mut to_caller) = tokio::io::split(tls);
    let (mut from_app, mut to_app) = tokio::io::split(app);
    let inbound = async {
        let _ = tokio::io::copy(&mut from_caller, &mut to_app).await;
        let _ = to_app.shutdown().await;
    };
    let outbound = async {
        let _ = tokio::io::copy(&mut from_app, &mut to_caller).await;
        let _ = to_caller.shutdown().await;
    };
    let _ = timeout(REQUEST_TIMEOUT, async { tokio::join!(inbound, outbound) }).await;
    linger(from_caller.unsplit(to_caller)).await;
}

/// How long a proxy waits for the caller to finish before closing.
pub(crate) const LINGER: Duration = Duration::from_millis(500);

/// Reads until the caller's FIN before closing. A socket closed earlier answers the FIN with a
/// reset, and turmoil may deliver that reset ahead of data still in flight (it does not order
/// resets with data), which would cut off our last bytes.
pub(crate) async fn linger(mut tls: tokio_rustls::server::TlsStream<TcpStream>) {
    let _ = timeout(LINGER, async {
        let _ = wire::read_all(&mut tls).await;
        wire::read_all(tls.get_mut().0).await
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Upstream: the local listener the application dials, forwarding over mTLS

/// Why a call through the mesh failed.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub outcome: Outcome,
    pub handshake: bool,
    pub detail: String,
}

impl Failure {
    pub(crate) fn new(outcome: Outcome, handshake: bool, detail: impl Into<String>) -> Failure {
        Failure {
            outcome,
            handshake,
            detail: detail.into(),
        }
    }

    fn header(&self) -> &'static str {
        match self.outcome {
            Outcome::DeniedByIntention => "denied",
            Outcome::TlsRejected => "tls-rejected",
            Outcome::TimedOut => "timeout",
            Outcome::Allowed | Outcome::Unreachable => "unreachable",
        }
    }
}

/// Dials `endpoint`, performs mTLS with `cfg` and sends `request` alone on the connection;
/// returns the raw response.
pub(crate) async fn exchange(
    endpoint: (&str, u16),
    cfg: Arc<rustls::ClientConfig>,
    destination: &str,
    request: &[u8],
) -> Result<Vec<u8>, Failure> {
    let tls = crate::keepalive::dial(endpoint, cfg, destination, None).await?;
    crate::keepalive::one_shot(tls, request).await
}

async fn upstream(
    inst: Rc<InstancePlan>,
    up: Rc<UpstreamPlan>,
    host: Rc<str>,
    cache: Cache,
    obs: Obs,
    seed: u64,
) {
    let listener = match TcpListener::bind(("127.0.0.1", up.bind_port)).await {
        Ok(l) => l,
        Err(e) => {
            log(
                &obs,
                &host,
                format!(
                    "upstream {}->{} cannot listen: {e}",
                    inst.service, up.destination
                ),
            );
            return;
        }
    };
    let pool = Rc::new(crate::keepalive::Pool::new(up.http, obs.clone()));
    let router = up.chained.then(|| {
        let label = format!("chain/{host}/{}/{}", inst.service, up.destination);
        Rc::new(crate::chain::ChainProxy {
            service: inst.service.clone(),
            upstream: up.destination.clone(),
            cache: cache.clone(),
            pool: pool.clone(),
            rng: RefCell::new(crate::keys::rng(seed, &label)),
            configs: RefCell::default(),
            next: RefCell::default(),
        })
    });
    let route = Rc::new(Route {
        service: inst.service.clone(),
        up: up.clone(),
        cache,
        pool,
        router,
        next: Cell::new(0),
        config: RefCell::default(),
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::task::spawn_local(handle_upstream(stream, route.clone()));
    }
}

/// One upstream listener's way to its destination: the discovery chain, or the named service's
/// instances in turn with the proxy's TLS configuration. Chosen per request, as a request on a
/// kept connection goes wherever the sidecar routes it at that moment.
struct Route {
    service: String,
    up: Rc<UpstreamPlan>,
    cache: Cache,
    pool: Rc<crate::keepalive::Pool>,
    router: Option<Rc<crate::chain::ChainProxy>>,
    next: Cell<usize>,
    config: RefCell<Versioned<rustls::ClientConfig>>,
}

/// A TLS configuration with the (roots, leaf) versions it was built from.
type Versioned<T> = Option<((u64, u64), Arc<T>)>;

impl Route {
    /// Sends one request from the application; returns the chain's target and the answer.
    async fn send(&self, head: &[u8]) -> (Option<String>, Result<Vec<u8>, Failure>) {
        if let Some(r) = &self.router {
            return r.call(head).await;
        }
        let cfg = {
            let mut config = self.config.borrow_mut();
            refresh(&mut config, &self.cache, &self.service, |k, me| {
                tls::client_config(&k.roots, &k.trust_domain, &self.up.destination, Some(me)).ok()
            });
            config.as_ref().map(|(_, c)| c.clone())
        };
        let endpoint = {
            let k = self.cache.borrow();
            k.catalog.get(&self.up.destination).and_then(|eps| {
                let i = self.next.get();
                self.next.set(i.wrapping_add(1));
                eps.get(i % eps.len().max(1)).cloned()
            })
        };
        (
            None,
            direct(cfg, endpoint, &self.pool, &self.up, head).await,
        )
    }
}

/// The application's connection to its local upstream listener. An HTTP-family upstream keeps
/// it open for the application's next request (HTTP keep-alive on loopback, as applications and
/// Envoy do); a TCP one carries one request.
async fn handle_upstream(mut app: TcpStream, route: Rc<Route>) {
    let http = route.up.http;
    let mut wait = REQUEST_TIMEOUT;
    loop {
        let head = match timeout(wait, wire::read_head(&mut app)).await {
            Ok(Ok(h)) if !h.is_empty() => h,
            _ => break,
        };
        wait = crate::keepalive::IDLE_TIMEOUT;
        let (target, result) = route.send(&head).await;
        let reply = match result {
            Ok(bytes) => bytes,
            Err(f) => wire::response(
                503,
                "Service Unavailable",
                &[
                    ("x-sim-outcome", f.header()),
                    ("x-sim-handshake", if f.handshake { "ok" } else { "no" }),
                ],
                &f.detail,
            ),
        };
        let reply = match &target {
            Some(t) => crate::chain::with_target(reply, t),
            None => reply,
        };
        if app.write_all(&reply).await.is_err() || !http {
            break;
        }
    }
    let _ = app.shutdown().await;
    // As in `serve_app`: no reset overtaking the reply.
    let _ = timeout(LINGER, wire::read_all(&mut app)).await;
}

async fn direct(
    cfg: Option<Arc<rustls::ClientConfig>>,
    endpoint: Option<Endpoint>,
    pool: &crate::keepalive::Pool,
    up: &UpstreamPlan,
    head: &[u8],
) -> Result<Vec<u8>, Failure> {
    match (cfg, endpoint) {
        (None, _) => Err(Failure::new(
            Outcome::Unreachable,
            false,
            "no certificate yet",
        )),
        (_, None) => Err(Failure::new(
            Outcome::Unreachable,
            false,
            "no healthy endpoint",
        )),
        (Some(cfg), Some(ep)) => pool.call(&ep, cfg, &up.destination, head).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(k: &mut AgentCache, service: &str) {
        let me = Identity {
            chain: Vec::new(),
            key: Vec::new(),
        };
        k.leaves.insert(service.to_owned(), (String::new(), me, 0));
        k.leaf_changed(service);
    }

    #[test]
    fn a_proxy_rebuilds_its_tls_config_for_new_roots_and_its_own_leaf_only() {
        let cache: Cache = Rc::default();
        leaf(&mut cache.borrow_mut(), "web");
        leaf(&mut cache.borrow_mut(), "db");
        let built = Cell::new(0);
        let mut config: Option<((u64, u64), Arc<u64>)> = None;
        let mut refresh_web = || {
            refresh(&mut config, &cache, "web", |_, _| {
                built.set(built.get() + 1);
                Some(Arc::new(built.get()))
            })
        };
        refresh_web();
        refresh_web();
        assert_eq!(built.get(), 1, "kept while nothing changed");
        leaf(&mut cache.borrow_mut(), "db");
        refresh_web();
        assert_eq!(built.get(), 1, "another service's leaf leaves it alone");
        leaf(&mut cache.borrow_mut(), "web");
        refresh_web();
        assert_eq!(built.get(), 2, "its own new leaf rebuilds it");
        cache.borrow_mut().roots_changed();
        refresh_web();
        assert_eq!(built.get(), 3, "new roots rebuild it");
    }
}
