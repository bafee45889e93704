//! The Connect CA.
