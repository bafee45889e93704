//! Leader election through a Consul session lock: a session with a TTL, the lock on
//! `mesh-gitops/<owner>/leader` taken with `?acquire=`, the session renewed every third of the
//! TTL. A replica leads only while it holds the lock *and* its last renewal is younger than
//! the TTL (Consul may invalidate a session between TTL and 2 x TTL after the last renewal),
//! so a replica cut off from Consul stops writing before another can take over. Standbys
//! watch the lock with a blocking query and try again when it is free.

use crate::backoff::Backoff;
use mesh_consul::Client;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long this replica may still act on the lock: the TTL from the moment its last successful
/// renewal (or the session's creation) was sent. Consul invalidates a session no earlier than
/// one TTL after its last renewal (`agent/consul/session_ttl.go`, `resetSessionTimerLocked`
/// arms the timer at 2 x TTL), so until then no other replica can hold the lock. The loop reads
/// it before every write: a replica paused past its lease (SIGSTOP, a stalled VM) stops at
/// once, not at the election's next check.
#[derive(Debug, Default)]
pub struct Lease(std::sync::Mutex<Option<Instant>>);

impl Lease {
    /// Whether the lease runs now.
    pub fn valid(&self) -> bool {
        self.0
            .lock()
            .is_ok_and(|d| d.is_some_and(|d| Instant::now() < d))
    }

    fn extend(&self, until: Instant) {
        if let Ok(mut d) = self.0.lock() {
            *d = Some(until);
        }
    }

    fn end(&self) {
        if let Ok(mut d) = self.0.lock() {
            *d = None;
        }
    }
}

pub struct Election {
    pub client: Arc<Client>,
    pub key: String,
    /// This replica's identity, written into the lock's value.
    pub id: String,
    pub ttl: Duration,
}

/// Runs until `shutdown` turns true; `leader` says whether this replica leads. On shutdown the
/// lock is released and the session destroyed, so a standby takes over at once.
pub async fn run(
    e: Election,
    leader: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
    has_session: Arc<std::sync::atomic::AtomicBool>,
    lease: Arc<Lease>,
) {
    let mut session: Option<String> = None;
    let mut renewed = Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(500), e.ttl / 2);
    let renew_every = e.ttl / 3;
    let value = serde_json::json!({ "leader": e.id }).to_string();
    let mut lock_index = 0u64;
    let lock_path = Client::kv_path(&e.key);
    loop {
        if *shutdown.borrow() {
            break;
        }
        let sid = match &session {
            Some(s) => s.clone(),
            None => {
                let sent = Instant::now();
                let created = e
                    .client
                    .session_create(&format!("mesh-gitops {}", e.id), e.ttl)
                    .await;
                match created {
                    Ok(s) => {
                        tracing::debug!(session = %s, "session created");
                        renewed = sent;
                        lease.extend(sent + e.ttl);
                        session = Some(s.clone());
                        has_session.store(true, std::sync::atomic::Ordering::Relaxed);
                        s
                    }
                    Err(err) => {
                        has_session.store(false, std::sync::atomic::Ordering::Relaxed);
                        lease.end();
                        leader.send_if_modified(|l| std::mem::replace(l, false));
                        tracing::warn!(error = %err, "cannot create a Consul session");
                        if wait(&mut shutdown, backoff.next()).await {
                            break;
                        }
                        continue;
                    }
                }
            }
        };
        let leading = *leader.borrow();
        if !leading {
            match e.client.kv_acquire(&e.key, value.as_bytes(), &sid).await {
                // The answer came when the session may already have expired (the process was
                // paused, or the request was slow): what it granted may be another's by now.
                Ok(true) if renewed.elapsed() >= e.ttl => {
                    tracing::warn!("acquired the leader lock on a session not renewed within the TTL; not leading");
                    let _ = e.client.kv_release(&e.key, &sid).await;
                    session = None;
                    continue;
                }
                Ok(true) => {
                    backoff.reset();
                    tracing::info!(id = %e.id, key = %e.key, "acquired the leader lock");
                    leader.send_replace(true);
                    continue;
                }
                Ok(false) => {}
                Err(err) if err.to_string().contains("invalid session") => {
                    session = None;
                    continue;
                }
                Err(err) => tracing::warn!(error = %err, "cannot try the leader lock"),
            }
            // Stand by: wait for the lock to change (or the renewal time).
            let wake = tokio::select! {
                r = e.client.get_blocking(&lock_path, lock_index, renew_every) => Some(r),
                _ = shutdown.changed() => None,
            };
            match wake {
                None => break,
                Some(Ok(r)) => {
                    lock_index = if r.index < lock_index { 0 } else { r.index };
                }
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "cannot watch the leader lock");
                    if wait(&mut shutdown, backoff.next()).await {
                        break;
                    }
                }
            }
        } else if wait(&mut shutdown, renew_every).await {
            break;
        }
        // Keep the session alive, leader or not.
        if renewed.elapsed() >= renew_every {
            let sent = Instant::now();
            match e.client.session_renew(&sid).await {
                Ok(true) => {
                    renewed = sent;
                    lease.extend(sent + e.ttl);
                }
                Ok(false) => {
                    tracing::warn!("the session expired; the leader lock is lost");
                    lease.end();
                    session = None;
                    leader.send_if_modified(|l| std::mem::replace(l, false));
                    continue;
                }
                Err(err) => tracing::warn!(error = %err, "cannot renew the session"),
            }
        }
        if *leader.borrow() {
            // Still holding it? Someone may have deleted the key, or the session may be gone.
            let holds = match e.client.kv_entry(&e.key).await {
                Ok(Some(entry)) => Some(entry.session.as_deref() == Some(sid.as_str())),
                Ok(None) => Some(false),
                Err(_) => None,
            };
            let stale = renewed.elapsed() >= e.ttl;
            if holds == Some(false) || stale {
                tracing::warn!(stale, "stepping down: the leader lock is no longer held");
                leader.send_replace(false);
                if stale {
                    lease.end();
                    session = None;
                }
            }
        }
    }
    leader.send_replace(false);
    lease.end();
    if let Some(sid) = session {
        let _ = e.client.kv_release(&e.key, &sid).await;
        let _ = e.client.session_destroy(&sid).await;
        tracing::info!("released the leader lock");
    }
}

/// Sleeps `d`; `true` if shutdown was asked meanwhile.
async fn wait(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}
