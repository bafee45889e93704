//! Notifications of what the loop did: a generic JSON webhook, a Slack-compatible message and
//! a GitHub commit status, for applied, refused, healed, blocked and failed passes, and for
//! `in-sync` (a new commit that needed no change, or Consul matching git again after a failure).
//!
//! The loop only queues a [`Notice`] ([`Notify::send`] never waits); a task delivers them. The
//! queue is bounded: when it is full the oldest notice is dropped and counted. Each delivery is
//! retried with capped backoff. Webhook URLs (they carry their token) and the GitHub token are
//! read from secret references and never appear in a log line or a payload.

use crate::backoff::Backoff;
use crate::status::Shared;
use mesh_model::{Notifications, SecretSource};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The results that are notified (the loop records each once, when it changes).
pub const NOTIFIED: [&str; 6] = [
    "applied", "in-sync", "refused", "healed", "blocked", "failed",
];

/// One event of the loop, as notified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// One of [`NOTIFIED`].
    pub result: String,
    pub revision: String,
    /// The status's reason: the writes made, or why the gate refused (the check's summary).
    pub reason: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub owner: String,
    pub branch: String,
    /// The git source, credentials redacted.
    pub source: String,
    /// The replica that acted.
    pub replica: String,
}

/// Where the loop sends its notices: queued, never waited for.
pub trait Notify: Send + Sync {
    /// The channels a gated commit's `mesh-gitops.hcl` declares (those given on the command
    /// line win).
    fn configure(&self, settings: &Notifications);
    fn send(&self, notice: Notice);
}

/// No notifications.
pub struct Silent;

impl Notify for Silent {
    fn configure(&self, _: &Notifications) {}
    fn send(&self, _: Notice) {}
}

/// A delivery channel with its secret resolved.
#[derive(Clone)]
pub enum Channel {
    Webhook {
        url: String,
    },
    Slack {
        url: String,
    },
    Github {
        api: String,
        repository: String,
        token: String,
        context: Option<String>,
    },
}

impl Channel {
    pub fn name(&self) -> &'static str {
        match self {
            Channel::Webhook { .. } => "webhook",
            Channel::Slack { .. } => "slack",
            Channel::Github { .. } => "github",
        }
    }
}

impl std::fmt::Debug for Channel {
    // Never the URL or the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Reads a secret reference; the error names the reference, never its value.
pub fn read_secret(source: &SecretSource) -> Result<String, String> {
    let value = match source {
        SecretSource::Env(var) => std::env::var(var).map_err(|_| format!("{var} is not set"))?,
        SecretSource::File(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?
        }
    };
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(format!("{source} is empty"));
    }
    Ok(value)
}

/// The channels `settings` declares, with their secrets read. A secret that cannot be read
/// leaves its channel out (and says why).
pub fn channels(settings: &Notifications) -> (Vec<Channel>, Vec<String>) {
    let (mut out, mut problems) = (Vec::new(), Vec::new());
    let mut read = |name: &str, s: &SecretSource| match read_secret(s) {
        Ok(v) => Some(v),
        Err(why) => {
            problems.push(format!("{name}: {why}"));
            None
        }
    };
    if let Some(url) = settings.webhook.as_ref().and_then(|s| read("webhook", s)) {
        out.push(Channel::Webhook { url });
    }
    if let Some(url) = settings.slack.as_ref().and_then(|s| read("slack", s)) {
        out.push(Channel::Slack { url });
    }
    if let Some(gh) = &settings.github {
        if let Some(token) = read("github", &gh.token) {
            out.push(Channel::Github {
                api: gh
                    .api_url
                    .clone()
                    .unwrap_or_else(|| "https://api.github.com".into()),
                repository: gh.repository.clone(),
                token,
                context: gh.context.clone(),
            });
        }
    }
    (out, problems)
}

/// How deliveries are retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 6,
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// The queue and the channels; [`Notifier::deliver_forever`] is the delivery task.
pub struct Notifier {
    queue: Mutex<VecDeque<Notice>>,
    capacity: usize,
    wake: tokio::sync::Notify,
    /// No more notices will come: the delivery task ends once the queue is empty.
    closed: AtomicBool,
    /// From the command line: fixed.
    fixed: Vec<Channel>,
    /// From the last gated commit's settings, for the kinds the command line does not set.
    configured: Mutex<(Notifications, Vec<Channel>)>,
    retry: Retry,
    http: reqwest::Client,
    shared: Arc<Shared>,
}

impl Notifier {
    pub fn new(fixed: Vec<Channel>, capacity: usize, retry: Retry, shared: Arc<Shared>) -> Self {
        Notifier {
            queue: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            wake: tokio::sync::Notify::new(),
            closed: AtomicBool::new(false),
            fixed,
            configured: Mutex::new((Notifications::default(), Vec::new())),
            retry,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .user_agent(concat!("mesh-gitops/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
            shared,
        }
    }

    /// Notices waiting to be delivered.
    pub fn queued(&self) -> usize {
        self.lock_queue().len()
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Notice>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn channels(&self) -> Vec<Channel> {
        let configured = self.configured.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = self.fixed.clone();
        out.extend(
            configured
                .1
                .iter()
                .filter(|c| !self.fixed.iter().any(|f| f.name() == c.name()))
                .cloned(),
        );
        out
    }

    /// Delivers queued notices, in order, until [`Notifier::close`] and an empty queue.
    pub async fn deliver_forever(self: Arc<Self>) {
        loop {
            let next = self.lock_queue().pop_front();
            match next {
                Some(notice) => self.deliver_all(&notice).await,
                None if self.closed.load(Ordering::SeqCst) => return,
                None => self.wake.notified().await,
            }
        }
    }

    /// The loop has stopped: the delivery task delivers what is queued, then ends.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        // A stored permit: the task wakes even if it is not waiting yet.
        self.wake.notify_one();
    }

    async fn deliver_all(&self, notice: &Notice) {
        for channel in self.channels() {
            let mut backoff = Backoff::new(self.retry.base, self.retry.max);
            let mut attempt = 1;
            loop {
                match deliver(&self.http, &channel, notice).await {
                    Ok(()) => {
                        self.shared.metrics.notification(channel.name(), true);
                        tracing::debug!(channel = channel.name(), result = %notice.result, "notified");
                        break;
                    }
                    Err(why) if attempt < self.retry.attempts => {
                        let d = backoff.next();
                        tracing::info!(channel = channel.name(), attempt, error = %why, retry_in_ms = d.as_millis() as u64, "notification not delivered");
                        tokio::time::sleep(d).await;
                        attempt += 1;
                    }
                    Err(why) => {
                        self.shared.metrics.notification(channel.name(), false);
                        tracing::warn!(channel = channel.name(), attempts = attempt, error = %why, "notification given up");
                        break;
                    }
                }
            }
        }
    }
}

impl Notify for Notifier {
    fn configure(&self, settings: &Notifications) {
        let mut configured = self.configured.lock().unwrap_or_else(|p| p.into_inner());
        if configured.0 == *settings {
            return;
        }
        let (channels, problems) = channels(settings);
        for p in problems {
            tracing::warn!(problem = %p, "a notification channel in mesh-gitops.hcl is left out");
        }
        *configured = (settings.clone(), channels);
    }

    fn send(&self, notice: Notice) {
        {
            let mut q = self.lock_queue();
            if q.len() >= self.capacity {
                q.pop_front();
                self.shared.metrics.notification_dropped();
            }
            q.push_back(notice);
        }
        self.wake.notify_one();
    }
}

/// One attempt. The error says what went wrong without the URL (reqwest's errors name it).
pub async fn deliver(
    http: &reqwest::Client,
    channel: &Channel,
    notice: &Notice,
) -> Result<(), String> {
    let request = match channel {
        Channel::Webhook { url } => http.post(url).json(&webhook_body(notice)),
        Channel::Slack { url } => http.post(url).json(&slack_body(notice)),
        Channel::Github {
            api,
            repository,
            token,
            context,
        } => {
            let url = format!(
                "{}/repos/{repository}/statuses/{}",
                api.trim_end_matches('/'),
                notice.revision
            );
            http.post(url)
                .bearer_auth(token)
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
                .json(&github_body(notice, context.as_deref()))
        }
    };
    let response = request
        .send()
        .await
        .map_err(|e| crate::chain(&e.without_url()))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

/// The generic webhook's document.
pub fn webhook_body(n: &Notice) -> serde_json::Value {
    json!({
        "result": n.result,
        "revision": n.revision,
        "reason": n.reason,
        "time": n.time,
        "owner": n.owner,
        "branch": n.branch,
        "source": n.source,
        "replica": n.replica,
    })
}

/// A Slack incoming-webhook message (Mattermost and Rocket.Chat read the same `text`).
pub fn slack_body(n: &Notice) -> serde_json::Value {
    let icon = match n.result.as_str() {
        "applied" | "in-sync" | "healed" => ":white_check_mark:",
        "blocked" => ":warning:",
        _ => ":x:",
    };
    json!({
        "text": format!(
            "{icon} mesh-gitops ({}): *{}* `{}` on {}: {}",
            n.owner,
            n.result,
            crate::status::short(&n.revision),
            n.branch,
            n.reason
        ),
    })
}

/// A commit status: success for applied, in-sync and healed, failure for refused and blocked, error
/// for failed. GitHub keeps at most 140 characters of the description.
pub fn github_body(n: &Notice, context: Option<&str>) -> serde_json::Value {
    let state = match n.result.as_str() {
        "applied" | "in-sync" | "healed" => "success",
        "refused" | "blocked" => "failure",
        _ => "error",
    };
    let mut description = format!("{}: {}", n.result, n.reason);
    if description.chars().count() > 140 {
        description = description.chars().take(139).collect::<String>() + "…";
    }
    json!({
        "state": state,
        "description": description,
        "context": context.map_or_else(|| format!("mesh-gitops/{}", n.owner), str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(result: &str, reason: &str) -> Notice {
        Notice {
            result: result.into(),
            revision: "0123456789abcdef0123456789abcdef01234567".into(),
            reason: reason.into(),
            time: "2026-01-01T00:00:00Z".into(),
            owner: "team".into(),
            branch: "main".into(),
            source: "https://git.example/mesh.git".into(),
            replica: "alpha".into(),
        }
    }

    #[test]
    fn github_states_follow_the_result_and_the_description_fits() {
        let long = "x".repeat(300);
        let b = github_body(&notice("refused", &long), None);
        assert_eq!(b["state"], "failure");
        assert_eq!(b["context"], "mesh-gitops/team");
        assert_eq!(b["description"].as_str().unwrap().chars().count(), 140);
        assert_eq!(
            github_body(&notice("healed", "1 write(s)"), Some("c"))["state"],
            "success"
        );
        assert_eq!(
            github_body(&notice("failed", "down"), None)["state"],
            "error"
        );
    }

    #[test]
    fn slack_text_names_the_result_the_short_revision_and_the_reason() {
        let b = slack_body(&notice("blocked", "nothing to change"));
        assert_eq!(
            b["text"],
            ":warning: mesh-gitops (team): *blocked* `0123456789ab` on main: nothing to change"
        );
    }

    #[test]
    fn a_secret_that_cannot_be_read_leaves_its_channel_out_and_is_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("slack");
        std::fs::write(&file, "https://hooks.example/T0K3N\n").unwrap();
        let settings = Notifications {
            webhook: Some(SecretSource::Env("MESH_GITOPS_TEST_UNSET_HOOK".into())),
            slack: Some(SecretSource::File(file.to_string_lossy().into_owned())),
            github: None,
        };
        let (channels, problems) = channels(&settings);
        assert_eq!(format!("{channels:?}"), "[slack]");
        assert!(
            matches!(&channels[0], Channel::Slack { url } if url == "https://hooks.example/T0K3N")
        );
        assert_eq!(
            problems,
            ["webhook: MESH_GITOPS_TEST_UNSET_HOOK is not set"]
        );
    }
}
