//! The reconcile loop's latencies and idle cost, through the binary as users run it, against
//! `mesh-gitops serve` on loopback: time from `git commit` to applied (the status in KV names
//! the commit), time from a drift made through the API to healed, and the Consul requests an
//! idle reconciler makes per minute. `cargo bench --bench reconcile`; `MESH_BENCH_ROUNDS`
//! (default 5) and `MESH_BENCH_IDLE_SECS` (default 60) change the run.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Proc(Child, String);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str], marker: &str) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-gitops"))
        .args(args)
        .env_remove("CONSUL_HTTP_ADDR")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    let addr = loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("{args:?} exited before announcing its address");
        }
        if let Some(a) = line.split(marker).nth(1) {
            break a.trim().to_owned();
        }
    };
    std::thread::spawn(move || {
        let mut l = String::new();
        while stderr.read_line(&mut l).map(|n| n > 0).unwrap_or(false) {
            l.clear();
        }
    });
    Proc(child, addr)
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client")
}

fn applied_revision(consul: &str) -> Option<String> {
    let r = http()
        .get(format!(
            "http://{consul}/v1/kv/mesh-gitops/bench/status?raw"
        ))
        .send()
        .ok()?;
    let v: Value = serde_json::from_slice(&r.bytes().ok()?).ok()?;
    v["applied_revision"].as_str().map(str::to_owned)
}

fn metric(metrics: &str, name: &str) -> f64 {
    http()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn requests(metrics: &str) -> f64 {
    metric(metrics, "mesh_gitops_consul_requests_total")
}

fn wait(what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !f() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}

fn commit(repo: &git2::Repository, dir: &Path, protocol: &str, n: usize) -> String {
    std::fs::write(
        dir.join("defaults.hcl"),
        format!("Kind = \"service-defaults\"\nName = \"api\"\nProtocol = \"{protocol}\"\n"),
    )
    .expect("write");
    let mut index = repo.index().expect("index");
    index
        .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    index.write().expect("index write");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let sig = git2::Signature::now("bench", "bench@example.com").expect("signature");
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(
        Some("HEAD"),
        &sig,
        &sig,
        &format!("change {n}"),
        &tree,
        &parents,
    )
    .expect("commit")
    .to_string()
}

fn reconciler(consul: &str, repo: &Path, cache: &Path, interval: &str) -> Proc {
    spawn(
        &[
            "reconcile",
            "--source",
            repo.to_str().expect("utf-8"),
            "--consul",
            &format!("http://{consul}"),
            "--interval",
            interval,
            "--listen",
            "127.0.0.1:0",
            "--cache-dir",
            cache.to_str().expect("utf-8"),
            "--lock-ttl",
            "15s",
        ],
        "reconciler listening on http://",
    )
}

fn stats(label: &str, mut d: Vec<Duration>) {
    d.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label}: median {:.0} ms, min {:.0} ms, max {:.0} ms over {} round(s)",
        ms(d[d.len() / 2]),
        ms(d[0]),
        ms(d[d.len() - 1]),
        d.len()
    );
}

fn main() {
    let rounds: usize = std::env::var("MESH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let idle_secs: u64 = std::env::var("MESH_BENCH_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let server = spawn(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            state.to_str().expect("utf-8"),
        ],
        "listening on http://",
    );
    let consul = server.1.clone();
    let dir: PathBuf = tmp.path().join("repo");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut opts = git2::RepositoryInitOptions::new();
    opts.initial_head("main");
    let repo = git2::Repository::init_opts(&dir, &opts).expect("git init");
    std::fs::write(
        dir.join("mesh-gitops.hcl"),
        "datacenter = \"dc1\"\nowner = \"bench\"\n",
    )
    .expect("write");
    let first = commit(&repo, &dir, "tcp", 0);
    let cache = tmp.path().join("cache");

    // Commit to applied, with a 1 s fetch interval.
    let rec = reconciler(&consul, &dir, &cache, "1s");
    wait("the first commit", || {
        applied_revision(&consul).as_deref() == Some(first.as_str())
    });
    let mut latencies = Vec::new();
    for n in 1..=rounds {
        let protocol = if n % 2 == 1 { "http" } else { "tcp" };
        let rev = commit(&repo, &dir, protocol, n);
        latencies.push(wait("a commit", || {
            applied_revision(&consul).as_deref() == Some(rev.as_str())
        }));
    }
    println!("reconcile --interval 1s against mesh-gitops serve on loopback");
    stats("commit to applied", latencies);

    // Drift to healed: the entry changed through the API, keeping the owner's mark.
    let url = format!("http://{consul}/v1/config/service-defaults/api");
    let mut heals = Vec::new();
    for _ in 0..rounds {
        let mut entry: Value = http().get(&url).send().expect("get").json().expect("json");
        let want = entry["Protocol"].clone();
        entry["Protocol"] = if want == "http" { "grpc" } else { "http2" }.into();
        http()
            .put(format!("http://{consul}/v1/config"))
            .body(entry.to_string())
            .send()
            .expect("put");
        heals.push(wait("a heal", || {
            http()
                .get(&url)
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["Protocol"] == want)
        }));
        std::thread::sleep(Duration::from_millis(300));
    }
    stats("drift to healed", heals);
    // A clean stop releases the lock at once (a killed leader would hold it for 2 x TTL).
    let mut rec = rec;
    let pid = rec.0.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = rec.0.wait();

    // Idle: the default interval, nothing changing, once the new leader has settled.
    let rec = reconciler(&consul, &dir, &cache, "1m");
    wait("the idle reconciler to lead", || {
        metric(&rec.1, "mesh_gitops_leader") == 1.0
            && metric(&rec.1, "mesh_gitops_reconcile_duration_seconds_count") >= 1.0
    });
    std::thread::sleep(Duration::from_secs(2));
    let before = requests(&rec.1);
    std::thread::sleep(Duration::from_secs(idle_secs));
    let after = requests(&rec.1);
    println!(
        "idle (--interval 1m, --lock-ttl 15s, one leader): {:.0} Consul requests per minute (measured over {idle_secs} s)",
        (after - before) * 60.0 / idle_secs as f64
    );
}
