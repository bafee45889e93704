//! End-to-end tests of `mesh-gitops check`: the seed scenario's missing intention, guardrails,
//! the reachability diff against a directory and against a git revision (a real repository
//! built with git2), and every report format.

mod common;

use common::git::Repo;
use common::{copy_dir, copy_example, example, golden_mismatch, mesh_gitops, root, subdirs, Run};

use std::path::PathBuf;
use std::process::Command;

fn run(args: &[&str]) -> Run {
    mesh_gitops(args).run()
}

#[test]
fn the_dynamic_app_scenario_fails_without_its_intention_and_passes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    copy_example("dynamic-app", dir.path());
    let d = dir.path().to_str().unwrap();
    let out = run(&["check", d, "--format", "json"]);
    out.assert_success();
    let v = out.json();
    assert_eq!(v["verdict"], "pass");
    let edge = v["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == "dynamic-app" && e["destination"] == "mysql-server")
        .expect("the declared edge");
    assert_eq!(edge["declared"], true);
    assert_eq!(edge["decision"], "allow");

    std::fs::remove_file(dir.path().join("intentions/mysql-server.hcl")).unwrap();
    let out = run(&["check", d, "--format", "json"]);
    assert_eq!(out.code, Some(3));
    let v = out.json();
    assert_eq!(v["verdict"], "fail");
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "E1001")
        .expect("the denied upstream");
    // The upstreams block of the job file.
    assert_eq!(f["file"], "jobs/dynamic-app.nomad.hcl");
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(36), Some(13))
    );
    assert!(f["message"].as_str().unwrap().contains("mysql-server"));
}

#[test]
fn a_guardrail_assertion_fails_at_its_block_and_a_pack_forbids_findings() {
    let dir = tempfile::tempdir().unwrap();
    copy_example("dynamic-app", dir.path());
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/database.hcl"),
        "assert \"only-dynamic-app-reaches-mysql\" {\n  description = \"mysql-server is reachable from dynamic-app and from nothing else\"\n  allow = [{ from = \"dynamic-app\", to = \"mysql-server\" }]\n  deny  = [{ from = \"*\", to = \"mysql-server\", except = [\"dynamic-app\"] }]\n}\n",
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    assert_eq!(run(&["check", d]).code, Some(0));

    // Someone opens the database to everyone.
    std::fs::write(
        dir.path().join("intentions/mysql-server.hcl"),
        "Kind = \"service-intentions\"\nName = \"mysql-server\"\nSources = [\n  { Name = \"dynamic-app\", Action = \"allow\" },\n  { Name = \"*\", Action = \"allow\" },\n]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("jobs/reporting.json"),
        r#"{"service": {"name": "reporting", "port": 7000}}"#,
    )
    .unwrap();
    let out = run(&["check", d, "--format", "json"]);
    assert_eq!(out.code, Some(3));
    let v = out.json();
    let findings = v["findings"].as_array().unwrap();
    let failed = findings
        .iter()
        .find(|f| f["code"] == "E1101")
        .expect("the assertion fails");
    assert_eq!(
        (failed["file"].as_str(), failed["line"].as_u64()),
        (Some("policies/database.hcl"), Some(1))
    );
    assert!(failed["message"]
        .as_str()
        .unwrap()
        .contains("reporting -> mysql-server is allowed"));
    assert!(
        findings.iter().any(|f| f["code"] == "W1004"),
        "the wildcard is reported too"
    );

    // The production pack turns the literal password into a failure.
    let settings = std::fs::read_to_string(dir.path().join("mesh-gitops.hcl")).unwrap();
    std::fs::write(
        dir.path().join("mesh-gitops.hcl"),
        format!("{settings}guardrails = [\"production\"]\n"),
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("policies/database.hcl")).unwrap();
    let v = run(&["check", d, "--format", "json"]).json();
    let pw = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["message"]
                .as_str()
                .unwrap()
                .contains("MYSQL_ROOT_PASSWORD")
        })
        .unwrap();
    assert_eq!(pw["code"], "E1101");
    assert!(pw["message"]
        .as_str()
        .unwrap()
        .contains("production/no-literal-secrets"));
    // Neither the finding's excerpt nor any report prints the password, with or without the pack.
    for format in [
        "text", "json", "sarif", "markdown", "html", "github", "junit",
    ] {
        let out = run(&["check", d, "--no-base", "--no-sim", "--format", format]);
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(all.contains("MYSQL_ROOT_PASSWORD"), "{format}: {all}");
        assert!(
            !all.contains("super-duper-password"),
            "{format} prints a secret"
        );
    }
}

/// The production example's servers misconfigured: unverified TLS, a literal gossip key and
/// token, ACLs that allow. Each finding points at its key; the production pack makes the
/// serious ones guardrail failures; no secret reaches any output.
#[test]
fn a_bad_agent_file_is_located_and_the_production_pack_fails_it() {
    let dir = tempfile::tempdir().unwrap();
    copy_example("production", dir.path());
    let gossip = "i0P+gFTkLPg0h53eNYjydg==";
    let token = "3f1c9a62-8e6b-4a8f-9d1e-2f4b8c7a6d5e";
    std::fs::write(
        dir.path().join("consul/server/agent.hcl"),
        format!(
            "server = true\nencrypt = \"{gossip}\"\ntls {{\n  defaults {{\n    ca_file = \"/ca.pem\"\n    cert_file = \"/server.pem\"\n    key_file = \"/server-key.pem\"\n    verify_incoming = false\n    verify_outgoing = true\n  }}\n}}\nacl {{\n  enabled = true\n  default_policy = \"allow\"\n  tokens {{\n    agent = \"{token}\"\n  }}\n}}\nports {{\n  https = 8501\n}}\n"
        ),
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let located = |v: &serde_json::Value| -> Vec<(String, String, u64)> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["file"] == "consul/server/agent.hcl")
            .map(|f| {
                let m = f["message"].as_str().unwrap();
                let code = match m.rsplit_once(" [") {
                    Some((_, c)) if f["code"] == "E1101" => c.trim_end_matches(']').to_owned(),
                    _ => f["code"].as_str().unwrap().to_owned(),
                };
                (
                    f["code"].as_str().unwrap().to_owned(),
                    code,
                    f["line"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let expected = |pack: bool| -> Vec<(String, String, u64)> {
        [
            ("W1202", 1),
            ("W1204", 2),
            ("W1202", 8),
            ("W1206", 14),
            ("W1205", 16),
        ]
        .iter()
        .map(|(c, l)| {
            let shown = if pack { "E1101" } else { c };
            (shown.to_owned(), (*c).to_owned(), *l)
        })
        .collect()
    };
    let out = run(&["check", d, "--no-base", "--no-sim", "--format", "json"]);
    assert_eq!(out.code, Some(3), "{}", out.stdout);
    assert_eq!(located(&out.json()), expected(true));
    let text = run(&["check", d, "--no-base", "--no-sim"]).stdout;
    assert!(text.contains("production/agent-tls-verified"), "{text}");
    assert!(
        text.contains("production/no-literal-agent-secrets"),
        "{text}"
    );
    // Without the pack they are warnings, and the check passes.
    let settings = std::fs::read_to_string(dir.path().join("mesh-gitops.hcl")).unwrap();
    std::fs::write(
        dir.path().join("mesh-gitops.hcl"),
        settings.replace("guardrails = [\"production\"]", ""),
    )
    .unwrap();
    let out = run(&["check", d, "--no-base", "--no-sim", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert_eq!(located(&out.json()), expected(false));
    for format in [
        "text", "json", "sarif", "markdown", "html", "github", "junit",
    ] {
        let out = run(&["check", d, "--no-base", "--no-sim", "--format", format]);
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            !all.contains(gossip) && !all.contains(token),
            "{format} prints a secret"
        );
    }
    let shown = run(&["show", d, "--format", "json"]).stdout;
    assert!(!shown.contains(gossip) && !shown.contains(token));
}

/// A repository with a base commit and a head commit that removes an intention and adds a
/// wildcard; `check --base HEAD~1` reads the base from the object database.
#[test]
fn check_against_a_git_revision_reports_opened_and_closed_edges_and_locations() {
    let dir = tempfile::tempdir().unwrap();
    let git = Repo::init(dir.path());
    let mesh = dir.path().join("mesh");
    std::fs::create_dir_all(mesh.join("intentions")).unwrap();
    std::fs::write(
        mesh.join("mesh-gitops.hcl"),
        "acl {\n  enabled = true\n  default_policy = \"deny\"\n}\n",
    )
    .unwrap();
    std::fs::write(
        mesh.join("services.hcl"),
        "services = [\n  { name = \"web\", port = 8080, address = \"127.0.0.1\", connect = { sidecar_service = { proxy = { upstreams = [{ destination_name = \"api\", local_bind_port = 9090 }] } } } },\n  { name = \"api\", port = 9090, address = \"127.0.0.1\", connect = { sidecar_service = {} } },\n  { name = \"db\", port = 5432, address = \"127.0.0.1\", connect = { sidecar_service = {} } },\n]\n",
    )
    .unwrap();
    std::fs::write(mesh.join("intentions/api.hcl"), "Kind = \"service-intentions\"\nName = \"api\"\nSources = [{ Name = \"web\", Action = \"allow\" }]\n").unwrap();
    git.commit("base");
    std::fs::remove_file(mesh.join("intentions/api.hcl")).unwrap();
    std::fs::write(mesh.join("intentions/db.hcl"), "Kind = \"service-intentions\"\nName = \"db\"\nSources = [\n  { Name = \"*\", Action = \"allow\" }\n]\n").unwrap();
    git.commit("head: drop web -> api, open db to everyone");

    let m = mesh.to_str().unwrap();
    let out = run(&["check", m, "--base", "HEAD~1", "--format", "json"]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    let v = out.json();
    let pairs = |k: &str| -> Vec<(String, String)> {
        v["diff"][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_owned(),
                    p[1].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(pairs("closed"), [("web".to_owned(), "api".to_owned())]);
    let opened = pairs("opened");
    assert!(
        opened.contains(&("*".to_owned(), "db".to_owned())),
        "{opened:?}"
    );
    assert!(
        opened.contains(&("web".to_owned(), "db".to_owned()))
            || opened.contains(&("*".to_owned(), "db".to_owned()))
    );
    let findings = v["findings"].as_array().unwrap();
    let denied = findings.iter().find(|f| f["code"] == "E1001").unwrap();
    assert_eq!(
        (denied["file"].as_str(), denied["line"].as_u64()),
        (Some("services.hcl"), Some(2))
    );
    let wildcard = findings.iter().find(|f| f["code"] == "W1004").unwrap();
    assert_eq!(
        (
            wildcard["file"].as_str(),
            wildcard["line"].as_u64(),
            wildcard["column"].as_u64()
        ),
        (Some("intentions/db.hcl"), Some(4), Some(3))
    );
    assert!(v["diff"]["new_findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["code"] == "E1001"));

    let md = run(&["check", m, "--base", "HEAD~1", "--format", "markdown"]).stdout;
    assert!(md.starts_with("## ❌ mesh-gitops check: fail"), "{md}");
    assert!(md.contains("| closed | `web` | `api` |"), "{md}");
    assert!(md.contains("| opened | `*` | `db` |"), "{md}");
    assert!(
        md.contains("[intentions/db.hcl:4](intentions/db.hcl#L4)"),
        "{md}"
    );

    let sarif: serde_json::Value =
        run(&["check", m, "--base", "HEAD~1", "--format", "sarif"]).json();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let r = results.iter().find(|r| r["ruleId"] == "W1004").unwrap();
    let region = &r["locations"][0]["physicalLocation"];
    assert_eq!(region["artifactLocation"]["uri"], "intentions/db.hcl");
    assert_eq!(region["region"]["startLine"], 4);
    let err = results.iter().find(|r| r["ruleId"] == "E1001").unwrap();
    assert_eq!(err["level"], "error");
    assert_eq!(
        err["locations"][0]["physicalLocation"]["region"]["startLine"],
        2
    );

    // GitHub annotations sit on the changed lines: the added wildcard and the upstream that
    // lost its intention.
    let gh = run(&["check", m, "--base", "HEAD~1", "--format", "github"]).stdout;
    assert!(
        gh.lines().any(
            |l| l.starts_with("::warning file=intentions/db.hcl,line=4,col=3,")
                && l.contains("title=W1004::")
        ),
        "{gh}"
    );
    assert!(
        gh.lines()
            .any(|l| l.starts_with("::error file=services.hcl,line=2,")
                && l.contains("title=E1001::")),
        "{gh}"
    );

    // A revision that does not exist is an error, not a silent pass.
    assert_eq!(run(&["check", m, "--base", "no-such-rev"]).code, Some(1));
}

#[test]
fn check_against_a_directory_and_the_line_formats() {
    let base = tempfile::tempdir().unwrap();
    copy_example("dynamic-app", base.path());
    let head = tempfile::tempdir().unwrap();
    copy_example("dynamic-app", head.path());
    std::fs::remove_file(head.path().join("intentions/mysql-server.hcl")).unwrap();
    let h = head.path().to_str().unwrap();
    let b = base.path().to_str().unwrap();
    let text = run(&["check", h, "--base", b]).stdout;
    assert!(
        text.contains("- dynamic-app -> mysql-server closed"),
        "{text}"
    );

    let gh = run(&["check", h, "--format", "github"]).stdout;
    assert!(
        gh.lines().any(|l| l
            .starts_with("::error file=jobs/dynamic-app.nomad.hcl,line=36,col=13,")
            && l.contains("title=E1001::")),
        "{gh}"
    );

    let junit = run(&["check", h, "--format", "junit"]).stdout;
    let doc = roxmltree::Document::parse(&junit).expect("JUnit output is XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    let failures: usize = suite.attribute("failures").unwrap().parse().unwrap();
    assert!(failures >= 1);
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("failure"))
            .count(),
        failures
    );
}

/// The SARIF log validates against the SARIF 2.1.0 JSON schema (a copy kept in the repository
/// under `tests/data/sarif/`, whose README says where it comes from), checked with Python's
/// `jsonschema`, which the documented set-up installs before any test runs.
#[test]
fn sarif_output_validates_against_the_2_1_0_schema() {
    let schema = sarif_schema();
    let python_path = jsonschema_path();
    let dir = tempfile::tempdir().unwrap();
    copy_example("web-socat", dir.path());
    let out = run(&["check", dir.path().to_str().unwrap(), "--format", "sarif"]);
    let log = dir.path().join("check.sarif");
    std::fs::write(&log, &out.stdout).unwrap();
    let status = Command::new("python3")
        .args([
            "-c",
            "import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))); print('valid')",
            log.to_str().unwrap(),
            schema.to_str().unwrap(),
        ])
        .env("PYTHONPATH", python_path)
        .output()
        .expect("python3 runs");
    assert!(
        status.status.success(),
        "SARIF does not validate:\n{}\n{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
}

/// The schema, kept in the repository (see `tests/data/sarif/README.md`).
fn sarif_schema() -> PathBuf {
    root().join("tests/data/sarif/sarif-2.1.0-rtm.5.json")
}

/// Every finding and guardrail code has a pinned case under `tests/data/check/`: the text report
/// must equal `expected.stdout` (regenerate with `UPDATE_GOLDEN=1`), and the exit code follows
/// the verdict.
#[test]
fn check_reports_are_pinned() {
    let dirs = subdirs(&root().join("tests/data/check"));
    assert!(dirs.len() >= 15);
    let mut failures = Vec::new();
    for dir in dirs {
        // --no-base: a clone of this project has origin/HEAD, and the pinned text has no diff.
        let out = run(&["check", dir.to_str().unwrap(), "--no-base"]);
        // A failing simulation's replay command names the repository: pinned as `<dir>`.
        let stdout = &out.stdout.replace(dir.to_str().unwrap(), "<dir>");
        let failed = stdout.starts_with("check: FAIL");
        let expected_code = if failed { 3 } else { 0 };
        if out.code != Some(expected_code) {
            failures.push(format!("{}: exit {:?}\n{stdout}", dir.display(), out.code));
            continue;
        }
        failures.extend(golden_mismatch(&dir.join("expected.stdout"), stdout));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Where the test build installed Python's `jsonschema` (`mesh-test-tools` runs `.ci/setup`);
/// the test fails, saying why, without it.
fn jsonschema_path() -> PathBuf {
    mesh_test_tools::python_module("jsonschema").unwrap_or_else(|why| panic!("{why}"))
}

#[test]
fn graphs_show_declared_edges_and_what_a_change_opened_and_closed() {
    let mermaid = mesh_gitops(&["graph"])
        .arg(example("web-socat"))
        .run()
        .stdout;
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(
        mermaid.contains("n1 -. denied .-> n0"),
        "web -> socat is denied: {mermaid}"
    );
    let base = tempfile::tempdir().unwrap();
    copy_example("dynamic-app", base.path());
    let head = tempfile::tempdir().unwrap();
    copy_example("dynamic-app", head.path());
    std::fs::remove_file(head.path().join("intentions/mysql-server.hcl")).unwrap();
    let h = head.path().to_str().unwrap();
    let b = base.path().to_str().unwrap();
    let dot = run(&["graph", h, "--base", b, "--format", "dot"]).stdout;
    assert!(dot.starts_with("digraph mesh {"), "{dot}");
    assert!(dot.contains("\"dynamic-app\" -> \"mysql-server\" [color=\"#c62828\", style=dotted, penwidth=2.5, label=\"closed\"];"), "{dot}");
    let md = run(&["check", h, "--base", b, "--format", "markdown"]).stdout;
    assert!(md.contains("```mermaid\nflowchart LR\n"), "{md}");
}

/// Without `--base`, in a git repository whose `origin/HEAD` names a branch, `check` compares with
/// the merge base of HEAD and that branch (what a pull request changes), and says so; `--no-base`
/// and plain directories compare with nothing.
#[test]
fn check_defaults_to_the_merge_base_with_origin_head() {
    let dir = tempfile::tempdir().unwrap();
    let git = Repo::init(dir.path());
    let repo = &git.repo;
    let mesh = dir.path().join("mesh");
    std::fs::create_dir_all(mesh.join("intentions")).unwrap();
    std::fs::write(
        mesh.join("mesh-gitops.hcl"),
        "acl {\n  enabled = true\n  default_policy = \"deny\"\n}\n",
    )
    .unwrap();
    std::fs::write(
        mesh.join("services.hcl"),
        "services = [\n  { name = \"web\", port = 8080, address = \"127.0.0.1\", connect = { sidecar_service = { proxy = { upstreams = [{ destination_name = \"api\", local_bind_port = 9090 }] } } } },\n  { name = \"api\", port = 9090, address = \"127.0.0.1\", connect = { sidecar_service = {} } },\n  { name = \"db\", port = 5432, address = \"127.0.0.1\", connect = { sidecar_service = {} } },\n]\n",
    )
    .unwrap();
    let allow = |dst: &str, src: &str| {
        format!("Kind = \"service-intentions\"\nName = \"{dst}\"\nSources = [{{ Name = \"{src}\", Action = \"allow\" }}]\n")
    };
    std::fs::write(mesh.join("intentions/api.hcl"), allow("api", "web")).unwrap();
    let fork = git.commit("fork point");

    // The default branch moves on after the fork (api -> db opened there): not this change's.
    std::fs::write(mesh.join("intentions/db.hcl"), allow("db", "api")).unwrap();
    let main_tip = git.commit("main moves on");
    repo.reference("refs/remotes/origin/main", main_tip, true, "fetch")
        .unwrap();
    repo.reference_symbolic(
        "refs/remotes/origin/HEAD",
        "refs/remotes/origin/main",
        true,
        "clone",
    )
    .unwrap();

    // The pull request's branch, from the fork point: drops web -> api, opens web -> db.
    let fork_commit = repo.find_commit(fork).unwrap();
    repo.reset(fork_commit.as_object(), git2::ResetType::Hard, None)
        .unwrap();
    let _ = std::fs::remove_file(mesh.join("intentions/db.hcl"));
    std::fs::remove_file(mesh.join("intentions/api.hcl")).unwrap();
    std::fs::write(mesh.join("intentions/db.hcl"), allow("db", "web")).unwrap();
    git.commit("the change");

    let m = mesh.to_str().unwrap();
    let out = run(&["check", m, "--format", "json"]);
    let stderr = out.stderr.clone();
    let short = &fork.to_string()[..12];
    assert!(
        stderr.contains(&format!(
            "base: {short} (merge base of HEAD and origin/main)"
        )),
        "{stderr}"
    );
    let v = out.json();
    assert_eq!(
        v["diff"]["base"],
        format!("{short} (merge base of HEAD and origin/main)")
    );
    // Against the fork point, not against origin/main's tip (where api -> db would be closed).
    assert_eq!(v["diff"]["closed"], serde_json::json!([["web", "api"]]));
    assert_eq!(v["diff"]["opened"], serde_json::json!([["web", "db"]]));

    // The text report names the base too.
    let text = run(&["check", m]).stdout;
    assert!(
        text.contains(&format!(
            "reachability since {short} (merge base of HEAD and origin/main):"
        )),
        "{text}"
    );

    // --no-base compares with nothing; --base still wins.
    let out = run(&["check", m, "--no-base", "--format", "json"]);
    assert!(out.json().get("diff").is_none());
    assert!(!out.stderr.contains("base:"));
    let v = run(&["check", m, "--base", "HEAD~1", "--format", "json"]).json();
    assert_eq!(v["diff"]["base"], "HEAD~1");

    // origin/HEAD pointing at a branch that does not exist: no base, and the reason.
    repo.find_reference("refs/remotes/origin/main")
        .unwrap()
        .delete()
        .unwrap();
    let out = run(&["check", m, "--format", "json"]);
    assert!(out.json().get("diff").is_none());
    let stderr = out.stderr.clone();
    assert!(
        stderr.contains("base: none (origin/HEAD points at origin/main, which does not exist)"),
        "{stderr}"
    );

    // A plain directory keeps working, with no base.
    let plain = tempfile::tempdir().unwrap();
    copy_dir(&mesh, plain.path());
    let out = run(&["check", plain.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.code, Some(3), "web's upstream api is denied");
    assert!(out.json().get("diff").is_none());
    let stderr = out.stderr.clone();
    assert!(
        stderr.contains("base: none (") && stderr.contains("is not in a git repository"),
        "{stderr}"
    );
}
