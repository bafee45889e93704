//! The embedded control plane: a Consul-compatible server for the API subset mesh-gitops uses
//! (config entries with CAS, intentions, KV and sessions, the Connect CA's roots and leaves,
//! authorize), persisted in redb so an acknowledged write survives a crash. `mesh-gitops serve`
//! runs it; the same state machine can run in memory.

pub mod env;
pub mod http;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where the state database lives; `None` keeps state in memory.
    pub state_dir: Option<PathBuf>,
    pub listen: SocketAddr,
    pub datacenter: String,
    pub node: String,
    /// `Some(allow)` turns ACLs on with that default policy (true: allow, false: deny); `None`
    /// leaves them off, as on a dev agent.
    pub acl_default_allow: Option<bool>,
    /// With ACLs on: the bootstrap token's secret is read from this file, or created once and
    /// written to it (mode 0600).
    pub bootstrap_token_file: Option<PathBuf>,
    /// Seed of the blocking-query jitter.
    pub jitter_seed: u64,
    /// Inject faults on this fraction of requests (0 = none): for testing clients against an
    /// unreliable Consul. See [`http::FaultInjector`].
    pub fault_rate: f64,
    /// Log every request that changes state to this file, one JSON line each (see
    /// [`http::AuditLog`]).
    pub audit_log: Option<PathBuf>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            state_dir: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8500)),
            datacenter: "dc1".into(),
            node: "mesh-gitops".into(),
            acl_default_allow: None,
            bootstrap_token_file: None,
            jitter_seed: 1,
            fault_rate: 0.0,
            audit_log: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("failed to listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
    #[error("audit log {path}: {source}")]
    AuditLog {
        path: String,
        source: std::io::Error,
    },
    #[error("bootstrap token file {path}: {source}")]
    TokenFile {
        path: String,
        source: std::io::Error,
    },
}

/// A bound server, not yet serving: `addr` is the real address (useful with port 0).
pub struct Bound {
    pub addr: SocketAddr,
    listener: tokio::net::TcpListener,
    ctx: Arc<http::Ctx>,
}

/// Opens the state and binds the listener.
pub async fn bind(opts: &ServerOptions) -> Result<Bound, ServeError> {
    let store = match &opts.state_dir {
        Some(dir) => store::Store::open(dir)?,
        None => store::Store::in_memory(),
    };
    let ctx = context(opts, store, env::Env::system())?;
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: opts.listen,
        source,
    })?;
    Ok(Bound {
        addr,
        listener,
        ctx,
    })
}

/// The handlers' shared context over `store`: bootstraps the CA (and, with ACLs and a token
/// file, the ACL system) on first start. `env` gives the clock, IDs and keys; a simulation
/// passes its own and serves [`http::router`] itself.
pub fn context(
    opts: &ServerOptions,
    store: store::Store,
    env: env::Env,
) -> Result<Arc<http::Ctx>, ServeError> {
    store.ensure_ca(|| env.ids.next(), &*env.keys, env.now())?;
    let ctx = Arc::new(http::Ctx {
        store,
        session_deadlines: Default::default(),
        jitter: mesh_seed::SharedSplitMix64::new(opts.jitter_seed),
        acl: http::auth::AclConfig {
            enabled: opts.acl_default_allow.is_some(),
            default_allow: opts.acl_default_allow.unwrap_or(true),
        },
        datacenter: opts.datacenter.clone(),
        node: opts.node.clone(),
        leaves: Default::default(),
        faults: (opts.fault_rate > 0.0)
            .then(|| http::FaultInjector::new(opts.fault_rate, opts.jitter_seed)),
        audit: match &opts.audit_log {
            Some(path) => {
                Some(
                    http::AuditLog::open(path).map_err(|source| ServeError::AuditLog {
                        path: path.display().to_string(),
                        source,
                    })?,
                )
            }
            None => None,
        },
        env,
    });
    if let (Some(_), Some(path)) = (opts.acl_default_allow, &opts.bootstrap_token_file) {
        bootstrap_from_file(&ctx, path)?;
    }
    Ok(ctx)
}

/// Reads the management token's secret from `path`, or bootstraps and writes it there (0600).
/// The secret itself is never logged.
fn bootstrap_from_file(ctx: &http::Ctx, path: &std::path::Path) -> Result<(), ServeError> {
    let err = |source| ServeError::TokenFile {
        path: path.display().to_string(),
        source,
    };
    let existing = match std::fs::read_to_string(path) {
        Ok(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(err(e)),
    };
    if ctx.store.read().acl.bootstrapped.is_some() {
        return Ok(());
    }
    let secret = existing.clone().unwrap_or_else(|| ctx.env.ids.next());
    ctx.store
        .acl_bootstrap(Some(secret.clone()), &ctx.env.ids, ctx.env.now())
        .map_err(|_| {
            err(std::io::Error::other(
                "the ACL system could not be bootstrapped",
            ))
        })?;
    if existing.is_none() {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut f = options.open(path).map_err(err)?;
        f.write_all(secret.as_bytes()).map_err(err)?;
    }
    Ok(())
}

impl Bound {
    /// Serves until `shutdown` completes; in-flight requests finish first.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let reaper = tokio::spawn(http::reap_sessions(self.ctx.clone()));
        let result = axum::serve(self.listener, http::router(self.ctx))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServeError::Serve);
        reaper.abort();
        result
    }
}
