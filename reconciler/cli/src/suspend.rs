//! `mesh-gitops suspend` and `resume`: the owner's suspension flag in Consul KV, which every
//! reconcile replica reads before each pass (see `mesh_reconcile::suspend`).

use crate::exit::Exit;
use anyhow::{Context, Result};
use mesh_reconcile::suspend::{suspended_key, Suspension};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct SuspendArgs {
    /// Consul's address (else CONSUL_HTTP_ADDR).
    #[arg(long, value_name = "URL")]
    consul: Option<String>,
    /// The owner whose reconcilers to suspend.
    #[arg(long, default_value = "mesh-gitops")]
    owner: String,
    /// Why, shown by `mesh-gitops status` while suspended.
    #[arg(long, default_value = "")]
    reason: String,
}

#[derive(clap::Args, Debug)]
pub struct ResumeArgs {
    /// Consul's address (else CONSUL_HTTP_ADDR).
    #[arg(long, value_name = "URL")]
    consul: Option<String>,
    /// The owner whose reconcilers to resume.
    #[arg(long, default_value = "mesh-gitops")]
    owner: String,
}

fn client(consul: Option<&str>) -> Result<mesh_consul::Client> {
    let env = |k: &str| std::env::var(k).ok();
    let config = mesh_consul::ClientConfig::from_env(consul, &env)?;
    Ok(mesh_consul::Client::new(config)?)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn suspend(args: &SuspendArgs) -> Result<ExitCode> {
    let client = client(args.consul.as_deref())?;
    let key = suspended_key(&args.owner);
    let by = std::env::var("USER").unwrap_or_default();
    let flag = Suspension {
        by,
        reason: args.reason.clone(),
        time: mesh_reconcile::status::rfc3339(std::time::SystemTime::now()),
    };
    let body = serde_json::to_vec_pretty(&flag)?;
    let stored = runtime()?
        .block_on(client.kv_put(&key, &body, None))
        .with_context(|| format!("cannot write {key}"))?;
    if !stored {
        anyhow::bail!("Consul did not store {key}");
    }
    println!(
        "Suspended owner \"{}\" ({key} in {}): reconcilers apply and heal nothing until `mesh-gitops resume --owner {}`.",
        args.owner,
        client.address(),
        args.owner
    );
    Ok(Exit::Ok.into())
}

pub fn resume(args: &ResumeArgs) -> Result<ExitCode> {
    let client = client(args.consul.as_deref())?;
    let key = suspended_key(&args.owner);
    let path = mesh_consul::Client::kv_path(&key);
    runtime()?
        .block_on(client.delete(&path))
        .with_context(|| format!("cannot delete {key}"))?;
    println!(
        "Resumed owner \"{}\": the leading reconciler catches up with git now.",
        args.owner
    );
    Ok(Exit::Ok.into())
}
