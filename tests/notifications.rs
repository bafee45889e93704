//! Notifications end to end: a reconciler whose repository declares a webhook (its URL from
//! the environment) and which is given a Slack URL on the command line tells a local receiver
//! (axum) that it applied a commit and refused the next, after the receiver failed once; the
//! URLs' tokens appear in no log line and no payload.

mod common;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use common::git::Repo;
use common::serve::{Proc, Serve, ServeOpts};
use common::{example, mesh_gitops};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SETTINGS: &str = "datacenter = \"dc1\"\nowner = \"team\"\n\nnotifications {\n  webhook {\n    url_from = \"env:MESH_TEST_NOTIFY_URL\"\n  }\n}\n";

#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<(String, Value)>>,
    requests: AtomicUsize,
}

async fn receive(State(r): State<Arc<Receiver>>, uri: Uri, body: axum::body::Bytes) -> StatusCode {
    // The first request fails: the notifier retries.
    if r.requests.fetch_add(1, Ordering::SeqCst) == 0 {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    r.got.lock().unwrap().push((uri.path().to_owned(), body));
    StatusCode::OK
}

/// Serves the receiver on a thread of its own; returns its base URL.
fn start_receiver(r: Arc<Receiver>) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new()
                .fallback(axum::routing::post(receive))
                .with_state(r);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

fn wait_for(r: &Receiver, rec: &Proc, path: &str, result: &str, rev: &str) -> Value {
    let started = Instant::now();
    loop {
        let found = r.got.lock().unwrap().iter().find_map(|(p, body)| {
            let hit = p == path
                && (body["result"] == result
                    || body["text"]
                        .as_str()
                        .is_some_and(|t| t.contains(&format!("*{result}* `{}`", &rev[..12]))));
            hit.then(|| body.clone())
        });
        if let Some(body) = found {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no {result} notice on {path}: {:?}\n{}",
            r.got.lock().unwrap(),
            rec.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn applied_and_refused_commits_are_notified_on_the_webhook_and_slack() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Arc::new(Receiver::default());
    let base = start_receiver(receiver.clone());
    let server = Serve::start(&dir.path().join("state"), ServeOpts::default()).proc;
    let repo = Repo::init(&dir.path().join("repo"));
    let job = std::fs::read_to_string(example("countdash").join("countdash.nomad.hcl")).unwrap();
    repo.write("countdash.nomad.hcl", &job);
    repo.write("mesh-gitops.hcl", SETTINGS);
    repo.write(
        "intentions/count-api.hcl",
        "Kind = \"service-intentions\"\nName = \"count-api\"\nSources = [{ Name = \"count-dashboard\", Action = \"allow\" }]\n",
    );
    let c1 = repo.commit("countdash").to_string();
    let slack_file = dir.path().join("slack-url");
    std::fs::write(
        &slack_file,
        format!("{base}/services/T000/B000/sl4ck-t0ken\n"),
    )
    .unwrap();
    let slack = format!("file:{}", slack_file.display());
    let cmd = mesh_gitops(&[
        "reconcile",
        "--source",
        repo.dir.to_str().unwrap(),
        "--branch",
        "main",
        "--consul",
        &server.url(),
        "--interval",
        "1s",
        "--listen",
        "127.0.0.1:0",
        "--lock-ttl",
        "10s",
        "--cache-dir",
        dir.path().join("cache").to_str().unwrap(),
        "--notify-slack",
        &slack,
    ])
    .env("RUST_LOG", "info")
    .env(
        "MESH_TEST_NOTIFY_URL",
        &format!("{base}/hook/w3bh00k-t0ken"),
    );
    let rec: Proc = Proc::spawn(
        &cmd,
        "reconciler listening on http://",
        dir.path().join("rec.log"),
    );

    let applied = wait_for(&receiver, &rec, "/hook/w3bh00k-t0ken", "applied", &c1);
    assert_eq!(applied["revision"], c1.as_str());
    assert_eq!(applied["owner"], "team");
    assert_eq!(applied["branch"], "main");
    wait_for(
        &receiver,
        &rec,
        "/services/T000/B000/sl4ck-t0ken",
        "applied",
        &c1,
    );

    // Fails the gate: a file that does not parse.
    repo.write(
        "intentions/broken.hcl",
        "Kind = \"service-defaults\"\nnot valid hcl {{{\n",
    );
    let c2 = repo.commit("broken").to_string();
    let refused = wait_for(&receiver, &rec, "/hook/w3bh00k-t0ken", "refused", &c2);
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .starts_with("the repository does not validate"),
        "{refused}"
    );
    wait_for(
        &receiver,
        &rec,
        "/services/T000/B000/sl4ck-t0ken",
        "refused",
        &c2,
    );

    let log = rec.log();
    assert!(!log.contains("t0ken"), "a secret in the log:\n{log}");
    for (_, body) in receiver.got.lock().unwrap().iter() {
        assert!(!body.to_string().contains("t0ken"), "{body}");
    }
    let metrics = reqwest::blocking::get(format!("{}/metrics", rec.url()))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains(
            "mesh_gitops_notifications_total{channel=\"webhook\",outcome=\"delivered\"} 2"
        ),
        "{metrics}"
    );
}
