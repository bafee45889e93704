//! Durable storage: the change set of one write as one redb transaction of objects by key, and
//! the state rebuilt from those objects on start.

use super::{
    AclPolicyStored, AclRoleStored, AclTokenStored, CaConfigStored, CatalogService, Change,
    KvEntry, Session, State, Table,
};

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
    /// The commit shared by a group of writes failed: each of them answers with its error.
    #[error(transparent)]
    Group(std::sync::Arc<StoreError>),
}

/// One write as storage sees it: objects to put or delete by key, and the index after it.
#[derive(Debug, Default)]
pub struct Commit {
    pub index: u64,
    pub puts: Vec<(String, Vec<u8>)>,
    pub deletes: Vec<String>,
}

/// Where committed writes go. A commit is all or nothing; it returns only once durable.
pub trait Storage: Send + Sync {
    /// Every stored object, by key.
    fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    fn commit(&self, commit: &Commit) -> Result<(), StoreError>;
}

/// The state database: one redb table of objects by key.
pub struct RedbStorage {
    db: redb::Database,
}

impl RedbStorage {
    /// Opens (or creates) `state.redb` in `dir`.
    pub fn open(dir: &std::path::Path) -> Result<RedbStorage, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Write(format!("{}: {e}", dir.display())))?;
        let path = dir.join("state.redb");
        let db = redb::Database::create(&path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(RedbStorage { db })
    }
}

impl Storage for RedbStorage {
    fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        use redb::{ReadableDatabase as _, ReadableTable as _};
        let read = |e: &dyn std::fmt::Display| StoreError::Read(e.to_string());
        let txn = self.db.begin_read().map_err(|e| read(&e))?;
        let table = match txn.open_table(OBJECTS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(read(&e)),
        };
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| read(&e))? {
            let (k, v) = item.map_err(|e| read(&e))?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
        let write = |e: &dyn std::fmt::Display| StoreError::Write(e.to_string());
        let txn = self.db.begin_write().map_err(|e| write(&e))?;
        {
            let mut t = txn.open_table(OBJECTS).map_err(|e| write(&e))?;
            for (k, v) in &commit.puts {
                t.insert(k.as_str(), v.as_slice()).map_err(|e| write(&e))?;
            }
            for k in &commit.deletes {
                t.remove(k.as_str()).map_err(|e| write(&e))?;
            }
            let index = commit.index.to_be_bytes();
            t.insert("meta/index", index.as_slice())
                .map_err(|e| write(&e))?;
        }
        txn.commit().map_err(|e| write(&e))
    }
}

pub(crate) fn config_key(kind: &str, name: &str) -> String {
    format!("cfg/{kind}/{name}")
}

fn entry_bytes(e: &super::StoredEntry) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "entry": e.entry.to_json(),
        "create_index": e.create_index,
        "modify_index": e.modify_index,
    }))
    .unwrap_or_default()
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// The storage form of a change set committing at `index`; `tables` are the tables whose
/// index moves to it (kept so a restart answers the same `X-Consul-Index`).
pub(crate) fn encode(changes: &[Change], index: u64, tables: &[Table]) -> Commit {
    let mut c = Commit {
        index,
        ..Commit::default()
    };
    let mut put = |key: String, value: Option<Vec<u8>>| match value {
        Some(v) => c.puts.push((key, v)),
        None => c.deletes.push(key),
    };
    for change in changes {
        match change {
            Change::Config((kind, name), e) => {
                put(config_key(kind, name), e.as_ref().map(entry_bytes))
            }
            Change::Kv(k, e) => put(format!("kv/{k}"), e.as_ref().map(json)),
            Change::Session(id, s) => put(format!("sess/{id}"), s.as_ref().map(json)),
            Change::Catalog((node, id), s) => put(format!("svc/{node}/{id}"), s.as_ref().map(json)),
            Change::Check((node, id), c) => put(format!("chk/{node}/{id}"), c.as_ref().map(json)),
            Change::Policy(id, p) => put(format!("acl/policy/{id}"), p.as_ref().map(json)),
            Change::Role(id, r) => put(format!("acl/role/{id}"), r.as_ref().map(json)),
            Change::Token(id, t) => put(format!("acl/token/{id}"), t.as_ref().map(json)),
            Change::AclBootstrap(i) => put("acl/bootstrap".into(), Some(i.to_be_bytes().to_vec())),
            Change::Ca(ca, _) => put("ca/state".into(), Some(json(ca))),
            Change::CaConfig(cfg) => put("ca/config".into(), Some(json(cfg))),
            Change::ClusterId(id) => put("meta/cluster_id".into(), Some(id.clone().into_bytes())),
        }
    }
    for t in tables {
        put(
            format!("meta/table/{}", t.name()),
            Some(index.to_be_bytes().to_vec()),
        );
    }
    c
}

fn be_u64(value: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    if value.len() == 8 {
        b.copy_from_slice(value);
    }
    u64::from_be_bytes(b)
}

fn corrupt(key: &str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        reason: reason.to_string(),
    }
}

/// Rebuilds one stored object into `state`. Table indexes are the stored ones where a write
/// recorded them, else the highest ModifyIndex found (databases written before they were kept).
pub(crate) fn load_object(state: &mut State, key: &str, value: &[u8]) -> Result<(), StoreError> {
    if key == "meta/index" {
        state.index = be_u64(value);
    } else if let Some(name) = key.strip_prefix("meta/table/") {
        if let Some(t) = Table::ALL.into_iter().find(|t| t.name() == name) {
            bump(state, t, be_u64(value));
        }
    } else if key == "meta/cluster_id" {
        state.cluster_id = String::from_utf8_lossy(value).into_owned();
    } else if let Some(rest) = key.strip_prefix("cfg/") {
        let v: serde_json::Value = serde_json::from_slice(value).map_err(|e| corrupt(key, e))?;
        let text = v["entry"].to_string();
        let node = mesh_syntax::parse_json(mesh_diagnostics::FileId(0), &text)
            .map_err(|e| corrupt(key, format!("{e:?}")))?;
        let entry =
            mesh_loader::decode_config_entry(&node).map_err(|e| corrupt(key, format!("{e:?}")))?;
        let stored = super::StoredEntry {
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
    } else if key.starts_with("chk/") {
        let c: super::HealthCheck = serde_json::from_slice(value).map_err(|e| corrupt(key, e))?;
        bump(state, Table::Catalog, c.modify_index);
        state.checks.insert((c.node.clone(), c.check_id.clone()), c);
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
        state.acl.bootstrapped = Some(be_u64(value));
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
