//! `mesh-gitops serve`: the embedded control plane, until SIGTERM or SIGINT.

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Where the control plane keeps its state.
    #[arg(long, default_value = ".mesh-gitops")]
    state_dir: PathBuf,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8500")]
    listen: SocketAddr,
    /// The datacenter the server reports.
    #[arg(long, default_value = "dc1")]
    datacenter: String,
    /// Turn ACLs on with this default policy (without it ACLs are off, as on a dev agent).
    #[arg(long, value_parser = ["allow", "deny"])]
    acl_default_policy: Option<String>,
    /// With ACLs on: read the bootstrap (management) token from this file, or create it once and
    /// write it there with mode 0600.
    #[arg(long, value_name = "FILE")]
    bootstrap_token_file: Option<PathBuf>,
    /// Testing: answer this fraction of requests with a 503, a delay or a dropped connection.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0, hide = true)]
    inject_faults: f64,
    /// Testing: log every request that changes state, with its User-Agent and the KV locks
    /// held when it arrived, to this file (one JSON line each).
    #[arg(long, value_name = "FILE", hide = true)]
    audit_log: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the runtime")?;
    runtime.block_on(async move {
        let opts = mesh_control_plane::ServerOptions {
            state_dir: Some(args.state_dir.clone()),
            listen: args.listen,
            datacenter: args.datacenter,
            acl_default_allow: args.acl_default_policy.as_deref().map(|p| p == "allow"),
            bootstrap_token_file: args.bootstrap_token_file.clone(),
            fault_rate: args.inject_faults,
            audit_log: args.audit_log.clone(),
            ..mesh_control_plane::ServerOptions::default()
        };
        let bound = mesh_control_plane::bind(&opts).await.with_context(|| {
            format!(
                "cannot start the control plane in {}",
                args.state_dir.display()
            )
        })?;
        // Scripts and tests read the address from this line.
        eprintln!(
            "mesh-gitops: control plane listening on http://{}",
            bound.addr
        );
        bound.serve(shutdown_signal()).await?;
        eprintln!("mesh-gitops: control plane stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            biased;
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
