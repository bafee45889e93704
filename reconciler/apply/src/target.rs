//! The control plane an apply talks to: Consul, or the embedded control plane started
//! in-process on a loopback port and reached over HTTP by the same client.

use crate::{ApplyConfig, ApplyError, Result};
use mesh_consul::{Client, ClientConfig};
use std::sync::Arc;

/// A client, and whether it talks to the embedded control plane.
pub struct Target {
    /// Shared with the reconcile loop's watchers and leader election.
    pub client: Arc<Client>,
    pub embedded: bool,
}

/// [`connect_with_env`] with the process environment.
pub async fn connect(config: &ApplyConfig, acl: mesh_model::AclSettings) -> Result<Target> {
    let env = |k: &str| std::env::var(k).ok();
    connect_with_env(config, acl, &env).await
}

/// Connects to Consul (`config.consul`, else `CONSUL_HTTP_ADDR` and the consul CLI's other
/// variables, read through `env`), or starts the embedded control plane in the state directory
/// with the ACL system the repository's `mesh-gitops.hcl` describes and a management token kept
/// in the state directory (mode 0600).
pub async fn connect_with_env(
    config: &ApplyConfig,
    acl: mesh_model::AclSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Target> {
    if config.consul.is_some() || env("CONSUL_HTTP_ADDR").is_some_and(|v| !v.is_empty()) {
        let settings =
            ClientConfig::from_env(config.consul.as_deref(), env).map_err(ApplyError::Settings)?;
        return Ok(Target {
            client: Arc::new(Client::new(settings).map_err(ApplyError::Settings)?),
            embedded: false,
        });
    }
    let dir = &config.state_dir;
    std::fs::create_dir_all(dir).map_err(|source| ApplyError::StateDir {
        path: dir.clone(),
        source,
    })?;
    let token_file = dir.join("bootstrap-token");
    let opts = mesh_control_plane::ServerOptions {
        state_dir: Some(dir.clone()),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        acl_default_allow: acl
            .enabled
            .then_some(acl.default_policy == mesh_model::DefaultPolicy::Allow),
        bootstrap_token_file: Some(token_file.clone()),
        ..Default::default()
    };
    let bound =
        mesh_control_plane::bind(&opts)
            .await
            .map_err(|source| ApplyError::ControlPlane {
                path: dir.clone(),
                source,
            })?;
    let address = format!("http://{}", bound.addr);
    // It serves for as long as the runtime runs: the process's apply, or a test.
    tokio::spawn(bound.serve(std::future::pending()));
    let token = if acl.enabled {
        let text =
            std::fs::read_to_string(&token_file).map_err(|source| ApplyError::TokenFile {
                path: token_file.clone(),
                source,
            })?;
        Some(text.trim().to_owned())
    } else {
        None
    };
    let settings = ClientConfig {
        address,
        token,
        verify_tls: true,
        request_timeout: std::time::Duration::from_secs(30),
        ..ClientConfig::default()
    };
    Ok(Target {
        client: Arc::new(Client::new(settings).map_err(ApplyError::Settings)?),
        embedded: true,
    })
}
