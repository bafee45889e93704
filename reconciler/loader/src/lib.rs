//! Loading a repository.
