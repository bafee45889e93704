//! The control plane's state machine, shaped like Consul's state store
//! (`agent/consul/state/`): one monotonically increasing index, CreateIndex and ModifyIndex on
//! every object, a max index per table for `X-Consul-Index`, and a notification that wakes
//! blocking queries.
//!
//! Every write goes through [`Store::write`], the one commit path: the operation reads the
//! current state and describes its effect as a change set; the change set is persisted durably
//! (one redb transaction when the store has a state directory); only after that commit succeeds
//! is it applied to the in-memory state that readers see, and blocking queries woken. A failed
//! commit leaves memory, the index and the disk as they were.

mod acl;
mod ca;
mod catalog;
mod changes;
mod config;
mod group;
mod health;
mod kv;
mod persist;
mod related;
mod txn;

pub use acl::{AclObject, AclWrite, Link, PolicyWrite, RoleWrite, TokenWrite, GLOBAL_MANAGEMENT};
pub use ca::SetCaConfig;
pub use changes::Subscription;
pub use config::{DeleteEntry, DeleteIntention, PutEntry, PutIntention};
pub use health::{HealthCheck, CRITICAL, PASSING, WARNING};
pub use kv::{CreateSession, KvDelete, KvPut};
pub use persist::{Commit, RedbStorage, Storage, StoreError};
pub use txn::{KvTxnOp, TxnOutcome};

use changes::Changes;
use mesh_ca::CaState;
use mesh_model::ConfigEntry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// Why a domain operation was refused. Each variant is one class of Consul's answers; the
/// HTTP layer maps them to status codes.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The commit to durable storage failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Refused by the state store or the endpoint's rules (Consul answers 500 with the message).
    #[error("{0}")]
    Rejected(String),
    /// The request is malformed (400).
    #[error("{0}")]
    Invalid(String),
    /// The object to change does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// `PUT /v1/acl/bootstrap` after the bootstrap (403).
    #[error("ACL bootstrap no longer allowed (reset index: {0})")]
    BootstrapDone(u64),
}

/// What a conditional write did: Consul answers `true` for the first two, `false` for the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Committed at this index.
    Applied(u64),
    /// Nothing to do (an identical entry, a missing key to delete); the index is unchanged.
    Unchanged,
    /// The check-and-set index (or the lock) did not match; the index is unchanged.
    Refused,
}

impl Written {
    /// Consul's `true`/`false` answer.
    pub fn ok(self) -> bool {
        !matches!(self, Written::Refused)
    }
}

/// A stored config entry with its indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    pub entry: ConfigEntry,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    pub value: Vec<u8>,
    pub flags: u64,
    pub session: Option<String>,
    pub lock_index: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub name: String,
    pub node: String,
    pub ttl: String,
    /// `release` or `delete`.
    pub behavior: String,
    pub lock_delay_ns: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A service instance in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogService {
    pub node: String,
    pub address: String,
    pub id: String,
    pub name: String,
    /// `""` or `connect-proxy`, ...
    pub kind: String,
    pub port: u16,
    pub service_address: String,
    pub tags: Vec<String>,
    pub meta: BTreeMap<String, String>,
    /// The proxy block as registered (for connect-proxy services).
    pub proxy: Option<serde_json::Value>,
    pub native: bool,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaConfigStored {
    pub provider: String,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub force_without_cross_signing: bool,
    pub create_index: u64,
    pub modify_index: u64,
}

/// Tables, for per-table indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Table {
    Config,
    Kv,
    Sessions,
    Ca,
    Catalog,
    Acl,
    /// Leaf issuance (the CA's serial counter), apart from the roots so that signing a leaf
    /// does not wake roots watchers.
    Leaf,
}

impl Table {
    pub const ALL: [Table; 7] = [
        Table::Config,
        Table::Kv,
        Table::Sessions,
        Table::Ca,
        Table::Catalog,
        Table::Acl,
        Table::Leaf,
    ];

    fn name(self) -> &'static str {
        match self {
            Table::Config => "config",
            Table::Kv => "kv",
            Table::Sessions => "sessions",
            Table::Ca => "ca",
            Table::Catalog => "catalog",
            Table::Acl => "acl",
            Table::Leaf => "leaf",
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct State {
    pub index: u64,
    pub table_index: BTreeMap<Table, u64>,
    pub config: BTreeMap<(String, String), StoredEntry>,
    pub kv: BTreeMap<String, KvEntry>,
    pub sessions: BTreeMap<String, Session>,
    /// (node, service id) -> instance.
    pub catalog: BTreeMap<(String, String), CatalogService>,
    /// (node, check id) -> health check.
    pub checks: BTreeMap<(String, String), HealthCheck>,
    pub ca: Option<CaState>,
    pub ca_config: Option<CaConfigStored>,
    pub cluster_id: String,
    pub acl: AclState,
}

/// ACL objects. Links are stored by ID and shown with their current names.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AclState {
    pub policies: BTreeMap<String, AclPolicyStored>,
    pub roles: BTreeMap<String, AclRoleStored>,
    /// By AccessorID.
    pub tokens: BTreeMap<String, AclTokenStored>,
    /// Index of the bootstrap, once done.
    pub bootstrapped: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclPolicyStored {
    pub id: String,
    pub name: String,
    pub description: String,
    pub rules: String,
    pub datacenters: Vec<String>,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclRoleStored {
    pub id: String,
    pub name: String,
    pub description: String,
    pub policy_ids: Vec<String>,
    pub service_identities: Vec<serde_json::Value>,
    pub node_identities: Vec<serde_json::Value>,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclTokenStored {
    pub accessor_id: String,
    pub secret_id: String,
    pub description: String,
    pub policy_ids: Vec<String>,
    pub role_ids: Vec<String>,
    pub service_identities: Vec<serde_json::Value>,
    pub node_identities: Vec<serde_json::Value>,
    pub local: bool,
    pub management: bool,
    pub create_time: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl std::fmt::Debug for AclTokenStored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclTokenStored")
            .field("accessor_id", &self.accessor_id)
            .field("secret_id", &"<redacted>")
            .field("description", &self.description)
            .finish()
    }
}

impl State {
    /// `X-Consul-Index` for a table: never 0.
    pub fn table_index(&self, t: Table) -> u64 {
        self.table_index.get(&t).copied().unwrap_or(0).max(1)
    }
}

/// One object's new value (`None`: deleted), as a write describes its effect; applied to memory
/// only once committed.
#[derive(Debug, Clone)]
pub enum Change {
    Config((String, String), Option<StoredEntry>),
    Kv(String, Option<KvEntry>),
    Session(String, Option<Session>),
    Catalog((String, String), Option<CatalogService>),
    Check((String, String), Option<HealthCheck>),
    Policy(String, Option<AclPolicyStored>),
    Role(String, Option<AclRoleStored>),
    Token(String, Option<AclTokenStored>),
    AclBootstrap(u64),
    /// The CA's state, and the table whose index moves with it (none for out-of-band signing).
    Ca(CaState, Option<Table>),
    CaConfig(CaConfigStored),
    ClusterId(String),
}

impl Change {
    /// The table whose index the change moves.
    fn table(&self) -> Option<Table> {
        match self {
            Change::Config(..) => Some(Table::Config),
            Change::Kv(..) => Some(Table::Kv),
            Change::Session(..) => Some(Table::Sessions),
            // Consul's health endpoints block on the catalog's index too.
            Change::Catalog(..) | Change::Check(..) => Some(Table::Catalog),
            Change::Policy(..) | Change::Role(..) | Change::Token(..) | Change::AclBootstrap(_) => {
                Some(Table::Acl)
            }
            Change::Ca(_, t) => *t,
            Change::CaConfig(_) | Change::ClusterId(_) => Some(Table::Ca),
        }
    }

    /// Applies the change to memory; only after it was committed.
    fn apply(self, s: &mut State) {
        fn set<K: Ord, V>(m: &mut BTreeMap<K, V>, k: K, v: Option<V>) {
            match v {
                Some(v) => m.insert(k, v),
                None => m.remove(&k),
            };
        }
        match self {
            Change::Config(k, v) => set(&mut s.config, k, v),
            Change::Kv(k, v) => set(&mut s.kv, k, v),
            Change::Session(k, v) => set(&mut s.sessions, k, v),
            Change::Catalog(k, v) => set(&mut s.catalog, k, v),
            Change::Check(k, v) => set(&mut s.checks, k, v),
            Change::Policy(k, v) => set(&mut s.acl.policies, k, v),
            Change::Role(k, v) => set(&mut s.acl.roles, k, v),
            Change::Token(k, v) => set(&mut s.acl.tokens, k, v),
            Change::AclBootstrap(i) => s.acl.bootstrapped = Some(i),
            Change::Ca(ca, _) => s.ca = Some(ca),
            Change::CaConfig(c) => s.ca_config = Some(c),
            Change::ClusterId(id) => s.cluster_id = id,
        }
    }
}

/// A write in progress: the index it will commit at (reserved on first use) and its changes.
pub(crate) struct Tx {
    current: u64,
    reserved: bool,
    changes: Vec<Change>,
}

impl Tx {
    /// The index this write commits at: the next one. Nothing moves until the commit succeeds.
    pub(crate) fn index(&mut self) -> u64 {
        self.reserved = true;
        self.current + 1
    }

    pub(crate) fn change(&mut self, c: Change) {
        self.changes.push(c);
    }
}

/// The state as readers see it: committed writes only.
pub struct ReadGuard<'a>(MutexGuard<'a, State>);

impl std::ops::Deref for ReadGuard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0
    }
}

pub struct Store {
    /// The committed state: what readers see.
    state: Mutex<State>,
    storage: Option<Box<dyn Storage>>,
    /// The writers' pipeline, on a durable store.
    group: Option<group::Group>,
    changes: Changes,
}

impl Store {
    /// An in-memory store (the simulator's servers, tests).
    pub fn in_memory() -> Store {
        Store {
            state: Mutex::new(State::default()),
            storage: None,
            group: None,
            changes: Changes::default(),
        }
    }

    /// Opens (or creates) the state database in `dir` and loads it.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::with_storage(Box::new(RedbStorage::open(dir)?))
    }

    /// A store over `storage`, loaded from it.
    pub fn with_storage(storage: Box<dyn Storage>) -> Result<Store, StoreError> {
        let mut state = State::default();
        for (key, value) in storage.load()? {
            persist::load_object(&mut state, &key, &value)?;
        }
        Ok(Store {
            group: Some(group::Group::new(&state)),
            state: Mutex::new(state),
            storage: Some(storage),
            changes: Changes::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Memory changes only after a commit, in `Change::apply`, which does not panic midway;
        // a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The committed state; hold it briefly (writers wait for it).
    pub fn read(&self) -> ReadGuard<'_> {
        ReadGuard(self.lock())
    }

    /// The one commit path. `op` reads the current state and records its effect in the
    /// transaction; the changes are persisted (when the store is durable), then applied to
    /// memory, the indexes moved and blocking queries woken. If `op` or the commit fails, nothing
    /// changes. Writes are decided one at a time, in index order; on a durable store the writes
    /// waiting for the disk share one commit ([`group`]).
    pub(crate) fn write<R, E: From<StoreError>>(
        &self,
        op: impl FnOnce(&State, &mut Tx) -> Result<R, E>,
    ) -> Result<R, E> {
        if let Some(group) = &self.group {
            return self.write_grouped(group, op);
        }
        let mut s = self.lock();
        let mut tx = Tx {
            current: s.index,
            reserved: false,
            changes: Vec::new(),
        };
        let result = op(&s, &mut tx)?;
        if tx.changes.is_empty() && !tx.reserved {
            return Ok(result);
        }
        let index = if tx.reserved { s.index + 1 } else { s.index };
        let tables = group::tables_of(&tx);
        group::apply(&mut s, index, &tables, tx.changes);
        if tx.reserved {
            self.changes.publish();
        }
        Ok(result)
    }

    pub fn subscribe(&self) -> Subscription {
        self.changes.subscribe()
    }

    /// Whether writes go to disk (`false` for [`Store::in_memory`]).
    pub fn is_durable(&self) -> bool {
        self.storage.is_some()
    }
}
