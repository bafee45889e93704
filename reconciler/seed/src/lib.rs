//! The workspace's one seeded generator.
//!
//! Retry jitter, blocking-query jitter, fault injection, seeded identifiers and synthetic
//! repositories all draw from [`SplitMix64`], so a run is reproduced from its seed alone. It is
//! splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014):
//! tiny, fast, statistically sound for these uses, and not cryptographic (keys never come from
//! it). Its output for a seed is fixed: golden files and trace hashes depend on it.

#![forbid(unsafe_code)]

use std::sync::Mutex;
use std::time::Duration;

/// splitmix64: the state advances by the golden-ratio increment and each output is a mix of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `[0, 1)` from the top 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A value in `[0, n)`; `n = 0` is treated as 1. Modulo bias is negligible for the small
    /// bounds used here and keeps the sequence simple to reproduce.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A duration in `[0, max)`, or zero when `max` is zero.
    pub fn duration_below(&mut self, max: Duration) -> Duration {
        let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.next_u64() % nanos)
    }

    /// Sixteen bytes, big-endian halves: the raw material of a seeded version-4 UUID.
    pub fn bytes16(&mut self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        for half in bytes.chunks_mut(8) {
            half.copy_from_slice(&self.next_u64().to_be_bytes());
        }
        bytes
    }
}

/// A [`SplitMix64`] shared between tasks: one sequence, whichever task draws next.
#[derive(Debug)]
pub struct SharedSplitMix64(Mutex<SplitMix64>);

impl SharedSplitMix64 {
    pub const fn new(seed: u64) -> SharedSplitMix64 {
        SharedSplitMix64(Mutex::new(SplitMix64::new(seed)))
    }

    /// Runs `f` with the generator; a poisoned lock is recovered, since the state is a number
    /// that no panic can leave half-written.
    pub fn with<T>(&self, f: impl FnOnce(&mut SplitMix64) -> T) -> T {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reference_vector_of_splitmix64() {
        // The first outputs for seed 0 in the reference implementation (Vigna's splitmix64.c).
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(g.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(g.next_u64(), 0x06C4_5D18_8009_454F);
    }

    proptest! {
        #[test]
        fn bounded_draws_stay_in_bounds(seed: u64, n in 0u64..1_000_000, ms in 0u64..100_000) {
            let mut g = SplitMix64::new(seed);
            prop_assert!(g.below(n) < n.max(1));
            let f = g.next_f64();
            prop_assert!((0.0..1.0).contains(&f));
            let d = g.duration_below(Duration::from_millis(ms));
            prop_assert!(ms == 0 && d.is_zero() || d < Duration::from_millis(ms));
        }

        #[test]
        fn the_same_seed_gives_the_same_sequence(seed: u64) {
            let mut a = SplitMix64::new(seed);
            let b = SharedSplitMix64::new(seed);
            for _ in 0..8 {
                prop_assert_eq!(a.next_u64(), b.with(|g| g.next_u64()));
            }
        }
    }
}
