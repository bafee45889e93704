//! A seed sweep on every core: `--seeds 2` against one seed, on a generated 120-service mesh
//! (3 upstreams each), as `simulate` runs them.
//!
//! `cargo bench -p mesh-check --bench sweep`

use mesh_check::{default_workers, simulate, SimSettings};
use std::time::Instant;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = mesh_synth::SynthSpec {
        services: 120,
        ..mesh_synth::SynthSpec::default()
    };
    mesh_synth::generate(dir.path(), &spec).expect("generate");
    let loaded = mesh_loader::load_dir(dir.path(), &Default::default());
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let time = |seeds: u64| {
        let settings = SimSettings {
            seeds,
            ..SimSettings::default()
        };
        let t = Instant::now();
        let sim = simulate(&loaded.state, None, "bench", &settings).expect("simulate");
        assert_eq!(sim.reports.len() as u64, seeds);
        t.elapsed()
    };
    let one = time(1);
    let two = time(2);
    println!(
        "120 services, {} worker(s): one seed {:.2} s, --seeds 2 {:.2} s ({:.2}x one seed)",
        default_workers(),
        one.as_secs_f64(),
        two.as_secs_f64(),
        two.as_secs_f64() / one.as_secs_f64().max(1e-9)
    );
}
