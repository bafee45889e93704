//! End-to-end tests of the pictures and the HTML report: `graph --format svg` against golden
//! files, and `check --format html` rendered by a real headless browser (Debian's Chromium).

mod common;

use common::{copy_example, golden_mismatch, mesh_gitops, root, Run};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run_in(dir: &Path, args: &[&str]) -> Run {
    mesh_gitops(args).current_dir(dir).run()
}

/// `base/` is the dynamic-app example, `head/` the same without its intention (dynamic-app ->
/// mysql-server closes). Relative paths keep labels, and so golden files, stable.
fn dynamic_app_change() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_example("dynamic-app", &dir.path().join("base"));
    copy_example("dynamic-app", &dir.path().join("head"));
    std::fs::remove_file(dir.path().join("head/intentions/mysql-server.hcl")).unwrap();
    dir
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
    failures.extend(golden_mismatch(
        &root().join("tests/data/graph").join(name),
        actual,
    ));
}

/// `graph --format svg` is pinned byte for byte: the layout is deterministic.
#[test]
fn svg_graphs_are_pinned() {
    let mut failures = Vec::new();
    let examples = root().join("examples");
    for (example, services) in [("web-socat", 2), ("production", 3), ("canary", 3)] {
        let out = run_in(&examples, &["graph", example, "--format", "svg"]);
        out.assert_success();
        let svg = &out.stdout;
        check_svg(svg, services);
        compare_golden(&format!("{example}.svg"), svg, &mut failures);
    }

    // A fan-out, a fan-in, a cycle back to the front (drawn as an arc underneath), a denied
    // upstream, and a service only intentions name.
    let out = run_in(
        &root().join("tests/data/graph"),
        &["graph", "fan", "--format", "svg"],
    );
    out.assert_success();
    let svg = &out.stdout;
    check_svg(svg, 5);
    assert!(
        svg.contains("<path class=\"edge declared-denied\" data-from=\"db\" data-to=\"web\""),
        "{svg}"
    );
    compare_golden("fan.svg", svg, &mut failures);

    let change = dynamic_app_change();
    let out = run_in(
        change.path(),
        &["graph", "head", "--base", "base", "--format", "svg"],
    );
    out.assert_success();
    let svg = &out.stdout;
    check_svg(svg, 2);
    assert!(
        svg.contains(
            "<path class=\"edge closed\" data-from=\"dynamic-app\" data-to=\"mysql-server\""
        ),
        "{svg}"
    );
    assert!(svg.contains("stroke-dasharray=\"7 4\""), "closed is dashed");
    compare_golden("dynamic-app-diff.svg", svg, &mut failures);

    // The same input, the same bytes.
    let again = run_in(
        change.path(),
        &["graph", "head", "--base", "base", "--format", "svg"],
    );
    assert_eq!(&again.stdout, svg);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The report is one file: no script, nothing loaded from anywhere.
fn check_self_contained(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    for banned in ["<script", "<link", " src=", "url(http", "@import"] {
        assert!(!html.contains(banned), "the report contains {banned}");
    }
    let external = html
        .match_indices("http")
        .filter(|(i, _)| !html[*i..].starts_with("http://www.w3.org/2000/svg"))
        .count();
    assert_eq!(external, 0, "the only URL is the SVG namespace");
}

/// Chromium, which the test build installs (`mesh-test-tools` runs `.ci/setup`), or the one
/// `MESH_GITOPS_CHROMIUM` names; the test fails saying why when there is none.
fn chromium() -> PathBuf {
    mesh_test_tools::chromium()
        .unwrap_or_else(|why| panic!("the HTML report is tested in a real headless browser: {why}"))
}

/// The DOM Chromium built from `file`, after loading it headless.
fn dump_dom(file: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    loop {
        match child.try_wait().expect("chromium can be waited for") {
            Some(_) => break,
            None if started.elapsed() > Duration::from_secs(120) => {
                let _ = child.kill();
                panic!("chromium did not finish within 120 s");
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let out = child.wait_with_output().expect("chromium's output");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the DOM is UTF-8")
}

/// The part of `dom` from the element with `id` to the end of that section.
fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the rendered DOM:\n{dom}"));
    let rest = &dom[start..];
    let end = rest
        .find("</section>")
        .or_else(|| rest.find("</header>"))
        .unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn the_html_report_renders_in_a_headless_browser() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        &root().join("examples"),
        &["check", "web-socat", "--no-base", "--format", "html"],
    );
    assert_eq!(out.code, Some(3), "web's upstream is denied");
    let html = &out.stdout;
    check_self_contained(html);
    let file = dir.path().join("report.html");
    std::fs::write(&file, html).unwrap();
    let dom = dump_dom(&file);

    // The verdict comes first.
    let verdict = dom.find("id=\"verdict\"").expect("#verdict");
    for id in ["graph", "matrix", "findings", "simulation"] {
        let at = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("#{id} missing:\n{dom}"));
        assert!(verdict < at, "#verdict comes before #{id}");
    }
    assert!(section(&dom, "verdict").contains("mesh-gitops check: fail"));
    // #graph svg, with the denied upstream drawn.
    let graph = section(&dom, "graph");
    assert!(graph.contains("<svg"), "{graph}");
    assert!(
        graph.contains("class=\"edge declared-denied\" data-from=\"web\" data-to=\"socat\""),
        "{graph}"
    );
    // #matrix: web -> socat denied, by the deny intention, in the cell's tooltip.
    let matrix = section(&dom, "matrix");
    assert!(matrix.contains("<table"), "{matrix}");
    assert!(
        matrix.contains("<td class=\"deny declared\" title=\"web → socat: denied\ndeciding intention: web → socat (deny, precedence"),
        "{matrix}"
    );
    // #findings: grouped by file, with line numbers.
    let findings = section(&dom, "findings");
    assert!(
        findings.contains("<h3 class=\"file\">services/web.json</h3>")
            || findings.contains("<h3 class=\"file\">services/web.hcl</h3>"),
        "{findings}"
    );
    assert!(findings.contains("E1001"), "{findings}");
    assert!(findings.contains("<td><code>"), "line numbers: {findings}");
    // #simulation: the run `check` made, with its seed, trace hash and the refused probes.
    let sim = section(&dom, "simulation");
    assert!(
        sim.contains("<dt>seed</dt><dd><code>1</code></dd>"),
        "{sim}"
    );
    assert!(sim.contains("trace hash"), "{sim}");
    assert!(sim.contains("No violations."), "{sim}");
    assert!(sim.contains("10 probes, 0 not as expected."), "{sim}");
    assert!(!dom.contains("id=\"diff\""), "no base, no diff section");
}

#[test]
fn the_html_report_shows_what_a_change_opened_and_closed() {
    let change = dynamic_app_change();
    let out = run_in(
        change.path(),
        &["check", "head", "--base", "base", "--format", "html"],
    );
    out.assert_code(3);
    let html = &out.stdout;
    check_self_contained(html);
    let file = change.path().join("report.html");
    std::fs::write(&file, html).unwrap();
    let dom = dump_dom(&file);
    let diff = section(&dom, "diff");
    assert!(
        diff.contains("<tr class=\"closed\"><td>closed</td><td><code>dynamic-app</code></td><td><code>mysql-server</code></td>"),
        "{diff}"
    );
    assert!(section(&dom, "verdict")
        .contains("Compared with <code>base</code>: 0 edges opened, 1 edge closed."));
    assert!(section(&dom, "graph").contains("class=\"edge closed\""));
    assert!(section(&dom, "matrix").contains("deny declared closed"));
    assert!(section(&dom, "findings").contains("<span class=\"badge new\">new</span>"));
}
