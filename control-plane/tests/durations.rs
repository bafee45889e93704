//! GET after PUT answers every `time.Duration` field of a config entry as a current Consul
//! does: Go's `encoding/json` writes a `time.Duration` as integer nanoseconds, except the
//! service-resolver's `ConnectTimeout`/`RequestTimeout` and a service-router destination's
//! `RequestTimeout`/`IdleTimeout`, which their `MarshalJSON` writes in Go's spelling
//! (`ServiceResolverConfigEntry.MarshalJSON`, `ServiceRouteDestination.MarshalJSON` in
//! `agent/structs/config_entry_discoverychain.go`). The writes send Go's spelling, as a file
//! does; one also sends nanoseconds, as a client that read Consul's answer does.

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

/// PUT the entry, then GET it back.
async fn round_trip(base: &str, http: &reqwest::Client, body: Value) -> Value {
    let r = http
        .put(format!("{base}/v1/config"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let (kind, name) = (
        body["Kind"].as_str().unwrap(),
        body["Name"].as_str().unwrap(),
    );
    let r = http
        .get(format!("{base}/v1/config/{kind}/{name}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

const S: i64 = 1_000_000_000;

#[tokio::test]
async fn resolver_and_router_answer_go_spelling() {
    let (base, http, _dir) = start().await;
    let r = round_trip(
        &base,
        &http,
        json!({"Kind": "service-resolver", "Name": "api", "ConnectTimeout": "15s",
               "RequestTimeout": 90_000_000_000_i64,
               "LoadBalancer": {"Policy": "ring_hash", "HashPolicies": [
                   {"Field": "cookie", "FieldValue": "sess", "CookieConfig": {"TTL": "30s"}}]}}),
    )
    .await;
    assert_eq!(r["ConnectTimeout"], "15s");
    assert_eq!(r["RequestTimeout"], "1m30s");
    // `CookieConfig.TTL` is a plain `time.Duration` under the resolver's `MarshalJSON` alias.
    assert_eq!(
        r["LoadBalancer"]["HashPolicies"][0]["CookieConfig"]["TTL"],
        json!(30 * S)
    );

    round_trip(
        &base,
        &http,
        json!({"Kind": "service-defaults", "Name": "api", "Protocol": "http"}),
    )
    .await;
    let r = round_trip(
        &base,
        &http,
        json!({"Kind": "service-router", "Name": "api", "Routes": [
            {"Match": {"HTTP": {"PathPrefix": "/"}},
             "Destination": {"RequestTimeout": "2s", "IdleTimeout": "500ms"}}]}),
    )
    .await;
    let d = &r["Routes"][0]["Destination"];
    assert_eq!(
        (&d["RequestTimeout"], &d["IdleTimeout"]),
        (&json!("2s"), &json!("500ms"))
    );
}

#[tokio::test]
async fn passive_health_checks_answer_nanoseconds() {
    let (base, http, _dir) = start().await;
    let r = round_trip(
        &base,
        &http,
        json!({"Kind": "service-defaults", "Name": "web", "UpstreamConfig": {
            "Defaults": {"PassiveHealthCheck": {"Interval": "10s", "MaxFailures": 3,
                                                "BaseEjectionTime": "0s"}},
            "Overrides": [{"Name": "db", "PassiveHealthCheck": {"Interval": "1m"}}]}}),
    )
    .await;
    let u = &r["UpstreamConfig"];
    assert_eq!(
        u["Defaults"]["PassiveHealthCheck"]["Interval"],
        json!(10 * S)
    );
    // A Go pointer keeps its zero: `*time.Duration` answers 0.
    assert_eq!(
        u["Defaults"]["PassiveHealthCheck"]["BaseEjectionTime"],
        json!(0)
    );
    assert_eq!(
        u["Overrides"][0]["PassiveHealthCheck"]["Interval"],
        json!(60 * S)
    );

    let r = round_trip(
        &base,
        &http,
        json!({"Kind": "ingress-gateway", "Name": "ingress",
               "Defaults": {"PassiveHealthCheck": {"Interval": "5s"}},
               "Listeners": [{"Port": 8080, "Protocol": "tcp", "Services": [
                   {"Name": "web", "PassiveHealthCheck": {"BaseEjectionTime": "45s"}}]}]}),
    )
    .await;
    assert_eq!(
        r["Defaults"]["PassiveHealthCheck"]["Interval"],
        json!(5 * S)
    );
    assert_eq!(
        r["Listeners"][0]["Services"][0]["PassiveHealthCheck"]["BaseEjectionTime"],
        json!(45 * S)
    );
}

#[tokio::test]
async fn jwt_provider_and_http_route_answer_nanoseconds() {
    let (base, http, _dir) = start().await;
    let r = round_trip(
        &base,
        &http,
        json!({"Kind": "jwt-provider", "Name": "okta", "JSONWebKeySet": {"Remote": {
            "URI": "https://example.com/.well-known/jwks.json", "CacheDuration": "5m",
            "RetryPolicy": {"NumRetries": 2, "RetryPolicyBackOff": {
                "BaseInterval": "1s", "MaxInterval": "10s"}},
            "JWKSCluster": {"ConnectTimeout": "750ms"}}}}),
    )
    .await;
    let remote = &r["JSONWebKeySet"]["Remote"];
    assert_eq!(remote["CacheDuration"], json!(300 * S));
    let backoff = &remote["RetryPolicy"]["RetryPolicyBackOff"];
    assert_eq!(
        (&backoff["BaseInterval"], &backoff["MaxInterval"]),
        (&json!(S), &json!(10 * S))
    );
    assert_eq!(remote["JWKSCluster"]["ConnectTimeout"], json!(750_000_000));

    let r = round_trip(
        &base,
        &http,
        json!({"Kind": "http-route", "Name": "route", "Rules": [{
            "Filters": {"TimeoutFilter": {"RequestTimeout": "30s", "IdleTimeout": "1m"}},
            "Services": [{"Name": "web",
                          "Filters": {"TimeoutFilter": {"RequestTimeout": "2s"}}}]}]}),
    )
    .await;
    let rule = &r["Rules"][0];
    let t = &rule["Filters"]["TimeoutFilter"];
    assert_eq!(
        (&t["RequestTimeout"], &t["IdleTimeout"]),
        (&json!(30 * S), &json!(60 * S))
    );
    assert_eq!(
        rule["Services"][0]["Filters"]["TimeoutFilter"]["RequestTimeout"],
        json!(2 * S)
    );
}
