//! `show`: the normalized desired state, as JSON or YAML.

pub mod json;
pub mod yaml;
