//! Logs, for every command: to stderr, the level from `RUST_LOG`, by default the binary's own
//! events at INFO and nothing of the simulator's internals.

/// The filter without `RUST_LOG`. The simulator (`mesh_sim`, and turmoil, which announces
/// every simulated host and socket at INFO) runs inside `apply`, `check` and `reconcile`; its
/// lines would bury theirs, so it speaks only when asked (`RUST_LOG=info,mesh_sim=debug`).
pub const DEFAULT_FILTER: &str = "info,mesh_sim=warn,turmoil=warn,hyper=warn,reqwest=warn";

/// Installs the subscriber; `json` for one JSON object per line.
pub fn init(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    // A second initialisation (tests) is not an error worth failing for.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
