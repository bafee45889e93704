//! A sweep runs its seeds in parallel; the reports are the same whatever the number of workers.

use mesh_check::{simulate, SimSettings, Simulation};
use std::path::Path;

fn sweep(workers: usize) -> Simulation {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/countdash");
    let loaded = mesh_loader::load_dir(&dir, &Default::default());
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let settings = SimSettings {
        seed: 5,
        seeds: 3,
        faults: Some("rotate@2s,latency=20ms".into()),
        workers: Some(workers),
    };
    simulate(&loaded.state, None, "examples/countdash", &settings).expect("simulate")
}

#[test]
fn the_same_seed_gives_the_same_trace_hash_whatever_the_parallelism() {
    let fingerprint = |sim: &Simulation| -> Vec<String> {
        sim.reports
            .iter()
            .map(|r| {
                format!(
                    "{} {} {:?} {:?} {:?} {} {}",
                    r.seed, r.trace_hash, r.trace, r.edges, r.probes, r.calls, r.handshakes
                )
            })
            .collect()
    };
    let alone = sweep(1);
    let seeds: Vec<u64> = alone.reports.iter().map(|r| r.seed).collect();
    assert_eq!(seeds, [5, 6, 7]);
    let hashes: std::collections::BTreeSet<&str> = alone
        .reports
        .iter()
        .map(|r| r.trace_hash.as_str())
        .collect();
    assert_eq!(hashes.len(), 3, "every seed its own trace");
    for workers in [2, 3] {
        assert_eq!(
            fingerprint(&sweep(workers)),
            fingerprint(&alone),
            "{workers} workers"
        );
    }
}
