//! `mesh-gitops reconcile`: the continuous loop. It fetches a git branch, and for each new head
//! commit loads the repository from the object database, verifies the signature (with
//! `--require-signed`), passes it through the gate `apply` uses, and applies it. Between
//! commits it keeps Consul at the last applied revision: every `--interval`, and whenever a
//! blocking query on an owned kind or the inventory sees a change, it plans again, and a
//! non-empty plan without a new commit is drift, healed unless `--no-self-heal`.
//!
//! Level-triggered: every pass compares the whole desired state with what Consul holds, so a
//! missed event costs only time. Only the replica holding the leader lock plans to write; work
//! stops at a step boundary when a newer commit arrives, the lock is lost, the pass runs out
//! of time or the process is asked to stop.

mod backoff;
mod leader;
pub mod signing;
mod source;
pub mod status;
mod watch;

use crate::apply::{self, Target, TargetArgs};
use anyhow::{Context, Result};
use backoff::Backoff;
use mesh_loader::Loaded;
use source::SourceConfig;
use status::{Event, Shared, Status};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch as channel};
use tokio::time::Instant;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct ReconcileArgs {
    /// The git repository: an https or ssh URL, or a local directory.
    #[arg(long, value_name = "URL|DIR")]
    source: String,
    /// The branch to follow.
    #[arg(long, default_value = "main")]
    branch: String,
    /// The repository's root inside the git tree (empty: the top).
    #[arg(long, value_name = "SUBDIR", default_value = "")]
    path: String,
    /// How often to fetch, and to compare Consul with git even without a change.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    interval: Duration,
    /// Consul's address (else CONSUL_HTTP_ADDR); the token comes from CONSUL_HTTP_TOKEN(_FILE).
    #[arg(long, value_name = "URL")]
    consul: Option<String>,
    /// The owner whose objects this reconciler manages (default: `owner` in the first commit's
    /// mesh-gitops.hcl). It names the lock, the inventory and the status in Consul KV.
    #[arg(long)]
    owner: Option<String>,
    /// Report drift (changes made outside git) without reverting it.
    #[arg(long)]
    no_self_heal: bool,
    /// Take ownership of existing objects identical to the repository's.
    #[arg(long)]
    adopt: bool,
    /// Allow a commit that deletes every object mesh-gitops owns.
    #[arg(long)]
    allow_empty: bool,
    /// Where /healthz, /readyz and /metrics are served (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// Log format (to stderr; the level from RUST_LOG, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// The leader session's TTL (10s to 24h); a dead leader is replaced within 2 x TTL.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    lock_ttl: Duration,
    /// This replica's name in the lock and the status (default: hostname-pid).
    #[arg(long)]
    id: Option<String>,
    /// Where fetched repositories are cached.
    #[arg(long, default_value = ".mesh-gitops/reconcile")]
    cache_dir: PathBuf,
    /// Apply only head commits with an SSH signature by a key in --trusted-keys.
    #[arg(long, requires = "trusted_keys")]
    require_signed: bool,
    /// The trusted keys, in git's allowed-signers format.
    #[arg(long, value_name = "FILE")]
    trusted_keys: Option<PathBuf>,
    /// The longest a pass may take; an apply stops at the next step boundary after it.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pass_timeout: Duration,
    /// A Nomad job variable, `name=value` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = crate::parse_var)]
    vars: Vec<(String, String)>,
    /// The git password or token, from a file (else MESH_GITOPS_GIT_PASSWORD).
    #[arg(long, value_name = "FILE")]
    git_password_file: Option<PathBuf>,
    /// The SSH private key for ssh sources (else MESH_GITOPS_GIT_SSH_KEY, else the agent).
    #[arg(long, value_name = "FILE")]
    git_ssh_key: Option<PathBuf>,
}

/// Go-style durations: `1m`, `1s`, `500ms`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    mesh_semantics::ca_config::parse_duration(s)
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hyper=warn,reqwest=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    // A second initialisation (tests) is not an error worth failing for.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn default_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "mesh-gitops".into());
    format!("{host}-{}", std::process::id())
}

pub fn run(args: ReconcileArgs) -> Result<()> {
    init_logs(args.log_format);
    let env = |k: &str| std::env::var(k).ok();
    if args.consul.is_none() && env("CONSUL_HTTP_ADDR").is_none_or(|v| v.is_empty()) {
        anyhow::bail!("reconcile needs Consul: pass --consul URL or set CONSUL_HTTP_ADDR");
    }
    if !(Duration::from_secs(10)..=Duration::from_secs(86_400)).contains(&args.lock_ttl) {
        anyhow::bail!("--lock-ttl must be between 10s and 24h");
    }
    if args.interval < Duration::from_millis(100) {
        anyhow::bail!("--interval must be at least 100ms");
    }
    let trusted = match (&args.trusted_keys, args.require_signed) {
        (Some(file), true) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let keys = signing::parse_allowed_signers(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            if keys.is_empty() {
                anyhow::bail!("{} has no key trusted for git", file.display());
            }
            Some(keys)
        }
        (_, false) => None,
        (None, true) => anyhow::bail!("--require-signed needs --trusted-keys FILE"),
    };
    let config = mesh_consul::ClientConfig::from_env(args.consul.as_deref(), &env)?;
    let target = Arc::new(Target {
        client: Arc::new(mesh_consul::Client::new(config)?),
        embedded: false,
    });
    let url = match std::path::Path::new(&args.source).canonicalize() {
        Ok(p) if p.is_dir() => p.to_string_lossy().into_owned(),
        _ => args.source.clone(),
    };
    let source = SourceConfig {
        cache_dir: args.cache_dir.join(source::cache_name(&url)),
        url,
        branch: args.branch.clone(),
        path: args.path.clone(),
        credentials: source::Credentials::from_env(
            args.git_password_file.as_deref(),
            args.git_ssh_key.as_deref(),
            &env,
        )?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        // Scripts and tests read the address from this line.
        eprintln!(
            "mesh-gitops: reconciler listening on http://{}",
            listener.local_addr()?
        );
        let (stop_tx, stop_rx) = channel::channel(false);
        tokio::spawn(signals(stop_tx));
        let shared = Arc::new(Shared {
            metrics: Default::default(),
            client: target.client.clone(),
            leader: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            heartbeat: Default::default(),
            stall_after: args.interval * 3 + args.pass_timeout + Duration::from_secs(30),
        });
        shared.beat();
        let http = tokio::spawn(status::serve(
            listener,
            shared.clone(),
            until(stop_rx.clone()),
        ));
        let (head_tx, head_rx) = channel::channel(None);
        let fetcher = tokio::spawn(fetch_loop(
            source.clone(),
            args.interval,
            head_tx,
            stop_rx.clone(),
            shared.clone(),
        ));
        let result =
            Reconciler::start(args, target, source, trusted, shared, head_rx, stop_rx).await;
        fetcher.abort();
        let _ = http.await;
        tracing::info!("stopped");
        result
    })
}

/// Resolves when `rx` turns true (or its sender is gone).
async fn until(mut rx: channel::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// SIGTERM or SIGINT asks the loop to stop after its current step; a second one exits at once.
async fn signals(stop: channel::Sender<bool>) {
    for n in 0.. {
        if let Err(e) = wait_signal().await {
            tracing::warn!(error = %e, "cannot listen for signals; stop the process with SIGKILL");
            // Keep the sender: a dropped one would read as a change forever.
            std::future::pending::<()>().await;
        }
        if n == 0 {
            tracing::info!("stopping: the current step finishes, then the lock is released");
            stop.send_replace(true);
        } else {
            tracing::warn!("second signal: exiting now; the next apply converges");
            std::process::exit(130);
        }
    }
}

async fn wait_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// Fetches every `interval` and publishes the branch's head.
async fn fetch_loop(
    source: SourceConfig,
    interval: Duration,
    head: channel::Sender<Option<String>>,
    mut stop: channel::Receiver<bool>,
    shared: Arc<Shared>,
) {
    let mut backoff = Backoff::new(
        Duration::from_secs(1),
        interval.max(Duration::from_secs(1)) * 5,
    );
    let shown = source::redacted(&source.url);
    loop {
        let s = source.clone();
        let delay = match tokio::task::spawn_blocking(move || s.fetch()).await {
            Ok(Ok(oid)) => {
                backoff.reset();
                let oid = oid.to_string();
                head.send_if_modified(|h| {
                    if h.as_deref() == Some(oid.as_str()) {
                        false
                    } else {
                        tracing::info!(source = %shown, revision = %oid, "fetched a new head");
                        *h = Some(oid.clone());
                        true
                    }
                });
                interval
            }
            Ok(Err(e)) => {
                shared.metrics.fetch_failure();
                let d = backoff.next();
                tracing::warn!(source = %shown, error = %format!("{e:#}"), retry_in_ms = d.as_millis() as u64, "fetch failed");
                d
            }
            Err(e) => {
                tracing::error!(error = %e, "the fetch task failed");
                backoff.next()
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|v| *v) => return,
        }
    }
}

/// A commit that passed the gate.
struct Commit {
    rev: String,
    loaded: Loaded,
}

/// Why a pass ended as it did, for the metrics.
enum PassResult {
    Idle,
    InSync,
    Applied,
    Refused,
    Drift,
    Healed,
    Interrupted,
    Failed,
}

impl PassResult {
    fn as_str(&self) -> &'static str {
        match self {
            PassResult::Idle => "idle",
            PassResult::InSync => "in-sync",
            PassResult::Applied => "applied",
            PassResult::Refused => "refused",
            PassResult::Drift => "drift",
            PassResult::Healed => "healed",
            PassResult::Interrupted => "interrupted",
            PassResult::Failed => "failed",
        }
    }
}

struct Reconciler {
    id: String,
    owner: String,
    self_heal: bool,
    interval: Duration,
    pass_timeout: Duration,
    options: mesh_loader::LoadOptions,
    target_args: TargetArgs,
    target: Arc<Target>,
    source: SourceConfig,
    trusted: Option<Vec<signing::Signer>>,
    shared: Arc<Shared>,
    head: channel::Receiver<Option<String>>,
    stop: channel::Receiver<bool>,
    leader: channel::Receiver<bool>,
    drift_tx: mpsc::Sender<String>,
    drift_rx: mpsc::Receiver<String>,
    /// The newest head considered (gated), whatever the outcome.
    seen: Option<String>,
    /// Gated, not yet applied.
    pending: Option<Commit>,
    /// The state Consul is kept at.
    applied: Option<Commit>,
    status: Status,
    written: Option<Status>,
    watchers: watch::Watchers,
    backoff: Backoff,
    retry_at: Option<Instant>,
    /// The objects the plan refused to touch when the applied commit was last applied.
    refused: Vec<String>,
    /// The drift last counted.
    last_drift: String,
}

impl Reconciler {
    /// Waits for the first head (to learn the owner), starts the election, and runs the loop.
    async fn start(
        args: ReconcileArgs,
        target: Arc<Target>,
        source: SourceConfig,
        trusted: Option<Vec<signing::Signer>>,
        shared: Arc<Shared>,
        mut head: channel::Receiver<Option<String>>,
        mut stop: channel::Receiver<bool>,
    ) -> Result<()> {
        let options = mesh_loader::LoadOptions {
            nomad_vars: args.vars.iter().cloned().collect(),
        };
        let owner = match &args.owner {
            Some(o) => o.clone(),
            None => {
                let first = tokio::select! {
                    h = head.wait_for(Option::is_some) => h.map(|h| h.clone()).ok().flatten(),
                    _ = stop.wait_for(|v| *v) => None,
                };
                let Some(first) = first else {
                    return Ok(());
                };
                let (s, o) = (source.clone(), options.clone());
                tokio::task::spawn_blocking(move || -> Result<String> {
                    let oid = git2::Oid::from_str(&first)?;
                    let (files, _) = s.files_at(oid)?;
                    Ok(mesh_loader::load_files(files, &o).state.settings.owner)
                })
                .await??
            }
        };
        let id = args.id.clone().unwrap_or_else(default_id);
        tracing::info!(%id, %owner, source = %source::redacted(&source.url), branch = %source.branch, "reconciler started");
        let (leader_tx, leader_rx) = channel::channel(false);
        let (lead_stop_tx, lead_stop_rx) = channel::channel(false);
        let has_session = Arc::new(AtomicBool::new(false));
        let election = tokio::spawn(leader::run(
            leader::Election {
                client: target.client.clone(),
                key: status::leader_key(&owner),
                id: id.clone(),
                ttl: args.lock_ttl,
            },
            leader_tx,
            lead_stop_rx,
            has_session.clone(),
        ));
        let (drift_tx, drift_rx) = mpsc::channel(64);
        let mut r = Reconciler {
            status: Status {
                leader: id.clone(),
                source: source::redacted(&source.url),
                ..Status::default()
            },
            id,
            owner,
            self_heal: !args.no_self_heal,
            interval: args.interval,
            pass_timeout: args.pass_timeout,
            options,
            target_args: TargetArgs {
                consul: args.consul.clone(),
                state_dir: PathBuf::new(),
                adopt: args.adopt,
                allow_empty: args.allow_empty,
            },
            target,
            source,
            trusted,
            shared,
            head,
            stop,
            leader: leader_rx,
            drift_tx,
            drift_rx,
            seen: None,
            pending: None,
            applied: None,
            written: None,
            watchers: Default::default(),
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
            retry_at: None,
            refused: Vec::new(),
            last_drift: String::new(),
        };
        r.run(&has_session).await;
        // The status is final; now let a standby take over.
        lead_stop_tx.send_replace(true);
        let _ = election.await;
        Ok(())
    }

    async fn run(&mut self, has_session: &AtomicBool) {
        let mut was_leading = false;
        loop {
            self.shared.beat();
            if *self.stop.borrow() {
                break;
            }
            let leading = *self.leader.borrow();
            self.shared.leader.store(leading, Ordering::Relaxed);
            if leading && !was_leading {
                tracing::info!(id = %self.id, "leading: this replica writes");
                self.adopt_status().await;
                self.retry_at = None;
            } else if !leading && was_leading {
                tracing::info!(id = %self.id, "standing by");
                self.watchers.stop();
            }
            was_leading = leading;
            let new_head = *self.head.borrow() != self.seen;
            if leading && (new_head || self.retry_at.is_none_or(|t| Instant::now() >= t)) {
                self.pass().await;
            } else if !leading {
                self.shared
                    .ready
                    .store(has_session.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            if *self.head.borrow() != self.seen && leading && self.retry_at.is_none() {
                // A newer commit arrived during the pass: go again at once.
                continue;
            }
            let wake = self
                .retry_at
                .unwrap_or_else(|| Instant::now() + self.interval);
            tokio::select! {
                Ok(()) = self.stop.changed() => {}
                Ok(()) = self.head.changed() => {}
                Ok(()) = self.leader.changed() => {}
                Some(path) = self.drift_rx.recv() => {
                    tracing::debug!(%path, "a watched object changed");
                    // Coalesce a burst of changes into one pass.
                    tokio::time::sleep(Duration::from_millis(25)).await;
                    while self.drift_rx.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
        self.watchers.stop();
    }

    /// Continues the status history another leader left in KV.
    async fn adopt_status(&mut self) {
        let key = status::status_key(&self.owner);
        if let Ok(Some((bytes, _))) = self.target.client.kv_get(&key).await {
            if let Ok(previous) = serde_json::from_slice::<Status>(&bytes) {
                // Ours (perhaps from a time Consul could not be written) and the last leader's.
                let mut history = previous.history;
                for e in std::mem::take(&mut self.status.history) {
                    if !history.contains(&e) {
                        history.push(e);
                    }
                }
                history.sort_by(|a, b| b.time.cmp(&a.time));
                history.truncate(status::HISTORY);
                self.status.history = history;
                if self.status.applied_revision.is_empty() {
                    self.status.applied_revision = previous.applied_revision;
                    self.status.applied_time = previous.applied_time;
                }
            }
        }
        self.written = None;
    }

    fn event(&mut self, revision: &str, result: &str, reason: String) {
        let same = self.status.revision == revision
            && self.status.result == result
            && self.status.reason == reason;
        if same {
            return;
        }
        match result {
            "failed" | "refused" | "drift" => {
                tracing::warn!(revision = %revision, result, reason = %reason, "reconcile")
            }
            _ => tracing::info!(revision = %revision, result, reason = %reason, "reconcile"),
        }
        self.status.record(Event {
            revision: revision.to_owned(),
            result: result.to_owned(),
            reason,
            time: status::rfc3339(SystemTime::now()),
        });
    }

    fn stale(&self, head: &Option<String>) -> bool {
        *self.head.borrow() != *head || *self.stop.borrow() || !*self.leader.borrow()
    }

    async fn pass(&mut self) {
        let started = Instant::now();
        let result = self.pass_inner(started).await;
        match result {
            PassResult::Failed => {
                let d = self.backoff.next();
                tracing::info!(
                    retry_in_ms = d.as_millis() as u64,
                    failures = self.backoff.failures(),
                    "backing off"
                );
                self.retry_at = Some(Instant::now() + d);
            }
            _ => {
                self.backoff.reset();
                self.retry_at = None;
            }
        }
        if !matches!(result, PassResult::Idle) {
            self.shared.metrics.pass(result.as_str(), started.elapsed());
        }
        if *self.leader.borrow() {
            self.write_status().await;
            if !matches!(result, PassResult::Failed) {
                self.shared.ready.store(true, Ordering::Relaxed);
            }
        }
        if let Some(c) = self.pending.as_ref().or(self.applied.as_ref()) {
            let mut paths: Vec<String> = apply::Desired::of(&c.loaded)
                .entries
                .iter()
                .map(|e| mesh_consul::Client::config_entries_path(e.kind().as_str()))
                .collect();
            paths.push(mesh_consul::Client::kv_path(
                &mesh_plan::acl::inventory_key(&self.owner),
            ));
            paths.sort();
            paths.dedup();
            self.watchers
                .set(&paths, &self.target.client, &self.drift_tx);
        }
    }

    async fn write_status(&mut self) {
        if self.written.as_ref() == Some(&self.status) {
            return;
        }
        let key = status::status_key(&self.owner);
        let body = match serde_json::to_vec_pretty(&self.status) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode the status");
                return;
            }
        };
        match self.target.client.kv_put(&key, &body, None).await {
            Ok(true) => self.written = Some(self.status.clone()),
            Ok(false) => tracing::warn!(%key, "the status was not written"),
            Err(e) => tracing::warn!(%key, error = %e, "cannot write the status"),
        }
    }

    /// Loads, verifies and gates a commit. `Ok(Err(reason))`: refused.
    async fn consider(&self, rev: &str) -> Result<std::result::Result<Commit, String>> {
        let oid = git2::Oid::from_str(rev)?;
        let (source, options) = (self.source.clone(), self.options.clone());
        let trusted = self.trusted.clone();
        let owner = self.owner.clone();
        let rev = rev.to_owned();
        tokio::task::spawn_blocking(move || -> Result<std::result::Result<Commit, String>> {
            if let Some(keys) = &trusted {
                match source.signature(oid)? {
                    None => return Ok(Err("the commit is not signed (--require-signed)".into())),
                    Some((sig, data)) => {
                        match signing::verify(&sig, &data, keys) {
                            Ok(who) => tracing::info!(revision = %rev, signer = %who, "signature verified"),
                            Err(why) => return Ok(Err(format!("signature: {why}"))),
                        }
                    }
                }
            }
            let (files, summary) = source.files_at(oid)?;
            let loaded = mesh_loader::load_files(files, &options);
            if let Err(failure) = apply::gate(&loaded, ".", true) {
                let mut reason = failure.to_string();
                if let apply::GateFailure::Invalid(_) = failure {
                    if let Some(d) = loaded.diagnostics.iter().find(|d| d.is_error()) {
                        let first = mesh_diagnostics::render_text(d, &loaded.sources);
                        reason = format!("{reason}: {}", first.lines().next().unwrap_or("").trim());
                    }
                }
                return Ok(Err(reason));
            }
            if loaded.state.settings.owner != owner {
                return Ok(Err(format!(
                    "the owner changed from {owner:?} to {:?}; a reconciler serves one owner (restart it with --owner)",
                    loaded.state.settings.owner
                )));
            }
            tracing::debug!(revision = %rev, %summary, "the commit passed the gate");
            Ok(Ok(Commit { rev, loaded }))
        })
        .await?
    }

    async fn pass_inner(&mut self, started: Instant) -> PassResult {
        let head = self.head.borrow().clone();
        if let Some(h) = head.as_ref().filter(|h| self.seen.as_ref() != Some(*h)) {
            match self.consider(h).await {
                _ if self.stale(&head) => {
                    tracing::info!(revision = %h, "a newer commit arrived; dropping the stale one");
                    return PassResult::Interrupted;
                }
                Ok(Ok(commit)) => self.pending = Some(commit),
                Ok(Err(reason)) => {
                    self.shared.metrics.gate_failure();
                    let kept = self
                        .applied
                        .as_ref()
                        .map(|c| status::short(&c.rev).to_owned())
                        .or_else(|| {
                            Some(self.status.applied_revision.clone()).filter(|r| !r.is_empty())
                        })
                        .map(|r| format!("; keeping {}", status::short(&r)))
                        .unwrap_or_default();
                    self.event(h, "refused", format!("{reason}{kept}"));
                    self.seen = head.clone();
                    // A refused commit replaces no pending one: keep converging to the last good.
                    self.pending = None;
                    return PassResult::Refused;
                }
                Err(e) => {
                    self.event(h, "failed", format!("{e:#}"));
                    return PassResult::Failed;
                }
            }
            self.seen = head.clone();
        }
        let (is_new, rev) = match (&self.pending, &self.applied) {
            (Some(c), _) => (true, c.rev.clone()),
            (None, Some(c)) => (false, c.rev.clone()),
            (None, None) => return PassResult::Idle,
        };
        let loaded = match &self.pending {
            Some(c) => &c.loaded,
            None => match &self.applied {
                Some(c) => &c.loaded,
                None => return PassResult::Idle,
            },
        };
        let planned = tokio::time::timeout(
            self.pass_timeout,
            apply::make_plan(loaded, &self.target, &self.target_args),
        )
        .await;
        let plan = match planned {
            Ok(Ok((plan, _))) => plan,
            Ok(Err(e)) => {
                self.event(&rev, "failed", format!("{e:#}"));
                return PassResult::Failed;
            }
            Err(_) => {
                self.event(
                    &rev,
                    "failed",
                    "planning took longer than --pass-timeout".into(),
                );
                return PassResult::Failed;
            }
        };
        let refused = refusals(&plan);
        let refused_note = if refused.is_empty() {
            String::new()
        } else {
            format!("; left unchanged: {}", refused.join(", "))
        };
        if plan.steps.is_empty() {
            if is_new {
                self.applied = self.pending.take();
                self.refused = refused;
                self.shared.metrics.applied(&rev);
                self.event(&rev, "in-sync", format!("nothing to change{refused_note}"));
            } else if refused != self.refused {
                // An owned object lost its owner's mark outside git: it is not ours to revert.
                let taken: Vec<&str> = refused
                    .iter()
                    .filter(|r| !self.refused.contains(r))
                    .map(String::as_str)
                    .collect();
                if taken.is_empty() {
                    self.refused = refused;
                } else {
                    let reason = format!(
                        "changed outside git and no longer marked as owned, so not reverted: {}",
                        taken.join(", ")
                    );
                    if reason != self.last_drift {
                        self.shared.metrics.drift();
                        self.last_drift = reason.clone();
                    }
                    self.event(&rev, "drift", reason);
                    return PassResult::Drift;
                }
            } else if matches!(
                self.status.result.as_str(),
                "failed" | "drift" | "interrupted"
            ) {
                self.event(&rev, "in-sync", "Consul matches git again".into());
            }
            self.last_drift.clear();
            return PassResult::InSync;
        }
        let summary = summarize(&plan);
        if !is_new {
            // One drift, one event: a drift left in place (--no-self-heal) is not recounted.
            if summary != self.last_drift {
                self.shared.metrics.drift();
                self.last_drift = summary.clone();
            }
            if !self.self_heal {
                self.event(&rev, "drift", format!("{summary} (self-heal is off)"));
                return PassResult::Drift;
            }
            tracing::warn!(revision = %rev, changes = %summary, "drift: objects changed outside git; healing");
        }
        let head_at_start = head.clone();
        let deadline = started + self.pass_timeout;
        let (head_rx, stop_rx, leader_rx) =
            (self.head.clone(), self.stop.clone(), self.leader.clone());
        let stop = move || {
            *head_rx.borrow() != head_at_start
                || *stop_rx.borrow()
                || !*leader_rx.borrow()
                || Instant::now() >= deadline
        };
        let mut out = Vec::new();
        let result =
            apply::apply_with(loaded, &self.target, &self.target_args, &mut out, &stop).await;
        for line in String::from_utf8_lossy(&out).lines() {
            tracing::info!(revision = %rev, step = %line.trim(), "apply");
        }
        match result {
            Ok(report) => {
                self.shared.metrics.conflicts(report.conflicts);
                self.shared.metrics.writes(report.writes);
                if report.stopped {
                    let why = if *self.stop.borrow() {
                        "stopping"
                    } else if !*self.leader.borrow() {
                        "the leader lock was lost"
                    } else if Instant::now() >= deadline {
                        "the pass ran out of time (--pass-timeout)"
                    } else {
                        "a newer commit arrived"
                    };
                    self.event(
                        &rev,
                        "interrupted",
                        format!("stopped after {} write(s): {why}", report.writes),
                    );
                    return PassResult::Interrupted;
                }
                self.shared.metrics.applied(&rev);
                self.refused = refused;
                if is_new {
                    self.applied = self.pending.take();
                    self.event(
                        &rev,
                        "applied",
                        format!("{} write(s): {summary}{refused_note}", report.writes),
                    );
                    PassResult::Applied
                } else {
                    self.event(
                        &rev,
                        "healed",
                        format!("{} write(s): {summary}", report.writes),
                    );
                    PassResult::Healed
                }
            }
            Err(e) => {
                self.event(&rev, "failed", format!("{e:#}"));
                PassResult::Failed
            }
        }
    }
}

/// `kind "name"` of every object the plan refused to touch, sorted.
fn refusals(plan: &mesh_plan::Plan) -> Vec<String> {
    let mut out: Vec<String> = plan
        .refused
        .iter()
        .map(|r| format!("{} \"{}\"", r.kind, r.name))
        .collect();
    out.sort();
    out
}

/// `2 change(s): ~ service-intentions "count-api", + service-defaults "web"` (at most 5 named).
fn summarize(plan: &mesh_plan::Plan) -> String {
    let named: Vec<String> = plan
        .steps
        .iter()
        .take(5)
        .map(|s| format!("{} {} \"{}\"", s.action.sign(), s.kind, s.name))
        .collect();
    let more = plan.steps.len().saturating_sub(5);
    let mut out = format!("{} change(s): {}", plan.steps.len(), named.join(", "));
    if more > 0 {
        out.push_str(&format!(", and {more} more"));
    }
    out
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Consul's address (else CONSUL_HTTP_ADDR).
    #[arg(long, value_name = "URL")]
    consul: Option<String>,
    /// The owner whose reconciler to ask about.
    #[arg(long, default_value = "mesh-gitops")]
    owner: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = crate::ReportFormat::Text)]
    format: crate::ReportFormat,
}

/// `mesh-gitops status`: prints the status the leader keeps in KV. Exit 0 when the last pass
/// applied or found Consul in sync, 1 without a status, 3 when it refused, failed or drifted.
pub fn print_status(args: StatusArgs) -> Result<std::process::ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let config = mesh_consul::ClientConfig::from_env(args.consul.as_deref(), &env)?;
    let client = mesh_consul::Client::new(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let key = status::status_key(&args.owner);
    let found = runtime.block_on(client.kv_get(&key))?;
    let Some((bytes, _)) = found else {
        eprintln!(
            "mesh-gitops: no status at {key} in {} (is a reconciler running for owner {:?}?)",
            client.address(),
            args.owner
        );
        return Ok(std::process::ExitCode::from(1));
    };
    let s: Status = serde_json::from_slice(&bytes)
        .with_context(|| format!("the status at {key} is unreadable"))?;
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match args.format {
        crate::ReportFormat::Text => out.write_all(s.render().as_bytes())?,
        crate::ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &s)?;
            writeln!(out)?;
        }
    }
    Ok(
        if matches!(s.result.as_str(), "applied" | "in-sync" | "healed") {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::from(3)
        },
    )
}
