//! Saved plans: `plan --out FILE` writes the reviewed plan, `apply --plan FILE` applies exactly
//! that plan or nothing.
//!
//! The file is versioned JSON: the plan's steps with their CAS indexes, a hash of the live state
//! the plan was read from, the repository's revision and a digest of the desired state it was
//! loaded into, the plan options, and a SHA-256 checksum over all of that. The checksum tells an
//! edited or damaged file from the one written; it is not a signature (whoever can edit the
//! file can recompute it), so the file is trusted only as far as where it is kept. It does not
//! need to be trusted further: before writing, the plan is made again from the repository and
//! Consul as they are, and applied only when it is the same plan, made against the same live
//! state. Secrets never enter the file: token SecretIDs and the Vault token are read from their
//! sources at apply time, as for any apply.

use crate::{Desired, Observed};
use mesh_plan::acl::AclKind;
use mesh_plan::{Action, Plan};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The `format` field of every saved plan.
pub const FORMAT: &str = "mesh-gitops-plan";
/// The version this build writes and the only one it reads.
pub const VERSION: u32 = 1;

/// A plan as saved for review and applied later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: String,
    pub version: u32,
    /// The mesh-gitops version that made it.
    pub mesh_gitops: String,
    pub owner: String,
    pub repository: SavedRepository,
    pub consul: SavedConsul,
    pub options: SavedOptions,
    /// What the plan reports (`in-sync`, `changes`, `blocked`).
    pub outcome: mesh_plan::Outcome,
    /// The plan as `plan --format json` shows its steps, refusals and unavoidable breaks.
    pub plan: Value,
}

/// The repository the plan was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRepository {
    /// The git commit checked out (`HEAD`), when the repository is in git; for the reader only.
    pub revision: Option<String>,
    /// `sha256:` over the desired state as loaded ([`repository_digest`]); compared at apply.
    pub digest: String,
}

/// The control plane the plan was made against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedConsul {
    /// Where it was read from, for the reader (the embedded control plane's port changes).
    pub address: String,
    /// `sha256:` over every object read and its ModifyIndex ([`live_state_hash`]).
    pub state: String,
}

/// The plan options, which `apply --plan` takes from the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOptions {
    pub adopt: bool,
    pub allow_empty: bool,
    pub max_deletes: Option<usize>,
}

/// A file that is not a saved plan this build can apply.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SavedPlanError {
    #[error("not a saved plan: {0}")]
    Malformed(String),
    #[error("a saved plan of version {0}; this mesh-gitops reads version {VERSION}")]
    Version(u32),
    #[error("the file was altered or damaged after it was written (its checksum does not match its content)")]
    Checksum,
}

/// Why a saved plan is no longer the plan to apply; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// The desired state loaded now is not the one the plan was made from.
    Repository,
    /// Consul changed since the plan was made: the plan's objects that moved (`kind "name":
    /// what`), empty when only objects the plan does not write moved.
    Consul { moved: Vec<String> },
    /// The same repository against the same live state plans differently (other options, or
    /// another mesh-gitops version).
    Replanned,
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stale::Repository => f.write_str(
                "the repository is not the one the plan was made from (its desired state differs)",
            ),
            Stale::Consul { moved } if moved.is_empty() => f.write_str(
                "Consul changed since the plan was made (objects the plan was read against moved)",
            ),
            Stale::Consul { moved } => write!(
                f,
                "Consul changed since the plan was made: {}",
                moved.join("; ")
            ),
            Stale::Replanned => f.write_str(
                "the repository and Consul, unchanged, now give a different plan (another mesh-gitops version?)",
            ),
        }
    }
}

fn sha256(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A value as it reads back from its JSON text, so that comparing and hashing never depend on
/// how a float was printed.
fn canonical(v: &Value) -> Value {
    serde_json::from_str(&v.to_string()).unwrap_or(Value::Null)
}

/// The digest of the desired state: everything the planner compares and the apply writes from
/// the repository (entries with their marks, ACL objects with their secret sources' names, the
/// CA configuration, the declared upstreams, the intention default).
pub fn repository_digest(desired: &Desired) -> String {
    let acl: Vec<Value> = desired
        .acl
        .iter()
        .map(|a| {
            json!({
                "kind": a.kind.as_str(), "name": a.name, "request": a.request,
                "secret_from": a.secret_from.as_ref().map(ToString::to_string),
            })
        })
        .collect();
    let ca = desired.ca.as_ref().map(|c| {
        json!({
            "request": mesh_plan::acl::ca_request(c),
            "token_from": c.token_from.as_ref().map(ToString::to_string),
        })
    });
    let state = json!({
        "owner": desired.owner,
        "entries": desired.entries.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
        "acl": acl,
        "ca": ca,
        "declared": desired.declared,
        "default_allow": desired.default_allow,
    });
    sha256(&canonical(&state).to_string())
}

/// Every object read from Consul, by `kind name`, with its ModifyIndex: config entries, ACL
/// objects (by ID), the CA configuration and the inventory.
pub fn live_indexes(observed: &Observed) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for e in &observed.entries {
        out.insert(
            format!("{} {}", e.entry.kind().as_str(), e.entry.name()),
            e.modify_index,
        );
    }
    for a in &observed.acl {
        out.insert(format!("{} {}", a.kind.as_str(), a.id), a.modify_index);
    }
    if let Some(ca) = &observed.ca {
        out.insert("ca-config".into(), ca.modify_index);
    }
    out.insert("inventory".into(), observed.inventory_index);
    out
}

/// The hash of the live state a plan is made against ([`live_indexes`], one line each).
pub fn live_state_hash(observed: &Observed) -> String {
    let lines: String = live_indexes(observed)
        .iter()
        .map(|(k, i)| format!("{k} {i}\n"))
        .collect();
    sha256(&lines)
}

impl SavedPlan {
    /// The plan made from `desired` against `observed`, ready to be written.
    pub fn new(
        desired: &Desired,
        observed: &Observed,
        plan: &Plan,
        options: SavedOptions,
        revision: Option<String>,
        address: &str,
    ) -> SavedPlan {
        SavedPlan {
            format: FORMAT.into(),
            version: VERSION,
            mesh_gitops: env!("CARGO_PKG_VERSION").into(),
            owner: desired.owner.clone(),
            repository: SavedRepository {
                revision,
                digest: repository_digest(desired),
            },
            consul: SavedConsul {
                address: address.into(),
                state: live_state_hash(observed),
            },
            options,
            outcome: plan.outcome(),
            plan: plan_value(plan),
        }
    }

    /// The file's text: pretty JSON with the `checksum` over the rest last.
    pub fn to_json(&self) -> String {
        let body = serde_json::to_value(self).unwrap_or(Value::Null);
        // Hashed as it will read back, so the reader computes the same.
        let body = canonical(&body);
        let mut file = body.clone();
        if let Value::Object(map) = &mut file {
            map.insert("checksum".into(), Value::String(sha256(&body.to_string())));
        }
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads a file written by [`SavedPlan::to_json`], refusing another format or version and
    /// any change to its content.
    pub fn from_json(text: &str) -> Result<SavedPlan, SavedPlanError> {
        let mut file: Value = serde_json::from_str(text)
            .map_err(|e| SavedPlanError::Malformed(format!("invalid JSON ({e})")))?;
        let map = file
            .as_object_mut()
            .ok_or_else(|| SavedPlanError::Malformed("not a JSON object".into()))?;
        if map.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(SavedPlanError::Malformed(format!(
                "its \"format\" is not \"{FORMAT}\""
            )));
        }
        let version = map.get("version").and_then(Value::as_u64).unwrap_or(0);
        if version != u64::from(VERSION) {
            return Err(SavedPlanError::Version(
                u32::try_from(version).unwrap_or(u32::MAX),
            ));
        }
        let checksum = match map.remove("checksum") {
            Some(Value::String(s)) => s,
            _ => return Err(SavedPlanError::Malformed("it has no \"checksum\"".into())),
        };
        if sha256(&file.to_string()) != checksum {
            return Err(SavedPlanError::Checksum);
        }
        serde_json::from_value(file).map_err(|e| SavedPlanError::Malformed(e.to_string()))
    }

    /// Whether this plan is still the one to apply, given the desired state and what Consul
    /// holds now, and the plan they give now.
    pub fn staleness(
        &self,
        desired: &Desired,
        observed: &Observed,
        replanned: &Plan,
    ) -> Option<Stale> {
        if repository_digest(desired) != self.repository.digest {
            return Some(Stale::Repository);
        }
        let moved = self.moved(observed);
        if !moved.is_empty() || live_state_hash(observed) != self.consul.state {
            return Some(Stale::Consul { moved });
        }
        (plan_value(replanned) != self.plan).then_some(Stale::Replanned)
    }

    /// The plan's objects whose index is not the one its step expects: a CAS index that moved,
    /// an object to create that now exists, one to change that is gone.
    pub fn moved(&self, observed: &Observed) -> Vec<String> {
        let live = live_indexes(observed);
        let by_name = acl_ids_by_name(observed);
        let steps = self.plan["steps"].as_array().cloned().unwrap_or_default();
        let mut out = Vec::new();
        for s in &steps {
            let kind = s["kind"].as_str().unwrap_or("");
            let name = s["name"].as_str().unwrap_or("");
            let cas = s["cas"].as_u64().unwrap_or(0);
            let action: Option<Action> = serde_json::from_value(s["action"].clone()).ok();
            let key = match (s["id"].as_str(), kind) {
                (Some(id), _) => format!("{kind} {id}"),
                (None, "ca-config") => "ca-config".to_owned(),
                (None, _) if kind.starts_with("acl-") => by_name
                    .get(&(kind.to_owned(), name.to_owned()))
                    .map(|id| format!("{kind} {id}"))
                    .unwrap_or_default(),
                (None, _) => format!("{kind} {name}"),
            };
            let now = live.get(&key).copied();
            let what = match (action, now) {
                (Some(Action::Create), Some(i)) if cas == 0 => format!("now exists (index {i})"),
                (Some(Action::Forget), Some(i)) => format!("exists again (index {i})"),
                (Some(Action::Create | Action::Forget), _) => continue,
                (_, None) if cas == 0 => continue,
                (_, None) => format!("planned at index {cas}, now absent"),
                (_, Some(i)) if i == cas || cas == 0 => continue,
                (_, Some(i)) => format!("planned at index {cas}, now at {i}"),
            };
            out.push(format!("{kind} \"{name}\" {what}"));
        }
        out
    }
}

/// Policies and roles by name (tokens have none in Consul), for steps that name them.
fn acl_ids_by_name(observed: &Observed) -> BTreeMap<(String, String), String> {
    observed
        .acl
        .iter()
        .filter(|a| a.kind != AclKind::Token && !a.name.is_empty())
        .map(|a| ((a.kind.as_str().to_owned(), a.name.clone()), a.id.clone()))
        .collect()
}

/// A plan as the file keeps it and as it compares.
fn plan_value(plan: &Plan) -> Value {
    canonical(&serde_json::to_value(plan).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_plan::acl::Inventory;
    use mesh_plan::{ObjectKind, ObservedEntry, Step};

    fn loaded(dir: &std::path::Path, protocol: &str) -> mesh_loader::Loaded {
        std::fs::write(dir.join("mesh-gitops.hcl"), "owner = \"unit\"\n").unwrap();
        std::fs::write(
            dir.join("web.hcl"),
            format!("Kind = \"service-defaults\"\nName = \"web\"\nProtocol = \"{protocol}\"\n"),
        )
        .unwrap();
        let l = mesh_loader::load_dir(dir, &Default::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        l
    }

    fn observed(entries: Vec<ObservedEntry>) -> Observed {
        Observed {
            entries,
            acl: Vec::new(),
            ca: None,
            inventory: Inventory::default(),
            inventory_index: 0,
        }
    }

    fn saved(desired: &Desired, obs: &Observed, plan: &Plan) -> SavedPlan {
        SavedPlan::new(
            desired,
            obs,
            plan,
            SavedOptions::default(),
            Some("abc".into()),
            "http://x",
        )
    }

    fn step(action: Action, cas: u64) -> Step {
        Step {
            action,
            kind: ObjectKind::ConfigEntry(mesh_model::EntryKind::ServiceDefaults),
            name: "web".into(),
            reason: String::new(),
            before: None,
            after: None,
            cas,
            id: None,
            root_rotation: false,
        }
    }

    #[test]
    fn a_written_plan_reads_back_and_any_edit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let desired = Desired::of(&loaded(dir.path(), "http"));
        let obs = observed(Vec::new());
        let plan = Plan {
            steps: vec![step(Action::Create, 0)],
            ..Plan::default()
        };
        let s = saved(&desired, &obs, &plan);
        let text = s.to_json();
        assert_eq!(SavedPlan::from_json(&text), Ok(s));
        let edited = text.replace("\"cas\": 0", "\"cas\": 7");
        assert_ne!(edited, text);
        assert_eq!(SavedPlan::from_json(&edited), Err(SavedPlanError::Checksum));
        let newer = text.replace("\"version\": 1", "\"version\": 2");
        assert_eq!(
            SavedPlan::from_json(&newer),
            Err(SavedPlanError::Version(2))
        );
        assert!(matches!(
            SavedPlan::from_json("{\"format\": \"other\"}"),
            Err(SavedPlanError::Malformed(_))
        ));
    }

    #[test]
    fn a_moved_index_a_new_object_and_another_repository_make_it_stale() {
        let dir = tempfile::tempdir().unwrap();
        let l = loaded(dir.path(), "http");
        let desired = Desired::of(&l);
        let entry = desired.entries[0].clone();
        let at = |i| {
            observed(vec![ObservedEntry {
                entry: entry.clone(),
                modify_index: i,
            }])
        };
        let plan = Plan {
            steps: vec![step(Action::Update, 5)],
            ..Plan::default()
        };
        let s = saved(&desired, &at(5), &plan);
        assert_eq!(s.staleness(&desired, &at(5), &plan), None);
        assert_eq!(
            s.staleness(&desired, &at(6), &plan),
            Some(Stale::Consul {
                moved: vec!["service-defaults \"web\" planned at index 5, now at 6".into()]
            })
        );
        assert_eq!(
            s.staleness(&desired, &observed(Vec::new()), &plan),
            Some(Stale::Consul {
                moved: vec!["service-defaults \"web\" planned at index 5, now absent".into()]
            })
        );
        let create = Plan {
            steps: vec![step(Action::Create, 0)],
            ..Plan::default()
        };
        let c = saved(&desired, &observed(Vec::new()), &create);
        assert_eq!(
            c.moved(&at(9)),
            vec!["service-defaults \"web\" now exists (index 9)".to_owned()]
        );
        let other = Desired::of(&loaded(dir.path(), "grpc"));
        assert_eq!(s.staleness(&other, &at(5), &plan), Some(Stale::Repository));
        assert_eq!(
            s.staleness(&desired, &at(5), &Plan::default()),
            Some(Stale::Replanned)
        );
    }
}
