//! One run, every report: `--output FORMAT=PATH` on `check`, `simulate` and `plan` writes each
//! format from the same result, byte for byte what a separate run with `--format` prints; and
//! `apply --format json` for automation.

mod common;

use common::{copy_example, example, mesh_gitops, Run};
use std::path::Path;

fn run_in<S: AsRef<str>>(cwd: &Path, args: &[S]) -> Run {
    mesh_gitops(args).current_dir(cwd).run()
}

/// The dynamic-app example with its only intention removed: `check` fails (exit 3), so every
/// report has findings to carry.
fn failing_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_example("dynamic-app", dir.path());
    std::fs::remove_file(dir.path().join("intentions/mysql-server.hcl")).unwrap();
    dir
}

#[test]
fn one_check_writes_markdown_sarif_junit_and_html_equal_to_four_runs() {
    let repo = failing_repo();
    let out = tempfile::tempdir().unwrap();
    let d = repo.path().to_str().unwrap();
    let formats = [
        ("markdown", "report.md"),
        ("sarif", "sarif/mesh.sarif"),
        ("junit", "junit.xml"),
        ("html", "html/report.html"),
    ];
    let mut args = vec!["check".to_owned(), d.to_owned(), "--no-base".to_owned()];
    for (format, file) in formats {
        args.push("--output".into());
        args.push(format!("{format}={file}"));
    }
    let once = run_in(out.path(), &args);
    once.assert_code(3);
    assert_eq!(
        once.stdout, "",
        "with --output only, stdout carries nothing"
    );
    for (format, file) in formats {
        let alone = run_in(out.path(), &["check", d, "--no-base", "--format", format]);
        alone.assert_code(3);
        let written = std::fs::read_to_string(out.path().join(file)).unwrap();
        assert!(!written.is_empty(), "{file} is empty");
        assert!(
            written == alone.stdout,
            "{file} differs from `--format {format}`"
        );
    }
}

#[test]
fn format_goes_to_stdout_beside_the_files_and_two_on_stdout_are_refused() {
    let repo = failing_repo();
    let out = tempfile::tempdir().unwrap();
    let d = repo.path().to_str().unwrap();
    let both = run_in(
        out.path(),
        &[
            "check",
            d,
            "--no-base",
            "--format",
            "json",
            "--output",
            "sarif=r.sarif",
        ],
    );
    both.assert_code(3);
    assert_eq!(both.json()["verdict"], "fail");
    assert!(out.path().join("r.sarif").exists());

    let two = run_in(
        out.path(),
        &[
            "check",
            d,
            "--no-base",
            "--format",
            "json",
            "--output",
            "text",
        ],
    );
    two.assert_code(1);
    assert!(
        two.stderr.contains("more than one format on stdout"),
        "{}",
        two.stderr
    );
    let unknown = run_in(out.path(), &["check", d, "--output", "yaml=r.yaml"]);
    // A usage error, which exits 1 (never 2, "the plan has changes").
    unknown.assert_code(1);
    assert!(
        unknown.stderr.contains("unknown format \"yaml\""),
        "{}",
        unknown.stderr
    );
}

#[test]
fn one_simulation_writes_every_format_equal_to_separate_runs() {
    let cwd = tempfile::tempdir().unwrap();
    let ex = example("countdash");
    let ex = ex.to_str().unwrap();
    let once = run_in(
        cwd.path(),
        &[
            "simulate",
            ex,
            "--output",
            "json=sim.json",
            "--output",
            "markdown=sim.md",
            "--output",
            "text",
        ],
    );
    once.assert_success();
    let text = run_in(cwd.path(), &["simulate", ex]);
    assert_eq!(once.stdout, text.stdout);
    for (format, file) in [("json", "sim.json"), ("markdown", "sim.md")] {
        let alone = run_in(cwd.path(), &["simulate", ex, "--format", format]);
        let written = std::fs::read_to_string(cwd.path().join(file)).unwrap();
        assert!(
            written == alone.stdout,
            "{file} differs from `--format {format}`"
        );
    }
}

#[test]
fn one_plan_writes_text_and_json_equal_to_separate_runs() {
    let cwd = tempfile::tempdir().unwrap();
    let ex = example("countdash");
    let ex = ex.to_str().unwrap();
    let once = run_in(
        cwd.path(),
        &[
            "plan",
            ex,
            "--output",
            "json=plan.json",
            "--output",
            "text=plan.txt",
        ],
    );
    once.assert_code(2);
    assert_eq!(once.stdout, "");
    let json = run_in(cwd.path(), &["plan", ex, "--format", "json"]);
    let text = run_in(cwd.path(), &["plan", ex]);
    assert_eq!(
        std::fs::read_to_string(cwd.path().join("plan.json")).unwrap(),
        json.stdout
    );
    assert_eq!(
        std::fs::read_to_string(cwd.path().join("plan.txt")).unwrap(),
        text.stdout
    );
}

/// `apply --format json` without the timings, which differ per run.
fn without_milliseconds(mut v: serde_json::Value) -> serde_json::Value {
    for step in v["steps"].as_array_mut().unwrap() {
        let ms = step.as_object_mut().unwrap().remove("milliseconds");
        assert!(
            ms.is_some_and(|ms| ms.is_u64()),
            "every step has its milliseconds"
        );
    }
    v
}

#[test]
fn apply_json_has_the_gate_and_every_step_and_a_second_run_has_none() {
    let cwd = tempfile::tempdir().unwrap();
    let ex = example("countdash");
    let ex = ex.to_str().unwrap();
    let first = run_in(cwd.path(), &["apply", ex, "--format", "json"]);
    first.assert_success();
    let v = without_milliseconds(first.json());
    assert_eq!(v["result"], "applied");
    assert_eq!(v["gate"]["result"], "pass");
    assert_eq!(v["gate"]["declared_upstreams"], 1);
    assert_eq!(v["gate"]["simulation"]["violations"], serde_json::json!([]));
    assert!(v["target"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    let steps = v["steps"].as_array().unwrap();
    assert!(
        steps.contains(&serde_json::json!({
            "action": "create", "kind": "service-intentions", "name": "count-api",
            "outcome": "applied", "cas": 0,
        })),
        "{steps:#?}"
    );
    assert!(steps.iter().all(|s| s["outcome"] == "applied"));
    assert_eq!(v["writes"].as_u64(), Some(steps.len() as u64));
    assert_eq!(v["conflicts"], 0);
    assert_eq!(v["error"], serde_json::Value::Null);

    let again = run_in(cwd.path(), &["apply", ex, "--format", "json"]);
    again.assert_success();
    let v = again.json();
    assert_eq!(
        (v["result"].as_str(), v["writes"].as_u64()),
        (Some("applied"), Some(0))
    );
    assert_eq!(v["steps"], serde_json::json!([]));
}

#[test]
fn apply_json_says_why_the_gate_refused_and_nothing_is_applied() {
    let repo = failing_repo();
    let cwd = tempfile::tempdir().unwrap();
    let out = run_in(
        cwd.path(),
        &["apply", repo.path().to_str().unwrap(), "--format", "json"],
    );
    out.assert_code(1);
    let v = out.json();
    assert_eq!(v["result"], "refused");
    assert_eq!(v["gate"]["result"], "fail");
    assert!(
        v["gate"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("check fails"),
        "{v:#}"
    );
    assert_eq!(
        (v["target"].clone(), v["steps"].clone()),
        (serde_json::Value::Null, serde_json::json!([]))
    );
    assert!(
        !cwd.path().join(".mesh-gitops").exists(),
        "no control plane was started"
    );
}

#[test]
fn no_progress_is_drawn_when_stderr_is_not_a_terminal() {
    let cwd = tempfile::tempdir().unwrap();
    let ex = example("countdash");
    let out = run_in(cwd.path(), &["apply", ex.to_str().unwrap()]);
    out.assert_success();
    let sim = run_in(
        cwd.path(),
        &["simulate", ex.to_str().unwrap(), "--seeds", "2"],
    );
    sim.assert_success();
    for stderr in [&out.stderr, &sim.stderr] {
        assert!(
            !stderr.contains('\r') && !stderr.contains("\x1b["),
            "{stderr:?}"
        );
    }
}

/// Runs `mesh-gitops ARGS` with stderr on a pseudo-terminal (util-linux `script`), stdout
/// discarded; returns what the terminal showed.
fn on_a_terminal(cwd: &Path, args: &str, ci: bool) -> String {
    let bin = env!("CARGO_BIN_EXE_mesh-gitops");
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &format!("'{bin}' {args} > /dev/null"), "/dev/null"])
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .env_remove("CI");
    if ci {
        c.env("CI", "true");
    }
    let out = c.output().expect("util-linux script runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn on_a_terminal_progress_counts_steps_and_seeds_and_ci_turns_it_off() {
    let cwd = tempfile::tempdir().unwrap();
    let ex = example("countdash");
    let ex = ex.to_str().unwrap();
    let shown = on_a_terminal(cwd.path(), &format!("simulate '{ex}' --seeds 3"), false);
    for n in 0..=3 {
        assert!(
            shown.contains(&format!("simulating: {n}/3 seed(s)")),
            "{shown:?}"
        );
    }
    // The line is erased at the end, so what follows starts clean.
    assert!(shown.ends_with("\r\x1b[2K"), "{shown:?}");
    let applied = on_a_terminal(cwd.path(), &format!("apply '{ex}'"), false);
    let total = regex::Regex::new(r"applying: (\d+)/(\d+) step\(s\)")
        .unwrap()
        .captures_iter(&applied)
        .map(|c| (c[1].parse::<u32>().unwrap(), c[2].parse::<u32>().unwrap()))
        .last()
        .unwrap_or_else(|| panic!("no progress in {applied:?}"));
    assert!(total.0 == total.1 && total.1 > 0, "{total:?}");

    let ci = on_a_terminal(cwd.path(), &format!("simulate '{ex}' --seeds 3"), true);
    assert!(!ci.contains("simulating:"), "{ci:?}");
}
