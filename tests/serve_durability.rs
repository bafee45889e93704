//! `mesh-gitops serve` keeps every acknowledged write across a SIGKILL: writes, kill -9,
//! restart on the same state directory, and everything is there, the CA root included.

mod common;

use common::serve::{Serve, ServeOpts};

fn start(state: &std::path::Path) -> (Serve, String) {
    let server = Serve::start(state, ServeOpts::default());
    let url = server.url();
    (server, url)
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
    server.proc.child.kill().unwrap();
    server.proc.child.wait().unwrap();

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
    server.proc.child.kill().unwrap();
    server.proc.child.wait().unwrap();
}
