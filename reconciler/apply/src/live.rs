//! The live state as the model: what a plan starts from, for the rollout simulated before an
//! apply writes (`plan --simulate`, the apply and reconcile gates).

use crate::{Desired, Observed};
use mesh_model::{ConfigEntry, DesiredState, Service};
use mesh_plan::{Action, Plan};

/// What Consul holds now, in the model the repository loads into: every config entry read
/// (every owner's, as Consul stores them), and the services whose traffic the simulation runs.
/// Services come from the repository (`repo`), with its settings, and from Consul's catalog
/// (`catalog`, [`read_catalog`]): a service only the catalog knows keeps its sidecar's
/// upstreams, so the rollout carries its traffic too.
pub fn live_base(repo: &DesiredState, observed: &Observed, catalog: &[Service]) -> DesiredState {
    let declared = |name: &str| repo.services.iter().any(|s| s.name == name);
    let mut services = repo.services.clone();
    services.extend(catalog.iter().filter(|c| !declared(&c.name)).cloned());
    DesiredState {
        settings: repo.settings.clone(),
        services,
        config_entries: observed.entries.iter().map(|o| o.entry.clone()).collect(),
        ..DesiredState::default()
    }
}

/// One config-entry write of a plan, in the plan's order: the entry written (`None`: deleted).
#[derive(Debug, Clone, PartialEq)]
pub struct EntryWrite {
    pub kind: mesh_model::EntryKind,
    pub name: String,
    pub entry: Option<ConfigEntry>,
}

/// The config-entry writes of `plan`, in the order apply runs them, with the bodies apply
/// sends (the repository's entry; for a shared destination the merged entry the plan holds).
/// Inventory records, ACL objects and the CA configuration change no traffic and are left out.
pub fn entry_writes(plan: &Plan, desired: &Desired) -> Vec<EntryWrite> {
    plan.steps
        .iter()
        .filter(|s| !matches!(s.action, Action::Record | Action::Forget))
        .filter_map(|s| {
            let kind = s.kind.entry()?.clone();
            let entry = match s.action {
                Action::Delete => None,
                _ => crate::steps::shared_after(s).or_else(|| {
                    desired
                        .entries
                        .iter()
                        .find(|d| d.kind() == kind && d.name() == s.name)
                        .cloned()
                }),
            };
            Some(EntryWrite {
                kind,
                name: s.name.clone(),
                entry,
            })
        })
        .collect()
}

/// The live state with `writes` applied: what Consul holds once the plan ran.
pub fn after_writes(base: &DesiredState, writes: &[EntryWrite]) -> DesiredState {
    let mut end = base.clone();
    for w in writes {
        end.config_entries
            .retain(|e| !(e.kind() == w.kind && e.name() == w.name));
        if let Some(e) = &w.entry {
            end.config_entries.push(e.clone());
        }
    }
    end
}

/// What a vetting of a plan before its writes sees.
pub struct Rollout<'a> {
    pub desired: &'a Desired,
    pub observed: &'a Observed,
    pub plan: &'a Plan,
    /// The catalog's Connect services (read only when the plan writes intentions).
    pub catalog: &'a [Service],
}

/// Whether `plan` writes a `service-intentions` entry: the only kind the simulated proxies
/// enforce, so the only plans whose rollout is simulated.
pub fn writes_intentions(plan: &Plan) -> bool {
    plan.steps.iter().any(|s| {
        !matches!(s.action, Action::Record | Action::Forget)
            && s.kind.entry() == Some(&mesh_model::EntryKind::ServiceIntentions)
    })
}

/// The catalog's Connect services, for a plan whose rollout is simulated; none for a plan that
/// writes no intentions (the read costs a request per service).
pub async fn read_catalog(
    client: &mesh_consul::Client,
    plan: &Plan,
) -> crate::Result<Vec<Service>> {
    if !writes_intentions(plan) {
        return Ok(Vec::new());
    }
    catalog_services(client).await
}

/// The catalog's Connect services with their sidecars' upstreams, as the model's services.
pub async fn catalog_services(client: &mesh_consul::Client) -> crate::Result<Vec<Service>> {
    let live = mesh_consul::read_catalog_services(client)
        .await
        .map_err(|e| crate::ApplyError::Read {
            what: format!(
                "cannot read the catalog's services from Consul at {}: GET {}",
                e.address, e.endpoint
            ),
            source: e.source,
        })?;
    Ok(live.into_iter().map(|l| l.service).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_plan::acl::Inventory;
    use mesh_plan::ObservedEntry;

    #[test]
    fn the_base_is_consul_s_entries_with_the_repository_s_services_and_writes_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mesh-gitops.hcl"), "owner = \"unit\"\n").unwrap();
        std::fs::write(
            dir.path().join("web.hcl"),
            "service {\n  name = \"web\"\n  connect { sidecar_service {} }\n}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("d.hcl"),
            "Kind = \"service-defaults\"\nName = \"web\"\nProtocol = \"http\"\n",
        )
        .unwrap();
        let loaded = mesh_loader::load_dir(dir.path(), &Default::default());
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        let desired = Desired::of(&loaded);
        let theirs: ConfigEntry = desired.entries[0].clone();
        let observed = Observed {
            entries: vec![ObservedEntry {
                entry: theirs.clone(),
                modify_index: 3,
            }],
            acl: Vec::new(),
            ca: None,
            inventory: Inventory::default(),
            inventory_index: 0,
        };
        let base = live_base(&loaded.state, &observed, &[]);
        assert_eq!(base.config_entries, vec![theirs.clone()]);
        assert_eq!(base.services, loaded.state.services);
        let delete = EntryWrite {
            kind: theirs.kind(),
            name: "web".into(),
            entry: None,
        };
        assert!(after_writes(&base, std::slice::from_ref(&delete))
            .config_entries
            .is_empty());
        let put = EntryWrite {
            entry: Some(theirs.clone()),
            ..delete.clone()
        };
        assert_eq!(
            after_writes(&base, &[delete, put]).config_entries,
            vec![theirs]
        );
    }
}
