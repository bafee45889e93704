//! Reads a repository into the desired state and every problem in it.
//!
//! A repository is a set of files (a directory, or a git tree read without a checkout). Every
//! file is read; its format is recognised by its extension and content: Consul config entries
//! (HCL, JSON, YAML), consul-k8s resources, Consul agent service definitions, Nomad job files,
//! mesh-gitops's own kinds, the settings file `mesh-gitops.hcl`, Consul agent configuration and
//! consul-k8s Helm values (kept for `check` to lint, never written to Consul). Loading never stops at the
//! first problem: it returns the state it could build plus all diagnostics, and callers refuse to
//! act on a load with errors. Only this crate (with `mesh-syntax` and `mesh-nomad`) knows the
//! file formats.

mod agent;
mod chain;
mod decode;
mod entry;
mod entry_kinds;
mod k8s;
mod kinds;
mod repo;
mod schema;
mod schema_chain;
mod schema_kinds;
mod service_def;

pub use entry::{decode_config_entry, decode_server_entry, ServerEntry, MESH_GITOPS_KINDS};
pub use kinds::secret_source;
pub use repo::{load_dir, load_files, FileFormat, LoadOptions, Loaded, LoadedFile, RepoFile};
