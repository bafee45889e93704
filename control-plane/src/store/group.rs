//! Group commit for a durable store: writes that arrive while a commit is on the disk are
//! committed together, in one redb transaction, by whichever writer finds the disk free.
//!
//! Each write is still decided alone and in order: it reads the state as left by every write
//! before it (committed or waiting, so check-and-set compares with the latest ModifyIndex) and
//! takes the next index, exactly as it would one at a time; Consul's leader does the same when
//! it batches Raft log entries (`agent/consul/fsm`, one index per entry). What is shared is the
//! durable transaction. Nothing is answered before its commit: a writer returns only once the
//! batch holding it is on disk and in the readers' state; a failed commit fails every write in
//! it and every write decided after it (they read its effects), and the writers' view is rebuilt
//! from the committed state.

use super::persist::{self, Commit, StoreError};
use super::{Change, State, Store, Table, Tx};
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The writers' side of a durable store.
pub(super) struct Group {
    pipeline: Mutex<Pipeline>,
    decided: Condvar,
}

struct Pipeline {
    /// The committed state with every waiting write applied: what the next write reads.
    working: State,
    /// Decided writes not yet taken by a commit, in index order.
    queue: Vec<Pending>,
    /// A writer is committing a batch.
    committing: bool,
    next_ticket: u64,
    /// Outcomes of committed (or failed) writes not yet collected by their writer.
    outcomes: BTreeMap<u64, Result<(), Arc<StoreError>>>,
}

/// A write decided and waiting for its commit.
struct Pending {
    ticket: u64,
    /// The index after it, and the tables it moves to that index (none: it changes nothing).
    index: u64,
    tables: Vec<Table>,
    changes: Vec<Change>,
    /// It moves the state (an index or an object); `false` for an answer that changes nothing.
    writes: bool,
    publishes: bool,
}

impl Group {
    pub(super) fn new(committed: &State) -> Group {
        Group {
            pipeline: Mutex::new(Pipeline {
                working: committed.clone(),
                queue: Vec::new(),
                committing: false,
                next_ticket: 0,
                outcomes: BTreeMap::new(),
            }),
            decided: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pipeline> {
        // The pipeline changes only in steps that do not panic midway (an `op` panics before
        // anything is queued); a poisoned lock is still consistent.
        self.pipeline.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The tables a write moves: those it changes, once it took an index.
pub(super) fn tables_of(tx: &Tx) -> Vec<Table> {
    if !tx.reserved {
        return Vec::new();
    }
    let mut t: Vec<Table> = tx.changes.iter().filter_map(Change::table).collect();
    t.sort();
    t.dedup();
    t
}

/// Moves `state` by one decided write.
pub(super) fn apply(state: &mut State, index: u64, tables: &[Table], changes: Vec<Change>) {
    state.index = index;
    for t in tables {
        state.table_index.insert(*t, index);
    }
    for c in changes {
        c.apply(state);
    }
}

/// One storage transaction for a batch: each object's last value, the last index.
fn encode(batch: &[Pending]) -> Commit {
    let mut objects: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    let mut index = 0;
    for p in batch
        .iter()
        .filter(|p| !p.changes.is_empty() || !p.tables.is_empty())
    {
        let c = persist::encode(&p.changes, p.index, &p.tables);
        // Puts and deletes of one write never name the same key; across writes, the later wins.
        for k in c.deletes {
            objects.insert(k, None);
        }
        for (k, v) in c.puts {
            objects.insert(k, Some(v));
        }
        index = p.index;
    }
    let mut commit = Commit {
        index,
        ..Commit::default()
    };
    for (k, v) in objects {
        match v {
            Some(v) => commit.puts.push((k, v)),
            None => commit.deletes.push(k),
        }
    }
    commit
}

impl Store {
    /// [`Store::write`] on a durable store: decide `op` against the working state, queue it,
    /// and return once a commit holding it succeeded (or failed).
    pub(super) fn write_grouped<R, E: From<StoreError>>(
        &self,
        group: &Group,
        op: impl FnOnce(&State, &mut Tx) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut p = group.lock();
        let mut tx = Tx {
            current: p.working.index,
            reserved: false,
            changes: Vec::new(),
        };
        let result = op(&p.working, &mut tx);
        let idle = p.queue.is_empty() && !p.committing;
        if idle && (result.is_err() || (tx.changes.is_empty() && !tx.reserved)) {
            // Nothing waits to be committed: the working state is the committed one.
            return result;
        }
        // An answer that changes nothing (a refused check-and-set, an error) still waits for
        // the writes it read, so it is never given on a state that then fails to commit.
        let writes = result.is_ok() && (tx.reserved || !tx.changes.is_empty());
        let (index, tables, changes) = match &result {
            Ok(_) if tx.changes.is_empty() && !tx.reserved => {
                (p.working.index, Vec::new(), Vec::new())
            }
            Ok(_) => {
                let index = if tx.reserved {
                    tx.current + 1
                } else {
                    tx.current
                };
                let tables = tables_of(&tx);
                apply(&mut p.working, index, &tables, tx.changes.clone());
                (index, tables, tx.changes)
            }
            Err(_) => (p.working.index, Vec::new(), Vec::new()),
        };
        let ticket = p.next_ticket;
        p.next_ticket += 1;
        p.queue.push(Pending {
            ticket,
            index,
            tables,
            changes,
            writes,
            publishes: tx.reserved && result.is_ok(),
        });
        loop {
            if let Some(outcome) = p.outcomes.remove(&ticket) {
                return match outcome {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Group(e).into()),
                };
            }
            if p.committing {
                p = group
                    .decided
                    .wait(p)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            }
            // The disk is free: commit everything waiting, this write among it.
            p.committing = true;
            let batch = std::mem::take(&mut p.queue);
            drop(p);
            let tickets: Vec<u64> = batch.iter().map(|b| b.ticket).collect();
            let committed = self.commit_batch(&batch);
            if committed.is_ok() {
                self.publish_batch(batch);
            }
            p = group.lock();
            p.committing = false;
            match committed {
                Ok(()) => {
                    for t in tickets {
                        p.outcomes.insert(t, Ok(()));
                    }
                }
                Err(e) => {
                    // The writes queued meanwhile read this batch's effects: they fail too.
                    let e = Arc::new(e);
                    let queued = std::mem::take(&mut p.queue);
                    for t in tickets.into_iter().chain(queued.iter().map(|b| b.ticket)) {
                        p.outcomes.insert(t, Err(e.clone()));
                    }
                    p.working = self.lock().clone();
                }
            }
            group.decided.notify_all();
        }
    }

    /// Commits a batch durably; nothing in memory moves.
    fn commit_batch(&self, batch: &[Pending]) -> Result<(), StoreError> {
        let Some(storage) = &self.storage else {
            return Ok(());
        };
        if batch
            .iter()
            .all(|p| p.changes.is_empty() && p.tables.is_empty())
        {
            return Ok(());
        }
        storage.commit(&encode(batch))
    }

    /// A committed batch reaches the readers' state, in index order, and wakes blocking
    /// queries once.
    fn publish_batch(&self, batch: Vec<Pending>) {
        let mut publishes = false;
        {
            let mut s = self.lock();
            for b in batch {
                publishes |= b.publishes;
                if !b.writes {
                    continue;
                }
                apply(&mut s, b.index, &b.tables, b.changes);
            }
        }
        if publishes {
            self.changes.publish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PutEntry, RedbStorage, Storage, Written};
    use super::*;
    use mesh_model::{ConfigEntry, ServiceDefaults};
    use std::sync::mpsc;

    /// Real redb storage whose commits are counted; the first one holds the disk until
    /// released, and one can be made to fail.
    struct Gated {
        inner: RedbStorage,
        commits: Arc<Mutex<usize>>,
        entered: Mutex<Option<mpsc::Sender<()>>>,
        release: Mutex<Option<mpsc::Receiver<()>>>,
        fail_second: bool,
    }

    impl Storage for Gated {
        fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
            self.inner.load()
        }

        fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
            let n = {
                let mut c = self.commits.lock().unwrap();
                *c += 1;
                *c
            };
            if let Some(entered) = self.entered.lock().unwrap().take() {
                entered.send(()).unwrap();
                let release = self.release.lock().unwrap().take().unwrap();
                release.recv().unwrap();
            }
            if n == 2 && self.fail_second {
                return Err(StoreError::Write("injected commit failure".into()));
            }
            self.inner.commit(commit)
        }
    }

    struct Held {
        store: Arc<Store>,
        commits: Arc<Mutex<usize>>,
        entered: mpsc::Receiver<()>,
        release: mpsc::Sender<()>,
    }

    fn gated(dir: &std::path::Path, fail_second: bool) -> Held {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let commits = Arc::new(Mutex::new(0));
        let storage = Gated {
            inner: RedbStorage::open(dir).unwrap(),
            commits: commits.clone(),
            entered: Mutex::new(Some(entered_tx)),
            release: Mutex::new(Some(release_rx)),
            fail_second,
        };
        Held {
            store: Arc::new(Store::with_storage(Box::new(storage)).unwrap()),
            commits,
            entered,
            release,
        }
    }

    fn put(name: &str, protocol: &str, cas: Option<u64>) -> PutEntry {
        PutEntry {
            entry: ConfigEntry::ServiceDefaults(ServiceDefaults {
                name: name.into(),
                protocol: Some(protocol.into()),
                ..Default::default()
            }),
            cas,
        }
    }

    type Writer = std::thread::JoinHandle<Result<Written, crate::store::StateError>>;

    fn spawn(store: &Arc<Store>, cmd: PutEntry) -> Writer {
        let store = store.clone();
        std::thread::spawn(move || store.put_entry(cmd))
    }

    /// Waits until `n` writes are decided and waiting behind the commit on the disk.
    fn until_queued(store: &Store, n: usize) {
        let group = store.group.as_ref().unwrap();
        while group.lock().queue.len() < n {
            std::thread::yield_now();
        }
    }

    fn modify_index(store: &Store, name: &str) -> Option<u64> {
        let key = ("service-defaults".to_owned(), name.to_owned());
        store.read().config.get(&key).map(|e| e.modify_index)
    }

    #[test]
    fn writes_waiting_for_the_disk_share_one_commit_each_at_its_own_index() {
        let dir = tempfile::tempdir().unwrap();
        let held = gated(dir.path(), false);
        let first = spawn(&held.store, put("s0", "http", None));
        held.entered.recv().unwrap();
        let writers: Vec<Writer> = (1..8)
            .map(|i| spawn(&held.store, put(&format!("s{i}"), "http", None)))
            .collect();
        until_queued(&held.store, 7);
        // Not answered before their commit.
        assert_eq!(modify_index(&held.store, "s1"), None);
        held.release.send(()).unwrap();
        let mut indexes = vec![first.join().unwrap().unwrap()];
        indexes.extend(writers.into_iter().map(|w| w.join().unwrap().unwrap()));
        assert_eq!(
            *held.commits.lock().unwrap(),
            2,
            "one commit, then one for the seven"
        );
        let mut got: Vec<u64> = indexes
            .iter()
            .map(|w| match w {
                Written::Applied(i) => *i,
                other => panic!("{other:?}"),
            })
            .collect();
        got.sort();
        assert_eq!(got, (1..=8).collect::<Vec<u64>>(), "one index per write");
        assert_eq!(held.store.read().index, 8);
        // Every acknowledged write is on disk at its index.
        let memory: Vec<Option<u64>> = (0..8)
            .map(|i| modify_index(&held.store, &format!("s{i}")))
            .collect();
        drop(held);
        let reopened = Store::open(dir.path()).unwrap();
        let disk: Vec<Option<u64>> = (0..8)
            .map(|i| modify_index(&reopened, &format!("s{i}")))
            .collect();
        assert_eq!(disk, memory);
        assert_eq!(reopened.read().index, 8);
    }

    #[test]
    fn check_and_set_in_one_batch_sees_the_writes_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let held = gated(dir.path(), false);
        let first = spawn(&held.store, put("web", "http", Some(0)));
        held.entered.recv().unwrap();
        // Both read index 1 as web's ModifyIndex; the first queued wins, the second is refused
        // because it sees the first.
        let a = spawn(&held.store, put("web", "grpc", Some(1)));
        until_queued(&held.store, 1);
        let b = spawn(&held.store, put("web", "http2", Some(1)));
        until_queued(&held.store, 2);
        held.release.send(()).unwrap();
        assert_eq!(first.join().unwrap().unwrap(), Written::Applied(1));
        assert_eq!(a.join().unwrap().unwrap(), Written::Applied(2));
        assert_eq!(b.join().unwrap().unwrap(), Written::Refused);
        assert_eq!(modify_index(&held.store, "web"), Some(2));
    }

    #[test]
    fn a_failed_group_commit_fails_each_write_in_it_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let held = gated(dir.path(), true);
        let first = spawn(&held.store, put("a", "http", None));
        held.entered.recv().unwrap();
        let b = spawn(&held.store, put("b", "http", None));
        let c = spawn(&held.store, put("a", "grpc", Some(1)));
        until_queued(&held.store, 2);
        held.release.send(()).unwrap();
        assert_eq!(first.join().unwrap().unwrap(), Written::Applied(1));
        for w in [b, c] {
            let e = w.join().unwrap().expect_err("the shared commit failed");
            assert!(e.to_string().contains("injected commit failure"), "{e}");
        }
        assert_eq!(held.store.read().index, 1);
        assert_eq!(modify_index(&held.store, "b"), None);
        // The writers' view was rebuilt: the same write succeeds at the next index.
        assert_eq!(
            held.store.put_entry(put("a", "grpc", Some(1))).unwrap(),
            Written::Applied(2)
        );
    }
}
