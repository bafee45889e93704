//! `suspend` and `resume` end to end: a running reconciler stops applying when its owner is
//! suspended through Consul KV, says so in its status, and catches up on `resume`.

mod common;

use common::git::Repo;
use common::serve::{Proc, Serve, ServeOpts};
use common::{example, mesh_gitops};
use serde_json::Value;
use std::time::{Duration, Instant};

fn status(server: &Proc) -> Option<Value> {
    let r = reqwest::blocking::Client::new()
        .get(format!(
            "http://{}/v1/kv/mesh-gitops/team/status?raw",
            server.addr
        ))
        .send()
        .ok()?;
    serde_json::from_slice(&r.bytes().ok()?).ok()
}

fn wait_for(what: &str, server: &Proc, f: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        if let Some(s) = status(server).filter(|s| f(s)) {
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}: {:?}",
            status(server)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn intention(description: &str) -> String {
    format!("Kind = \"service-intentions\"\nName = \"count-api\"\nSources = [\n  {{ Name = \"count-dashboard\", Action = \"allow\", Description = \"{description}\" }},\n]\n")
}

#[test]
fn a_suspended_owner_is_neither_applied_nor_healed_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(&dir.path().join("state"), ServeOpts::default()).proc;
    let repo = Repo::init(&dir.path().join("repo"));
    let job = std::fs::read_to_string(example("countdash").join("countdash.nomad.hcl")).unwrap();
    repo.write("countdash.nomad.hcl", &job);
    repo.write(
        "mesh-gitops.hcl",
        "datacenter = \"dc1\"\nowner = \"team\"\n",
    );
    repo.write("intentions/count-api.hcl", &intention("first"));
    let c1 = repo.commit("first").to_string();
    let consul = server.url();
    let cache = dir.path().join("cache");
    let _rec = Proc::spawn(
        &mesh_gitops(&[
            "reconcile",
            "--source",
            repo.dir.to_str().unwrap(),
            "--consul",
            &consul,
            "--interval",
            "1s",
            "--listen",
            "127.0.0.1:0",
            "--lock-ttl",
            "10s",
            "--cache-dir",
            cache.to_str().unwrap(),
        ]),
        "reconciler listening on http://",
        dir.path().join("reconcile.log"),
    );
    wait_for("the first commit", &server, |s| s["applied_revision"] == c1);

    let cli = |args: &[&str]| mesh_gitops(args).env("CONSUL_HTTP_ADDR", &consul).run();
    let suspended = cli(&["suspend", "--owner", "team", "--reason", "incident 42"]);
    suspended.assert_code(0);
    assert!(
        suspended.stdout.starts_with("Suspended owner \"team\""),
        "{}",
        suspended.stdout
    );
    repo.write("intentions/count-api.hcl", &intention("second"));
    let c2 = repo.commit("second").to_string();
    let s = wait_for("the suspension", &server, |s| s["result"] == "suspended");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains(": incident 42; nothing is applied or healed"),
        "{s}"
    );
    // Several intervals later, still at the first commit.
    std::thread::sleep(Duration::from_secs(3));
    let s = status(&server).unwrap();
    assert_eq!(s["applied_revision"], c1.as_str());
    let shown = cli(&["status", "--owner", "team"]);
    shown.assert_code(3);
    assert!(shown.stdout.contains("incident 42"), "{}", shown.stdout);

    cli(&["resume", "--owner", "team"]).assert_code(0);
    wait_for("the second commit", &server, |s| {
        s["applied_revision"] == c2
    });
}
