//! The loop's decisions. A [`Reconciler`] turns once per wake-up: it reads its inputs as they
//! are now (the head commit, the leader flag, the stop flag; never which one woke it), runs a
//! pass when it leads and one is due, and says when it wants to turn again. Its effects go
//! through [`Source`], [`Applier`], [`StatusSink`] and [`Clock`].

use crate::applier::Applier;
use crate::backoff::Backoff;
use crate::clock::Clock;
use crate::notify::{Notice, Notify, NOTIFIED};
use crate::signing::{self, TrustedKeys};
use crate::source::Source;
use crate::status::{self, Event, Shared, Status, StatusSink};
use crate::{chain, ReconcileError};
use mesh_loader::Loaded;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The loop's inputs, read level by level: the newest head commit fetched, whether this replica
/// holds the leader lock, whether it is asked to stop, and whether the election holds a session
/// (a standby with one is ready).
#[derive(Clone)]
pub struct Inputs {
    pub head: watch::Receiver<Option<String>>,
    pub leader: watch::Receiver<bool>,
    pub stop: watch::Receiver<bool>,
    pub session: Arc<AtomicBool>,
    /// The election's lease; `None` (tests with a map for Consul) trusts the leader flag alone.
    pub lease: Option<Arc<crate::leader::Lease>>,
}

impl Inputs {
    fn head(&self) -> Option<String> {
        self.head.borrow().clone()
    }
    /// Leading: the lock is held and its lease still runs.
    fn leading(&self) -> bool {
        *self.leader.borrow() && self.lease.as_ref().is_none_or(|l| l.valid())
    }
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }
}

/// The loop's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// This replica's name in the lock and the status.
    pub id: String,
    /// The owner whose objects are managed; `None`: the first commit's.
    pub owner: Option<String>,
    /// Revert drift (else only report it).
    pub self_heal: bool,
    /// How often to fetch, and to compare Consul with git without a change.
    pub interval: Duration,
    /// The longest a pass may take.
    pub pass_timeout: Duration,
    /// The leader session's TTL.
    pub lock_ttl: Duration,
    pub load: mesh_loader::LoadOptions,
    /// With `Some`, only commits signed by one of these keys are applied.
    pub trusted: Option<TrustedKeys>,
    /// Keep Consul at the applied revision (healing drift) and promote no new commit.
    pub heal_only: bool,
}

/// The effects a [`Reconciler`] has on the world.
pub struct Effects<S, A, K, C> {
    pub source: Arc<S>,
    pub applier: Arc<A>,
    pub sink: K,
    pub clock: Arc<C>,
    /// Told of applied, in-sync, refused, healed, blocked and failed results; it must not block.
    pub notify: Arc<dyn Notify>,
}

/// A commit that passed the gate.
struct Commit {
    rev: String,
    loaded: Loaded,
}

/// How a pass ended, as the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassResult {
    Idle,
    InSync,
    Applied,
    Refused,
    Drift,
    Healed,
    Interrupted,
    Failed,
    /// Applied as far as it may be; some declared objects are owned elsewhere or unowned and
    /// different.
    Blocked,
    /// The owner's suspension flag is set: nothing was done.
    Suspended,
}

impl PassResult {
    pub fn as_str(&self) -> &'static str {
        match self {
            PassResult::Idle => "idle",
            PassResult::InSync => "in-sync",
            PassResult::Applied => "applied",
            PassResult::Refused => "refused",
            PassResult::Drift => "drift",
            PassResult::Healed => "healed",
            PassResult::Interrupted => "interrupted",
            PassResult::Failed => "failed",
            PassResult::Blocked => "blocked",
            PassResult::Suspended => "suspended",
        }
    }
}

/// What the loop does after a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// It was asked to stop.
    Stop,
    /// Turn again at once: a newer commit arrived during the pass.
    Again,
    /// Turn when an input changes, or at this time (the resync interval or the backoff).
    Wait(Instant),
}

/// The outcome of one turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub next: Next,
    /// The Consul paths to watch for drift from now on (empty: none); `None`: unchanged.
    pub watch: Option<Vec<String>>,
}

pub struct Reconciler<S, A, K, C> {
    id: String,
    owner: String,
    self_heal: bool,
    interval: Duration,
    pass_timeout: Duration,
    load: mesh_loader::LoadOptions,
    trusted: Option<Arc<TrustedKeys>>,
    heal_only: bool,
    source: Arc<S>,
    applier: Arc<A>,
    sink: K,
    clock: Arc<C>,
    notify: Arc<dyn Notify>,
    shared: Arc<Shared>,
    inputs: Inputs,
    was_leading: bool,
    /// The newest head considered (gated), whatever the outcome.
    seen: Option<String>,
    /// Gated, not yet applied.
    pending: Option<Commit>,
    /// The state Consul is kept at.
    applied: Option<Commit>,
    status: Status,
    written: Option<Status>,
    backoff: Backoff,
    retry_at: Option<Instant>,
    /// The drift last counted.
    last_drift: String,
}

impl<S: Source, A: Applier, K: StatusSink, C: Clock> Reconciler<S, A, K, C> {
    /// A reconciler for `owner`, with nothing applied yet.
    pub fn new(
        config: &Config,
        owner: String,
        effects: Effects<S, A, K, C>,
        shared: Arc<Shared>,
        inputs: Inputs,
    ) -> Self {
        Reconciler {
            status: Status {
                leader: config.id.clone(),
                source: effects.source.shown(),
                ..Status::default()
            },
            id: config.id.clone(),
            owner,
            self_heal: config.self_heal,
            interval: config.interval,
            pass_timeout: config.pass_timeout,
            load: config.load.clone(),
            trusted: config.trusted.clone().map(Arc::new),
            heal_only: config.heal_only,
            source: effects.source,
            applier: effects.applier,
            sink: effects.sink,
            clock: effects.clock,
            notify: effects.notify,
            shared,
            inputs,
            was_leading: false,
            seen: None,
            pending: None,
            applied: None,
            written: None,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
            retry_at: None,
            last_drift: String::new(),
        }
    }

    /// The status record as this replica knows it.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The inputs it reads (clones, for waiting on their changes).
    pub fn inputs(&self) -> &Inputs {
        &self.inputs
    }

    pub fn clock(&self) -> &Arc<C> {
        &self.clock
    }

    /// One turn: notes a change of leadership, runs a pass if this replica leads and a new
    /// head or the retry time calls for one, and says when to turn again.
    pub async fn turn(&mut self) -> Turn {
        self.shared.beat(self.clock.wall());
        if self.inputs.stopping() {
            return Turn {
                next: Next::Stop,
                watch: None,
            };
        }
        let mut watch = None;
        let leading = self.inputs.leading();
        self.shared.leader.store(leading, Ordering::Relaxed);
        if leading && !self.was_leading {
            tracing::info!(id = %self.id, "leading: this replica writes");
            self.adopt_status().await;
            self.retry_at = None;
        } else if !leading && self.was_leading {
            tracing::info!(id = %self.id, "standing by");
            watch = Some(Vec::new());
        }
        self.was_leading = leading;
        let new_head = self.inputs.head() != self.seen;
        let now = self.clock.now();
        if leading && (new_head || self.retry_at.is_none_or(|t| now >= t)) {
            if let Some(paths) = self.pass().await {
                watch = Some(paths);
            }
        } else if !leading {
            let session = self.inputs.session.load(Ordering::Relaxed);
            self.shared.ready.store(session, Ordering::Relaxed);
        }
        if self.inputs.head() != self.seen && leading && self.retry_at.is_none() {
            return Turn {
                next: Next::Again,
                watch,
            };
        }
        let wake = self
            .retry_at
            .unwrap_or_else(|| self.clock.now() + self.interval);
        Turn {
            next: Next::Wait(wake),
            watch,
        }
    }

    /// Continues the status history another leader left.
    async fn adopt_status(&mut self) {
        if let Some(previous) = self.sink.read().await {
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
            "failed" | "refused" | "drift" | "blocked" => {
                tracing::warn!(revision = %revision, result, reason = %reason, "reconcile")
            }
            _ => tracing::info!(revision = %revision, result, reason = %reason, "reconcile"),
        }
        // Known once the first fetch has followed the source's default branch.
        self.status.branch = self.source.branch().to_owned();
        let time = status::rfc3339(self.clock.wall());
        if NOTIFIED.contains(&result) {
            self.notify.send(Notice {
                result: result.to_owned(),
                revision: revision.to_owned(),
                reason: reason.clone(),
                time: time.clone(),
                owner: self.owner.clone(),
                branch: self.status.branch.clone(),
                source: self.status.source.clone(),
                replica: self.id.clone(),
            });
        }
        self.status.record(Event {
            revision: revision.to_owned(),
            result: result.to_owned(),
            reason,
            time,
        });
    }

    fn stale(&self, head: &Option<String>) -> bool {
        self.inputs.head() != *head || self.inputs.stopping() || !self.inputs.leading()
    }

    /// A pass, then its bookkeeping: the backoff, the metrics, the status record, readiness.
    /// Returns the paths to watch for drift of the commit Consul is (to be) kept at.
    async fn pass(&mut self) -> Option<Vec<String>> {
        let started = self.clock.now();
        let result = self.pass_inner(started).await;
        match result {
            PassResult::Failed => {
                let d = self.backoff.next();
                tracing::info!(
                    retry_in_ms = d.as_millis() as u64,
                    failures = self.backoff.failures(),
                    "backing off"
                );
                self.retry_at = Some(self.clock.now() + d);
            }
            _ => {
                self.backoff.reset();
                self.retry_at = None;
            }
        }
        if result != PassResult::Idle {
            let took = self.clock.now().saturating_duration_since(started);
            self.shared.metrics.pass(result.as_str(), took);
        }
        if self.inputs.leading() {
            self.write_status().await;
            if result != PassResult::Failed {
                self.shared.ready.store(true, Ordering::Relaxed);
            }
        }
        let c = self.pending.as_ref().or(self.applied.as_ref())?;
        Some(watched_paths(&c.loaded, &self.owner))
    }

    async fn write_status(&mut self) {
        if self.written.as_ref() == Some(&self.status) {
            return;
        }
        if self.sink.write(&self.status).await {
            self.written = Some(self.status.clone());
        }
    }

    /// Loads, verifies and gates a commit. `Ok(Err(reason))`: refused.
    async fn consider(&self, rev: &str) -> Result<Result<Commit, String>, ReconcileError> {
        let (source, applier) = (self.source.clone(), self.applier.clone());
        let (trusted, load) = (self.trusted.clone(), self.load.clone());
        let owner = self.owner.clone();
        let rev = rev.to_owned();
        let verdict = move || -> Result<Result<Commit, String>, ReconcileError> {
            if let Some(keys) = &trusted {
                match source.signature(&rev)? {
                    None => return Ok(Err("the commit is not signed (--require-signed)".into())),
                    Some(signed) => match signing::verify(&signed.signature, &signed.data, keys) {
                        Ok(who) => {
                            tracing::info!(revision = %rev, signer = %who, "signature verified")
                        }
                        Err(why) => return Ok(Err(format!("signature: {why}"))),
                    },
                }
            }
            let commit = source.read(&rev)?;
            let loaded = mesh_loader::load_files(commit.files, &load);
            if let Err(reason) = applier.gate(&loaded) {
                return Ok(Err(reason));
            }
            if loaded.state.settings.owner != owner {
                return Ok(Err(format!(
                    "the owner changed from {owner:?} to {:?}; a reconciler serves one owner (restart it with --owner)",
                    loaded.state.settings.owner
                )));
            }
            tracing::debug!(revision = %rev, summary = %commit.summary, "the commit passed the gate");
            Ok(Ok(Commit { rev, loaded }))
        };
        tokio::task::spawn_blocking(verdict).await?
    }

    /// The gate for a new head, then plan and apply (or heal). Long because it is the loop's
    /// one decision table: each outcome and the event it records sit side by side.
    async fn pass_inner(&mut self, started: Instant) -> PassResult {
        let head = self.inputs.head();
        if let Some(result) = self.paused(&head).await {
            return result;
        }
        if let Some(h) = head.as_ref().filter(|h| self.seen.as_ref() != Some(*h)) {
            match self.consider(h).await {
                _ if self.stale(&head) => {
                    tracing::info!(revision = %h, "a newer commit arrived; dropping the stale one");
                    return PassResult::Interrupted;
                }
                Ok(Ok(commit)) => {
                    self.notify
                        .configure(&commit.loaded.state.settings.notifications);
                    self.pending = Some(commit);
                }
                Ok(Err(reason)) => {
                    self.shared.metrics.gate_failure();
                    let kept = self
                        .kept_revision()
                        .map(|r| format!("; keeping {}", status::short(&r)))
                        .unwrap_or_default();
                    self.event(h, "refused", format!("{reason}{kept}"));
                    self.seen = head.clone();
                    // A refused commit replaces no pending one: keep converging to the last good.
                    self.pending = None;
                    return PassResult::Refused;
                }
                Err(e) => {
                    self.event(h, "failed", chain(&e));
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
        let clock = self.clock.clone();
        let plan_deadline = clock.now() + self.pass_timeout;
        let planned = tokio::select! {
            p = self.applier.plan(loaded) => Some(p),
            _ = clock.sleep_until(plan_deadline) => None,
        };
        let plan = match planned {
            Some(Ok(plan)) => plan,
            Some(Err(e)) => {
                self.event(&rev, "failed", format!("{e:#}"));
                return PassResult::Failed;
            }
            None => {
                self.event(
                    &rev,
                    "failed",
                    "planning took longer than --pass-timeout".into(),
                );
                return PassResult::Failed;
            }
        };
        (self.status.blocked, self.status.foreign) = blocked_and_foreign(&plan);
        let blocked = !self.status.blocked.is_empty();
        let refused = refusals(&plan);
        let refused_note = if refused.is_empty() {
            String::new()
        } else {
            format!("; left unchanged: {}", refused.join(", "))
        };
        if plan.steps.is_empty() {
            return self.in_sync(is_new, &rev, &refused_note);
        }
        let summary = summarize(&plan);
        // Read only once a plan has changes: a pass that would write nothing needs no flag,
        // and an unreachable Consul has failed the plan already.
        if let Some(s) = self.sink.suspended().await {
            let reason = format!("{}; pending: {summary}", s.describe());
            self.event(&rev, "suspended", reason);
            return PassResult::Suspended;
        }
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
        let inputs = self.inputs.clone();
        let stop = move || {
            *inputs.head.borrow() != head_at_start
                || *inputs.stop.borrow()
                || !*inputs.leader.borrow()
                || clock.now() >= deadline
        };
        let mut log = Vec::new();
        let result = self.applier.apply(loaded, &stop, &mut log).await;
        for line in &log {
            tracing::info!(revision = %rev, step = %line.trim(), "apply");
        }
        match result {
            Ok(report) => {
                self.shared.metrics.conflicts(report.conflicts);
                self.shared.metrics.writes(report.writes);
                if report.stopped {
                    let why = self.stopped_because(deadline);
                    self.event(
                        &rev,
                        "interrupted",
                        format!("stopped after {} write(s): {why}", report.writes),
                    );
                    return PassResult::Interrupted;
                }
                self.shared.metrics.applied(&rev, self.clock.wall());
                let (result, pass) = match (is_new, blocked) {
                    (_, true) => ("blocked", PassResult::Blocked),
                    (true, false) => ("applied", PassResult::Applied),
                    (false, false) => ("healed", PassResult::Healed),
                };
                if is_new {
                    self.applied = self.pending.take();
                }
                let note = if is_new || blocked {
                    refused_note
                } else {
                    String::new()
                };
                self.event(
                    &rev,
                    result,
                    format!("{} write(s): {summary}{note}", report.writes),
                );
                pass
            }
            Err(e) => {
                self.event(&rev, "failed", format!("{e:#}"));
                PassResult::Failed
            }
        }
    }

    /// Why an apply stopped at a step boundary.
    fn stopped_because(&self, deadline: Instant) -> &'static str {
        if self.inputs.stopping() {
            "stopping"
        } else if !self.inputs.leading() {
            "the leader lock was lost"
        } else if self.clock.now() >= deadline {
            "the pass ran out of time (--pass-timeout)"
        } else {
            "a newer commit arrived"
        }
    }

    /// A pass that ends before the gate: `--heal-only` has nothing to keep.
    async fn paused(&mut self, head: &Option<String>) -> Option<PassResult> {
        if self.heal_only {
            return self.hold(head).await;
        }
        None
    }

    /// The revision Consul is kept at: this process's applied one, else the status record's.
    fn kept_revision(&self) -> Option<String> {
        self.applied
            .as_ref()
            .map(|c| c.rev.clone())
            .or_else(|| Some(self.status.applied_revision.clone()).filter(|r| !r.is_empty()))
    }

    /// `--heal-only`: the state to keep is the applied revision (this process's, else the one
    /// the status record names, loaded and gated again); a new head is noted as held, never
    /// promoted. `Some` ends the pass (nothing applied to keep, or it cannot be loaded).
    async fn hold(&mut self, head: &Option<String>) -> Option<PassResult> {
        if self.applied.is_none() {
            let rev = self.status.applied_revision.clone();
            if rev.is_empty() {
                let h = head.clone().unwrap_or_default();
                self.event(
                    &h,
                    "held",
                    "heal-only: no revision has been applied to keep".into(),
                );
                return Some(PassResult::Idle);
            }
            match self.consider(&rev).await {
                Ok(Ok(commit)) => {
                    self.notify
                        .configure(&commit.loaded.state.settings.notifications);
                    self.applied = Some(commit);
                }
                Ok(Err(reason)) => {
                    self.event(
                        &rev,
                        "refused",
                        format!("heal-only: the applied revision: {reason}"),
                    );
                    return Some(PassResult::Refused);
                }
                Err(e) => {
                    self.event(&rev, "failed", chain(&e));
                    return Some(PassResult::Failed);
                }
            }
        }
        let kept = self
            .applied
            .as_ref()
            .map(|c| c.rev.clone())
            .unwrap_or_default();
        if let Some(h) = head
            .as_ref()
            .filter(|h| **h != kept && self.seen.as_ref() != Some(*h))
        {
            self.event(
                h,
                "held",
                format!(
                    "heal-only: not promoted; Consul is kept at {}",
                    status::short(&kept)
                ),
            );
        }
        self.seen = head.clone();
        self.pending = None;
        None
    }

    /// The plan is empty: a new commit is applied by doing nothing. Declared objects left as
    /// they are because another owner holds them (or they are unowned and different) make the
    /// result `blocked`, for a new commit and the applied one alike.
    fn in_sync(&mut self, is_new: bool, rev: &str, refused_note: &str) -> PassResult {
        self.last_drift.clear();
        let blocked = !self.status.blocked.is_empty();
        if is_new {
            self.applied = self.pending.take();
            self.shared.metrics.applied(rev, self.clock.wall());
            let result = if blocked { "blocked" } else { "in-sync" };
            self.event(rev, result, format!("nothing to change{refused_note}"));
        } else if blocked {
            // Still blocked as the last pass left it: nothing new to record.
            if self.status.result != "blocked" {
                self.event(rev, "blocked", format!("nothing to change{refused_note}"));
            }
        } else if matches!(
            self.status.result.as_str(),
            "failed" | "drift" | "interrupted" | "blocked" | "suspended"
        ) {
            self.event(rev, "in-sync", "Consul matches git again".into());
        }
        if blocked {
            PassResult::Blocked
        } else {
            PassResult::InSync
        }
    }
}

/// Where a change may be drift from `loaded`: the config entries of every kind it declares,
/// and the owner's inventory; and the owner's suspension flag. Sorted.
pub fn watched_paths(loaded: &Loaded, owner: &str) -> Vec<String> {
    let mut paths: Vec<String> = loaded
        .state
        .config_entries
        .iter()
        .map(|e| mesh_consul::Client::config_entries_path(e.kind().as_str()))
        .collect();
    paths.push(mesh_consul::Client::kv_path(
        &mesh_plan::acl::inventory_key(owner),
    ));
    paths.push(mesh_consul::Client::kv_path(
        &crate::suspend::suspended_key(owner),
    ));
    paths.sort();
    paths.dedup();
    paths
}

/// The status's lists: every blocking refusal as `kind "name": why`, and every refusal another
/// owner's mark explains as `kind "name" (owner "x")`.
fn blocked_and_foreign(plan: &mesh_plan::Plan) -> (Vec<String>, Vec<String>) {
    let blocked = plan
        .blocked()
        .map(|r| format!("{} \"{}\": {}", r.kind, r.name, r.reason))
        .collect();
    let foreign = plan
        .refused
        .iter()
        .filter_map(|r| {
            let owner = r.owner.as_ref()?;
            Some(format!("{} \"{}\" (owner \"{owner}\")", r.kind, r.name))
        })
        .collect();
    (blocked, foreign)
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
pub fn summarize(plan: &mesh_plan::Plan) -> String {
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
