//! What loading a repository found (`validate`, and the warnings every command prints).

pub mod json;
pub mod text;

#[cfg(test)]
pub(crate) mod fixture {
    use mesh_loader::{LoadOptions, Loaded, RepoFile};

    /// Two files, one of them with a syntax error.
    pub(crate) fn one_error() -> Loaded {
        let files = [
            ("mesh-gitops.hcl", "datacenter = \"dc1\"\n"),
            (
                "intentions/db.hcl",
                "Kind = \"service-intentions\"\nName = \"db\"\nSources = [\n",
            ),
        ]
        .into_iter()
        .map(|(path, text)| RepoFile {
            path: path.into(),
            contents: text.as_bytes().to_vec(),
        })
        .collect();
        mesh_loader::load_files(files, &LoadOptions::default())
    }
}
