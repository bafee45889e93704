//! The GitHub Action (`action.yml`) and the release it downloads, kept honest: every flag the
//! action passes exists in the binary's `--help`, every input it reads is declared, the release
//! workflow uploads exactly the assets the installer asks for; and its scripts run against a
//! local stand-in for GitHub (an HTTP server on a loopback port): the installer checks the
//! archive's checksum, the report comment is created once, then updated in place.

mod common;

use common::live::{put, read_only_token, serve_with_acls};
use common::{mesh_gitops, root};
use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// A YAML file as JSON values (strings stay strings: `on:` is not a boolean here).
fn yaml(path: &str) -> Value {
    fn conv(y: &Yaml) -> Value {
        match y {
            Yaml::Value(Scalar::String(s)) => Value::String(s.to_string()),
            Yaml::Value(Scalar::Boolean(b)) => Value::String(b.to_string()),
            Yaml::Value(Scalar::Integer(i)) => Value::String(i.to_string()),
            Yaml::Value(Scalar::Null) => Value::Null,
            Yaml::Representation(s, _, _) => Value::String(s.to_string()),
            Yaml::Sequence(items) => items.iter().map(conv).collect(),
            Yaml::Mapping(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (conv(k).as_str().unwrap_or("").to_owned(), conv(v)))
                    .collect(),
            ),
            other => panic!("unexpected YAML {other:?}"),
        }
    }
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let docs = Yaml::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    conv(&docs[0])
}

fn words(text: &str, re: &str) -> BTreeSet<String> {
    regex::Regex::new(re)
        .unwrap()
        .captures_iter(text)
        .map(|c| c[1].to_owned())
        .collect()
}

fn step<'a>(action: &'a Value, id: &str) -> &'a Value {
    action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("action.yml has no step {id}"))
}

#[test]
fn the_action_passes_only_flags_and_formats_check_has() {
    let action = yaml("action.yml");
    assert_eq!(action["runs"]["using"], "composite");
    let script = step(&action, "check")["run"].as_str().unwrap();
    let help = mesh_gitops(&["check", "--help"]).run();
    help.assert_success();
    let flags = words(script, r"(--[a-z][a-z-]*)");
    assert!(
        flags.contains("--output") && flags.contains("--base"),
        "{flags:?}"
    );
    for flag in &flags {
        assert!(
            help.stdout.contains(flag.as_str()),
            "check --help lacks {flag}"
        );
    }
    // Every format the action writes is one check renders.
    let formats = words(script, r#"--output "?([a-z]+)[=" )]"#);
    assert!(
        formats.len() >= 6 && formats.contains("github"),
        "{formats:?}"
    );
    for format in formats {
        let run = mesh_gitops(&["check", "--help"]).run();
        let known = run.stdout.split("possible values:").nth(1).unwrap_or("");
        assert!(
            known.contains(&format),
            "check does not know the format {format}"
        );
    }
    // check runs once.
    let runs = script
        .lines()
        .filter(|l| l.trim_start().starts_with("mesh-gitops "))
        .count();
    assert_eq!(runs, 1, "one run of mesh-gitops in the check step");
}

#[test]
fn every_input_the_action_reads_is_declared_and_the_example_uses_the_action() {
    let action = yaml("action.yml");
    let text = std::fs::read_to_string(root().join("action.yml")).unwrap();
    let declared: BTreeSet<String> = action["inputs"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let used = words(&text, r"inputs\.([a-z][a-z-]*)");
    assert!(
        used.is_subset(&declared),
        "used {used:?}, declared {declared:?}"
    );
    // Consul's address reaches `check --consul`; the token only its environment.
    for input in ["consul-address", "consul-token"] {
        assert!(declared.contains(input), "{declared:?}");
    }
    let check = step(&action, "check");
    assert_eq!(
        check["env"]["CONSUL_HTTP_TOKEN"],
        "${{ inputs.consul-token }}"
    );
    assert!(!check["run"].as_str().unwrap().contains("CONSUL_HTTP_TOKEN"));
    assert_eq!(
        text.matches("inputs.consul-token").count(),
        1,
        "the token is read once, into the environment"
    );

    let example = yaml("examples/github/mesh-gitops-check.yml");
    let steps = example["jobs"]["check"]["steps"].as_array().unwrap();
    let uses: Vec<&Value> = steps
        .iter()
        .filter(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("mesh-gitops/mesh-gitops@"))
        })
        .collect();
    assert_eq!(uses.len(), 1, "the example uses the action once");
    for key in uses[0]["with"]
        .as_object()
        .into_iter()
        .flat_map(|w| w.keys())
    {
        assert!(
            declared.contains(key),
            "the example passes {key}, which action.yml lacks"
        );
    }
    assert!(
        steps.iter().all(|s| s.get("run").is_none()),
        "the example runs nothing itself"
    );
}

#[test]
fn the_release_uploads_exactly_the_assets_the_installer_downloads() {
    let release = yaml(".github/workflows/release.yml");
    let built: BTreeSet<String> = release["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap().to_owned())
        .collect();
    let install = std::fs::read_to_string(root().join("action/install.sh")).unwrap();
    let wanted = words(&install, r"\) target=([a-z0-9_-]+) ;;");
    assert_eq!(built, wanted, "release targets and installer targets");
    for t in &built {
        assert!(t.contains("musl") || t.contains("apple-darwin"), "{t}");
    }
    let text = std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap();
    assert!(text.contains("dist/mesh-gitops-${{ matrix.target }}.tar.gz mesh-gitops"));
    assert!(text.contains("sha256sum mesh-gitops-*.tar.gz > SHA256SUMS"));
    assert!(install.contains(r#"asset="mesh-gitops-$target.tar.gz""#));
    assert!(install.contains(r#""$url/SHA256SUMS""#));
    assert!(install.contains("releases/download/$version"));
}

/// A request as the stand-in saw it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    authorization: Option<String>,
    body: String,
}

type Handler = dyn Fn(&Request) -> (u16, Vec<u8>) + Send + Sync;

/// An HTTP/1.1 server on a loopback port answering with `handler`, one connection at a time.
fn stand_in(handler: Arc<Handler>) -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() || line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or("").to_owned(),
                parts.next().unwrap_or("").to_owned(),
            );
            let (mut length, mut authorization) = (0, None);
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (name, value) = h.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap(),
                    "authorization" => authorization = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let request = Request {
                method,
                path,
                authorization,
                body: String::from_utf8(body).unwrap(),
            };
            let (code, answer) = handler(&request);
            log.lock().unwrap().push(request);
            let head = format!(
                "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                answer.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&answer);
        }
    });
    (url, seen)
}

fn bash(script: &str, args: &[&str], env: &[(&str, &str)], cwd: &Path) -> std::process::Output {
    let mut c = Command::new("bash");
    c.arg(root().join(script)).args(args).current_dir(cwd);
    for k in [
        "GITHUB_TOKEN",
        "GITHUB_API_URL",
        "GITHUB_SERVER_URL",
        "GITHUB_PATH",
    ] {
        c.env_remove(k);
    }
    c.envs(env.iter().copied());
    c.output().unwrap()
}

#[test]
fn the_installer_installs_the_release_binary_only_when_its_checksum_matches() {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("pack");
    std::fs::create_dir_all(&pack).unwrap();
    // A stand-in for the release binary (the real one is large to pack in a test): what the
    // installer runs last is its `--version`.
    std::fs::write(
        pack.join("mesh-gitops"),
        "#!/bin/sh\necho 'mesh-gitops 9.9.9 (revision 0123456789ab)'\n",
    )
    .unwrap();
    let asset = "mesh-gitops-x86_64-unknown-linux-musl.tar.gz";
    let status = Command::new("tar")
        .current_dir(&pack)
        .args(["-czf", asset, "mesh-gitops"])
        .status()
        .unwrap();
    assert!(status.success());
    let archive = std::fs::read(pack.join(asset)).unwrap();
    let sums = Command::new("sha256sum")
        .current_dir(&pack)
        .arg(asset)
        .output()
        .unwrap();
    let good = String::from_utf8(sums.stdout).unwrap();
    let sums_file = Arc::new(Mutex::new(good.clone()));
    let served = sums_file.clone();
    let (url, seen) = stand_in(Arc::new(move |r: &Request| {
        let base = "/mesh-gitops/mesh-gitops/releases/download/v9.9.9/";
        match r.path.strip_prefix(base) {
            Some(name) if name == asset => (200, archive.clone()),
            Some("SHA256SUMS") => (200, served.lock().unwrap().clone().into_bytes()),
            _ => (404, b"not found".to_vec()),
        }
    }));
    let install = |tag: &str| {
        let temp = tempfile::tempdir().unwrap();
        let path_file = temp.path().join("github-path");
        let out = bash(
            "action/install.sh",
            &[tag],
            &[
                ("RUNNER_OS", "Linux"),
                ("RUNNER_ARCH", "X64"),
                ("RUNNER_TEMP", temp.path().to_str().unwrap()),
                ("GITHUB_PATH", path_file.to_str().unwrap()),
                ("GITHUB_SERVER_URL", &url),
                ("MESH_GITOPS_RELEASES", "mesh-gitops/mesh-gitops"),
            ],
            temp.path(),
        );
        let path = std::fs::read_to_string(&path_file).unwrap_or_default();
        (out, path, temp)
    };

    let (out, path, temp) = install("v9.9.9");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin_dir = temp.path().join("mesh-gitops-bin");
    assert_eq!(path.trim(), bin_dir.to_str().unwrap());
    assert!(
        stdout.contains("mesh-gitops 9.9.9 (revision 0123456789ab)"),
        "{stdout}"
    );
    assert!(bin_dir.join("mesh-gitops").exists());
    assert!(seen.lock().unwrap().iter().any(|r| r.path.ends_with(asset)));

    // A tampered sum, and a sum file without this asset: nothing is installed.
    *sums_file.lock().unwrap() = good.replacen(&good[..8], "00000000", 1);
    let (out, path, _t) = install("v9.9.9");
    assert!(!out.status.success() && path.is_empty());
    *sums_file.lock().unwrap() = "0000  mesh-gitops-aarch64-apple-darwin.tar.gz\n".into();
    let (out, path, _t) = install("v9.9.9");
    assert!(!out.status.success() && path.is_empty());
    assert!(String::from_utf8_lossy(&out.stdout).contains("has no checksum for"));
}

#[test]
fn the_report_comment_is_created_once_then_updated_in_place() {
    // The issue's comments: someone else's, then whatever the script writes.
    let comments = Arc::new(Mutex::new(vec![json!({"id": 1, "body": "looks good"})]));
    let store = comments.clone();
    let (url, seen) = stand_in(Arc::new(move |r: &Request| {
        let mut all = store.lock().unwrap();
        let ok = |v: &Value| (200, v.to_string().into_bytes());
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", p) if p.starts_with("/repos/o/r/issues/7/comments?") => {
                ok(&Value::Array(all.clone()))
            }
            ("POST", "/repos/o/r/issues/7/comments") => {
                let body: Value = serde_json::from_str(&r.body).unwrap();
                let c = json!({"id": 100 + all.len(), "body": body["body"]});
                all.push(c.clone());
                (201, c.to_string().into_bytes())
            }
            ("PATCH", p) if p.starts_with("/repos/o/r/issues/comments/") => {
                let id: u64 = p.rsplit('/').next().unwrap().parse().unwrap();
                let body: Value = serde_json::from_str(&r.body).unwrap();
                let c = all.iter_mut().find(|c| c["id"] == id).unwrap();
                c["body"] = body["body"].clone();
                ok(c)
            }
            _ => (404, b"{}".to_vec()),
        }
    }));
    let dir = tempfile::tempdir().unwrap();
    let comment = |report: &str| {
        std::fs::write(dir.path().join("report.md"), report).unwrap();
        let out = bash(
            "action/comment.sh",
            &["report.md", "7"],
            &[
                ("GITHUB_TOKEN", "t0ken"),
                ("GITHUB_REPOSITORY", "o/r"),
                ("GITHUB_API_URL", &url),
            ],
            dir.path(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    assert_eq!(comment("## check: fail\n"), "created the report comment\n");
    assert_eq!(
        comment("## check: pass\n"),
        "updated the report comment (101)\n"
    );
    assert_eq!(
        comment("## check: pass again\n"),
        "updated the report comment (101)\n"
    );
    let all = comments.lock().unwrap().clone();
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(
        all[0]["body"], "looks good",
        "another comment is left alone"
    );
    let body = all[1]["body"].as_str().unwrap();
    assert!(
        body.starts_with("<!-- mesh-gitops check -->\n## check: pass again"),
        "{body}"
    );
    let seen = seen.lock().unwrap();
    assert!(seen
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer t0ken")));
    assert_eq!(seen.iter().filter(|r| r.method == "POST").count(), 1);
}

/// The check step's script, run as the runner runs it, with `consul-address` and `consul-token`
/// set, against a `serve` with ACLs enforced and a token holding only the read-only policy:
/// `check --consul` runs once, the token reaches it through the environment only, and the
/// report lands in the job summary.
#[test]
fn the_check_step_reads_the_live_mesh_with_the_token_in_the_environment_only() {
    let tmp = tempfile::tempdir().unwrap();
    let s = serve_with_acls(&tmp.path().join("state"));
    let repo = tmp.path().join("repo");
    common::copy_dir(&root().join("examples/shared-destination/frontend"), &repo);
    put(
        &s,
        "/v1/agent/service/register",
        json!({"Name": "legacy", "Port": 7000, "Connect": {"SidecarService": {"Proxy": {
            "Upstreams": [{"DestinationName": "api", "LocalBindPort": 9191}]}}}}),
    );
    let token = read_only_token(&s);
    // `mesh-gitops` on PATH records its arguments, then runs the real binary.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let argv = tmp.path().join("argv");
    let wrapper = bin.join("mesh-gitops");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\nexec '{}' \"$@\"\n",
            argv.display(),
            env!("CARGO_BIN_EXE_mesh-gitops")
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let action = yaml("action.yml");
    let script = tmp.path().join("check.sh");
    std::fs::write(&script, step(&action, "check")["run"].as_str().unwrap()).unwrap();
    let (summary, outputs) = (tmp.path().join("summary.md"), tmp.path().join("outputs"));
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-e")
        .arg(&script)
        .current_dir(tmp.path())
        .env("PATH", path)
        .env("INPUT_PATH", &repo)
        .env("INPUT_BASE", "")
        .env("INPUT_FORMATS", "sarif json")
        .env("INPUT_CONSUL_ADDRESS", s.url())
        .env("CONSUL_HTTP_TOKEN", &token)
        .env("BASE_REF", "main")
        .env("RUNNER_TEMP", tmp.path())
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env_remove("CONSUL_HTTP_ADDR")
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    let args = std::fs::read_to_string(&argv).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(
        args.iter().filter(|a| **a == "check").count(),
        1,
        "{args:?}"
    );
    let consul = args
        .iter()
        .position(|a| *a == "--consul")
        .expect("--consul");
    assert_eq!(args[consul + 1], s.url());
    assert!(
        !args.contains(&"--base"),
        "the live mesh replaces the base: {args:?}"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.contains(&format!("Reachability since `Consul at {}`", s.url())),
        "{summary}"
    );
    let outputs = std::fs::read_to_string(&outputs).unwrap();
    assert!(outputs.contains("exit-code=0"), "{outputs}\n{log}");
    let report =
        std::fs::read_to_string(tmp.path().join("mesh-gitops-reports/mesh-gitops.json")).unwrap();
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["live"]["only_live"], json!(["legacy"]));
    for text in [args.join(" "), summary, outputs, log] {
        assert!(!text.contains(&token), "the token leaked: {text}");
    }
}
