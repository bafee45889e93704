//! What the simulation observed: the event trace (hashed for determinism) and the structured
//! records the checkers read. Everything runs on turmoil's single thread, so plain `Rc<RefCell>`
//! is enough and the order of records is the order of simulated events.

use crate::Outcome;
use mesh_semantics::intention::HttpRequest;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::rc::Rc;

/// Milliseconds of simulated time on the current host (0 outside a host context).
pub(crate) fn now_ms() -> u64 {
    turmoil::sim_elapsed()
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One request of declared traffic, seen by the calling application.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub at_ms: u64,
    pub source: String,
    /// The declared upstream.
    pub destination: String,
    /// The service its discovery chain sent the request to (the upstream itself without one).
    pub target: String,
    pub outcome: Outcome,
    /// The mTLS handshake to the destination's proxy completed.
    pub handshake: bool,
    /// The request was decided by L7 permissions (403 from the destination proxy).
    pub l7_denied: bool,
}

/// A request that reached an application.
#[derive(Debug, Clone)]
pub(crate) struct Receipt {
    pub at_ms: u64,
    pub destination: String,
    /// The identity the inbound proxy verified; `None` when the request came without the proxy.
    pub source: Option<String>,
    pub request: HttpRequest,
    /// The adversarial probe that sent it, if any.
    pub probe: Option<String>,
}

/// An agent's cache caught up with the server.
#[derive(Debug, Clone)]
pub(crate) struct AgentSync {
    pub at_ms: u64,
    pub node: String,
    pub intentions_index: u64,
    pub roots_index: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Observations {
    pub trace: Vec<(u64, String, String)>,
    pub attempts: Vec<Attempt>,
    pub receipts: Vec<Receipt>,
    pub syncs: Vec<AgentSync>,
    pub probes: Vec<crate::Probe>,
    /// mTLS handshakes the sidecars started for declared traffic (pooled connections reused
    /// make none).
    pub handshakes: usize,
    /// Wall time the sidecars spent in those handshakes (client side), for the benchmark.
    pub handshake_time: std::time::Duration,
}

pub(crate) type Obs = Rc<RefCell<Observations>>;

impl Observations {
    pub fn log(&mut self, at_ms: u64, host: &str, event: impl Into<String>) {
        self.trace.push((at_ms, host.to_owned(), event.into()));
    }

    pub fn trace_hash(&self) -> String {
        let mut h = Sha256::new();
        for (t, host, e) in &self.trace {
            h.update(t.to_le_bytes());
            h.update(host.as_bytes());
            h.update([0]);
            h.update(e.as_bytes());
            h.update([0]);
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Logs from inside a host, stamped with simulated time.
pub(crate) fn log(obs: &Obs, host: &str, event: impl Into<String>) {
    obs.borrow_mut().log(now_ms(), host, event);
}
