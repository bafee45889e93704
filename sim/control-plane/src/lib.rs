//! The embedded control plane.
