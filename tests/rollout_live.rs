//! The rollout simulated from the live state, end to end against a running `mesh-gitops serve`:
//! `plan --simulate` reports the transient breaks of the plan's own steps, and `apply` (also of a
//! saved plan) refuses a rollout that breaks, even briefly, an edge allowed now and after it,
//! unless `--allow-transient`; `reconcile` does not apply such a commit.

mod common;

use common::git::Repo;
use common::serve::{Proc, Serve, ServeOpts};
use common::Run;
use std::path::Path;
use std::time::{Duration, Instant};

fn run(cwd: &Path, server: &Serve, args: &[&str]) -> Run {
    server.mesh_gitops(args).current_dir(cwd).run()
}

/// web and other both call api, under default-deny ACLs; `web_via` is the intentions entry
/// (`*` or `api`) that allows web, and the other entry allows other. Swapping them is a change
/// no order of the two writes makes without denying one of the callers for a moment.
fn repo(dir: &Path, web_via: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("mesh-gitops.hcl"),
        "owner = \"platform\"\nacl {\n  enabled = true\n  default_policy = \"deny\"\n}\n",
    )
    .unwrap();
    for caller in ["web", "other"] {
        std::fs::write(
            dir.join(format!("{caller}.json")),
            format!(
                r#"{{"service": {{"name": "{caller}", "port": 8080, "connect": {{"sidecar_service": {{"proxy": {{"upstreams": [{{"destination_name": "api", "local_bind_port": 10000}}]}}}}}}}}}}"#
            ),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("api.json"),
        r#"{"service": {"name": "api", "port": 9090, "connect": {"sidecar_service": {}}}}"#,
    )
    .unwrap();
    let other_via = if web_via == "*" { "api" } else { "*" };
    for (entry, source) in [(web_via, "web"), (other_via, "other")] {
        let file = if entry == "*" { "star.hcl" } else { "api.hcl" };
        std::fs::write(
            dir.join(file),
            format!(
                "Kind = \"service-intentions\"\nName = \"{entry}\"\nSources = [{{ Name = \"{source}\", Action = \"allow\" }}]\n"
            ),
        )
        .unwrap();
    }
}

fn star_sources(server: &Serve) -> String {
    let v: serde_json::Value = server
        .client()
        .get(format!("{}/v1/config/service-intentions/*", server.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["Sources"][0]["Name"].as_str().unwrap_or("").to_owned()
}

fn deny_server(state: &Path) -> Serve {
    Serve::start(
        state,
        ServeOpts {
            bootstrap_token: true,
            extra: vec!["--acl-default-policy".into(), "deny".into()],
            ..ServeOpts::default()
        },
    )
}

const BREAK: &str = "transient break: web -> api after step 1 of 2 (service-intentions \"*\")";

#[test]
fn a_rollout_that_breaks_a_kept_live_edge_is_reported_by_plan_and_refused_by_apply() {
    let state = tempfile::tempdir().unwrap();
    let server = deny_server(state.path());
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("repo");
    let r = dir.to_str().unwrap();
    repo(&dir, "*");
    // From nothing live, nothing is allowed before: no break possible.
    let first = run(cwd.path(), &server, &["apply", r]);
    assert_eq!(first.code, Some(0), "{}{}", first.stdout, first.stderr);
    assert!(
        first.stdout.contains(
            "rollout from the live state: 2 step(s) simulated, 0 transient break(s), 0 transient opening(s)"
        ),
        "{}",
        first.stdout
    );
    assert_eq!(star_sources(&server), "web");

    repo(&dir, "api");
    let plan = run(
        cwd.path(),
        &server,
        &["plan", r, "--simulate", "--out", "p.json"],
    );
    plan.assert_code(3);
    assert!(plan.stdout.contains(BREAK), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("apply would refuse"),
        "{}",
        plan.stdout
    );

    let refused = run(cwd.path(), &server, &["apply", r]);
    refused.assert_code(1);
    assert!(refused.stdout.contains(BREAK), "{}", refused.stdout);
    assert!(
        refused.stderr.contains(
            "nothing applied: the rollout from the live state breaks 1 edge(s) that are allowed now and after it: web -> api after step 1 of 2"
        ),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--allow-transient"),
        "{}",
        refused.stderr
    );
    assert_eq!(star_sources(&server), "web", "nothing was written");

    // The saved plan goes through the same gate.
    let saved = run(cwd.path(), &server, &["apply", r, "--plan", "p.json"]);
    saved.assert_code(1);
    assert!(
        saved.stderr.contains("breaks 1 edge(s)"),
        "{}",
        saved.stderr
    );
    assert_eq!(star_sources(&server), "web", "nothing was written");

    let allowed = run(cwd.path(), &server, &["apply", r, "--allow-transient"]);
    assert_eq!(
        allowed.code,
        Some(0),
        "{}{}",
        allowed.stdout,
        allowed.stderr
    );
    assert!(allowed.stdout.contains(BREAK), "{}", allowed.stdout);
    assert!(
        allowed.stdout.contains("Apply complete: 2 change(s)."),
        "{}",
        allowed.stdout
    );
    assert_eq!(star_sources(&server), "other");

    // In sync: nothing to simulate, nothing refused.
    let again = run(cwd.path(), &server, &["plan", r, "--simulate"]);
    again.assert_code(0);
    assert!(
        again
            .stdout
            .contains("rollout from the live state: nothing to simulate"),
        "{}",
        again.stdout
    );
}

/// The reconciler's status record for the owner `platform`.
fn status(server: &Serve) -> Option<serde_json::Value> {
    let r = server
        .client()
        .get(format!(
            "{}/v1/kv/mesh-gitops/platform/status?raw",
            server.url()
        ))
        .send()
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    serde_json::from_slice(&r.bytes().ok()?).ok()
}

fn wait_for_status(
    server: &Serve,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        if let Some(s) = status(server).filter(|s| ok(s)) {
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}: {:?}",
            status(server)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn reconcile_does_not_apply_a_commit_whose_rollout_from_the_live_state_breaks_a_kept_edge() {
    let dir = tempfile::tempdir().unwrap();
    let server = deny_server(&dir.path().join("state"));
    let repo = Repo::init(&dir.path().join("repo"));
    self::repo(&repo.dir, "*");
    let c1 = repo.commit("web through the wildcard").to_string();
    let cache = dir.path().join("cache");
    let cmd = server
        .mesh_gitops(&[
            "reconcile",
            "--source",
            repo.dir.to_str().unwrap(),
            "--interval",
            "1s",
            "--listen",
            "127.0.0.1:0",
            "--id",
            "r1",
            "--cache-dir",
            cache.to_str().unwrap(),
        ])
        .env("RUST_LOG", "info");
    let _rec = Proc::spawn(
        &cmd,
        "reconciler listening on http://",
        dir.path().join("reconcile.log"),
    );
    wait_for_status(&server, "the first commit", |s| {
        s["applied_revision"] == c1.as_str()
    });
    assert_eq!(star_sources(&server), "web");

    self::repo(&repo.dir, "api");
    let c2 = repo.commit("swap the entries").to_string();
    let s = wait_for_status(&server, "the second commit's pass", |s| {
        s["revision"] == c2.as_str() && s["result"] != "applied"
    });
    // Not applied, and retried with backoff: the live state may change under it.
    assert_eq!(s["result"], "failed", "{s:#}");
    let reason = s["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("the rollout from the live state breaks 1 edge(s)"),
        "{s:#}"
    );
    assert_eq!(s["applied_revision"], c1.as_str(), "{s:#}");
    assert_eq!(star_sources(&server), "web", "nothing was written");
}

/// A caller only Consul's catalog knows (registered through the agent, declared nowhere in the
/// repository) carries traffic in the simulated rollout too: the swap breaks its edge for a
/// moment, so `plan --simulate` reports it and `apply` refuses.
#[test]
fn a_rollout_that_breaks_the_edge_of_a_service_known_only_live_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let server = deny_server(state.path());
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("repo");
    let r = dir.to_str().unwrap();
    repo(&dir, "*");
    let first = run(cwd.path(), &server, &["apply", r]);
    assert_eq!(first.code, Some(0), "{}{}", first.stdout, first.stderr);
    let registered = server
        .client()
        .put(format!("{}/v1/agent/service/register", server.url()))
        .json(
            &serde_json::json!({"Name": "web", "Port": 8080, "Connect": {"SidecarService": {
            "Proxy": {"Upstreams": [{"DestinationName": "api", "LocalBindPort": 10000}]}}}}),
        )
        .send()
        .unwrap();
    assert!(registered.status().is_success(), "{registered:?}");

    repo(&dir, "api");
    std::fs::remove_file(dir.join("web.json")).unwrap();
    let plan = run(cwd.path(), &server, &["plan", r, "--simulate"]);
    plan.assert_code(3);
    assert!(plan.stdout.contains(BREAK), "{}", plan.stdout);

    let refused = run(cwd.path(), &server, &["apply", r]);
    refused.assert_code(1);
    assert!(refused.stdout.contains(BREAK), "{}", refused.stdout);
    assert_eq!(star_sources(&server), "web", "nothing was written");
}
