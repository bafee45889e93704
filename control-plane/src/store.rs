//! The control plane's state machine: one monotonically increasing index, CreateIndex and
//! ModifyIndex on every object, a max index per table for `X-Consul-Index`, and a watch that
//! wakes blocking queries. Every acknowledged write is committed durably to redb before the
//! caller answers; the in-memory maps are rebuilt from it on start.

use mesh_ca::{CaParams, CaState, KeyFactory};
use mesh_model::ConfigEntry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;
use tokio::sync::watch;

const OBJECTS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("objects");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to open the state database {path}: {source}")]
    Open {
        path: String,
        source: redb::DatabaseError,
    },
    #[error("failed to write the state database: {0}")]
    Write(String),
    #[error("failed to read the state database: {0}")]
    Read(String),
    #[error("stored object {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("CA: {0}")]
    Ca(#[from] mesh_ca::CaError),
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

#[derive(Debug, Default)]
pub struct State {
    pub index: u64,
    pub table_index: BTreeMap<Table, u64>,
    pub config: BTreeMap<(String, String), StoredEntry>,
    pub kv: BTreeMap<String, KvEntry>,
    pub sessions: BTreeMap<String, Session>,
    /// (node, service id) -> instance.
    pub catalog: BTreeMap<(String, String), CatalogService>,
    pub ca: Option<CaState>,
    pub ca_config: Option<CaConfigStored>,
    pub cluster_id: String,
    pub acl: AclState,
}

/// ACL objects. Links are stored by ID and shown with their current names.
#[derive(Debug, Default)]
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

/// One write: objects to put or delete, by key.
#[derive(Debug, Default)]
pub struct Batch {
    puts: Vec<(String, Vec<u8>)>,
    deletes: Vec<String>,
    tables: Vec<Table>,
}

impl Batch {
    pub fn put(&mut self, key: String, value: Vec<u8>, table: Table) {
        self.puts.push((key, value));
        self.tables.push(table);
    }

    pub fn delete(&mut self, key: String, table: Table) {
        self.deletes.push(key);
        self.tables.push(table);
    }
}

pub struct Store {
    state: Mutex<State>,
    db: Option<redb::Database>,
    changes: watch::Sender<u64>,
}

pub fn config_key(kind: &str, name: &str) -> String {
    format!("cfg/{kind}/{name}")
}

fn entry_bytes(e: &StoredEntry) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "entry": e.entry.to_json(),
        "create_index": e.create_index,
        "modify_index": e.modify_index,
    }))
    .unwrap_or_default()
}

pub fn encode_entry(e: &StoredEntry) -> Vec<u8> {
    entry_bytes(e)
}

impl Store {
    /// An in-memory store (the simulator's servers, tests).
    pub fn in_memory() -> Store {
        let (changes, _) = watch::channel(0);
        Store {
            state: Mutex::new(State::default()),
            db: None,
            changes,
        }
    }

    /// Opens (or creates) the state database in `dir` and loads it.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Write(format!("{}: {e}", dir.display())))?;
        let path = dir.join("state.redb");
        let db = redb::Database::create(&path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        let mut state = State::default();
        {
            use redb::ReadableDatabase as _;
            let txn = db
                .begin_read()
                .map_err(|e| StoreError::Read(e.to_string()))?;
            match txn.open_table(OBJECTS) {
                Ok(table) => {
                    use redb::ReadableTable;
                    for item in table.iter().map_err(|e| StoreError::Read(e.to_string()))? {
                        let (k, v) = item.map_err(|e| StoreError::Read(e.to_string()))?;
                        load_object(&mut state, k.value(), v.value())?;
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(StoreError::Read(e.to_string())),
            }
        }
        let (changes, _) = watch::channel(state.index);
        Ok(Store {
            state: Mutex::new(state),
            db: Some(db),
            changes,
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied write (writes commit to the
        // database first), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves the next index. Call with the lock held, then `commit`.
    pub fn next_index(state: &mut State) -> u64 {
        state.index += 1;
        state.index
    }

    /// Persists a batch durably, then bumps the tables' indexes and wakes watchers. The memory
    /// state must already hold the change; on error the caller must not acknowledge.
    pub fn commit(&self, state: &mut State, batch: Batch) -> Result<(), StoreError> {
        if let Some(db) = &self.db {
            let txn = db
                .begin_write()
                .map_err(|e| StoreError::Write(e.to_string()))?;
            {
                let mut t = txn
                    .open_table(OBJECTS)
                    .map_err(|e| StoreError::Write(e.to_string()))?;
                for (k, v) in &batch.puts {
                    t.insert(k.as_str(), v.as_slice())
                        .map_err(|e| StoreError::Write(e.to_string()))?;
                }
                for k in &batch.deletes {
                    t.remove(k.as_str())
                        .map_err(|e| StoreError::Write(e.to_string()))?;
                }
                let index = state.index.to_be_bytes();
                t.insert("meta/index", index.as_slice())
                    .map_err(|e| StoreError::Write(e.to_string()))?;
            }
            txn.commit().map_err(|e| StoreError::Write(e.to_string()))?;
        }
        for t in batch.tables {
            state.table_index.insert(t, state.index);
        }
        self.changes.send_replace(state.index);
        Ok(())
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Whether writes go to disk (`false` for [`Store::in_memory`]).
    pub fn is_durable(&self) -> bool {
        self.db.is_some()
    }

    /// Bootstraps the CA (and the cluster id) on first start.
    pub fn ensure_ca(
        &self,
        cluster_id: impl FnOnce() -> String,
        keys: &dyn KeyFactory,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.ensure_ca_with(
            cluster_id,
            CaParams::default(),
            serde_json::Map::new(),
            keys,
            now,
        )
    }

    /// Bootstraps the CA with `params`, storing `config` as its configuration, on first start.
    pub fn ensure_ca_with(
        &self,
        cluster_id: impl FnOnce() -> String,
        params: CaParams,
        config: serde_json::Map<String, serde_json::Value>,
        keys: &dyn KeyFactory,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.ca.is_some() {
            return Ok(());
        }
        let id = if s.cluster_id.is_empty() {
            cluster_id()
        } else {
            s.cluster_id.clone()
        };
        let ca = CaState::bootstrap(&id, params, now, keys)?;
        let index = Store::next_index(&mut s);
        let cfg = CaConfigStored {
            provider: "consul".into(),
            config,
            force_without_cross_signing: false,
            create_index: index,
            modify_index: index,
        };
        let mut batch = Batch::default();
        batch.put(
            "ca/state".into(),
            serde_json::to_vec(&ca).unwrap_or_default(),
            Table::Ca,
        );
        batch.put(
            "ca/config".into(),
            serde_json::to_vec(&cfg).unwrap_or_default(),
            Table::Ca,
        );
        batch.put("meta/cluster_id".into(), id.clone().into_bytes(), Table::Ca);
        s.ca = Some(ca);
        s.ca_config = Some(cfg);
        s.cluster_id = id;
        self.commit(&mut s, batch)
    }
}

impl Store {
    /// Writes config entries as one transaction, normalized as a write through the API is;
    /// for loading a state that was validated as a whole (the cross-entry rules would refuse
    /// some orders of single writes). Returns the index of the write.
    pub fn put_entries(
        &self,
        entries: impl IntoIterator<Item = ConfigEntry>,
    ) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let index = Store::next_index(&mut s);
        let mut batch = Batch::default();
        for mut entry in entries {
            mesh_semantics::config_entry::normalize(&mut entry);
            let key = (entry.kind().as_str().to_owned(), entry.name().to_owned());
            let create = s.config.get(&key).map(|e| e.create_index);
            let stored = StoredEntry {
                entry,
                create_index: create.unwrap_or(index),
                modify_index: index,
            };
            batch.put(
                config_key(&key.0, &key.1),
                entry_bytes(&stored),
                Table::Config,
            );
            s.config.insert(key, stored);
        }
        self.commit(&mut s, batch)?;
        Ok(index)
    }

    /// Registers catalog instances as one transaction (no sidecar expansion: register the
    /// `connect-proxy` instances themselves). Returns the index of the write.
    pub fn put_catalog(
        &self,
        services: impl IntoIterator<Item = CatalogService>,
    ) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let index = Store::next_index(&mut s);
        let mut batch = Batch::default();
        for mut svc in services {
            let key = (svc.node.clone(), svc.id.clone());
            svc.create_index = s.catalog.get(&key).map(|e| e.create_index).unwrap_or(index);
            svc.modify_index = index;
            batch.put(
                catalog_key(&svc.node, &svc.id),
                serde_json::to_vec(&svc).unwrap_or_default(),
                Table::Catalog,
            );
            s.catalog.insert(key, svc);
        }
        self.commit(&mut s, batch)?;
        Ok(index)
    }
}

fn corrupt(key: &str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        reason: reason.to_string(),
    }
}

fn load_object(state: &mut State, key: &str, value: &[u8]) -> Result<(), StoreError> {
    if key == "meta/index" {
        let mut b = [0u8; 8];
        if value.len() == 8 {
            b.copy_from_slice(value);
        }
        state.index = u64::from_be_bytes(b);
    } else if key == "meta/cluster_id" {
        state.cluster_id = String::from_utf8_lossy(value).into_owned();
    } else if let Some(rest) = key.strip_prefix("cfg/") {
        let v: serde_json::Value = serde_json::from_slice(value).map_err(|e| corrupt(key, e))?;
        let text = v["entry"].to_string();
        let node = mesh_syntax::parse_json(mesh_diagnostics::FileId(0), &text)
            .map_err(|e| corrupt(key, format!("{e:?}")))?;
        let entry =
            mesh_loader::decode_config_entry(&node).map_err(|e| corrupt(key, format!("{e:?}")))?;
        let stored = StoredEntry {
            entry,
            create_index: v["create_index"].as_u64().unwrap_or(0),
            modify_index: v["modify_index"].as_u64().unwrap_or(0),
        };
        let (kind, name) = rest.split_once('/').unwrap_or((rest, ""));
        bump(state, Table::Config, stored.modify_index);
        state
            .config
            .insert((kind.to_owned(), name.to_owned()), stored);
    } else if let Some(k) = key.strip_prefix("kv/") {
        let e: KvEntry = serde_json::from_slice(value).map_err(|e| corrupt(key, e))?;
        bump(state, Table::Kv, e.modify_index);
        state.kv.insert(k.to_owned(), e);
    } else if let Some(id) = key.strip_prefix("sess/") {
        let s: Session = serde_json::from_slice(value).map_err(|e| corrupt(key, e))?;
        bump(state, Table::Sessions, s.modify_index);
        state.sessions.insert(id.to_owned(), s);
    } else if key.starts_with("svc/") {
        let c: CatalogService = serde_json::from_slice(value).map_err(|e| corrupt(key, e))?;
        bump(state, Table::Catalog, c.modify_index);
        state.catalog.insert((c.node.clone(), c.id.clone()), c);
    } else if let Some(id) = key.strip_prefix("acl/policy/") {
        let p: AclPolicyStored = serde_json::from_slice(value).map_err(|e| corrupt(key, e))?;
        bump(state, Table::Acl, p.modify_index);
        state.acl.policies.insert(id.to_owned(), p);
    } else if let Some(id) = key.strip_prefix("acl/role/") {
        let r: AclRoleStored = serde_json::from_slice(value).map_err(|e| corrupt(key, e))?;
        bump(state, Table::Acl, r.modify_index);
        state.acl.roles.insert(id.to_owned(), r);
    } else if let Some(id) = key.strip_prefix("acl/token/") {
        let t: AclTokenStored = serde_json::from_slice(value).map_err(|e| corrupt(key, e))?;
        bump(state, Table::Acl, t.modify_index);
        state.acl.tokens.insert(id.to_owned(), t);
    } else if key == "acl/bootstrap" {
        let mut b = [0u8; 8];
        if value.len() == 8 {
            b.copy_from_slice(value);
        }
        state.acl.bootstrapped = Some(u64::from_be_bytes(b));
    } else if key == "ca/state" {
        state.ca = Some(serde_json::from_slice(value).map_err(|e| corrupt(key, e))?);
    } else if key == "ca/config" {
        let c: CaConfigStored = serde_json::from_slice(value).map_err(|e| corrupt(key, e))?;
        bump(state, Table::Ca, c.modify_index);
        state.ca_config = Some(c);
    }
    Ok(())
}

fn bump(state: &mut State, t: Table, index: u64) {
    let e = state.table_index.entry(t).or_insert(0);
    *e = (*e).max(index);
}

pub fn catalog_key(node: &str, id: &str) -> String {
    format!("svc/{node}/{id}")
}
