//! A plan: what must change in Consul, in apply order.

pub mod json;
pub mod text;
