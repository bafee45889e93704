//! `plan --out FILE` and `apply --plan FILE`: writing and reading a saved plan (the format and
//! its checks are `mesh_apply::SavedPlan`'s).

use anyhow::{Context, Result};
use mesh_apply::{ApplyError, SavedPlan};
use std::path::Path;

/// Writes the plan beside `path` and renames it over it, so a reader never sees half a plan.
pub fn write(path: &Path, saved: &SavedPlan) -> Result<()> {
    crate::output::write_file(path, saved.to_json().as_bytes())?;
    eprintln!(
        "mesh-gitops: plan saved to {0} (apply exactly this plan with `mesh-gitops apply --plan {0}`)",
        path.display()
    );
    Ok(())
}

/// Reads a saved plan; an altered, damaged or foreign file is an error naming the file.
pub fn read(path: &Path) -> Result<SavedPlan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the plan {}", path.display()))?;
    SavedPlan::from_json(&text).with_context(|| {
        format!(
            "nothing applied: {} is not a plan to apply (make a new one with `mesh-gitops plan --out`)",
            path.display()
        )
    })
}

/// What `apply` says before applying a saved plan.
pub fn describe(path: &Path, saved: &SavedPlan) -> String {
    let revision = saved
        .repository
        .revision
        .as_deref()
        .map(|r| format!(", revision {}", r.get(..12).unwrap_or(r)))
        .unwrap_or_default();
    format!(
        "applying the saved plan {} (made against {}{revision}, outcome {})",
        path.display(),
        saved.consul.address,
        serde_json::to_value(saved.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    )
}

/// Whether an apply failed because the saved plan no longer applies (exit 5).
pub fn is_stale(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<ApplyError>(),
        Some(ApplyError::Stale(_) | ApplyError::MovedDuringApply { .. })
    )
}

/// The help line after a stale plan's error.
pub const STALE_HELP: &str =
    "  = help: make a new plan (`mesh-gitops plan --out FILE`), review it, and apply that one";
