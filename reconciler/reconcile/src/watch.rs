//! Drift watchers: one blocking query per config-entry kind the repository uses, and one on the
//! owner's inventory in KV. A watcher sends the kind of what changed when the answer's content
//! (not only its index, which on some servers moves with any write to the table) differs from
//! the last one; the loop then plans, and a non-empty plan for an unchanged commit is drift.

use crate::backoff::Backoff;
use mesh_consul::Client;
use serde_json::Value;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long one blocking query waits at most.
pub const WAIT: Duration = Duration::from_secs(300);

/// What the loop asks of its watchers: watch exactly these paths (none: stop watching).
pub trait Watches {
    fn set(&mut self, paths: &[String]);
}

/// The running watchers, by the path they watch; each sends the path it watches on `tx`
/// when the answer changes.
pub struct Watchers {
    client: Arc<Client>,
    tx: mpsc::Sender<String>,
    running: BTreeMap<String, JoinHandle<()>>,
}

impl Watches for Watchers {
    fn set(&mut self, paths: &[String]) {
        let (client, tx) = (&self.client, &self.tx);
        self.running.retain(|p, h| {
            let keep = paths.contains(p);
            if !keep {
                h.abort();
            }
            keep
        });
        for p in paths {
            if !self.running.contains_key(p) {
                let handle = tokio::spawn(watch(client.clone(), p.clone(), tx.clone()));
                self.running.insert(p.clone(), handle);
            }
        }
    }
}

impl Watchers {
    pub fn new(client: Arc<Client>, tx: mpsc::Sender<String>) -> Watchers {
        Watchers {
            client,
            tx,
            running: BTreeMap::new(),
        }
    }

    pub fn stop(&mut self) {
        for (_, h) in std::mem::take(&mut self.running) {
            h.abort();
        }
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fingerprint of an answer: its content, with the index headers ignored.
fn fingerprint(v: &Option<Value>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match v {
        Some(v) => v.to_string().hash(&mut h),
        None => 0u8.hash(&mut h),
    }
    h.finish()
}

async fn watch(client: Arc<Client>, path: String, tx: mpsc::Sender<String>) {
    let mut index = 0u64;
    let mut last: Option<u64> = None;
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    loop {
        match client.get_blocking(&path, index, WAIT).await {
            Ok(r) => {
                backoff.reset();
                // An index that went backwards (a restored server) starts the watch over.
                index = if r.index < index { 0 } else { r.index };
                let fp = fingerprint(&r.value);
                if last.is_some_and(|l| l != fp) && tx.send(path.clone()).await.is_err() {
                    return;
                }
                last = Some(fp);
                // Consul's advice: never loop faster than this, whatever the index does.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => {
                tracing::debug!(%path, error = %err, "watch failed; retrying");
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
}
