//! Control plane figures over real HTTP on loopback: `cargo bench -p mesh-control-plane`.
//!
//! - config-entry writes per second (durable, one client at a time and 8 concurrently), and
//!   the cost of a write as the store grows: the last 1,000 of 10,000 against the first 1,000,
//!   and 1,000 more into 50,000 objects (`MESH_BENCH_OBJECTS` changes it);
//! - time for 1,000 blocking watchers (of one entry) to observe one change;
//! - leaf issuance per second through the HTTP endpoint (distinct services, so no cache hits).

use serde_json::json;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = mesh_control_plane::ServerOptions {
        state_dir: Some(dir.path().to_path_buf()),
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..Default::default()
    };
    let bound = mesh_control_plane::bind(&opts).await.expect("bind");
    let base = format!("http://{}", bound.addr);
    tokio::spawn(bound.serve(std::future::pending()));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(2000)
        .build()
        .expect("client");

    // One client: the first 1,000 writes into an empty store, then on to 10,000, the last
    // 1,000 timed again; a write should cost the same whatever the store holds.
    let first = timed_writes(&client, &base, "a", 0, 1_000, 1).await;
    // a-1000 to a-8999: the last 1,000 must be new entries too, not rewrites of unchanged ones.
    timed_writes(&client, &base, "a", 1_000, 8_000, 1).await;
    let last = timed_writes(&client, &base, "a", 9_000, 1_000, 1).await;
    println!(
        "config-entry writes, 1 client:  {:>8.0}/s (first 1,000 of 10,000 in {first:.2} s)",
        1_000.0 / first
    );
    println!(
        "  last 1,000 of 10,000 writes: {last:.2} s, {:.2}x the first 1,000 (goal: at most 1.2x)",
        last / first
    );
    // Eight clients at once: their writes share commits (group commit).
    let eight = timed_writes(&client, &base, "b", 0, 1_000, 8).await;
    println!(
        "config-entry writes, 8 clients: {:>8.0}/s, {:.1}x one client (goal: at least 4x)",
        1_000.0 / eight,
        last / eight
    );
    let objects: usize = std::env::var("MESH_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let stored = 11_000;
    if objects > stored + 1_000 {
        timed_writes(&client, &base, "c", 0, objects - stored - 1_000, 8).await;
        let at = timed_writes(&client, &base, "d", 0, 1_000, 1).await;
        println!(
            "  1,000 writes by 1 client into {objects} objects: {at:.2} s, {:.2}x the first 1,000",
            at / first
        );
    }

    let index: u64 = client
        .get(format!("{base}/v1/config/service-defaults/a-1"))
        .send()
        .await
        .expect("get")
        .headers()["X-Consul-Index"]
        .to_str()
        .expect("header")
        .parse()
        .expect("index");
    let watchers = 1000;
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let c = client.clone();
        let url = format!("{base}/v1/config/service-defaults/a-1?index={index}&wait=60s");
        tasks.push(tokio::spawn(async move {
            c.get(url).send().await.expect("watch");
            Instant::now()
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let changed = Instant::now();
    client
        .put(format!("{base}/v1/config"))
        .body(
            json!({"Kind": "service-defaults", "Name": "trigger", "Protocol": "http"}).to_string(),
        )
        .send()
        .await
        .expect("trigger");
    let mut last = changed;
    for t in tasks {
        last = last.max(t.await.expect("watcher"));
    }
    println!(
        "{watchers} blocking watchers observed one change in {:.1} ms",
        (last - changed).as_secs_f64() * 1000.0
    );

    let leaves = 300;
    let start = Instant::now();
    for i in 0..leaves {
        client
            .get(format!("{base}/v1/agent/connect/ca/leaf/svc-{i}"))
            .send()
            .await
            .expect("leaf");
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "leaf issuance over HTTP:        {:>8.0}/s",
        leaves as f64 / secs
    );
}

/// Writes `count` service-defaults `{prefix}-{from + i}` with `clients` concurrent clients
/// (each one request at a time); the seconds it took.
async fn timed_writes(
    client: &reqwest::Client,
    base: &str,
    prefix: &str,
    from: usize,
    count: usize,
    clients: usize,
) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..clients {
        let (c, base, prefix) = (client.clone(), base.to_owned(), prefix.to_owned());
        tasks.push(tokio::spawn(async move {
            for i in (from + w..from + count).step_by(clients) {
                let body = json!({"Kind": "service-defaults", "Name": format!("{prefix}-{i}"), "Protocol": "http"});
                let answer = c
                    .put(format!("{base}/v1/config"))
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("put");
                assert!(answer.status().is_success(), "the write succeeds");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    start.elapsed().as_secs_f64()
}
