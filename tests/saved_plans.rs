//! Saved plans end to end: `plan --out FILE` against a running `mesh-gitops serve`, then
//! `apply --plan FILE` applies exactly that plan, or nothing when Consul or the repository
//! changed since (exit 5) or the file was altered (exit 1).

mod common;

use common::serve::{Serve, ServeOpts};
use common::{copy_dir, copy_example, Run};
use serde_json::Value;
use std::path::Path;

/// The secrets the production example's tokens are created with.
const WEB_SECRET: &str = "6f1c2f0e-3b8a-4c55-9a41-7d0e5b2c9f10";
const API_SECRET: &str = "0b9d4e7a-52c1-4f3e-8e6d-1a2b3c4d5e6f";
const SECRETS: &[(&str, &str)] = &[
    ("WEB_CONSUL_TOKEN", WEB_SECRET),
    ("API_CONSUL_TOKEN", API_SECRET),
];

fn serve(state: &Path, extra: &[&str]) -> Serve {
    Serve::start(
        state,
        ServeOpts {
            bootstrap_token: true,
            extra: extra.iter().map(|a| a.to_string()).collect(),
            ..ServeOpts::default()
        },
    )
}

fn run(cwd: &Path, server: &Serve, args: &[&str], env: &[(&str, &str)]) -> Run {
    server.mesh_gitops(args).current_dir(cwd).envs(env).run()
}

fn get(server: &Serve, path: &str) -> Value {
    server
        .client()
        .get(format!("{}{path}", server.url()))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// The control plane's index: it moves with every write, so an unchanged one means nothing
/// was written.
fn index(server: &Serve) -> u64 {
    let r = server
        .client()
        .get(format!("{}/v1/config/service-defaults", server.url()))
        .send()
        .unwrap();
    let header = r.headers()["X-Consul-Index"].to_str().unwrap().to_owned();
    header.parse().unwrap()
}

/// A repository holding one service-defaults entry for `web`.
fn small_repo(dir: &Path, protocol: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("mesh-gitops.hcl"), "owner = \"platform\"\n").unwrap();
    std::fs::write(
        dir.join("web.hcl"),
        format!("Kind = \"service-defaults\"\nName = \"web\"\nProtocol = \"{protocol}\"\n"),
    )
    .unwrap();
}

#[test]
fn the_reviewed_plan_is_applied_from_another_checkout_without_its_secrets_in_the_file() {
    let state = tempfile::tempdir().unwrap();
    let server = serve(state.path(), &["--acl-default-policy", "deny"]);
    let cwd = tempfile::tempdir().unwrap();
    let reviewed = cwd.path().join("pull-request");
    copy_example("production", &reviewed);
    let plan = run(
        cwd.path(),
        &server,
        &["plan", reviewed.to_str().unwrap(), "--out", "mesh.plan"],
        &[],
    );
    plan.assert_code(2);
    assert!(
        plan.stderr.contains("plan saved to mesh.plan"),
        "{}",
        plan.stderr
    );
    let text = std::fs::read_to_string(cwd.path().join("mesh.plan")).unwrap();
    for secret in [WEB_SECRET, API_SECRET, server.token.as_deref().unwrap()] {
        assert!(!text.contains(secret), "a secret in the saved plan");
    }
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["format"], "mesh-gitops-plan");
    assert_eq!(saved["version"], 1);
    assert_eq!(saved["outcome"], "changes");
    assert!(saved["checksum"].as_str().unwrap().starts_with("sha256:"));
    assert!(saved["consul"]["state"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let steps = saved["plan"]["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["kind"] == "acl-token"), "{text}");
    // Applied on merge from another checkout of the same content.
    let merged = cwd.path().join("main");
    copy_dir(&reviewed, &merged);
    let apply = run(
        cwd.path(),
        &server,
        &["apply", merged.to_str().unwrap(), "--plan", "mesh.plan"],
        SECRETS,
    );
    assert_eq!(apply.code, Some(0), "{}{}", apply.stdout, apply.stderr);
    assert!(
        apply.stdout.contains("applying the saved plan mesh.plan"),
        "{}",
        apply.stdout
    );
    assert!(
        apply
            .stdout
            .contains(&format!("Apply complete: {} change(s).", steps.len())),
        "{}",
        apply.stdout
    );
    let after = run(
        cwd.path(),
        &server,
        &["plan", merged.to_str().unwrap()],
        &[],
    );
    assert_eq!(after.code, Some(0), "{}{}", after.stdout, after.stderr);
    // Its tokens carry the secrets read at apply time.
    let tokens = get(&server, "/v1/acl/tokens");
    let web = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["Description"].as_str().is_some_and(|d| d.contains("web")))
        .expect("the web token exists");
    let full = get(
        &server,
        &format!("/v1/acl/token/{}", web["AccessorID"].as_str().unwrap()),
    );
    assert_eq!(full["SecretID"], WEB_SECRET);
    // The same plan a second time: what it would create now exists, so nothing is written.
    let before = index(&server);
    let again = run(
        cwd.path(),
        &server,
        &["apply", merged.to_str().unwrap(), "--plan", "mesh.plan"],
        SECRETS,
    );
    again.assert_code(5);
    assert!(again.stderr.contains("now exists"), "{}", again.stderr);
    assert_eq!(index(&server), before);
}

#[test]
fn a_change_in_consul_after_the_plan_refuses_it_and_writes_nothing() {
    let state = tempfile::tempdir().unwrap();
    let server = serve(state.path(), &[]);
    let cwd = tempfile::tempdir().unwrap();
    let repo = cwd.path().join("repo");
    small_repo(&repo, "http");
    let r = repo.to_str().unwrap();
    run(cwd.path(), &server, &["apply", r], &[]).assert_code(0);
    let planned_at = get(&server, "/v1/config/service-defaults/web")["ModifyIndex"]
        .as_u64()
        .unwrap();
    small_repo(&repo, "grpc");
    run(cwd.path(), &server, &["plan", r, "--out", "p.json"], &[]).assert_code(2);
    // Someone changes the entry the plan updates.
    let mut web = get(&server, "/v1/config/service-defaults/web");
    web["Protocol"] = "http2".into();
    let put = server
        .client()
        .put(format!("{}/v1/config", server.url()))
        .body(web.to_string())
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(put, "true");
    let now = get(&server, "/v1/config/service-defaults/web")["ModifyIndex"]
        .as_u64()
        .unwrap();
    let before = index(&server);
    let apply = run(cwd.path(), &server, &["apply", r, "--plan", "p.json"], &[]);
    apply.assert_code(5);
    let said = format!(
        "the saved plan is stale, nothing written: Consul changed since the plan was made: \
         service-defaults \"web\" planned at index {planned_at}, now at {now}"
    );
    assert!(apply.stderr.contains(&said), "{}", apply.stderr);
    assert!(apply.stderr.contains("make a new plan"), "{}", apply.stderr);
    assert_eq!(index(&server), before, "nothing was written");
    // The same with the apply's JSON: the error in the object, the same exit code.
    let json = run(
        cwd.path(),
        &server,
        &["apply", r, "--plan", "p.json", "--format", "json"],
        &[],
    );
    json.assert_code(5);
    assert!(
        json.json()["error"].as_str().unwrap().contains(&said),
        "{}",
        json.stdout
    );
    assert_eq!(index(&server), before, "nothing was written");
    assert_eq!(
        get(&server, "/v1/config/service-defaults/web")["Protocol"],
        "http2"
    );

    // A change to an object the plan does not write refuses it too: the plan was reviewed
    // against the whole live state.
    run(cwd.path(), &server, &["plan", r, "--out", "p.json"], &[]).assert_code(2);
    let other = serde_json::json!({"Kind": "service-defaults", "Name": "db", "Protocol": "tcp"});
    server
        .client()
        .put(format!("{}/v1/config", server.url()))
        .body(other.to_string())
        .send()
        .unwrap();
    let before = index(&server);
    let apply = run(cwd.path(), &server, &["apply", r, "--plan", "p.json"], &[]);
    apply.assert_code(5);
    assert!(
        apply.stderr.contains(
            "Consul changed since the plan was made (objects the plan was read against moved)"
        ),
        "{}",
        apply.stderr
    );
    assert_eq!(index(&server), before, "nothing was written");

    // A repository that differs from the one planned.
    run(cwd.path(), &server, &["plan", r, "--out", "p.json"], &[]).assert_code(2);
    small_repo(&repo, "http2");
    let apply = run(cwd.path(), &server, &["apply", r, "--plan", "p.json"], &[]);
    apply.assert_code(5);
    assert!(
        apply
            .stderr
            .contains("the repository is not the one the plan was made from"),
        "{}",
        apply.stderr
    );
    assert_eq!(index(&server), before, "nothing was written");
}

#[test]
fn an_edited_plan_file_is_refused_before_anything_is_read_or_written() {
    let state = tempfile::tempdir().unwrap();
    let server = serve(state.path(), &[]);
    let cwd = tempfile::tempdir().unwrap();
    let repo = cwd.path().join("repo");
    small_repo(&repo, "http");
    let r = repo.to_str().unwrap();
    run(cwd.path(), &server, &["plan", r, "--out", "p.json"], &[]).assert_code(2);
    let path = cwd.path().join("p.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"http\"", "\"grpc\"")).unwrap();
    let before = index(&server);
    let apply = run(cwd.path(), &server, &["apply", r, "--plan", "p.json"], &[]);
    apply.assert_code(1);
    assert!(
        apply.stderr.contains(
            "nothing applied: p.json is not a plan to apply (make a new one with `mesh-gitops plan --out`): \
             the file was altered or damaged after it was written"
        ),
        "{}",
        apply.stderr
    );
    assert_eq!(index(&server), before, "nothing was written");
    // Flags the file decides are refused beside it.
    let usage = run(
        cwd.path(),
        &server,
        &["apply", r, "--plan", "p.json", "--adopt"],
        &[],
    );
    usage.assert_code(1);
    assert!(
        usage.stderr.contains("cannot be used with"),
        "{}",
        usage.stderr
    );
}

/// The `mesh-gitops` command lines of the plan-and-apply workflow example, each with its long
/// flags.
fn workflow_commands(text: &str) -> Vec<(String, Vec<String>)> {
    let command = regex::Regex::new(r"(?m)^[^#\n]*mesh-gitops (plan|apply) (\.[^\n|]*)").unwrap();
    let flag = regex::Regex::new(r"--([a-z-]+)").unwrap();
    command
        .captures_iter(text)
        .map(|c| {
            let flags = flag.captures_iter(&c[2]).map(|f| f[1].to_owned()).collect();
            (c[1].to_owned(), flags)
        })
        .collect()
}

#[test]
fn the_github_example_saves_the_plan_it_applies_with_flags_the_binary_has() {
    let text =
        std::fs::read_to_string(common::root().join("examples/github/mesh-gitops-plan-apply.yml"))
            .unwrap();
    let commands = workflow_commands(&text);
    let names: Vec<&str> = commands.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, ["plan", "apply"], "{commands:?}");
    for (command, flags) in &commands {
        let help = common::mesh_gitops(&[command.as_str(), "--help"])
            .run()
            .stdout;
        for f in flags {
            assert!(help.contains(&format!("--{f}")), "{command} has no --{f}");
        }
    }
    assert!(
        text.contains("mesh-gitops plan . --out mesh.plan"),
        "{text}"
    );
    assert!(
        text.contains("mesh-gitops apply . --plan mesh.plan"),
        "{text}"
    );
    // The artifact the pull request uploads is the one the push downloads.
    assert!(text.contains("name: mesh-plan-${{ github.event.pull_request.head.sha }}"));
    assert!(text.contains("--name \"mesh-plan-$head\""));
}
