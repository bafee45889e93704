//! Both sides of a plan: what the repository wants ([`Desired`]) and what Consul holds
//! ([`Observed`]), and the plan between them.

use crate::{ApplyConfig, ApplyError, Result, Target};
use mesh_consul::{AclType, Client, StoredEntry};
use mesh_model::{CaConfig, ConfigEntry, EntryKind};
use mesh_plan::acl::{
    inventory_key, needing_details, AclKind, DesiredAcl, Inventory, ObservedAcl, ObservedCa,
};
use mesh_plan::{ObservedEntry, Plan, PlanInput, PlanOptions};
use std::time::Duration;

/// What the repository wants, in the form the planner compares.
pub struct Desired {
    pub owner: String,
    pub entries: Vec<ConfigEntry>,
    pub acl: Vec<DesiredAcl>,
    pub ca: Option<CaConfig>,
    pub declared: Vec<(String, String)>,
    pub default_allow: bool,
}

impl Desired {
    pub fn of(loaded: &mesh_loader::Loaded) -> Desired {
        let owner = loaded.state.settings.owner.clone();
        let entries = mesh_plan::marked_entries(&loaded.state, &owner, &|e: &ConfigEntry| {
            loaded.sources.path(e.span().file).to_owned()
        });
        Desired {
            owner,
            entries,
            acl: DesiredAcl::all(&loaded.state.acl),
            ca: loaded.state.ca_config.clone(),
            declared: mesh_plan::declared_edges(&loaded.state),
            default_allow: loaded.state.settings.acl.default_intention_allows(),
        }
    }
}

/// What Consul holds, read with one request per list.
pub struct Observed {
    pub entries: Vec<ObservedEntry>,
    pub acl: Vec<ObservedAcl>,
    pub ca: Option<ObservedCa>,
    pub inventory: Inventory,
    /// The inventory's KV ModifyIndex (0: absent), for its `?cas=` write.
    pub inventory_index: u64,
}

impl Observed {
    /// Objects read: entries, ACL objects and the CA configuration.
    pub fn objects(&self) -> usize {
        self.entries.len() + self.acl.len() + usize::from(self.ca.is_some())
    }
}

pub(crate) fn acl_type(k: AclKind) -> AclType {
    match k {
        AclKind::Policy => AclType::Policy,
        AclKind::Role => AclType::Role,
        AclKind::Token => AclType::Token,
    }
}

fn read_error(what: String) -> impl FnOnce(mesh_consul::ConsulError) -> ApplyError {
    move |source| ApplyError::Read { what, source }
}

/// Reads everything the plan compares: every config entry, the inventory, the ACL objects (when
/// the repository or the inventory has any) and the CA configuration (when declared).
pub async fn observe(client: &Client, desired: &Desired) -> Result<Observed> {
    let mut entries = Vec::new();
    for kind in EntryKind::CONSUL_KINDS {
        let list = client
            .config_entries(kind)
            .await
            .map_err(read_error(format!("cannot list {kind} entries")))?;
        entries.extend(list.value.into_iter().map(
            |StoredEntry {
                 entry,
                 modify_index,
                 ..
             }| ObservedEntry {
                entry,
                modify_index,
            },
        ));
    }
    let key = inventory_key(&desired.owner);
    let (inventory, inventory_index) = match client
        .kv_get(&key)
        .await
        .map_err(read_error(format!("cannot read the inventory {key}")))?
    {
        Some((bytes, index)) => {
            let inventory = Inventory::from_json(&bytes)
                .map_err(|reason| ApplyError::InventoryUnreadable { key, reason })?;
            (inventory, index)
        }
        None => (Inventory::default(), 0),
    };
    let acl = if !desired.acl.is_empty() || inventory.acl().next().is_some() {
        observe_acl(client, desired, &inventory).await?
    } else {
        Vec::new()
    };
    let ca = match &desired.ca {
        Some(_) => client
            .ca_configuration()
            .await
            .map_err(read_error("cannot read the CA configuration".into()))?
            .and_then(|c| ObservedCa::from_api(&c)),
        None => None,
    };
    Ok(Observed {
        entries,
        acl,
        ca,
        inventory,
        inventory_index,
    })
}

/// One list per ACL object type, then the full body of the objects whose list form lacks what
/// the plan compares (policies are listed without their rules).
async fn observe_acl(
    client: &Client,
    desired: &Desired,
    inventory: &Inventory,
) -> Result<Vec<ObservedAcl>> {
    let mut acl = Vec::new();
    for kind in AclKind::ALL {
        let list = client
            .acl_list(acl_type(kind))
            .await
            .map_err(|e| ApplyError::AclList {
                kind: kind.as_str(),
                source: e.into(),
            })?;
        acl.extend(list.iter().filter_map(ObservedAcl::from_api));
    }
    let wanted: Vec<(AclKind, String)> = needing_details(&desired.acl, &acl, inventory)
        .into_iter()
        .map(|o| (o.kind, o.id.clone()))
        .collect();
    for (kind, id) in wanted {
        if let Some(v) = client.acl_read(acl_type(kind), &id).await? {
            if let (Some(full), Some(slot)) = (
                ObservedAcl::from_api(&v),
                acl.iter_mut().find(|o| o.kind == kind && o.id == id),
            ) {
                *slot = full;
            }
        }
    }
    Ok(acl)
}

pub(crate) fn options(desired: &Desired, config: &ApplyConfig) -> PlanOptions {
    PlanOptions {
        owner: desired.owner.clone(),
        adopt: config.adopt,
        allow_empty: config.allow_empty,
        max_deletes: config.max_deletes,
        // Filled from the inventory by `plan_all`.
        recorded: Default::default(),
    }
}

/// The plan from `observed` to `desired`.
pub fn plan_of(desired: &Desired, observed: &Observed, config: &ApplyConfig) -> Result<Plan> {
    let input = PlanInput {
        entries: &desired.entries,
        observed_entries: &observed.entries,
        declared: &desired.declared,
        default_allow: desired.default_allow,
        acl: &desired.acl,
        observed_acl: &observed.acl,
        inventory: &observed.inventory,
        ca: desired.ca.as_ref(),
        observed_ca: observed.ca.as_ref(),
    };
    Ok(mesh_plan::plan_all(&input, &options(desired, config))?)
}

/// What reading Consul for a plan cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanStats {
    /// Objects read (entries, ACL objects, the CA configuration).
    pub objects: usize,
    /// The address they were read from.
    pub address: String,
    /// HTTP requests made.
    pub requests: u64,
    /// Reading and planning together.
    pub elapsed: Duration,
}

/// Observes the target and plans.
pub async fn make_plan(
    loaded: &mesh_loader::Loaded,
    target: &Target,
    config: &ApplyConfig,
) -> Result<(Plan, PlanStats)> {
    let (plan, stats, _) = make_plan_and(loaded, target, config, &|_, _, _| ()).await?;
    Ok((plan, stats))
}

/// As [`make_plan`], with `also` computed from both sides and the plan (the rollout simulated
/// from the live state, the saved plan).
pub async fn make_plan_and<T>(
    loaded: &mesh_loader::Loaded,
    target: &Target,
    config: &ApplyConfig,
    also: &(dyn Fn(&Desired, &Observed, &Plan) -> T + Sync),
) -> Result<(Plan, PlanStats, T)> {
    let started = std::time::Instant::now();
    let before = target.client.requests();
    let desired = Desired::of(loaded);
    let observed = observe(&target.client, &desired).await?;
    let plan = plan_of(&desired, &observed, config)?;
    let stats = PlanStats {
        objects: observed.objects(),
        address: target.client.address().to_owned(),
        requests: target.client.requests() - before,
        elapsed: started.elapsed(),
    };
    let extra = also(&desired, &observed, &plan);
    Ok((plan, stats, extra))
}
