//! An apply's progress and what reading Consul cost.

pub mod text;
