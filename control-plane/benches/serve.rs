//! Control plane figures over real HTTP on loopback: `cargo bench -p mesh-control-plane`.
//!
//! - config-entry writes per second (durable, one client at a time and 8 concurrently);
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

    let n = 500;
    let start = Instant::now();
    for i in 0..n {
        let body = json!({"Kind": "service-defaults", "Name": format!("s{i}"), "Protocol": "http"});
        client
            .put(format!("{base}/v1/config"))
            .body(body.to_string())
            .send()
            .await
            .expect("put");
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "config-entry writes, 1 client:  {:>8.0}/s ({n} durable writes in {secs:.2} s)",
        n as f64 / secs
    );

    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let c = client.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..n / 8 {
                let body = json!({"Kind": "service-defaults", "Name": format!("c{w}-{i}"), "Protocol": "grpc"});
                c.put(format!("{base}/v1/config")).body(body.to_string()).send().await.expect("put");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "config-entry writes, 8 clients: {:>8.0}/s",
        (n / 8 * 8) as f64 / secs
    );

    let index: u64 = client
        .get(format!("{base}/v1/config/service-defaults/s1"))
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
        let url = format!("{base}/v1/config/service-defaults/s1?index={index}&wait=60s");
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
