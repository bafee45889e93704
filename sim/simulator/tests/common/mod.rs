//! Repositories written to a temporary directory and loaded by the real loader.

#![allow(dead_code)]

use mesh_model::DesiredState;
use std::path::Path;

/// Loads one of the repository's examples.
pub fn example(name: &str) -> DesiredState {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    let loaded = mesh_loader::load_dir(&dir, &Default::default());
    assert!(!loaded.has_errors(), "{name}: {:?}", loaded.diagnostics);
    loaded.state
}

/// The examples (directories under `examples/` with a `mesh-gitops.hcl`) that declare a
/// service with a sidecar, or a native one: what the simulator runs. Sorted.
pub fn examples_with_sidecars() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .expect("the examples directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("mesh-gitops.hcl").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|name| example(name).services.iter().any(|s| s.sidecar || s.native))
        .collect();
    names.sort();
    names
}

/// A service definition with upstreams `(destination, local port)`.
pub fn service(name: &str, port: u16, upstreams: &[(&str, u16)]) -> String {
    let ups: Vec<String> = upstreams
        .iter()
        .map(|(d, p)| format!(r#"{{"destination_name": "{d}", "local_bind_port": {p}}}"#))
        .collect();
    format!(
        r#"{{"service": {{"name": "{name}", "port": {port}, "connect": {{"sidecar_service": {{"proxy": {{"upstreams": [{}]}}}}}}}}}}"#,
        ups.join(", ")
    )
}

/// A `service-intentions` entry in JSON: `(source, "allow"|"deny")`.
pub fn intentions(destination: &str, sources: &[(&str, &str)]) -> String {
    let srcs: Vec<String> = sources
        .iter()
        .map(|(s, a)| format!(r#"{{"Name": "{s}", "Action": "{a}"}}"#))
        .collect();
    format!(
        r#"{{"Kind": "service-intentions", "Name": "{destination}", "Sources": [{}]}}"#,
        srcs.join(", ")
    )
}

pub fn settings(default_deny: bool) -> String {
    if default_deny {
        "datacenter = \"dc1\"\nowner = \"test\"\nacl {\n  enabled = true\n  default_policy = \"deny\"\n}\n".into()
    } else {
        "datacenter = \"dc1\"\nowner = \"test\"\n".into()
    }
}

/// Writes `files` (path, contents) and loads them; panics on load errors.
pub fn repo(files: &[(String, String)]) -> DesiredState {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let p = dir.path().join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
    }
    let loaded = mesh_loader::load_dir(dir.path(), &Default::default());
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    loaded.state
}
