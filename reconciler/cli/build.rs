//! Puts the git revision into the binary for `--version` (see `revision.rs`). A build from a
//! source tarball says `unknown`, unless `MESH_GITOPS_REVISION` gives it.

mod revision {
    include!("revision.rs");
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo"));
    println!("cargo:rerun-if-env-changed=MESH_GITOPS_REVISION");
    println!("cargo:rerun-if-changed=reconciler/cli/revision.rs");
    let rev = match std::env::var("MESH_GITOPS_REVISION") {
        Ok(r) if !r.trim().is_empty() => r.trim().to_owned(),
        _ => {
            for p in revision::watched(&dir) {
                // A path git names but that does not exist yet (no packed-refs) is still
                // watched: cargo reruns when it appears.
                println!("cargo:rerun-if-changed={}", p.display());
            }
            revision::revision(&dir)
        }
    };
    println!("cargo:rustc-env=MESH_GITOPS_REVISION={rev}");
}
