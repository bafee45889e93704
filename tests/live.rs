//! `check --consul`, end to end against a running `mesh-gitops serve` with ACLs enforced
//! (default deny), read through a token holding only the documented read-only policy
//! (`examples/deploy/read-only-policy.hcl`): a live service the repository does not declare,
//! a shared destination's other owners, and the failures that must not read like a verdict.

mod common;

use common::live::{put, read_only_token, serve_with_acls as serve};
use common::serve::Serve;
use common::{copy_dir, mesh_gitops, root, Run};
use serde_json::{json, Value};
use std::path::Path;

const SETTINGS: &str = "datacenter = \"dc1\"\nowner = \"team-a\"\nacl {\n  enabled = true\n  default_policy = \"deny\"\n}\n";

const SERVICES: &str = r#"services = [
  { name = "web", port = 8080, connect = { sidecar_service = { proxy = { upstreams = [
    { destination_name = "api", local_bind_port = 9090 },
  ] } } } },
  { name = "api", port = 9090, connect = { sidecar_service = {} } },
]
"#;

fn intentions(sources: &[&str]) -> String {
    let sources: Vec<String> = sources
        .iter()
        .map(|s| format!("{{ Name = \"{s}\", Action = \"allow\" }}"))
        .collect();
    format!(
        "Kind = \"service-intentions\"\nName = \"api\"\nSources = [{}]\n",
        sources.join(", ")
    )
}

/// `web -> api` declared and allowed; `api`'s intentions name `sources`.
fn repo(dir: &Path, sources: &[&str]) {
    std::fs::create_dir_all(dir.join("intentions")).unwrap();
    std::fs::write(dir.join("mesh-gitops.hcl"), SETTINGS).unwrap();
    std::fs::write(dir.join("services.hcl"), SERVICES).unwrap();
    std::fs::write(dir.join("intentions/api.hcl"), intentions(sources)).unwrap();
}

/// `check DIR --consul URL` with the read-only token in the environment only.
fn check(s: &Serve, token: &str, dir: &Path, more: &[&str]) -> Run {
    mesh_gitops(&[
        "check",
        dir.to_str().unwrap(),
        "--consul",
        &s.url(),
        "--no-sim",
    ])
    .args(more)
    .env("CONSUL_HTTP_TOKEN", token)
    .run()
}

#[test]
fn cutting_the_upstream_of_a_service_known_only_live_fails_in_every_report() {
    let tmp = tempfile::tempdir().unwrap();
    let s = serve(&tmp.path().join("state"));
    let dir = tmp.path().join("repo");
    repo(&dir, &["web"]);
    s.mesh_gitops(&["apply", dir.to_str().unwrap()])
        .run()
        .assert_success();
    // Running in the cluster, declared nowhere in the repository, and allowed by an outside
    // write to api's intentions, which the repository would overwrite.
    put(
        &s,
        "/v1/agent/service/register",
        json!({"Name": "legacy", "Port": 7000, "Connect": {"SidecarService": {"Proxy": {
            "Upstreams": [{"DestinationName": "api", "LocalBindPort": 9191}]}}}}),
    );
    put(
        &s,
        "/v1/config",
        json!({"Kind": "service-intentions", "Name": "api",
               "Sources": [{"Name": "web", "Action": "allow"}, {"Name": "legacy", "Action": "allow"}]}),
    );
    let token = read_only_token(&s);
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = |f: &str| format!("{f}={}", out.join(f).display());
    let run = check(
        &s,
        &token,
        &dir,
        &[
            "--output",
            "json",
            "--output",
            &o("text"),
            "--output",
            &o("markdown"),
            "--output",
            &o("html"),
            "--output",
            &o("sarif"),
        ],
    );
    run.assert_code(3);
    let v = run.json();
    assert_eq!(v["verdict"], "fail");
    assert_eq!(v["diff"]["closed"], json!([["legacy", "api"]]));
    assert_eq!(v["diff"]["opened"], json!([]));
    assert_eq!(v["live"]["only_live"], json!(["legacy"]));
    assert_eq!(v["live"]["address"], s.url());
    let cut = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "E1001")
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(cut["severity"], "error");
    assert_eq!(
        cut["file"],
        format!("{}/v1/catalog/service/legacy-sidecar-proxy", s.url())
    );
    let edge = v["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == "legacy")
        .unwrap();
    assert_eq!(
        (edge["live_only"].clone(), edge["decision"].clone()),
        (json!(true), json!("deny"))
    );
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    assert!(
        read("text").contains("  - legacy (live only) -> api closed\n"),
        "{}",
        read("text")
    );
    assert!(
        read("markdown").contains("| closed | `legacy` (live only) | `api` |"),
        "{}",
        read("markdown")
    );
    assert!(read("html").contains("<code>legacy</code> (live only)"));
    let sarif: Value = serde_json::from_str(&read("sarif")).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(
        results.iter().any(|r| r["ruleId"] == "E1001"
            && r["level"] == "error"
            && r["message"]["text"]
                .as_str()
                .unwrap()
                .contains("service \"legacy\" declares upstream \"api\"")),
        "{sarif:#}"
    );
    assert!(!run.stderr.contains(&token), "the token is never printed");

    // Declaring legacy's source keeps the edge: nothing closes, the check passes.
    repo(&dir, &["web", "legacy"]);
    let run = check(&s, &token, &dir, &["--format", "json"]);
    run.assert_success();
    assert_eq!(run.json()["diff"]["closed"], json!([]));
}

#[test]
fn a_shared_destination_is_analysed_with_the_other_owners_sources_from_consul() {
    let tmp = tempfile::tempdir().unwrap();
    let s = serve(&tmp.path().join("state"));
    let examples = root().join("examples/shared-destination");
    let (frontend, batch) = (tmp.path().join("frontend"), tmp.path().join("batch"));
    copy_dir(&examples.join("frontend"), &frontend);
    copy_dir(&examples.join("batch"), &batch);
    for dir in [&frontend, &batch] {
        s.mesh_gitops(&["apply", dir.to_str().unwrap()])
            .run()
            .assert_success();
    }
    let token = read_only_token(&s);
    let run = check(&s, &token, &frontend, &["--format", "json"]);
    run.assert_success();
    let v = run.json();
    let allowed: Vec<(String, String)> = v["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["destination"] == "api" && e["decision"] == "allow")
        .map(|e| {
            (
                e["source"].as_str().unwrap().into(),
                e["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    let sources: Vec<&str> = allowed.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(sources, ["batch-worker", "report", "web"], "{v:#}");
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["code"] != "W1013"),
        "the other owners' sources are known, not only warned about: {v:#}"
    );
    assert_eq!(v["diff"]["opened"], json!([]));
    assert_eq!(v["diff"]["closed"], json!([]));
    // Without Consul, the repository alone only warns that they may exist.
    let alone = mesh_gitops(&[
        "check",
        frontend.to_str().unwrap(),
        "--no-base",
        "--no-sim",
        "--format",
        "json",
    ])
    .run();
    assert!(alone.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["code"] == "W1013"));
}

/// Exit 1, the address and the endpoint named, and nothing that reads like a verdict.
fn assert_no_verdict(run: &Run, address: &str, endpoint: &str) {
    run.assert_code(1);
    assert_eq!(run.stdout, "", "nothing on stdout");
    assert!(
        run.stderr.contains(&format!(
            "cannot read the live state from Consul at {address}: GET {endpoint}"
        )),
        "{}",
        run.output()
    );
    for verdict in ["PASS", "FAIL", "check:", "reachability"] {
        assert!(!run.stderr.contains(verdict), "{}", run.output());
    }
}

#[test]
fn an_unreachable_consul_or_a_refused_read_is_an_error_not_a_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    repo(&dir, &["web"]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let address = format!("http://{closed}");
    let out = tmp.path().join("report.md");
    let run = mesh_gitops(&[
        "check",
        dir.to_str().unwrap(),
        "--consul",
        &address,
        "--no-sim",
    ])
    .args(&["--output", &format!("markdown={}", out.display())])
    .run();
    assert_no_verdict(&run, &address, "/v1/config/service-defaults");
    assert!(!out.exists(), "no report is written");

    let s = serve(&tmp.path().join("state"));
    let run = check(&s, "00000000-0000-0000-0000-00000000dead", &dir, &[]);
    assert_no_verdict(&run, &s.url(), "/v1/config/service-defaults");
    assert!(run.stderr.contains("403"), "{}", run.output());
}
