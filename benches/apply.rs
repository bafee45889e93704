//! Plan and apply at scale through `mesh-apply` against the embedded control plane, started
//! in-process as `apply` starts it: a repository of 10,000 config entries applied from empty,
//! planned again with nothing to change (wall time and the number of HTTP requests the plan
//! made), then 1,000 of them changed and applied. `cargo bench --bench apply`;
//! `MESH_BENCH_ENTRIES` changes the size.
//!
//! Against a plain client: the same entries written one after another over one keep-alive
//! connection, each into a fresh control plane, beside `apply --parallelism 1` (goal: within
//! 1.3x of it) and `apply` at its default parallelism (goal: at least 3x faster than it).

use mesh_apply::{ApplyConfig, Target};
use std::path::Path;
use std::time::{Duration, Instant};

fn load(repo: &Path) -> mesh_loader::Loaded {
    let loaded = mesh_loader::load_dir(repo, &Default::default());
    assert!(!loaded.has_errors(), "the repository validates");
    loaded
}

/// Loads and applies (without the gate, as `apply --skip-check`); the writes and the time.
async fn apply(repo: &Path, target: &Target, config: &ApplyConfig) -> (usize, Duration) {
    let started = Instant::now();
    let loaded = load(repo);
    let report = mesh_apply::apply(&loaded, target, config, &|| false, &mut |_| {})
        .await
        .expect("the apply succeeds");
    (report.writes, started.elapsed())
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
    let config = ApplyConfig {
        state_dir: cwd.path().join(".mesh-gitops"),
        ..ApplyConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let settings = load(&repo).state.settings.acl;
        let target = mesh_apply::connect_with_env(&config, settings, &|_| None)
            .await
            .expect("the embedded control plane starts");
        let plain = plain_client(&repo, &cwd.path().join("plain")).await;
        println!("plain client, {n} sequential writes: {plain:.2} s");
        let sequential = ApplyConfig {
            state_dir: cwd.path().join("sequential"),
            parallelism: Some(1),
            ..ApplyConfig::default()
        };
        let fresh = mesh_apply::connect_with_env(&sequential, settings, &|_| None)
            .await
            .expect("the embedded control plane starts");
        let (_, one) = apply(&repo, &fresh, &sequential).await;
        println!(
            "apply --parallelism 1 of {n} creates: {:.2} s, {:.2}x the plain client (goal: at most 1.3x)",
            one.as_secs_f64(),
            one.as_secs_f64() / plain
        );
        let (_, create) = apply(&repo, &target, &config).await;
        println!(
            "apply --parallelism {} of {n} creates: {:.2} s, {:.1}x faster than the plain client (goal: at least 3x)",
            mesh_apply::DEFAULT_PARALLELISM,
            create.as_secs_f64(),
            plain / create.as_secs_f64()
        );
        println!(
            "apply of {n} creates (empty control plane): {:.2} s",
            create.as_secs_f64()
        );
        let mut best = Duration::MAX;
        let mut stats = None;
        for _ in 0..3 {
            let started = Instant::now();
            let loaded = load(&repo);
            let (plan, s) = mesh_apply::make_plan(&loaded, &target, &config)
                .await
                .expect("the plan succeeds");
            assert!(plan.steps.is_empty(), "the plan is a no-op");
            best = best.min(started.elapsed());
            stats = Some(s);
        }
        println!(
            "no-op plan of {n} entries (best of 3, incl. loading): {:.3} s",
            best.as_secs_f64()
        );
        if let Some(s) = stats {
            println!(
                "  read {} object(s) with {} request(s); planned in {} ms",
                s.objects,
                s.requests,
                s.elapsed.as_millis()
            );
        }
        // 1,000 changes: the first 1,000 service-defaults change protocol.
        write_repo(&repo, n, |i| if i < 1_000 { "http" } else { "tcp" });
        let (writes, change) = apply(&repo, &target, &config).await;
        println!(
            "apply of 1,000 changes into {n} entries: {:.2} s ({writes} change(s))",
            change.as_secs_f64()
        );
    });
}

/// The repository's entries written by a plain client, one request at a time over one
/// keep-alive connection, into a fresh embedded control plane; the seconds it took.
async fn plain_client(repo: &Path, state_dir: &Path) -> f64 {
    let loaded = load(repo);
    let config = ApplyConfig {
        state_dir: state_dir.to_owned(),
        ..ApplyConfig::default()
    };
    let target = mesh_apply::connect_with_env(&config, loaded.state.settings.acl, &|_| None)
        .await
        .expect("the embedded control plane starts");
    let started = Instant::now();
    for entry in &loaded.state.config_entries {
        let written = target
            .client
            .put_config_entry(entry, None)
            .await
            .expect("the write succeeds");
        assert!(written, "the write is applied");
    }
    started.elapsed().as_secs_f64()
}
