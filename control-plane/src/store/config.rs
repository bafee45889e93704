//! Config entries and intentions (`agent/consul/state/config_entry.go`): writes with
//! check-and-set, validated against Consul's rules and the proposed entries the write can affect.

use super::{Change, State, StateError, Store, StoredEntry, Tx, Written};
use mesh_model::{ConfigEntry, ServiceIntentions, SourceIntention};
use mesh_semantics::cas::{self, CasOutcome};

/// `PUT /v1/config[?cas=]`.
#[derive(Debug, Clone)]
pub struct PutEntry {
    pub entry: ConfigEntry,
    pub cas: Option<u64>,
}

/// `DELETE /v1/config/:kind/:name[?cas=]`.
#[derive(Debug, Clone)]
pub struct DeleteEntry {
    pub kind: String,
    pub name: String,
    pub cas: Option<u64>,
}

/// `PUT /v1/connect/intentions/exact`: one source of a destination's `service-intentions`
/// entry, replacing the source of that name (not a peer's).
#[derive(Debug, Clone)]
pub struct PutIntention {
    pub destination: String,
    pub source: SourceIntention,
}

/// `DELETE /v1/connect/intentions/exact`.
#[derive(Debug, Clone)]
pub struct DeleteIntention {
    pub destination: String,
    pub source: String,
}

const INTENTIONS: &str = "service-intentions";

/// Validates an entry against Consul's rules and the proposed entries it can affect
/// (`agent/consul/state/config_entry.go`, `validateProposedConfigEntryInGraph`).
fn validate_with(
    proposed: &[ConfigEntry],
    entry: Option<&ConfigEntry>,
    previous: Option<&ConfigEntry>,
) -> Result<(), StateError> {
    if let Some(e) = entry {
        if let Some(d) = mesh_semantics::config_entry::validate(e)
            .into_iter()
            .chain(mesh_semantics::cross_entry::validate_write(
                proposed, e, previous,
            ))
            .find(|d| d.is_error())
        {
            return Err(StateError::Rejected(d.message));
        }
    }
    if let Some(d) = mesh_semantics::config_entry::validate_graph(proposed)
        .into_iter()
        .next()
    {
        return Err(StateError::Rejected(d.message));
    }
    Ok(())
}

/// The stored entries a write of `key` can affect, but not `key` itself ([`super::related`]).
fn others(s: &State, key: &(String, String)) -> Vec<ConfigEntry> {
    super::related::entries(s, key)
}

/// The put itself, inside a write (`ensureConfigEntryTxn`).
fn put(
    s: &State,
    tx: &mut Tx,
    mut entry: ConfigEntry,
    cas: Option<u64>,
) -> Result<Written, StateError> {
    mesh_semantics::config_entry::normalize(&mut entry);
    let key = (entry.kind().as_str().to_owned(), entry.name().to_owned());
    let existing = s.config.get(&key);
    match cas::decide_put(existing.map(|e| (e.modify_index, &e.entry)), cas, &entry) {
        CasOutcome::Skip => return Ok(Written::Unchanged),
        CasOutcome::Conflict => return Ok(Written::Refused),
        CasOutcome::Write => {}
    }
    let mut proposed = others(s, &key);
    proposed.push(entry.clone());
    validate_with(&proposed, Some(&entry), existing.map(|e| &e.entry))?;
    let index = tx.index();
    let stored = StoredEntry {
        entry,
        create_index: existing.map(|e| e.create_index).unwrap_or(index),
        modify_index: index,
    };
    tx.change(Change::Config(key, Some(stored)));
    Ok(Written::Applied(index))
}

/// The delete itself, inside a write (`deleteConfigEntryTxn`).
fn delete(
    s: &State,
    tx: &mut Tx,
    key: (String, String),
    cas: Option<u64>,
) -> Result<Written, StateError> {
    let existing = s.config.get(&key).map(|e| e.modify_index);
    match cas::decide_delete(existing, cas) {
        CasOutcome::Skip => return Ok(Written::Unchanged),
        CasOutcome::Conflict => return Ok(Written::Refused),
        CasOutcome::Write => {}
    }
    let remaining = others(s, &key);
    if let Some(d) = mesh_semantics::cross_entry::validate_delete(&remaining, &key.0, &key.1)
        .into_iter()
        .next()
    {
        return Err(StateError::Rejected(d.message));
    }
    validate_with(&remaining, None, None)?;
    let index = tx.index();
    tx.change(Change::Config(key, None));
    Ok(Written::Applied(index))
}

/// The destination's intentions entry, or a new empty one.
fn intentions_of(s: &State, destination: &str) -> Option<ServiceIntentions> {
    match s
        .config
        .get(&(INTENTIONS.to_owned(), destination.to_owned()))
        .map(|e| &e.entry)
    {
        Some(ConfigEntry::ServiceIntentions(i)) => Some(i.clone()),
        _ => None,
    }
}

impl Store {
    pub fn put_entry(&self, cmd: PutEntry) -> Result<Written, StateError> {
        self.write(|s, tx| put(s, tx, cmd.entry, cmd.cas))
    }

    pub fn delete_entry(&self, cmd: DeleteEntry) -> Result<Written, StateError> {
        self.write(|s, tx| delete(s, tx, (cmd.kind, cmd.name), cmd.cas))
    }

    /// Replaces the source's intention on the destination (`agent/consul/intention_endpoint.go`,
    /// `Apply` with the legacy upsert, as config-entry writes).
    pub fn put_intention(&self, cmd: PutIntention) -> Result<Written, StateError> {
        self.write(|s, tx| {
            let mut entry =
                intentions_of(s, &cmd.destination).unwrap_or_else(|| ServiceIntentions {
                    name: cmd.destination.clone(),
                    ..ServiceIntentions::default()
                });
            let src = &cmd.source.name;
            entry
                .sources
                .retain(|x| !(&x.name == src && x.peer.is_none()));
            entry.sources.push(cmd.source);
            put(s, tx, ConfigEntry::ServiceIntentions(entry), None)
        })
    }

    /// Removes the source's intention; removing the last one deletes the entry.
    pub fn delete_intention(&self, cmd: DeleteIntention) -> Result<Written, StateError> {
        self.write(|s, tx| {
            let Some(mut entry) = intentions_of(s, &cmd.destination) else {
                return Ok(Written::Unchanged);
            };
            entry
                .sources
                .retain(|x| !(x.name == cmd.source && x.peer.is_none()));
            if entry.sources.is_empty() {
                let key = (INTENTIONS.to_owned(), cmd.destination);
                return delete(s, tx, key, None);
            }
            put(s, tx, ConfigEntry::ServiceIntentions(entry), None)
        })
    }

    /// Writes config entries as one transaction, normalized as a write through the API is;
    /// for loading a state that was validated as a whole (the cross-entry rules would refuse
    /// some orders of single writes). Returns the index of the write.
    pub fn put_entries(
        &self,
        entries: impl IntoIterator<Item = ConfigEntry>,
    ) -> Result<u64, StateError> {
        self.write(|s, tx| {
            let index = tx.index();
            for mut entry in entries {
                mesh_semantics::config_entry::normalize(&mut entry);
                let key = (entry.kind().as_str().to_owned(), entry.name().to_owned());
                let create = s.config.get(&key).map(|e| e.create_index);
                let stored = StoredEntry {
                    entry,
                    create_index: create.unwrap_or(index),
                    modify_index: index,
                };
                tx.change(Change::Config(key, Some(stored)));
            }
            Ok(index)
        })
    }
}
