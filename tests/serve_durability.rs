//! `mesh-gitops serve` keeps every acknowledged write across a SIGKILL: writes, kill -9,
//! restart on the same state directory, and everything is there, the CA root included.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn start(state: &std::path::Path) -> (Child, String) {
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
        .expect("serve starts");
    let stderr = child.stderr.take().unwrap();
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim()
        .to_owned();
    (child, format!("http://{addr}"))
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start(dir.path());
    let client = reqwest::blocking::Client::new();
    let roots: serde_json::Value = client
        .get(format!("{base}/v1/connect/ca/roots"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let n = 40;
    for i in 0..n {
        let body = serde_json::json!({"Kind": "service-defaults", "Name": format!("svc-{i}"), "Protocol": "http"});
        let ok = client
            .put(format!("{base}/v1/config"))
            .body(body.to_string())
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(ok, "true");
        let ok = client
            .put(format!("{base}/v1/kv/state/{i}"))
            .body(format!("v{i}"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(ok, "true");
    }
    // SIGKILL: no chance to flush anything.
    server.kill().unwrap();
    server.wait().unwrap();

    let (mut server, base) = start(dir.path());
    let list: serde_json::Value = client
        .get(format!("{base}/v1/config/service-defaults"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), n);
    for i in 0..n {
        let v = client
            .get(format!("{base}/v1/kv/state/{i}?raw"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(v, format!("v{i}"));
    }
    let after: serde_json::Value = client
        .get(format!("{base}/v1/connect/ca/roots"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        after["TrustDomain"], roots["TrustDomain"],
        "the CA and cluster id persist"
    );
    assert_eq!(after["ActiveRootID"], roots["ActiveRootID"]);
    // New writes continue from the persisted index.
    let e: serde_json::Value = client
        .get(format!("{base}/v1/config/service-defaults/svc-0"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let body = serde_json::json!({"Kind": "service-defaults", "Name": "svc-0", "Protocol": "grpc"});
    let ok = client
        .put(format!("{base}/v1/config?cas={}", e["ModifyIndex"]))
        .body(body.to_string())
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(ok, "true");
    let e2: serde_json::Value = client
        .get(format!("{base}/v1/config/service-defaults/svc-0"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(e2["ModifyIndex"].as_u64() > e["ModifyIndex"].as_u64());
    server.kill().unwrap();
    server.wait().unwrap();
}
