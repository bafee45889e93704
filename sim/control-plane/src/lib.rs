//! The embedded control plane: a Consul-compatible server for the API subset mesh-gitops uses
//! (config entries with CAS, intentions, KV and sessions, the Connect CA's roots and leaves,
//! authorize), persisted in redb so an acknowledged write survives a crash. `mesh-gitops serve`
//! runs it; the same state machine can run in memory.

mod catalog;
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
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            state_dir: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8500)),
            datacenter: "dc1".into(),
            node: "mesh-gitops".into(),
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
    store.ensure_ca(
        || uuid::Uuid::new_v4().to_string(),
        &mesh_ca::RandomKeys,
        std::time::SystemTime::now(),
    )?;
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
    let ctx = Arc::new(http::Ctx {
        store,
        datacenter: opts.datacenter.clone(),
        node: opts.node.clone(),
        leaves: Default::default(),
    });
    Ok(Bound {
        addr,
        listener,
        ctx,
    })
}

impl Bound {
    /// Serves until `shutdown` completes; in-flight requests finish first.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        axum::serve(self.listener, http::router(self.ctx))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServeError::Serve)
    }
}
