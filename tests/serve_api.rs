//! `mesh-gitops serve` speaks Consul's HTTP API as Consul's clients expect it: a table of
//! requests and Consul's answers (status, content type, headers, body) taken from Consul's API
//! documentation and its HTTP layer (`agent/http.go`), and two existing clients, unchanged,
//! driving the binary over HTTP: the npm `consul` package and py-consul (installed by the test
//! set-up, `mesh-test-tools`; nothing is downloaded here).

mod common;

use common::serve::{Serve, ServeOpts};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// `expected` is contained in `actual` (objects: at least these keys, recursively; arrays: the
/// same length, element by element).
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|x| contains(x, v))),
        (Value::Array(a), Value::Array(e)) => {
            a.len() == e.len() && a.iter().zip(e).all(|(x, y)| contains(x, y))
        }
        _ => actual == expected,
    }
}

/// The pairs, in order (later ones read what earlier ones wrote): `tests/data/serve/api_pairs.json`,
/// from Consul's API documentation (`website/content/api-docs/*.mdx`: sample requests and
/// responses; each pair names its page in `doc`) and the HTTP layer's answers for malformed
/// requests (`agent/http.go`). Each has the request (`method`, `path`, `body`) and the answer:
/// `status`, `content_type` (a prefix: Go answers errors as `text/plain; charset=utf-8`),
/// `query_meta` (the query headers are present, as on every read) and the body: `exact`,
/// `prefix`, or `json` (contained in the answer).
fn pairs() -> Vec<Value> {
    let path = common::root().join("tests/data/serve/api_pairs.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// What is wrong with the answer to `p`, if anything.
fn check_pair(client: &reqwest::blocking::Client, base: &str, p: &Value) -> Vec<String> {
    let s = |k: &str| p[k].as_str().unwrap_or("");
    let method = reqwest::Method::from_bytes(s("method").as_bytes()).unwrap();
    let r = client
        .request(method, format!("{base}{}", s("path")))
        .body(s("body").to_owned())
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().unwrap();
    let what = format!("{} {} -> {status} {text:?}", s("method"), s("path"));
    if Some(u64::from(status)) != p["status"].as_u64() {
        return vec![format!("{what}: status, wanted {}", p["status"])];
    }
    let mut failures = Vec::new();
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with(s("content_type")) {
        failures.push(format!(
            "{what}: content-type {ct:?}, wanted {}",
            s("content_type")
        ));
    }
    if p["query_meta"].as_bool() == Some(true) {
        for h in [
            "X-Consul-Index",
            "X-Consul-KnownLeader",
            "X-Consul-LastContact",
            "X-Consul-Effective-Consistency",
        ] {
            if !headers.contains_key(h) {
                failures.push(format!("{what}: no {h}"));
            }
        }
    }
    let body_ok = if let Some(e) = p["exact"].as_str() {
        text == e
    } else if let Some(e) = p["prefix"].as_str() {
        text.starts_with(e)
    } else {
        serde_json::from_str::<Value>(&text).is_ok_and(|v| contains(&v, &p["json"]))
    };
    if !body_ok {
        failures.push(format!("{what}: body"));
    }
    failures
}

#[test]
fn requests_get_consul_s_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(dir.path(), ServeOpts::default());
    let client = server.client();
    let base = server.url();
    let pairs = pairs();
    assert!(pairs.len() > 50, "the table is read");
    let failures: Vec<String> = pairs
        .iter()
        .flat_map(|p| check_pair(&client, &base, p))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn reads_say_how_consistent_they_were_and_405_lists_the_methods() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(dir.path(), ServeOpts::default());
    let client = server.client();
    let base = server.url();
    for (q, level) in [
        ("", "leader"),
        ("?stale", "stale"),
        ("?consistent", "consistent"),
    ] {
        let r = client
            .get(format!("{base}/v1/catalog/services{q}"))
            .send()
            .unwrap();
        assert_eq!(r.headers()["X-Consul-Effective-Consistency"], level, "{q}");
    }
    let r = client
        .delete(format!("{base}/v1/status/leader"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let allow = r.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET"), "{allow}");
}

#[test]
fn with_acls_every_answer_names_the_default_policy() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(
        dir.path(),
        ServeOpts {
            bootstrap_token: true,
            extra: vec!["--acl-default-policy".into(), "deny".into()],
            ..ServeOpts::default()
        },
    );
    let r = reqwest::blocking::get(format!("{}/v1/kv/x", server.url())).unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(r.headers()["X-Consul-Default-ACL-Policy"], "deny");
}

/// Runs `program` with `args` and checks it printed "all checks passed".
fn run_client(mut cmd: Command, name: &str) {
    let out = cmd.output().expect("the client runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/serve_clients")
        .join(name)
}

#[test]
fn the_npm_consul_client_works_unchanged() {
    let modules = mesh_test_tools::node_module("consul").unwrap_or_else(|why| panic!("{why}"));
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(dir.path(), ServeOpts::default());
    let (host, port) = server.proc.addr.rsplit_once(':').unwrap();
    let mut cmd = Command::new("node");
    cmd.arg(script("npm_consul.js"))
        .arg(&modules)
        .arg(host)
        .arg(port);
    run_client(cmd, "the npm consul client");
}

#[test]
fn py_consul_reads_the_agent_catalog_and_health_families() {
    let lib = mesh_test_tools::python_module("consul").unwrap_or_else(|why| panic!("{why}"));
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(dir.path(), ServeOpts::default());
    let (host, port) = server.proc.addr.rsplit_once(':').unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(script("py_consul_families.py"))
        .arg(host)
        .arg(port)
        .env("PYTHONPATH", lib);
    run_client(cmd, "py-consul");
}
