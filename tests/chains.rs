//! Discovery chains end to end: `check` on the canary example shows where web's upstream sends
//! requests in every format, and fails once the canary's intention is gone.

mod common;

use common::{copy_dir, example, mesh_gitops};

#[test]
fn the_canary_chain_is_in_every_output_format() {
    let dir = example("canary");
    let json = mesh_gitops(&["check"])
        .arg(&dir)
        .args(&["--no-base", "--format", "json"])
        .run()
        .assert_success()
        .json();
    let chains = json["chains"].as_array().unwrap();
    let to: Vec<(&str, f64, &str)> = chains
        .iter()
        .map(|c| {
            (
                c["target"].as_str().unwrap(),
                c["share"].as_f64().unwrap(),
                c["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(to, [("api", 90.0, "allow"), ("api-v2", 10.0, "allow")]);
    let md = mesh_gitops(&["check"])
        .arg(&dir)
        .args(&["--no-base", "--format", "markdown"])
        .run();
    assert!(md
        .stdout
        .contains("<details><summary>Discovery chains</summary>"));
    assert!(md
        .stdout
        .contains("chain_web_api -->|\"10% of requests\"| api_v2_[\"api-v2\"]"));
    let html = mesh_gitops(&["check"])
        .arg(&dir)
        .args(&["--no-base", "--format", "html"])
        .run();
    assert!(html.stdout.contains("<section id=\"chains\">"));
    let text = mesh_gitops(&["check"]).arg(&dir).arg("--no-base").run();
    assert!(text
        .stdout
        .contains("    routes 10% of requests: web -> api-v2: allow"));
}

#[test]
fn without_the_canary_s_intention_check_fails_at_the_upstream_and_the_split() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&example("canary"), tmp.path());
    std::fs::remove_file(tmp.path().join("intentions/api-v2.hcl")).unwrap();
    let out = mesh_gitops(&["check"])
        .arg(tmp.path())
        .args(&["--no-base", "--format", "json"])
        .run();
    out.assert_code(3);
    let v = out.json();
    let e1014: Vec<(&str, u64)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "E1014")
        .map(|f| (f["file"].as_str().unwrap(), f["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        e1014,
        [("config/api-splitter.hcl", 6), ("services/web.json", 9)]
    );
}

/// `simulate` routes web's requests on "api" by the canary's split: both targets carry traffic
/// with both intentions; without the canary's intention its requests are denied at that target,
/// in agreement with `check`'s E1014, and `simulate` exits 3 naming the target.
#[test]
fn simulate_routes_the_canary_split_and_fails_at_a_denied_target() {
    let dir = example("canary");
    let ok = mesh_gitops(&["simulate"])
        .arg(&dir)
        .args(&["--format", "json"])
        .run()
        .assert_success()
        .json();
    let targets: Vec<(&str, bool)> = ok["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let allowed = t["allowed"].as_u64().unwrap() > 0 && t["denied"] == 0;
            (t["target"].as_str().unwrap(), allowed)
        })
        .collect();
    assert_eq!(targets, [("api", true), ("api-v2", true)]);

    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&dir, tmp.path());
    std::fs::remove_file(tmp.path().join("intentions/api-v2.hcl")).unwrap();
    let out = mesh_gitops(&["simulate"])
        .arg(tmp.path())
        .args(&["--format", "json"])
        .run();
    out.assert_code(3);
    let v = out.json();
    assert_eq!(v["violations"], serde_json::json!([]));
    let denied = v["denied"].as_array().unwrap();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(
        (&denied[0]["destination"], &denied[0]["target"]),
        (&"api".into(), &"api-v2".into())
    );
    let text = mesh_gitops(&["simulate"]).arg(tmp.path()).run();
    text.assert_code(3);
    assert!(
        text.stdout
            .contains("  denied: web -> api -> target api-v2: "),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("  chain: web -> api -> target api: "));
}

/// `graph` draws an edge from web to each target of its upstream's chain, labelled with the
/// split's share, in every format, and the same bytes every time.
#[test]
fn graph_shows_the_chain_s_targets_with_their_share() {
    let dir = example("canary");
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/graph");
    for (format, file) in [("mermaid", "canary.mmd"), ("dot", "canary.dot")] {
        let out = mesh_gitops(&["graph"])
            .arg(&dir)
            .args(&["--format", format])
            .run();
        out.assert_success();
        common::assert_golden(&data.join(file), &out.stdout);
    }
    let dot = std::fs::read_to_string(data.join("canary.dot")).unwrap();
    assert!(
        dot.contains("  \"web\" -> \"api-v2\" [color=\"#1565c0\", style=dotted, label=\"10%\"];"),
        "{dot}"
    );
    let mmd = std::fs::read_to_string(data.join("canary.mmd")).unwrap();
    assert!(mmd.contains(" -.->|\"90%\"| "), "{mmd}");
}
