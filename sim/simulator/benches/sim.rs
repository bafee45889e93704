//! Wall time of simulating a generated 200-service mesh (about 600 declared upstreams) against
//! the same number of plain in-memory rustls mTLS handshakes with the same certificates.
//!
//! `cargo bench -p mesh-sim --bench sim`

use mesh_ca::{CaParams, CaState};
use mesh_sim::tls::{client_config, server_config, server_name, Identity};
use mesh_sim::{simulate, SeededKeys, SimOptions};
use rustls::{ClientConnection, ServerConnection};
use std::time::{Duration, Instant, SystemTime};

fn main() {
    // How it grows with the mesh (25 node hosts), and with the host count at 200 services.
    for (services, max_nodes) in [(50, 25), (100, 25), (200, 25), (200, 50)] {
        run(services, max_nodes);
    }
}

fn run(services: usize, max_nodes: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = mesh_synth::SynthSpec {
        services,
        upstreams_per_service: 3,
        seed: 1,
        acl: true,
        files_per_dir: 100,
    };
    let summary = mesh_synth::generate(dir.path(), &spec).expect("generate");
    let loaded = mesh_loader::load_dir(dir.path(), &Default::default());
    let edges: usize = loaded
        .state
        .services
        .iter()
        .map(|s| s.upstreams.len())
        .sum();
    let opts = SimOptions {
        seed: 1,
        tick: Duration::from_millis(10),
        max_nodes: Some(max_nodes),
        ..SimOptions::default()
    };
    let t = Instant::now();
    let r = simulate(&loaded.state, None, &opts).expect("simulate");
    let wall = t.elapsed();
    let calls: usize = r.edges.iter().map(|e| e.attempts).sum();
    let handshakes = calls + r.probes.len();
    let raw = raw_handshakes(handshakes);
    println!(
        "{} services / {edges} upstreams on {} hosts, {:.1} s simulated: {calls} calls + {} probes, {} violations: {:.2} s wall; {handshakes} raw in-memory mTLS handshakes: {:.2} s ({:.1}x)",
        summary.services,
        r.hosts.len(),
        r.duration_ms as f64 / 1000.0,
        r.probes.len(),
        r.violations.len(),
        wall.as_secs_f64(),
        raw.as_secs_f64(),
        wall.as_secs_f64() / raw.as_secs_f64().max(1e-9)
    );
}

/// `n` full TLS 1.3 handshakes with client certificates, SPIFFE checks and simulated-time
/// verification, over memory buffers.
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
    let t = Instant::now();
    for _ in 0..n {
        let mut client = ClientConnection::new(c.clone(), server_name("b")).expect("client");
        let mut server = ServerConnection::new(s.clone()).expect("server");
        let mut buf = Vec::new();
        while client.is_handshaking() || server.is_handshaking() {
            buf.clear();
            client.write_tls(&mut buf).expect("write");
            server.read_tls(&mut &buf[..]).expect("read");
            server.process_new_packets().expect("server handshake");
            buf.clear();
            server.write_tls(&mut buf).expect("write");
            client.read_tls(&mut &buf[..]).expect("read");
            client.process_new_packets().expect("client handshake");
        }
    }
    t.elapsed()
}
