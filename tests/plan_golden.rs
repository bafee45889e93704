//! Golden files for `plan` in text and JSON: the production example planned against an empty
//! control plane, and a change to it after it was applied. Regenerate with `UPDATE_GOLDEN=1`
//! and review the diff.

mod common;

use common::{copy_dir, root};

use std::path::Path;
use std::process::{Command, Output};

const SECRETS: &[(&str, &str)] = &[
    ("WEB_CONSUL_TOKEN", "6f1c2f0e-3b8a-4c55-9a41-7d0e5b2c9f10"),
    ("API_CONSUL_TOKEN", "0b9d4e7a-52c1-4f3e-8e6d-1a2b3c4d5e6f"),
];

fn run(cwd: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mesh-gitops"));
    c.args(args)
        .current_dir(cwd)
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("CONSUL_HTTP_TOKEN");
    for (k, v) in SECRETS {
        c.env(k, v);
    }
    c.output().expect("the binary runs")
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
    let path = root().join("tests/data/plan").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing; run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(actual, expected, "{} differs", path.display());
}

#[test]
fn plan_text_and_json_are_stable() {
    let cwd = tempfile::tempdir().unwrap();
    let repo = cwd.path().join("production");
    copy_dir(&root().join("examples/production"), &repo);
    let r = repo.to_str().unwrap();
    let create_text = run(cwd.path(), &["plan", r]);
    assert_eq!(create_text.status.code(), Some(2));
    golden("create.txt", &String::from_utf8_lossy(&create_text.stdout));
    let create_json = run(cwd.path(), &["plan", r, "--format", "json"]);
    golden("create.json", &String::from_utf8_lossy(&create_json.stdout));
    let applied = run(cwd.path(), &["apply", r]);
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
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
    assert_eq!(change_text.status.code(), Some(2));
    golden(
        "change.txt",
        &redact_uuids(&String::from_utf8_lossy(&change_text.stdout)),
    );
    let change_json = run(cwd.path(), &["plan", r, "--format", "json"]);
    golden(
        "change.json",
        &redact_uuids(&String::from_utf8_lossy(&change_json.stdout)),
    );
}

#[test]
fn uuid_redaction_keeps_everything_else() {
    assert_eq!(
        redact_uuids("id \"0b9d4e7a-52c1-4f3e-8e6d-1a2b3c4d5e6f\", cas 12, deadbeef-x"),
        "id \"<uuid>\", cas 12, deadbeef-x"
    );
}
