//! Loading never panics, whatever the bytes, for every format the loader recognises.

use mesh_loader::{load_files, LoadOptions, RepoFile};
use proptest::prelude::*;

const PATHS: &[&str] = &[
    "entry.hcl",
    "entry.json",
    "entry.yaml",
    "job.nomad.hcl",
    "mesh-gitops.hcl",
    "policies/guard.hcl",
];

/// Text built from the punctuation and words of the formats reaches deeper parser states than
/// uniform noise.
fn config_like() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        "=",
        ":",
        ",",
        "\"",
        "\n",
        " ",
        "#",
        "<<EOF\n",
        "EOF\n",
        "${",
        "-",
        "Kind",
        "\"service-intentions\"",
        "Name",
        "Sources",
        "Action",
        "\"allow\"",
        "HTTP",
        "Permissions",
        "job",
        "\"web\"",
        "group",
        "service",
        "connect",
        "upstreams",
        "apiVersion",
        "kind",
        "spec",
        "1",
        "true",
        "null",
        "acl",
        "Rules",
        "\"acl-policy\"",
        "---",
        "  ",
    ]);
    prop::collection::vec(atoms, 0..64).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), which in 0..PATHS.len()) {
        let loaded = load_files(vec![RepoFile { path: PATHS[which].into(), contents: bytes }], &LoadOptions::default());
        for d in &loaded.diagnostics {
            if let Some(s) = d.span {
                prop_assert!(s.start <= s.end);
            }
        }
    }

    #[test]
    fn config_like_text_never_panics(text in config_like(), which in 0..PATHS.len()) {
        let loaded = load_files(vec![RepoFile { path: PATHS[which].into(), contents: text.clone().into_bytes() }], &LoadOptions::default());
        for d in &loaded.diagnostics {
            if let Some(s) = d.span {
                prop_assert!(s.end as usize <= loaded.sources.text(s.file).len() + 1);
            }
        }
    }
}
