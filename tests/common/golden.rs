//! Golden files: the exact text users see, pinned. `UPDATE_GOLDEN=1` rewrites them instead of
//! comparing; the diff is then reviewed like any other change.

use std::path::Path;

/// Compares `actual` with the file at `path`, or rewrites the file under `UPDATE_GOLDEN=1`.
#[track_caller]
pub fn assert_golden(path: &Path, actual: &str) {
    if let Some(failure) = golden_mismatch(path, actual) {
        panic!("{failure}");
    }
}

/// As [`assert_golden`], for tests that collect every mismatch of a corpus before failing:
/// `None` when the file matches (or was rewritten), else a readable diff.
pub fn golden_mismatch(path: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the golden file's directory");
        }
        std::fs::write(path, actual).expect("write the golden file");
        return None;
    }
    // Each test file is a crate named after it, so this names the command that regenerates.
    let hint = format!(
        "regenerate with `UPDATE_GOLDEN=1 cargo test --test {}` and review the diff",
        env!("CARGO_CRATE_NAME")
    );
    let expected = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return Some(format!("{}: {e}; {hint}", path.display())),
    };
    if expected == actual {
        return None;
    }
    Some(format!(
        "{} differs from the output ({hint}):\n--- expected\n+++ actual\n{}",
        path.display(),
        diff(&expected, actual)
    ))
}

/// Lines kept around each change in a diff.
const CONTEXT: usize = 3;

/// A line diff (longest common subsequence) with `CONTEXT` lines of context around changes.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.split_inclusive('\n').collect();
    let b: Vec<&str> = actual.split_inclusive('\n').collect();
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut lines: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            lines.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            lines.push(('-', a[i]));
            i += 1;
        } else {
            lines.push(('+', b[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = (0..lines.len()).filter(|&k| lines[k].0 != ' ').collect();
    let near = |k: usize| {
        changed
            .iter()
            .any(|&c| k + CONTEXT >= c && k <= c + CONTEXT)
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (tag, line)) in lines.iter().enumerate() {
        if !near(k) {
            skipped = true;
            continue;
        }
        if skipped {
            out.push_str("@@ ...\n");
            skipped = false;
        }
        out.push(*tag);
        // Make a missing final newline visible.
        match line.strip_suffix('\n') {
            Some(l) => {
                out.push_str(l);
                out.push('\n');
            }
            None => {
                out.push_str(line);
                out.push_str("\n\\ no newline at end\n");
            }
        }
    }
    out
}
