//! The Connect CA (`agent/consul/state/connect_ca.go`, `agent/consul/leader_connect_ca.go`):
//! bootstrap, configuration with root rotation, leaf signing and pruning. Each works on a copy
//! of the CA state, committed as a whole; memory holds the old CA until the commit succeeds.

use super::{CaConfigStored, Change, StateError, Store, StoreError, Table};
use mesh_ca::{CaParams, CaState, KeyFactory, Leaf};
use std::time::SystemTime;

/// `PUT /v1/connect/ca/configuration`, checked by the endpoint: what is stored, and the CA
/// parameters it derives.
#[derive(Debug, Clone)]
pub struct SetCaConfig {
    pub provider: String,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub force_without_cross_signing: bool,
    pub params: CaParams,
    /// A new root even without a key change (a `RootCert` was supplied).
    pub force_rotation: bool,
}

fn not_initialized() -> StateError {
    StateError::Rejected("CA not initialized".into())
}

impl Store {
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
        self.write(|s, tx| {
            if s.ca.is_some() {
                return Ok(());
            }
            let id = if s.cluster_id.is_empty() {
                cluster_id()
            } else {
                s.cluster_id.clone()
            };
            let ca = CaState::bootstrap(&id, params, now, keys)?;
            let index = tx.index();
            tx.change(Change::Ca(ca, Some(Table::Ca)));
            tx.change(Change::CaConfig(CaConfigStored {
                provider: "consul".into(),
                config,
                force_without_cross_signing: false,
                create_index: index,
                modify_index: index,
            }));
            tx.change(Change::ClusterId(id));
            Ok(())
        })
    }

    /// A new configuration; a key type or size change (or `force_rotation`) generates a new
    /// root cross-signed by the old one (`CAManager.UpdateConfiguration`). Returns the index.
    pub fn set_ca_config(
        &self,
        cmd: SetCaConfig,
        now: SystemTime,
        keys: &dyn KeyFactory,
    ) -> Result<u64, StateError> {
        self.write(|s, tx| {
            let mut ca = s.ca.clone().ok_or_else(not_initialized)?;
            ca.rotate(cmd.params, cmd.force_rotation, now, keys)
                .map_err(|e| StateError::Rejected(format!("could not initialize provider: {e}")))?;
            let index = tx.index();
            tx.change(Change::Ca(ca, Some(Table::Ca)));
            tx.change(Change::CaConfig(CaConfigStored {
                provider: cmd.provider,
                config: cmd.config,
                force_without_cross_signing: cmd.force_without_cross_signing,
                create_index: s
                    .ca_config
                    .as_ref()
                    .map(|c| c.create_index)
                    .unwrap_or(index),
                modify_index: index,
            }));
            Ok(index)
        })
    }

    /// Signs a leaf for `service`. The CA's serial counter moves, so the CA state is committed,
    /// under the leaf table's index (the roots' index stays). Returns the leaf, the index and
    /// the ID of the root that signed it.
    pub fn issue_leaf(
        &self,
        service: &str,
        datacenter: &str,
        now: SystemTime,
        keys: &dyn KeyFactory,
    ) -> Result<(Leaf, u64, String), StateError> {
        self.write(|s, tx| {
            let mut ca = s.ca.clone().ok_or_else(not_initialized)?;
            let root = ca.active_root().map(|r| r.id.clone()).unwrap_or_default();
            let leaf = ca
                .issue_leaf(service, datacenter, now, keys)
                .map_err(|e| StateError::Rejected(e.to_string()))?;
            let index = tx.index();
            tx.change(Change::Ca(ca, Some(Table::Leaf)));
            Ok((leaf, index, root))
        })
    }

    /// Drops roots rotated out more than twice the leaf TTL ago; returns how many.
    pub fn prune_roots(&self, now: SystemTime) -> Result<usize, StateError> {
        self.write(|s, tx| {
            let Some(mut ca) = s.ca.clone() else {
                return Ok(0);
            };
            let removed = ca.prune(now);
            if removed > 0 {
                tx.index();
                tx.change(Change::Ca(ca, Some(Table::Ca)));
            }
            Ok(removed)
        })
    }

    /// Signs with the CA outside the API, without moving any index: for certificates handed
    /// out of band (the simulator's adversarial probes). The serial counter's new value is
    /// committed like any write, but wakes no blocking query.
    pub fn sign_out_of_band<R, E>(
        &self,
        f: impl FnOnce(&mut CaState) -> Result<R, E>,
    ) -> Result<Result<R, E>, StateError> {
        self.write(|s, tx| {
            let mut ca = s.ca.clone().ok_or_else(not_initialized)?;
            let r = f(&mut ca);
            if r.is_ok() {
                tx.change(Change::Ca(ca, None));
            }
            Ok(r)
        })
    }
}
