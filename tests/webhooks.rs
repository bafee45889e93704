//! Push webhooks end to end: a reconciler polling only every hour applies a new commit as soon
//! as a push event, signed as GitHub, GitLab or Gitea sign it, arrives on its listener; a bad
//! signature is refused with 401 and changes nothing; the body size and the request rate are
//! bounded.

mod common;

use common::git::Repo;
use common::serve::{Proc, Serve, ServeOpts};
use common::{example, mesh_gitops};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::path::Path;
use std::time::{Duration, Instant};

const SECRET: &str = "a shared secret, 32 bytes long.";
const SETTINGS: &str = "datacenter = \"dc1\"\nowner = \"team\"\n";

/// The intention the dashboard needs, its description changed from commit to commit.
fn intention(description: &str) -> String {
    format!("Kind = \"service-intentions\"\nName = \"count-api\"\nSources = [\n  {{ Name = \"count-dashboard\", Action = \"allow\", Description = \"{description}\" }},\n]\n")
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn applied_revision(server: &Proc) -> Option<String> {
    let r = http()
        .get(format!(
            "http://{}/v1/kv/mesh-gitops/team/status?raw",
            server.addr
        ))
        .send()
        .ok()?;
    let v: Value = serde_json::from_slice(&r.bytes().ok()?).ok()?;
    v["applied_revision"].as_str().map(str::to_owned)
}

fn wait_applied(server: &Proc, rev: &str, within: Duration) {
    let started = Instant::now();
    while applied_revision(server).as_deref() != Some(rev) {
        assert!(
            started.elapsed() < within,
            "{rev} was not applied in {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// GitHub's signature: `sha256=` and the hex HMAC-SHA256 of the body.
fn github_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn push_body(branch: &str, after: &str) -> Vec<u8> {
    json!({
        "ref": format!("refs/heads/{branch}"),
        "after": after,
        "repository": {"full_name": "platform/mesh", "default_branch": "main"},
    })
    .to_string()
    .into_bytes()
}

fn post(rec: &Proc, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
    let mut req = http()
        .post(format!("http://{}/hooks/git", rec.addr))
        .header("Content-Type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.text().unwrap_or_default())
}

fn start(dir: &Path) -> (Proc, Repo, Proc, String) {
    let server = Serve::start(&dir.join("state"), ServeOpts::default()).proc;
    let repo = Repo::init(&dir.join("repo"));
    let job = std::fs::read_to_string(example("countdash").join("countdash.nomad.hcl")).unwrap();
    repo.write("countdash.nomad.hcl", &job);
    repo.write("mesh-gitops.hcl", SETTINGS);
    repo.write("intentions/count-api.hcl", &intention("first"));
    let c1 = repo.commit("countdash").to_string();
    let secret_file = dir.join("webhook-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let cache = dir.join("cache");
    let consul = format!("http://{}", server.addr);
    let cmd = mesh_gitops(&[
        "reconcile",
        "--source",
        repo.dir.to_str().unwrap(),
        "--branch",
        "main",
        "--consul",
        &consul,
        // Only the first fetch and the webhooks fetch within this test.
        "--interval",
        "1h",
        "--listen",
        "127.0.0.1:0",
        "--lock-ttl",
        "10s",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--webhook-secret-file",
        secret_file.to_str().unwrap(),
    ])
    .env("RUST_LOG", "info");
    let rec = Proc::spawn(
        &cmd,
        "reconciler listening on http://",
        dir.join("reconcile.log"),
    );
    wait_applied(&server, &c1, Duration::from_secs(30));
    (server, repo, rec, c1)
}

#[test]
fn pushes_signed_by_github_gitlab_and_gitea_fetch_at_once_and_forgeries_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (server, repo, rec, c1) = start(dir.path());

    repo.write("intentions/count-api.hcl", &intention("second"));
    let c2 = repo.commit("second").to_string();
    let body = push_body("main", &c2);
    // Forged: signed with another secret, a truncated signature, no signature at all.
    let mut other = Hmac::<Sha256>::new_from_slice(b"not the secret").unwrap();
    other.update(&body);
    let forged: String = other
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let forged = format!("sha256={forged}");
    let real = github_signature(&body);
    for sig in [forged.as_str(), &real[..real.len() - 2], ""] {
        let (code, _) = post(
            &rec,
            &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", sig)],
            body.clone(),
        );
        assert_eq!(code, 401, "signature {sig:?}");
    }
    let (code, _) = post(&rec, &[("X-GitHub-Event", "push")], body.clone());
    assert_eq!(code, 401);
    // A signed push to another branch is acknowledged and ignored.
    let elsewhere = push_body("feature", &c2);
    let (code, text) = post(
        &rec,
        &[
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &github_signature(&elsewhere)),
        ],
        elsewhere,
    );
    assert_eq!((code, text.trim()), (200, "ignored"));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        applied_revision(&server).as_deref(),
        Some(c1.as_str()),
        "nothing fetched without a valid push to the branch"
    );

    // GitHub.
    let (code, text) = post(
        &rec,
        &[
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("X-Hub-Signature-256", &github_signature(&body)),
        ],
        body,
    );
    assert_eq!((code, text.trim()), (202, "fetch"));
    wait_applied(&server, &c2, Duration::from_secs(20));

    // GitLab: the secret itself in X-Gitlab-Token.
    repo.write("intentions/count-api.hcl", &intention("third"));
    let c3 = repo.commit("third").to_string();
    let (code, _) = post(
        &rec,
        &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", SECRET)],
        push_body("main", &c3),
    );
    assert_eq!(code, 202);
    wait_applied(&server, &c3, Duration::from_secs(20));

    // Gitea: the bare hex HMAC in X-Gitea-Signature.
    repo.write("intentions/count-api.hcl", &intention("fourth"));
    let c4 = repo.commit("fourth").to_string();
    let body = push_body("main", &c4);
    let sig = github_signature(&body);
    let (code, _) = post(
        &rec,
        &[
            ("X-Gitea-Event", "push"),
            ("X-Gitea-Signature", sig.trim_start_matches("sha256=")),
        ],
        body,
    );
    assert_eq!(code, 202);
    wait_applied(&server, &c4, Duration::from_secs(20));

    // A body past the bound is refused before it is read whole.
    let huge = vec![b' '; 2 * 1024 * 1024];
    let (code, _) = post(
        &rec,
        &[
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", "sha256=00"),
        ],
        huge,
    );
    assert_eq!(code, 413);

    // A flood is cut to the rate limit.
    let codes: Vec<u16> = (0..40)
        .map(|_| post(&rec, &[("X-Gitlab-Token", "guess")], b"{}".to_vec()).0)
        .collect();
    assert!(codes.contains(&429), "{codes:?}");
    assert!(codes.iter().all(|c| *c == 401 || *c == 429), "{codes:?}");

    let metrics = http()
        .get(format!("http://{}/metrics", rec.addr))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("mesh_gitops_webhooks_total{outcome=\"fetch\"} 3"),
        "{metrics}"
    );
    assert!(!rec.log().contains(SECRET), "the secret is never logged");
}

#[test]
fn an_empty_webhook_secret_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let run = mesh_gitops(&[
        "reconcile",
        "--source",
        dir.path().to_str().unwrap(),
        "--consul",
        "http://127.0.0.1:1",
        "--webhook-secret-file",
        empty.to_str().unwrap(),
    ])
    .run();
    run.assert_code(1);
    assert!(run.stderr.contains("is empty"), "{}", run.stderr);
}
