//! Secret sources (ACL SecretIDs, the Vault token of the CA configuration, an
//! inline-certificate's private key), read before
//! anything is written so a missing one stops the apply at the start. Values are returned,
//! never printed; errors name the source only.

use crate::{ApplyError, Desired, Result};
use mesh_model::SecretSource;
use mesh_plan::acl::{AclKind, Inventory};
use mesh_plan::{Action, ObjectKind, Plan};
use std::collections::BTreeMap;

/// Reads a secret from where the repository says it is. A relative `file:` path is relative to
/// the working directory.
fn read_secret(s: &SecretSource) -> Result<String> {
    match s {
        SecretSource::Env(var) => std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| ApplyError::SecretUnset(var.clone())),
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map(|v| v.trim().to_owned())
            .map_err(|source| ApplyError::SecretUnreadable {
                path: path.clone(),
                source,
            }),
    }
}

/// The secrets the plan's steps need, by inventory key (`kind/name`).
pub(crate) fn secrets_for(plan: &Plan, desired: &Desired) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in &plan.steps {
        let source = match (&s.kind, s.action) {
            (ObjectKind::Acl(AclKind::Token), Action::Create) => desired
                .acl
                .iter()
                .find(|d| d.kind == AclKind::Token && d.name == s.name)
                .and_then(|d| d.secret_from.clone()),
            (ObjectKind::CaConfig, _) => desired.ca.as_ref().and_then(|c| c.token_from.clone()),
            // An inline-certificate's `PrivateKeyFrom`, checked by the loader.
            (ObjectKind::ConfigEntry(kind), Action::Create | Action::Update) => desired
                .entries
                .iter()
                .find(|e| e.kind() == *kind && e.name() == s.name)
                .and_then(|e| e.secret_reference())
                .and_then(|r| mesh_loader::secret_source(r).ok()),
            _ => None,
        };
        if let Some(source) = source {
            out.insert(
                Inventory::key(s.kind.as_str(), &s.name),
                read_secret(&source)?,
            );
        }
    }
    Ok(out)
}
