//! The reconcile loop under chaos, end to end: one `mesh-gitops serve` failing a tenth of its
//! requests (`--inject-faults 0.1`: a 503, a delay, or a connection dropped after the request
//! was handled), two `reconcile` replicas following one git repository, the leader killed with
//! SIGKILL again and again (and restarted under a new name), one paused with SIGSTOP until
//! another leads and then resumed, and an outside writer meanwhile
//! writing KV keys and a config entry of its own and overwriting an entry mesh-gitops owns.
//!
//! The server's write log (`serve --audit-log`) is the witness: it records every request that
//! changed state, in the order the server handled it, with the replica named in its
//! `User-Agent` and the holder of the leader lock when it arrived. At the end Consul matches
//! the repository, every write of a replica was made while that very process held the lock,
//! and every acknowledged outside write to an object mesh-gitops does not own is still there.

mod common;

use common::git::Repo;
use common::mesh_gitops;
use common::serve::{Proc, Serve, ServeOpts};

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OWNER: &str = "team";
const LOCK: &str = "mesh-gitops/team/leader";
const KILLS: usize = 3;

const SETTINGS: &str = "datacenter = \"dc1\"\nowner = \"team\"\n";
const INTENTION: &str = "Kind = \"service-intentions\"\nName = \"count-api\"\nSources = [\n  { Name = \"count-dashboard\", Action = \"allow\" },\n]\n";

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent("outside-writer")
        .build()
        .unwrap()
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A GET that succeeded (the server injects faults: callers retry through `wait_for`).
fn get(server: &str, path: &str) -> Option<reqwest::blocking::Response> {
    let r = http().get(format!("http://{server}{path}")).send().ok()?;
    r.status().is_success().then_some(r)
}

fn get_json(server: &str, path: &str) -> Option<Value> {
    get(server, path)?.json().ok()
}

/// A PUT acknowledged by the server: a 200 whose body arrived (a dropped connection or a 503
/// is not an acknowledgement, whether or not the write happened).
fn put_acked(server: &str, path: &str, body: String) -> bool {
    let Ok(r) = http()
        .put(format!("http://{server}{path}"))
        .body(body)
        .send()
    else {
        return false;
    };
    r.status().is_success() && r.text().is_ok_and(|t| t.trim() == "true")
}

/// Puts until acknowledged; retrying the same write is idempotent.
fn put_until_acked(server: &str, path: &str, body: String) {
    wait_for(
        &format!("an acknowledged PUT {path}"),
        Duration::from_secs(30),
        || put_acked(server, path, body.clone()).then_some(()),
    );
}

/// The replica holding the leader lock, as the lock's value names it.
fn leader(server: &str) -> Option<String> {
    let v: Value = get_json(server, &format!("/v1/kv/{LOCK}"))?;
    v[0].get("Session")?;
    let raw = get(server, &format!("/v1/kv/{LOCK}?raw"))?.bytes().ok()?;
    let value: Value = serde_json::from_slice(&raw).ok()?;
    value["leader"].as_str().map(str::to_owned)
}

fn signal(p: &Proc, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

fn reconcile(dir: &Path, server: &str, repo: &Path, id: &str) -> Proc {
    let consul = format!("http://{server}");
    let cache = dir.join(format!("cache-{id}"));
    let cmd = mesh_gitops(&[
        "reconcile",
        "--source",
        repo.to_str().unwrap(),
        "--consul",
        &consul,
        "--interval",
        "1s",
        "--listen",
        "127.0.0.1:0",
        "--lock-ttl",
        "10s",
        "--id",
        id,
        "--cache-dir",
        cache.to_str().unwrap(),
    ])
    .env("RUST_LOG", "info");
    Proc::spawn(
        &cmd,
        "reconciler listening on http://",
        dir.join(format!("reconcile-{id}.log")),
    )
}

/// What the outside writer had acknowledged when it stopped.
#[derive(Default)]
struct Acked {
    /// KV key -> value.
    kv: BTreeMap<String, String>,
    /// The last acknowledged Protocol of its own service-defaults entry.
    protocol: Option<String>,
    /// Overwrites of the owned intention.
    overwrites: usize,
}

/// Writes, until `stop`: a new KV key each round, its own unmarked service-defaults entry with
/// a new protocol, and the owned intention replaced by a file of its own (no mark, denying).
/// Each write is retried until acknowledged before the next, so the last acknowledged value of
/// each object is the last one written to it.
fn outside_writer(server: String, stop: Arc<AtomicBool>) -> Acked {
    let mut acked = Acked::default();
    let protocols = ["http", "grpc", "tcp", "http2"];
    for round in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let key = format!("outside/config/key-{round}");
        let value = format!("value {round}");
        put_until_acked(&server, &format!("/v1/kv/{key}"), value.clone());
        acked.kv.insert(key, value);

        let protocol = protocols[round % protocols.len()];
        let entry =
            json!({"Kind": "service-defaults", "Name": "outside-api", "Protocol": protocol});
        put_until_acked(&server, "/v1/config", entry.to_string());
        acked.protocol = Some(protocol.to_owned());

        let overwrite = json!({
            "Kind": "service-intentions", "Name": "count-api",
            "Sources": [{"Name": "count-dashboard", "Action": "deny"}],
        });
        put_until_acked(&server, "/v1/config", overwrite.to_string());
        acked.overwrites += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    acked
}

/// Consul matches the repository: `plan` exits 0 (it exits 2 for a change, 1 on an error,
/// which a fault may cause), and the declared entries carry the owner's mark.
fn converged(server: &Serve, repo: &Repo, last: &mut String) -> Option<()> {
    let plan = server
        .mesh_gitops(&["plan", repo.dir.to_str().unwrap()])
        .run();
    *last = format!(
        "plan exited {:?}:\n{}{}",
        plan.code, plan.stdout, plan.stderr
    );
    if plan.code != Some(0) {
        return None;
    }
    let intention = get_json(&server.proc.addr, "/v1/config/service-intentions/count-api")?;
    let defaults = get_json(&server.proc.addr, "/v1/config/service-defaults/count-api")?;
    let sources = intention["Sources"].as_array()?;
    (sources.len() == 1
        && sources[0]["Name"] == "count-dashboard"
        && sources[0]["Action"] == "allow"
        && intention["Meta"]["mesh-gitops-owner"] == OWNER
        && defaults["Protocol"] == "http"
        && defaults["Meta"]["mesh-gitops-owner"] == OWNER)
        .then_some(())
}

/// Every write a replica made, from the server's write log: `(seq, replica, lock holder when it
/// arrived, method and path)`. The lock's own traffic (sessions, acquire and release) is left
/// out: it is how a replica becomes the holder.
fn replica_writes(audit: &Path) -> Vec<(u64, String, String, String)> {
    let text = std::fs::read_to_string(audit).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|l| {
            let replica = l["user_agent"]
                .as_str()?
                .strip_prefix("mesh-gitops reconcile ")?
                .to_owned();
            let path = l["path"].as_str().unwrap();
            if path.starts_with("/v1/session/") || path.starts_with(&format!("/v1/kv/{LOCK}")) {
                return None;
            }
            let holder = l["locks"][LOCK].as_str().map_or_else(String::new, |n| {
                n.trim_start_matches("mesh-gitops ").to_owned()
            });
            let what = format!("{} {path}", l["method"].as_str().unwrap());
            Some((l["seq"].as_u64().unwrap(), replica, holder, what))
        })
        .collect()
}

#[test]
fn converges_under_faults_leader_kills_and_an_outside_writer() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let server = Serve::start(
        &dir.path().join("state"),
        ServeOpts {
            extra: vec![
                "--inject-faults".into(),
                "0.1".into(),
                "--audit-log".into(),
                audit.to_str().unwrap().into(),
            ],
            env: vec![("RUST_LOG".into(), "info".into())],
            log: Some(dir.path().join("serve.log")),
            ..ServeOpts::default()
        },
    );
    let addr = server.proc.addr.clone();
    let repo = Repo::init(&dir.path().join("repo"));
    repo.write("mesh-gitops.hcl", SETTINGS);
    repo.write("intentions/count-api.hcl", INTENTION);
    repo.write(
        "defaults/count-api.hcl",
        "Kind = \"service-defaults\"\nName = \"count-api\"\nProtocol = \"tcp\"\n",
    );
    repo.commit("count-api");

    // Two replicas; each restart gets a new name, so the write log tells processes apart
    // (the killed process's session keeps the lock until it expires).
    let mut names = ["a", "b"].map(|n| (n, 1));
    let mut procs: Vec<Proc> = names
        .iter()
        .map(|(n, i)| reconcile(dir.path(), &addr, &repo.dir, &format!("{n}{i}")))
        .collect();
    // The outside writer starts once mesh-gitops has created (and so owns) the intention: one
    // written first by someone else would be theirs, and rightly left alone.
    wait_for("the first apply", Duration::from_secs(60), || {
        get_json(&addr, "/v1/config/service-intentions/count-api")
            .filter(|e| e["Meta"]["mesh-gitops-owner"] == OWNER)
    });
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (server, stop) = (addr.clone(), stop.clone());
        std::thread::spawn(move || outside_writer(server, stop))
    };

    let mut killed = Vec::new();
    for round in 0..KILLS {
        // Wait for a live replica to lead, then for it to have written (the owned intention
        // it heals after each overwrite carries the mark again).
        let live: Vec<String> = names.iter().map(|(n, i)| format!("{n}{i}")).collect();
        let holder = wait_for("a live leader", Duration::from_secs(60), || {
            leader(&addr).filter(|l| live.contains(l))
        });
        wait_for("the leader to write", Duration::from_secs(60), || {
            replica_writes(&audit)
                .iter()
                .any(|(_, r, _, _)| *r == holder)
                .then_some(())
        });
        if round == 1 {
            // A commit while the loop is being killed: the next leader applies it.
            repo.write(
                "defaults/count-api.hcl",
                "Kind = \"service-defaults\"\nName = \"count-api\"\nProtocol = \"http\"\n",
            );
            repo.commit("count-api speaks http");
        }
        let slot = names
            .iter()
            .position(|(n, i)| format!("{n}{i}") == holder)
            .unwrap();
        procs[slot].kill();
        killed.push(holder);
        names[slot].1 += 1;
        let (n, i) = names[slot];
        procs[slot] = reconcile(dir.path(), &addr, &repo.dir, &format!("{n}{i}"));
    }

    // A leader that loses the lock without dying: paused (SIGSTOP) until its session expired
    // and the other replica leads and writes, then resumed. It must step down without writing.
    let live: Vec<String> = names.iter().map(|(n, i)| format!("{n}{i}")).collect();
    let paused = wait_for("a live leader", Duration::from_secs(60), || {
        leader(&addr).filter(|l| live.contains(l))
    });
    let slot = live.iter().position(|l| *l == paused).unwrap();
    signal(&procs[slot], "STOP");
    let successor = wait_for("another replica to lead", Duration::from_secs(60), || {
        leader(&addr).filter(|l| *l != paused)
    });
    let before = replica_writes(&audit).len();
    wait_for("the new leader to write", Duration::from_secs(60), || {
        replica_writes(&audit)[before..]
            .iter()
            .any(|(_, r, _, _)| *r == successor)
            .then_some(())
    });
    signal(&procs[slot], "CONT");
    wait_for(
        "the resumed replica to step down",
        Duration::from_secs(60),
        || {
            let log = procs[slot].log();
            ["stepping down", "the leader lock is lost", "not leading"]
                .iter()
                .any(|m| log.contains(m))
                .then_some(())
        },
    );

    stop.store(true, Ordering::Relaxed);
    let acked = writer.join().unwrap();
    assert!(acked.overwrites >= KILLS, "{} overwrites", acked.overwrites);

    // The state converges to the repository, the overwritten intention healed, mark included.
    let mut last = String::new();
    let started = Instant::now();
    while converged(&server, &repo, &mut last).is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "Consul does not match the repository; the last {last}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // No replica wrote without holding the lock, by the server's account.
    let writes = replica_writes(&audit);
    let strays: Vec<_> = writes.iter().filter(|(_, r, h, _)| r != h).collect();
    assert!(
        strays.is_empty(),
        "writes by a replica not holding the lock (seq, replica, holder, request): {strays:#?}"
    );
    for k in &killed {
        assert!(writes.iter().any(|(_, r, _, _)| r == k), "{k} never wrote");
    }
    let writers: std::collections::BTreeSet<_> = writes.iter().map(|(_, r, _, _)| r).collect();
    assert!(writers.len() > KILLS, "writers: {writers:?}");

    // Every acknowledged outside write to an object mesh-gitops does not own is still there.
    for (key, value) in &acked.kv {
        let got = wait_for(key, Duration::from_secs(10), || {
            get(&addr, &format!("/v1/kv/{key}?raw"))?.text().ok()
        });
        assert_eq!(&got, value, "{key}");
    }
    let own = wait_for("outside-api", Duration::from_secs(10), || {
        let r = http()
            .get(format!(
                "http://{addr}/v1/config/service-defaults/outside-api"
            ))
            .send()
            .ok()?;
        match r.status().as_u16() {
            200 => r.json::<Value>().ok().map(Some),
            404 => Some(None),
            _ => None,
        }
    });
    let own = own.expect("the outside writer's own config entry was deleted");
    assert_eq!(
        own["Protocol"].as_str(),
        acked.protocol.as_deref(),
        "{own:#}"
    );
    assert!(own.get("Meta").is_none_or(Value::is_null), "{own:#}");
}
