//! Golden files for `plan` in text and JSON: the production example planned against an empty
//! control plane, and a change to it after it was applied. Regenerate with `UPDATE_GOLDEN=1`
//! and review the diff.

mod common;

use common::{assert_golden, copy_example, mesh_gitops, root, Run};

use std::path::Path;

const SECRETS: &[(&str, &str)] = &[
    ("WEB_CONSUL_TOKEN", "6f1c2f0e-3b8a-4c55-9a41-7d0e5b2c9f10"),
    ("API_CONSUL_TOKEN", "0b9d4e7a-52c1-4f3e-8e6d-1a2b3c4d5e6f"),
];

fn run(cwd: &Path, args: &[&str]) -> Run {
    mesh_gitops(args).current_dir(cwd).envs(SECRETS).run()
}

/// IDs are random UUIDs; everything else in a plan is deterministic.
fn redact_uuids(s: &str) -> String {
    let b = s.as_bytes();
    let shape = [8, 4, 4, 4, 12];
    let mut out = String::new();
    let mut i = 0;
    'outer: while i < b.len() {
        let mut j = i;
        for (n, len) in shape.iter().enumerate() {
            if !(j + len <= b.len() && b[j..j + len].iter().all(u8::is_ascii_hexdigit)) {
                out.push(b[i] as char);
                i += 1;
                continue 'outer;
            }
            j += len;
            if n < 4 {
                if b.get(j) != Some(&b'-') {
                    out.push(b[i] as char);
                    i += 1;
                    continue 'outer;
                }
                j += 1;
            }
        }
        out.push_str("<uuid>");
        i = j;
    }
    out
}

fn golden(name: &str, actual: &str) {
    assert_golden(&root().join("tests/data/plan").join(name), actual);
}

#[test]
fn plan_text_and_json_are_stable() {
    let cwd = tempfile::tempdir().unwrap();
    let repo = cwd.path().join("production");
    copy_example("production", &repo);
    let r = repo.to_str().unwrap();
    let create_text = run(cwd.path(), &["plan", r]);
    create_text.assert_code(2);
    golden("create.txt", &create_text.stdout);
    let create_json = run(cwd.path(), &["plan", r, "--format", "json"]);
    golden("create.json", &create_json.stdout);
    // One step at a time: the golden pins ModifyIndexes, which concurrent writes take in the
    // order they land.
    let applied = run(cwd.path(), &["apply", r, "--parallelism", "1"]);
    applied.assert_success();
    // A change touching each kind of step: rules edited, an entry updated, a token removed.
    let web = repo.join("acl/web.hcl");
    let rules = std::fs::read_to_string(&web)
        .unwrap()
        .replace("node_prefix \"\" {\n  policy = \"read\"\n}\n", "");
    std::fs::write(&web, rules).unwrap();
    let api = repo.join("config/api.json");
    let timeout = std::fs::read_to_string(&api)
        .unwrap()
        .replace("15000", "30000");
    std::fs::write(&api, timeout).unwrap();
    std::fs::remove_file(repo.join("acl/cassandra-db-token.yaml")).unwrap();
    let change_text = run(cwd.path(), &["plan", r]);
    change_text.assert_code(2);
    golden("change.txt", &redact_uuids(&change_text.stdout));
    let change_json = run(cwd.path(), &["plan", r, "--format", "json"]);
    golden("change.json", &redact_uuids(&change_json.stdout));
}

#[test]
fn uuid_redaction_keeps_everything_else() {
    assert_eq!(
        redact_uuids("id \"0b9d4e7a-52c1-4f3e-8e6d-1a2b3c4d5e6f\", cas 12, deadbeef-x"),
        "id \"<uuid>\", cas 12, deadbeef-x"
    );
}
