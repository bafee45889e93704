//! What `apply` and `reconcile` require before writing, passed or refused.

pub mod text;
