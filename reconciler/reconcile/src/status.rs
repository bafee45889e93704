//! What the loop reports: the status record kept in Consul KV (`mesh-gitops/<owner>/status`,
//! with a short history), the Prometheus metrics, and the HTTP listener serving `/healthz`,
//! `/readyz` and `/metrics`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many past events the status keeps.
pub const HISTORY: usize = 10;

/// The KV key of an owner's status.
pub fn status_key(owner: &str) -> String {
    format!("mesh-gitops/{owner}/status")
}

/// Where the status record is kept: the loop reads the last leader's record when it takes
/// over, and writes its own after every pass it makes as leader.
pub trait StatusSink: Send + Sync {
    /// The record another leader left, if there is a readable one.
    fn read(&self) -> impl std::future::Future<Output = Option<Status>>;
    /// Writes the record; `true` once it is stored (failures are logged, and the next pass
    /// tries again).
    fn write(&self, status: &Status) -> impl std::future::Future<Output = bool>;
    /// The suspension flag, if it is set (see [`crate::suspend`]).
    fn suspended(&self) -> impl std::future::Future<Output = Option<crate::suspend::Suspension>>;
}

/// The status record in Consul KV, at [`status_key`].
pub struct KvStatus {
    pub client: Arc<mesh_consul::Client>,
    pub key: String,
    /// The owner's suspension flag ([`crate::suspend::suspended_key`]).
    pub suspended_key: String,
}

impl StatusSink for KvStatus {
    async fn read(&self) -> Option<Status> {
        let (bytes, _) = self.client.kv_get(&self.key).await.ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    async fn suspended(&self) -> Option<crate::suspend::Suspension> {
        match self.client.kv_get(&self.suspended_key).await {
            Ok(found) => found.map(|(bytes, _)| crate::suspend::Suspension::from_bytes(&bytes)),
            Err(e) => {
                // The plan that follows reads Consul too, and fails the pass if it is down.
                tracing::debug!(key = %self.suspended_key, error = %e, "cannot read the suspension flag");
                None
            }
        }
    }

    async fn write(&self, status: &Status) -> bool {
        let key = &self.key;
        let body = match serde_json::to_vec_pretty(status) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode the status");
                return false;
            }
        };
        match self.client.kv_put(key, &body, None).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(%key, "the status was not written");
                false
            }
            Err(e) => {
                tracing::warn!(%key, error = %e, "cannot write the status");
                false
            }
        }
    }
}

/// The KV key of an owner's leader lock.
pub fn leader_key(owner: &str) -> String {
    format!("mesh-gitops/{owner}/leader")
}

/// One event of the loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The commit the event is about.
    pub revision: String,
    /// `applied`, `in-sync`, `refused`, `failed`, `drift`, `healed`, `interrupted`, `blocked`
    /// (applied as far as it may be; declared objects owned elsewhere or unowned and
    /// different are left as they are), `suspended`, `held` (`--heal-only`: a new commit is
    /// not promoted).
    pub result: String,
    pub reason: String,
    /// RFC 3339, UTC.
    pub time: String,
}

/// The record written to Consul KV and printed by `mesh-gitops status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub revision: String,
    pub result: String,
    pub reason: String,
    pub time: String,
    /// The last revision applied (the state Consul is kept at).
    pub applied_revision: String,
    pub applied_time: String,
    pub leader: String,
    pub source: String,
    /// The branch followed (`--branch`, or the source's default branch); empty in a record
    /// written before it was kept.
    #[serde(default)]
    pub branch: String,
    pub history: Vec<Event>,
    /// Declared objects the last plan could not bring to the repository's state (owned by
    /// another owner, or unowned and different and not adopted): `kind "name": why`.
    #[serde(default)]
    pub blocked: Vec<String>,
    /// Declared objects another owner's mark claims: `kind "name" (owner)`.
    #[serde(default)]
    pub foreign: Vec<String>,
}

impl Status {
    /// Records an event: the newest first in the history.
    pub fn record(&mut self, e: Event) {
        self.revision = e.revision.clone();
        self.result = e.result.clone();
        self.reason = e.reason.clone();
        self.time = e.time.clone();
        if matches!(
            e.result.as_str(),
            "applied" | "in-sync" | "healed" | "blocked"
        ) {
            self.applied_revision = e.revision.clone();
            self.applied_time = e.time.clone();
        }
        self.history.insert(0, e);
        self.history.truncate(HISTORY);
    }

    /// Text for `mesh-gitops status`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.branch.is_empty() {
            let _ = writeln!(out, "source:   {}", self.source);
        } else {
            let _ = writeln!(out, "source:   {} (branch {})", self.source, self.branch);
        }
        let _ = writeln!(out, "leader:   {}", self.leader);
        let _ = writeln!(
            out,
            "applied:  {} at {}",
            or_none(&self.applied_revision),
            or_none(&self.applied_time)
        );
        let _ = writeln!(
            out,
            "last:     {} {} at {}",
            self.result,
            or_none(&self.revision),
            self.time
        );
        if !self.reason.is_empty() {
            let _ = writeln!(out, "reason:   {}", self.reason);
        }
        for (label, items) in [("blocked:", &self.blocked), ("foreign:", &self.foreign)] {
            if !items.is_empty() {
                let _ = writeln!(out, "{label}");
                for i in items {
                    let _ = writeln!(out, "  {i}");
                }
            }
        }
        if !self.history.is_empty() {
            let _ = writeln!(out, "history:");
            for e in &self.history {
                let _ = write!(out, "  {}  {:<11} {}", e.time, e.result, short(&e.revision));
                if !e.reason.is_empty() {
                    let _ = write!(out, "  {}", e.reason);
                }
                out.push('\n');
            }
        }
        out
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "(none)"
    } else {
        s
    }
}

/// The first 12 characters of a commit ID.
pub fn short(rev: &str) -> &str {
    rev.get(..12).unwrap_or(rev)
}

/// Seconds since the epoch.
pub fn unix_time(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// RFC 3339 in UTC, to the second.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Reconcile-duration histogram buckets, in seconds.
const BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The counters and gauges `/metrics` shows.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    last_applied: Option<(String, f64)>,
    durations: Vec<u64>,
    duration_sum: f64,
    duration_count: u64,
    passes: BTreeMap<String, u64>,
    drift_events: u64,
    cas_conflicts: u64,
    gate_failures: u64,
    fetch_failures: u64,
    writes: u64,
    /// Per channel: delivered, given up.
    notifications: BTreeMap<&'static str, (u64, u64)>,
    notifications_dropped: u64,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// `revision` was applied (or found in sync) at `at`.
    pub fn applied(&self, revision: &str, at: SystemTime) {
        self.lock().last_applied = Some((revision.to_owned(), unix_time(at)));
    }
    pub fn pass(&self, result: &str, took: Duration) {
        let mut m = self.lock();
        *m.passes.entry(result.to_owned()).or_default() += 1;
        let s = took.as_secs_f64();
        if m.durations.is_empty() {
            m.durations = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                m.durations[i] += 1;
            }
        }
        m.duration_sum += s;
        m.duration_count += 1;
    }
    pub fn drift(&self) {
        self.lock().drift_events += 1;
    }
    pub fn conflicts(&self, n: usize) {
        self.lock().cas_conflicts += n as u64;
    }
    pub fn gate_failure(&self) {
        self.lock().gate_failures += 1;
    }
    pub fn fetch_failure(&self) {
        self.lock().fetch_failures += 1;
    }
    pub fn writes(&self, n: usize) {
        self.lock().writes += n as u64;
    }
    /// A notification was delivered on `channel` (or given up after its retries).
    pub fn notification(&self, channel: &'static str, delivered: bool) {
        let mut m = self.lock();
        let counts = m.notifications.entry(channel).or_default();
        if delivered {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }
    /// The notification queue was full: its oldest notice was dropped.
    pub fn notification_dropped(&self) {
        self.lock().notifications_dropped += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self, requests: u64, leader: bool) -> String {
        let m = self.lock();
        let mut o = String::new();
        let mut metric = |name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        metric(
            "mesh_gitops_last_applied_timestamp",
            "gauge",
            "When the last revision was applied (or found in sync), in seconds since the epoch.",
        );
        let mut lines = String::new();
        if let Some((rev, t)) = &m.last_applied {
            let _ = writeln!(
                lines,
                "mesh_gitops_last_applied_timestamp{{revision=\"{}\"}} {t:.3}",
                escape(rev)
            );
        }
        let _ = writeln!(
            lines,
            "# HELP mesh_gitops_reconcile_duration_seconds How long a reconcile pass took.\n# TYPE mesh_gitops_reconcile_duration_seconds histogram"
        );
        for (i, b) in BUCKETS.iter().enumerate() {
            let n = m.durations.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                lines,
                "mesh_gitops_reconcile_duration_seconds_bucket{{le=\"{b}\"}} {n}"
            );
        }
        let _ = writeln!(
            lines,
            "mesh_gitops_reconcile_duration_seconds_bucket{{le=\"+Inf\"}} {c}\nmesh_gitops_reconcile_duration_seconds_sum {s:.6}\nmesh_gitops_reconcile_duration_seconds_count {c}",
            c = m.duration_count,
            s = m.duration_sum
        );
        let _ = writeln!(
            lines,
            "# HELP mesh_gitops_reconcile_passes_total Reconcile passes by result.\n# TYPE mesh_gitops_reconcile_passes_total counter"
        );
        for (result, n) in &m.passes {
            let _ = writeln!(
                lines,
                "mesh_gitops_reconcile_passes_total{{result=\"{}\"}} {n}",
                escape(result)
            );
        }
        for (name, help, v) in [
            (
                "mesh_gitops_drift_events_total",
                "Changes to owned objects made outside git.",
                m.drift_events,
            ),
            (
                "mesh_gitops_cas_conflicts_total",
                "Concurrent changes that made an apply re-read and re-plan.",
                m.cas_conflicts,
            ),
            (
                "mesh_gitops_gate_failures_total",
                "Commits refused: not signed by a trusted key, invalid, or failing check.",
                m.gate_failures,
            ),
            (
                "mesh_gitops_fetch_failures_total",
                "Failed fetches of the git source.",
                m.fetch_failures,
            ),
            (
                "mesh_gitops_writes_total",
                "Writes to Consul objects made by this replica.",
                m.writes,
            ),
            (
                "mesh_gitops_consul_requests_total",
                "HTTP requests sent to Consul, retries included.",
                requests,
            ),
            (
                "mesh_gitops_notifications_dropped_total",
                "Notifications dropped, oldest first, because the delivery queue was full.",
                m.notifications_dropped,
            ),
        ] {
            let _ = writeln!(
                lines,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        let _ = writeln!(
            lines,
            "# HELP mesh_gitops_notifications_total Notifications by channel and outcome (delivered, or failed after every retry).\n# TYPE mesh_gitops_notifications_total counter"
        );
        for (channel, (delivered, failed)) in &m.notifications {
            for (outcome, n) in [("delivered", delivered), ("failed", failed)] {
                let _ = writeln!(
                    lines,
                    "mesh_gitops_notifications_total{{channel=\"{channel}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            lines,
            "# HELP mesh_gitops_leader Whether this replica holds the leader lock.\n# TYPE mesh_gitops_leader gauge\nmesh_gitops_leader {}",
            u8::from(leader)
        );
        o.push_str(&lines);
        o
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What the HTTP listener reads.
pub struct Shared {
    pub metrics: Metrics,
    /// The count of requests sent to Consul (retries included).
    pub requests: Box<dyn Fn() -> u64 + Send + Sync>,
    pub leader: AtomicBool,
    /// The loop finished a pass as leader, or stands by with a live session.
    pub ready: AtomicBool,
    /// Unix seconds of the loop's last turn.
    pub heartbeat: AtomicU64,
    /// How long the loop may be silent before `/healthz` fails.
    pub stall_after: Duration,
    /// Fetch now: a push arrived (`/hooks/git`). Pushes while a fetch runs leave one permit,
    /// so the push that landed after the fetch began is fetched too.
    pub fetch_now: tokio::sync::Notify,
    /// The receiver of `/hooks/git`, when a webhook secret is configured.
    pub webhook: Option<crate::webhook::Receiver>,
}

impl Shared {
    /// Fresh: not leading, not ready, the heartbeat at `now`.
    pub fn new(
        requests: Box<dyn Fn() -> u64 + Send + Sync>,
        stall_after: Duration,
        now: SystemTime,
    ) -> Shared {
        let s = Shared {
            metrics: Metrics::default(),
            requests,
            leader: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            heartbeat: AtomicU64::new(0),
            stall_after,
            fetch_now: tokio::sync::Notify::new(),
            webhook: None,
        };
        s.beat(now);
        s
    }

    /// With `/hooks/git` served by `receiver`.
    pub fn with_webhook(mut self, receiver: crate::webhook::Receiver) -> Shared {
        self.webhook = Some(receiver);
        self
    }

    /// The loop turned at `now`.
    pub fn beat(&self, now: SystemTime) {
        self.heartbeat
            .store(unix_time(now) as u64, Ordering::Relaxed);
    }
}

/// `POST /hooks/git`: rate-limited first, then authenticated and read (see [`crate::webhook`]).
async fn hook(
    axum::extract::State(s): axum::extract::State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, String) {
    use crate::webhook::Outcome;
    let Some(receiver) = &s.webhook else {
        return (
            axum::http::StatusCode::NOT_FOUND,
            "no webhook secret is configured\n".into(),
        );
    };
    let outcome = if receiver.admit(std::time::Instant::now()) {
        receiver.decide(
            &|k: &str| headers.get(k).and_then(|v| v.to_str().ok()),
            &body,
        )
    } else {
        receiver.count(Outcome::Limited);
        Outcome::Limited
    };
    if outcome == Outcome::Fetch {
        tracing::info!("push webhook: fetching now");
        s.fetch_now.notify_one();
    } else {
        tracing::debug!(outcome = outcome.as_str(), "webhook");
    }
    (
        axum::http::StatusCode::from_u16(outcome.status())
            .unwrap_or(axum::http::StatusCode::BAD_REQUEST),
        format!("{}\n", outcome.as_str()),
    )
}

/// Serves `/healthz`, `/readyz`, `/metrics` and `POST /hooks/git` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/healthz",
            get(
                |axum::extract::State(s): axum::extract::State<Arc<Shared>>| async move {
                    let now = unix_time(SystemTime::now()) as u64;
                    let age = now.saturating_sub(s.heartbeat.load(Ordering::Relaxed));
                    if age <= s.stall_after.as_secs() {
                        (StatusCode::OK, "ok\n".to_owned())
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("the loop has not turned for {age}s\n"),
                        )
                    }
                },
            ),
        )
        .route(
            "/readyz",
            get(
                |axum::extract::State(s): axum::extract::State<Arc<Shared>>| async move {
                    if s.ready.load(Ordering::Relaxed) {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                },
            ),
        )
        .route(
            "/metrics",
            get(
                |axum::extract::State(s): axum::extract::State<Arc<Shared>>| async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        s.metrics
                            .render((s.requests)(), s.leader.load(Ordering::Relaxed))
                            + &s.webhook
                                .as_ref()
                                .map(crate::webhook::Receiver::render_metrics)
                                .unwrap_or_default(),
                    )
                },
            ),
        )
        .route(
            "/hooks/git",
            axum::routing::post(hook).layer(axum::extract::DefaultBodyLimit::max(
                crate::webhook::MAX_BODY,
            )),
        )
        .with_state(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661)),
            "2000-02-29T01:01:01Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_767_225_599)),
            "2025-12-31T23:59:59Z"
        );
    }

    #[test]
    fn history_is_bounded_and_newest_first() {
        let mut s = Status::default();
        for i in 0..15 {
            s.record(Event {
                revision: format!("r{i}"),
                result: if i == 14 { "refused" } else { "applied" }.into(),
                reason: String::new(),
                time: String::new(),
            });
        }
        assert_eq!(s.history.len(), HISTORY);
        assert_eq!(s.history[0].revision, "r14");
        assert_eq!(s.applied_revision, "r13");
        assert_eq!(s.result, "refused");
    }

    #[test]
    fn metrics_render_as_prometheus_text() {
        let m = Metrics::default();
        m.applied("abc\"d", SystemTime::now());
        m.pass("applied", Duration::from_millis(30));
        m.drift();
        let text = m.render(7, true);
        assert!(text.contains("mesh_gitops_last_applied_timestamp{revision=\"abc\\\"d\"}"));
        assert!(text.contains("mesh_gitops_reconcile_duration_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("mesh_gitops_reconcile_duration_seconds_bucket{le=\"0.01\"} 0"));
        assert!(text.contains("mesh_gitops_drift_events_total 1"));
        assert!(text.contains("mesh_gitops_consul_requests_total 7"));
        assert!(text.contains("mesh_gitops_leader 1"));
    }
}
