//! Printing diagnostics.

use crate::ReportFormat;
use anyhow::Result;
use std::io::Write;

/// Text: every diagnostic on stderr, then a summary line. JSON: an array on stdout (the result
/// of `validate`), nothing on stderr.
pub fn diagnostics(loaded: &mesh_loader::Loaded, format: ReportFormat) -> Result<()> {
    match format {
        ReportFormat::Json => std::io::stdout()
            .lock()
            .write_all(mesh_report::diagnostics::json::render(loaded).as_bytes())?,
        ReportFormat::Text => std::io::stderr()
            .lock()
            .write_all(mesh_report::diagnostics::text::render(loaded).as_bytes())?,
    }
    Ok(())
}
