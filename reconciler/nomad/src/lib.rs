//! Nomad job files.
