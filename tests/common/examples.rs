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

/// The marker an example failing on purpose carries: `why: ...`, then `COMMAND: CODE` for each
/// command that fails on it. The tests and `.ci/run`'s simulation sweep read the same file, so
/// the examples failing on purpose are listed once, beside their files.
pub const FAILS_ON_PURPOSE: &str = "FAILS-ON-PURPOSE";

/// Examples that fail on purpose, with the reason their marker gives; every other example passes.
pub fn failing_on_purpose() -> Vec<(String, String)> {
    examples()
        .into_iter()
        .filter_map(|name| {
            let text = std::fs::read_to_string(example(&name).join(FAILS_ON_PURPOSE)).ok()?;
            let why = marker_field(&text, "why").unwrap_or_default();
            Some((name, why))
        })
        .collect()
}

fn marker_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// The exit code `mesh-gitops COMMAND` (`check` or `simulate`) must give for the example
/// `name`: the code its marker names, else 0.
pub fn expected_code(name: &str, command: &str) -> i32 {
    std::fs::read_to_string(example(name).join(FAILS_ON_PURPOSE))
        .ok()
        .and_then(|text| marker_field(&text, command))
        .map(|code| code.parse().expect("an exit code in the marker"))
        .unwrap_or(0)
}

/// The exit code `mesh-gitops check` must give for the example `name`.
pub fn expected_check_code(name: &str) -> i32 {
    expected_code(name, "check")
}
