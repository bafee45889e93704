//! Leaf issuance rate: `cargo bench -p mesh-ca`.

use mesh_ca::{CaParams, CaState, RandomKeys};
use std::time::{Duration, Instant, UNIX_EPOCH};

fn main() {
    let now = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    for bits in [256, 384] {
        let params = CaParams {
            key_bits: bits,
            ..CaParams::default()
        };
        let mut ca = CaState::bootstrap("bench", params, now, &RandomKeys).expect("bootstrap");
        let n = 2_000;
        let start = Instant::now();
        for i in 0..n {
            let leaf = ca
                .issue_leaf(&format!("svc-{i}"), "dc1", now, &RandomKeys)
                .expect("leaf");
            std::hint::black_box(leaf);
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "ec {bits}: {n} leaves in {secs:.3} s = {:.0} leaves/s",
            n as f64 / secs
        );
    }
}
