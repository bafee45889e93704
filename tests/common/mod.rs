//! What the end-to-end tests share: running the binary, golden files, a running `serve`, git
//! repositories made with git2, and the examples.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code, unused_imports)]

pub mod current_consul;
pub mod examples;
pub mod git;
pub mod golden;
pub mod live;
pub mod run;
pub mod serve;

pub use examples::{copy_example, example, examples};
pub use golden::{assert_golden, golden_mismatch};
pub use run::{mesh_gitops, Run};

use std::path::{Path, PathBuf};

/// The project's root (examples, test data).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies a directory tree, so a test can change an example without touching it.
pub fn copy_dir(from: &Path, to: &Path) {
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

/// The subdirectories of `dir`, sorted.
pub fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}
