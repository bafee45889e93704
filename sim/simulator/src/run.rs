//! The driver of one run: the control plane and hosts set up from the plan, faults and rollout
//! steps applied on schedule between simulation steps, then the checkers over what was observed.

use super::*;
use faults::Fault;

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

/// Simulates `state` (starting from `base` and applying `opts.steps` when given) and checks it.
pub fn simulate(
    state: &DesiredState,
    base: Option<&DesiredState>,
    opts: &SimOptions,
) -> Result<SimReport, SimError> {
    let graph = PolicyGraph::build(state);
    let before = base.map(PolicyGraph::build);
    let setup = layout(state, base, &graph, opts)?;
    let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_UNIX);
    let obs: obs::Obs = Rc::new(RefCell::new(Observations::default()));

    let (cp, params) = control_plane(state, base.unwrap_or(state), &setup, opts, epoch, &obs)?;

    check_steps(&opts.steps)?;

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

    let actions = schedule(opts, &setup, step_at)?;

    let latency = opts.faults.latency.unwrap_or(Duration::from_millis(2));
    let mut sim = turmoil::Builder::new()
        .rng_seed(opts.seed)
        .epoch(epoch)
        // A zero tick would never advance time.
        .tick_duration(opts.tick.max(Duration::from_micros(100)))
        .simulation_duration(end + Duration::from_secs(10))
        .min_message_latency(Duration::from_millis(1).min(latency))
        .max_message_latency(latency)
        // Listener backlogs are sized by this; many callers may dial one sidecar at once, and
        // every agent's watches dial the server together at start (about 4,000 for 1,000
        // services on 32 hosts). A full backlog is a panic in turmoil, not a refusal.
        .tcp_capacity(1 << 16)
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

    // The simulator's own log, at DEBUG under `mesh_sim`: the commands that run it show their
    // own events at INFO, not these.
    for h in &hosts {
        tracing::debug!(seed = opts.seed, host = %h, "simulated host");
    }
    let mut applied: Vec<(u64, usize)> = Vec::new();
    let mut next = 0;
    while sim.elapsed() < end {
        while next < actions.len() && actions[next].0 <= sim.elapsed() {
            let t = sim.elapsed();
            let ms = t.as_millis() as u64;
            let event = perform(
                &mut sim,
                &actions[next].2,
                &cp,
                &opts.steps,
                &mut applied,
                ms,
            );
            tracing::debug!(seed = opts.seed, at_ms = ms, %event, "simulation driver");
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
    // The static analysis of the chains, per target service, to compare the simulated
    // decisions with.
    let chain_targets: BTreeMap<(String, String, String), (bool, String)> =
        mesh_analysis::chains::edges(state, &graph)
            .into_iter()
            .map(|e| ((e.source, e.upstream, e.target), (e.allowed, e.reason)))
            .collect();
    let obs = Rc::try_unwrap(obs)
        .map(RefCell::into_inner)
        .map_err(|_| SimError::Sim("observations are still shared".into()))?;
    let input = check::Input {
        setup_hosts: setup.nodes.iter().map(|n| n.host.clone()).collect(),
        hosts_of: &setup.hosts_of,
        edges: &setup.edges,
        chained: &setup.chained,
        chain_targets: &chain_targets,
        http: &setup.http,
        graph: &graph,
        before: before.as_ref(),
        history: &history,
        final_roots_index,
        down_groups: down_groups(opts, &setup),
        last_event_ms: last_event.as_millis() as u64,
        liveness_bound_ms: LIVENESS_BOUND.as_millis() as u64,
        applied_steps: &applied,
        end_ms,
    };
    let checked = check::run(&input, &obs);
    tracing::debug!(
        seed = opts.seed,
        trace_hash = %obs.trace_hash(),
        end_ms,
        violations = checked.violations.len(),
        "simulation finished"
    );
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
        targets: checked.targets,
        violations: checked.violations,
        transient: checked.transient,
        calls: obs.attempts.len(),
        handshakes: obs.handshakes,
        handshake_time: obs.handshake_time,
        replay,
        trace: obs.trace,
    })
}

/// The control plane: the CA with the repository's TTLs, the same state machine and HTTP API as
/// `serve` (in memory, simulated time, seeded IDs and keys), and the desired state of `start`
/// with each instance and its sidecar in the catalog.
fn control_plane(
    state: &DesiredState,
    start_entries: &DesiredState,
    setup: &Setup,
    opts: &SimOptions,
    epoch: SystemTime,
    obs: &obs::Obs,
) -> Result<(Rc<server::ControlPlane>, mesh_ca::CaParams), SimError> {
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
                    // A sidecar registered without meta of its own carries its service's
                    // (`agent/sidecar_service.go`, `sidecarServiceFromNodeService`): what a
                    // resolver subset's filter reads on the health of the target.
                    meta: i.meta.clone(),
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

    Ok((cp, params))
}

/// Rollout steps are checked before anything runs: each entry is the one its step names.
fn check_steps(steps: &[RolloutStep]) -> Result<(), SimError> {
    for (index, s) in steps.iter().enumerate() {
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
    Ok(())
}

/// The schedule of faults and steps, applied between simulation steps, in time order.
fn schedule(
    opts: &SimOptions,
    setup: &Setup,
    step_at: impl Fn(usize) -> Duration,
) -> Result<Vec<(Duration, usize, Action)>, SimError> {
    let mut actions: Vec<(Duration, usize, Action)> = Vec::new();
    for f in &opts.faults.faults {
        let n = actions.len();
        match f {
            Fault::Partition { a, b, from, until } => {
                let (x, y) = partition_sides(a, b, setup)?;
                actions.push((*from, n, Action::Partition(x.clone(), y.clone())));
                if let Some(u) = until {
                    actions.push((*u, n + 1, Action::Repair(x, y)));
                }
            }
            Fault::Crash { host, at, restart } => {
                let hs = group(host, setup)
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
    Ok(actions)
}

/// Performs one scheduled action on the running simulation; returns the line the trace logs.
fn perform(
    sim: &mut turmoil::Sim<'_>,
    action: &Action,
    cp: &server::ControlPlane,
    steps: &[RolloutStep],
    applied: &mut Vec<(u64, usize)>,
    ms: u64,
) -> String {
    match action {
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
            let s = &steps[*i];
            applied.push((ms, *i));
            cp.push(server::Op::Step(*i));
            format!(
                "step {i}: {} {} {}",
                if s.entry.is_some() { "write" } else { "delete" },
                s.kind.as_str(),
                s.name
            )
        }
    }
}

/// Crashed host groups: (hosts, crash time, restart time), in milliseconds.
fn down_groups(opts: &SimOptions, setup: &Setup) -> Vec<(Vec<String>, u64, Option<u64>)> {
    opts.faults
        .faults
        .iter()
        .filter_map(|f| match f {
            Fault::Crash { host, at, restart } => group(host, setup).map(|hs| {
                (
                    hs,
                    at.as_millis() as u64,
                    restart.map(|r| r.as_millis() as u64),
                )
            }),
            _ => None,
        })
        .collect()
}
