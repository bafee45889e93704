//! The shape the code keeps: no source file outside tests over 1,000 lines. (Functions over
//! 150 lines are caught by clippy's `too_many_lines`, configured in `clippy.toml`; the few that
//! stay longer say why above an `allow`.)

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 1_000;

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            // Build output, git's files, and test trees are not the code this rule is about.
            if !(name.starts_with('.') || name == "target" || name == "tests" || name == "data") {
                rust_sources(&path, out);
            }
        } else if name.ends_with(".rs") && name != "tests.rs" {
            out.push(path);
        }
    }
}

#[test]
fn no_source_file_outside_tests_is_over_a_thousand_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_sources(root, &mut files);
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("reconciler/cli/src/main.rs")),
        "the walk found the binary's sources"
    );
    let mut long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).ok()?.lines().count();
            (lines > MAX_LINES).then(|| {
                format!(
                    "{} has {lines} lines",
                    f.strip_prefix(root).unwrap_or(f).display()
                )
            })
        })
        .collect();
    long.sort();
    assert!(
        long.is_empty(),
        "split these by responsibility (at most {MAX_LINES} lines a file):\n{}",
        long.join("\n")
    );
}
