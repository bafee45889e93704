//! Printing diagnostics.

use crate::ReportFormat;
use anyhow::Result;
use std::io::Write;

/// Text: every diagnostic on stderr, then a summary line. JSON: an array on stdout (the result
/// of `validate`), nothing on stderr.
pub fn diagnostics(loaded: &mesh_loader::Loaded, format: ReportFormat) -> Result<()> {
    match format {
        ReportFormat::Json => {
            let json = mesh_diagnostics::render_json(&loaded.diagnostics, &loaded.sources);
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &json)?;
            writeln!(out)?;
        }
        ReportFormat::Text => {
            let mut err = std::io::stderr().lock();
            for d in &loaded.diagnostics {
                write!(err, "{}", mesh_diagnostics::render_text(d, &loaded.sources))?;
            }
            let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
            let warnings = loaded.diagnostics.len() - errors;
            let files = loaded.files.len();
            if errors > 0 {
                writeln!(
                    err,
                    "{errors} error{}, {warnings} warning{} in {files} file{}",
                    plural(errors),
                    plural(warnings),
                    plural(files)
                )?;
            } else {
                writeln!(
                    err,
                    "valid: {files} file{}, {warnings} warning{}",
                    plural(files),
                    plural(warnings)
                )?;
            }
        }
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
