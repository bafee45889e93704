//! Notifications delivered over HTTP to a local receiver (axum): the generic webhook, the
//! Slack message and the GitHub commit status; retries after failures, the bounded queue, and
//! secrets kept out of payloads and errors.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use mesh_reconcile::notify::{self, Channel, Notice, Notifier, Notify, Retry};
use mesh_reconcile::Shared;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const REV: &str = "0123456789abcdef0123456789abcdef01234567";

/// What the receiver got: path, Authorization header, body.
type Got = (String, Option<String>, serde_json::Value);

#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<Got>>,
    /// Requests answered 503 before it starts accepting.
    fail_first: AtomicUsize,
    requests: AtomicUsize,
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let n = r.requests.fetch_add(1, Ordering::SeqCst);
    if n < r.fail_first.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    r.got
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), auth, body));
    StatusCode::CREATED
}

async fn start(receiver: Arc<Receiver>) -> String {
    let app = Router::new()
        .fallback(axum::routing::post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn shared() -> Arc<Shared> {
    Arc::new(Shared::new(
        Box::new(|| 0),
        Duration::from_secs(60),
        SystemTime::now(),
    ))
}

fn fast() -> Retry {
    Retry {
        attempts: 4,
        base: Duration::from_millis(10),
        max: Duration::from_millis(40),
    }
}

fn notice(result: &str, reason: &str) -> Notice {
    Notice {
        result: result.into(),
        revision: REV.into(),
        reason: reason.into(),
        time: "2026-01-01T00:00:00Z".into(),
        owner: "team".into(),
        branch: "main".into(),
        source: "https://git.example/mesh.git".into(),
        replica: "alpha".into(),
    }
}

async fn wait_for(receiver: &Receiver, n: usize) -> Vec<Got> {
    for _ in 0..500 {
        let got = receiver.got.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the receiver got {:?}",
        receiver.got.lock().unwrap().clone()
    );
}

fn metric(shared: &Shared, name: &str) -> f64 {
    let text = shared.metrics.render(0, false);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn each_channel_gets_its_document_after_the_receiver_fails_then_recovers() {
    let receiver = Arc::new(Receiver::default());
    receiver.fail_first.store(2, Ordering::SeqCst);
    let base = start(receiver.clone()).await;
    let shared = shared();
    let channels = vec![
        Channel::Webhook {
            url: format!("{base}/hook/s3cr3t-path"),
        },
        Channel::Slack {
            url: format!("{base}/services/T000/B000/s3cr3t"),
        },
        Channel::Github {
            api: format!("{base}/api/v3/"),
            repository: "acme/mesh".into(),
            token: "ghp_s3cr3t".into(),
            context: None,
        },
    ];
    let notifier = Arc::new(Notifier::new(channels, 16, fast(), shared.clone()));
    let task = tokio::spawn(notifier.clone().deliver_forever());
    notifier.send(notice(
        "refused",
        "check fails: \"forbidden\" is declared; keeping 0123456789ab",
    ));
    let got = wait_for(&receiver, 3).await;
    task.abort();

    // Two 503s, then the webhook's third attempt and one request for each other channel.
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 5);
    assert_eq!(got[0].0, "/hook/s3cr3t-path");
    assert_eq!(
        got[0].2,
        serde_json::json!({
            "result": "refused",
            "revision": REV,
            "reason": "check fails: \"forbidden\" is declared; keeping 0123456789ab",
            "time": "2026-01-01T00:00:00Z",
            "owner": "team",
            "branch": "main",
            "source": "https://git.example/mesh.git",
            "replica": "alpha",
        })
    );
    assert_eq!(
        got[1].2["text"],
        ":x: mesh-gitops (team): *refused* `0123456789ab` on main: check fails: \"forbidden\" is declared; keeping 0123456789ab"
    );
    assert_eq!(got[2].0, format!("/api/v3/repos/acme/mesh/statuses/{REV}"));
    assert_eq!(got[2].1.as_deref(), Some("Bearer ghp_s3cr3t"));
    assert_eq!(got[2].2["state"], "failure");
    assert_eq!(got[2].2["context"], "mesh-gitops/team");
    // The token travels in its header only; no payload carries a secret.
    for (_, _, body) in &got {
        assert!(!body.to_string().contains("s3cr3t"), "{body}");
    }
    for channel in ["webhook", "slack", "github"] {
        assert_eq!(
            metric(
                &shared,
                &format!(
                    "mesh_gitops_notifications_total{{channel=\"{channel}\",outcome=\"delivered\"}}"
                )
            ),
            1.0
        );
    }
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_notice_and_counts_it() {
    let receiver = Arc::new(Receiver::default());
    let base = start(receiver.clone()).await;
    let shared = shared();
    let channels = vec![Channel::Webhook {
        url: format!("{base}/hook"),
    }];
    let notifier = Arc::new(Notifier::new(channels, 2, fast(), shared.clone()));
    // Nothing delivers yet: the loop's sends never wait, the queue keeps the newest two.
    for result in ["applied", "healed", "blocked"] {
        notifier.send(notice(result, "r"));
    }
    assert_eq!(notifier.queued(), 2);
    assert_eq!(
        metric(&shared, "mesh_gitops_notifications_dropped_total"),
        1.0
    );
    let task = tokio::spawn(notifier.clone().deliver_forever());
    let got = wait_for(&receiver, 2).await;
    task.abort();
    let results: Vec<&str> = got
        .iter()
        .map(|g| g.2["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["healed", "blocked"]);
}

#[tokio::test]
async fn an_unreachable_receiver_is_given_up_after_the_retries_without_showing_the_url() {
    // A port that was free a moment ago: connections are refused.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let channel = Channel::Slack {
        url: format!("http://{addr}/services/T000/B000/s3cr3t"),
    };
    let http = reqwest::Client::new();
    let error = notify::deliver(&http, &channel, &notice("failed", "x"))
        .await
        .unwrap_err();
    assert!(!error.contains("s3cr3t"), "{error}");
    assert_eq!(format!("{channel:?}"), "slack");

    let shared = shared();
    let notifier = Arc::new(Notifier::new(vec![channel], 4, fast(), shared.clone()));
    notifier.send(notice("failed", "x"));
    notifier.close();
    // Closed: the task delivers (here: gives up on) what is queued, then ends.
    tokio::time::timeout(Duration::from_secs(10), notifier.clone().deliver_forever())
        .await
        .expect("the delivery task ends once the queue is empty");
    assert_eq!(notifier.queued(), 0);
    assert_eq!(
        metric(
            &shared,
            "mesh_gitops_notifications_total{channel=\"slack\",outcome=\"failed\"}"
        ),
        1.0
    );
}
