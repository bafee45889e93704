//! The example repositories, discovered: every directory under `examples/` with a
//! `mesh-gitops.hcl` (others, like `examples/deploy/`, hold files that are not a repository).

use super::{copy_dir, root, subdirs};
use std::path::{Path, PathBuf};

/// The examples' names, sorted.
pub fn examples() -> Vec<String> {
    subdirs(&root().join("examples"))
        .into_iter()
        .filter(|d| d.join("mesh-gitops.hcl").is_file())
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The directory of the example `name`.
pub fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

/// Copies the example `name` to `to`, so a test can change it.
pub fn copy_example(name: &str, to: &Path) {
    copy_dir(&example(name), to);
}

/// Examples whose `check` fails on purpose, with the reason; every other example passes.
pub const FAILING_ON_PURPOSE: &[(&str, &str)] = &[(
    "web-socat",
    "its intention denies web's own declared upstream socat: the seed scenario's last step \
     shows `check` catching exactly that",
)];

/// The exit code `mesh-gitops check` must give for the example `name`: 3 (fail) for the
/// examples in [`FAILING_ON_PURPOSE`], else 0.
pub fn expected_check_code(name: &str) -> i32 {
    if FAILING_ON_PURPOSE.iter().any(|(n, _)| *n == name) {
        3
    } else {
        0
    }
}
