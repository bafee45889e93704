//! Plan and apply at scale against the embedded control plane, through the binary as users run
//! it: a repository of 10,000 config entries applied from empty, planned again with nothing to
//! change (wall time and the number of HTTP requests the plan made), then 1,000 of them changed
//! and applied. `cargo bench --bench apply`; `MESH_BENCH_ENTRIES` changes the size.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn run(cwd: &Path, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mesh-gitops"))
        .args(args)
        .current_dir(cwd)
        .env_remove("CONSUL_HTTP_ADDR")
        .output()
        .expect("the binary runs");
    let took = started.elapsed();
    assert!(
        matches!(out.status.code(), Some(0) | Some(2)),
        "{:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    (out, took)
}

fn write_repo(dir: &Path, n: usize, protocol_of: impl Fn(usize) -> &'static str) {
    std::fs::create_dir_all(dir.join("defaults")).unwrap();
    std::fs::create_dir_all(dir.join("intentions")).unwrap();
    for i in 0..n / 2 {
        std::fs::write(
            dir.join(format!("defaults/svc-{i:05}.hcl")),
            format!(
                "Kind = \"service-defaults\"\nName = \"svc-{i:05}\"\nProtocol = \"{}\"\n",
                protocol_of(i)
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("intentions/svc-{i:05}.hcl")),
            format!(
                "Kind = \"service-intentions\"\nName = \"svc-{i:05}\"\nSources = [\n  {{ Name = \"svc-{:05}\", Action = \"allow\" }},\n]\n",
                (i + 1) % (n / 2)
            ),
        )
        .unwrap();
    }
}

fn main() {
    let n: usize = std::env::var("MESH_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let cwd = tempfile::tempdir().unwrap();
    let repo = cwd.path().join("repo");
    write_repo(&repo, n, |_| "tcp");
    let r = repo.to_str().unwrap();
    let (_, create) = run(cwd.path(), &["apply", r, "--skip-check"]);
    println!(
        "apply of {n} creates (empty control plane): {:.2} s",
        create.as_secs_f64()
    );
    let mut best = Duration::MAX;
    let mut stats = String::new();
    for _ in 0..3 {
        let (out, took) = run(cwd.path(), &["plan", r]);
        assert_eq!(out.status.code(), Some(0), "the plan is a no-op");
        best = best.min(took);
        stats = String::from_utf8_lossy(&out.stderr)
            .lines()
            .find(|l| l.starts_with("read "))
            .unwrap_or_default()
            .to_owned();
    }
    println!(
        "no-op plan of {n} entries (best of 3, whole process incl. loading): {:.3} s",
        best.as_secs_f64()
    );
    println!("  {stats}");
    // 1,000 changes: the first 1,000 service-defaults change protocol.
    write_repo(&repo, n, |i| if i < 1_000 { "http" } else { "tcp" });
    let (out, change) = run(cwd.path(), &["apply", r, "--skip-check"]);
    let summary = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    println!(
        "apply of 1,000 changes into {n} entries: {:.2} s ({summary})",
        change.as_secs_f64()
    );
}
