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

mod chain;
mod check;
mod client;
mod faults;
mod keepalive;
mod keys;
mod node;
mod obs;
mod probe;
mod render;
mod run;
mod server;
pub mod tls;
mod traffic;
mod wire;

pub use faults::{Fault, FaultSpec};
pub use keys::SeededKeys;
pub use render::render_text;
pub use run::simulate;

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
    /// The static decision of `mesh-analysis` for the final state; for an upstream routed by
    /// its discovery chain, whether some target of the chain is allowed (each target is in
    /// `SimReport::targets`).
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
    /// The intentions refused this declared upstream's requests and none got through once
    /// converged: the deciding intention, as the shared evaluation words it (the decision
    /// `check` reports as `E1001`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<String>,
}

impl EdgeReport {
    /// Requests that reached the destination's application.
    pub fn delivered(&self) -> usize {
        self.outcomes.get(&Outcome::Allowed).copied().unwrap_or(0)
    }

    /// Whether the edge carried traffic: requests got through, and the intentions do not deny it.
    pub fn carried(&self) -> bool {
        self.delivered() > 0 && self.denied_by.is_none()
    }

    /// One line for a denied declared upstream, the same in every rendering: who, how many
    /// requests were refused, and the deciding intention.
    pub fn denial(&self) -> Option<String> {
        let why = self.denied_by.as_ref()?;
        let refused = self
            .outcomes
            .get(&Outcome::DeniedByIntention)
            .copied()
            .unwrap_or(0);
        Some(format!(
            "{} -> {}: declared upstream denied, {refused} of {} request(s) refused by the intentions ({why})",
            self.source, self.destination, self.attempts
        ))
    }
}

/// One target of a declared upstream's discovery chain (a route's, a split's or a failover's
/// service) and what happened to the requests the sidecar sent there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetReport {
    pub source: String,
    pub upstream: String,
    /// The service the chain sent the requests to.
    pub target: String,
    /// The static decision for the target (`mesh-analysis` `chains`).
    pub expected_allowed: bool,
    /// Requests the target's application answered.
    pub allowed: usize,
    /// Requests the target's intentions refused.
    pub denied: usize,
    /// Requests that reached no decision (unreachable, timed out, TLS rejected).
    pub failed: usize,
    /// The intentions refused the requests sent to this target and none got through once
    /// converged: the deciding intention (what `check` reports as `E1014`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<String>,
}

impl TargetReport {
    /// One line for a denied target, the same in every rendering.
    pub fn denial(&self) -> Option<String> {
        let why = self.denied_by.as_ref()?;
        Some(format!(
            "{} -> {} -> target {}: {} of {} request(s) refused by the target's intentions ({why})",
            self.source,
            self.upstream,
            self.target,
            self.denied,
            self.allowed + self.denied + self.failed
        ))
    }
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
    /// Per target of each upstream routed by its discovery chain.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetReport>,
    pub violations: Vec<String>,
    pub transient: Vec<Transient>,
    /// Calls the applications made on their declared upstreams.
    pub calls: usize,
    /// mTLS handshakes the sidecars started for those calls: one per call of a TCP upstream,
    /// one per pooled connection opened for an HTTP-family one (the probes' are not counted).
    pub handshakes: usize,
    /// Wall time the sidecars spent polling those handshakes (the client side): what the
    /// benchmark compares with raw in-memory handshakes. Machine-dependent, so never rendered.
    #[serde(skip)]
    pub handshake_time: Duration,
    pub replay: String,
    /// `(simulated ms, host, event)`, in the order things happened.
    #[serde(skip)]
    pub trace: Vec<(u64, String, String)>,
}

impl SimReport {
    /// No violation, and no declared upstream denied by the intentions, at the upstream or at a
    /// target of its discovery chain (`check` fails those too).
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
            && self.denied().next().is_none()
            && self.denied_targets().next().is_none()
    }

    /// The chain targets whose requests the intentions refused.
    pub fn denied_targets(&self) -> impl Iterator<Item = &TargetReport> {
        self.targets.iter().filter(|t| t.denied_by.is_some())
    }

    /// The declared upstreams whose requests the intentions refused.
    pub fn denied(&self) -> impl Iterator<Item = &EdgeReport> {
        self.edges.iter().filter(|e| e.denied_by.is_some())
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
    /// The upstreams routed by their discovery chain.
    chained: BTreeSet<String>,
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

/// The upstreams whose discovery chain is more than the default resolution of the service
/// itself (a router, splitter or resolver of their own that compiles, in the desired state or
/// the base one): only their agents watch the chain and only their sidecars route by it, which
/// keeps the watches of a large mesh to those that matter. A chain that does not compile is
/// `check`'s error (`E0426`); its upstream goes to the service itself.
fn chained(state: &DesiredState, base: Option<&DesiredState>) -> BTreeSet<String> {
    use mesh_semantics::chain::{compile, ChainIndex};
    let dc = &state.settings.datacenter;
    let head = ChainIndex::new(&state.config_entries, dc);
    let base = base.map(|b| ChainIndex::new(&b.config_entries, dc));
    let routed = |ix: &ChainIndex<'_>, u: &str| ix.has_entries(u) && compile(ix, u).is_ok();
    state
        .services
        .iter()
        .flat_map(|s| &s.upstreams)
        .map(|u| &u.destination_name)
        .filter(|u| usable(u) && (routed(&head, u) || base.as_ref().is_some_and(|b| routed(b, u))))
        .cloned()
        .collect()
}

fn layout(
    state: &DesiredState,
    base: Option<&DesiredState>,
    graph: &PolicyGraph,
    opts: &SimOptions,
) -> Result<Setup, SimError> {
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
    let chained = chained(state, base);
    let ix =
        mesh_semantics::chain::ChainIndex::new(&state.config_entries, &state.settings.datacenter);
    let chains: BTreeMap<&String, mesh_semantics::chain::CompiledChain> = chained
        .iter()
        .filter_map(|u| Some((u, mesh_semantics::chain::compile(&ix, u).ok()?)))
        .collect();
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
                    seed: opts.seed,
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
                let request = request_for(state, graph, &s.name, &u.destination_name, dst_http);
                ups.push(UpstreamPlan {
                    destination: u.destination_name.clone(),
                    bind_port,
                    requests: chain::requests(&request, chains.get(&u.destination_name)),
                    http: dst_http,
                    chained: chained.contains(&u.destination_name),
                });
            }
            nodes[ni].instances.push(InstancePlan {
                service: s.name.clone(),
                app_port,
                inbound_port,
                http: http.get(&s.name).copied().unwrap_or(false),
                upstreams: ups,
                meta: s.meta.clone(),
            });
            catalog.entry(s.name.clone()).or_default().push(Endpoint {
                host: host.clone(),
                port: inbound_port,
                id: format!("{}-{app_port}-sidecar-proxy", s.name),
                meta: s.meta.clone(),
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
        chained,
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
// The plan's inputs plus the CA borrowed inside the store's out-of-band signing closure; a
// struct for one call would only rename them.
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
