//! Every diagnostic as `path:line:col: severity[CODE]: message` with its source line, then one
//! summary line: the counts, or `valid:` when nothing is an error.

use mesh_loader::Loaded;
use std::fmt::Write as _;

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

pub fn render(loaded: &Loaded) -> String {
    let mut out = String::new();
    for d in &loaded.diagnostics {
        out.push_str(&mesh_diagnostics::render_text(d, &loaded.sources));
    }
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = loaded.diagnostics.len() - errors;
    let files = loaded.files.len();
    if errors > 0 {
        let _ = writeln!(
            out,
            "{errors} error{}, {warnings} warning{} in {files} file{}",
            plural(errors),
            plural(warnings),
            plural(files)
        );
    } else {
        let _ = writeln!(
            out,
            "valid: {files} file{}, {warnings} warning{}",
            plural(files),
            plural(warnings)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::diagnostics::fixture::one_error;

    #[test]
    fn the_summary_counts_errors_warnings_and_files() {
        let text = render(&one_error());
        assert!(text.starts_with("intentions/db.hcl:"), "{text}");
        assert!(text.ends_with("1 error, 0 warnings in 2 files\n"), "{text}");
    }

    #[test]
    fn warnings_alone_are_valid() {
        // An empty repository is only a warning.
        let loaded = mesh_loader::load_files(Vec::new(), &mesh_loader::LoadOptions::default());
        let text = render(&loaded);
        assert!(text.starts_with("warning[W0905]: "), "{text}");
        assert!(text.ends_with("\nvalid: 0 files, 1 warning\n"), "{text}");
    }
}
