//! Where the tests find what they use besides Rust, installed by this crate's build script
//! (which runs `.ci/setup` when something is missing): Debian's Chromium, and Python's
//! `jsonschema` and py-consul, and npm's `consul`, in the target directory. A test whose tool is missing fails with
//! [`missing`]'s message, which says what the build's installation did.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What the build's installation did (or why it did not), for the tests' messages.
pub const SETUP_NOTE: &str = include_str!(concat!(env!("OUT_DIR"), "/setup.txt"));

/// The directory Python's packages are installed into: `PYTHONPATH` for the tests.
pub fn python_path() -> PathBuf {
    PathBuf::from(env!("MESH_TEST_PYTHONPATH"))
}

/// `python_path()`, after checking that `module` imports from it; else why not.
pub fn python_module(module: &str) -> Result<PathBuf, String> {
    let path = python_path();
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .env("PYTHONPATH", &path)
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        Ok(path)
    } else {
        Err(missing(&format!(
            "Python's {module} is not in {}",
            path.display()
        )))
    }
}

/// The `node_modules` directory the npm packages are installed into (from
/// `test-tools/node/package-lock.json`).
pub fn node_modules() -> PathBuf {
    PathBuf::from(env!("MESH_TEST_NODE_MODULES"))
}

/// `node_modules()`, after checking that Node.js resolves `package` from it; else why not.
pub fn node_module(package: &str) -> Result<PathBuf, String> {
    let dir = node_modules();
    let found = Command::new("node")
        .args([
            "-e",
            &format!("require({:?})", dir.join(package).display().to_string()),
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        Ok(dir)
    } else {
        Err(missing(&format!(
            "npm's {package} is not in {} (or node is not installed)",
            dir.display()
        )))
    }
}

/// Chromium: `MESH_GITOPS_CHROMIUM`, else Debian's `/usr/bin/chromium`; else why not.
pub fn chromium() -> Result<PathBuf, String> {
    let path = std::env::var_os("MESH_GITOPS_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if Path::new(&path).exists() {
        Ok(path)
    } else {
        Err(missing(&format!(
            "{} is missing (point MESH_GITOPS_CHROMIUM at a Chromium or Chrome binary to use another)",
            path.display()
        )))
    }
}

/// A message for a missing tool: what is missing, what the build's installation did, and how to
/// install it by hand.
pub fn missing(what: &str) -> String {
    format!(
        "{what}.\nThe build's installation (mesh-test-tools running .ci/setup): {SETUP_NOTE}\n\
         Install it with `bash .ci/setup` (as root, or with password-less sudo), then run the tests again."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_s_message_names_it_and_the_installation() {
        let m = missing("Python's nothing is not in /x");
        assert!(m.starts_with("Python's nothing is not in /x."), "{m}");
        assert!(
            m.contains(SETUP_NOTE) && m.contains("bash .ci/setup"),
            "{m}"
        );
    }

    #[test]
    fn an_npm_package_that_is_not_there_is_reported_missing() {
        let err = node_module("mesh-test-tools-no-such-package").unwrap_err();
        assert!(
            err.contains("npm's mesh-test-tools-no-such-package"),
            "{err}"
        );
    }

    #[test]
    fn a_module_that_is_not_there_is_reported_missing() {
        let err = python_module("mesh_test_tools_no_such_module").unwrap_err();
        assert!(err.contains("mesh_test_tools_no_such_module"), "{err}");
    }
}
