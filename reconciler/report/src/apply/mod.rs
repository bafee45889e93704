//! An apply's progress and what reading Consul cost, and the whole apply as JSON.

pub mod json;
pub mod text;
