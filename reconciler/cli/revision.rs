// The git revision `mesh-gitops --version` prints, found at build time. Included by the build
// script and by the test that checks it, so both run the same code.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What `--version` says when the source has no git metadata (a source tarball) and
/// `MESH_GITOPS_REVISION` is not set.
pub const UNKNOWN: &str = "unknown";

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

/// The short commit id of `dir`'s checkout, or [`UNKNOWN`] outside a git checkout (or without
/// git on the build machine).
pub fn revision(dir: &Path) -> String {
    // Only a repository whose top level is `dir` counts: a source tarball unpacked inside some
    // other repository must not take that repository's commit.
    let top = git(dir, &["rev-parse", "--show-toplevel"]).map(PathBuf::from);
    let same = match (top.and_then(|t| t.canonicalize().ok()), dir.canonicalize()) {
        (Some(t), Ok(d)) => t == d,
        _ => false,
    };
    if !same {
        return UNKNOWN.to_owned();
    }
    git(dir, &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| UNKNOWN.to_owned())
}

/// The files whose change moves HEAD, so the build script reruns when a commit is made.
pub fn watched(dir: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for what in ["HEAD", "packed-refs"] {
        if let Some(p) = git(dir, &["rev-parse", "--git-path", what]) {
            paths.push(dir.join(p));
        }
    }
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        if let Some(p) = git(dir, &["rev-parse", "--git-path", &branch]) {
            paths.push(dir.join(p));
        }
    }
    paths
}
