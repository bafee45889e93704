//! Every example repository, discovered from `examples/*/mesh-gitops.hcl`: it validates, shows
//! its model, passes `check` (or fails it on purpose, for the reason given in
//! a `FAILS-ON-PURPOSE` marker), and explains itself in a README.

mod common;

use common::examples::{expected_check_code, failing_on_purpose};
use common::{example, examples, mesh_gitops, root, subdirs};

#[test]
fn every_example_is_valid_and_shows_its_model() {
    let names = examples();
    assert!(
        names.len() >= 5,
        "expected the five seed examples, found {names:?}"
    );
    for name in &names {
        let dir = example(name);
        let out = mesh_gitops(&["validate"]).arg(&dir).run();
        out.assert_success();
        assert!(!out.stderr.contains("error["), "{name}: {}", out.stderr);
        let v = mesh_gitops(&["show"])
            .arg(&dir)
            .args(&["--format", "json"])
            .run()
            .assert_success()
            .json();
        for key in ["settings", "services", "config_entries", "acl", "ca_config"] {
            assert!(v.get(key).is_some(), "{name}: no {key}");
        }
        let yaml = mesh_gitops(&["show"])
            .arg(&dir)
            .args(&["--format", "yaml"])
            .run();
        yaml.assert_success();
        assert!(yaml.stdout.contains("config_entries:"), "{name}");
    }
}

#[test]
fn every_example_checks_with_its_expected_exit_code() {
    for name in examples() {
        // --no-base: a clone of this project has origin/HEAD; an example is checked on its own.
        let out = mesh_gitops(&["check"])
            .arg(example(&name))
            .arg("--no-base")
            .run();
        out.assert_code(expected_check_code(&name));
    }
}

/// An example failing on purpose says why, and its README says so too: a reader running it
/// is not surprised by the failure.
#[test]
fn every_example_failing_on_purpose_says_why() {
    let failing = failing_on_purpose();
    assert!(!failing.is_empty(), "web-socat fails on purpose");
    for (name, why) in failing {
        assert!(!why.is_empty(), "{name}: the marker gives no `why:`");
        let readme = std::fs::read_to_string(example(&name).join("README.md")).unwrap();
        assert!(
            readme.contains("on purpose"),
            "{name}: the README does not say it fails on purpose"
        );
    }
}

/// Every directory under `examples/`, a repository or not, says what it shows.
#[test]
fn every_example_has_a_readme() {
    let dirs = subdirs(&root().join("examples"));
    assert!(!dirs.is_empty());
    for dir in dirs {
        assert!(
            dir.join("README.md").is_file(),
            "{} has no README.md",
            dir.display()
        );
    }
}
