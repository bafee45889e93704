//! `plan`, `apply` and `reconcile` against answers shaped the way a current Consul (1.17 and
//! later) gives them: a proxy on a real socket in front of `mesh-gitops serve` adds `Hash`, the
//! zero-value structs Go's encoder writes and a field from a newer Consul
//! (`tests/common/current_consul.rs`). For every example: apply, then plan says no changes and
//! a second apply writes nothing; a reconcile loop applies it and its later passes write
//! nothing.

mod common;

use common::current_consul::{reshape, CurrentConsul, NEWER_FIELD};
use common::examples::expected_check_code;
use common::git::Repo;
use common::serve::{Proc, Serve, ServeOpts};
use common::{copy_example, example, examples, mesh_gitops, Run};

use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// The secrets the production example's tokens are created with.
const SECRETS: &[(&str, &str)] = &[
    ("WEB_CONSUL_TOKEN", "6f1c2f0e-3b8a-4c55-9a41-7d0e5b2c9f10"),
    ("API_CONSUL_TOKEN", "0b9d4e7a-52c1-4f3e-8e6d-1a2b3c4d5e6f"),
];

fn through(proxy: &CurrentConsul, server: &Serve, cwd: &Path, args: &[&str]) -> Run {
    let mut cmd = mesh_gitops(args)
        .current_dir(cwd)
        .env("CONSUL_HTTP_ADDR", &proxy.url())
        .envs(SECRETS);
    if let Some(t) = &server.token {
        cmd = cmd.env("CONSUL_HTTP_TOKEN", t);
    }
    cmd.run()
}

#[test]
fn the_double_answers_as_a_current_consul_does() {
    let mut sd = json!({"Kind": "service-defaults", "Name": "api", "ModifyIndex": 7});
    reshape(&mut sd);
    assert_eq!(sd["Protocol"], "");
    assert_eq!(sd["MeshGateway"], json!({}));
    assert_eq!(sd["Expose"], json!({}));
    assert!(sd["TransparentProxy"][NEWER_FIELD].is_object());
    assert!(sd["Hash"].is_u64());
    let mut pd = json!({"Kind": "proxy-defaults", "Name": "global"});
    reshape(&mut pd);
    assert_eq!(pd["Config"], Value::Null);
    assert_eq!(pd["AccessLogs"], json!({}));
    let mut mesh = json!({"Kind": "mesh"});
    reshape(&mut mesh);
    assert_eq!(mesh["TransparentProxy"]["MeshDestinationsOnly"], false);
    let mut none = json!({"Kind": "service-intentions", "Name": "db"});
    reshape(&mut none);
    assert_eq!(none["Sources"], Value::Null);
    assert!(none[NEWER_FIELD].is_string());
}

#[test]
fn apply_then_plan_says_no_changes_for_every_example() {
    for name in examples() {
        let state = tempfile::tempdir().unwrap();
        let server = Serve::start(
            state.path(),
            ServeOpts {
                bootstrap_token: true,
                extra: vec!["--acl-default-policy".into(), "deny".into()],
                ..ServeOpts::default()
            },
        );
        let proxy = CurrentConsul::start(&server.url());
        let cwd = tempfile::tempdir().unwrap();
        let dir = example(&name);
        let d = dir.to_str().unwrap();
        let mut args = vec!["apply", d];
        if expected_check_code(&name) != 0 {
            args.push("--skip-check");
        }
        let first = through(&proxy, &server, cwd.path(), &args);
        assert_eq!(first.code, Some(0), "{name}: {}", first.stderr);
        let written = proxy.config_writes();

        // The proxy really reshapes what the client reads.
        let raw: Value = server
            .client()
            .get(format!("{}/v1/config/service-intentions", proxy.url()))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if let Some(first) = raw.as_array().and_then(|a| a.first()) {
            assert!(first["Hash"].is_u64(), "{name}: {first}");
        }

        let plan = through(&proxy, &server, cwd.path(), &["plan", d]);
        assert_eq!(plan.code, Some(0), "{name}: {}{}", plan.stdout, plan.stderr);
        assert!(
            plan.stdout.starts_with("No changes."),
            "{name}: {}",
            plan.stdout
        );
        let again = through(&proxy, &server, cwd.path(), &args);
        assert!(
            again.stdout.contains("Apply complete: 0 change(s)."),
            "{name}: {}",
            again.stdout
        );
        assert_eq!(
            proxy.config_writes(),
            written,
            "{name}: a second apply wrote"
        );
    }
}

fn wait_for<T>(
    what: &str,
    timeout: Duration,
    log: &dyn Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out waiting for {what}; reconciler log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A metric (without labels) of the reconciler.
fn metric(p: &Proc, name: &str) -> Option<f64> {
    let text = http()
        .get(format!("http://{}/metrics", p.addr))
        .send()
        .and_then(|r| r.text())
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

fn status(proxy: &CurrentConsul, server: &Serve) -> Option<Value> {
    let r = server
        .client()
        .get(format!(
            "{}/v1/kv/mesh-gitops/reconciler/status?raw",
            proxy.url()
        ))
        .send()
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    serde_json::from_slice(&r.bytes().ok()?).ok()
}

#[test]
fn reconcile_applies_every_example_and_its_later_passes_write_nothing() {
    // Examples whose check fails on purpose are refused by the gate: nothing to reconcile.
    for name in examples()
        .into_iter()
        .filter(|n| expected_check_code(n) == 0)
    {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        let server = Serve::start(
            &state,
            ServeOpts {
                bootstrap_token: true,
                extra: vec!["--acl-default-policy".into(), "deny".into()],
                ..ServeOpts::default()
            },
        );
        let proxy = CurrentConsul::start(&server.url());
        let repo = Repo::init(&dir.path().join("repo"));
        copy_example(&name, &repo.dir);
        // One owner for every example, so the status is found at one key.
        let settings = repo.dir.join("mesh-gitops.hcl");
        let text = std::fs::read_to_string(&settings).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("owner"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&settings, format!("{text}owner = \"reconciler\"\n")).unwrap();
        let head = repo.commit(&name).to_string();
        let cache = dir.path().join("cache");
        let args = [
            "reconcile",
            "--source",
            repo.dir.to_str().unwrap(),
            "--consul",
            &proxy.url(),
            "--interval",
            "1s",
            "--listen",
            "127.0.0.1:0",
            "--id",
            "one",
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        let token = server.token.clone().unwrap();
        let rec = Proc::spawn(
            &mesh_gitops(&args)
                .envs(SECRETS)
                .env("CONSUL_HTTP_TOKEN", &token),
            "reconciler listening on http://",
            dir.path().join("reconcile.log"),
        );
        let log = || rec.log();
        let s = wait_for(
            &format!("{name} applied"),
            Duration::from_secs(30),
            &log,
            || status(&proxy, &server).filter(|s| s["applied_revision"] == head.as_str()),
        );
        assert_eq!(s["result"], "applied", "{name}: {s:#}");
        let written = proxy.config_writes();
        assert!(written > 0, "{name}: nothing was applied");
        let passes = metric(&rec, "mesh_gitops_reconcile_duration_seconds_count").unwrap();
        wait_for(
            &format!("{name}: two more passes"),
            Duration::from_secs(30),
            &log,
            || {
                metric(&rec, "mesh_gitops_reconcile_duration_seconds_count")
                    .filter(|p| *p >= passes + 2.0)
            },
        );
        assert_eq!(
            proxy.config_writes(),
            written,
            "{name}: a later pass wrote; reconciler log:\n{}",
            rec.log()
        );
        let s = status(&proxy, &server).unwrap();
        assert_ne!(s["result"], "drift", "{name}: {s:#}");
        assert_ne!(s["result"], "healed", "{name}: {s:#}");
    }
}
