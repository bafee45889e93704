//! The crate graph is layered: a crate depends only on crates of lower layers (dev-dependencies
//! also on its own layer), and every workspace crate has a layer. Read from `cargo metadata`.

use std::collections::BTreeMap;
use std::process::Command;

/// `(layer, purpose, crates)`, lowest first. A new crate is placed here before it can be built
/// into the workspace; names of crates that do not exist (yet) are allowed.
const LAYERS: &[(u32, &str, &[&str])] = &[
    (
        0,
        "foundations: diagnostics, seeded randomness, the CA, Consul's API objects; what tests use besides Rust",
        &[
            "mesh-diagnostics",
            "mesh-seed",
            "mesh-ca",
            "mesh-wire",
            "mesh-test-tools",
        ],
    ),
    (
        1,
        "syntax and model: parsers to span-keeping trees, the desired state, synthetic repositories",
        &["mesh-syntax", "mesh-model", "mesh-synth"],
    ),
    (
        2,
        "Consul's rules, and Nomad's job files",
        &["mesh-semantics", "mesh-nomad"],
    ),
    (3, "loading: files to the desired state", &["mesh-loader"]),
    (
        4,
        "engines over one state: analysis, planning, the Consul client, the control plane",
        &[
            "mesh-analysis",
            "mesh-plan",
            "mesh-consul",
            "mesh-control-plane",
        ],
    ),
    (
        5,
        "the simulator and the apply engine",
        &["mesh-sim", "mesh-apply"],
    ),
    (6, "the check pipeline and its gate", &["mesh-check"]),
    (
        7,
        "the reconcile loop and the report renderers",
        &["mesh-reconcile", "mesh-report"],
    ),
    (8, "the binary", &["mesh-gitops"]),
];

fn layer_of(name: &str) -> Option<u32> {
    LAYERS
        .iter()
        .find(|(_, _, crates)| crates.contains(&name))
        .map(|(layer, _, _)| *layer)
}

/// The workspace's crates and, for each, its dependencies on other workspace crates as
/// `(dependency, kind)`, with kind `normal`, `build` or `dev`.
fn workspace_graph() -> BTreeMap<String, Vec<(String, String)>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("{cargo} metadata: {e}"));
    assert!(
        out.status.success(),
        "{cargo} metadata failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let packages: Vec<&serde_json::Value> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| members.contains(&p["id"].as_str().unwrap()))
        .collect();
    let names: Vec<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| names.contains(&d["name"].as_str().unwrap()))
                .map(|d| {
                    (
                        d["name"].as_str().unwrap().to_owned(),
                        d["kind"].as_str().unwrap_or("normal").to_owned(),
                    )
                })
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

#[test]
fn every_workspace_crate_has_a_layer_and_depends_only_downwards() {
    let graph = workspace_graph();
    assert!(graph.contains_key("mesh-gitops"), "{graph:?}");
    let mut problems = Vec::new();
    for (name, deps) in &graph {
        let Some(layer) = layer_of(name) else {
            problems.push(format!(
                "{name} has no layer: add it to LAYERS in tests/layers.rs"
            ));
            continue;
        };
        for (dep, kind) in deps {
            let Some(dep_layer) = layer_of(dep) else {
                // Reported above, as a crate of its own.
                continue;
            };
            // A dev-dependency is only for tests, which may use a crate beside them.
            let allowed = if kind == "dev" {
                dep_layer <= layer
            } else {
                dep_layer < layer
            };
            if !allowed {
                problems.push(format!(
                    "{name} (layer {layer}) has a {kind} dependency on {dep} (layer {dep_layer})"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_layers_are_numbered_in_order_and_name_each_crate_once() {
    let mut seen = Vec::new();
    for (i, (layer, purpose, crates)) in LAYERS.iter().enumerate() {
        assert_eq!(*layer as usize, i, "{purpose}");
        assert!(!purpose.is_empty() && !crates.is_empty(), "layer {layer}");
        for c in *crates {
            assert!(!seen.contains(c), "{c} is in two layers");
            seen.push(*c);
        }
    }
}
