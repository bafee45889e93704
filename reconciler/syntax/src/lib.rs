//! Parsers from text to the span-keeping [`Node`] tree: HCL (the literal syntax of HCL 1 and
//! HCL 2 together, as `consul config write` accepts it), JSON and YAML.
//!
//! This crate knows syntax only; what keys mean is the loader's business. Parsing never
//! panics on any input: a file that does not parse yields diagnostics with the position of
//! the problem.

mod hcl;
mod json;
mod node;
mod yaml;

pub use hcl::parse_hcl;
pub use json::parse_json;
pub use node::{Entry, EntryStyle, Label, Node, NodeKind};
pub use yaml::parse_yaml;
