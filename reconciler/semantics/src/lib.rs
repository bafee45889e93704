//! Consul's semantics, implemented once and used by validation, planning, analysis, the
//! embedded control plane and the simulator: intention precedence and evaluation, ACL rules
//! and authorization, config-entry normalization and validation, CA configuration rules.
//!
//! Pure: no IO, no clock, no randomness.

pub mod acl;
pub mod ca_config;
pub mod cas;
pub mod chain;
pub mod config_entry;
pub mod cross_entry;
mod defaults_rules;
pub mod duration;
pub mod entry_kinds;
pub mod filter;
pub mod intention;
