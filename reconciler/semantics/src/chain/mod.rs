//! The discovery chain: `service-router`, `service-splitter` and `service-resolver` as Consul
//! normalizes and validates them (`agent/structs/config_entry_discoverychain.go`), the chain
//! compiler (`compile`, after `agent/consul/discoverychain/compile.go`) and the evaluation of a
//! request against a compiled chain (`route`).

pub mod compile;
pub mod route;
mod validate;

pub use compile::{compile, ChainError, ChainIndex, CompiledChain, Node, Target};
pub use route::{HttpRequest, Routed};
pub use validate::{validate, validate_graph};

use mesh_model::chain::ChainEntry;

/// What Consul does to a chain entry before storing it: `ServiceRouterConfigEntry.Normalize`
/// upper-cases route methods, `ServiceSplitterConfigEntry.Normalize` rounds every weight to
/// 0.01 (`NormalizeServiceSplitWeight`); a resolver's `Normalize` changes nothing on CE.
pub fn normalize(entry: &mut ChainEntry) {
    match entry {
        ChainEntry::Router(r) => {
            for route in &mut r.routes {
                if let Some(http) = route.matches.as_mut().and_then(|m| m.http.as_mut()) {
                    for m in &mut http.methods {
                        *m = m.to_ascii_uppercase();
                    }
                }
            }
        }
        ChainEntry::Splitter(s) => {
            for split in &mut s.splits {
                split.weight = scaled_weight(split.weight) as f64 / 100.0;
            }
        }
        ChainEntry::Resolver(_) => {}
    }
}

/// `scaleWeight`: a percentage in units of 0.01%, computed as Go does it on a `float32`.
pub fn scaled_weight(weight: f64) -> i64 {
    ((weight as f32) * 100.0f32).round() as i64
}

#[cfg(test)]
mod tests;
