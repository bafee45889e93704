//! Push-triggered sync: `POST /hooks/git` on the reconciler's listener, for the push events of
//! GitHub, GitLab and Gitea. A push to the followed branch, authenticated with the shared
//! secret, makes the fetcher fetch at once; polling stays as the fallback, and the loop itself
//! never learns what woke the fetch (a pass stays level-triggered).
//!
//! Authentication, as each forge signs:
//! - GitHub: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the body keyed with the
//!   secret;
//! - Gitea (and Forgejo, Gogs): `X-Gitea-Signature: <hex>`, the same HMAC without the prefix;
//! - GitLab: `X-Gitlab-Token: <secret>`, the secret itself.
//!
//! Every comparison is constant-time (`hmac`'s `verify_slice`, `subtle` for the token). The body
//! is bounded ([`MAX_BODY`], 413 past it) and requests are rate-limited before any HMAC is
//! computed ([`RATE`] a second, bursts of [`BURST`]; 429 past it).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

/// The largest body read; GitHub caps its payloads at 25 MB, but a push event of a repository
/// holding only configuration stays far below this.
pub const MAX_BODY: usize = 1024 * 1024;
/// Requests a second the receiver admits on average.
pub const RATE: f64 = 5.0;
/// Requests admitted at once after a quiet spell.
pub const BURST: f64 = 20.0;

/// What a request was, as `/metrics` counts it and the response says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// A push to the followed branch: a fetch starts now.
    Fetch,
    /// Authenticated, but not a push to the followed branch (another branch, a ping).
    Ignored,
    /// No valid signature or token.
    Unauthorized,
    /// Authenticated, but not a push event the receiver can read.
    Malformed,
    /// Over the rate limit.
    Limited,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Fetch => "fetch",
            Outcome::Ignored => "ignored",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Malformed => "malformed",
            Outcome::Limited => "limited",
        }
    }

    /// The HTTP status it is answered with.
    pub fn status(self) -> u16 {
        match self {
            Outcome::Fetch => 202,
            Outcome::Ignored => 200,
            Outcome::Unauthorized => 401,
            Outcome::Malformed => 400,
            Outcome::Limited => 429,
        }
    }
}

/// The receiver: the secret, the followed branch and the rate limiter.
pub struct Receiver {
    secret: Vec<u8>,
    /// The branch the loop follows (known after the first fetch).
    branch: Box<dyn Fn() -> String + Send + Sync>,
    bucket: Mutex<(f64, Instant)>,
    counts: Mutex<BTreeMap<Outcome, u64>>,
}

impl std::fmt::Debug for Receiver {
    // The secret is never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// The headers a request carried, lower-cased names (as HTTP makes them case-insensitive).
pub type Headers<'a> = dyn Fn(&str) -> Option<&'a str> + 'a;

impl Receiver {
    /// `secret` as read from `--webhook-secret-file` (surrounding white space is not part of
    /// it, as a file written by `echo` ends with a new line).
    pub fn new(secret: &[u8], branch: Box<dyn Fn() -> String + Send + Sync>) -> Receiver {
        Receiver {
            secret: secret.trim_ascii().to_vec(),
            branch,
            bucket: Mutex::new((BURST, Instant::now())),
            counts: Mutex::default(),
        }
    }

    /// Takes one token from the bucket, if there is one.
    pub fn admit(&self, now: Instant) -> bool {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = *b;
        let refilled =
            (tokens + now.saturating_duration_since(last).as_secs_f64() * RATE).min(BURST);
        let admitted = refilled >= 1.0;
        *b = (if admitted { refilled - 1.0 } else { refilled }, now);
        admitted
    }

    /// Decides one request (already admitted by the rate limiter): its headers and body.
    pub fn decide(&self, header: &Headers<'_>, body: &[u8]) -> Outcome {
        let outcome = self.classify(header, body);
        self.count(outcome);
        outcome
    }

    pub fn count(&self, outcome: Outcome) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(outcome)
            .or_default() += 1;
    }

    fn classify(&self, header: &Headers<'_>, body: &[u8]) -> Outcome {
        let (authentic, event) = if let Some(sig) = header("x-hub-signature-256") {
            let event = header("x-github-event").or(header("x-gitea-event"));
            (self.hmac_matches(sig.strip_prefix("sha256="), body), event)
        } else if let Some(sig) = header("x-gitea-signature") {
            (self.hmac_matches(Some(sig), body), header("x-gitea-event"))
        } else if let Some(token) = header("x-gitlab-token") {
            use subtle::ConstantTimeEq as _;
            let same = !self.secret.is_empty() && bool::from(token.as_bytes().ct_eq(&self.secret));
            (same, header("x-gitlab-event"))
        } else {
            (false, None)
        };
        if !authentic {
            return Outcome::Unauthorized;
        }
        match event {
            Some("push" | "Push Hook") => {}
            Some(_) => return Outcome::Ignored,
            None => return Outcome::Malformed,
        }
        let Ok(payload) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Outcome::Malformed;
        };
        let Some(pushed) = payload.get("ref").and_then(serde_json::Value::as_str) else {
            return Outcome::Malformed;
        };
        if pushed.strip_prefix("refs/heads/") == Some((self.branch)().as_str()) {
            Outcome::Fetch
        } else {
            Outcome::Ignored
        }
    }

    fn hmac_matches(&self, hex: Option<&str>, body: &[u8]) -> bool {
        let (Some(hex), false) = (hex, self.secret.is_empty()) else {
            return false;
        };
        let Some(expected) = from_hex(hex) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    }

    /// `mesh_gitops_webhooks_total` in Prometheus's text format.
    pub fn render_metrics(&self) -> String {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut o = String::from(
            "# HELP mesh_gitops_webhooks_total Requests to /hooks/git, by outcome.\n# TYPE mesh_gitops_webhooks_total counter\n",
        );
        for outcome in [
            Outcome::Fetch,
            Outcome::Ignored,
            Outcome::Unauthorized,
            Outcome::Malformed,
            Outcome::Limited,
        ] {
            o.push_str(&format!(
                "mesh_gitops_webhooks_total{{outcome=\"{}\"}} {}\n",
                outcome.as_str(),
                counts.get(&outcome).copied().unwrap_or(0)
            ));
        }
        o
    }
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn receiver() -> Receiver {
        Receiver::new(b"It's a Secret to Everybody\n", Box::new(|| "main".into()))
    }

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
    }

    #[test]
    fn github_s_documented_test_vector_verifies() {
        // GitHub's "Validating webhook deliveries" example: this secret and payload give this
        // signature.
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let h = [("x-hub-signature-256", sig), ("x-github-event", "ping")];
        assert_eq!(
            receiver().decide(&headers(&h), b"Hello, World!"),
            Outcome::Ignored
        );
        assert_eq!(
            receiver().decide(&headers(&h), b"Hello, World?"),
            Outcome::Unauthorized
        );
    }

    #[test]
    fn a_gitlab_token_must_match_exactly() {
        let body = br#"{"ref": "refs/heads/main"}"#;
        let ok = [
            ("x-gitlab-token", "It's a Secret to Everybody"),
            ("x-gitlab-event", "Push Hook"),
        ];
        assert_eq!(receiver().decide(&headers(&ok), body), Outcome::Fetch);
        let short = [
            ("x-gitlab-token", "It's a Secret"),
            ("x-gitlab-event", "Push Hook"),
        ];
        assert_eq!(
            receiver().decide(&headers(&short), body),
            Outcome::Unauthorized
        );
        assert_eq!(
            receiver().decide(&headers(&[]), body),
            Outcome::Unauthorized
        );
    }

    #[test]
    fn an_empty_secret_authenticates_nothing() {
        let r = Receiver::new(b"\n", Box::new(|| "main".into()));
        let h = [("x-gitlab-token", ""), ("x-gitlab-event", "Push Hook")];
        assert_eq!(
            r.decide(&headers(&h), br#"{"ref": "refs/heads/main"}"#),
            Outcome::Unauthorized
        );
    }

    #[test]
    fn the_bucket_admits_a_burst_then_the_rate() {
        let r = receiver();
        let t = Instant::now();
        let admitted = (0..100).filter(|_| r.admit(t)).count();
        assert_eq!(admitted, BURST as usize);
        assert!(!r.admit(t));
        assert!(r.admit(t + Duration::from_secs_f64(1.0 / RATE)));
    }

    #[test]
    fn hex_is_read_strictly() {
        assert_eq!(from_hex("00ff"), Some(vec![0, 255]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("é0"), None);
    }
}
