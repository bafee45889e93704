//! `PUT /v1/txn` for KV operations (`agent/consul/state/txn.go`, `txnKVS`): every operation
//! runs in order against the state as the earlier ones left it; if one fails, nothing is
//! written and the failures are returned with their positions; otherwise all writes commit at
//! one index.

use super::{Change, KvEntry, State, StateError, Store};
use std::collections::BTreeMap;

/// One KV operation of a transaction (`api.KVTxnOp`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvTxnOp {
    pub verb: String,
    pub key: String,
    pub value: Vec<u8>,
    pub flags: u64,
    /// The ModifyIndex for `cas`, `delete-cas` and `check-index`.
    pub index: u64,
    pub session: String,
}

/// What a transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Committed (at this index, when something was written): the entries the operations
    /// answered with, by position (`get` with its value, writes without).
    Applied(Option<u64>, Vec<(String, KvEntry)>),
    /// Rolled back: (operation index, why) for each failure.
    Failed(Vec<(usize, String)>),
}

/// The state as the transaction's earlier operations left it.
struct Overlay<'a> {
    base: &'a State,
    changed: BTreeMap<String, Option<KvEntry>>,
}

impl Overlay<'_> {
    fn get(&self, k: &str) -> Option<KvEntry> {
        match self.changed.get(k) {
            Some(v) => v.clone(),
            None => self.base.kv.get(k).cloned(),
        }
    }

    fn keys_under(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .base
            .kv
            .keys()
            .filter(|k| k.starts_with(prefix))
            .chain(self.changed.keys().filter(|k| k.starts_with(prefix)))
            .cloned()
            .collect();
        keys.sort();
        keys.dedup();
        keys.retain(|k| self.get(k).is_some());
        keys
    }

    fn put(
        &mut self,
        op: &KvTxnOp,
        index: u64,
        session: Option<String>,
        lock_index: u64,
    ) -> KvEntry {
        let existing = self.get(&op.key);
        let entry = KvEntry {
            value: op.value.clone(),
            flags: op.flags,
            session,
            lock_index,
            create_index: existing.map_or(index, |e| e.create_index),
            modify_index: index,
        };
        self.changed.insert(op.key.clone(), Some(entry.clone()));
        entry
    }
}

/// Applies one operation; `Ok` with the entries it answers with.
fn apply(o: &mut Overlay<'_>, op: &KvTxnOp, index: u64) -> Result<Vec<(String, KvEntry)>, String> {
    let k = &op.key;
    let existing = o.get(k);
    let blank = |e: KvEntry| KvEntry {
        value: Vec::new(),
        ..e
    };
    let keep = existing.as_ref().and_then(|e| e.session.clone());
    let lock_index = existing.as_ref().map_or(0, |e| e.lock_index);
    let one = |e: KvEntry| vec![(k.clone(), e)];
    match op.verb.as_str() {
        "set" => Ok(one(blank(o.put(op, index, keep, lock_index)))),
        "cas" => {
            let ok = match &existing {
                None => op.index == 0,
                Some(e) => op.index != 0 && e.modify_index == op.index,
            };
            if !ok {
                return Err(format!("failed to set key {k:?}, index is stale"));
            }
            Ok(one(blank(o.put(op, index, keep, lock_index))))
        }
        "lock" => {
            if !o.base.sessions.contains_key(&op.session) {
                return Err(format!("invalid session {:?}", op.session));
            }
            match keep {
                Some(holder) if holder != op.session => {
                    Err(format!("failed to lock key {k:?}, lock is already held"))
                }
                Some(_) => Ok(one(blank(o.put(
                    op,
                    index,
                    Some(op.session.clone()),
                    lock_index,
                )))),
                None => Ok(one(blank(o.put(
                    op,
                    index,
                    Some(op.session.clone()),
                    lock_index + 1,
                )))),
            }
        }
        "unlock" => {
            if keep.as_deref() != Some(op.session.as_str()) {
                return Err(format!(
                    "failed to unlock key {k:?}, lock isn't held, or is held by another session"
                ));
            }
            Ok(one(blank(o.put(op, index, None, lock_index))))
        }
        "get" => existing
            .map(one)
            .ok_or_else(|| format!("key {k:?} doesn't exist")),
        "get-tree" => Ok(o
            .keys_under(k)
            .into_iter()
            .filter_map(|key| o.get(&key).map(|e| (key, e)))
            .collect()),
        "check-index" => match existing {
            None => Err(format!("key {k:?} doesn't exist")),
            Some(e) if e.modify_index != op.index => Err(format!(
                "current modify index {} != {} for key {k:?}",
                e.modify_index, op.index
            )),
            Some(e) => Ok(one(blank(e))),
        },
        "check-session" => match existing {
            None => Err(format!("key {k:?} doesn't exist")),
            Some(e) if e.session.as_deref() != Some(op.session.as_str()) => Err(format!(
                "failed session check for key {k:?}, current session {:?} != {:?}",
                e.session.clone().unwrap_or_default(),
                op.session
            )),
            Some(e) => Ok(one(blank(e))),
        },
        "check-not-exists" => match existing {
            Some(_) => Err(format!("key {k:?} exists")),
            None => Ok(Vec::new()),
        },
        "delete" => {
            if existing.is_some() {
                o.changed.insert(k.clone(), None);
            }
            Ok(Vec::new())
        }
        "delete-tree" => {
            for key in o.keys_under(k) {
                o.changed.insert(key, None);
            }
            Ok(Vec::new())
        }
        "delete-cas" => {
            let ok = match &existing {
                None => op.index == 0,
                Some(e) => e.modify_index == op.index,
            };
            if !ok {
                return Err(format!("failed to delete key {k:?}, index is stale"));
            }
            o.changed.insert(k.clone(), None);
            Ok(Vec::new())
        }
        other => Err(format!("unknown KV verb {other:?}")),
    }
}

impl Store {
    /// Runs the operations as one transaction (`txnKVS` over `Txn.Apply`).
    pub fn kv_txn(&self, ops: &[KvTxnOp]) -> Result<TxnOutcome, StateError> {
        self.write(|s, tx| {
            // The index the writes would commit at; reserved only if something is written.
            let index = s.index + 1;
            let mut o = Overlay {
                base: s,
                changed: BTreeMap::new(),
            };
            let mut results = Vec::new();
            let mut errors = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                match apply(&mut o, op, index) {
                    Ok(r) => results.extend(r),
                    Err(e) => errors.push((i, e)),
                }
            }
            if !errors.is_empty() {
                return Ok(TxnOutcome::Failed(errors));
            }
            let writes: Vec<(String, Option<KvEntry>)> = o
                .changed
                .into_iter()
                .filter(|(k, v)| v.is_some() || s.kv.contains_key(k))
                .collect();
            if writes.is_empty() {
                return Ok(TxnOutcome::Applied(None, results));
            }
            let at = tx.index();
            for (k, v) in writes {
                tx.change(Change::Kv(k, v));
            }
            Ok(TxnOutcome::Applied(Some(at), results))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KvPut;

    fn op(verb: &str, key: &str, value: &str, index: u64) -> KvTxnOp {
        KvTxnOp {
            verb: verb.into(),
            key: key.into(),
            value: value.as_bytes().to_vec(),
            index,
            ..KvTxnOp::default()
        }
    }

    #[test]
    fn writes_commit_together_at_one_index() {
        let s = Store::in_memory();
        let out = s
            .kv_txn(&[
                op("set", "a", "1", 0),
                op("cas", "b", "2", 0),
                op("get", "a", "", 0),
            ])
            .unwrap();
        let TxnOutcome::Applied(Some(at), results) = out else {
            panic!("{out:?}")
        };
        let st = s.read();
        assert_eq!((st.kv["a"].modify_index, st.kv["b"].modify_index), (at, at));
        assert_eq!(results.len(), 3);
        assert_eq!(results[2].1.value, b"1");
        assert!(
            results[0].1.value.is_empty(),
            "writes answer without the value"
        );
    }

    #[test]
    fn one_failure_rolls_back_everything_and_says_where() {
        let s = Store::in_memory();
        s.kv_put(KvPut {
            key: "a".into(),
            value: b"x".to_vec(),
            ..KvPut::default()
        })
        .unwrap();
        let before = s.read().index;
        let out = s
            .kv_txn(&[
                op("set", "b", "1", 0),
                op("cas", "a", "2", 999),
                op("check-not-exists", "a", "", 0),
            ])
            .unwrap();
        assert_eq!(
            out,
            TxnOutcome::Failed(vec![
                (1, "failed to set key \"a\", index is stale".into()),
                (2, "key \"a\" exists".into()),
            ])
        );
        let st = s.read();
        assert_eq!(st.index, before);
        assert!(!st.kv.contains_key("b"));
    }

    #[test]
    fn delete_tree_sees_keys_set_earlier_in_the_transaction() {
        let s = Store::in_memory();
        let out = s
            .kv_txn(&[
                op("set", "t/a", "1", 0),
                op("set", "t/b", "1", 0),
                op("delete-tree", "t/", "", 0),
                op("set", "u", "1", 0),
            ])
            .unwrap();
        assert!(matches!(out, TxnOutcome::Applied(Some(_), _)));
        let st = s.read();
        assert_eq!(st.kv.keys().collect::<Vec<_>>(), vec!["u"]);
    }
}
