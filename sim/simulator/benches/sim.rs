//! Wall time of simulating generated meshes of 200 and 1,000 services (3 upstreams each) for the
//! default duration, as `check` and `simulate` run them (node hosts capped at 32, the default
//! tick, the probes): calls, the handshakes made for them, the cost per upstream from 200 to
//! 1,000 services, and the time the sidecars spent in their handshakes against the same number of
//! raw in-memory rustls mTLS handshakes with the same kind of certificates, in the same run.
//!
//! Two protocol mixes: the generator's own (one service in ten HTTP or gRPC, the rest TCP, so
//! most calls open a connection each) and the same mesh with `proxy-defaults` making HTTP the
//! default protocol, as most meshes do, where calls share pooled connections.
//!
//! Wall time depends on what else the machine runs; the CPU time, the events (trace lines), calls
//! and handshakes printed beside it do not, and are the figures to compare across runs.
//!
//! `cargo bench -p mesh-sim --bench sim [-- http|tcp]`

use mesh_ca::{CaParams, CaState};
use mesh_sim::tls::{client_config, server_config, server_name, Identity};
use mesh_sim::{simulate, SeededKeys, SimOptions};
use rustls::{ClientConnection, ServerConnection};
use std::time::{Duration, Instant, SystemTime};

/// The node-host cap `check` and `simulate` use.
const MAX_NODES: usize = 32;

fn main() {
    // `-- http` or `-- tcp` runs one protocol mix only.
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    for http_default in [true, false] {
        match only.as_deref() {
            Some("http") if !http_default => continue,
            Some("tcp") if http_default => continue,
            _ => {}
        }
        let mix = if http_default {
            "HTTP by default (proxy-defaults)"
        } else {
            "the generator's mix (mostly TCP)"
        };
        println!("{mix}:");
        let small = run(200, http_default);
        let large = run(1_000, http_default);
        println!(
            "  cost per upstream, 1,000 vs 200 services: {:.2}x",
            large.as_secs_f64() / small.as_secs_f64().max(1e-9)
        );
    }
}

/// Simulates a generated mesh of `services`; returns the wall time per declared upstream.
fn run(services: usize, http_default: bool) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = mesh_synth::SynthSpec {
        services,
        upstreams_per_service: 3,
        seed: 1,
        acl: true,
        files_per_dir: 100,
    };
    mesh_synth::generate(dir.path(), &spec).expect("generate");
    if http_default {
        std::fs::write(
            dir.path().join("proxy-defaults.hcl"),
            "Kind = \"proxy-defaults\"\nName = \"global\"\nConfig {\n  protocol = \"http\"\n}\n",
        )
        .expect("write proxy-defaults");
    }
    let loaded = mesh_loader::load_dir(dir.path(), &Default::default());
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let edges: usize = loaded
        .state
        .services
        .iter()
        .map(|s| s.upstreams.len())
        .sum();
    let opts = SimOptions {
        seed: 1,
        max_nodes: Some(MAX_NODES),
        ..SimOptions::default()
    };
    let t = Instant::now();
    let cpu = cpu_time();
    let r = simulate(&loaded.state, None, &opts).expect("simulate");
    let wall = t.elapsed();
    let cpu = cpu_time()
        .zip(cpu)
        .map(|(after, before)| format!(", {:.2} s CPU", (after - before).as_secs_f64()))
        .unwrap_or_default();
    let raw = raw_handshakes(r.handshakes);
    println!(
        "  {services} services / {edges} upstreams on {} hosts, {:.1} s simulated: {:.2} s wall{cpu} \
         ({:.2} ms per upstream); {} events, {} calls, {} handshakes, {} probes, {} violations; \
         handshakes {:.3} s in the simulation vs {:.3} s raw in memory ({:.2}x)",
        r.hosts.len(),
        r.duration_ms as f64 / 1000.0,
        wall.as_secs_f64(),
        wall.as_secs_f64() * 1000.0 / edges.max(1) as f64,
        r.trace.len(),
        r.calls,
        r.handshakes,
        r.probes.len(),
        r.violations.len(),
        r.handshake_time.as_secs_f64(),
        raw.as_secs_f64(),
        r.handshake_time.as_secs_f64() / raw.as_secs_f64().max(1e-9)
    );
    wall / edges.max(1) as u32
}

/// CPU time this process has used (user and system), where the OS tells it: on a machine shared
/// with other work, wall time alone says more about the neighbours than about the simulator.
fn cpu_time() -> Option<Duration> {
    // Fields 14 and 15 of /proc/self/stat (after the parenthesized command name), in clock ticks
    // of 1/100 s on Linux.
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The client side of `n` full TLS 1.3 handshakes with client certificates, SPIFFE checks and
/// simulated-time verification, over memory buffers: the side the simulation times.
fn raw_handshakes(n: usize) -> Duration {
    let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(mesh_sim::EPOCH_UNIX);
    let keys = SeededKeys::new(1, "bench");
    let mut ca = CaState::bootstrap("bench", CaParams::default(), epoch, &keys).expect("ca");
    let a = Identity::from_leaf(&ca.issue_leaf("a", "dc1", epoch, &keys).expect("leaf"));
    let b = Identity::from_leaf(&ca.issue_leaf("b", "dc1", epoch, &keys).expect("leaf"));
    let roots = ca.trust_bundle_der();
    // Configs are built once, as the simulated proxies keep theirs until their cache changes:
    // the floor is the handshakes themselves.
    let s = server_config(&roots, &b).expect("server config");
    let c = client_config(&roots, &ca.trust_domain, "b", Some(&a)).expect("client config");
    let mut client_time = Duration::ZERO;
    for _ in 0..n {
        let started = Instant::now();
        let mut client = ClientConnection::new(c.clone(), server_name("b")).expect("client");
        client_time += started.elapsed();
        let mut server = ServerConnection::new(s.clone()).expect("server");
        let mut buf = Vec::new();
        while client.is_handshaking() || server.is_handshaking() {
            buf.clear();
            let started = Instant::now();
            client.write_tls(&mut buf).expect("write");
            client_time += started.elapsed();
            server.read_tls(&mut &buf[..]).expect("read");
            server.process_new_packets().expect("server handshake");
            buf.clear();
            server.write_tls(&mut buf).expect("write");
            let started = Instant::now();
            client.read_tls(&mut &buf[..]).expect("read");
            client.process_new_packets().expect("client handshake");
            client_time += started.elapsed();
        }
    }
    client_time
}
