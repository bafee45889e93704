//! Capped exponential backoff with jitter, for failed passes, fetches and Consul calls.

use std::time::Duration;

pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
    rng: mesh_seed::SplitMix64,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        // Seeded per process so replicas that failed together do not retry together.
        let seed = u64::from(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64;
        Backoff {
            base,
            max: max.max(base),
            failures: 0,
            rng: mesh_seed::SplitMix64::new(seed),
        }
    }

    /// The delay before the next attempt: half the capped exponential delay, plus a random part
    /// up to the other half ("equal jitter": never zero, never in lockstep).
    pub fn next(&mut self) -> Duration {
        let cap = self
            .base
            .saturating_mul(1u32 << self.failures.min(16))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        let half = cap / 2;
        let nanos = half.as_nanos() as u64;
        let r = if nanos == 0 { 0 } else { self.random() % nanos };
        half + Duration::from_nanos(r)
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let d: Vec<Duration> = (0..8).map(|_| b.next()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] < Duration::from_millis(100));
        assert!(d[3] >= Duration::from_millis(400) && d[3] < Duration::from_millis(800));
        assert!(d[7] >= Duration::from_secs(1) && d[7] < Duration::from_secs(2));
        b.reset();
        assert!(b.next() < Duration::from_millis(100));
    }
}
