//! KV and sessions (`agent/consul/state/kvs.go`, `agent/consul/state/session.go`): writes with
//! check-and-set, locks acquired and released by sessions, and a session's locks released (or
//! their keys deleted) when it ends.

use super::{Change, KvEntry, Session, StateError, Store, Written};
use std::time::Duration;

/// `PUT /v1/kv/:key[?cas=&flags=&acquire=&release=]`.
#[derive(Debug, Clone, Default)]
pub struct KvPut {
    pub key: String,
    pub value: Vec<u8>,
    pub flags: Option<u64>,
    pub cas: Option<u64>,
    pub acquire: Option<String>,
    pub release: Option<String>,
}

/// `DELETE /v1/kv/:key[?recurse&cas=]`.
#[derive(Debug, Clone, Default)]
pub struct KvDelete {
    pub key: String,
    pub recurse: bool,
    pub cas: Option<u64>,
}

/// `PUT /v1/session/create`.
#[derive(Debug, Clone, Default)]
pub struct CreateSession {
    pub name: String,
    pub node: String,
    pub ttl: String,
    /// `release` or `delete`.
    pub behavior: String,
}

impl Store {
    /// `kvsSetTxn`, with `kvsLockTxn` and `kvsUnlockTxn` for `acquire` and `release`.
    pub fn kv_put(&self, cmd: KvPut) -> Result<Written, StateError> {
        self.write(|s, tx| {
            let existing = s.kv.get(&cmd.key);
            if let Some(c) = cmd.cas {
                let ok = match (existing, c) {
                    (None, 0) => true,
                    (Some(e), c) => e.modify_index == c && c != 0,
                    (None, _) => false,
                };
                if !ok {
                    return Ok(Written::Refused);
                }
            }
            let mut session = existing.and_then(|e| e.session.clone());
            let mut lock_index = existing.map(|e| e.lock_index).unwrap_or(0);
            if let Some(id) = &cmd.acquire {
                if !s.sessions.contains_key(id) {
                    return Err(StateError::Rejected(format!("invalid session {id:?}")));
                }
                match &session {
                    Some(holder) if holder != id => return Ok(Written::Refused),
                    Some(_) => {}
                    None => {
                        session = Some(id.clone());
                        lock_index += 1;
                    }
                }
            }
            if let Some(id) = &cmd.release {
                if session.as_ref() != Some(id) {
                    return Ok(Written::Refused);
                }
                session = None;
            }
            let index = tx.index();
            let entry = KvEntry {
                value: cmd.value,
                flags: cmd.flags.unwrap_or(existing.map(|e| e.flags).unwrap_or(0)),
                session,
                lock_index,
                create_index: existing.map(|e| e.create_index).unwrap_or(index),
                modify_index: index,
            };
            tx.change(Change::Kv(cmd.key, Some(entry)));
            Ok(Written::Applied(index))
        })
    }

    /// `kvsDeleteTxn` and `kvsDeleteTreeTxn`; the check-and-set is on the key itself.
    pub fn kv_delete(&self, cmd: KvDelete) -> Result<Written, StateError> {
        self.write(|s, tx| {
            let keys: Vec<String> = if cmd.recurse {
                s.kv.keys()
                    .filter(|k| k.starts_with(&cmd.key))
                    .cloned()
                    .collect()
            } else {
                s.kv.get(&cmd.key)
                    .map(|_| vec![cmd.key.clone()])
                    .unwrap_or_default()
            };
            if let Some(c) = cmd.cas {
                if s.kv.get(&cmd.key).map(|e| e.modify_index) != Some(c) {
                    return Ok(Written::Refused);
                }
            }
            if keys.is_empty() {
                return Ok(Written::Unchanged);
            }
            let index = tx.index();
            for k in keys {
                tx.change(Change::Kv(k, None));
            }
            Ok(Written::Applied(index))
        })
    }

    /// `sessionCreateTxn`, with the endpoint's checks (`agent/session_endpoint.go`,
    /// `SessionCreate`): the ID comes from `id`, drawn only once the request is valid.
    pub fn create_session(
        &self,
        cmd: CreateSession,
        id: impl FnOnce() -> String,
    ) -> Result<Session, StateError> {
        if cmd.behavior != "release" && cmd.behavior != "delete" {
            return Err(StateError::Rejected(format!(
                "Invalid Behavior setting {:?}",
                cmd.behavior
            )));
        }
        if !cmd.ttl.is_empty() {
            let ttl = mesh_semantics::ca_config::parse_duration(&cmd.ttl);
            let range = Duration::from_secs(10)..=Duration::from_secs(86_400);
            if !ttl.is_ok_and(|d| range.contains(&d)) {
                return Err(StateError::Invalid(format!(
                    "Invalid Session TTL '{}': must be between 10s and 24h0m0s",
                    cmd.ttl
                )));
            }
        }
        self.write(|_, tx| {
            let index = tx.index();
            let session = Session {
                id: id(),
                name: cmd.name,
                node: cmd.node,
                ttl: cmd.ttl,
                behavior: cmd.behavior,
                lock_delay_ns: 15_000_000_000,
                create_index: index,
                modify_index: index,
            };
            tx.change(Change::Session(session.id.clone(), Some(session.clone())));
            Ok(session)
        })
    }

    /// `sessionDestroyTxn` (also on expiry): removes the session and releases the locks it
    /// holds, or deletes their keys with the `delete` behaviour. A missing session is no change.
    pub fn destroy_session(&self, id: &str) -> Result<Written, StateError> {
        self.write(|s, tx| {
            let Some(session) = s.sessions.get(id) else {
                return Ok(Written::Unchanged);
            };
            let index = tx.index();
            tx.change(Change::Session(id.to_owned(), None));
            for (k, e) in
                s.kv.iter()
                    .filter(|(_, e)| e.session.as_deref() == Some(id))
            {
                let released = (session.behavior != "delete").then(|| KvEntry {
                    session: None,
                    modify_index: index,
                    ..e.clone()
                });
                tx.change(Change::Kv(k.clone(), released));
            }
            Ok(Written::Applied(index))
        })
    }

    /// `PUT /v1/session/renew/:id`: the session as stored (its TTL is restarted by the caller,
    /// which keeps the timers), or not found.
    pub fn renew_session(&self, id: &str) -> Result<Session, StateError> {
        self.read()
            .sessions
            .get(id)
            .cloned()
            .ok_or_else(|| StateError::NotFound(format!("Session id '{id}' not found")))
    }
}
