//! Health checks (`agent/consul/state/catalog.go`: `ensureCheckTxn`, `deleteCheckTxn`): checks
//! by node and check ID, for a service or for the node itself. A check's status is one of
//! Consul's `api.HealthPassing`, `HealthWarning`, `HealthCritical`.

use super::{Change, StateError, Store, Written};
use serde::{Deserialize, Serialize};

pub const PASSING: &str = "passing";
pub const WARNING: &str = "warning";
pub const CRITICAL: &str = "critical";

/// A health check as the catalog keeps it (`structs.HealthCheck`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub node: String,
    pub check_id: String,
    pub name: String,
    pub status: String,
    pub notes: String,
    pub output: String,
    /// Empty for a node check.
    pub service_id: String,
    pub service_name: String,
    pub service_tags: Vec<String>,
    /// `ttl`, `http`, `tcp`, ... or empty (`maintenance` for a maintenance check).
    pub check_type: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// `structs.ValidStatus`.
pub fn valid_status(s: &str) -> bool {
    matches!(s, PASSING | WARNING | CRITICAL)
}

impl Store {
    /// Registers checks as one transaction; a check keeps its CreateIndex, and an unchanged
    /// check is no write (`ensureCheckTxn` compares before writing).
    pub fn put_checks(
        &self,
        checks: impl IntoIterator<Item = HealthCheck>,
    ) -> Result<Written, StateError> {
        self.write(|s, tx| {
            let mut written = Written::Unchanged;
            for mut c in checks {
                if !valid_status(&c.status) {
                    return Err(StateError::Invalid(format!(
                        "Invalid check status: {:?}",
                        c.status
                    )));
                }
                let key = (c.node.clone(), c.check_id.clone());
                if let Some(old) = s.checks.get(&key) {
                    let same = HealthCheck {
                        create_index: old.create_index,
                        modify_index: old.modify_index,
                        ..c.clone()
                    };
                    if &same == old {
                        continue;
                    }
                }
                let index = tx.index();
                c.create_index = s.checks.get(&key).map_or(index, |o| o.create_index);
                c.modify_index = index;
                tx.change(Change::Check(key, Some(c)));
                written = Written::Applied(index);
            }
            Ok(written)
        })
    }

    /// Sets a check's status and output (`/v1/agent/check/pass|warn|fail|update`).
    pub fn update_check(
        &self,
        node: &str,
        id: &str,
        status: &str,
        output: &str,
    ) -> Result<Written, StateError> {
        let existing = self
            .read()
            .checks
            .get(&(node.to_owned(), id.to_owned()))
            .cloned();
        let Some(c) = existing else {
            return Err(StateError::NotFound(format!(
                "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
            )));
        };
        self.put_checks([HealthCheck {
            status: status.to_owned(),
            output: output.to_owned(),
            ..c
        }])
    }

    /// Removes the checks on `node` with these IDs; missing ones are no change.
    pub fn delete_checks(&self, node: &str, ids: &[String]) -> Result<Written, StateError> {
        self.write(|s, tx| {
            let keys: Vec<(String, String)> = ids
                .iter()
                .map(|i| (node.to_owned(), i.clone()))
                .filter(|k| s.checks.contains_key(k))
                .collect();
            if keys.is_empty() {
                return Ok(Written::Unchanged);
            }
            let index = tx.index();
            for k in keys {
                tx.change(Change::Check(k, None));
            }
            Ok(Written::Applied(index))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, status: &str) -> HealthCheck {
        HealthCheck {
            node: "n1".into(),
            check_id: id.into(),
            name: id.into(),
            status: status.into(),
            notes: String::new(),
            output: String::new(),
            service_id: "web".into(),
            service_name: "web".into(),
            service_tags: Vec::new(),
            check_type: "ttl".into(),
            create_index: 0,
            modify_index: 0,
        }
    }

    #[test]
    fn a_check_keeps_its_create_index_and_an_unchanged_one_is_no_write() {
        let s = Store::in_memory();
        let Written::Applied(first) = s.put_checks([check("c", CRITICAL)]).unwrap() else {
            panic!("not written")
        };
        assert_eq!(
            s.put_checks([check("c", CRITICAL)]).unwrap(),
            Written::Unchanged
        );
        let Written::Applied(second) = s.update_check("n1", "c", PASSING, "ok").unwrap() else {
            panic!("not written")
        };
        let st = s.read();
        let c = &st.checks[&("n1".to_owned(), "c".to_owned())];
        assert_eq!(
            (c.create_index, c.modify_index, c.status.as_str()),
            (first, second, PASSING)
        );
    }

    #[test]
    fn a_bad_status_and_an_unknown_check_are_refused() {
        let s = Store::in_memory();
        assert!(matches!(
            s.put_checks([check("c", "fine")]),
            Err(StateError::Invalid(_))
        ));
        assert!(matches!(
            s.update_check("n1", "nope", PASSING, ""),
            Err(StateError::NotFound(_))
        ));
        assert_eq!(
            s.delete_checks("n1", &["nope".into()]).unwrap(),
            Written::Unchanged
        );
    }
}
