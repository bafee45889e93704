//! The control plane over real HTTP on loopback: Consul's CAS table and no-op suppression,
//! validation status codes, intention precedence and decisions (consul-semantics 7a/7b), KV and
//! session locks, blocking queries, the CA, and concurrent CAS writers.

use serde_json::{json, Value};
use std::time::{Duration, Instant};

struct Server {
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let opts = mesh_control_plane::ServerOptions {
        state_dir: Some(dir.path().to_path_buf()),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let bound = mesh_control_plane::bind(&opts).await.unwrap();
    let base = format!("http://{}", bound.addr);
    tokio::spawn(bound.serve(std::future::pending()));
    Server {
        base,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Server {
    async fn put(&self, path: &str, body: Value) -> (u16, String) {
        let r = self
            .client
            .put(format!("{}{path}", self.base))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
    async fn get(&self, path: &str) -> (u16, Value, u64) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let index = r
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            index,
        )
    }
    async fn delete(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .delete(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

fn sd(name: &str, protocol: &str) -> Value {
    json!({"Kind": "service-defaults", "Name": name, "Protocol": protocol})
}

#[tokio::test]
async fn the_cas_table_and_no_op_suppression() {
    let s = start().await;
    assert_eq!(
        s.put("/v1/config?cas=0", sd("web", "http")).await,
        (200, "true".into()),
        "create-only on a missing entry"
    );
    let (_, e, _) = s.get("/v1/config/service-defaults/web").await;
    let m1 = e["ModifyIndex"].as_u64().unwrap();
    assert_eq!(e["CreateIndex"], e["ModifyIndex"]);
    assert_eq!(
        s.put("/v1/config?cas=0", sd("web", "grpc")).await,
        (200, "false".into()),
        "cas=0 on an existing entry"
    );
    assert_eq!(
        s.put("/v1/config?cas=0", sd("web", "HTTP")).await,
        (200, "true".into()),
        "identical after normalization: true"
    );
    let (_, e, _) = s.get("/v1/config/service-defaults/web").await;
    assert_eq!(
        e["ModifyIndex"].as_u64().unwrap(),
        m1,
        "a no-op does not bump ModifyIndex"
    );
    assert_eq!(
        s.put("/v1/config?cas=999", sd("nope", "http")).await.1,
        "false",
        "cas>0 on a missing entry"
    );
    assert_eq!(
        s.put(&format!("/v1/config?cas={}", m1 + 7), sd("web", "grpc"))
            .await
            .1,
        "false"
    );
    assert_eq!(
        s.put(&format!("/v1/config?cas={m1}"), sd("web", "grpc"))
            .await
            .1,
        "true"
    );
    let (_, e, idx) = s.get("/v1/config/service-defaults/web").await;
    let m2 = e["ModifyIndex"].as_u64().unwrap();
    assert!(m2 > m1 && e["CreateIndex"].as_u64().unwrap() == m1 && idx >= m2);
    assert_eq!(
        s.delete(&format!("/v1/config/service-defaults/web?cas={m1}"))
            .await
            .1,
        "false"
    );
    assert_eq!(
        s.delete(&format!("/v1/config/service-defaults/web?cas={m2}"))
            .await
            .1,
        "true"
    );
    assert_eq!(
        s.delete("/v1/config/service-defaults/web?cas=5").await.1,
        "true",
        "deleting nothing succeeds"
    );
    assert_eq!(
        s.delete("/v1/config/service-defaults/web").await,
        (200, "{}".into())
    );
    let (status, body, _) = s.get("/v1/config/service-defaults/web").await;
    assert_eq!(
        (status, body),
        (
            404,
            Value::String("Config entry not found for \"service-defaults\" / \"web\"".into())
        )
    );
}

#[tokio::test]
async fn decoding_and_validation_errors_use_consuls_status_codes() {
    let s = start().await;
    let (status, body) = s
        .put(
            "/v1/config",
            json!({"Kind": "service-defaults", "Name": "web", "Bogus": 1}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("Request decoding failed:")
            && body.contains("invalid config key \"Bogus\""),
        "{body}"
    );
    // A repository's key reference is no field of Consul's: apply sends the key itself.
    let (status, body) = s
        .put(
            "/v1/config",
            json!({"Kind": "inline-certificate", "Name": "gw", "PrivateKeyFrom": "env:GW_KEY"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("invalid config key \"PrivateKeyFrom\""),
        "{body}"
    );
    let (status, body) = s
        .put(
            "/v1/config",
            json!({"Kind": "proxy-defaults", "Name": "web"}),
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (500, "invalid name (\"web\"), only \"global\" is supported")
    );
    // Normalized before it is validated (`ConfigEntry.Apply`): no Name is "global".
    let (status, body) = s.put("/v1/config", json!({"Kind": "proxy-defaults"})).await;
    assert_eq!((status, body.as_str()), (200, "true"));
    let (status, stored, _) = s.get("/v1/config/proxy-defaults/global").await;
    assert_eq!((status, &stored["Name"]), (200, &json!("global")));
    let l7 = json!({"Kind": "service-intentions", "Name": "api", "Sources": [
        {"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/"}}]}]});
    let (status, body) = s.put("/v1/config", l7.clone()).await;
    assert_eq!((status, body.as_str()), (500, "service \"api\" has protocol \"tcp\", which is incompatible with L7 intentions permissions"));
    assert_eq!(s.put("/v1/config", sd("api", "http")).await.1, "true");
    assert_eq!(s.put("/v1/config", l7).await.1, "true");
    // The protocol cannot be taken away while L7 intentions depend on it.
    let (status, _) = s.delete("/v1/config/service-defaults/api").await;
    assert_eq!(status, 500);
    assert_eq!(s.put("/v1/config?cas=abc", sd("x", "tcp")).await.0, 500);
    let (status, _, _) = s.get("/v1/config/no-such-kind").await;
    assert_eq!(status, 500);
}

async fn intention(s: &Server, dest: &str, sources: Value) {
    let (status, body) = s
        .put(
            "/v1/config",
            json!({"Kind": "service-intentions", "Name": dest, "Sources": sources}),
        )
        .await;
    assert_eq!((status, body.as_str()), (200, "true"));
}

#[tokio::test]
async fn precedence_and_decisions_follow_consul() {
    let s = start().await;
    intention(
        &s,
        "db",
        json!([{"Name": "*", "Action": "allow"}, {"Name": "web", "Action": "deny"}]),
    )
    .await;
    intention(
        &s,
        "*",
        json!([{"Name": "api", "Action": "deny"}, {"Name": "*", "Action": "allow"}]),
    )
    .await;
    // Stored sorted by precedence (web 9 before * 8).
    let (_, e, _) = s.get("/v1/config/service-intentions/db").await;
    let names: Vec<(&str, u64)> = e["Sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["Name"].as_str().unwrap(),
                x["Precedence"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [("web", 9), ("*", 8)]);
    let check = |src: &'static str, dst: &'static str| {
        let s = &s;
        async move {
            s.get(&format!(
                "/v1/connect/intentions/check?source={src}&destination={dst}"
            ))
            .await
            .1["Allowed"]
                .as_bool()
                .unwrap()
        }
    };
    assert!(!check("web", "db").await, "9 beats 8");
    assert!(check("api", "db").await, "*->db (8) beats api->* (6)");
    assert!(!check("api", "cache").await, "api->* (6) beats *->* (5)");
    assert!(check("web", "cache").await);
    let (_, m, _) = s
        .get("/v1/connect/intentions/match?by=destination&name=db")
        .await;
    let order: Vec<(&str, &str)> = m["db"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["SourceName"].as_str().unwrap(),
                x["DestinationName"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [("web", "db"), ("*", "db"), ("api", "*"), ("*", "*")]
    );
    // The legacy exact API edits one source of the entry.
    assert_eq!(
        s.put(
            "/v1/connect/intentions/exact?source=web&destination=db",
            json!({"Action": "allow"})
        )
        .await
        .1,
        "true"
    );
    assert!(check("web", "db").await);
    let (status, one, _) = s
        .get("/v1/connect/intentions/exact?source=web&destination=db")
        .await;
    assert_eq!((status, one["Action"].as_str()), (200, Some("allow")));
    assert_eq!(
        s.delete("/v1/connect/intentions/exact?source=web&destination=db")
            .await
            .1,
        "true"
    );
    assert_eq!(
        s.get("/v1/connect/intentions/exact?source=web&destination=db")
            .await
            .0,
        404
    );
    // Authorize from a SPIFFE identity.
    let r = s.client.post(format!("{}/v1/agent/connect/authorize", s.base))
        .body(json!({"Target": "cache", "ClientCertURI": "spiffe://x.consul/ns/default/dc/dc1/svc/api"}).to_string())
        .send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["Authorized"], false);
    assert!(v["Reason"]
        .as_str()
        .unwrap()
        .starts_with("Matched L4 intention"));
}

#[tokio::test]
async fn blocking_queries_wake_on_change_and_time_out() {
    let s = start().await;
    assert_eq!(s.put("/v1/config", sd("web", "http")).await.1, "true");
    let (_, _, index) = s.get("/v1/config/service-defaults").await;
    let started = Instant::now();
    let (_, _, same) = s
        .get(&format!(
            "/v1/config/service-defaults?index={index}&wait=300ms"
        ))
        .await;
    assert_eq!(same, index);
    assert!(started.elapsed() >= Duration::from_millis(290));
    let waiter = {
        let url = format!(
            "{}/v1/config/service-defaults?index={index}&wait=10s",
            s.base
        );
        let c = s.client.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let r = c.get(url).send().await.unwrap();
            let i: u64 = r.headers()["X-Consul-Index"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            (i, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.put("/v1/config", sd("api", "grpc")).await.1, "true");
    let (new_index, took) = waiter.await.unwrap();
    assert!(
        new_index > index && took < Duration::from_secs(5),
        "{new_index} {took:?}"
    );
    assert_eq!(s.get("/v1/config/service-defaults?index=x").await.0, 400);
}

#[tokio::test]
async fn kv_cas_and_session_locks() {
    let s = start().await;
    let put = |p: String, v: &'static str| {
        let s = &s;
        async move {
            s.client
                .put(format!("{}{p}", s.base))
                .body(v)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        put("/v1/kv/mesh-gitops/a?cas=0".into(), "one").await,
        "true"
    );
    assert_eq!(
        put("/v1/kv/mesh-gitops/a?cas=0".into(), "two").await,
        "false"
    );
    let (_, v, _) = s.get("/v1/kv/mesh-gitops/a").await;
    let idx = v[0]["ModifyIndex"].as_u64().unwrap();
    assert_eq!(v[0]["Value"], "b25l"); // base64 of "one"
    assert_eq!(
        put(format!("/v1/kv/mesh-gitops/a?cas={idx}"), "two").await,
        "true"
    );
    let (_, keys, _) = s.get("/v1/kv/mesh-gitops/?keys").await;
    assert_eq!(keys, json!(["mesh-gitops/a"]));
    // Two sessions compete for a lock.
    let (_, a) = s
        .put(
            "/v1/session/create",
            json!({"Name": "leader-a", "TTL": "15s"}),
        )
        .await;
    let (_, b) = s
        .put("/v1/session/create", json!({"Name": "leader-b"}))
        .await;
    let a: Value = serde_json::from_str(&a).unwrap();
    let b: Value = serde_json::from_str(&b).unwrap();
    let (a, b) = (
        a["ID"].as_str().unwrap().to_owned(),
        b["ID"].as_str().unwrap().to_owned(),
    );
    assert_eq!(put(format!("/v1/kv/lock?acquire={a}"), "a").await, "true");
    assert_eq!(put(format!("/v1/kv/lock?acquire={b}"), "b").await, "false");
    let (_, l, _) = s.get("/v1/kv/lock").await;
    assert_eq!(l[0]["Session"], a.as_str());
    assert_eq!(
        s.put(&format!("/v1/session/destroy/{a}"), json!(null))
            .await
            .1,
        "true"
    );
    assert_eq!(
        put(format!("/v1/kv/lock?acquire={b}"), "b").await,
        "true",
        "the lock is free once its session is gone"
    );
    assert_eq!(s.delete("/v1/kv/mesh-gitops?recurse").await.1, "true");
    assert_eq!(s.get("/v1/kv/mesh-gitops/a").await.0, 404);
    assert_eq!(
        s.put("/v1/session/create", json!({"TTL": "1s"})).await.0,
        400
    );
}

#[tokio::test]
async fn the_ca_serves_roots_and_spiffe_leaves() {
    let s = start().await;
    let (_, roots, _) = s.get("/v1/connect/ca/roots").await;
    let td = roots["TrustDomain"].as_str().unwrap().to_owned();
    assert!(td.ends_with(".consul"));
    assert_eq!(roots["Roots"].as_array().unwrap().len(), 1);
    assert_eq!(roots["ActiveRootID"], roots["Roots"][0]["ID"]);
    let (_, leaf, _) = s.get("/v1/agent/connect/ca/leaf/web").await;
    assert_eq!(
        leaf["ServiceURI"],
        format!("spiffe://{td}/ns/default/dc/dc1/svc/web")
    );
    assert!(leaf["CertPEM"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    let (_, again, _) = s.get("/v1/agent/connect/ca/leaf/web").await;
    assert_eq!(
        again["SerialNumber"], leaf["SerialNumber"],
        "a valid leaf is reused, as the agent cache does"
    );
}

/// Each writer bumps its own Meta key from what it read, so no two writers ever propose the same
/// entry (an identical proposal is a successful no-op in Consul, whatever the index).
#[tokio::test]
async fn concurrent_cas_writers_lose_no_update() {
    let s = start().await;
    assert_eq!(
        s.put(
            "/v1/config",
            json!({"Kind": "service-defaults", "Name": "counter"})
        )
        .await
        .1,
        "true"
    );
    let writers = 8u64;
    let per_writer = 10u64;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let base = s.base.clone();
        let c = s.client.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u32;
            let mut done = 0;
            while done < per_writer {
                let e: Value = c
                    .get(format!("{base}/v1/config/service-defaults/counter"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let idx = e["ModifyIndex"].as_u64().unwrap();
                let mut meta = e.get("Meta").cloned().unwrap_or(json!({}));
                let key = format!("w{w}");
                let n: u64 = meta
                    .get(&key)
                    .and_then(Value::as_str)
                    .map(|x| x.parse().unwrap())
                    .unwrap_or(0);
                meta[&key] = json!((n + 1).to_string());
                let body = json!({"Kind": "service-defaults", "Name": "counter", "Meta": meta});
                let ok = c
                    .put(format!("{base}/v1/config?cas={idx}"))
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                if ok == "true" {
                    done += 1;
                } else {
                    // A false is a real conflict: someone else moved the index.
                    let now: Value = c
                        .get(format!("{base}/v1/config/service-defaults/counter"))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    assert_ne!(now["ModifyIndex"].as_u64().unwrap(), idx);
                    conflicts += 1;
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    let (_, e, _) = s.get("/v1/config/service-defaults/counter").await;
    for w in 0..writers {
        assert_eq!(
            e["Meta"][format!("w{w}")],
            per_writer.to_string(),
            "writer {w}: every successful CAS write kept"
        );
    }
    eprintln!("{conflicts} conflicts among {writers} writers");
}

#[tokio::test]
async fn a_key_change_rotates_the_root_with_a_cross_signed_intermediate() {
    let s = start().await;
    let (_, cfg, _) = s.get("/v1/connect/ca/configuration").await;
    assert_eq!(cfg["Provider"], "consul");
    let (status, body) = s
        .put(
            "/v1/connect/ca/configuration",
            json!({"Provider": "consul", "Config": {"LeafCertTTL": "30m"}}),
        )
        .await;
    assert_eq!(status, 500);
    assert!(body.starts_with("could not initialize provider:"), "{body}");
    let (status, _) = s
        .put(
            "/v1/connect/ca/configuration",
            json!({"Provider": "consul", "Config": {"LeafCertTTL": "24h"}}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, roots, _) = s.get("/v1/connect/ca/roots").await;
    assert_eq!(
        roots["Roots"].as_array().unwrap().len(),
        1,
        "a TTL change does not rotate"
    );
    let (status, _) = s.put("/v1/connect/ca/configuration", json!({"Provider": "consul", "Config": {"PrivateKeyType": "ec", "PrivateKeyBits": 384}})).await;
    assert_eq!(status, 200);
    let (_, roots, _) = s.get("/v1/connect/ca/roots").await;
    let list = roots["Roots"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let active: Vec<&Value> = list.iter().filter(|r| r["Active"] == true).collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["PrivateKeyBits"], 384);
    assert_eq!(active[0]["IntermediateCerts"].as_array().unwrap().len(), 1);
    let (_, leaf, _) = s.get("/v1/agent/connect/ca/leaf/web").await;
    assert_eq!(
        leaf["CertPEM"]
            .as_str()
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2,
        "leaf + cross-signed root"
    );
}

#[tokio::test]
async fn agent_registration_expands_sidecars_and_health_lists_connect_endpoints() {
    let s = start().await;
    let reg = json!({"Name": "web", "Port": 8080, "Connect": {"SidecarService": {"Proxy": {"Upstreams": [{"DestinationName": "api", "LocalBindPort": 9191}]}}}});
    assert_eq!(
        s.put("/v1/agent/service/register", reg.clone()).await.0,
        200
    );
    let api = json!({"Name": "api", "Port": 9090, "Connect": {"SidecarService": {}}});
    assert_eq!(s.put("/v1/agent/service/register", api).await.0, 200);
    let (_, web, _) = s.get("/v1/catalog/service/web-sidecar-proxy").await;
    let sidecar = &web[0];
    assert_eq!(sidecar["ServiceKind"], "connect-proxy");
    assert_eq!(
        sidecar["ServicePort"], 21000,
        "the lowest free sidecar port"
    );
    assert_eq!(sidecar["ServiceProxy"]["DestinationServiceName"], "web");
    assert_eq!(sidecar["ServiceProxy"]["LocalServicePort"], 8080);
    assert_eq!(
        sidecar["ServiceProxy"]["Upstreams"][0]["DestinationName"],
        "api"
    );
    let (_, apis, _) = s.get("/v1/catalog/service/api-sidecar-proxy").await;
    assert_eq!(apis[0]["ServicePort"], 21001);
    // Re-registration keeps the port.
    assert_eq!(s.put("/v1/agent/service/register", reg).await.0, 200);
    let (_, again, _) = s.get("/v1/catalog/service/web-sidecar-proxy").await;
    assert_eq!(again[0]["ServicePort"], 21000);
    let (_, health, index) = s.get("/v1/health/connect/api").await;
    assert_eq!(health.as_array().unwrap().len(), 1);
    assert_eq!(health[0]["Service"]["ID"], "api-sidecar-proxy");
    // A blocking query: nothing changes, so it answers the same index when the wait ends.
    let t = std::time::Instant::now();
    let q = format!("/v1/health/connect/api?passing=1&index={index}&wait=200ms");
    let (_, same, again_index) = s.get(&q).await;
    assert!(t.elapsed() >= std::time::Duration::from_millis(200));
    assert_eq!((same, again_index), (health, index));
    let (_, services, _) = s.get("/v1/catalog/services").await;
    assert!(services.get("web").is_some() && services.get("web-sidecar-proxy").is_some());
    let bad = json!({"Name": "x", "Port": 1, "Connect": {"SidecarService": {"ID": "mine"}}});
    assert_eq!(s.put("/v1/agent/service/register", bad).await.0, 400);
    assert_eq!(
        s.put("/v1/agent/service/deregister/web", json!(null))
            .await
            .0,
        200
    );
    let (_, gone, _) = s.get("/v1/catalog/service/web-sidecar-proxy").await;
    assert_eq!(gone, json!([]));
}

async fn start_acl(default_allow: bool) -> (Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("bootstrap-token");
    let opts = mesh_control_plane::ServerOptions {
        state_dir: Some(dir.path().join("state")),
        listen: "127.0.0.1:0".parse().unwrap(),
        acl_default_allow: Some(default_allow),
        bootstrap_token_file: Some(token_file.clone()),
        ..Default::default()
    };
    let bound = mesh_control_plane::bind(&opts).await.unwrap();
    let base = format!("http://{}", bound.addr);
    tokio::spawn(bound.serve(std::future::pending()));
    let secret = std::fs::read_to_string(&token_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    (
        Server {
            base,
            client: reqwest::Client::new(),
            _dir: dir,
        },
        secret,
    )
}

impl Server {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut r = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.header("X-Consul-Token", t);
        }
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

/// A token with the given rules, created with the management token; returns its secret.
async fn token_with(s: &Server, mgmt: &str, name: &str, rules: &str) -> String {
    let (st, _) = s
        .send(
            reqwest::Method::PUT,
            "/v1/acl/policy",
            Some(mgmt),
            Some(json!({"Name": name, "Rules": rules})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, body) = s
        .send(
            reqwest::Method::PUT,
            "/v1/acl/token",
            Some(mgmt),
            Some(json!({"Description": name, "Policies": [{"Name": name}]})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["SecretID"].as_str().unwrap().to_owned()
}

// One server, one bootstrap: each check reads the tokens and objects the earlier ones made.
#[allow(clippy::too_many_lines)]
#[tokio::test]
async fn acl_enforcement_follows_consul() {
    use reqwest::Method;
    let (s, mgmt) = start_acl(false).await;
    // The bootstrap happened through the file; a second one is refused.
    assert_eq!(
        s.send(Method::PUT, "/v1/acl/bootstrap", None, None).await.0,
        403
    );
    // Unknown tokens are 403 "ACL not found"; anonymous gets the default (deny).
    assert_eq!(
        s.send(
            Method::GET,
            "/v1/acl/policies",
            Some("00000000-aaaa-bbbb-cccc-000000000000"),
            None
        )
        .await,
        (403, "ACL not found".into())
    );
    let (st, body) = s
        .send(Method::PUT, "/v1/config", None, Some(sd("web", "http")))
        .await;
    assert_eq!(st, 403);
    assert!(body.starts_with("Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'service:write' on \"web\""), "{body}");
    assert_eq!(
        s.send(
            Method::PUT,
            "/v1/config",
            Some(&mgmt),
            Some(sd("web", "http"))
        )
        .await,
        (200, "true".into())
    );
    // service:write does not grant intentions:write (7c row 9); intentions = "write" does (row 11).
    let web = token_with(&s, &mgmt, "web", r#"service "web" { policy = "write" }"#).await;
    let ixn = json!({"Kind": "service-intentions", "Name": "web", "Sources": [{"Name": "api", "Action": "allow"}]});
    assert_eq!(
        s.send(Method::PUT, "/v1/config", Some(&web), Some(ixn.clone()))
            .await
            .0,
        403
    );
    let web_ixn = token_with(
        &s,
        &mgmt,
        "web-ixn",
        r#"service "web" { policy = "read" intentions = "write" }"#,
    )
    .await;
    assert_eq!(
        s.send(Method::PUT, "/v1/config", Some(&web_ixn), Some(ixn))
            .await,
        (200, "true".into())
    );
    // Exact beats prefix; the longest prefix wins (7c rows 1-5).
    let foo = token_with(&s, &mgmt, "prefer-exact", "service \"foo\" { policy = \"write\" }\nservice \"football\" { policy = \"deny\" }\nservice_prefix \"foot\" { policy = \"read\" }\nservice_prefix \"fo\" { policy = \"read\" }").await;
    assert_eq!(
        s.send(
            Method::PUT,
            "/v1/config",
            Some(&foo),
            Some(sd("foo", "http"))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        s.send(
            Method::PUT,
            "/v1/config",
            Some(&foo),
            Some(sd("for", "http"))
        )
        .await
        .0,
        403
    );
    // proxy-defaults needs mesh:write, which falls back to operator (7c row 16).
    let op = token_with(&s, &mgmt, "op", r#"operator = "write""#).await;
    let pd = json!({"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "http"}});
    assert_eq!(
        s.send(Method::PUT, "/v1/config", Some(&op), Some(pd.clone()))
            .await
            .0,
        200
    );
    assert_eq!(
        s.send(Method::PUT, "/v1/config", Some(&web), Some(pd))
            .await
            .0,
        403
    );
    // Tokens travel as a Bearer header or ?token= too.
    let r = s
        .client
        .get(format!("{}/v1/config/service-defaults/web", s.base))
        .bearer_auth(&web)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (st, _) = s
        .send(
            Method::GET,
            &format!("/v1/agent/connect/ca/leaf/web?token={web}"),
            None,
            None,
        )
        .await;
    assert_eq!(st, 200, "service:write obtains the leaf");
    assert_eq!(
        s.send(
            Method::GET,
            "/v1/agent/connect/ca/leaf/db",
            Some(&web),
            None
        )
        .await
        .0,
        403
    );
    // Default deny applies to intention decisions.
    let (_, check) = s
        .send(
            Method::GET,
            "/v1/connect/intentions/check?source=x&destination=y",
            Some(&mgmt),
            None,
        )
        .await;
    assert_eq!(check, "{\"Allowed\":false}");
    // ACL objects: names resolve to IDs, lists never carry secrets.
    let (st, role) = s
        .send(
            Method::PUT,
            "/v1/acl/role",
            Some(&mgmt),
            Some(json!({"Name": "ops", "Policies": [{"Name": "op"}]})),
        )
        .await;
    assert_eq!(st, 200);
    let role: Value = serde_json::from_str(&role).unwrap();
    assert_eq!(role["Policies"][0]["Name"], "op");
    assert!(role["Policies"][0]["ID"].as_str().unwrap().len() == 36);
    let (st, body) = s
        .send(
            Method::PUT,
            "/v1/acl/role",
            Some(&mgmt),
            Some(json!({"Name": "bad", "Policies": [{"Name": "missing"}]})),
        )
        .await;
    assert_eq!(
        (st, body.as_str()),
        (500, "No such ACL policy with name \"missing\"")
    );
    let (_, list) = s
        .send(Method::GET, "/v1/acl/tokens", Some(&mgmt), None)
        .await;
    assert!(
        !list.contains(&web) && !list.contains(&mgmt),
        "token lists carry no SecretID"
    );
    let (_, me) = s
        .send(Method::GET, "/v1/acl/token/self", Some(&web), None)
        .await;
    let me: Value = serde_json::from_str(&me).unwrap();
    assert_eq!(me["Policies"][0]["Name"], "web");
    assert_eq!(
        s.send(
            Method::PUT,
            "/v1/acl/policy",
            Some(&web),
            Some(json!({"Name": "x", "Rules": ""}))
        )
        .await
        .0,
        403,
        "acl:write needed"
    );
    let (st, body) = s
        .send(
            Method::PUT,
            "/v1/acl/policy",
            Some(&mgmt),
            Some(json!({"Name": "bad", "Rules": "service \"x\" { policy = \"list\" }"})),
        )
        .await;
    assert_eq!(st, 500);
    assert!(body.starts_with("Invalid service policy"), "{body}");
}

#[tokio::test]
async fn acl_endpoints_answer_401_when_acls_are_off() {
    let s = start().await;
    assert_eq!(s.get("/v1/acl/policies").await.0, 401);
    assert_eq!(
        s.put("/v1/acl/bootstrap", json!(null)).await,
        (401, "ACL support disabled".into())
    );
}
