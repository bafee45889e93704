//! The inventory this apply keeps (see `mesh_plan::acl`): what mesh-gitops owns, in Consul KV,
//! written with CAS, merged on conflict, and always flushed, even after a failed step.

use crate::{ApplyError, Desired, Observed, Result};
use mesh_consul::Client;
use mesh_plan::acl::{inventory_key, AclKind, Inventory, Record};
use mesh_plan::{Action, ObjectKind, Plan};
use std::collections::btree_map::Entry;

/// The inventory as read (`base`) and as this apply changes it (`ours`).
pub(crate) struct Ledger {
    key: String,
    base: Inventory,
    pub(crate) ours: Inventory,
    index: u64,
}

impl Ledger {
    pub(crate) fn new(desired: &Desired, observed: &Observed) -> Ledger {
        Ledger {
            key: inventory_key(&desired.owner),
            base: observed.inventory.clone(),
            ours: observed.inventory.clone(),
            index: observed.inventory_index,
        }
    }

    pub(crate) fn record(&self, kind: &ObjectKind, name: &str) -> Option<&Record> {
        self.ours.get(kind.as_str(), name)
    }

    pub(crate) fn set(&mut self, kind: &ObjectKind, name: &str, r: Record) {
        self.ours
            .objects
            .insert(Inventory::key(kind.as_str(), name), r);
    }

    pub(crate) fn remove(&mut self, kind: &ObjectKind, name: &str) {
        self.ours
            .objects
            .remove(&Inventory::key(kind.as_str(), name));
    }

    /// Claims every ACL name the plan is about to create, before creating it, so an apply
    /// killed between the claim and the create finds its own object on the next run. A token's
    /// claim carries the AccessorID it will be created with. Whether anything was claimed.
    pub(crate) fn claim_creates(&mut self, plan: &Plan) -> bool {
        let mut claimed = false;
        for s in &plan.steps {
            let (ObjectKind::Acl(kind), Action::Create) = (&s.kind, s.action) else {
                continue;
            };
            let key = Inventory::key(s.kind.as_str(), &s.name);
            if let Entry::Vacant(slot) = self.ours.objects.entry(key) {
                let id = if *kind == AclKind::Token {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    String::new()
                };
                slot.insert(Record {
                    id,
                    ..Record::default()
                });
                claimed = true;
            }
        }
        claimed
    }

    /// Writes our changes. On a CAS conflict (another writer), re-reads and replays our changes
    /// on top of theirs: nothing of theirs is lost, nothing of ours is dropped.
    pub(crate) async fn flush(&mut self, client: &Client) -> Result<()> {
        for _ in 0..5 {
            if self.ours.objects == self.base.objects {
                return Ok(());
            }
            let written = client
                .kv_put(&self.key, &self.ours.to_json(), Some(self.index))
                .await
                .map_err(|source| ApplyError::InventoryWrite {
                    key: self.key.clone(),
                    source,
                })?;
            if written {
                let (_, index) = client.kv_get(&self.key).await?.unwrap_or_default();
                self.index = index;
                self.base = self.ours.clone();
                return Ok(());
            }
            let (bytes, index) = client.kv_get(&self.key).await?.unwrap_or_default();
            let fresh = if bytes.is_empty() {
                Inventory::default()
            } else {
                Inventory::from_json(&bytes).map_err(|reason| ApplyError::InventoryCorrupted {
                    key: self.key.clone(),
                    reason,
                })?
            };
            let mut merged = fresh.clone();
            for (k, r) in &self.ours.objects {
                if self.base.objects.get(k) != Some(r) {
                    merged.objects.insert(k.clone(), r.clone());
                }
            }
            for k in self.base.objects.keys() {
                if !self.ours.objects.contains_key(k) {
                    merged.objects.remove(k);
                }
            }
            self.base = fresh;
            self.ours = merged;
            self.index = index;
        }
        Err(ApplyError::InventoryContended {
            key: self.key.clone(),
        })
    }
}
