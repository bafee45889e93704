//! `check --consul` at scale: the embedded control plane (in memory, in-process, over real
//! HTTP) holding 1,000 Connect services with sidecars (two upstreams each) and 5,000 config
//! entries (2,000 service-defaults, 2,000 service-intentions, 1,000 service-resolvers), and a
//! repository declaring half of those services. Prints the time of the live read
//! (`mesh_consul::read_live`) and of the merge and analysis (`mesh_check::check_live`) in this
//! process, then the wall time of the binary's `check --consul --no-sim --format json`, best of
//! three. `cargo bench --bench live`; `MESH_BENCH_SERVICES` changes the number of services
//! (entries are five per service).

use mesh_consul::{Client, ClientConfig};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

fn name(i: usize) -> String {
    format!("svc-{i:05}")
}

/// Registers `n` services with sidecars and writes `5 n` entries.
async fn populate(client: &Client, n: usize) {
    for i in 0..n {
        // One agent: sidecar ports given, as its automatic range holds only 256.
        let body = json!({"Name": name(i), "Port": 8000, "Connect": {"SidecarService": {
        "Port": 30000 + i, "Proxy": {
        "Upstreams": [
            {"DestinationName": name((i + 1) % n), "LocalBindPort": 9001},
            {"DestinationName": name((i + 7) % n), "LocalBindPort": 9002},
        ]}}}});
        client
            .put_json("/v1/agent/service/register", &body)
            .await
            .expect("registered");
    }
    for i in 0..2 * n {
        let entries = [
            json!({"Kind": "service-defaults", "Name": name(i), "Protocol": "tcp"}),
            json!({"Kind": "service-intentions", "Name": name(i), "Sources": [
                {"Name": name((i + n - 1) % n), "Action": "allow"},
                {"Name": name((i + n - 7) % n), "Action": "allow"},
            ]}),
        ];
        for e in entries {
            assert!(client.put_bool("/v1/config", &e).await.expect("written"));
        }
    }
    for i in 0..n {
        let e = json!({"Kind": "service-resolver", "Name": name(i), "ConnectTimeout": "5s"});
        assert!(client.put_bool("/v1/config", &e).await.expect("written"));
    }
}

/// A repository declaring the first half of the services and their intentions.
fn write_repo(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir.join("intentions")).unwrap();
    std::fs::write(
        dir.join("mesh-gitops.hcl"),
        "datacenter = \"dc1\"\nowner = \"bench\"\nacl {\n  enabled = true\n  default_policy = \"deny\"\n}\n",
    )
    .unwrap();
    let mut services = String::from("services = [\n");
    for i in 0..n / 2 {
        services.push_str(&format!(
            "  {{ name = \"{}\", port = 8000, connect = {{ sidecar_service = {{ proxy = {{ upstreams = [\n    {{ destination_name = \"{}\", local_bind_port = 9001 }},\n    {{ destination_name = \"{}\", local_bind_port = 9002 }},\n  ] }} }} }} }},\n",
            name(i),
            name((i + 1) % n),
            name((i + 7) % n)
        ));
        std::fs::write(
            dir.join(format!("intentions/{}.hcl", name(i))),
            format!(
                "Kind = \"service-intentions\"\nName = \"{}\"\nSources = [\n  {{ Name = \"{}\", Action = \"allow\" }},\n  {{ Name = \"{}\", Action = \"allow\" }},\n]\n",
                name(i),
                name((i + n - 1) % n),
                name((i + n - 7) % n)
            ),
        )
        .unwrap();
    }
    services.push_str("]\n");
    std::fs::write(dir.join("services.hcl"), services).unwrap();
}

fn main() {
    let n: usize = std::env::var("MESH_BENCH_SERVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let opts = mesh_control_plane::ServerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let address = runtime.block_on(async {
        let bound = mesh_control_plane::bind(&opts).await.expect("binds");
        let address = format!("http://{}", bound.addr);
        tokio::spawn(bound.serve(std::future::pending()));
        address
    });
    let client = Client::new(ClientConfig {
        address: address.clone(),
        request_timeout: Duration::from_secs(30),
        ..Default::default()
    })
    .unwrap();
    let started = Instant::now();
    runtime.block_on(populate(&client, n));
    println!(
        "set-up: {n} services with sidecars, {} entries, in {:.2} s",
        5 * n,
        started.elapsed().as_secs_f64()
    );
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    write_repo(&repo, n);

    let started = Instant::now();
    let live = runtime
        .block_on(mesh_consul::read_live(&client))
        .expect("the live read");
    let read = started.elapsed();
    assert_eq!(live.entries.len(), 5 * n);
    assert_eq!(live.services.len(), n);
    println!(
        "read_live: {} entries, {} Connect services, {} requests, {:.2} s",
        live.entries.len(),
        live.services.len(),
        live.requests,
        read.as_secs_f64()
    );
    let loaded = mesh_loader::load_dir(&repo, &Default::default());
    assert!(!loaded.has_errors(), "the repository validates");
    let started = Instant::now();
    let result = mesh_check::check_live(loaded, &live);
    println!(
        "check_live (merge, two analyses, diff): {} live-only services, {:.2} s",
        result.live.as_ref().map_or(0, |l| l.only_live.len()),
        started.elapsed().as_secs_f64()
    );

    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesh-gitops"))
            .args(["check", repo.to_str().unwrap(), "--consul", &address])
            .args(["--no-sim", "--format", "json"])
            .output()
            .expect("the binary runs");
        best = best.min(started.elapsed());
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!(
        "mesh-gitops check --consul --no-sim --format json: {:.2} s (best of 3)",
        best.as_secs_f64()
    );
}
