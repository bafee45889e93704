//! Synthetic repositories.
