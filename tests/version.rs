//! `mesh-gitops --version`: the package's version and the git revision it was built from, or
//! `unknown` for a build from a source tarball (no `.git`).

mod common;

#[allow(dead_code)]
mod revision {
    include!("../reconciler/cli/revision.rs");
}

use common::git::Repo;
use common::{mesh_gitops, root};

#[test]
fn version_names_the_package_version_and_the_revision_built() {
    let out = mesh_gitops(&["--version"]).run();
    out.assert_success();
    let expected = format!(
        "mesh-gitops {} (revision {})\n",
        env!("CARGO_PKG_VERSION"),
        std::env::var("MESH_GITOPS_REVISION").unwrap_or_else(|_| revision::revision(&root()))
    );
    assert_eq!(out.stdout, expected);
}

#[test]
fn the_revision_is_the_checkout_head_and_unknown_without_git() {
    let dir = tempfile::tempdir().unwrap();
    // A source tarball: no git metadata.
    let tarball = dir.path().join("mesh-gitops-0.1.0");
    std::fs::create_dir_all(&tarball).unwrap();
    assert_eq!(revision::revision(&tarball), revision::UNKNOWN);

    let repo = Repo::init(&dir.path().join("checkout"));
    repo.write("Cargo.toml", "[package]\n");
    let head = repo.commit("first").to_string();
    assert_eq!(revision::revision(&repo.dir), head[..12]);
    // A tarball unpacked inside some other checkout does not take that checkout's revision.
    let inner = repo.dir.join("vendor/mesh-gitops");
    std::fs::create_dir_all(&inner).unwrap();
    assert_eq!(revision::revision(&inner), revision::UNKNOWN);
}
