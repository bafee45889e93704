//! The loop in tokio: the fetcher publishing the branch's head, the election, the drift
//! watchers, and [`drive`], which turns a [`Reconciler`] whenever one of its inputs changes,
//! a watched object changes, or its timer fires.

use crate::applier::Applier;
use crate::backoff::Backoff;
use crate::clock::{Clock, SystemClock};
use crate::leader;
use crate::machine::{Config, Effects, Inputs, Next, Reconciler};
use crate::notify::Notify;
use crate::source::Source;
use crate::status::{self, KvStatus, Shared, StatusSink};
use crate::watch::{Watchers, Watches};
use crate::{chain, ReconcileError};
use mesh_consul::Client;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Runs the loop against Consul until `stop` turns true: fetches `source` every interval,
/// learns the owner (from the first commit unless configured), takes part in the election,
/// and applies as leader, telling `notify` what it did. On return the status is final and the
/// lock released.
pub async fn run<S: Source, A: Applier>(
    config: Config,
    source: Arc<S>,
    applier: Arc<A>,
    client: Arc<Client>,
    shared: Arc<Shared>,
    notify: Arc<dyn Notify>,
    stop: watch::Receiver<bool>,
) -> Result<(), ReconcileError> {
    let (head_tx, head_rx) = watch::channel(None);
    let fetcher = tokio::spawn(fetch_loop(
        source.clone(),
        config.interval,
        head_tx,
        stop.clone(),
        shared.clone(),
    ));
    let world = World {
        source,
        applier,
        client,
        shared,
        notify,
    };
    let result = start(config, world, head_rx, stop).await;
    fetcher.abort();
    result
}

/// What the loop acts on.
struct World<S, A> {
    source: Arc<S>,
    applier: Arc<A>,
    client: Arc<Client>,
    shared: Arc<Shared>,
    notify: Arc<dyn Notify>,
}

/// Waits for the first head (to learn the owner), starts the election, and runs the loop.
async fn start<S: Source, A: Applier>(
    config: Config,
    world: World<S, A>,
    mut head: watch::Receiver<Option<String>>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ReconcileError> {
    let World {
        source,
        applier,
        client,
        shared,
        notify,
    } = world;
    let owner = match &config.owner {
        Some(o) => o.clone(),
        None => {
            let first = tokio::select! {
                h = head.wait_for(Option::is_some) => h.map(|h| h.clone()).ok().flatten(),
                _ = stop.wait_for(|v| *v) => None,
            };
            let Some(first) = first else {
                return Ok(());
            };
            let (s, load) = (source.clone(), config.load.clone());
            tokio::task::spawn_blocking(move || -> Result<String, ReconcileError> {
                let commit = s.read(&first)?;
                Ok(mesh_loader::load_files(commit.files, &load)
                    .state
                    .settings
                    .owner)
            })
            .await??
        }
    };
    tracing::info!(id = %config.id, %owner, source = %source.shown(), branch = %source.branch(), "reconciler started");
    let (leader_tx, leader_rx) = watch::channel(false);
    let (lead_stop_tx, lead_stop_rx) = watch::channel(false);
    let session = Arc::new(AtomicBool::new(false));
    let lease = Arc::new(leader::Lease::default());
    let election = tokio::spawn(leader::run(
        leader::Election {
            client: client.clone(),
            key: status::leader_key(&owner),
            id: config.id.clone(),
            ttl: config.lock_ttl,
        },
        leader_tx,
        lead_stop_rx,
        session.clone(),
        lease.clone(),
    ));
    let (drift_tx, mut drift_rx) = mpsc::channel(64);
    let sink = KvStatus {
        client: client.clone(),
        key: status::status_key(&owner),
        suspended_key: crate::suspend::suspended_key(&owner),
    };
    let inputs = Inputs {
        head,
        leader: leader_rx,
        stop,
        session,
        lease: Some(lease),
    };
    let effects = Effects {
        source,
        applier,
        sink,
        clock: Arc::new(SystemClock),
        notify,
    };
    let mut r = Reconciler::new(&config, owner, effects, shared, inputs);
    let mut watchers = Watchers::new(client, drift_tx);
    drive(&mut r, &mut watchers, &mut drift_rx).await;
    // The status is final; now let a standby take over.
    lead_stop_tx.send_replace(true);
    let _ = election.await;
    Ok(())
}

/// Turns `r` until it is asked to stop. Between turns it waits for any input to change, a
/// watched object to change (a burst counts once), or the time the turn asked for; which of
/// them woke it does not matter to the next turn.
pub async fn drive<S: Source, A: Applier, K: StatusSink, C: Clock>(
    r: &mut Reconciler<S, A, K, C>,
    watches: &mut impl Watches,
    drift: &mut mpsc::Receiver<String>,
) {
    let mut inputs = r.inputs().clone();
    let clock = r.clock().clone();
    loop {
        let turn = r.turn().await;
        if let Some(paths) = &turn.watch {
            watches.set(paths);
        }
        let wake = match turn.next {
            Next::Stop => break,
            Next::Again => continue,
            Next::Wait(at) => at,
        };
        tokio::select! {
            Ok(()) = inputs.stop.changed() => {}
            Ok(()) = inputs.head.changed() => {}
            Ok(()) = inputs.leader.changed() => {}
            Some(path) = drift.recv() => {
                tracing::debug!(%path, "a watched object changed");
                // Coalesce a burst of changes into one pass.
                clock.sleep_until(clock.now() + Duration::from_millis(25)).await;
                while drift.try_recv().is_ok() {}
            }
            _ = clock.sleep_until(wake) => {}
        }
    }
    watches.set(&[]);
}

/// Fetches every `interval`, and at once when a push webhook asks, and publishes the branch's
/// head.
async fn fetch_loop<S: Source>(
    source: Arc<S>,
    interval: Duration,
    head: watch::Sender<Option<String>>,
    mut stop: watch::Receiver<bool>,
    shared: Arc<Shared>,
) {
    let mut backoff = Backoff::new(
        Duration::from_secs(1),
        interval.max(Duration::from_secs(1)) * 5,
    );
    let shown = source.shown();
    loop {
        let s = source.clone();
        let delay = match tokio::task::spawn_blocking(move || s.fetch()).await {
            Ok(Ok(oid)) => {
                backoff.reset();
                head.send_if_modified(|h| {
                    if h.as_deref() == Some(oid.as_str()) {
                        false
                    } else {
                        tracing::info!(source = %shown, revision = %oid, "fetched a new head");
                        *h = Some(oid.clone());
                        true
                    }
                });
                interval
            }
            Ok(Err(e)) => {
                shared.metrics.fetch_failure();
                let d = backoff.next();
                tracing::warn!(source = %shown, error = %chain(&e), retry_in_ms = d.as_millis() as u64, "fetch failed");
                d
            }
            Err(e) => {
                tracing::error!(error = %e, "the fetch task failed");
                backoff.next()
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shared.fetch_now.notified() => {}
            _ = stop.wait_for(|v| *v) => return,
        }
    }
}
