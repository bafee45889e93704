//! Writing one plan's steps, in order (independent ones concurrently, [`crate::waves`]). A step returns `false` when Consul moved under it (a
//! CAS write answered `false`, an ACL object or the CA configuration whose index changed since
//! it was read, a create that found its name taken): nothing is overwritten, the apply re-reads
//! and re-plans.

use crate::ledger::Ledger;
use crate::observe::acl_type;
use crate::{ApplyError, ApplyEvent, Desired, Result, StepError};
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use mesh_consul::{Client, ConsulError};
use mesh_model::EntryKind;
use mesh_plan::acl::{AclKind, Inventory, Record, CA_NAME};
use mesh_plan::{Action, ObjectKind, Plan, Step};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// How a run of steps ended.
pub(crate) enum Outcome {
    Done,
    /// These steps (positions in the plan, in order) found Consul changed: re-read and re-plan.
    Conflict(Vec<usize>),
    /// Asked to stop at a step boundary.
    Stopped,
}

/// What the steps need besides the plan.
pub(crate) struct StepContext<'a> {
    pub desired: &'a Desired,
    /// Declared entries by (kind, name), for the steps that write them.
    pub entries: BTreeMap<(EntryKind, &'a str), &'a mesh_model::ConfigEntry>,
    /// Secrets by inventory key, read before the first write.
    pub secrets: &'a BTreeMap<String, String>,
    pub client: &'a Client,
    /// Steps in flight at once, at least 1.
    pub parallelism: usize,
}

/// The inventory as the steps in flight share it: each borrows it only between two awaits.
type Shared<'l> = RefCell<&'l mut Ledger>;

/// Runs the plan's steps, the steps of one wave ([`crate::waves`]) up to `parallelism` at a
/// time, until the plan is done, a step conflicts or fails, or `stop` says so. Once any of
/// these happens no new step starts, and the steps in flight finish and are told. Returns the
/// writes made to Consul objects (inventory records are not counted); on a failure, the first
/// error (every step still in flight was told `Started` and not finished: the journal records
/// it as failed).
pub(crate) async fn run_steps(
    plan: &Plan,
    cx: &StepContext<'_>,
    ledger: &mut Ledger,
    stop: &(dyn Fn() -> bool + Sync),
    events: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<(usize, Outcome)> {
    let ledger = RefCell::new(ledger);
    let ledger = &ledger;
    let (mut writes, mut conflicts, mut failure, mut stopped) = (0, Vec::new(), None, false);
    for wave in crate::waves::waves(&plan.steps) {
        let mut next = wave.start;
        let mut running = FuturesUnordered::new();
        // Steps are told applied in the plan's order, whatever order they finish in: `told`
        // is the first not yet told, `finished` holds those that finished after a slower one
        // before them (`true`: applied).
        let (mut told, mut finished) = (wave.start, BTreeMap::new());
        loop {
            while running.len() < cx.parallelism.max(1)
                && next < wave.end
                && failure.is_none()
                && conflicts.is_empty()
                && !stopped
            {
                if stop() {
                    stopped = true;
                    break;
                }
                let (i, step) = (next, &plan.steps[next]);
                events(ApplyEvent::Started(step));
                running.push(async move { (i, run_step(step, cx, ledger).await) });
                next += 1;
            }
            let Some((i, result)) = running.next().await else {
                break;
            };
            let step = &plan.steps[i];
            finished.insert(i, matches!(result, Ok(true)));
            match result {
                Ok(true) if !matches!(step.action, Action::Record | Action::Forget) => writes += 1,
                Ok(true) => {}
                Ok(false) => conflicts.push(i),
                Err(source) => {
                    failure.get_or_insert(ApplyError::Step {
                        kind: step.kind.clone(),
                        name: step.name.clone(),
                        source,
                    });
                }
            }
            while let Some(applied) = finished.remove(&told) {
                if applied {
                    events(ApplyEvent::Applied(&plan.steps[told]));
                }
                told += 1;
            }
        }
        if failure.is_some() || !conflicts.is_empty() || stopped {
            break;
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if !conflicts.is_empty() {
        conflicts.sort_unstable();
        return Ok((writes, Outcome::Conflict(conflicts)));
    }
    Ok((
        writes,
        if stopped {
            Outcome::Stopped
        } else {
            Outcome::Done
        },
    ))
}

/// One step; `Ok(false)` when Consul moved under it.
async fn run_step(
    step: &Step,
    cx: &StepContext<'_>,
    ledger: &Shared<'_>,
) -> Result<bool, StepError> {
    match &step.kind {
        ObjectKind::Acl(kind) => acl_step(step, *kind, cx, ledger).await,
        ObjectKind::CaConfig => ca_step(step, cx, ledger).await,
        ObjectKind::ConfigEntry(_) => entry_step(step, cx, ledger).await,
    }
}

/// A config entry: written or deleted with `?cas=` (Consul's `ensureConfigEntryTxn` and
/// `deleteConfigEntryTxn` in `agent/consul/state/config_entry.go` compare the ModifyIndex).
/// The inventory records it once written (created, restored or adopted) and drops it once
/// deleted or forgotten.
async fn entry_step(
    step: &Step,
    cx: &StepContext<'_>,
    ledger: &Shared<'_>,
) -> Result<bool, StepError> {
    let kind = step.kind.entry().ok_or(StepError::NotDeclared)?;
    let done = match step.action {
        // A shared destination: the merged entry the plan computed (others' sources kept).
        Action::Create | Action::Update if shared_after(step).is_some() => {
            let merged = shared_after(step).ok_or(StepError::NotDeclared)?;
            cx.client.put_config_entry(&merged, Some(step.cas)).await?
        }
        Action::Create | Action::Update => {
            let entry = cx
                .entries
                .get(&(kind.clone(), step.name.as_str()))
                .ok_or(StepError::NotDeclared)?;
            // An inline-certificate's private key, read before the first write.
            let key = Inventory::key(step.kind.as_str(), &step.name);
            match cx.secrets.get(&key) {
                Some(secret) => {
                    let entry = entry.with_secret(secret);
                    cx.client.put_config_entry(&entry, Some(step.cas)).await?
                }
                None => cx.client.put_config_entry(entry, Some(step.cas)).await?,
            }
        }
        Action::Delete => {
            cx.client
                .delete_config_entry(kind.as_str(), &step.name, Some(step.cas))
                .await?
        }
        Action::Record | Action::Forget => true,
    };
    // A shared destination whose write leaves none of our sources is no longer ours either.
    let let_go = shared_after(step).is_some_and(|e| {
        let key = mesh_plan::shared::sources_key(&cx.desired.owner);
        !e.meta().contains_key(&key)
    });
    if done {
        match step.action {
            Action::Delete | Action::Forget => ledger.borrow_mut().remove(&step.kind, &step.name),
            _ if let_go => ledger.borrow_mut().remove(&step.kind, &step.name),
            _ => ledger
                .borrow_mut()
                .set(&step.kind, &step.name, Record::default()),
        }
    }
    Ok(done)
}

/// The entry a step writes to a shared destination.
pub(crate) fn shared_after(step: &Step) -> Option<mesh_model::ConfigEntry> {
    let after = step.after.as_ref()?;
    after["Meta"].get(mesh_plan::shared::SHARED_KEY)?;
    let i: mesh_model::ServiceIntentions = serde_json::from_value(after.clone()).ok()?;
    Some(mesh_model::ConfigEntry::ServiceIntentions(i))
}

/// One ACL step. `Ok(false)` when the object moved since it was read (no CAS in Consul's ACL
/// API, so the index is checked just before the write) or a create found the name taken.
async fn acl_step(
    step: &Step,
    kind: AclKind,
    cx: &StepContext<'_>,
    ledger: &Shared<'_>,
) -> Result<bool, StepError> {
    let (t, client) = (acl_type(kind), cx.client);
    let d = cx
        .desired
        .acl
        .iter()
        .find(|d| d.kind == kind && d.name == step.name);
    match step.action {
        Action::Create => {
            let d = d.ok_or(StepError::NotDeclared)?;
            let mut body = d.request.clone();
            if kind == AclKind::Token {
                let id = ledger
                    .borrow()
                    .record(&step.kind, &step.name)
                    .map(|r| r.id.clone())
                    .filter(|id| !id.is_empty())
                    .ok_or(StepError::Unclaimed)?;
                body["AccessorID"] = Value::String(id);
                let key = Inventory::key(step.kind.as_str(), &step.name);
                if let Some(secret) = cx.secrets.get(&key) {
                    body["SecretID"] = Value::String(secret.clone());
                }
            }
            let answer = match client.acl_write(t, None, &body).await {
                Ok(a) => a,
                // A retried create that had succeeded, or a racing writer: re-plan.
                Err(ConsulError::Status { body, .. }) if body.contains("already") => {
                    return Ok(false)
                }
                Err(e) => return Err(e.into()),
            };
            let record = Record {
                id: answer.id().to_owned(),
                modify_index: answer.modify_index(),
                body: Some(d.body.clone()),
            };
            ledger.borrow_mut().set(&step.kind, &step.name, record);
            Ok(true)
        }
        Action::Update => {
            let d = d.ok_or(StepError::NotDeclared)?;
            let id = step.id.clone().ok_or(StepError::NoId("update"))?;
            match client.acl_read(t, &id).await? {
                Some(v) if v.modify_index() == step.cas => {}
                _ => return Ok(false),
            }
            let mut body = d.request.clone();
            body[kind.id_field()] = Value::String(id.clone());
            let answer = client.acl_write(t, Some(&id), &body).await?;
            let record = Record {
                id,
                modify_index: answer.modify_index(),
                body: Some(d.body.clone()),
            };
            ledger.borrow_mut().set(&step.kind, &step.name, record);
            Ok(true)
        }
        Action::Delete => {
            let id = step.id.clone().ok_or(StepError::NoId("delete"))?;
            match client.acl_read(t, &id).await? {
                Some(v) if v.modify_index() == step.cas => {}
                Some(_) => return Ok(false),
                None => {
                    ledger.borrow_mut().remove(&step.kind, &step.name);
                    return Ok(true);
                }
            }
            client.acl_delete(t, &id).await?;
            ledger.borrow_mut().remove(&step.kind, &step.name);
            Ok(true)
        }
        Action::Record => {
            let record = Record {
                id: step.id.clone().unwrap_or_default(),
                modify_index: step.cas,
                body: step.after.clone(),
            };
            ledger.borrow_mut().set(&step.kind, &step.name, record);
            Ok(true)
        }
        Action::Forget => {
            ledger.borrow_mut().remove(&step.kind, &step.name);
            Ok(true)
        }
    }
}

/// The CA configuration: no CAS in Consul's API (`CAConfigurationSet` in
/// `agent/consul/connect_ca_endpoint.go`), so its index is compared just before the write.
async fn ca_step(
    step: &Step,
    cx: &StepContext<'_>,
    ledger: &Shared<'_>,
) -> Result<bool, StepError> {
    let c = cx.desired.ca.as_ref().ok_or(StepError::NotDeclared)?;
    let now = cx.client.ca_configuration().await?;
    if now.as_ref().map_or(0, |c| c.server.modify_index) != step.cas {
        return Ok(false);
    }
    let mut body = mesh_plan::acl::ca_request(c);
    let key = Inventory::key(ObjectKind::CaConfig.as_str(), CA_NAME);
    if let Some(token) = cx.secrets.get(&key) {
        body["Config"]["Token"] = Value::String(token.clone());
    }
    cx.client.put_ca_configuration(&body).await?;
    ledger
        .borrow_mut()
        .set(&ObjectKind::CaConfig, CA_NAME, Record::default());
    Ok(true)
}
