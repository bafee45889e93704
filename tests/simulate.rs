//! `simulate` and the simulation inside `check`, end to end through the binary.

mod common;

use common::examples::expected_code;
use common::{copy_example, examples, mesh_gitops, Run};

use std::path::Path;

/// The binary, without `MESH_SIM_SEED` unless `env` sets it.
fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    mesh_gitops(args).envs(env).run()
}

fn example(name: &str) -> String {
    common::example(name).display().to_string()
}

/// Whether the example declares a service with a sidecar (or a native one), read from `show`.
fn has_sidecars(name: &str) -> bool {
    let v = run(&["show", &example(name), "--format", "json"], &[])
        .assert_success()
        .json();
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["sidecar"] == true || s["native"] == true)
}

/// Every example with sidecars simulates (an example failing on purpose with the exit code its
/// marker names); one without is skipped, and says why.
#[test]
fn examples_simulate_clean_with_every_probe_refused_for_its_reason() {
    let mut simulated = Vec::new();
    for name in examples() {
        let o = run(&["simulate", &example(&name), "--format", "json"], &[]);
        o.assert_code(expected_code(&name, "simulate"));
        let v = o.json();
        if !has_sidecars(&name) {
            assert_eq!(
                v["skipped"], "the repository declares no service with a sidecar",
                "{name}"
            );
            continue;
        }
        simulated.push(name.clone());
        assert_eq!(v["passed"], expected_code(&name, "simulate") == 0, "{name}");
        assert_eq!(v["violations"], serde_json::json!([]), "{name}");
        let probes = v["probes"].as_array().unwrap();
        assert!(!probes.is_empty(), "{name}");
        for p in probes {
            assert_eq!(p["outcome"], p["expected"], "{name}: {p}");
            // A valid identity is allowed where the intentions allow it (countdash's default
            // allow); every other probe must never reach the application.
            if p["kind"] != "denied-identity" {
                assert_ne!(p["outcome"], "allowed", "{name}: {p}");
            }
        }
    }
    assert!(
        simulated.len() >= 4,
        "expected the four seed examples with sidecars, found {simulated:?}"
    );
}

#[test]
fn without_its_intention_dynamic_app_is_denied_after_a_successful_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_example("dynamic-app", &repo);
    std::fs::remove_file(repo.join("intentions/mysql-server.hcl")).unwrap();
    let o = run(
        &["simulate", repo.to_str().unwrap(), "--format", "json"],
        &[],
    );
    // The simulation agrees with the static analysis (denied), so it is not a violation; but a
    // declared upstream the intentions deny fails, as `check` fails it.
    o.assert_code(3);
    let v = o.json();
    assert_eq!(v["violations"], serde_json::json!([]));
    assert_eq!(
        v["denied"],
        serde_json::json!([{
            "source": "dynamic-app",
            "destination": "mysql-server",
            "denied_by": "Default behavior configured by ACLs"
        }])
    );
    let edge = v["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == "dynamic-app" && e["destination"] == "mysql-server")
        .expect("the declared upstream carried traffic");
    assert_eq!(edge["expected_allowed"], false);
    assert!(
        edge["denied_after_handshake"].as_u64().unwrap() > 0,
        "{edge}"
    );
    assert!(edge["outcomes"].get("allowed").is_none(), "{edge}");
}

#[test]
fn the_seed_decides_the_trace_and_a_sweep_is_one_flag() {
    let ex = example("countdash");
    let a = run(&["simulate", &ex, "--format", "json", "--seed", "7"], &[]).json();
    let b = run(
        &["simulate", &ex, "--format", "json"],
        &[("MESH_SIM_SEED", "7")],
    )
    .json();
    assert_eq!(a["seed"], 7);
    assert_eq!(a["trace_hash"], b["trace_hash"], "same seed, same trace");
    let c = run(&["simulate", &ex, "--format", "json", "--seed", "8"], &[]).json();
    assert_ne!(a["trace_hash"], c["trace_hash"]);
    let sweep = run(&["simulate", &ex, "--format", "json", "--seeds", "3"], &[]).json();
    let seeds: Vec<u64> = sweep["sweep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds, [1, 2, 3]);
}

#[test]
fn check_runs_the_simulation_and_its_json_carries_it() {
    let ex = example("production");
    let v = run(&["check", &ex, "--format", "json"], &[]).json();
    let sim = &v["simulation"];
    assert_eq!(sim["seed"], 1);
    assert_eq!(sim["trace_hash"].as_str().unwrap().len(), 64);
    assert!(sim["probes"].as_array().unwrap().len() >= 10);
    assert_eq!(sim["violations"], serde_json::json!([]));
    let skipped = run(&["check", &ex, "--format", "json", "--no-sim"], &[]).json();
    assert!(skipped.get("simulation").is_none());
}

/// `* -> db` replaced by explicit allows: the planner writes the allows before it deletes the
/// wildcard, so the simulated rollout keeps web -> db up throughout.
#[test]
fn a_rollout_from_the_base_in_the_planners_order_breaks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let write = |root: &Path, intentions: &[(&str, &str)]| {
        std::fs::create_dir_all(root.join("services")).unwrap();
        std::fs::create_dir_all(root.join("intentions")).unwrap();
        std::fs::write(
            root.join("mesh-gitops.hcl"),
            "acl {\n  default_policy = \"deny\"\n}\n",
        )
        .unwrap();
        std::fs::write(
            root.join("services/web.hcl"),
            "service {\n  name = \"web\"\n  port = 8080\n  connect {\n    sidecar_service {\n      proxy {\n        upstreams = [{ destination_name = \"db\", local_bind_port = 9000 }]\n      }\n    }\n  }\n}\n",
        )
        .unwrap();
        std::fs::write(
            root.join("services/db.hcl"),
            "service {\n  name = \"db\"\n  port = 5432\n  connect {\n    sidecar_service {}\n  }\n}\n",
        )
        .unwrap();
        for (name, body) in intentions {
            std::fs::write(root.join("intentions").join(name), body).unwrap();
        }
    };
    let base = dir.path().join("base");
    let head = dir.path().join("head");
    write(
        &base,
        &[("all.hcl", "Kind = \"service-intentions\"\nName = \"*\"\nSources = [{ Name = \"web\", Action = \"allow\" }]\n")],
    );
    write(
        &head,
        &[("db.hcl", "Kind = \"service-intentions\"\nName = \"db\"\nSources = [{ Name = \"web\", Action = \"allow\" }]\n")],
    );
    let o = run(
        &[
            "check",
            head.to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[],
    );
    let v = o.json();
    assert_eq!(v["simulation"]["transient"], serde_json::json!([]), "{v:#}");
    assert_eq!(v["simulation"]["violations"], serde_json::json!([]));
    let md = run(
        &[
            "check",
            head.to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
            "--format",
            "markdown",
        ],
        &[],
    );
    assert!(md.stdout.contains("### Simulation"));
}

#[test]
fn a_failing_run_exits_3_and_prints_the_command_that_replays_it() {
    let ex = example("production");
    let args = [
        "simulate",
        ex.as_str(),
        "--seed",
        "4",
        "--faults",
        "partition=web/api@1s",
    ];
    let o = run(&args, &[]);
    o.assert_code(3);
    let text = o.stdout.clone();
    assert!(
        text.contains("liveness: web -> api is allowed but still failed at the end"),
        "{text}"
    );
    let replay =
        format!("replay: mesh-gitops simulate {ex} --seed 4 --faults 'partition=web/api@1s'");
    assert!(text.contains(&replay), "{text}");
    // The replay gives the same run.
    let again = run(&args, &[]);
    assert_eq!(text, again.stdout);
    // Faults that heal: the same edge works again within the bound, with latency on every link.
    let healed = run(
        &[
            "simulate",
            &ex,
            "--seeds",
            "4",
            "--faults",
            "crash=api@2s..3s,partition=web/api@1s..2s,rotate@2500ms,latency=20ms",
        ],
        &[],
    );
    healed.assert_success();
}

/// web-socat's only declared upstream is denied by its intention: no edge carried traffic, the
/// denied upstream is named with the deciding intention in every format, and `simulate` fails
/// as `check` does.
#[test]
fn a_denied_declared_upstream_is_named_with_its_intention_and_fails_like_check() {
    let ex = example("web-socat");
    let check = run(&["check", &ex, "--no-base", "--format", "json"], &[]);
    check.assert_code(3);
    let check = check.json();
    let finding = check["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "E1001")
        .expect("check reports the denied upstream");
    assert!(finding["message"]
        .as_str()
        .unwrap()
        .contains("web -> socat"));

    let text = run(&["simulate", &ex], &[]);
    text.assert_code(3);
    let first = text.stdout.lines().next().unwrap();
    assert!(
        first.contains(": 0 declared edge(s) carried traffic, 1 declared upstream(s) denied by the intentions,"),
        "{first}"
    );
    let intention = "Matched L4 intention: web -> socat (precedence 9)";
    assert!(
        text.stdout
            .contains("  denied: web -> socat: declared upstream denied, "),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains(&format!(
        "request(s) refused by the intentions ({intention})"
    )));
    assert!(
        text.stdout.contains("  replay: mesh-gitops simulate"),
        "{}",
        text.stdout
    );

    let json = run(&["simulate", &ex, "--format", "json"], &[]);
    json.assert_code(3);
    let v = json.json();
    assert_eq!(v["passed"], false);
    assert_eq!(v["carried_traffic"], 0);
    assert_eq!(
        v["denied"],
        serde_json::json!([{"source": "web", "destination": "socat", "denied_by": intention}])
    );
    assert_eq!(v["edges"][0]["denied_by"], intention);
    assert!(v["edges"][0]["outcomes"].get("allowed").is_none());
    // The simulation inside check says the same.
    assert_eq!(check["simulation"]["denied"], v["denied"]);

    let md = run(&["simulate", &ex, "--format", "markdown"], &[]);
    md.assert_code(3);
    assert!(md.stdout.contains("0 declared edge(s) carried traffic over mTLS; 1 declared upstream(s) denied by the intentions;"), "{}", md.stdout);
    assert!(
        md.stdout
            .contains("- 🔴 denied: web -> socat: declared upstream denied"),
        "{}",
        md.stdout
    );
}

/// A sweep split across machines: each part a `--seed-range`, combined into the report one run
/// of all the seeds writes, byte for byte.
#[test]
fn seed_ranges_split_a_sweep_and_combine_joins_their_reports() {
    let ex = example("countdash");
    let whole = run(&["simulate", &ex, "--format", "json", "--seeds", "3"], &[]);
    whole.assert_success();
    let dir = tempfile::tempdir().unwrap();
    // The environment's seed does not override the range.
    let part = |range: &str, name: &str| {
        let path = dir.path().join(name);
        let o = run(
            &[
                "simulate",
                &ex,
                "--seed-range",
                range,
                "--output",
                &format!("json={}", path.display()),
            ],
            &[("MESH_SIM_SEED", "9")],
        );
        o.assert_success();
        path.display().to_string()
    };
    let first = part("1..2", "first.json");
    let rest = part("2..=3", "rest.json");
    let combined = run(&["simulate", "--combine", &rest, &first], &[]);
    combined.assert_success();
    assert_eq!(combined.stdout, whole.stdout, "one report, as from one run");
    let overlap = run(&["simulate", "--combine", &first, &first], &[]);
    overlap.assert_code(1);
    assert!(
        overlap.stderr.contains("seed 1 is in part 1 and in part 2"),
        "{}",
        overlap.output()
    );
    let text = run(&["simulate", "--combine", &first, "--format", "text"], &[]);
    text.assert_code(1);
    let empty = run(&["simulate", &ex, "--seed-range", "4..4"], &[]);
    empty.assert_code(1);
    assert!(empty.stderr.contains("holds no seed"), "{}", empty.output());
}
