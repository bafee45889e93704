//! The mesh simulator: a deterministic turmoil simulation of a Consul Connect mesh built from a
//! loaded repository.
//!
//! One host runs the control-plane server (`mesh-control-plane`'s state machine and HTTP API, the
//! same as `mesh-gitops serve`); one host per service instance runs its agent (Consul's blocking
//! queries over HTTP), its application and its sidecar proxy. Sidecars speak real mTLS (rustls
//! over turmoil TCP) verified at simulated time, identify callers by their SPIFFE ID and
//! authorize them with `mesh-semantics`' intention evaluation, the same code the static analysis
//! uses. Declared upstreams carry traffic; an adversary probes every sidecar; faults
//! (partitions, crashes, root rotation, latency) and rollout steps happen on a schedule, the
//! latter two through the server's HTTP API. Checkers then compare what happened with the static
//! decisions of `mesh-analysis`.
//!
//! Everything random comes from the seed: turmoil's generator, the CA's keys, the control
//! plane's UUIDs and blocking-query jitter, the cluster ID; its clock is simulated time.
//! The same seed gives the same event trace, hashed into `trace_hash`.

mod check;
mod client;
mod faults;
mod keys;
mod node;
mod obs;
mod probe;
mod render;
mod server;
pub mod tls;
mod wire;

pub use faults::{Fault, FaultSpec};
pub use keys::SeededKeys;
pub use render::render_text;

use mesh_analysis::PolicyGraph;
use mesh_model::{ConfigEntry, DesiredState, EntryKind};
use mesh_semantics::intention::HttpRequest;
use node::{InstancePlan, NodePlan, Timing, UpstreamPlan};
use obs::Observations;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use wire::Endpoint;

/// How a call or a probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The destination application answered.
    Allowed,
    /// mTLS succeeded and the destination's proxy refused the connection or the request.
    DeniedByIntention,
    /// The TLS handshake or certificate verification failed.
    TlsRejected,
    /// No connection: nothing listening, a partition, a crashed host, a reset.
    Unreachable,
    TimedOut,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::DeniedByIntention => "denied-by-intention",
            Outcome::TlsRejected => "tls-rejected",
            Outcome::Unreachable => "unreachable",
            Outcome::TimedOut => "timed-out",
        }
    }
}

/// The adversarial probes run against every sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeKind {
    NoClientCert,
    /// A certificate claiming an allowed identity, signed by a CA the mesh does not trust.
    ForeignCa,
    /// A certificate from the real CA for an allowed identity, expired.
    ExpiredCert,
    /// A valid certificate for an identity intentions deny (a synthetic `probe-denied` when no
    /// service is denied; then the expected outcome is whatever the intentions decide).
    DeniedIdentity,
    /// A plain TCP connection to the application's port from another host.
    DirectToApp,
}

impl ProbeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::NoClientCert => "no-client-cert",
            ProbeKind::ForeignCa => "foreign-ca",
            ProbeKind::ExpiredCert => "expired-cert",
            ProbeKind::DeniedIdentity => "denied-identity",
            ProbeKind::DirectToApp => "direct-to-app",
        }
    }

    /// Probes whose certificate is not valid: none may reach an application.
    pub fn bad_certificate(self) -> bool {
        matches!(
            self,
            ProbeKind::NoClientCert | ProbeKind::ForeignCa | ProbeKind::ExpiredCert
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub source: String,
    pub destination: String,
    pub kind: ProbeKind,
    pub outcome: Outcome,
    pub expected: Outcome,
    /// The mTLS handshake completed (for the caller).
    pub handshake: bool,
    pub at_ms: u64,
    pub detail: String,
}

/// One declared upstream and what happened to its traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeReport {
    pub source: String,
    pub destination: String,
    /// The static decision of `mesh-analysis` for the final state.
    pub expected_allowed: bool,
    pub l7: bool,
    pub attempts: usize,
    /// Count per outcome.
    pub outcomes: BTreeMap<Outcome, usize>,
    /// Denials that came after a completed mTLS handshake (the proxy, not TLS, refused).
    pub denied_after_handshake: usize,
    /// The simulated decision once agents converged: `Some(true)` admitted, `Some(false)`
    /// denied by intentions, `None` when no call got that far.
    pub converged_allowed: Option<bool>,
    /// After the last fault healed or the last rollout step: when calls started to succeed
    /// and kept succeeding, if they did.
    pub recovered_at_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransientKind {
    /// An edge allowed before and after the rollout failed in between.
    Break,
    /// An edge denied before and after the rollout succeeded in between.
    Opening,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transient {
    pub kind: TransientKind,
    pub source: String,
    pub destination: String,
    /// Index of the last rollout step applied when it happened.
    pub step: usize,
    pub at_ms: u64,
}

/// One rollout step: write (`Some`) or delete (`None`) a config entry. Only
/// `service-intentions` change what the simulated proxies enforce; other kinds are recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutStep {
    pub kind: EntryKind,
    pub name: String,
    pub entry: Option<ConfigEntry>,
}

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub seed: u64,
    pub faults: FaultSpec,
    /// Simulated time to run; a shorter value is extended to fit the faults, rollout steps,
    /// settling and the probes.
    pub duration: Duration,
    /// turmoil's tick; 5 ms keeps long runs cheap while handshakes still take several ticks.
    pub tick: Duration,
    /// With `base`: the steps from the base state to the desired one, in the order to apply.
    pub steps: Vec<RolloutStep>,
    pub step_interval: Duration,
    /// Pack service instances onto at most this many node hosts (turmoil's cost grows with the
    /// cube of the host count); `None` gives every instance its own host.
    pub max_nodes: Option<usize>,
    /// Run the adversarial probes.
    pub probes: bool,
    /// The repository, for the replay command.
    pub repo: String,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: 1,
            faults: FaultSpec::default(),
            duration: Duration::ZERO,
            tick: Duration::from_millis(5),
            steps: Vec::new(),
            step_interval: Duration::from_secs(2),
            max_nodes: None,
            probes: true,
            repo: "<dir>".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    pub seed: u64,
    pub trace_hash: String,
    pub duration_ms: u64,
    pub hosts: Vec<String>,
    pub probes: Vec<Probe>,
    pub edges: Vec<EdgeReport>,
    pub violations: Vec<String>,
    pub transient: Vec<Transient>,
    pub replay: String,
    /// `(simulated ms, host, event)`, in the order things happened.
    #[serde(skip)]
    pub trace: Vec<(u64, String, String)>,
}

impl SimReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid fault specification: {0}")]
    Faults(String),
    #[error("the repository declares no service with a sidecar to simulate")]
    NoServices,
    #[error("the CA failed: {0}")]
    Ca(#[from] mesh_ca::CaError),
    #[error("the simulation failed: {0}")]
    Sim(String),
    #[error("invalid rollout step {index}: {reason}")]
    Step { index: usize, reason: String },
}

/// The fixed wall clock at simulated time zero (2030-01-01T00:00:00Z): certificates, their
/// validity and every verification use it, never the machine's clock.
pub const EPOCH_UNIX: u64 = 1_893_456_000;

const WARMUP: Duration = Duration::from_secs(1);
const SETTLE: Duration = Duration::from_secs(4);
const PROBE_PHASE: Duration = Duration::from_secs(2);
/// How long after the last fault or rollout step an allowed edge may take to work again.
const LIVENESS_BOUND: Duration = Duration::from_secs(4);
const POLL: Duration = Duration::from_millis(250);
const TRAFFIC_EVERY: Duration = Duration::from_millis(300);
const DRIVER: &str = "sim";

/// Everything the run needs that does not depend on the simulation itself.
struct Setup {
    nodes: Vec<NodePlan>,
    catalog: BTreeMap<String, Vec<Endpoint>>,
    /// Service -> its node hosts.
    hosts_of: BTreeMap<String, Vec<String>>,
    /// Declared edges (source, destination), deduplicated.
    edges: BTreeSet<(String, String)>,
    http: BTreeMap<String, bool>,
}

fn usable(name: &str) -> bool {
    !name.is_empty() && !name.contains("${") && name != "*"
}

/// A request the caller's intentions are meant to admit: for an L7 intention, built from its
/// first `allow` permission (the evaluation itself stays in `mesh-semantics`).
fn request_for(
    state: &DesiredState,
    graph: &PolicyGraph,
    src: &str,
    dst: &str,
    http: bool,
) -> HttpRequest {
    let mut req = HttpRequest {
        method: "GET".into(),
        path: "/".into(),
        headers: vec![("host".into(), dst.to_owned())],
    };
    if !http {
        return req;
    }
    let Some(m) = graph.set.first_match(src, dst).filter(|m| m.l7) else {
        return req;
    };
    let perm = state
        .intentions()
        .filter(|e| e.name == m.destination)
        .flat_map(|e| &e.sources)
        .filter(|s| s.name == m.source && s.peer.is_none() && s.sameness_group.is_none())
        .flat_map(|s| &s.permissions)
        .find(|p| p.action == mesh_model::IntentionAction::Allow && p.http.is_some());
    if let Some(http) = perm.and_then(|p| p.http.as_ref()) {
        if let Some(m) = http.methods.first() {
            req.method = m.to_ascii_uppercase();
        }
        if let Some(p) = http.path_exact.as_ref().or(http.path_prefix.as_ref()) {
            req.path = p.clone();
        }
        for h in http.header.iter().filter(|h| !h.invert) {
            let value = if let Some(v) = &h.exact {
                v.clone()
            } else if let Some(v) = &h.prefix {
                v.clone()
            } else if let Some(v) = &h.suffix {
                format!("x{v}")
            } else {
                "1".into()
            };
            req.headers.push((h.name.to_ascii_lowercase(), value));
        }
    }
    req
}

fn layout(state: &DesiredState, graph: &PolicyGraph, opts: &SimOptions) -> Result<Setup, SimError> {
    let services: Vec<&mesh_model::Service> = state
        .services
        .iter()
        .filter(|s| (s.sidecar || s.native) && usable(&s.name))
        .collect();
    if services.is_empty() {
        return Err(SimError::NoServices);
    }
    let mut http = BTreeMap::new();
    for s in &services {
        let p = mesh_semantics::config_entry::protocol_of(&s.name, &state.config_entries);
        http.insert(
            s.name.clone(),
            mesh_semantics::config_entry::is_http_like(&p),
        );
    }
    let mut nodes: Vec<NodePlan> = Vec::new();
    let mut used: Vec<BTreeSet<u16>> = Vec::new();
    let mut node_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut catalog: BTreeMap<String, Vec<Endpoint>> = BTreeMap::new();
    let mut hosts_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut edges = BTreeSet::new();
    let mut seq = 0usize;
    fn free(used: &mut BTreeSet<u16>, from: u16) -> u16 {
        let mut p = from;
        while used.contains(&p) {
            p = p.wrapping_add(1).max(1024);
        }
        used.insert(p);
        p
    }
    // Packing applies only when there are more instances than allowed hosts, so that small
    // meshes keep one named host per instance whatever the cap.
    let instances: usize = services.iter().map(|s| s.instances.max(1) as usize).sum();
    for s in &services {
        let count = s.instances.max(1);
        for k in 0..count {
            let host = match opts.max_nodes {
                Some(m) if m > 0 && instances > m => format!("node-{}", seq % m),
                _ if count == 1 => format!("node-{}", s.name),
                _ => format!("node-{}-{k}", s.name),
            };
            seq += 1;
            let ni = *node_index.entry(host.clone()).or_insert_with(|| {
                nodes.push(NodePlan {
                    host: host.clone(),
                    instances: Vec::new(),
                    default_allow: state.settings.acl.default_intention_allows(),
                });
                used.push([server::HTTP_PORT].into_iter().collect());
                nodes.len() - 1
            });
            let ports = &mut used[ni];
            let app_port = free(ports, 20000);
            let inbound_port = free(ports, 21000);
            let mut ups = Vec::new();
            for u in s.upstreams.iter().filter(|u| usable(&u.destination_name)) {
                let declared = u.local_bind_port.max(1024);
                let bind_port = free(ports, declared);
                edges.insert((s.name.clone(), u.destination_name.clone()));
                let dst_http = http.get(&u.destination_name).copied().unwrap_or(false);
                ups.push(UpstreamPlan {
                    destination: u.destination_name.clone(),
                    bind_port,
                    request: request_for(state, graph, &s.name, &u.destination_name, dst_http),
                });
            }
            nodes[ni].instances.push(InstancePlan {
                service: s.name.clone(),
                app_port,
                inbound_port,
                http: http.get(&s.name).copied().unwrap_or(false),
                upstreams: ups,
            });
            catalog.entry(s.name.clone()).or_default().push(Endpoint {
                host: host.clone(),
                port: inbound_port,
            });
            let hs = hosts_of.entry(s.name.clone()).or_default();
            if !hs.contains(&host) {
                hs.push(host.clone());
            }
        }
    }
    Ok(Setup {
        nodes,
        catalog,
        hosts_of,
        edges,
        http,
    })
}

/// Resolves a host group of the fault specification.
fn group(name: &str, setup: &Setup) -> Option<Vec<String>> {
    match name {
        "server" | "servers" => Some(vec![server::HOST.to_owned()]),
        "probe" => Some(vec![probe::HOST.to_owned()]),
        "agent" | "agents" | "nodes" => Some(setup.nodes.iter().map(|n| n.host.clone()).collect()),
        _ => {
            if setup.nodes.iter().any(|n| n.host == name) {
                Some(vec![name.to_owned()])
            } else {
                setup.hosts_of.get(name).cloned()
            }
        }
    }
}

fn partition_sides(
    a: &str,
    b: &str,
    setup: &Setup,
) -> Result<(Vec<String>, Vec<String>), SimError> {
    if !b.is_empty() {
        return match (group(a, setup), group(b, setup)) {
            (Some(x), Some(y)) => Ok((x, y)),
            _ => Err(SimError::Faults(format!(
                "unknown host in partition {a}/{b}"
            ))),
        };
    }
    // `a-b` with hyphens inside host names: the first split where both sides are known.
    for (i, _) in a.match_indices('-') {
        if let (Some(x), Some(y)) = (group(&a[..i], setup), group(&a[i + 1..], setup)) {
            return Ok((x, y));
        }
    }
    Err(SimError::Faults(format!(
        "partition {a:?}: expected two host groups (server, agents, probe, a node or a service) \
         separated by '-' or '/'"
    )))
}

#[derive(Debug, Clone)]
enum Action {
    Partition(Vec<String>, Vec<String>),
    Repair(Vec<String>, Vec<String>),
    Crash(Vec<String>),
    Restart(Vec<String>),
    Rotate,
    Step(usize),
}

fn cluster_id(seed: u64) -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    keys::rng(seed, "cluster-id").fill_bytes(&mut b);
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The outcome the static analysis predicts for a valid certificate of `src` sending `req` to
/// `dst`; for an L7 destination the request is decided by the shared evaluation.
fn expected_for(
    graph: &PolicyGraph,
    src: &str,
    dst: &str,
    http: bool,
    req: &HttpRequest,
) -> Outcome {
    let d = graph.decide(src, dst);
    if !d.allowed {
        return Outcome::DeniedByIntention;
    }
    if d.l7
        && http
        && !graph
            .set
            .decide_request(src, dst, req, graph.default_allow)
            .allowed
    {
        return Outcome::DeniedByIntention;
    }
    Outcome::Allowed
}

/// The probes against every sidecar, with their certificates, issued before the run from seeded
/// keys: a foreign CA's and an expired one claiming an identity the intentions admit, and a
/// valid one for an identity they deny.
fn plan_probes(
    state: &DesiredState,
    graph: &PolicyGraph,
    setup: &Setup,
    opts: &SimOptions,
    ctx: &mesh_control_plane::http::Ctx,
    params: &mesh_ca::CaParams,
    probe_at: Duration,
) -> Result<Vec<probe::ProbePlan>, SimError> {
    let keys = &*ctx.env.keys;
    ctx.store
        .sign_out_of_band(|ca| sign_probes(state, graph, setup, opts, ca, keys, params, probe_at))
        .map_err(|e| SimError::Sim(e.to_string()))?
}

/// [`plan_probes`] with the server's CA.
#[allow(clippy::too_many_arguments)]
fn sign_probes(
    state: &DesiredState,
    graph: &PolicyGraph,
    setup: &Setup,
    opts: &SimOptions,
    ca: &mut mesh_ca::CaState,
    keys: &dyn mesh_ca::KeyFactory,
    params: &mesh_ca::CaParams,
    probe_at: Duration,
) -> Result<Vec<probe::ProbePlan>, SimError> {
    let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_UNIX);
    // Certificates that must be valid when the probes run are issued for that moment, so that a
    // short leaf TTL cannot turn them into expired ones. They come from the server's CA directly
    // (its state, not its API: the probes are the adversary's, not an agent's).
    let at_probe = epoch + probe_at;
    let mut probe_plans = Vec::new();
    let foreign_keys = SeededKeys::new(opts.seed, "foreign-ca");
    let mut foreign =
        mesh_ca::CaState::bootstrap(&ca.cluster_id, params.clone(), epoch, &foreign_keys)?;
    let expired_at = epoch - params.leaf_ttl - Duration::from_secs(3600);
    // Leaves per claimed identity: forged by the foreign CA, expired, and valid but denied.
    let mut forged: BTreeMap<String, tls::Identity> = BTreeMap::new();
    let mut expired: BTreeMap<String, tls::Identity> = BTreeMap::new();
    let mut valid: BTreeMap<String, tls::Identity> = BTreeMap::new();
    let known: Vec<&String> = graph.services.iter().filter(|s| usable(s)).collect();
    let permanently_down: BTreeSet<String> = opts
        .faults
        .faults
        .iter()
        .filter_map(|f| match f {
            Fault::Crash {
                host,
                restart: None,
                ..
            } => group(host, setup),
            _ => None,
        })
        .flatten()
        .collect();
    for (dst, eps) in &setup.catalog {
        let http = setup.http.get(dst).copied().unwrap_or(false);
        // The identity a stolen or forged certificate would claim: one the intentions admit.
        let allowed_src = setup
            .edges
            .iter()
            .filter(|(_, d)| d == dst)
            .map(|(s, _)| s)
            .chain(known.iter().copied())
            .find(|s| *s != dst && graph.decide(s, dst).allowed)
            .cloned()
            .unwrap_or_else(|| "probe-foreign".to_owned());
        let denied_src = known
            .iter()
            .find(|s| **s != dst && !graph.decide(s, dst).allowed)
            .map(|s| (*s).clone())
            .unwrap_or_else(|| "probe-denied".to_owned());
        let dc = state.settings.datacenter.clone();
        if !forged.contains_key(&allowed_src) {
            let f = foreign.issue_leaf(&allowed_src, &dc, at_probe, &foreign_keys)?;
            forged.insert(allowed_src.clone(), tls::Identity::from_leaf(&f));
            let x = ca.issue_leaf(&allowed_src, &dc, expired_at, keys)?;
            expired.insert(allowed_src.clone(), tls::Identity::from_leaf(&x));
        }
        if !valid.contains_key(&denied_src) {
            let v = ca.issue_leaf(&denied_src, &dc, at_probe, keys)?;
            valid.insert(denied_src.clone(), tls::Identity::from_leaf(&v));
        }
        for ep in eps.iter().filter(|e| !permanently_down.contains(&e.host)) {
            let app_port = setup
                .nodes
                .iter()
                .find(|n| n.host == ep.host)
                .and_then(|n| n.instances.iter().find(|i| i.inbound_port == ep.port))
                .map(|i| i.app_port)
                .unwrap_or_default();
            let mk = |kind, source: &str, port, identity: Option<tls::Identity>, expected| {
                probe::ProbePlan {
                    kind,
                    source: source.to_owned(),
                    destination: dst.clone(),
                    host: ep.host.clone(),
                    port,
                    identity,
                    expected,
                }
            };
            probe_plans.push(mk(
                ProbeKind::NoClientCert,
                "anonymous",
                ep.port,
                None,
                Outcome::TlsRejected,
            ));
            probe_plans.push(mk(
                ProbeKind::ForeignCa,
                &allowed_src,
                ep.port,
                forged.get(&allowed_src).cloned(),
                Outcome::TlsRejected,
            ));
            probe_plans.push(mk(
                ProbeKind::ExpiredCert,
                &allowed_src,
                ep.port,
                expired.get(&allowed_src).cloned(),
                Outcome::TlsRejected,
            ));
            probe_plans.push(mk(
                ProbeKind::DeniedIdentity,
                &denied_src,
                ep.port,
                valid.get(&denied_src).cloned(),
                expected_for(
                    graph,
                    &denied_src,
                    dst,
                    http,
                    &probe::request(dst, ProbeKind::DeniedIdentity, probe_plans.len()),
                ),
            ));
            probe_plans.push(mk(
                ProbeKind::DirectToApp,
                "probe",
                app_port,
                None,
                Outcome::Unreachable,
            ));
        }
    }
    Ok(probe_plans)
}

/// Simulates `state` (starting from `base` and applying `opts.steps` when given) and checks it.
pub fn simulate(
    state: &DesiredState,
    base: Option<&DesiredState>,
    opts: &SimOptions,
) -> Result<SimReport, SimError> {
    let graph = PolicyGraph::build(state);
    let before = base.map(PolicyGraph::build);
    let setup = layout(state, &graph, opts)?;
    let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_UNIX);
    let obs: obs::Obs = Rc::new(RefCell::new(Observations::default()));

    // The CA. The simulator's keys are P-256 (the default); other key types keep their TTLs.
    let mut params = mesh_ca::CaParams::default();
    if let Some(cfg) = &state.ca_config {
        if let Ok(s) = mesh_semantics::ca_config::CaSettings::from_config(cfg) {
            params.leaf_ttl = s.leaf_cert_ttl;
            params.root_ttl = s.root_cert_ttl;
            if (s.private_key_type.as_str(), s.private_key_bits) != ("ec", 256) {
                obs.borrow_mut().log(
                    0,
                    DRIVER,
                    format!(
                        "CA keys {} {} simulated as ec 256",
                        s.private_key_type, s.private_key_bits
                    ),
                );
            }
        }
    }
    if let Some(ttl) = opts.faults.leaf_ttl {
        params.leaf_ttl = ttl;
    }
    // The control plane: the same state machine and HTTP API as `serve`, in memory, with
    // simulated time and seeded IDs and keys. The CA configuration keeps the repository's TTLs
    // (validation skipped for a `leaf-ttl` fault shorter than Consul allows).
    let mut ca_config = serde_json::Map::new();
    ca_config.insert(
        "LeafCertTTL".into(),
        format!("{}ms", params.leaf_ttl.as_millis()).into(),
    );
    ca_config.insert(
        "RootCertTTL".into(),
        format!("{}s", params.root_ttl.as_secs()).into(),
    );
    ca_config.insert("PrivateKeyType".into(), "ec".into());
    ca_config.insert("PrivateKeyBits".into(), 256.into());
    if params.leaf_ttl < Duration::from_secs(3600) {
        ca_config.insert("SkipValidate".into(), true.into());
    }
    let cid = cluster_id(opts.seed);
    let env = mesh_control_plane::env::Env {
        clock: Arc::new(move || {
            turmoil::since_epoch()
                .map(|d| SystemTime::UNIX_EPOCH + d)
                .unwrap_or(epoch)
        }),
        ids: mesh_control_plane::env::Ids::seeded(opts.seed),
        keys: Arc::new(SeededKeys::new(opts.seed, "ca")),
    };
    let store = mesh_control_plane::store::Store::in_memory();
    store
        .ensure_ca_with(|| cid, params.clone(), ca_config, &*env.keys, epoch)
        .map_err(|e| SimError::Sim(e.to_string()))?;
    let server_opts = mesh_control_plane::ServerOptions {
        datacenter: state.settings.datacenter.clone(),
        node: server::HOST.to_owned(),
        jitter_seed: opts.seed,
        ..Default::default()
    };
    let ctx = mesh_control_plane::context(&server_opts, store, env)
        .map_err(|e| SimError::Sim(e.to_string()))?;
    // The desired state (the base one for a rollout): every config entry, and the catalog with
    // each instance and its sidecar.
    let start_entries = base.unwrap_or(state);
    let mut registrations = Vec::new();
    for n in &setup.nodes {
        for i in &n.instances {
            let id = format!("{}-{}", i.service, i.app_port);
            let reg = |id: String, name: String, kind: &str, port: u16, proxy| {
                mesh_control_plane::store::CatalogService {
                    node: n.host.clone(),
                    address: n.host.clone(),
                    id,
                    name,
                    kind: kind.to_owned(),
                    port,
                    service_address: String::new(),
                    tags: Vec::new(),
                    meta: BTreeMap::new(),
                    proxy,
                    native: false,
                    create_index: 0,
                    modify_index: 0,
                }
            };
            registrations.push(reg(id.clone(), i.service.clone(), "", i.app_port, None));
            registrations.push(reg(
                format!("{id}-sidecar-proxy"),
                format!("{}-sidecar-proxy", i.service),
                "connect-proxy",
                i.inbound_port,
                Some(serde_json::json!({
                    "DestinationServiceName": i.service,
                    "DestinationServiceID": id,
                    "LocalServiceAddress": "127.0.0.1",
                    "LocalServicePort": i.app_port,
                })),
            ));
        }
    }
    let loaded = ctx
        .store
        .put_entries(start_entries.config_entries.iter().cloned())
        .and_then(|_| ctx.store.put_catalog(registrations));
    loaded.map_err(|e| SimError::Sim(e.to_string()))?;
    let trust_domain = ctx
        .store
        .read()
        .ca
        .as_ref()
        .map(|c| c.trust_domain.clone())
        .unwrap_or_default();
    let cp = Rc::new(server::ControlPlane {
        ctx,
        history: RefCell::new(Vec::new()),
        ops: RefCell::new(Default::default()),
        wake: Default::default(),
        steps: opts.steps.clone(),
        leaves_logged: Default::default(),
    });
    cp.record_version(0);
    obs.borrow_mut().log(
        0,
        DRIVER,
        format!("CA bootstrapped for trust domain {trust_domain}"),
    );

    // Rollout steps are checked before anything runs.
    for (index, s) in opts.steps.iter().enumerate() {
        match &s.entry {
            Some(e) if e.kind() != s.kind || e.name() != s.name => {
                return Err(SimError::Step {
                    index,
                    reason: format!(
                        "the entry is {} {:?}, the step names {} {:?}",
                        e.kind().as_str(),
                        e.name(),
                        s.kind.as_str(),
                        s.name
                    ),
                })
            }
            _ => {}
        }
    }

    // Timeline.
    let heal = opts.faults.heal_time();
    let step_at = |i: usize| WARMUP * 2 + opts.step_interval * i as u32;
    let last_step = if opts.steps.is_empty() {
        Duration::ZERO
    } else {
        step_at(opts.steps.len() - 1)
    };
    let last_event = heal.max(last_step);
    let probe_at = (last_event + SETTLE).max(opts.duration.saturating_sub(PROBE_PHASE));
    let end = probe_at + PROBE_PHASE;

    let probe_plans = if opts.probes {
        plan_probes(state, &graph, &setup, opts, &cp.ctx, &params, probe_at)?
    } else {
        Vec::new()
    };

    // The schedule of faults and steps, applied between simulation steps.
    let mut actions: Vec<(Duration, usize, Action)> = Vec::new();
    for f in &opts.faults.faults {
        let n = actions.len();
        match f {
            Fault::Partition { a, b, from, until } => {
                let (x, y) = partition_sides(a, b, &setup)?;
                actions.push((*from, n, Action::Partition(x.clone(), y.clone())));
                if let Some(u) = until {
                    actions.push((*u, n + 1, Action::Repair(x, y)));
                }
            }
            Fault::Crash { host, at, restart } => {
                let hs = group(host, &setup)
                    .ok_or_else(|| SimError::Faults(format!("unknown host {host:?} to crash")))?;
                actions.push((*at, n, Action::Crash(hs.clone())));
                if let Some(r) = restart {
                    actions.push((*r, n + 1, Action::Restart(hs)));
                }
            }
            Fault::Rotate { at } => actions.push((*at, n, Action::Rotate)),
        }
    }
    for i in 0..opts.steps.len() {
        let n = actions.len();
        actions.push((step_at(i), n, Action::Step(i)));
    }
    actions.sort_by_key(|(t, n, _)| (*t, *n));

    let latency = opts.faults.latency.unwrap_or(Duration::from_millis(2));
    let mut sim = turmoil::Builder::new()
        .rng_seed(opts.seed)
        .epoch(epoch)
        // A zero tick would never advance time.
        .tick_duration(opts.tick.max(Duration::from_micros(100)))
        .simulation_duration(end + Duration::from_secs(10))
        .min_message_latency(Duration::from_millis(1).min(latency))
        .max_message_latency(latency)
        // Listener backlogs are sized by this; many callers may dial one sidecar at once.
        .tcp_capacity(4096)
        .build();
    let mut hosts = vec![server::HOST.to_owned()];
    {
        let (cp, obs) = (cp.clone(), obs.clone());
        sim.host(server::HOST, move || server::serve(cp.clone(), obs.clone()));
    }
    let timing = Timing {
        poll: POLL,
        traffic_start: WARMUP,
        traffic_every: TRAFFIC_EVERY,
    };
    for n in &setup.nodes {
        let plan = Rc::new(n.clone());
        let obs = obs.clone();
        hosts.push(n.host.clone());
        sim.host(n.host.as_str(), move || {
            node::run(plan.clone(), obs.clone(), timing)
        });
    }
    if opts.probes {
        let plans = Rc::new(probe_plans);
        let obs = obs.clone();
        hosts.push(probe::HOST.to_owned());
        sim.host(probe::HOST, move || {
            probe::run(plans.clone(), probe_at, obs.clone())
        });
    }

    let mut applied: Vec<(u64, usize)> = Vec::new();
    let mut next = 0;
    while sim.elapsed() < end {
        while next < actions.len() && actions[next].0 <= sim.elapsed() {
            let t = sim.elapsed();
            let ms = t.as_millis() as u64;
            let event = match &actions[next].2 {
                Action::Partition(a, b) => {
                    for x in a {
                        for y in b {
                            sim.partition(x.as_str(), y.as_str());
                        }
                    }
                    format!("partition {} / {}", a.join(","), b.join(","))
                }
                Action::Repair(a, b) => {
                    for x in a {
                        for y in b {
                            sim.repair(x.as_str(), y.as_str());
                        }
                    }
                    format!("repair {} / {}", a.join(","), b.join(","))
                }
                Action::Crash(hs) => {
                    for h in hs {
                        sim.crash(h.as_str());
                    }
                    format!("crash {}", hs.join(","))
                }
                Action::Restart(hs) => {
                    for h in hs {
                        sim.bounce(h.as_str());
                    }
                    format!("restart {}", hs.join(","))
                }
                Action::Rotate => {
                    cp.push(server::Op::Rotate);
                    "rotate the CA root (cross-signed)".to_owned()
                }
                Action::Step(i) => {
                    let s = &opts.steps[*i];
                    applied.push((ms, *i));
                    cp.push(server::Op::Step(*i));
                    format!(
                        "step {i}: {} {} {}",
                        if s.entry.is_some() { "write" } else { "delete" },
                        s.kind.as_str(),
                        s.name
                    )
                }
            };
            obs.borrow_mut().log(ms, DRIVER, event);
            next += 1;
        }
        sim.step().map_err(|e| SimError::Sim(e.to_string()))?;
    }

    let end_ms = sim.elapsed().as_millis() as u64;
    drop(sim);
    let cp = Rc::try_unwrap(cp)
        .map_err(|_| SimError::Sim("the control plane is still shared".into()))?;
    let final_roots_index = cp.roots_index();
    let history = cp.history.into_inner();
    let obs = Rc::try_unwrap(obs)
        .map(RefCell::into_inner)
        .map_err(|_| SimError::Sim("observations are still shared".into()))?;
    let input = check::Input {
        setup_hosts: setup.nodes.iter().map(|n| n.host.clone()).collect(),
        hosts_of: &setup.hosts_of,
        edges: &setup.edges,
        http: &setup.http,
        graph: &graph,
        before: before.as_ref(),
        history: &history,
        final_roots_index,
        down_groups: opts
            .faults
            .faults
            .iter()
            .filter_map(|f| match f {
                Fault::Crash { host, at, restart } => group(host, &setup).map(|hs| {
                    (
                        hs,
                        at.as_millis() as u64,
                        restart.map(|r| r.as_millis() as u64),
                    )
                }),
                _ => None,
            })
            .collect(),
        last_event_ms: last_event.as_millis() as u64,
        liveness_bound_ms: LIVENESS_BOUND.as_millis() as u64,
        applied_steps: &applied,
        end_ms,
    };
    let checked = check::run(&input, &obs);
    let mut replay = format!("mesh-gitops simulate {} --seed {}", opts.repo, opts.seed);
    if !opts.faults.text.is_empty() {
        replay.push_str(&format!(" --faults '{}'", opts.faults.text));
    }
    let mut probes = obs.probes.clone();
    probes.sort_by(|a, b| {
        (&a.destination, a.kind, &a.source).cmp(&(&b.destination, b.kind, &b.source))
    });
    Ok(SimReport {
        seed: opts.seed,
        trace_hash: obs.trace_hash(),
        duration_ms: end_ms,
        hosts,
        probes,
        edges: checked.edges,
        violations: checked.violations,
        transient: checked.transient,
        replay,
        trace: obs.trace,
    })
}
