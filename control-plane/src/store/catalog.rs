//! The catalog (`agent/consul/state/catalog.go`): service instances by node and ID.

use super::{CatalogService, Change, StateError, Store, Written};

impl Store {
    /// Registers catalog instances as one transaction (no sidecar expansion: register the
    /// `connect-proxy` instances themselves). Returns the index of the write.
    pub fn put_catalog(
        &self,
        services: impl IntoIterator<Item = CatalogService>,
    ) -> Result<u64, StateError> {
        self.write(|s, tx| {
            let index = tx.index();
            for mut svc in services {
                let key = (svc.node.clone(), svc.id.clone());
                svc.create_index = s.catalog.get(&key).map(|e| e.create_index).unwrap_or(index);
                svc.modify_index = index;
                tx.change(Change::Catalog(key, Some(svc)));
            }
            Ok(index)
        })
    }

    /// Deregisters the instances on `node` whose ID is one of `ids` (every instance on the
    /// node when `ids` is `None`), with their checks (every check on the node when `ids` is
    /// `None`: `deleteNodeTxn`; a service's checks go with it: `deleteServiceTxn`). Nothing to
    /// remove is no change.
    pub fn deregister(&self, node: &str, ids: Option<&[String]>) -> Result<Written, StateError> {
        self.write(|s, tx| {
            let keys: Vec<(String, String)> = s
                .catalog
                .keys()
                .filter(|(n, i)| n == node && ids.is_none_or(|ids| ids.contains(i)))
                .cloned()
                .collect();
            let checks: Vec<(String, String)> = s
                .checks
                .iter()
                .filter(|((n, _), c)| {
                    n == node && ids.is_none_or(|ids| ids.contains(&c.service_id))
                })
                .map(|(k, _)| k.clone())
                .collect();
            if keys.is_empty() && checks.is_empty() {
                return Ok(Written::Unchanged);
            }
            let index = tx.index();
            for k in keys {
                tx.change(Change::Catalog(k, None));
            }
            for k in checks {
                tx.change(Change::Check(k, None));
            }
            Ok(Written::Applied(index))
        })
    }
}
