//! `mesh-gitops reconcile` and `mesh-gitops status`: the arguments, turned into the loop's
//! configuration (`mesh_reconcile::Config`), the wiring of the loop to git, Consul, the
//! signals and the HTTP listener, and the loop's `Applier`: the gate and the apply engine
//! `mesh-gitops apply` uses.

use crate::apply::{self, Target, TargetArgs};
use anyhow::{Context, Result};
use mesh_loader::Loaded;
use mesh_reconcile::{signing, source, status, Applied, GitSource, Shared, Status};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch as channel;

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
    /// The branch to follow (default: the source's default branch, the one its HEAD names,
    /// as `git clone` checks out).
    #[arg(long)]
    branch: Option<String>,
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
    /// Keep Consul at the applied revision, healing drift, and promote no new commit (they
    /// are recorded as held).
    #[arg(long)]
    heal_only: bool,
    /// Take over existing unowned objects (config entries even when they differ); never
    /// another owner's.
    #[arg(long)]
    adopt: bool,
    /// Allow a commit that deletes every object mesh-gitops owns.
    #[arg(long)]
    allow_empty: bool,
    /// Refuse a pass that deletes more than N objects (nothing is written; the status says why).
    #[arg(long, value_name = "N")]
    max_deletes: Option<usize>,
    /// Write up to N independent steps of a plan at once (default 8, 1: one after another), as
    /// `apply --parallelism`.
    #[arg(long, value_name = "N", value_parser = crate::apply::parse_parallelism)]
    parallelism: Option<usize>,
    /// Apply a commit even when the rollout simulated from the live state breaks, for a while,
    /// an edge allowed now and after it (the breaks are still logged).
    #[arg(long)]
    allow_transient: bool,
    /// Where /healthz, /readyz and /metrics are served (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// Serve `POST /hooks/git` on --listen for GitHub, GitLab and Gitea push events, which
    /// authenticate with the shared secret in this file; a push to the branch fetches at once.
    #[arg(long, value_name = "FILE")]
    webhook_secret_file: Option<PathBuf>,
    /// Notify a generic JSON webhook of applied, refused, healed, blocked and failed passes;
    /// its URL (which may carry a token) from `env:VAR` or `file:PATH`. Overrides
    /// `notifications { webhook }` in mesh-gitops.hcl.
    #[arg(long, value_name = "env:VAR|file:PATH", value_parser = parse_secret_source)]
    notify_webhook: Option<mesh_model::SecretSource>,
    /// Post those events to a Slack-compatible incoming webhook, its URL from `env:VAR` or
    /// `file:PATH`.
    #[arg(long, value_name = "env:VAR|file:PATH", value_parser = parse_secret_source)]
    notify_slack: Option<mesh_model::SecretSource>,
    /// Set a GitHub commit status on each revision in this repository (`owner/name`).
    #[arg(long, value_name = "OWNER/NAME", requires = "notify_github_token")]
    notify_github_repo: Option<String>,
    /// The GitHub token for commit statuses, from `env:VAR` or `file:PATH`.
    #[arg(long, value_name = "env:VAR|file:PATH", value_parser = parse_secret_source, requires = "notify_github_repo")]
    notify_github_token: Option<mesh_model::SecretSource>,
    /// The GitHub REST API's root (GitHub Enterprise Server: `https://HOST/api/v3`).
    #[arg(long, value_name = "URL", default_value = "https://api.github.com")]
    notify_github_api: String,
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
    /// Apply only head commits signed (SSH or OpenPGP) by a key in --trusted-keys.
    #[arg(long, requires = "trusted_keys")]
    require_signed: bool,
    /// The trusted keys: git allowed-signers lines (SSH) and/or armored OpenPGP public key
    /// blocks (`gpg --export --armor`; GitHub's web-flow key for commits made on github.com).
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

fn parse_secret_source(s: &str) -> Result<mesh_model::SecretSource, String> {
    mesh_loader::secret_source(s)
}

/// Go-style durations: `1m`, `1s`, `500ms`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    mesh_semantics::ca_config::parse_duration(s)
}

fn init_logs(format: LogFormat) {
    crate::logs::init(format == LogFormat::Json);
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

impl ReconcileArgs {
    fn check(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<()> {
        if self.consul.is_none() && env("CONSUL_HTTP_ADDR").is_none_or(|v| v.is_empty()) {
            anyhow::bail!("reconcile needs Consul: pass --consul URL or set CONSUL_HTTP_ADDR");
        }
        if !(Duration::from_secs(10)..=Duration::from_secs(86_400)).contains(&self.lock_ttl) {
            anyhow::bail!("--lock-ttl must be between 10s and 24h");
        }
        if self.interval < Duration::from_millis(100) {
            anyhow::bail!("--interval must be at least 100ms");
        }
        Ok(())
    }

    /// The keys of `--trusted-keys`, with `--require-signed`.
    fn trusted(&self) -> Result<Option<signing::TrustedKeys>> {
        match (&self.trusted_keys, self.require_signed) {
            (Some(file), true) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let keys = signing::TrustedKeys::parse(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                if keys.is_empty() {
                    anyhow::bail!("{} has no key trusted for git", file.display());
                }
                let pgp: Vec<String> = keys.pgp.iter().map(|k| k.fingerprint()).collect();
                tracing::info!(ssh = keys.ssh.len(), openpgp = %pgp.join(","), "trusted keys loaded");
                Ok(Some(keys))
            }
            (_, false) => Ok(None),
            (None, true) => anyhow::bail!("--require-signed needs --trusted-keys FILE"),
        }
    }

    fn source(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<GitSource> {
        let url = match std::path::Path::new(&self.source).canonicalize() {
            Ok(p) if p.is_dir() => p.to_string_lossy().into_owned(),
            _ => self.source.clone(),
        };
        Ok(GitSource::new(
            url.clone(),
            self.branch.clone(),
            self.path.clone(),
            self.cache_dir.join(source::cache_name(&url)),
            source::Credentials::from_env(
                self.git_password_file.as_deref(),
                self.git_ssh_key.as_deref(),
                env,
            )?,
        ))
    }

    /// The notification channels of the command line, their secrets read now (a missing
    /// secret is an error at start, not a silent loop).
    fn notify_channels(&self) -> Result<Vec<mesh_reconcile::notify::Channel>> {
        let github = match (&self.notify_github_repo, &self.notify_github_token) {
            (Some(repository), Some(token)) => Some(mesh_model::GithubStatus {
                repository: repository.clone(),
                token: token.clone(),
                api_url: Some(self.notify_github_api.clone()),
                context: None,
            }),
            _ => None,
        };
        let wanted = mesh_model::Notifications {
            webhook: self.notify_webhook.clone(),
            slack: self.notify_slack.clone(),
            github,
        };
        let (channels, problems) = mesh_reconcile::notify::channels(&wanted);
        if let Some(p) = problems.first() {
            anyhow::bail!("--notify-{p}");
        }
        Ok(channels)
    }

    fn config(&self, trusted: Option<signing::TrustedKeys>) -> mesh_reconcile::Config {
        mesh_reconcile::Config {
            id: self.id.clone().unwrap_or_else(default_id),
            owner: self.owner.clone(),
            self_heal: !self.no_self_heal,
            interval: self.interval,
            pass_timeout: self.pass_timeout,
            lock_ttl: self.lock_ttl,
            load: mesh_loader::LoadOptions {
                nomad_vars: self.vars.iter().cloned().collect(),
            },
            trusted,
            heal_only: self.heal_only,
        }
    }
}

pub fn run(args: ReconcileArgs) -> Result<()> {
    init_logs(args.log_format);
    let env = |k: &str| std::env::var(k).ok();
    args.check(&env)?;
    let trusted = args.trusted()?;
    let config = args.config(trusted);
    let mut consul = mesh_consul::ClientConfig::from_env(args.consul.as_deref(), &env)?;
    // The replica's name in every request, so Consul's side can tell the replicas apart.
    consul.user_agent = Some(format!("mesh-gitops reconcile {}", config.id));
    let client = Arc::new(mesh_consul::Client::new(consul)?);
    let source = Arc::new(args.source(&env)?);
    let channels = args.notify_channels()?;
    let webhook = match &args.webhook_secret_file {
        Some(file) => {
            let secret =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            if secret.trim_ascii().is_empty() {
                anyhow::bail!("{} is empty; a webhook needs a secret", file.display());
            }
            let followed = source.clone();
            Some(mesh_reconcile::webhook::Receiver::new(
                &secret,
                Box::new(move || mesh_reconcile::Source::branch(&*followed).to_owned()),
            ))
        }
        None => None,
    };
    let applier = Arc::new(ConsulApplier {
        target: Target {
            client: client.clone(),
            embedded: false,
        },
        args: TargetArgs {
            consul: args.consul.clone(),
            state_dir: PathBuf::new(),
            adopt: args.adopt,
            allow_empty: args.allow_empty,
            max_deletes: args.max_deletes,
            parallelism: args.parallelism,
        },
        allow_transient: args.allow_transient,
    });
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
        let requests = client.clone();
        let mut shared = Shared::new(
            Box::new(move || requests.requests()),
            args.interval * 3 + args.pass_timeout + Duration::from_secs(30),
            SystemTime::now(),
        );
        if let Some(receiver) = webhook {
            shared = shared.with_webhook(receiver);
        }
        let shared = Arc::new(shared);
        let notifier = Arc::new(mesh_reconcile::notify::Notifier::new(
            channels,
            NOTIFY_QUEUE,
            mesh_reconcile::notify::Retry::default(),
            shared.clone(),
        ));
        let delivery = tokio::spawn(notifier.clone().deliver_forever());
        let http = tokio::spawn(status::serve(
            listener,
            shared.clone(),
            until(stop_rx.clone()),
        ));
        let notify: Arc<dyn mesh_reconcile::notify::Notify> = notifier.clone();
        let result =
            mesh_reconcile::run(config, source, applier, client, shared, notify, stop_rx).await;
        // The last notices (the final pass's) get a moment to go out.
        notifier.close();
        let abort = delivery.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), delivery)
            .await
            .is_err()
        {
            abort.abort();
            tracing::warn!(
                queued = notifier.queued(),
                "stopping with notifications undelivered"
            );
        }
        let _ = http.await;
        tracing::info!("stopped");
        Ok(result?)
    })
}

/// Notices waiting for delivery; beyond it the oldest is dropped (and counted).
const NOTIFY_QUEUE: usize = 256;

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

/// The loop's effects on Consul: the gate, the plan and the apply of `mesh-gitops apply`.
struct ConsulApplier {
    target: Target,
    args: TargetArgs,
    allow_transient: bool,
}

impl mesh_reconcile::Applier for ConsulApplier {
    type Error = anyhow::Error;

    fn gate(&self, loaded: &Loaded) -> std::result::Result<(), String> {
        let Err(failure) = mesh_check::gate(loaded, ".", true) else {
            return Ok(());
        };
        let mut reason = mesh_report::gate::text::reason(&failure, loaded);
        if let mesh_check::GateFailure::Invalid { .. } = failure {
            if let Some(d) = loaded.diagnostics.iter().find(|d| d.is_error()) {
                let first = mesh_diagnostics::render_text(d, &loaded.sources);
                reason = format!("{reason}: {}", first.lines().next().unwrap_or("").trim());
            }
        }
        Err(reason)
    }

    async fn plan(&self, loaded: &Loaded) -> Result<mesh_plan::Plan> {
        Ok(apply::make_plan(loaded, &self.target, &self.args).await?.0)
    }

    async fn apply(
        &self,
        loaded: &Loaded,
        stop: &(dyn Fn() -> bool + Sync),
        log: &mut Vec<String>,
    ) -> Result<Applied> {
        let mut out = Vec::new();
        // The rollout from the live state, simulated before each plan's writes.
        let said = std::sync::Mutex::new(Vec::new());
        let say = |line: String| said.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        let vet = crate::rollout::vet(loaded, ".", true, self.allow_transient, &say);
        let result =
            apply::apply_with(loaded, &self.target, &self.args, &vet, &mut out, stop).await;
        drop(vet);
        log.extend(said.into_inner().unwrap_or_else(|e| e.into_inner()));
        log.extend(String::from_utf8_lossy(&out).lines().map(str::to_owned));
        let report = result?;
        Ok(Applied {
            writes: report.writes,
            conflicts: report.conflicts,
            stopped: report.stopped,
        })
    }
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
/// applied or found Consul in sync, 1 without a status, 3 when it refused, failed or drifted,
/// 4 when declared objects are blocked (owned elsewhere, or unowned and different).
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
        return Ok(crate::Exit::Error.into());
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
    Ok(match s.result.as_str() {
        "applied" | "in-sync" | "healed" => crate::Exit::Ok,
        "blocked" => crate::Exit::Blocked,
        _ => crate::Exit::Violation,
    }
    .into())
}
