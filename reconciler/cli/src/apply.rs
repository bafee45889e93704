//! `mesh-gitops plan` and `apply` for config entries: against Consul (`--consul` or the consul
//! CLI's environment), or the embedded control plane in the state directory.

use anyhow::{bail, Context, Result};
use mesh_consul::{Client, ClientConfig, StoredEntry};
use mesh_model::{ConfigEntry, EntryKind};
use mesh_plan::{Action, ObservedEntry, Plan, PlanOptions};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Consul's address (else CONSUL_HTTP_ADDR; with neither, the embedded control plane).
    #[arg(long, value_name = "URL")]
    pub consul: Option<String>,
    /// The embedded control plane's state directory.
    #[arg(long, default_value = ".mesh-gitops")]
    pub state_dir: PathBuf,
    /// Take ownership of existing entries identical to the repository's.
    #[arg(long)]
    pub adopt: bool,
    /// Allow a plan that deletes every entry mesh-gitops owns.
    #[arg(long)]
    pub allow_empty: bool,
}

/// A client, and the embedded server it talks to when there is one.
pub struct Target {
    pub client: Client,
    pub embedded: bool,
}

pub async fn connect(args: &TargetArgs) -> Result<Target> {
    let env = |k: &str| std::env::var(k).ok();
    if args.consul.is_some() || env("CONSUL_HTTP_ADDR").is_some_and(|v| !v.is_empty()) {
        let config = ClientConfig::from_env(args.consul.as_deref(), &env)?;
        return Ok(Target {
            client: Client::new(config)?,
            embedded: false,
        });
    }
    let opts = mesh_control_plane::ServerOptions {
        state_dir: Some(args.state_dir.clone()),
        listen: "127.0.0.1:0".parse().expect("a valid address"),
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
    let config = ClientConfig {
        address,
        verify_tls: true,
        request_timeout: std::time::Duration::from_secs(30),
        ..ClientConfig::default()
    };
    Ok(Target {
        client: Client::new(config)?,
        embedded: true,
    })
}

/// Every config entry of every kind (one list request per kind).
pub async fn observed(client: &Client) -> Result<Vec<ObservedEntry>> {
    let mut out = Vec::new();
    for kind in EntryKind::CONSUL_KINDS {
        let list = client
            .config_entries(kind)
            .await
            .with_context(|| format!("cannot list {kind} entries"))?;
        out.extend(list.value.into_iter().map(
            |StoredEntry {
                 entry,
                 modify_index,
             }| ObservedEntry {
                entry,
                modify_index,
            },
        ));
    }
    Ok(out)
}

/// The desired entries with ownership marks.
pub fn desired(loaded: &mesh_loader::Loaded) -> Vec<ConfigEntry> {
    let owner = loaded.state.settings.owner.clone();
    mesh_plan::marked_entries(&loaded.state, &owner, &|e: &ConfigEntry| {
        loaded.sources.path(e.span().file).to_owned()
    })
}

pub fn options(loaded: &mesh_loader::Loaded, args: &TargetArgs) -> PlanOptions {
    PlanOptions {
        owner: loaded.state.settings.owner.clone(),
        adopt: args.adopt,
        allow_empty: args.allow_empty,
    }
}

pub async fn make_plan(
    loaded: &mesh_loader::Loaded,
    target: &Target,
    args: &TargetArgs,
) -> Result<Plan> {
    let observed = observed(&target.client).await?;
    let declared = mesh_plan::declared_edges(&loaded.state);
    let default_allow = loaded.state.settings.acl.default_intention_allows();
    Ok(mesh_plan::plan(
        &desired(loaded),
        &observed,
        &declared,
        default_allow,
        &options(loaded, args),
    )?)
}

/// What this version does not apply yet, said instead of skipped silently.
pub fn not_applied(loaded: &mesh_loader::Loaded) -> Option<String> {
    let acl = &loaded.state.acl;
    let n = acl.policies.len() + acl.roles.len() + acl.tokens.len();
    let ca = loaded.state.ca_config.is_some();
    if n == 0 && !ca {
        return None;
    }
    Some(format!(
        "note: {n} ACL object(s){} are validated and analysed but not yet applied by this version",
        if ca { " and the CA configuration" } else { "" }
    ))
}

/// Applies the plan step by step with CAS; a conflict re-reads and re-plans (bounded), never
/// overwrites. Returns the number of writes.
pub async fn apply(
    loaded: &mesh_loader::Loaded,
    target: &Target,
    args: &TargetArgs,
    out: &mut dyn std::io::Write,
) -> Result<usize> {
    let desired = desired(loaded);
    let mut writes = 0;
    for round in 0..5 {
        let plan = make_plan(loaded, target, args).await?;
        for r in &plan.refused {
            writeln!(out, "  ! {} \"{}\": {}", r.kind, r.name, r.reason)?;
        }
        if plan.steps.is_empty() {
            return Ok(writes);
        }
        if round > 0 {
            writeln!(
                out,
                "re-planned after a concurrent change: {} step(s) left",
                plan.steps.len()
            )?;
        }
        let mut conflict = false;
        for step in &plan.steps {
            let ok = match step.action {
                Action::Create | Action::Update => {
                    let entry = desired
                        .iter()
                        .find(|d| d.kind().as_str() == step.kind && d.name() == step.name)
                        .context("a planned entry is missing from the repository")?;
                    target.client.put_config_entry(entry, Some(step.cas)).await
                }
                Action::Delete => {
                    target
                        .client
                        .delete_config_entry(&step.kind, &step.name, Some(step.cas))
                        .await
                }
            }
            .with_context(|| format!("cannot write {} \"{}\"", step.kind, step.name))?;
            let sign = match step.action {
                Action::Create => "+",
                Action::Update => "~",
                Action::Delete => "-",
            };
            if !ok {
                writeln!(
                    out,
                    "  ? {} \"{}\" changed in Consul meanwhile; re-reading",
                    step.kind, step.name
                )?;
                conflict = true;
                break;
            }
            writes += 1;
            writeln!(out, "  {sign} {} \"{}\"", step.kind, step.name)?;
        }
        if !conflict {
            return Ok(writes);
        }
    }
    bail!(
        "Consul kept changing under the apply; gave up after 5 rounds without overwriting anything"
    )
}

pub fn state_dir_note(target: &Target, dir: &Path) -> Option<String> {
    target
        .embedded
        .then(|| format!("(embedded control plane, state in {})", dir.display()))
}
