//! End-to-end tests of the pictures: `graph --format svg` against golden files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mesh-gitops"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    bin()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// `base/` is the dynamic-app example, `head/` the same without its intention (dynamic-app ->
/// mysql-server closes). Relative paths keep labels, and so golden files, stable.
fn dynamic_app_change() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &root().join("examples/dynamic-app"),
        &dir.path().join("base"),
    );
    copy_dir(
        &root().join("examples/dynamic-app"),
        &dir.path().join("head"),
    );
    std::fs::remove_file(dir.path().join("head/intentions/mysql-server.hcl")).unwrap();
    dir
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The SVG must be well-formed XML in the SVG namespace, with one `g.node` per service.
fn check_svg(svg: &str, services: usize) {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
    let top = doc.root_element();
    assert_eq!(top.tag_name().name(), "svg");
    assert_eq!(
        top.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let nodes = doc
        .descendants()
        .filter(|n| n.has_tag_name("g") && n.attribute("class") == Some("node"))
        .count();
    assert_eq!(nodes, services, "{svg}");
}

fn compare_golden(name: &str, actual: &str, failures: &mut Vec<String>) {
    let golden = root().join("tests/data/graph").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    if want != actual {
        failures.push(format!(
            "{} differs (UPDATE_GOLDEN=1 regenerates it):\n--- expected\n{want}\n--- actual\n{actual}",
            golden.display()
        ));
    }
}

/// `graph --format svg` is pinned byte for byte: the layout is deterministic.
#[test]
fn svg_graphs_are_pinned() {
    let mut failures = Vec::new();
    let examples = root().join("examples");
    for (example, services) in [("web-socat", 2), ("production", 3)] {
        let out = run_in(&examples, &["graph", example, "--format", "svg"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let svg = stdout(&out);
        check_svg(&svg, services);
        compare_golden(&format!("{example}.svg"), &svg, &mut failures);
    }

    let change = dynamic_app_change();
    let out = run_in(
        change.path(),
        &["graph", "head", "--base", "base", "--format", "svg"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let svg = stdout(&out);
    check_svg(&svg, 2);
    assert!(
        svg.contains(
            "<path class=\"edge closed\" data-from=\"dynamic-app\" data-to=\"mysql-server\""
        ),
        "{svg}"
    );
    assert!(svg.contains("stroke-dasharray=\"7 4\""), "closed is dashed");
    compare_golden("dynamic-app-diff.svg", &svg, &mut failures);

    // The same input, the same bytes.
    let again = run_in(
        change.path(),
        &["graph", "head", "--base", "base", "--format", "svg"],
    );
    assert_eq!(stdout(&again), svg);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
