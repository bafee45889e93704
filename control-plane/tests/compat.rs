//! An existing Consul client, py-consul from PyPI (not written here), works against the
//! embedded control plane unchanged: config entries with CAS, intentions, KV, sessions, the CA
//! and ACL. The test build installs the client (`mesh-test-tools` runs `.ci/setup`); the test
//! installs nothing.

use std::path::PathBuf;
use std::process::Command;

/// Where the test build installed py-consul (`mesh-test-tools` runs `.ci/setup`).
fn py_consul() -> PathBuf {
    mesh_test_tools::python_module("consul").unwrap_or_else(|why| panic!("{why}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn py_consul_drives_the_control_plane() {
    let lib = py_consul();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let opts = mesh_control_plane::ServerOptions {
        state_dir: Some(dir.path().join("state")),
        listen: "127.0.0.1:0".parse().unwrap(),
        acl_default_allow: Some(false),
        bootstrap_token_file: Some(token_file.clone()),
        ..Default::default()
    };
    let bound = mesh_control_plane::bind(&opts).await.unwrap();
    let addr = bound.addr;
    tokio::spawn(bound.serve(std::future::pending()));
    let token = std::fs::read_to_string(&token_file).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat/py_consul_client.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .arg(token)
            .env("PYTHONPATH", lib)
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "py-consul failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"));
}
