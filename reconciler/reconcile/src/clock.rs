//! Time, as the loop reads it: a monotonic clock for deadlines, backoff and the resync timer,
//! and the wall clock for the status record and the metrics. Injected, so the loop's decisions
//! can be replayed at any speed.

use std::future::Future;
use std::time::SystemTime;
use tokio::time::Instant;

pub trait Clock: Send + Sync + 'static {
    /// Monotonic time.
    fn now(&self) -> Instant;
    /// The wall clock (event times, the last-applied timestamp, the heartbeat).
    fn wall(&self) -> SystemTime;
    /// Resolves at `t`.
    fn sleep_until(&self, t: Instant) -> impl Future<Output = ()> + Send;
}

/// The machine's clocks, through tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, t: Instant) -> impl Future<Output = ()> + Send {
        tokio::time::sleep_until(t)
    }
}
