//! The client against the embedded control plane over real HTTP, directly and through a proxy
//! that answers a share of requests with transient failures.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mesh_consul::{Client, ClientConfig, ConsulError, RetryPolicy};
use mesh_model::{ConfigEntry, ServiceDefaults};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

async fn server() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let opts = mesh_control_plane::ServerOptions {
        state_dir: Some(dir.path().to_path_buf()),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let bound = mesh_control_plane::bind(&opts).await.unwrap();
    let addr = format!("http://{}", bound.addr);
    tokio::spawn(bound.serve(std::future::pending()));
    (addr, dir)
}

struct Flaky {
    upstream: String,
    http: reqwest::Client,
    count: AtomicU64,
    forwarded: AtomicU64,
}

/// Fails requests 1, 2 (503), 4 (429) and 5 (502) of every 6; forwards the rest.
async fn flaky(State(f): State<Arc<Flaky>>, req: Request) -> Response {
    let n = f.count.fetch_add(1, Ordering::SeqCst) % 6;
    match n {
        1 | 2 => return (StatusCode::SERVICE_UNAVAILABLE, "No cluster leader").into_response(),
        4 => return (StatusCode::TOO_MANY_REQUESTS, "rate limited").into_response(),
        5 => return (StatusCode::BAD_GATEWAY, "").into_response(),
        _ => {}
    }
    f.forwarded.fetch_add(1, Ordering::SeqCst);
    let method = req.method().clone();
    let uri = req.uri().clone();
    let headers = req.headers().clone();
    let body: Bytes = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap();
    let mut out = f
        .http
        .request(method, format!("{}{}", f.upstream, uri))
        .body(body);
    for (k, v) in headers.iter() {
        if k != "host" && k != "content-length" {
            out = out.header(k, v);
        }
    }
    let resp = out.send().await.unwrap();
    let status = resp.status();
    let index = resp.headers().get("X-Consul-Index").cloned();
    let body = resp.bytes().await.unwrap();
    let mut r = (status, body).into_response();
    if let Some(i) = index {
        r.headers_mut().insert("X-Consul-Index", i);
    }
    r
}

async fn proxy(upstream: String) -> (String, Arc<Flaky>) {
    let state = Arc::new(Flaky {
        upstream,
        http: reqwest::Client::new(),
        count: AtomicU64::new(0),
        forwarded: AtomicU64::new(0),
    });
    let app = axum::Router::new()
        .fallback(flaky)
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, state)
}

fn client(address: String) -> Client {
    Client::new(ClientConfig {
        address,
        verify_tls: true,
        request_timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            attempts_max: 8,
            delay_base: Duration::from_millis(1),
            delay_max: Duration::from_millis(20),
            seed: 7,
        },
        ..ClientConfig::default()
    })
    .unwrap()
}

fn sd(name: &str, protocol: &str) -> ConfigEntry {
    ConfigEntry::ServiceDefaults(ServiceDefaults {
        name: name.into(),
        protocol: Some(protocol.into()),
        ..Default::default()
    })
}

#[tokio::test]
async fn config_entries_with_cas_through_a_flaky_network() {
    let (addr, _dir) = server().await;
    let (flaky_addr, flaky) = proxy(addr).await;
    let c = client(flaky_addr);
    for i in 0..10 {
        assert!(c
            .put_config_entry(&sd(&format!("svc-{i}"), "http"), Some(0))
            .await
            .unwrap());
    }
    let all = c.config_entries("service-defaults").await.unwrap();
    assert_eq!(all.value.len(), 10);
    assert!(all.index > 0);
    let one = c
        .config_entry("service-defaults", "svc-3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.entry.to_json(), sd("svc-3", "http").to_json());
    // A stale index is a conflict, answered as false, never an overwrite.
    assert!(!c
        .put_config_entry(&sd("svc-3", "grpc"), Some(one.modify_index + 1000))
        .await
        .unwrap());
    assert!(c
        .put_config_entry(&sd("svc-3", "grpc"), Some(one.modify_index))
        .await
        .unwrap());
    assert!(c
        .config_entry("service-defaults", "nope")
        .await
        .unwrap()
        .is_none());
    assert!(c
        .delete_config_entry("service-defaults", "svc-3", Some(1))
        .await
        .is_ok_and(|ok| !ok));
    assert!(c
        .kv_put("mesh-gitops/test/inventory", b"v1", Some(0))
        .await
        .unwrap());
    let (v, idx) = c
        .kv_get("mesh-gitops/test/inventory")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((v.as_slice(), idx > 0), (b"v1".as_slice(), true));
    assert!(
        flaky.count.load(Ordering::SeqCst) > flaky.forwarded.load(Ordering::SeqCst),
        "failures were injected and retried"
    );
}

#[tokio::test]
async fn validation_errors_are_returned_not_retried_and_retries_are_bounded() {
    let (addr, _dir) = server().await;
    let (flaky_addr, flaky) = proxy(addr.clone()).await;
    let c = client(flaky_addr);
    let bad = ConfigEntry::ProxyDefaults(mesh_model::ProxyDefaults {
        name: "web".into(),
        ..Default::default()
    });
    let before = flaky.forwarded.load(Ordering::SeqCst);
    match c.put_config_entry(&bad, None).await {
        Err(ConsulError::Status { status: 500, body }) => {
            assert!(body.contains("only \"global\" is supported"), "{body}")
        }
        other => panic!("expected the validation error, got {other:?}"),
    }
    assert_eq!(
        flaky.forwarded.load(Ordering::SeqCst) - before,
        1,
        "a semantic 500 reaches the server once"
    );
    // Nothing listening: transport errors are retried, then reported.
    let dead = Client::new(ClientConfig {
        address: "http://127.0.0.1:1".into(),
        verify_tls: true,
        request_timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            attempts_max: 3,
            delay_base: Duration::from_millis(1),
            delay_max: Duration::from_millis(5),
            seed: 1,
        },
        ..ClientConfig::default()
    })
    .unwrap();
    match dead.config_entries("service-defaults").await {
        Err(ConsulError::Exhausted { attempts: 3, last }) => {
            assert!(matches!(*last, ConsulError::Transport { .. }))
        }
        other => panic!("expected exhausted retries, got {other:?}"),
    }
}
