//! `mesh-gitops show`: the normalized desired state.

use crate::StateFormat;
use anyhow::Result;
use std::io::Write;

pub fn print(loaded: &mesh_loader::Loaded, format: StateFormat) -> Result<()> {
    let text = match format {
        StateFormat::Json => mesh_report::state::json::render(loaded)?,
        StateFormat::Yaml => mesh_report::state::yaml::render(loaded)?,
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}
