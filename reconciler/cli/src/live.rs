//! `check --consul URL`: the live state read once through `mesh-consul` (the token from the
//! consul CLI's environment, `CONSUL_HTTP_TOKEN` or `CONSUL_HTTP_TOKEN_FILE`, never an
//! argument), and the repository checked against it by `mesh_check::check_live`.

use crate::exit::Exit;
use crate::{report, RepoArgs, ReportFormat};
use anyhow::Result;
use mesh_consul::{Client, ClientConfig, LiveState};
use std::process::ExitCode;

/// Reads what Consul at `url` holds now. An unreachable Consul or a refused read is an error
/// naming the address and the endpoint; nothing else is printed.
pub fn read(url: &str) -> Result<LiveState> {
    let env = |k: &str| std::env::var(k).ok();
    let client = Client::new(ClientConfig::from_env(Some(url), &env)?)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(mesh_consul::read_live(&client))?)
}

/// The repository (its diagnostics printed and the exit code returned when it does not load)
/// checked against the live state at `url`.
pub fn check(repo: &RepoArgs, url: &str) -> Result<Result<mesh_check::CheckResult, ExitCode>> {
    let head = repo.load();
    if head.has_errors() {
        report::diagnostics(&head, ReportFormat::Text)?;
        return Ok(Err(Exit::Error.into()));
    }
    let live = read(url)?;
    eprintln!(
        "mesh-gitops: base: Consul at {} ({} config entries, {} Connect services, {} requests)",
        live.address,
        live.entries.len(),
        live.services.len(),
        live.requests
    );
    Ok(Ok(mesh_check::check_live(head, &live)))
}
