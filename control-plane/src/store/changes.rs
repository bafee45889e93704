//! The store's change notification: a version counter and one [`Notify`] that wakes every
//! blocking query after a commit.
//!
//! Not `tokio::sync::watch`: its receivers wait on one of eight `Notify` shards picked by the
//! runtime's random generator (seeded from the operating system), so after a commit that wakes
//! several queries (a root rotation wakes every leaf query) they resume in a different order
//! from run to run, and the simulator's schedule with them. One `Notify` wakes its waiters in
//! the order they registered, which depends only on the order the queries arrived in.

use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Shared {
    version: AtomicU64,
    notify: Notify,
}

/// The publishing side, owned by the store.
#[derive(Debug, Default)]
pub(crate) struct Changes(Arc<Shared>);

impl Changes {
    /// A commit happened: wakes every subscriber waiting in [`Subscription::changed`].
    pub(crate) fn publish(&self) {
        self.0.version.fetch_add(1, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub(crate) fn subscribe(&self) -> Subscription {
        Subscription {
            seen: self.0.version.load(Ordering::SeqCst),
            shared: self.0.clone(),
        }
    }
}

/// A blocking query's view of the commits: [`Subscription::changed`] returns once a commit
/// happened after the subscription was made or the last call returned.
#[derive(Debug)]
pub struct Subscription {
    shared: Arc<Shared>,
    seen: u64,
}

impl Subscription {
    pub async fn changed(&mut self) {
        loop {
            // Registered before the version is read, so a commit in between is not missed.
            let mut notified = pin!(self.shared.notify.notified());
            notified.as_mut().enable();
            let now = self.shared.version.load(Ordering::SeqCst);
            if now != self.seen {
                self.seen = now;
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_commit_before_the_wait_is_not_missed() {
        let changes = Changes::default();
        let mut sub = changes.subscribe();
        changes.publish();
        tokio::time::timeout(Duration::from_secs(1), sub.changed())
            .await
            .expect("the commit was seen");
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn waiters_wake_in_a_fixed_order() {
        // Many waiters, as the leaf queries of every sidecar during a root rotation: the order
        // they resume in is the same on every run.
        async fn order() -> Vec<usize> {
            let changes = Rc::new(Changes::default());
            let woke = Rc::new(RefCell::new(Vec::new()));
            let local = tokio::task::LocalSet::new();
            for i in 0..32 {
                let (mut sub, woke) = (changes.subscribe(), woke.clone());
                local.spawn_local(async move {
                    sub.changed().await;
                    woke.borrow_mut().push(i);
                });
            }
            local
                .run_until(async {
                    tokio::task::yield_now().await;
                    changes.publish();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                })
                .await;
            local.await;
            let woke = woke.borrow().clone();
            woke
        }
        let first = order().await;
        assert_eq!(first.len(), 32);
        for _ in 0..8 {
            assert_eq!(order().await, first);
        }
    }
}
