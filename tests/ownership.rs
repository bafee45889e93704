//! Ownership end to end, against a running `mesh-gitops serve`: an outside `consul config
//! write` (a whole entry, its Meta replaced) is drift that `plan` shows and `apply` restores;
//! another owner's mark on a recorded entry is a conflict; `--adopt` takes over unowned entries
//! that differ but never another owner's; `--max-deletes` and `mesh-gitops-prune = "never"`;
//! entries marked before the inventory listed config entries are recorded; and the exit codes
//! (0 in sync, 2 changes, 4 blocked) with golden plan texts.

mod common;

use common::serve::{Serve, ServeOpts};
use common::{assert_golden, root, Run};

use serde_json::{json, Value};
use std::path::Path;

const SETTINGS: &str = "datacenter = \"dc1\"\nowner = \"team\"\n";

/// A repository of service-defaults `(name, protocol)`, owner `team`.
fn repo(dir: &Path, entries: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("mesh-gitops.hcl"), SETTINGS).unwrap();
    for (name, protocol) in entries {
        std::fs::write(
            dir.join(format!("{name}.hcl")),
            format!("Kind = \"service-defaults\"\nName = \"{name}\"\nProtocol = \"{protocol}\"\n"),
        )
        .unwrap();
    }
}

struct World {
    server: Serve,
    cwd: tempfile::TempDir,
    _state: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let state = tempfile::tempdir().unwrap();
        let server = Serve::start(state.path(), ServeOpts::default());
        World {
            server,
            cwd: tempfile::tempdir().unwrap(),
            _state: state,
        }
    }

    fn dir(&self) -> std::path::PathBuf {
        self.cwd.path().join("repo")
    }

    fn run(&self, args: &[&str]) -> Run {
        let dir = self.dir();
        let mut all = vec![args[0], dir.to_str().unwrap()];
        all.extend_from_slice(&args[1..]);
        self.server
            .mesh_gitops(&all)
            .current_dir(self.cwd.path())
            .run()
    }

    /// What `consul config write FILE` sends: the whole entry, no CAS.
    fn config_write(&self, entry: Value) {
        let answer = self
            .server
            .client()
            .put(format!("{}/v1/config", self.server.url()))
            .body(entry.to_string())
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(answer, "true");
    }

    /// A GET of the control plane's HTTP API, its JSON when it answered with success.
    fn get(&self, path: &str) -> Option<Value> {
        let r = self
            .server
            .client()
            .get(format!("{}{path}", self.server.url()))
            .send()
            .unwrap();
        r.status().is_success().then(|| r.json().unwrap())
    }

    fn entry(&self, name: &str) -> Option<Value> {
        self.get(&format!("/v1/config/service-defaults/{name}"))
    }

    fn inventory(&self) -> Value {
        self.get("/v1/kv/mesh-gitops/team/inventory?raw")
            .unwrap_or(Value::Null)
    }

    fn put_inventory(&self, v: &Value) {
        let answer = self
            .server
            .client()
            .put(format!(
                "{}/v1/kv/mesh-gitops/team/inventory",
                self.server.url()
            ))
            .body(v.to_string())
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(answer, "true");
    }
}

fn golden(name: &str, actual: &str) {
    assert_golden(&root().join("tests/data/plan").join(name), actual);
}

#[test]
fn an_outside_config_write_is_drift_that_plan_shows_and_apply_restores() {
    let w = World::new();
    repo(&w.dir(), &[("api", "http"), ("web", "http")]);
    w.run(&["apply"]).assert_success();
    assert_eq!(
        w.inventory()["objects"].get("service-defaults/api"),
        Some(&json!({"modify_index": 0}))
    );
    // Someone writes a file of their own over the entry: new fields, new Meta, no mark.
    w.config_write(json!({
        "Kind": "service-defaults", "Name": "api", "Protocol": "grpc",
        "Meta": {"edited-by": "alice"}
    }));
    let plan = w.run(&["plan"]);
    plan.assert_code(2);
    golden("drift.txt", &plan.stdout);
    let json = w.run(&["plan", "--format", "json"]);
    json.assert_code(2);
    let v = json.json();
    assert_eq!(
        (&v["outcome"], &v["exit_code"]),
        (&json!("changes"), &json!(2))
    );
    assert_eq!(
        v["steps"][0]["before"]["Meta"],
        json!({"edited-by": "alice"})
    );
    let applied = w.run(&["apply"]);
    applied.assert_success();
    assert!(
        applied.stdout.contains("~ service-defaults \"api\""),
        "{}",
        applied.stdout
    );
    let api = w.entry("api").unwrap();
    assert_eq!(api["Protocol"], "http");
    assert_eq!(api["Meta"]["mesh-gitops-owner"], "team");
    assert_eq!(api["Meta"]["mesh-gitops-source"], "api.hcl");
    assert!(api["Meta"].get("edited-by").is_none(), "{api}");
    let clean = w.run(&["plan"]);
    clean.assert_success();
    assert!(clean
        .stdout
        .starts_with("No changes. Consul matches the repository."));
    // Later changes in the repository reach it again.
    repo(&w.dir(), &[("api", "grpc"), ("web", "http")]);
    w.run(&["apply"]).assert_success();
    assert_eq!(w.entry("api").unwrap()["Protocol"], "grpc");
}

#[test]
fn another_owners_mark_on_a_recorded_entry_is_a_conflict_and_blocks() {
    let w = World::new();
    repo(&w.dir(), &[("api", "http"), ("web", "http")]);
    w.run(&["apply"]).assert_success();
    w.config_write(json!({
        "Kind": "service-defaults", "Name": "api", "Protocol": "grpc",
        "Meta": {"mesh-gitops-owner": "payments"}
    }));
    // Someone else's entry that was never ours: foreign.
    w.config_write(json!({
        "Kind": "service-defaults", "Name": "db", "Protocol": "tcp",
        "Meta": {"mesh-gitops-owner": "payments"}
    }));
    // And an unowned one that differs.
    w.config_write(json!({"Kind": "service-defaults", "Name": "cache", "Protocol": "tcp"}));
    repo(
        &w.dir(),
        &[
            ("api", "http"),
            ("web", "grpc"),
            ("db", "http"),
            ("cache", "http"),
        ],
    );
    let plan = w.run(&["plan"]);
    plan.assert_code(4);
    golden("blocked.txt", &plan.stdout);
    // --adopt takes the unowned entry, never another owner's.
    let adopting = w.run(&["plan", "--adopt", "--format", "json"]);
    adopting.assert_code(4);
    let v = adopting.json();
    let refused: Vec<(&str, &str)> = v["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap(),
                r["owner"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(refused, [("api", "payments"), ("db", "payments")]);
    let applied = w.run(&["apply", "--adopt"]);
    applied.assert_code(4);
    assert!(
        applied.stdout.contains("Blocked: 2 declared object(s)"),
        "{}",
        applied.stdout
    );
    assert_eq!(
        w.entry("api").unwrap()["Protocol"],
        "grpc",
        "never overwritten"
    );
    assert_eq!(
        w.entry("db").unwrap()["Protocol"],
        "tcp",
        "never overwritten"
    );
    let cache = w.entry("cache").unwrap();
    assert_eq!(
        (&cache["Protocol"], &cache["Meta"]["mesh-gitops-owner"]),
        (&json!("http"), &json!("team"))
    );
    assert_eq!(w.entry("web").unwrap()["Protocol"], "grpc");
}

#[test]
fn adopt_shows_the_fields_it_writes_over_an_unowned_entry() {
    let w = World::new();
    w.config_write(json!({"Kind": "service-defaults", "Name": "api", "Protocol": "grpc"}));
    repo(&w.dir(), &[("api", "http")]);
    let plan = w.run(&["plan"]);
    plan.assert_code(4);
    assert!(
        plan.stdout.contains("pass --adopt to take it over"),
        "{}",
        plan.stdout
    );
    let adopt = w.run(&["plan", "--adopt"]);
    adopt.assert_code(2);
    assert!(
        adopt
            .stdout
            .contains("~ service-defaults \"api\": adopted: differs from the repository")
            && adopt.stdout.contains("~ Protocol: \"grpc\" -> \"http\""),
        "{}",
        adopt.stdout
    );
    w.run(&["apply", "--adopt"]).assert_success();
    assert_eq!(w.entry("api").unwrap()["Protocol"], "http");
    w.run(&["plan"]).assert_success();
}

#[test]
fn max_deletes_refuses_before_writing_and_a_protected_entry_is_never_pruned() {
    let w = World::new();
    repo(
        &w.dir(),
        &[
            ("a", "http"),
            ("b", "http"),
            ("c", "http"),
            ("keep", "http"),
        ],
    );
    std::fs::write(
        w.dir().join("keep.hcl"),
        "Kind = \"service-defaults\"\nName = \"keep\"\nProtocol = \"http\"\nMeta {\n  \"mesh-gitops-prune\" = \"never\"\n}\n",
    )
    .unwrap();
    w.run(&["apply"]).assert_success();
    for f in ["a.hcl", "b.hcl", "keep.hcl"] {
        std::fs::remove_file(w.dir().join(f)).unwrap();
    }
    let refused = w.run(&["apply", "--max-deletes", "1"]);
    refused.assert_code(1);
    assert!(
        refused
            .stderr
            .contains("would delete 2 objects, more than --max-deletes 1"),
        "{}",
        refused.stderr
    );
    assert!(
        w.entry("a").is_some() && w.entry("b").is_some(),
        "nothing was written"
    );
    w.run(&["plan", "--max-deletes", "1"]).assert_code(1);
    let plan = w.run(&["plan", "--max-deletes", "2"]);
    plan.assert_code(2);
    assert!(
        plan.stdout.contains("# service-defaults \"keep\": no longer in the repository, but marked mesh-gitops-prune = \"never\"; it is kept"),
        "{}",
        plan.stdout
    );
    w.run(&["apply", "--max-deletes", "2"]).assert_success();
    assert!(w.entry("a").is_none() && w.entry("b").is_none());
    assert!(w.entry("keep").is_some());
    w.run(&["plan"]).assert_success();
}

#[test]
fn entries_marked_before_the_inventory_listed_them_are_recorded() {
    let w = World::new();
    repo(&w.dir(), &[("api", "http")]);
    w.run(&["apply"]).assert_success();
    // An inventory from before config entries were listed in it.
    w.put_inventory(&json!({"version": 1, "objects": {}}));
    let plan = w.run(&["plan"]);
    plan.assert_code(2);
    assert!(
        plan.stdout.contains("= service-defaults \"api\": carries the owner's mark but is not in the inventory yet; recorded as owned"),
        "{}",
        plan.stdout
    );
    w.run(&["apply"]).assert_success();
    assert!(w.inventory()["objects"]
        .get("service-defaults/api")
        .is_some());
    w.run(&["plan"]).assert_success();
    // From now on an outside write that drops the mark is drift.
    w.config_write(json!({"Kind": "service-defaults", "Name": "api", "Protocol": "tcp"}));
    w.run(&["plan"]).assert_code(2);
}

/// A repository of owner `owner` holding its sources of the shared destination `api`.
fn shared_repo(dir: &Path, owner: &str, sources: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("mesh-gitops.hcl"),
        format!("datacenter = \"dc1\"\nowner = \"{owner}\"\n"),
    )
    .unwrap();
    let file = dir.join("api.hcl");
    if sources.is_empty() {
        let _ = std::fs::remove_file(file);
        return;
    }
    let list: Vec<String> = sources
        .iter()
        .map(|(n, a)| format!("  {{ Name = \"{n}\", Action = \"{a}\" }},\n"))
        .collect();
    std::fs::write(
        file,
        format!(
            "Kind = \"service-intentions\"\nName = \"api\"\nMeta {{\n  \"mesh-gitops-shared\" = \"true\"\n}}\nSources = [\n{}]\n",
            list.concat()
        ),
    )
    .unwrap();
}

#[test]
fn two_owners_share_a_destination_each_owning_its_sources() {
    let w = World::new();
    let (a, b) = (w.cwd.path().join("a"), w.cwd.path().join("b"));
    let run = |dir: &Path, args: &[&str]| -> Run {
        let mut all = vec![args[0], dir.to_str().unwrap()];
        all.extend_from_slice(&args[1..]);
        w.server.mesh_gitops(&all).current_dir(w.cwd.path()).run()
    };
    let intentions = || -> Value {
        w.get("/v1/config/service-intentions/api")
            .unwrap_or(Value::Null)
    };
    let sources = |v: &Value| -> Vec<(String, String)> {
        v["Sources"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        (
                            s["Name"].as_str().unwrap().into(),
                            s["Action"].as_str().unwrap().into(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let pair = |n: &str, a: &str| (n.to_owned(), a.to_owned());
    shared_repo(&a, "frontend", &[("web", "allow")]);
    shared_repo(&b, "batch-team", &[("batch", "deny"), ("report", "allow")]);
    run(&a, &["apply"]).assert_success();
    run(&b, &["apply"]).assert_success();
    let v = intentions();
    assert_eq!(
        sources(&v),
        [
            pair("web", "allow"),
            pair("batch", "deny"),
            pair("report", "allow")
        ]
    );
    assert_eq!(v["Meta"]["mesh-gitops-sources-frontend"], "web");
    assert_eq!(v["Meta"]["mesh-gitops-sources-batch-team"], "batch,report");
    // Each repository is in sync with the merged entry.
    run(&a, &["plan"]).assert_success();
    run(&b, &["plan"]).assert_success();
    // A change by one owner keeps the other's sources, in their order.
    shared_repo(&a, "frontend", &[("web", "deny")]);
    let plan = run(&a, &["plan"]);
    plan.assert_code(2);
    assert!(
        plan.stdout
            .contains("keeps owner \"batch-team\" (batch, report)"),
        "{}",
        plan.stdout
    );
    run(&a, &["apply"]).assert_success();
    assert_eq!(
        sources(&intentions()),
        [
            pair("web", "deny"),
            pair("batch", "deny"),
            pair("report", "allow")
        ]
    );
    // Claiming the other owner's source is blocked.
    shared_repo(&a, "frontend", &[("web", "deny"), ("batch", "allow")]);
    let grab = run(&a, &["plan"]);
    grab.assert_code(4);
    assert!(
        grab.stdout
            .contains("source \"batch\" is owned by \"batch-team\""),
        "{}",
        grab.stdout
    );
    // Pruning removes only the owner's sources; the last one out deletes the entry.
    shared_repo(&a, "frontend", &[]);
    run(&a, &["apply", "--allow-empty"]).assert_success();
    assert_eq!(
        sources(&intentions()),
        [pair("batch", "deny"), pair("report", "allow")]
    );
    let inventory = w.get("/v1/kv/mesh-gitops/frontend/inventory?raw").unwrap();
    assert!(
        inventory["objects"].get("service-intentions/api").is_none(),
        "no longer frontend's: {inventory}"
    );
    shared_repo(&b, "batch-team", &[]);
    run(&b, &["apply", "--allow-empty"]).assert_success();
    assert_eq!(intentions(), Value::Null);
}

#[test]
fn the_shared_destination_example_merges_both_owners_sources() {
    let w = World::new();
    let example = common::example("shared-destination");
    for team in ["frontend", "batch"] {
        let dir = example.join(team);
        w.server
            .mesh_gitops(&["apply", dir.to_str().unwrap()])
            .current_dir(w.cwd.path())
            .run()
            .assert_success();
    }
    let v = w.get("/v1/config/service-intentions/api").unwrap();
    let names: Vec<&str> = v["Sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "batch-worker", "report"]);
    assert_eq!(
        v["Meta"]["mesh-gitops-sources-batch"],
        "batch-worker,report"
    );
    for team in ["frontend", "batch"] {
        let dir = example.join(team);
        w.server
            .mesh_gitops(&["plan", dir.to_str().unwrap()])
            .current_dir(w.cwd.path())
            .run()
            .assert_success();
    }
}

#[test]
fn check_says_a_shared_destination_has_sources_outside_the_repository() {
    let dir = common::example("shared-destination").join("frontend");
    let check =
        common::mesh_gitops(&["check", dir.to_str().unwrap(), "--no-base", "--no-sim"]).run();
    check.assert_success();
    assert!(
        check
            .stdout
            .contains("warning[W1013]: the intentions for \"api\" are shared by owners"),
        "{}",
        check.output()
    );
}
