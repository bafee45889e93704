//! Every rendering of mesh-gitops' results, one module per result and one function per format:
//!
//! - `check`: a `mesh_check::CheckResult` as text, JSON, Markdown, SARIF 2.1.0, JUnit XML,
//!   GitHub workflow annotations and one self-contained HTML file;
//! - `simulation`: a `mesh_check::Simulation` (the simulator's `SimReport`s of a sweep) as text,
//!   JSON, Markdown and the HTML report's section;
//! - `graph`: the reachability graph of a check result as Mermaid, DOT and SVG (laid out here);
//! - `diagnostics`: what loading found, as text and JSON;
//! - `state`: the normalized desired state (`show`) as JSON and YAML;
//! - `plan`: what must change in Consul, as text (Terraform-like) and JSON;
//! - `apply`: an apply's progress lines and `plan`'s line about reading Consul;
//! - `gate`: what `apply` and `reconcile` checked before writing, passed or refused.
//!
//! Renderers take typed results and return the bytes as a `String`; choosing a format and
//! writing the bytes is the binary's job. Output is deterministic: the same result, the same
//! bytes (golden files pin them).

pub mod apply;
pub mod check;
pub mod diagnostics;
mod escape;
pub mod gate;
pub mod graph;
pub mod plan;
pub mod simulation;
pub mod state;

/// A rendering that could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot render the desired state as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot render the desired state as YAML: {0}")]
    Yaml(#[from] serde_saphyr::SerializeError),
}
