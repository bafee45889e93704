//! Loading a large synthetic repository: `cargo bench -p mesh-loader`.
//!
//! Prints the wall time to load (read, parse, decode, normalize, validate) repositories of
//! growing size; the target is under 1 s for 10,000 services. `MESH_BENCH_SERVICES` overrides
//! the largest size.

use std::time::Instant;

fn main() {
    let largest: usize = std::env::var("MESH_BENCH_SERVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut sizes = vec![1_000, 2_500, 5_000, largest];
    sizes.sort();
    sizes.dedup();
    println!("services  files  entries  diagnostics  load_ms  (best of 3)");
    for n in sizes {
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = mesh_synth::SynthSpec {
            services: n,
            seed: 42,
            ..mesh_synth::SynthSpec::default()
        };
        mesh_synth::generate(dir.path(), &spec).expect("generate");
        let options = mesh_loader::LoadOptions::default();
        let mut best = f64::MAX;
        let mut last = None;
        for _ in 0..3 {
            let start = Instant::now();
            let loaded = mesh_loader::load_dir(dir.path(), &options);
            best = best.min(start.elapsed().as_secs_f64() * 1000.0);
            last = Some(loaded);
        }
        let loaded = last.expect("ran");
        assert!(!loaded.has_errors(), "the synthetic repo must be valid");
        println!(
            "{:>8}  {:>5}  {:>7}  {:>11}  {:>7.1}",
            loaded.state.services.len(),
            loaded.files.len(),
            loaded.state.config_entries.len(),
            loaded.diagnostics.len(),
            best
        );
    }
}
