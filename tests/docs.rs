//! The README, `--help` and `docs/` say the same: every subcommand `--help` lists is in the
//! README's command table, every long flag a subcommand's `--help` prints is in the README,
//! `explain` covers every diagnostic code (its unit tests check each explanation's content) and
//! `completions` names every subcommand. (Exit codes are checked against `docs/exit-codes.md`
//! in `reconciler/cli/src/exit.rs`, diagnostic codes against `docs/diagnostics.md` in
//! `tests/validate.rs`.)

mod common;

use common::{mesh_gitops, root};
use std::collections::BTreeSet;

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("README.md")
}

/// The subcommands `mesh-gitops --help` lists (without `help`).
fn subcommands() -> Vec<String> {
    let help = mesh_gitops(&["--help"])
        .run()
        .assert_success()
        .stdout
        .clone();
    let commands = help
        .split("Commands:\n")
        .nth(1)
        .expect("--help lists commands");
    let names: Vec<String> = commands
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_owned)
        .collect();
    assert!(names.len() >= 10, "{help}");
    names
}

/// The long flags `mesh-gitops <command> --help` defines (without `--help` and `--version`).
fn long_flags(command: &str) -> BTreeSet<String> {
    let help = mesh_gitops(&[command, "--help"])
        .run()
        .assert_success()
        .stdout
        .clone();
    help.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix("-")
                .and_then(|r| r.split_once(", "))
                .map_or(l, |(_, r)| r);
            let flag = l.strip_prefix("--")?;
            let name: String = flag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (!name.is_empty()).then(|| format!("--{name}"))
        })
        .filter(|f| f != "--help" && f != "--version")
        .collect()
}

#[test]
fn every_subcommand_is_in_the_readme_command_table() {
    let readme = readme();
    let table: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("| `mesh-gitops "))
        .collect();
    let missing: Vec<String> = subcommands()
        .into_iter()
        .filter(|c| {
            !table
                .iter()
                .any(|row| row.starts_with(&format!("| `mesh-gitops {c}")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "not in README.md's command table: {missing:?}"
    );
}

#[test]
fn every_long_flag_of_every_subcommand_is_in_the_readme() {
    let readme = readme();
    let mut missing = Vec::new();
    for command in subcommands() {
        let flags = long_flags(&command);
        for flag in flags {
            // A flag is named whole: `--base` does not count as `--base-dir`.
            let named = readme.match_indices(&flag).any(|(i, _)| {
                !readme[i + flag.len()..]
                    .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
            });
            if !named {
                missing.push(format!("{command} {flag}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in README.md: {missing:?}");
}

/// `apply --skip-check` skips the whole gate, the simulation too, and its help says so.
#[test]
fn apply_skip_check_help_names_the_check_and_the_simulation() {
    let help = mesh_gitops(&["apply", "--help"]).run().stdout;
    let line = help
        .split("--skip-check")
        .nth(1)
        .and_then(|rest| rest.split("\n  -").next())
        .expect("apply --help has --skip-check");
    assert!(
        line.contains("check") && line.contains("simulat"),
        "--skip-check's help: {line}"
    );
}

#[test]
fn explain_prints_a_code_s_explanation_and_refuses_an_unknown_code() {
    let out = mesh_gitops(&["explain", "E0311"]).run();
    out.assert_success();
    assert!(
        out.stdout.starts_with(
            "# E0311: L7 intentions on a service whose protocol is not http, http2 or grpc\n"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("## Example") && out.stdout.contains("## Fix"));
    // The same file the documentation links.
    let doc = std::fs::read_to_string(root().join("docs/diagnostics/E0311.md")).unwrap();
    assert_eq!(out.stdout, doc);
    // As printed in a diagnostic, in any case.
    assert_eq!(mesh_gitops(&["explain", "e0311"]).run().stdout, doc);

    let unknown = mesh_gitops(&["explain", "E9999"]).run();
    unknown.assert_code(1);
    assert!(unknown.stdout.is_empty());
    assert!(
        unknown.stderr.contains("\"E9999\"") && unknown.stderr.contains("explain --list"),
        "{}",
        unknown.stderr
    );

    let list = mesh_gitops(&["explain", "--list"]).run();
    list.assert_success();
    assert!(list.stdout.lines().any(|l| l.starts_with("E0311  error ")));
    assert!(list
        .stdout
        .lines()
        .any(|l| l.starts_with("W1004  warning ")));
}

#[test]
fn docs_diagnostics_points_at_the_explanations() {
    let docs = std::fs::read_to_string(root().join("docs/diagnostics.md")).unwrap();
    assert!(
        docs.contains("mesh-gitops explain CODE") && docs.contains("(diagnostics/)"),
        "docs/diagnostics.md should say where the explanations are"
    );
}

#[test]
fn bash_completions_name_every_subcommand() {
    let out = mesh_gitops(&["completions", "bash"]).run();
    out.assert_success();
    assert!(
        out.stdout.contains("complete -F _mesh__gitops"),
        "no completion function is registered:\n{}",
        out.stdout
    );
    // The words offered after `mesh-gitops `, and a case for each subcommand's own flags.
    let top = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("opts=\"-h -V --help --version"))
        .expect("the top-level words");
    let words: BTreeSet<&str> = top
        .trim()
        .trim_start_matches("opts=\"")
        .trim_end_matches('"')
        .split(' ')
        .collect();
    for command in subcommands() {
        assert!(
            words.contains(command.as_str()),
            "bash does not offer {command}: {top}"
        );
        assert!(
            out.stdout.contains(&format!("mesh__gitops,{command})")),
            "bash has no completions for {command}'s arguments"
        );
    }
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = mesh_gitops(&["completions", shell]).run();
        out.assert_success();
        assert!(out.stdout.contains("reconcile"), "{shell}");
    }
}

#[test]
fn a_usage_error_exits_1_never_the_plan_has_changes_code() {
    // docs/exit-codes.md: 2 means "the plan has changes"; a typo must not read as that.
    let typo = mesh_gitops(&["plan", "--no-such-flag"]).run();
    typo.assert_code(1);
    assert!(typo.stderr.contains("--no-such-flag"), "{}", typo.stderr);
    let help = mesh_gitops(&["plan", "--help"]).run();
    help.assert_code(0);
    assert!(help.stdout.contains("Usage"), "{}", help.stdout);
}
