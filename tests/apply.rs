//! `plan` and `apply` end to end: against the embedded control plane in a state directory, and
//! against a running `mesh-gitops serve` reached with `--consul` (drift, concurrent owners,
//! unowned entries), with the `check` gate and the empty-prune guard.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mesh-gitops"))
        .args(args)
        .current_dir(cwd)
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("CONSUL_HTTP_TOKEN")
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

struct Serve(Child, String);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(state: &Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-gitops"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.split("http://").nth(1).unwrap().trim().to_owned();
    Serve(child, format!("http://{addr}"))
}

#[test]
fn apply_on_a_fresh_machine_uses_the_embedded_control_plane_and_is_idempotent() {
    let cwd = tempfile::tempdir().unwrap();
    let example = root().join("examples/countdash");
    let ex = example.to_str().unwrap();
    let first = run_in(cwd.path(), &["apply", ex]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout(&first).contains("+ service-intentions \"count-api\""),
        "{}",
        stdout(&first)
    );
    assert!(cwd.path().join(".mesh-gitops/state.redb").exists());
    let again = run_in(cwd.path(), &["apply", ex]);
    assert!(
        stdout(&again).contains("Apply complete: 0 change(s)."),
        "{}",
        stdout(&again)
    );
    let plan = run_in(cwd.path(), &["plan", ex]);
    assert_eq!(plan.status.code(), Some(0));
    assert!(stdout(&plan).starts_with("No changes."));
}

#[test]
fn drift_shows_in_the_plan_and_apply_heals_it_without_touching_unowned_entries() {
    let state = tempfile::tempdir().unwrap();
    let server = serve(state.path());
    let http = reqwest::blocking::Client::new();
    // Someone else already manages cassandra-db's defaults by hand.
    let theirs = serde_json::json!({"Kind": "service-defaults", "Name": "cassandra-db", "Protocol": "http2"});
    assert_eq!(
        http.put(format!("{}/v1/config", server.1))
            .body(theirs.to_string())
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "true"
    );
    let cwd = tempfile::tempdir().unwrap();
    let prod = root().join("examples/production");
    let p = prod.to_str().unwrap();
    let plan = run_in(cwd.path(), &["plan", p, "--consul", &server.1]);
    assert_eq!(plan.status.code(), Some(2));
    let text = stdout(&plan);
    assert!(text.contains("! service-defaults \"cassandra-db\": exists, differs from the repository and is not owned by mesh-gitops"), "{text}");
    let apply = run_in(cwd.path(), &["apply", p, "--consul", &server.1]);
    assert_eq!(
        apply.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    let theirs_now: serde_json::Value = http
        .get(format!(
            "{}/v1/config/service-defaults/cassandra-db",
            server.1
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
        .get(format!("{}/v1/config/service-defaults/api", server.1))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(api["Meta"]["mesh-gitops-owner"], "platform");
    assert_eq!(api["Meta"]["mesh-gitops-source"], "config/api.json");
    api["Protocol"] = "grpc".into();
    assert_eq!(
        http.put(format!("{}/v1/config", server.1))
            .body(api.to_string())
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "true"
    );
    let plan = run_in(
        cwd.path(),
        &["plan", p, "--consul", &server.1, "--format", "json"],
    );
    assert_eq!(plan.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
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
    assert_eq!(
        run_in(cwd.path(), &["apply", p, "--consul", &server.1])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run_in(cwd.path(), &["plan", p, "--consul", &server.1])
            .status
            .code(),
        Some(0),
        "healed"
    );
    // Another owner's repository does not prune or take over these entries.
    let k8s = root().join("examples/kubernetes");
    let other = run_in(
        cwd.path(),
        &["plan", k8s.to_str().unwrap(), "--consul", &server.1],
    );
    assert!(
        stdout(&other).contains("owned by \"platform\""),
        "{}",
        stdout(&other)
    );
}

#[test]
fn apply_is_gated_on_check_and_refuses_to_delete_everything() {
    let cwd = tempfile::tempdir().unwrap();
    let repo = cwd.path().join("repo");
    copy_dir(&root().join("examples/dynamic-app"), &repo);
    let r = repo.to_str().unwrap();
    assert_eq!(run_in(cwd.path(), &["apply", r]).status.code(), Some(0));
    std::fs::remove_file(repo.join("intentions/mysql-server.hcl")).unwrap();
    let gated = run_in(cwd.path(), &["apply", r]);
    assert_eq!(gated.status.code(), Some(1));
    let err = String::from_utf8_lossy(&gated.stderr);
    assert!(
        err.contains("error[E1001]") && err.contains("nothing applied: check fails"),
        "{err}"
    );
    // Skipping the gate: the plan would now delete every owned entry, which needs consent too.
    let skipped = run_in(cwd.path(), &["apply", r, "--skip-check"]);
    assert_eq!(skipped.status.code(), Some(1));
    let err = String::from_utf8_lossy(&skipped.stderr);
    assert!(
        err.contains("WARNING: applying although check fails") && err.contains("--allow-empty"),
        "{err}"
    );
    let forced = run_in(cwd.path(), &["apply", r, "--skip-check", "--allow-empty"]);
    assert_eq!(forced.status.code(), Some(0));
    assert!(stdout(&forced).contains("- service-intentions \"mysql-server\""));
}
