//! `mesh-gitops serve` speaks Consul's HTTP API as Consul's clients expect it: a table of
//! requests and Consul's answers (status, content type, headers, body) taken from Consul's API
//! documentation and its HTTP layer (`agent/http.go`), and two existing clients, unchanged,
//! driving the binary over HTTP: the npm `consul` package and py-consul (installed by the test
//! set-up, `mesh-test-tools`; nothing is downloaded here).

mod common;

use common::serve::{Serve, ServeOpts};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

/// What an answer's body must be.
enum Body {
    /// Exactly these bytes.
    Exact(&'static str),
    /// JSON containing this value (objects: at least these keys, recursively; arrays: the same
    /// length, element by element).
    Json(Value),
    /// Text starting with this.
    Prefix(&'static str),
}

/// One request and Consul's answer to it.
struct Pair {
    method: &'static str,
    path: &'static str,
    body: &'static str,
    status: u16,
    /// `application/json` or `text/plain` (Go's `text/plain; charset=utf-8` for errors).
    content_type: &'static str,
    /// Whether the query headers (`X-Consul-Index`, ...) are present: on every read.
    query_meta: bool,
    expect: Body,
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain";

fn pair(
    method: &'static str,
    path: &'static str,
    body: &'static str,
    status: u16,
    content_type: &'static str,
    query_meta: bool,
    expect: Body,
) -> Pair {
    Pair {
        method,
        path,
        body,
        status,
        content_type,
        query_meta,
        expect,
    }
}

/// `expected` is contained in `actual`.
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

/// The pairs, in order (later ones read what earlier ones wrote). From Consul's API
/// documentation (`website/content/api-docs/*.mdx`: sample requests and responses) and the HTTP
/// layer's answers for malformed requests (`agent/http.go`).
fn pairs() -> Vec<Pair> {
    use Body::{Exact, Json, Prefix};
    vec![
        // kv.mdx: create/update answers `true`, as JSON.
        pair(
            "PUT",
            "/v1/kv/my-key",
            "data",
            200,
            JSON,
            false,
            Exact("true"),
        ),
        pair(
            "PUT",
            "/v1/kv/my-key?flags=42",
            "data",
            200,
            JSON,
            false,
            Exact("true"),
        ),
        pair(
            "GET",
            "/v1/kv/my-key",
            "",
            200,
            JSON,
            true,
            Json(json!([
                {"LockIndex": 0, "Key": "my-key", "Flags": 42, "Value": "ZGF0YQ=="}
            ])),
        ),
        pair("GET", "/v1/kv/my-key?raw", "", 200, "", true, Exact("data")),
        pair("PUT", "/v1/kv/web/a", "1", 200, JSON, false, Exact("true")),
        pair(
            "PUT",
            "/v1/kv/web/sub/b",
            "2",
            200,
            JSON,
            false,
            Exact("true"),
        ),
        pair(
            "GET",
            "/v1/kv/web/?keys&separator=/",
            "",
            200,
            JSON,
            true,
            Json(json!(["web/a", "web/sub/"])),
        ),
        pair("GET", "/v1/kv/missing", "", 404, "", true, Exact("")),
        pair(
            "PUT",
            "/v1/kv/my-key?cas=1",
            "x",
            200,
            JSON,
            false,
            Exact("false"),
        ),
        pair(
            "DELETE",
            "/v1/kv/my-key?cas=1",
            "",
            200,
            JSON,
            false,
            Exact("false"),
        ),
        pair(
            "PUT",
            "/v1/kv/my-key?cas=nope",
            "x",
            500,
            TEXT,
            false,
            Exact("strconv.ParseUint: parsing \"nope\": invalid syntax"),
        ),
        // http.go: the conventions every endpoint shares.
        pair(
            "GET",
            "/v1/kv/my-key?stale&consistent",
            "",
            400,
            TEXT,
            false,
            Exact("Cannot specify ?stale with ?consistent, conflicting semantics."),
        ),
        pair(
            "GET",
            "/v1/kv/my-key?dc=dc2",
            "",
            500,
            TEXT,
            false,
            Exact("No path to datacenter"),
        ),
        pair(
            "GET",
            "/v1/kv/my-key?dc=dc1",
            "",
            200,
            JSON,
            true,
            Json(json!([{"Key": "my-key"}])),
        ),
        pair(
            "GET",
            "/v1/kv/my-key?index=x",
            "",
            400,
            TEXT,
            false,
            Exact("Invalid index"),
        ),
        pair(
            "GET",
            "/v1/nope",
            "",
            404,
            TEXT,
            false,
            Exact("Invalid URL path: not a recognized HTTP API endpoint\n"),
        ),
        pair(
            "POST",
            "/v1/status/leader",
            "",
            405,
            TEXT,
            false,
            Exact("method POST not allowed"),
        ),
        pair(
            "GET",
            "/v1/catalog/datacenters?pretty",
            "",
            200,
            JSON,
            false,
            Exact("[\n    \"dc1\"\n]\n"),
        ),
        // agent/service.mdx, agent/check.mdx.
        pair(
            "PUT",
            "/v1/agent/service/register",
            r#"{"Name":"redis","ID":"redis1","Tags":["primary","v1"],"Port":8000,"Meta":{"redis_version":"4.0"},"Check":{"TTL":"15s"}}"#,
            200,
            "",
            false,
            Exact(""),
        ),
        pair(
            "GET",
            "/v1/agent/services",
            "",
            200,
            JSON,
            false,
            Json(json!({
                "redis1": {"ID": "redis1", "Service": "redis", "Tags": ["primary", "v1"], "Meta": {"redis_version": "4.0"}, "Port": 8000, "Address": "", "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": false}
            })),
        ),
        pair(
            "GET",
            "/v1/agent/services?filter=Meta.redis_version%20%3D%3D%20%225.0%22",
            "",
            200,
            JSON,
            false,
            Json(json!({})),
        ),
        pair(
            "GET",
            "/v1/agent/service/redis1",
            "",
            200,
            JSON,
            false,
            Json(json!({"ID": "redis1", "Service": "redis", "Port": 8000})),
        ),
        pair(
            "GET",
            "/v1/agent/service/nope",
            "",
            404,
            TEXT,
            false,
            Exact("unknown service ID: nope"),
        ),
        pair(
            "GET",
            "/v1/agent/checks",
            "",
            200,
            JSON,
            false,
            Json(json!({
                "service:redis1": {"CheckID": "service:redis1", "Status": "critical", "ServiceID": "redis1", "ServiceName": "redis", "Type": "ttl"}
            })),
        ),
        pair(
            "PUT",
            "/v1/agent/check/pass/service:redis1?note=ok",
            "",
            200,
            "",
            false,
            Exact(""),
        ),
        pair(
            "PUT",
            "/v1/agent/check/pass/nope",
            "",
            404,
            TEXT,
            false,
            Prefix("Unknown check ID \"nope\""),
        ),
        pair(
            "PUT",
            "/v1/agent/check/register",
            r#"{"Notes":"no name"}"#,
            400,
            TEXT,
            false,
            Exact("Missing check name"),
        ),
        pair(
            "PUT",
            "/v1/agent/check/update/service:redis1",
            r#"{"Status":"ok"}"#,
            400,
            TEXT,
            false,
            Exact("Invalid check status: 'ok'"),
        ),
        pair(
            "PUT",
            "/v1/agent/service/maintenance/redis1",
            "",
            400,
            TEXT,
            false,
            Exact("Missing value for enable"),
        ),
        pair(
            "PUT",
            "/v1/agent/service/maintenance/redis1?enable=maybe",
            "",
            400,
            TEXT,
            false,
            Exact("Invalid value for enable: \"maybe\""),
        ),
        pair(
            "PUT",
            "/v1/agent/service/maintenance/nope?enable=true",
            "",
            404,
            TEXT,
            false,
            Exact("No service registered with ID \"nope\""),
        ),
        // health.mdx.
        pair(
            "GET",
            "/v1/health/service/redis?passing",
            "",
            200,
            JSON,
            true,
            Json(json!([
                {"Service": {"ID": "redis1", "Service": "redis"}, "Checks": [
                    {"CheckID": "serfHealth", "Status": "passing"},
                    {"CheckID": "service:redis1", "Status": "passing", "Output": "ok"}
                ]}
            ])),
        ),
        pair(
            "PUT",
            "/v1/agent/maintenance?enable=true&reason=patching",
            "",
            200,
            "",
            false,
            Exact(""),
        ),
        pair(
            "GET",
            "/v1/health/service/redis?passing=1",
            "",
            200,
            JSON,
            true,
            Json(json!([])),
        ),
        pair(
            "GET",
            "/v1/health/state/critical",
            "",
            200,
            JSON,
            true,
            Json(json!([
                {"CheckID": "_node_maintenance", "Name": "Node Maintenance Mode", "Status": "critical", "Notes": "patching", "ServiceID": ""}
            ])),
        ),
        pair(
            "PUT",
            "/v1/agent/maintenance?enable=false",
            "",
            200,
            "",
            false,
            Exact(""),
        ),
        pair(
            "GET",
            "/v1/health/state/bogus",
            "",
            400,
            TEXT,
            false,
            Prefix("Invalid check state"),
        ),
        pair(
            "GET",
            "/v1/health/checks/redis",
            "",
            200,
            JSON,
            true,
            Json(json!([{"CheckID": "service:redis1"}])),
        ),
        pair(
            "GET",
            "/v1/health/service/redis?filter=Service.Port%20%3D%3D",
            "",
            500,
            TEXT,
            false,
            Prefix("Failed to create boolean expression evaluator: "),
        ),
        pair(
            "GET",
            "/v1/health/service/redis?filter=Nope%20%3D%3D%201",
            "",
            500,
            TEXT,
            false,
            Exact("Failed to create boolean expression evaluator: Selector \"Nope\" is not valid"),
        ),
        // catalog.mdx.
        pair(
            "GET",
            "/v1/catalog/datacenters",
            "",
            200,
            JSON,
            false,
            Json(json!(["dc1"])),
        ),
        pair(
            "GET",
            "/v1/catalog/service/redis?tag=v1",
            "",
            200,
            JSON,
            true,
            Json(json!([
                {"ServiceID": "redis1", "ServiceName": "redis", "ServicePort": 8000, "ServiceTags": ["primary", "v1"], "Datacenter": "dc1"}
            ])),
        ),
        pair(
            "GET",
            "/v1/catalog/service/redis?tag=v2",
            "",
            200,
            JSON,
            true,
            Json(json!([])),
        ),
        pair(
            "GET",
            "/v1/catalog/services",
            "",
            200,
            JSON,
            true,
            Json(json!({"redis": ["primary", "v1"]})),
        ),
        pair(
            "GET",
            "/v1/catalog/node/missing",
            "",
            200,
            JSON,
            true,
            Exact("null"),
        ),
        pair(
            "GET",
            "/v1/catalog/nodes?filter=Node%20%3D%3D%20nope",
            "",
            200,
            JSON,
            true,
            Json(json!([])),
        ),
        // txn.mdx: 200 with the results, 409 with the errors and nothing written.
        pair(
            "PUT",
            "/v1/txn",
            r#"[{"KV":{"Verb":"set","Key":"t/a","Value":"YQ=="}},{"KV":{"Verb":"get","Key":"web/a"}}]"#,
            200,
            JSON,
            false,
            Json(json!({
                "Results": [{"KV": {"Key": "t/a", "Value": null}}, {"KV": {"Key": "web/a", "Value": "MQ=="}}],
                "Errors": null
            })),
        ),
        pair(
            "PUT",
            "/v1/txn",
            r#"[{"KV":{"Verb":"set","Key":"t/b","Value":"YQ=="}},{"KV":{"Verb":"cas","Key":"t/a","Index":1,"Value":"Yg=="}}]"#,
            409,
            JSON,
            false,
            Json(json!({
                "Results": null,
                "Errors": [{"OpIndex": 1, "What": "failed to set key \"t/a\", index is stale"}]
            })),
        ),
        pair("GET", "/v1/kv/t/b", "", 404, "", true, Exact("")),
        pair(
            "PUT",
            "/v1/txn",
            "not json",
            400,
            TEXT,
            false,
            Prefix("Failed to parse body: "),
        ),
        // session.mdx.
        pair(
            "PUT",
            "/v1/session/create",
            r#"{"TTL":"5s"}"#,
            400,
            TEXT,
            false,
            Exact("Invalid Session TTL '5s': must be between 10s and 24h0m0s"),
        ),
        pair(
            "PUT",
            "/v1/session/create",
            r#"{"Behavior":"explode"}"#,
            500,
            TEXT,
            false,
            Exact("Invalid Behavior setting \"explode\""),
        ),
        // status.mdx.
        pair(
            "GET",
            "/v1/status/leader",
            "",
            200,
            JSON,
            false,
            Json(json!("127.0.0.1:8300")),
        ),
        pair(
            "GET",
            "/v1/status/peers",
            "",
            200,
            JSON,
            false,
            Json(json!(["127.0.0.1:8300"])),
        ),
        pair(
            "PUT",
            "/v1/agent/service/deregister/redis1",
            "",
            200,
            "",
            false,
            Exact(""),
        ),
        pair(
            "GET",
            "/v1/agent/checks",
            "",
            200,
            JSON,
            false,
            Json(json!({})),
        ),
    ]
}

#[test]
fn requests_get_consul_s_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(dir.path(), ServeOpts::default());
    let client = server.client();
    let base = server.url();
    let mut failures = Vec::new();
    for p in pairs() {
        let method = reqwest::Method::from_bytes(p.method.as_bytes()).unwrap();
        let r = client
            .request(method, format!("{base}{}", p.path))
            .body(p.body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().unwrap();
        let what = format!("{} {} -> {status} {text:?}", p.method, p.path);
        if status != p.status {
            failures.push(format!("{what}: status, wanted {}", p.status));
            continue;
        }
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !p.content_type.is_empty() && !ct.starts_with(p.content_type) {
            failures.push(format!(
                "{what}: content-type {ct:?}, wanted {}",
                p.content_type
            ));
        }
        if p.query_meta {
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
        let ok = match &p.expect {
            Body::Exact(e) => text == *e,
            Body::Prefix(e) => text.starts_with(e),
            Body::Json(e) => serde_json::from_str::<Value>(&text).is_ok_and(|v| contains(&v, e)),
        };
        if !ok {
            failures.push(format!("{what}: body"));
        }
    }
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
