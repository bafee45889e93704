//! `reconcile` end to end: the real binary follows a real git repository (made with git2) and
//! keeps a running `mesh-gitops serve` at its head: commits are applied, drift made through
//! the API is healed, a commit failing the gate is refused while the last good state is kept,
//! only the leader writes and a standby takes over when the leader dies, and with
//! `--require-signed` only commits signed by a trusted SSH or OpenPGP key are applied.

mod common;
#[path = "../reconciler/reconcile/tests/pgp_keys/mod.rs"]
mod pgp_keys;

use common::git::Repo;
use common::serve::{Proc, Serve, ServeOpts};
use common::{example, mesh_gitops};

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// `mesh-gitops serve` with its state in `dir/state`, logging at info into `log`.
fn serve_at(dir: &Path, listen: &str, log: &str) -> Proc {
    Serve::start(
        &dir.join("state"),
        ServeOpts {
            listen: listen.into(),
            env: vec![("RUST_LOG".into(), "info".into())],
            log: Some(dir.join(log)),
            ..ServeOpts::default()
        },
    )
    .proc
}

fn serve(dir: &Path) -> Proc {
    serve_at(dir, "127.0.0.1:0", "serve.log")
}

fn reconcile(dir: &Path, server: &Proc, repo: &Path, id: &str, extra: &[&str]) -> Proc {
    let cmd = reconcile_cmd(dir, server, repo, id, extra).env("RUST_LOG", "info");
    Proc::spawn(
        &cmd,
        "reconciler listening on http://",
        dir.join(format!("reconcile-{id}.log")),
    )
}

/// `mesh-gitops reconcile` following `repo` into `server`, its environment left to the caller.
fn reconcile_cmd(
    dir: &Path,
    server: &Proc,
    repo: &Path,
    id: &str,
    extra: &[&str],
) -> common::run::Cmd {
    let consul = format!("http://{}", server.addr);
    let cache = dir.join(format!("cache-{id}"));
    // `--interval 1s` unless the test chooses its own.
    let interval = if extra.contains(&"--interval") {
        &[][..]
    } else {
        &["--interval", "1s"][..]
    };
    let mut args = vec![
        "reconcile",
        "--source",
        repo.to_str().unwrap(),
        "--consul",
        &consul,
    ];
    args.extend_from_slice(interval);
    args.extend_from_slice(&[
        "--listen",
        "127.0.0.1:0",
        "--lock-ttl",
        "10s",
        "--id",
        id,
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    args.extend_from_slice(extra);
    mesh_gitops(&args)
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn get_json(server: &Proc, path: &str) -> Option<Value> {
    let r = http()
        .get(format!("http://{}{path}", server.addr))
        .send()
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().ok()
}

fn status(server: &Proc, owner: &str) -> Option<Value> {
    let r = http()
        .get(format!(
            "http://{}/v1/kv/mesh-gitops/{owner}/status?raw",
            server.addr
        ))
        .send()
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    serde_json::from_slice(&r.bytes().ok()?).ok()
}

/// The value of a metric (without labels) from a reconciler's /metrics.
fn metric(p: &Proc, name: &str) -> f64 {
    let text = http()
        .get(format!("http://{}/metrics", p.addr))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const SETTINGS: &str = "datacenter = \"dc1\"\nowner = \"team\"\n";
const INTENTION_ALLOW: &str = "Kind = \"service-intentions\"\nName = \"count-api\"\nSources = [\n  { Name = \"count-dashboard\", Action = \"allow\" },\n]\n";
const INTENTION_DENY: &str = "Kind = \"service-intentions\"\nName = \"count-api\"\nSources = [\n  { Name = \"count-dashboard\", Action = \"deny\" },\n]\n";

/// The countdash example (a job whose dashboard declares count-api as an upstream).
fn countdash(repo: &Repo) {
    let job = std::fs::read_to_string(example("countdash").join("countdash.nomad.hcl")).unwrap();
    repo.write("countdash.nomad.hcl", &job);
    repo.write("mesh-gitops.hcl", SETTINGS);
    repo.write("intentions/count-api.hcl", INTENTION_ALLOW);
}

fn intention_action(server: &Proc) -> Option<String> {
    get_json(server, "/v1/config/service-intentions/count-api")
        .and_then(|v| v["Sources"][0]["Action"].as_str().map(str::to_owned))
}

fn applied(server: &Proc, rev: &str) -> Option<Value> {
    status(server, "team").filter(|s| s["applied_revision"] == rev)
}

/// The common start: `serve`, a repository holding countdash, and one `reconcile` replica
/// (`id`, with `extra` arguments) that has applied its first commit.
struct Applied {
    dir: tempfile::TempDir,
    server: Proc,
    repo: Repo,
    rec: Proc,
    c1: String,
}

fn countdash_applied(id: &str, extra: &[&str]) -> Applied {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let repo = Repo::init(&dir.path().join("repo"));
    countdash(&repo);
    let c1 = repo.commit("countdash").to_string();
    let rec = reconcile(dir.path(), &server, &repo.dir, id, extra);
    wait_for("the first commit", Duration::from_secs(20), || {
        applied(&server, &c1)
    });
    Applied {
        dir,
        server,
        repo,
        rec,
        c1,
    }
}

#[test]
fn follows_the_branch_heals_drift_and_refuses_a_commit_failing_the_gate() {
    // The first commit is applied.
    let Applied {
        dir: _dir,
        server,
        repo,
        rec,
        c1: _c1,
    } = countdash_applied("one", &[]);
    assert_eq!(intention_action(&server).as_deref(), Some("allow"));
    let entry = get_json(&server, "/v1/config/service-intentions/count-api").unwrap();
    assert_eq!(entry["Meta"]["mesh-gitops-owner"], "team");

    // A new commit is applied within the interval (plus a little).
    repo.write(
        "defaults/count-api.hcl",
        "Kind = \"service-defaults\"\nName = \"count-api\"\nProtocol = \"http\"\n",
    );
    let c2 = repo.commit("count-api speaks http").to_string();
    let committed = Instant::now();
    wait_for("the second commit", Duration::from_secs(20), || {
        applied(&server, &c2)
    });
    let took = committed.elapsed();
    assert!(took < Duration::from_secs(5), "applied after {took:?}");
    let defaults = get_json(&server, "/v1/config/service-defaults/count-api").unwrap();
    assert_eq!(defaults["Protocol"], "http");

    // Drift made through the API (keeping the owner's mark, as `consul config read | write`
    // does) is healed.
    let mut drifted = get_json(&server, "/v1/config/service-intentions/count-api").unwrap();
    drifted["Sources"][0]["Action"] = "deny".into();
    let put = http()
        .put(format!("http://{}/v1/config", server.addr))
        .body(drifted.to_string())
        .send()
        .unwrap();
    assert!(put.status().is_success());
    wait_for("the drift to be healed", Duration::from_secs(20), || {
        (intention_action(&server).as_deref() == Some("allow")).then_some(())
    });
    wait_for("the heal in the status", Duration::from_secs(10), || {
        status(&server, "team").filter(|s| {
            s["history"]
                .as_array()
                .is_some_and(|h| h.iter().any(|e| e["result"] == "healed"))
        })
    });
    assert!(metric(&rec, "mesh_gitops_drift_events_total") >= 1.0);

    // An outside `consul config write` of a file of one's own replaces the Meta too: the
    // inventory still owns the entry, so it is healed, the owner's mark restored.
    let foreign_write = json!({
        "Kind": "service-intentions", "Name": "count-api",
        "Sources": [{"Name": "count-dashboard", "Action": "deny"}],
    });
    let put = http()
        .put(format!("http://{}/v1/config", server.addr))
        .body(foreign_write.to_string())
        .send()
        .unwrap();
    assert!(put.status().is_success());
    let healed = wait_for(
        "the outside write to be healed",
        Duration::from_secs(20),
        || {
            get_json(&server, "/v1/config/service-intentions/count-api")
                .filter(|e| e["Sources"][0]["Action"] == "allow")
        },
    );
    assert_eq!(healed["Meta"]["mesh-gitops-owner"], "team");

    // A commit failing the gate (the dashboard's declared upstream denied) is refused; Consul
    // stays at the second commit, and the status says why.
    repo.write("intentions/count-api.hcl", INTENTION_DENY);
    let c3 = repo.commit("deny the dashboard").to_string();
    let s = wait_for("the refusal", Duration::from_secs(20), || {
        status(&server, "team").filter(|s| s["revision"] == c3.as_str())
    });
    assert_eq!(s["result"], "refused", "{s:#}");
    assert!(
        s["reason"].as_str().unwrap().contains("check fails"),
        "{s:#}"
    );
    assert_eq!(s["applied_revision"], c2.as_str());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(intention_action(&server).as_deref(), Some("allow"));
    assert!(metric(&rec, "mesh_gitops_gate_failures_total") >= 1.0);

    // `mesh-gitops status` prints it, and exits 3 for a refusal.
    let out = mesh_gitops(&["status", "--consul", &server.url(), "--owner", "team"]).run();
    let text = &out.stdout;
    assert_eq!(out.code, Some(3), "{text}");
    assert!(text.contains("refused"), "{text}");
    assert!(text.contains(&c2), "{text}");

    // The fix is applied again; health and readiness hold.
    repo.write("intentions/count-api.hcl", INTENTION_ALLOW);
    repo.write(
        "defaults/count-api.hcl",
        "Kind = \"service-defaults\"\nName = \"count-api\"\nProtocol = \"tcp\"\n",
    );
    let c4 = repo.commit("back to tcp").to_string();
    wait_for("the fourth commit", Duration::from_secs(20), || {
        applied(&server, &c4)
    });
    for path in ["/healthz", "/readyz"] {
        let r = http()
            .get(format!("http://{}{path}", rec.addr))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}");
    }
    let metrics = http()
        .get(format!("http://{}/metrics", rec.addr))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "mesh_gitops_last_applied_timestamp{{revision=\"{c4}\"}}"
        )),
        "{metrics}"
    );

    // SIGTERM: it stops, and releases the lock.
    let mut rec = rec;
    let pid = rec.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let exited = wait_for("the reconciler to exit", Duration::from_secs(15), || {
        rec.child.try_wait().unwrap()
    });
    assert!(exited.success(), "{}", rec.log());
    let lock = get_json(&server, "/v1/kv/mesh-gitops/team/leader").unwrap();
    assert!(lock[0].get("Session").is_none(), "{lock:#}");
    assert!(rec.log().contains("released the leader lock"));
}

/// Without `--branch` the source's default branch (its HEAD, here `trunk`, the only branch) is
/// followed and named in the log; at the default log level the log holds the reconciler's own
/// events and none of the simulator's (its gate simulates every commit).
#[test]
fn without_a_branch_the_source_s_head_is_followed_and_logs_are_the_reconciler_s_own() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let repo = Repo::init_on(&dir.path().join("repo"), "trunk");
    countdash(&repo);
    let c1 = repo.commit("countdash").to_string();
    let rec = Proc::spawn(
        &reconcile_cmd(dir.path(), &server, &repo.dir, "trunk", &[]),
        "reconciler listening on http://",
        dir.path().join("reconcile-trunk.log"),
    );
    wait_for("the commit on trunk", Duration::from_secs(30), || {
        applied(&server, &c1)
    });
    assert_eq!(intention_action(&server).as_deref(), Some("allow"));
    let log = wait_for("the apply in the log", Duration::from_secs(10), || {
        let log = rec.log();
        log.contains(" apply ").then_some(log)
    });
    assert!(
        log.contains("following the source's default branch") && log.contains("branch=trunk"),
        "the followed branch is not named:\n{log}"
    );
    let s = status(&server, "team").unwrap();
    assert_eq!(s["branch"], "trunk", "{s}");
    for internal in ["nodename=", "Bind addr=", "node{name=", "simulated host"] {
        assert!(
            !log.contains(internal),
            "the simulator's {internal:?} is in the log at the default level:\n{log}"
        );
    }
}

#[test]
fn only_the_leader_writes_and_a_standby_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let repo = Repo::init(&dir.path().join("repo"));
    countdash(&repo);
    let c1 = repo.commit("countdash").to_string();
    let mut a = reconcile(dir.path(), &server, &repo.dir, "alpha", &[]);
    wait_for("alpha to apply", Duration::from_secs(20), || {
        applied(&server, &c1).filter(|s| s["leader"] == "alpha")
    });
    let b = reconcile(dir.path(), &server, &repo.dir, "beta", &[]);
    wait_for("beta to stand by", Duration::from_secs(10), || {
        (metric(&b, "mesh_gitops_leader") == 0.0).then_some(())
    });

    // A change while both run: alpha writes, beta does not.
    repo.write(
        "defaults/count-api.hcl",
        "Kind = \"service-defaults\"\nName = \"count-api\"\nProtocol = \"http\"\n",
    );
    let c2 = repo.commit("count-api speaks http").to_string();
    wait_for("the second commit", Duration::from_secs(20), || {
        applied(&server, &c2)
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(metric(&a, "mesh_gitops_leader"), 1.0);
    assert!(metric(&a, "mesh_gitops_writes_total") >= 2.0);
    assert_eq!(metric(&b, "mesh_gitops_leader"), 0.0);
    assert_eq!(metric(&b, "mesh_gitops_writes_total"), 0.0);
    assert!(!b.log().contains("acquired the leader lock"), "{}", b.log());

    // The leader dies without releasing anything; its session expires (2 x TTL) and beta
    // takes over, then applies the next commit.
    a.kill();
    let killed = Instant::now();
    repo.write(
        "defaults/count-dashboard.hcl",
        "Kind = \"service-defaults\"\nName = \"count-dashboard\"\nProtocol = \"http\"\n",
    );
    let c3 = repo.commit("count-dashboard speaks http").to_string();
    let s = wait_for("beta to take over", Duration::from_secs(40), || {
        applied(&server, &c3).filter(|s| s["leader"] == "beta")
    });
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(30), "took over after {took:?}");
    assert_eq!(s["result"], "applied", "{s:#}");
    assert!(metric(&b, "mesh_gitops_writes_total") >= 1.0);
    assert!(b.log().contains("acquired the leader lock"));
    let dash = get_json(&server, "/v1/config/service-defaults/count-dashboard").unwrap();
    assert_eq!(dash["Protocol"], "http");
}

#[test]
fn require_signed_applies_only_commits_signed_by_a_trusted_key() {
    use ssh_key::private::{Ed25519Keypair, PrivateKey};
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let trusted = PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]));
    let stranger = PrivateKey::from(Ed25519Keypair::from_seed(&[8; 32]));
    let signers = dir.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!(
            "release@example.com {}\n",
            trusted.public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    let repo = Repo::init(&dir.path().join("repo"));
    countdash(&repo);
    let c1 = repo.commit("unsigned").to_string();
    let _rec = reconcile(
        dir.path(),
        &server,
        &repo.dir,
        "signed",
        &[
            "--owner",
            "team",
            "--require-signed",
            "--trusted-keys",
            signers.to_str().unwrap(),
        ],
    );
    let s = wait_for("the unsigned commit", Duration::from_secs(20), || {
        status(&server, "team").filter(|s| s["revision"] == c1.as_str())
    });
    assert_eq!(s["result"], "refused");
    assert!(
        s["reason"].as_str().unwrap().contains("not signed"),
        "{s:#}"
    );
    assert!(intention_action(&server).is_none());

    repo.write("README.md", "signed by someone else\n");
    let c2 = repo
        .commit_signed("signed by a stranger", &stranger)
        .to_string();
    let s = wait_for("the stranger's commit", Duration::from_secs(20), || {
        status(&server, "team").filter(|s| s["revision"] == c2.as_str())
    });
    assert_eq!(s["result"], "refused");
    assert!(
        s["reason"].as_str().unwrap().contains("not trusted"),
        "{s:#}"
    );

    repo.write("README.md", "signed\n");
    let c3 = repo
        .commit_signed("signed by release", &trusted)
        .to_string();
    wait_for("the signed commit", Duration::from_secs(20), || {
        applied(&server, &c3)
    });
    assert_eq!(intention_action(&server).as_deref(), Some("allow"));
}

/// A key file with an SSH line and an OpenPGP key (RSA, as GitHub signs the commits made on
/// github.com): a commit OpenPGP-signed by a stranger is refused, one by the trusted key applied.
#[test]
fn require_signed_applies_commits_signed_by_a_trusted_openpgp_key() {
    use pgp_keys::{armored, fingerprint, key, sign, Kind, CREATED, DAY};
    use ssh_key::private::{Ed25519Keypair, PrivateKey};
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let ssh = PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]));
    let github = key(31, Kind::Rsa(2048));
    let stranger = key(32, Kind::Ed25519Legacy);
    let keys = dir.path().join("trusted_keys");
    std::fs::write(
        &keys,
        format!(
            "release@example.com {}\n{}",
            ssh.public_key().to_openssh().unwrap(),
            armored(&github.to_public_key())
        ),
    )
    .unwrap();
    let repo = Repo::init(&dir.path().join("repo"));
    countdash(&repo);
    // A file whose block is broken, or that trusts no key, stops the command at start.
    let start = |file: &Path| {
        mesh_gitops(&[
            "reconcile",
            "--source",
            repo.dir.to_str().unwrap(),
            "--consul",
            "http://127.0.0.1:9",
            "--require-signed",
            "--trusted-keys",
            file.to_str().unwrap(),
        ])
        .run()
    };
    let broken = dir.path().join("broken_keys");
    std::fs::write(
        &broken,
        "# release keys\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n",
    )
    .unwrap();
    let run = start(&broken);
    assert_ne!(run.code, Some(0));
    assert!(
        run.stderr.contains(&format!(
            "{}: OpenPGP key block 1 (line 2): ",
            broken.display()
        )),
        "{}",
        run.stderr
    );
    std::fs::write(&broken, "# nobody yet\n").unwrap();
    let run = start(&broken);
    assert!(
        run.stderr.contains("has no key trusted for git"),
        "{}",
        run.stderr
    );
    let c1 = repo
        .commit_signed_by("signed by a stranger", |c| {
            sign(&stranger, CREATED + DAY, c)
        })
        .to_string();
    let rec = reconcile(
        dir.path(),
        &server,
        &repo.dir,
        "pgp",
        &[
            "--owner",
            "team",
            "--require-signed",
            "--trusted-keys",
            keys.to_str().unwrap(),
        ],
    );
    let s = wait_for("the stranger's commit", Duration::from_secs(20), || {
        status(&server, "team").filter(|s| s["revision"] == c1.as_str())
    });
    assert_eq!(s["result"], "refused");
    assert_eq!(
        s["reason"].as_str().unwrap(),
        format!(
            "signature: signed by the OpenPGP key {}, which is not trusted",
            fingerprint(&stranger)
        ),
        "{s:#}"
    );
    assert!(intention_action(&server).is_none());

    repo.write("README.md", "merged on github.com\n");
    let c2 = repo
        .commit_signed_by("Merge pull request #1 (#1)", |c| {
            sign(&github, CREATED + DAY, c)
        })
        .to_string();
    wait_for("the signed commit", Duration::from_secs(20), || {
        applied(&server, &c2)
    });
    assert_eq!(intention_action(&server).as_deref(), Some("allow"));
    assert!(
        rec.log().contains(&fingerprint(&github)),
        "the start logs the trusted keys"
    );
}

/// With a ten-minute interval, only the blocking query on the entries can notice an outside
/// `consul config write` in time: it wakes the loop, which restores the entry and its mark.
#[test]
fn an_outside_write_is_healed_within_one_blocking_query_round() {
    // Every part is bound: the directory and the replica must live to the end of the test.
    let Applied {
        dir: _dir,
        server,
        repo: _repo,
        rec: _rec,
        c1: _c1,
    } = countdash_applied("healer", &["--interval", "10m"]);
    let put = http()
        .put(format!("http://{}/v1/config", server.addr))
        .body(
            json!({
                "Kind": "service-intentions", "Name": "count-api",
                "Sources": [{"Name": "count-dashboard", "Action": "deny"}],
                "Meta": {"edited-by": "alice"},
            })
            .to_string(),
        )
        .send()
        .unwrap();
    assert!(put.status().is_success());
    // Far sooner than the 10m resync: the blocking query woke the loop.
    let healed = wait_for("the heal", Duration::from_secs(30), || {
        get_json(&server, "/v1/config/service-intentions/count-api")
            .filter(|e| e["Sources"][0]["Action"] == "allow")
    });
    assert_eq!(healed["Meta"]["mesh-gitops-owner"], "team");
    assert!(healed["Meta"].get("edited-by").is_none(), "{healed}");
}

#[test]
fn without_self_heal_drift_is_reported_not_reverted() {
    let Applied {
        dir: _dir,
        server,
        repo: _repo,
        rec,
        c1,
    } = countdash_applied("watcher", &["--no-self-heal"]);
    let mut drifted = get_json(&server, "/v1/config/service-intentions/count-api").unwrap();
    drifted["Sources"][0]["Action"] = "deny".into();
    http()
        .put(format!("http://{}/v1/config", server.addr))
        .body(drifted.to_string())
        .send()
        .unwrap();
    let s = wait_for("the drift report", Duration::from_secs(20), || {
        status(&server, "team").filter(|s| s["result"] == "drift")
    });
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("~ service-intentions \"count-api\""),
        "{s:#}"
    );
    assert_eq!(s["applied_revision"], c1.as_str());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(intention_action(&server).as_deref(), Some("deny"));
    assert!(metric(&rec, "mesh_gitops_drift_events_total") >= 1.0);
    assert_eq!(metric(&rec, "mesh_gitops_writes_total"), 1.0);

    // Put back by hand: in sync again.
    drifted["Sources"][0]["Action"] = "allow".into();
    http()
        .put(format!("http://{}/v1/config", server.addr))
        .body(drifted.to_string())
        .send()
        .unwrap();
    wait_for("in sync again", Duration::from_secs(20), || {
        status(&server, "team").filter(|s| s["result"] == "in-sync")
    });
    // Rewritten as `consul config write` would, without the owner's mark: the inventory
    // still owns it, so it is drift, reported and left in place.
    drifted.as_object_mut().unwrap().remove("Meta");
    http()
        .put(format!("http://{}/v1/config", server.addr))
        .body(drifted.to_string())
        .send()
        .unwrap();
    let s = wait_for("the second drift report", Duration::from_secs(20), || {
        status(&server, "team").filter(|s| s["result"] == "drift")
    });
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("~ service-intentions \"count-api\""),
        "{s:#}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let kept = get_json(&server, "/v1/config/service-intentions/count-api").unwrap();
    assert!(
        kept["Meta"].get("mesh-gitops-owner").is_none(),
        "not reverted: {kept}"
    );
}

#[test]
fn a_newer_commit_stops_a_stale_apply_at_a_step_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let repo = Repo::init(&dir.path().join("repo"));
    repo.write("mesh-gitops.hcl", SETTINGS);
    // Enough entries that applying them takes longer than the fetch interval.
    let many = |protocol: &str| {
        for i in 0..1200 {
            repo.write(
                &format!("defaults/svc-{i:04}.hcl"),
                &format!("Kind = \"service-defaults\"\nName = \"svc-{i:04}\"\nProtocol = \"{protocol}\"\n"),
            );
        }
    };
    many("tcp");
    let c1 = repo.commit("1200 services").to_string();
    // One step at a time, so the apply outlasts the fetch interval.
    let _rec = reconcile(
        dir.path(),
        &server,
        &repo.dir,
        "busy",
        &["--parallelism", "1"],
    );
    // As soon as the first apply has started writing, a newer commit arrives.
    wait_for("the first writes", Duration::from_secs(60), || {
        get_json(&server, "/v1/config/service-defaults")
            .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
    });
    many("http");
    let c2 = repo.commit("all http").to_string();
    let s = wait_for("the newer commit", Duration::from_secs(120), || {
        applied(&server, &c2)
    });
    let history = s["history"].as_array().unwrap();
    let stale = history
        .iter()
        .find(|e| e["revision"] == c1.as_str())
        .unwrap_or_else(|| panic!("{s:#}"));
    assert_eq!(stale["result"], "interrupted", "{s:#}");
    assert!(
        stale["reason"]
            .as_str()
            .unwrap()
            .contains("a newer commit arrived"),
        "{s:#}"
    );
    let all = get_json(&server, "/v1/config/service-defaults").unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 1200);
    assert!(all.iter().all(|e| e["Protocol"] == "http"));
}

#[test]
fn consul_down_backs_off_and_the_loop_recovers() {
    let Applied {
        dir,
        mut server,
        repo,
        rec,
        c1: _c1,
    } = countdash_applied("patient", &["--log-format", "json"]);
    let addr = server.addr.clone();

    // Consul goes away: passes fail, each retry later than the last; cut off for longer than
    // the lock's TTL, the leader stops counting itself as one.
    server.kill();
    // Structured logs: every line after the address is one JSON object.
    let delays = wait_for("two backoffs logged", Duration::from_secs(30), || {
        let delays: Vec<u64> = rec
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["fields"]["message"] == "backing off")
            .filter_map(|v| v["fields"]["retry_in_ms"].as_u64())
            .collect();
        (delays.len() >= 2).then_some(delays)
    });
    assert!(delays[1] > delays[0], "{delays:?}");
    let failed = "mesh_gitops_reconcile_passes_total{result=\"failed\"}";
    assert!(metric(&rec, failed) >= 2.0);
    wait_for("the leader to step down", Duration::from_secs(40), || {
        (metric(&rec, "mesh_gitops_leader") == 0.0).then_some(())
    });

    // It comes back (same address, same state): the next commit is applied, and the status
    // remembers the failure.
    let server = serve_at(dir.path(), &addr, "serve2.log");
    repo.write(
        "defaults/count-api.hcl",
        "Kind = \"service-defaults\"\nName = \"count-api\"\nProtocol = \"http\"\n",
    );
    let c2 = repo.commit("count-api speaks http").to_string();
    let s = wait_for(
        "the commit after the outage",
        Duration::from_secs(60),
        || applied(&server, &c2),
    );
    assert!(
        s["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["result"] == "failed"),
        "{s:#}"
    );
}
