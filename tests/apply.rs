//! `plan` and `apply` end to end: against the embedded control plane in a state directory, and
//! against a running `mesh-gitops serve` reached with `--consul` (drift, concurrent owners,
//! unowned entries), with the `check` gate and the empty-prune guard.

mod common;

use common::examples::expected_check_code;
use common::serve::{Serve, ServeOpts};
use common::{copy_example, example, examples, mesh_gitops, Run};

use std::path::Path;
use std::process::Stdio;

fn run_in(cwd: &Path, args: &[&str]) -> Run {
    mesh_gitops(args).current_dir(cwd).run()
}

/// `mesh-gitops serve` on a free port, keeping its bootstrap token (when it has ACLs) in the
/// state directory; `extra` are more flags.
fn serve_with(state: &Path, extra: &[&str]) -> Serve {
    Serve::start(
        state,
        ServeOpts {
            bootstrap_token: true,
            extra: extra.iter().map(|a| a.to_string()).collect(),
            ..ServeOpts::default()
        },
    )
}

fn serve(state: &Path) -> Serve {
    serve_with(state, &[])
}

/// Runs the binary against a server, with its token and extra environment.
fn run_against(cwd: &Path, server: &Serve, args: &[&str], env: &[(&str, &str)]) -> Run {
    server.mesh_gitops(args).current_dir(cwd).envs(env).run()
}

/// The secrets the production example's tokens are created with.
const WEB_SECRET: &str = "6f1c2f0e-3b8a-4c55-9a41-7d0e5b2c9f10";
const API_SECRET: &str = "0b9d4e7a-52c1-4f3e-8e6d-1a2b3c4d5e6f";
const SECRETS: &[(&str, &str)] = &[
    ("WEB_CONSUL_TOKEN", WEB_SECRET),
    ("API_CONSUL_TOKEN", API_SECRET),
];

#[test]
fn apply_on_a_fresh_machine_uses_the_embedded_control_plane_and_is_idempotent() {
    let cwd = tempfile::tempdir().unwrap();
    let example = example("countdash");
    let ex = example.to_str().unwrap();
    let first = run_in(cwd.path(), &["apply", ex]);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert!(
        first.stdout.contains("+ service-intentions \"count-api\""),
        "{}",
        first.stdout
    );
    assert!(cwd.path().join(".mesh-gitops/state.redb").exists());
    // At the default log level (no RUST_LOG) the gate's simulation keeps its log to itself.
    for internal in ["nodename=", "Bind addr=", "node{name=", "simulated host"] {
        assert!(!first.stderr.contains(internal), "{}", first.stderr);
    }
    // It says why it went ahead: the gate's check and simulation passed.
    let said = first.stdout;
    assert!(
        said.contains("check: pass (1 declared upstream(s)"),
        "{said}"
    );
    assert!(
        said.contains("simulation: seed 1 trace ") && said.contains(" 0 violation(s)"),
        "{said}"
    );
    let again = run_in(cwd.path(), &["apply", ex]);
    assert!(
        again.stdout.contains("Apply complete: 0 change(s)."),
        "{}",
        again.stdout
    );
    let plan = run_in(cwd.path(), &["plan", ex]);
    assert_eq!(plan.code, Some(0));
    assert!(plan.stdout.starts_with("No changes."));
}

#[test]
fn drift_shows_in_the_plan_and_apply_heals_it_without_touching_unowned_entries() {
    let state = tempfile::tempdir().unwrap();
    let server = serve_with(state.path(), &["--acl-default-policy", "deny"]);
    let http = server.client();
    // Someone else already manages cassandra-db's defaults by hand.
    let theirs = serde_json::json!({"Kind": "service-defaults", "Name": "cassandra-db", "Protocol": "http2"});
    assert_eq!(
        http.put(format!("{}/v1/config", server.url()))
            .body(theirs.to_string())
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "true"
    );
    let cwd = tempfile::tempdir().unwrap();
    let prod = example("production");
    let p = prod.to_str().unwrap();
    // The unowned, different entry blocks the repository: exit 4, however much else changes.
    let plan = run_against(cwd.path(), &server, &["plan", p], SECRETS);
    plan.assert_code(4);
    let text = plan.stdout;
    assert!(text.contains("! service-defaults \"cassandra-db\": exists, differs from the repository and is not owned by mesh-gitops"), "{text}");
    let apply = run_against(cwd.path(), &server, &["apply", p], SECRETS);
    apply.assert_code(4);
    let theirs_now: serde_json::Value = http
        .get(format!(
            "{}/v1/config/service-defaults/cassandra-db",
            server.url()
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        theirs_now["Protocol"], "http2",
        "an unowned entry is never changed"
    );
    // Drift: an owned entry edited through the API.
    let mut api: serde_json::Value = http
        .get(format!("{}/v1/config/service-defaults/api", server.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(api["Meta"]["mesh-gitops-owner"], "platform");
    assert_eq!(api["Meta"]["mesh-gitops-source"], "config/api.json");
    api["Protocol"] = "grpc".into();
    assert_eq!(
        http.put(format!("{}/v1/config", server.url()))
            .body(api.to_string())
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "true"
    );
    let plan = run_against(
        cwd.path(),
        &server,
        &["plan", p, "--format", "json"],
        SECRETS,
    );
    plan.assert_code(4);
    let v: serde_json::Value = plan.json();
    assert_eq!(
        (&v["outcome"], &v["exit_code"]),
        (&serde_json::json!("blocked"), &serde_json::json!(4))
    );
    let step = &v["steps"][0];
    assert_eq!(
        (
            step["action"].as_str(),
            step["kind"].as_str(),
            step["name"].as_str()
        ),
        (Some("update"), Some("service-defaults"), Some("api"))
    );
    assert_eq!(
        (
            step["before"]["Protocol"].as_str(),
            step["after"]["Protocol"].as_str()
        ),
        (Some("grpc"), Some("http"))
    );
    run_against(cwd.path(), &server, &["apply", p], SECRETS).assert_code(4);
    // Healed; only the entry it may not touch is left.
    let healed = run_against(
        cwd.path(),
        &server,
        &["plan", p, "--format", "json"],
        SECRETS,
    );
    healed.assert_code(4);
    let v = healed.json();
    assert_eq!(v["steps"], serde_json::json!([]));
    assert_eq!(v["refused"].as_array().unwrap().len(), 1);
    // Another owner's repository does not prune or take over these entries.
    let k8s = example("kubernetes");
    let other = run_against(
        cwd.path(),
        &server,
        &["plan", k8s.to_str().unwrap()],
        SECRETS,
    );
    assert!(
        other.stdout.contains("owned by \"platform\""),
        "{}",
        other.stdout
    );
}

#[test]
fn apply_is_gated_on_check_and_refuses_to_delete_everything() {
    let cwd = tempfile::tempdir().unwrap();
    let repo = cwd.path().join("repo");
    copy_example("dynamic-app", &repo);
    let r = repo.to_str().unwrap();
    assert_eq!(run_in(cwd.path(), &["apply", r]).code, Some(0));
    std::fs::remove_file(repo.join("intentions/mysql-server.hcl")).unwrap();
    let gated = run_in(cwd.path(), &["apply", r]);
    assert_eq!(gated.code, Some(1));
    let err = &gated.stderr;
    assert!(
        err.contains("error[E1001]") && err.contains("nothing applied: check fails"),
        "{err}"
    );
    // Skipping the gate: the plan would now delete every owned entry, which needs consent too.
    let skipped = run_in(cwd.path(), &["apply", r, "--skip-check"]);
    assert_eq!(skipped.code, Some(1));
    let err = &skipped.stderr;
    assert!(
        err.contains("WARNING: applying although check fails") && err.contains("--allow-empty"),
        "{err}"
    );
    let forced = run_in(cwd.path(), &["apply", r, "--skip-check", "--allow-empty"]);
    assert_eq!(forced.code, Some(0));
    assert!(forced
        .stdout
        .contains("- service-intentions \"mysql-server\""));
}

#[test]
fn every_example_applies_over_http_to_an_acl_enabled_server_and_replans_clean() {
    for example in examples() {
        let state = tempfile::tempdir().unwrap();
        let server = serve_with(state.path(), &["--acl-default-policy", "deny"]);
        let cwd = tempfile::tempdir().unwrap();
        let dir = common::example(&example);
        let d = dir.to_str().unwrap();
        // An example failing `check` on purpose is applied past the gate.
        let mut args = vec!["apply", d];
        if expected_check_code(&example) != 0 {
            args.push("--skip-check");
        }
        let first = run_against(cwd.path(), &server, &args, SECRETS);
        assert_eq!(first.code, Some(0), "{example}: {}", first.stderr);
        let plan = run_against(cwd.path(), &server, &["plan", d], SECRETS);
        assert_eq!(
            plan.code,
            Some(0),
            "{example}: {}{}",
            plan.stdout,
            plan.stderr
        );
        assert!(plan.stdout.starts_with("No changes."), "{example}");
        let again = run_against(cwd.path(), &server, &args, SECRETS);
        assert!(
            again.stdout.contains("Apply complete: 0 change(s)."),
            "{example}: {}",
            again.stdout
        );
    }
}

fn inventory(http: &reqwest::blocking::Client, server: &Serve, owner: &str) -> serde_json::Value {
    let v: serde_json::Value = http
        .get(format!(
            "{}/v1/kv/mesh-gitops/{owner}/inventory?raw",
            server.url()
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    v
}

// One story against one server: each step depends on the state the previous ones left.
#[allow(clippy::too_many_lines)]
#[test]
fn acl_objects_are_owned_through_the_inventory_drift_is_healed_and_no_secret_is_ever_shown() {
    let state = tempfile::tempdir().unwrap();
    let server = serve_with(state.path(), &["--acl-default-policy", "deny"]);
    let bootstrap = server.token.clone().unwrap();
    let http = server.client();
    let cwd = tempfile::tempdir().unwrap();
    let prod = example("production");
    let p = prod.to_str().unwrap();
    let mut outputs = Vec::new();
    // Someone created a policy named like ours, by hand, with other rules.
    let theirs =
        serde_json::json!({"Name": "web", "Rules": "node_prefix \"\" { policy = \"read\" }"});
    let created: serde_json::Value = http
        .put(format!("{}/v1/acl/policy", server.url()))
        .body(theirs.to_string())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let their_id = created["ID"].as_str().unwrap().to_owned();
    let plan = run_against(cwd.path(), &server, &["plan", p], SECRETS);
    assert!(
        plan.stdout.contains("! acl-policy \"web\": exists, differs from the repository and is not owned by mesh-gitops"),
        "{}",
        plan.stdout
    );
    plan.assert_code(4);
    outputs.push(plan);
    // Applied as far as it may be; the policy it may not touch makes it "blocked".
    let apply = run_against(cwd.path(), &server, &["apply", p], SECRETS);
    apply.assert_code(4);
    assert!(
        apply.stdout.contains("Blocked: 1 declared object(s)"),
        "{}",
        apply.stdout
    );
    outputs.push(apply);
    let still: serde_json::Value = http
        .get(format!("{}/v1/acl/policy/{their_id}", server.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        still["Rules"], theirs["Rules"],
        "an unowned policy is never changed"
    );
    // Made identical, it can be adopted.
    let mut same = still.clone();
    same["Rules"] = serde_json::Value::String(
        std::fs::read_to_string(prod.join("acl/web.hcl"))
            .unwrap()
            .split("<<EOF\n")
            .nth(1)
            .unwrap()
            .split("EOF")
            .next()
            .unwrap()
            .to_owned(),
    );
    same["Description"] = "web may register itself and its sidecar, and read the catalog".into();
    http.put(format!("{}/v1/acl/policy/{their_id}", server.url()))
        .body(same.to_string())
        .send()
        .unwrap();
    let plan = run_against(cwd.path(), &server, &["plan", p], SECRETS);
    assert!(
        plan.stdout.contains("pass --adopt to take it over"),
        "{}",
        plan.stdout
    );
    // Identical content is not blocked: Consul matches the repository apart from ownership.
    plan.assert_code(0);
    let adopt = run_against(cwd.path(), &server, &["apply", p, "--adopt"], SECRETS);
    assert!(
        adopt.stdout.contains("= acl-policy \"web\""),
        "{}",
        adopt.stdout
    );
    outputs.push(adopt);
    let inv = inventory(&http, &server, "platform");
    assert_eq!(inv["objects"]["acl-policy/web"]["id"], their_id.as_str());
    for key in [
        "acl-token/web",
        "acl-token/api",
        "acl-role/mesh-operator",
        "service-defaults/api",
    ] {
        assert!(inv["objects"].get(key).is_some(), "{key} in {inv}");
    }
    // Drift: the api policy's rules edited through the API, and a token deleted.
    let api_id = inv["objects"]["acl-policy/api"]["id"].as_str().unwrap();
    let mut api: serde_json::Value = http
        .get(format!("{}/v1/acl/policy/{api_id}", server.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    api["Rules"] = "service_prefix \"\" { policy = \"write\" }".into();
    http.put(format!("{}/v1/acl/policy/{api_id}", server.url()))
        .body(api.to_string())
        .send()
        .unwrap();
    let db_token = inv["objects"]["acl-token/cassandra-db"]["id"]
        .as_str()
        .unwrap();
    http.delete(format!("{}/v1/acl/token/{db_token}", server.url()))
        .send()
        .unwrap();
    let plan = run_against(
        cwd.path(),
        &server,
        &["plan", p, "--format", "json"],
        SECRETS,
    );
    assert_eq!(plan.code, Some(2));
    let v: serde_json::Value = plan.json();
    let steps: Vec<(&str, &str, &str)> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["action"].as_str().unwrap(),
                s["kind"].as_str().unwrap(),
                s["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("update", "acl-policy", "api"),
            ("create", "acl-token", "cassandra-db")
        ]
    );
    assert!(v["steps"][0]["before"]["Rules"]
        .as_str()
        .unwrap()
        .contains("policy = \"write\""));
    assert!(v["steps"][1]["reason"]
        .as_str()
        .unwrap()
        .contains("deleted outside it"));
    outputs.push(plan);
    let text = run_against(cwd.path(), &server, &["plan", p], SECRETS);
    assert!(
        text.stdout
            .contains("~ Rules:\n          - service_prefix \"\" { policy = \"write\" }"),
        "{}",
        text.stdout
    );
    outputs.push(text);
    let heal = run_against(cwd.path(), &server, &["apply", p], SECRETS);
    assert_eq!(heal.code, Some(0), "{}", heal.stderr);
    outputs.push(heal);
    let clean = run_against(
        cwd.path(),
        &server,
        &["plan", p, "--format", "json"],
        SECRETS,
    );
    assert_eq!(clean.code, Some(0), "{}", clean.stdout);
    outputs.push(clean);
    // The web token carries the secret it was given, which no output, log or record shows.
    let tokens: serde_json::Value = http
        .get(format!("{}/v1/acl/tokens", server.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        tokens
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["Description"] == "token for the web service")
            .count(),
        1
    );
    let inv = inventory(&http, &server, "platform").to_string();
    let log = std::fs::read_to_string(state.path().join("serve.log")).unwrap_or_default();
    for secret in [WEB_SECRET, API_SECRET, bootstrap.as_str()] {
        for o in &outputs {
            assert!(!o.stdout.contains(secret) && !o.stderr.contains(secret));
        }
        assert!(!inv.contains(secret), "the inventory holds no secret");
        assert!(!log.contains(secret), "the server log holds no secret");
    }
    let web = inventory(&http, &server, "platform")["objects"]["acl-token/web"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token: serde_json::Value = http
        .get(format!("{}/v1/acl/token/{web}", server.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        token["SecretID"], WEB_SECRET,
        "created with the secret from its source"
    );
}

/// A repository of `n` service-defaults entries.
fn many_entries(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(
            dir.join(format!("svc-{i:04}.hcl")),
            format!("Kind = \"service-defaults\"\nName = \"svc-{i:04}\"\nProtocol = \"http\"\n"),
        )
        .unwrap();
    }
}

#[test]
fn a_concurrent_writer_racing_the_apply_is_neither_lost_nor_overwritten() {
    let state = tempfile::tempdir().unwrap();
    let server = serve(state.path());
    let cwd = tempfile::tempdir().unwrap();
    let repo = cwd.path().join("repo");
    many_entries(&repo, 300);
    let url = server.url();
    // The racer creates (cas=0) every third entry, from the end, while the apply runs.
    let racer = std::thread::spawn(move || {
        let http = reqwest::blocking::Client::new();
        let mut outcomes = Vec::new();
        for i in (0..300).rev().step_by(3) {
            let body = serde_json::json!({"Kind": "service-defaults", "Name": format!("svc-{i:04}"), "Protocol": "grpc"});
            let won = http
                .put(format!("{url}/v1/config?cas=0"))
                .body(body.to_string())
                .send()
                .unwrap()
                .text()
                .unwrap()
                == "true";
            outcomes.push((i, won));
        }
        outcomes
    });
    let apply = run_against(cwd.path(), &server, &["apply", repo.to_str().unwrap()], &[]);
    let outcomes = racer.join().unwrap();
    // An entry the racer won differs and is not ours: the apply reports itself blocked.
    let won = outcomes.iter().any(|(_, won)| *won);
    apply.assert_code(if won { 4 } else { 0 });
    let http = reqwest::blocking::Client::new();
    let mut theirs = 0;
    for (i, won) in outcomes {
        let e: serde_json::Value = http
            .get(format!(
                "{}/v1/config/service-defaults/svc-{i:04}",
                server.url()
            ))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if won {
            theirs += 1;
            assert_eq!(
                e["Protocol"], "grpc",
                "svc-{i:04}: the racer's write is kept"
            );
            assert!(e["Meta"].get("mesh-gitops-owner").is_none());
        } else {
            assert_eq!(e["Meta"]["mesh-gitops-owner"], "mesh-gitops", "svc-{i:04}");
        }
    }
    // Whatever the racer won is reported, not taken.
    let plan = run_against(cwd.path(), &server, &["plan", repo.to_str().unwrap()], &[]);
    assert_eq!(
        plan.stdout.matches("is not owned by mesh-gitops").count(),
        theirs,
        "{}",
        plan.stdout
    );
}

#[test]
fn apply_converges_through_injected_5xx_delays_and_dropped_connections() {
    let state = tempfile::tempdir().unwrap();
    let server = serve_with(
        state.path(),
        &["--acl-default-policy", "deny", "--inject-faults", "0.25"],
    );
    let cwd = tempfile::tempdir().unwrap();
    let repo = cwd.path().join("repo");
    copy_example("production", &repo);
    many_entries(&repo.join("generated"), 60);
    let r = repo.to_str().unwrap();
    let apply = run_against(cwd.path(), &server, &["apply", r], SECRETS);
    assert_eq!(apply.code, Some(0), "{}", apply.stderr);
    let plan = run_against(cwd.path(), &server, &["plan", r], SECRETS);
    assert_eq!(plan.code, Some(0), "{}{}", plan.stdout, plan.stderr);
    // Retried creates that had in fact succeeded did not duplicate anything. (This read may
    // meet an injected fault too, so it retries.)
    let http = server.client();
    let tokens: serde_json::Value = (0..50)
        .find_map(|_| {
            http.get(format!("{}/v1/acl/tokens", server.url()))
                .send()
                .ok()?
                .json()
                .ok()
        })
        .unwrap();
    let ours = tokens
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["Description"]
                .as_str()
                .is_some_and(|d| d.starts_with("token for the"))
        })
        .count();
    assert_eq!(ours, 3);
}

#[test]
fn killing_the_apply_at_random_points_then_rerunning_converges() {
    let state = tempfile::tempdir().unwrap();
    let server = serve_with(state.path(), &["--acl-default-policy", "deny"]);
    let cwd = tempfile::tempdir().unwrap();
    let repo = cwd.path().join("repo");
    copy_example("production", &repo);
    many_entries(&repo.join("generated"), 150);
    let r = repo.to_str().unwrap();
    // Kill points from a fixed seed, spread over the apply's run time.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..6 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = 30 + x % 400;
        assert!(server.token.is_some(), "the server has ACLs");
        let mut child = server
            .mesh_gitops(&["apply", r])
            .current_dir(cwd.path())
            .envs(SECRETS)
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
    }
    let last = run_against(cwd.path(), &server, &["apply", r], SECRETS);
    assert_eq!(last.code, Some(0), "{}", last.stderr);
    let plan = run_against(cwd.path(), &server, &["plan", r], SECRETS);
    assert_eq!(plan.code, Some(0), "{}", plan.stdout);
    let http = server.client();
    let inv = inventory(&http, &server, "platform");
    for (key, record) in inv["objects"].as_object().unwrap() {
        if key.starts_with("acl-") {
            assert!(
                record["id"].as_str().is_some_and(|i| !i.is_empty())
                    && record["modify_index"].as_u64() > Some(0),
                "{key}: {record}"
            );
        }
    }
    let policies: serde_json::Value = http
        .get(format!("{}/v1/acl/policies", server.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut names: Vec<&str> = policies
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["Name"].as_str())
        .filter(|n| *n != "global-management")
        .collect();
    names.sort();
    assert_eq!(names, ["api", "intentions-admin", "web"], "none duplicated");
}

#[test]
fn an_inline_certificate_key_is_read_from_its_source_and_never_shown() {
    // Not a real key: the control plane, like Consul's write path here, stores it as given.
    const KEY: &str =
        "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIK3yS3cr3t\n-----END EC PRIVATE KEY-----";
    const MARK: &str = "MHcCAQEEIK3yS3cr3t";
    let state = tempfile::tempdir().unwrap();
    let server = serve(state.path());
    let cwd = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("mesh-gitops.hcl"), "owner = \"certs\"\n").unwrap();
    std::fs::write(
        repo.path().join("gw-cert.hcl"),
        "Kind = \"inline-certificate\"\nName = \"gw-cert\"\nCertificate = \"CERT\"\nPrivateKeyFrom = \"env:GW_KEY\"\n",
    )
    .unwrap();
    let p = repo.path().to_str().unwrap();
    let env = &[("GW_KEY", KEY)];
    let plan = run_against(cwd.path(), &server, &["plan", p], env);
    assert!(
        plan.stdout.contains("+ inline-certificate \"gw-cert\""),
        "{}",
        plan.stdout
    );
    let apply = run_against(cwd.path(), &server, &["apply", p], env);
    assert_eq!(apply.code, Some(0), "{}", apply.stderr);
    // The key reached the control plane, the reference did not.
    let stored: serde_json::Value = server
        .client()
        .get(format!(
            "{}/v1/config/inline-certificate/gw-cert",
            server.url()
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(stored["PrivateKey"], KEY);
    assert!(stored.get("PrivateKeyFrom").is_none(), "{stored}");
    // Consul answers the key: the plan compares nothing of it and shows none of it.
    let again = run_against(cwd.path(), &server, &["plan", p], env);
    assert!(again.stdout.starts_with("No changes."), "{}", again.stdout);
    let json = run_against(cwd.path(), &server, &["plan", p, "--format", "json"], env);
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    for run in [&plan, &apply, &again, &json] {
        assert!(
            !run.stdout.contains(MARK) && !run.stderr.contains(MARK),
            "{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}
