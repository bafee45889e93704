//! `mesh-gitops plan` and `apply`: config entries, ACL policies, roles and tokens, and the CA
//! configuration, against Consul (`--consul` or the consul CLI's environment) or the embedded
//! control plane in the state directory.
//!
//! Reading is a handful of requests: one list per config-entry kind, one per ACL object type
//! (only when the repository or the inventory has ACL objects), the inventory, and the CA
//! configuration when declared. Writing follows the plan's order; config entries carry `?cas=`,
//! ACL objects and the CA configuration (whose API has no CAS) are re-read just before they are
//! written and skipped into a re-plan if their ModifyIndex moved. The inventory is written with
//! CAS, claims before creates, and always flushed, so a killed apply converges on the next run.

use anyhow::{bail, Context, Result};
use mesh_consul::{AclType, Client, ClientConfig, ConsulError, StoredEntry};
use mesh_model::{CaConfig, ConfigEntry, EntryKind, SecretSource};
use mesh_plan::acl::{
    inventory_key, needing_details, AclKind, DesiredAcl, Inventory, ObservedAcl, ObservedCa,
    Record, CA_NAME,
};
use mesh_plan::{Action, ObservedEntry, Plan, PlanInput, PlanOptions, Step};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Consul's address (else CONSUL_HTTP_ADDR; with neither, the embedded control plane).
    #[arg(long, value_name = "URL")]
    pub consul: Option<String>,
    /// The embedded control plane's state directory.
    #[arg(long, default_value = ".mesh-gitops")]
    pub state_dir: PathBuf,
    /// Take ownership of existing objects identical to the repository's.
    #[arg(long)]
    pub adopt: bool,
    /// Allow a plan that deletes every object mesh-gitops owns.
    #[arg(long)]
    pub allow_empty: bool,
}

/// A client, and whether it talks to the embedded control plane.
pub struct Target {
    /// Shared with the reconcile loop's watchers and leader election.
    pub client: std::sync::Arc<Client>,
    pub embedded: bool,
}

fn acl_type(k: AclKind) -> AclType {
    match k {
        AclKind::Policy => AclType::Policy,
        AclKind::Role => AclType::Role,
        AclKind::Token => AclType::Token,
    }
}

/// Connects to Consul, or starts the embedded control plane in the state directory (with the
/// ACL system the repository's `mesh-gitops.hcl` describes, and a management token kept in the
/// state directory, mode 0600).
pub async fn connect(args: &TargetArgs, acl: mesh_model::AclSettings) -> Result<Target> {
    let env = |k: &str| std::env::var(k).ok();
    if args.consul.is_some() || env("CONSUL_HTTP_ADDR").is_some_and(|v| !v.is_empty()) {
        let config = ClientConfig::from_env(args.consul.as_deref(), &env)?;
        return Ok(Target {
            client: std::sync::Arc::new(Client::new(config)?),
            embedded: false,
        });
    }
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("cannot create {}", args.state_dir.display()))?;
    let token_file = args.state_dir.join("bootstrap-token");
    let opts = mesh_control_plane::ServerOptions {
        state_dir: Some(args.state_dir.clone()),
        listen: "127.0.0.1:0".parse().expect("a valid address"),
        acl_default_allow: acl
            .enabled
            .then_some(acl.default_policy == mesh_model::DefaultPolicy::Allow),
        bootstrap_token_file: Some(token_file.clone()),
        ..Default::default()
    };
    let bound = mesh_control_plane::bind(&opts).await.with_context(|| {
        format!(
            "cannot open the embedded control plane in {}",
            args.state_dir.display()
        )
    })?;
    let address = format!("http://{}", bound.addr);
    tokio::spawn(bound.serve(std::future::pending()));
    let token = if acl.enabled {
        Some(
            std::fs::read_to_string(&token_file)
                .with_context(|| format!("cannot read {}", token_file.display()))?
                .trim()
                .to_owned(),
        )
    } else {
        None
    };
    let config = ClientConfig {
        address,
        token,
        verify_tls: true,
        request_timeout: std::time::Duration::from_secs(30),
        ..ClientConfig::default()
    };
    Ok(Target {
        client: std::sync::Arc::new(Client::new(config)?),
        embedded: true,
    })
}

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

pub async fn observe(client: &Client, desired: &Desired) -> Result<Observed> {
    let mut entries = Vec::new();
    for kind in EntryKind::CONSUL_KINDS {
        let list = client
            .config_entries(kind)
            .await
            .with_context(|| format!("cannot list {kind} entries"))?;
        entries.extend(list.value.into_iter().map(
            |StoredEntry {
                 entry,
                 modify_index,
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
        .with_context(|| format!("cannot read the inventory {key}"))?
    {
        Some((bytes, index)) => (
            Inventory::from_json(&bytes).map_err(|e| {
                anyhow::anyhow!("the inventory {key} is unreadable ({e}); refusing to plan without knowing what is owned")
            })?,
            index,
        ),
        None => (Inventory::default(), 0),
    };
    let mut acl = Vec::new();
    if !desired.acl.is_empty() || inventory.acl().next().is_some() {
        for kind in AclKind::ALL {
            let list = client
                .acl_list(acl_type(kind))
                .await
                .map_err(acl_context)
                .with_context(|| format!("cannot list {} objects", kind.as_str()))?;
            acl.extend(list.iter().filter_map(|v| ObservedAcl::from_api(kind, v)));
        }
        let wanted: Vec<(AclKind, String)> = needing_details(&desired.acl, &acl, &inventory)
            .into_iter()
            .map(|o| (o.kind, o.id.clone()))
            .collect();
        for (kind, id) in wanted {
            if let Some(v) = client.acl_read(acl_type(kind), &id).await? {
                if let (Some(full), Some(slot)) = (
                    ObservedAcl::from_api(kind, &v),
                    acl.iter_mut().find(|o| o.kind == kind && o.id == id),
                ) {
                    *slot = full;
                }
            }
        }
    }
    let ca = match &desired.ca {
        Some(_) => client
            .ca_configuration()
            .await
            .context("cannot read the CA configuration")?
            .and_then(|v| ObservedCa::from_api(&v)),
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

fn acl_context(e: ConsulError) -> anyhow::Error {
    match &e {
        ConsulError::Status { status: 401, .. } => anyhow::anyhow!(
            "{e}\n  = help: the repository declares ACL objects but Consul's ACL system is disabled; enable ACLs or remove the acl-* files"
        ),
        _ => e.into(),
    }
}

pub fn options(desired: &Desired, args: &TargetArgs) -> PlanOptions {
    PlanOptions {
        owner: desired.owner.clone(),
        adopt: args.adopt,
        allow_empty: args.allow_empty,
    }
}

pub fn plan_of(desired: &Desired, observed: &Observed, args: &TargetArgs) -> Result<Plan> {
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
    Ok(mesh_plan::plan_all(&input, &options(desired, args))?)
}

/// A plan, and what reading Consul cost.
pub async fn make_plan(
    loaded: &mesh_loader::Loaded,
    target: &Target,
    args: &TargetArgs,
) -> Result<(Plan, String)> {
    let started = std::time::Instant::now();
    let before = target.client.requests();
    let desired = Desired::of(loaded);
    let observed = observe(&target.client, &desired).await?;
    let plan = plan_of(&desired, &observed, args)?;
    let objects = observed.entries.len() + observed.acl.len() + usize::from(observed.ca.is_some());
    let stats = format!(
        "read {objects} object(s) from {} with {} request(s); planned in {} ms",
        target.client.address(),
        target.client.requests() - before,
        started.elapsed().as_millis()
    );
    Ok((plan, stats))
}

/// Reads a secret from where the repository says it is. The value is returned, never printed;
/// errors name the source only. A relative `file:` path is relative to the working directory.
fn read_secret(s: &SecretSource) -> Result<String> {
    match s {
        SecretSource::Env(var) => std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .with_context(|| format!("the secret source env:{var} is not set")),
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map(|v| v.trim().to_owned())
            .with_context(|| format!("cannot read the secret source file:{path}")),
    }
}

/// The secrets the plan's steps need, read before anything is written.
fn secrets_for(plan: &Plan, desired: &Desired) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in &plan.steps {
        let source = match (s.kind.as_str(), s.action) {
            ("acl-token", Action::Create) => desired
                .acl
                .iter()
                .find(|d| d.kind == AclKind::Token && d.name == s.name)
                .and_then(|d| d.secret_from.clone()),
            ("ca-config", _) => desired.ca.as_ref().and_then(|c| c.token_from.clone()),
            _ => None,
        };
        if let Some(source) = source {
            out.insert(Inventory::key(&s.kind, &s.name), read_secret(&source)?);
        }
    }
    Ok(out)
}

/// The inventory this apply keeps, and its changes, written with CAS and merged on conflict.
struct Ledger {
    key: String,
    base: Inventory,
    ours: Inventory,
    index: u64,
}

impl Ledger {
    fn set(&mut self, kind: &str, name: &str, r: Record) {
        self.ours.objects.insert(Inventory::key(kind, name), r);
    }
    fn remove(&mut self, kind: &str, name: &str) {
        self.ours.objects.remove(&Inventory::key(kind, name));
    }

    /// Writes our changes. On a CAS conflict (another writer), re-reads and replays our changes
    /// on top of theirs: nothing of theirs is lost, nothing of ours is dropped.
    async fn flush(&mut self, client: &Client) -> Result<()> {
        for _ in 0..5 {
            if self.ours.objects == self.base.objects {
                return Ok(());
            }
            if client
                .kv_put(&self.key, &self.ours.to_json(), Some(self.index))
                .await
                .with_context(|| format!("cannot write the inventory {}", self.key))?
            {
                let (_, index) = client.kv_get(&self.key).await?.unwrap_or_default();
                self.index = index;
                self.base = self.ours.clone();
                return Ok(());
            }
            let (bytes, index) = client.kv_get(&self.key).await?.unwrap_or_default();
            let fresh = if bytes.is_empty() {
                Inventory::default()
            } else {
                Inventory::from_json(&bytes).map_err(|e| anyhow::anyhow!(e))?
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
        bail!(
            "the inventory {} kept changing; gave up after 5 attempts",
            self.key
        )
    }
}

/// The config entries the inventory lists: the desired ones the plan does not refuse.
fn record_entries(ledger: &mut Ledger, desired: &Desired, plan: &Plan) {
    ledger.ours.objects.retain(|k, _| {
        let kind = k.split_once('/').map(|(k, _)| k).unwrap_or("");
        EntryKind::parse(kind).is_none()
    });
    for e in &desired.entries {
        let kind = e.kind();
        let (kind, name) = (kind.as_str(), e.name());
        if plan
            .refused
            .iter()
            .any(|r| r.kind == kind && r.name == name)
        {
            continue;
        }
        ledger.set(kind, name, Record::default());
    }
}

/// Why a repository may not be applied: the gate `apply` and `reconcile` share.
#[derive(Debug)]
pub enum GateFailure {
    /// The repository does not validate; the count of errors.
    Invalid(usize),
    /// `check` fails: the error findings, rendered as `check` prints them.
    Check(Vec<String>),
    /// The simulation found violations: its summary, line by line.
    Simulation(Vec<String>),
}

impl std::fmt::Display for GateFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GateFailure::Invalid(n) => write!(f, "the repository does not validate ({n} error(s))"),
            GateFailure::Check(findings) => {
                write!(f, "check fails ({} error finding(s))", findings.len())?;
                if let Some(first) = findings.first() {
                    let line = first.lines().next().unwrap_or("").trim();
                    write!(f, ": {line}")?;
                }
                Ok(())
            }
            GateFailure::Simulation(lines) => {
                write!(f, "the simulation found violations")?;
                if let Some(v) = lines
                    .iter()
                    .find(|l| l.trim_start().starts_with("violation"))
                {
                    write!(f, ": {}", v.trim())?;
                }
                Ok(())
            }
        }
    }
}

/// The gate, with a short summary of what passed: the repository validates, `check` (the same
/// analysis) finds no error, and the simulation of the declared mesh (seed 1, no faults) finds
/// no violation (unless `simulate` is false: `apply --skip-check` asks for no gate beyond
/// validation). `repo` names the repository in the simulation's replay command.
pub fn gate(
    loaded: &mesh_loader::Loaded,
    repo: &str,
    simulate: bool,
) -> std::result::Result<String, GateFailure> {
    if loaded.has_errors() {
        let n = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
        return Err(GateFailure::Invalid(n));
    }
    let analysis = mesh_analysis::analyze(&loaded.state, &loaded.guardrail_files);
    if analysis.has_errors() {
        return Err(GateFailure::Check(
            analysis
                .findings
                .iter()
                .filter(|d| d.is_error())
                .map(|d| mesh_diagnostics::render_text(d, &loaded.sources))
                .collect(),
        ));
    }
    let warnings = analysis.findings.len();
    let passed = format!(
        "check: pass ({} declared upstream(s), {warnings} warning(s))",
        analysis.edges.iter().filter(|e| e.declared).count()
    );
    if !simulate {
        return Ok(passed);
    }
    let lines = |s: String| s.lines().map(str::to_owned).collect::<Vec<_>>();
    match mesh_check::simulate(
        &loaded.state,
        None,
        repo,
        &mesh_check::SimSettings::default(),
    ) {
        Ok(sim) if sim.failed() => Err(GateFailure::Simulation(lines(
            mesh_report::simulation::text::render(&sim),
        ))),
        // The gate's own summary: what was checked, so a clean apply says why it went ahead.
        Ok(sim) => Ok(format!(
            "{passed}\n{}",
            mesh_report::simulation::text::render(&sim).trim_end()
        )),
        Err(e) => Err(GateFailure::Simulation(vec![format!(
            "violation: the simulation could not run: {e}"
        )])),
    }
}

enum Outcome {
    Done,
    /// Something changed under us: re-read and re-plan.
    Conflict(String),
    /// Asked to stop at a step boundary.
    Stopped,
}

/// What an apply did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ApplyReport {
    /// Writes to Consul objects.
    pub writes: usize,
    /// CAS conflicts (or moved ACL/CA objects) that made it re-read and re-plan.
    pub conflicts: usize,
    /// It stopped at a step boundary because `stop` said so; what was done is recorded.
    pub stopped: bool,
}

/// Applies the plan step by step. Returns the number of writes to Consul objects.
pub async fn apply(
    loaded: &mesh_loader::Loaded,
    target: &Target,
    args: &TargetArgs,
    out: &mut dyn std::io::Write,
) -> Result<usize> {
    Ok(apply_with(loaded, target, args, out, &|| false)
        .await?
        .writes)
}

/// [`apply`], asking `stop` before every step: when it answers `true`, the inventory is
/// flushed and the apply returns with `stopped` (a later apply converges from there).
pub async fn apply_with(
    loaded: &mesh_loader::Loaded,
    target: &Target,
    args: &TargetArgs,
    out: &mut dyn std::io::Write,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<ApplyReport> {
    let desired = Desired::of(loaded);
    let client = &target.client;
    let mut report = ApplyReport::default();
    for round in 0..5 {
        if stop() {
            report.stopped = true;
            return Ok(report);
        }
        let observed = observe(client, &desired).await?;
        let plan = plan_of(&desired, &observed, args)?;
        if round == 0 {
            for r in &plan.refused {
                writeln!(out, "  ! {} \"{}\": {}", r.kind, r.name, r.reason)?;
            }
        }
        let mut ledger = Ledger {
            key: inventory_key(&desired.owner),
            base: observed.inventory.clone(),
            ours: observed.inventory.clone(),
            index: observed.inventory_index,
        };
        record_entries(&mut ledger, &desired, &plan);
        if plan.steps.is_empty() {
            ledger.flush(client).await?;
            return Ok(report);
        }
        if round > 0 {
            writeln!(
                out,
                "re-planned after a concurrent change: {} step(s) left",
                plan.steps.len()
            )?;
        }
        let secrets = secrets_for(&plan, &desired)?;
        // Claim every name about to be created, before creating it (see mesh_plan::acl).
        let mut claimed = false;
        for s in &plan.steps {
            if s.action == Action::Create && AclKind::parse(&s.kind).is_some() {
                let key = Inventory::key(&s.kind, &s.name);
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    ledger.ours.objects.entry(key)
                {
                    let id = if s.kind == "acl-token" {
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
        }
        if claimed {
            ledger.flush(client).await?;
        }
        let result = run_steps(&plan, &desired, &secrets, client, &mut ledger, out, stop).await;
        // Whatever happened, what was done is recorded.
        let flushed = ledger.flush(client).await;
        let (n, outcome) = result?;
        flushed?;
        report.writes += n;
        match outcome {
            Outcome::Done => return Ok(report),
            Outcome::Stopped => {
                report.stopped = true;
                return Ok(report);
            }
            Outcome::Conflict(what) => {
                report.conflicts += 1;
                writeln!(out, "  ? {what} changed in Consul meanwhile; re-reading")?
            }
        }
    }
    bail!(
        "Consul kept changing under the apply; gave up after 5 rounds without overwriting anything"
    )
}

fn modify_index(v: &Value) -> u64 {
    v.get("ModifyIndex").and_then(Value::as_u64).unwrap_or(0)
}

async fn run_steps(
    plan: &Plan,
    desired: &Desired,
    secrets: &BTreeMap<String, String>,
    client: &Client,
    ledger: &mut Ledger,
    out: &mut dyn std::io::Write,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<(usize, Outcome)> {
    let mut writes = 0;
    for step in &plan.steps {
        if stop() {
            return Ok((writes, Outcome::Stopped));
        }
        let what = format!("{} \"{}\"", step.kind, step.name);
        let done = if let Some(kind) = AclKind::parse(&step.kind) {
            acl_step(step, kind, desired, secrets, client, ledger)
                .await
                .with_context(|| format!("cannot write {what}"))?
        } else if step.kind == "ca-config" {
            ca_step(step, desired, secrets, client, ledger)
                .await
                .with_context(|| format!("cannot write {what}"))?
        } else {
            match step.action {
                Action::Create | Action::Update => {
                    let entry = desired
                        .entries
                        .iter()
                        .find(|d| d.kind().as_str() == step.kind && d.name() == step.name)
                        .context("a planned entry is missing from the repository")?;
                    client.put_config_entry(entry, Some(step.cas)).await
                }
                Action::Delete => {
                    client
                        .delete_config_entry(&step.kind, &step.name, Some(step.cas))
                        .await
                }
                Action::Record | Action::Forget => Ok(true),
            }
            .with_context(|| format!("cannot write {what}"))?
        };
        if !done {
            return Ok((writes, Outcome::Conflict(what)));
        }
        if !matches!(step.action, Action::Record | Action::Forget) {
            writes += 1;
        }
        let note = if step.root_rotation {
            "  (root rotated)"
        } else {
            ""
        };
        writeln!(out, "  {} {what}{note}", step.action.sign())?;
    }
    Ok((writes, Outcome::Done))
}

/// One ACL step. `Ok(false)` when the object moved since it was read (no CAS in Consul's ACL
/// API, so the index is checked just before the write) or a create found the name taken.
async fn acl_step(
    step: &Step,
    kind: AclKind,
    desired: &Desired,
    secrets: &BTreeMap<String, String>,
    client: &Client,
    ledger: &mut Ledger,
) -> Result<bool> {
    let t = acl_type(kind);
    let d = desired
        .acl
        .iter()
        .find(|d| d.kind == kind && d.name == step.name);
    let current = |id: String| async move { client.acl_read(t, &id).await };
    match step.action {
        Action::Create => {
            let d = d.context("a planned object is missing from the repository")?;
            let mut body = d.request.clone();
            let key = Inventory::key(&step.kind, &step.name);
            if kind == AclKind::Token {
                let id = ledger
                    .ours
                    .objects
                    .get(&key)
                    .map(|r| r.id.clone())
                    .filter(|id| !id.is_empty())
                    .context("the token was not claimed before its creation")?;
                body["AccessorID"] = Value::String(id);
                if let Some(secret) = secrets.get(&key) {
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
            ledger.set(
                &step.kind,
                &step.name,
                Record {
                    id: answer[kind.id_field()].as_str().unwrap_or("").to_owned(),
                    modify_index: modify_index(&answer),
                    body: Some(d.body.clone()),
                },
            );
            Ok(true)
        }
        Action::Update => {
            let d = d.context("a planned object is missing from the repository")?;
            let id = step.id.clone().context("an update without an ID")?;
            match current(id.clone()).await? {
                Some(v) if modify_index(&v) == step.cas => {}
                _ => return Ok(false),
            }
            let mut body = d.request.clone();
            body[kind.id_field()] = Value::String(id.clone());
            let answer = client.acl_write(t, Some(&id), &body).await?;
            ledger.set(
                &step.kind,
                &step.name,
                Record {
                    id,
                    modify_index: modify_index(&answer),
                    body: Some(d.body.clone()),
                },
            );
            Ok(true)
        }
        Action::Delete => {
            let id = step.id.clone().context("a delete without an ID")?;
            match current(id.clone()).await? {
                Some(v) if modify_index(&v) == step.cas => {}
                Some(_) => return Ok(false),
                None => {
                    ledger.remove(&step.kind, &step.name);
                    return Ok(true);
                }
            }
            client.acl_delete(t, &id).await?;
            ledger.remove(&step.kind, &step.name);
            Ok(true)
        }
        Action::Record => {
            ledger.set(
                &step.kind,
                &step.name,
                Record {
                    id: step.id.clone().unwrap_or_default(),
                    modify_index: step.cas,
                    body: step.after.clone(),
                },
            );
            Ok(true)
        }
        Action::Forget => {
            ledger.remove(&step.kind, &step.name);
            Ok(true)
        }
    }
}

async fn ca_step(
    step: &Step,
    desired: &Desired,
    secrets: &BTreeMap<String, String>,
    client: &Client,
    ledger: &mut Ledger,
) -> Result<bool> {
    let c = desired
        .ca
        .as_ref()
        .context("a planned CA change without a CA configuration")?;
    let now = client.ca_configuration().await?;
    if now.as_ref().map(modify_index).unwrap_or(0) != step.cas {
        return Ok(false);
    }
    let mut body = mesh_plan::acl::ca_request(c);
    if let Some(token) = secrets.get(&Inventory::key("ca-config", CA_NAME)) {
        body["Config"]["Token"] = Value::String(token.clone());
    }
    client.put_ca_configuration(&body).await?;
    ledger.set("ca-config", CA_NAME, Record::default());
    Ok(true)
}

pub fn state_dir_note(target: &Target, dir: &Path) -> Option<String> {
    target
        .embedded
        .then(|| format!("(embedded control plane, state in {})", dir.display()))
}
