//! Installs what a few tests use besides Rust, when it is missing, by running the
//! repository's `.ci/setup` (apt-get for Chromium, pip and npm into the target directory for
//! Python's and Node's packages). Only tests depend on this crate, so `cargo test` installs them
//! before any test runs, and `cargo build`/`cargo run` never do. It never fails the build: a
//! failed installation is a `cargo:warning`, and the tests needing the tool fail naming the cause.
//!
//! Once everything is present the script does nothing: it reruns only when `.ci/setup`, the
//! tools' files or the environment variables below change (a missing file always reruns it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where apt installs Debian's Chromium.
const CHROMIUM: &str = "/usr/bin/chromium";
/// The Python modules the tests import.
const PYTHON_MODULES: &[&str] = &["jsonschema", "consul"];
/// The npm packages the tests require (pinned in `node/package-lock.json`).
const NODE_MODULES: &[&str] = &["consul"];
/// The programs the GitHub Action's scripts use, where Debian's packages put them.
const PROGRAMS: &[&str] = &["/usr/bin/curl", "/usr/bin/jq"];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let setup = manifest.join("../.ci/setup");
    let deps = target_dir(&out).join("test-deps");
    let python = deps.join("python");
    let node = deps.join("node");

    println!("cargo:rerun-if-changed={}", setup.display());
    println!("cargo:rerun-if-changed={CHROMIUM}");
    for p in PROGRAMS {
        println!("cargo:rerun-if-changed={p}");
    }
    for m in PYTHON_MODULES {
        println!(
            "cargo:rerun-if-changed={}",
            python.join(m).join("__init__.py").display()
        );
    }
    println!(
        "cargo:rerun-if-changed={}",
        node.join("node_modules/consul/package.json").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        manifest.join("node/package-lock.json").display()
    );
    for v in [
        "MESH_GITOPS_CHROMIUM",
        "MESH_GITOPS_NO_SETUP",
        "CARGO_TARGET_DIR",
    ] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    println!("cargo:rustc-env=MESH_TEST_PYTHONPATH={}", python.display());
    println!(
        "cargo:rustc-env=MESH_TEST_NODE_MODULES={}",
        node.join("node_modules").display()
    );

    let missing = missing(&python, &node);
    let note = if missing.is_empty() {
        "everything was present".to_owned()
    } else if std::env::var_os("MESH_GITOPS_NO_SETUP").is_some() {
        format!(
            "{} missing; not installed because MESH_GITOPS_NO_SETUP is set",
            missing.join(", ")
        )
    } else {
        install(&setup, &deps, &missing)
    };
    std::fs::write(out.join("setup.txt"), note).expect("OUT_DIR is writable");
}

/// The target directory: the nearest ancestor of OUT_DIR holding cargo's `CACHEDIR.TAG`
/// (so `CARGO_TARGET_DIR` and `build.target-dir` are both followed).
fn target_dir(out: &Path) -> PathBuf {
    out.ancestors()
        .find(|d| d.join("CACHEDIR.TAG").is_file())
        // <target>/<profile>/build/<crate>-<hash>/out
        .or_else(|| out.ancestors().nth(4))
        .unwrap_or(out)
        .to_path_buf()
}

/// What is missing, by name.
fn missing(python: &Path, node: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if std::env::var_os("MESH_GITOPS_CHROMIUM").is_none() && !Path::new(CHROMIUM).exists() {
        missing.push(format!("Chromium ({CHROMIUM})"));
    }
    for p in PROGRAMS {
        if !Path::new(p).exists() {
            missing.push((*p).to_owned());
        }
    }
    for m in PYTHON_MODULES {
        let found = Command::new("python3")
            .args(["-c", &format!("import {m}")])
            .env("PYTHONPATH", python)
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            missing.push(format!("Python's {m} (in {})", python.display()));
        }
    }
    for m in NODE_MODULES {
        if !node
            .join("node_modules")
            .join(m)
            .join("package.json")
            .is_file()
        {
            missing.push(format!("npm's {m} (in {})", node.display()));
        }
    }
    missing
}

/// Runs `.ci/setup`; returns what happened, for the tests' messages.
fn install(setup: &Path, deps: &Path, missing: &[String]) -> String {
    let result = Command::new("bash")
        .arg(setup)
        .env("MESH_TEST_DEPS", deps)
        // Never wait for a password: without root and password-less sudo, apt is skipped.
        .env("MESH_SETUP_SUDO", "sudo -n")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output();
    match result {
        Ok(o) if o.status.success() => format!("installed by .ci/setup: {}", missing.join(", ")),
        Ok(o) => {
            let stderr = String::from_utf8_lossy(&o.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            warn(&format!(
                "bash .ci/setup failed ({}) installing {}; the tests needing them will fail. Its last lines:",
                o.status,
                missing.join(", ")
            ));
            for l in &tail {
                warn(l);
            }
            format!(
                "bash .ci/setup failed ({}) while installing {}:\n{}",
                o.status,
                missing.join(", "),
                tail.join("\n")
            )
        }
        Err(e) => {
            warn(&format!("cannot run bash .ci/setup: {e}"));
            format!("cannot run bash .ci/setup: {e}")
        }
    }
}

fn warn(line: &str) {
    println!("cargo:warning={line}");
}
