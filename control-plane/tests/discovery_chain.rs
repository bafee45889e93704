//! `/v1/discovery-chain/:service` over real HTTP, against the expectations of Consul's own
//! endpoint test (`agent/discovery_chain_endpoint_test.go`, `TestDiscoveryChainRead`): the
//! default chain of a service with no entries, then a resolver's ConnectTimeout and failover.

use serde_json::{json, Value};

async fn start() -> (String, reqwest::Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let opts = mesh_control_plane::ServerOptions {
        state_dir: Some(dir.path().to_path_buf()),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let bound = mesh_control_plane::bind(&opts).await.unwrap();
    let base = format!("http://{}", bound.addr);
    tokio::spawn(bound.serve(std::future::pending()));
    (base, reqwest::Client::new(), dir)
}

async fn chain(base: &str, http: &reqwest::Client, name: &str) -> (u16, Value) {
    let r = http
        .get(format!("{base}/v1/discovery-chain/{name}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn put(base: &str, http: &reqwest::Client, body: Value) {
    let r = http
        .put(format!("{base}/v1/config"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn the_default_chain_then_a_resolver_with_failover() {
    let (base, http, _dir) = start().await;
    let (status, v) = chain(&base, &http, "web").await;
    assert_eq!(status, 200, "{v}");
    let c = &v["Chain"];
    assert_eq!(c["ServiceName"], "web");
    assert_eq!(c["Datacenter"], "dc1");
    assert_eq!(c["Protocol"], "tcp");
    assert_eq!(c["Default"], true);
    assert_eq!(c["StartNode"], "resolver:web.default.default.dc1");
    assert_eq!(
        c["Nodes"]["resolver:web.default.default.dc1"],
        json!({"Type": "resolver", "Name": "web.default.default.dc1", "Resolver": {
            "Default": true, "ConnectTimeout": "5s", "Target": "web.default.default.dc1"}})
    );
    let t = &c["Targets"]["web.default.default.dc1"];
    assert_eq!(
        (&t["Service"], &t["Datacenter"], &t["ConnectTimeout"]),
        (&json!("web"), &json!("dc1"), &json!("5s"))
    );

    // The test's second step: a resolver with ConnectTimeout 33s failing over to dc2.
    put(
        &base,
        &http,
        json!({"Kind": "service-resolver", "Name": "web", "ConnectTimeout": "33s",
               "Failover": {"*": {"Datacenters": ["dc2"]}}}),
    )
    .await;
    let (_, v) = chain(&base, &http, "web").await;
    let c = &v["Chain"];
    assert_eq!(c["Default"], false);
    assert_eq!(
        c["Nodes"]["resolver:web.default.default.dc1"]["Resolver"],
        json!({"Default": false, "ConnectTimeout": "33s", "Target": "web.default.default.dc1",
               "Failover": {"Targets": ["web.default.default.dc2"]}})
    );
    assert_eq!(c["Targets"]["web.default.default.dc2"]["Datacenter"], "dc2");
    assert_eq!(
        c["Targets"]["web.default.default.dc2"]["ConnectTimeout"],
        "33s"
    );
}

#[tokio::test]
async fn a_canary_split_compiles_to_weighted_resolvers() {
    let (base, http, _dir) = start().await;
    put(
        &base,
        &http,
        json!({"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "http"}}),
    )
    .await;
    put(
        &base,
        &http,
        json!({"Kind": "service-splitter", "Name": "api",
               "Splits": [{"Weight": 90}, {"Weight": 10, "Service": "api-v2"}]}),
    )
    .await;
    let (_, v) = chain(&base, &http, "api").await;
    let c = &v["Chain"];
    assert_eq!(c["Protocol"], "http");
    assert_eq!(c["StartNode"], "splitter:api.default.default");
    assert_eq!(
        c["Nodes"]["splitter:api.default.default"]["Splits"],
        json!([{"Weight": 90, "NextNode": "resolver:api.default.default.dc1"},
               {"Weight": 10, "NextNode": "resolver:api-v2.default.default.dc1"}])
    );
    // A write that would leave a chain Consul cannot compile is refused with Consul's message
    // (its state store compiles the chain on write).
    put(
        &base,
        &http,
        json!({"Kind": "service-defaults", "Name": "legacy", "Protocol": "tcp"}),
    )
    .await;
    let r = http
        .put(format!("{base}/v1/config"))
        .body(
            json!({"Kind": "service-splitter", "Name": "legacy", "Splits": [{"Weight": 100}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("does not permit advanced routing or splitting behavior"));
}
