//! `read_live` against the embedded control plane with ACLs enforced (default deny), through a
//! token that holds only the documented read-only policy (`examples/deploy/read-only-policy.hcl`).

use mesh_consul::{read_live, Client, ClientConfig, ConsulError, RetryPolicy};
use mesh_model::{ConfigEntry, ServiceOrigin};
use serde_json::{json, Value};

struct Cluster {
    address: String,
    management: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("bootstrap-token");
        let opts = mesh_control_plane::ServerOptions {
            state_dir: Some(dir.path().join("state")),
            listen: "127.0.0.1:0".parse().unwrap(),
            acl_default_allow: Some(false),
            bootstrap_token_file: Some(token_file.clone()),
            ..Default::default()
        };
        let bound = mesh_control_plane::bind(&opts).await.unwrap();
        let address = format!("http://{}", bound.addr);
        tokio::spawn(bound.serve(std::future::pending()));
        Cluster {
            address,
            management: std::fs::read_to_string(token_file).unwrap(),
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// A PUT with the management token; the answer's JSON.
    async fn put(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .put(format!("{}{path}", self.address))
            .header("X-Consul-Token", &self.management)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        let text = resp.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A token holding only the read-only policy; its secret.
    async fn read_only_token(&self) -> String {
        let rules = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/deploy/read-only-policy.hcl"
        ))
        .unwrap();
        self.put(
            "/v1/acl/policy",
            json!({"Name": "mesh-gitops-read", "Rules": rules}),
        )
        .await;
        let token = self
            .put(
                "/v1/acl/token",
                json!({"Policies": [{"Name": "mesh-gitops-read"}]}),
            )
            .await;
        token["SecretID"].as_str().unwrap().to_owned()
    }

    fn client(&self, token: Option<&str>) -> Client {
        Client::new(ClientConfig {
            address: self.address.clone(),
            token: token.map(str::to_owned),
            request_timeout: std::time::Duration::from_secs(10),
            retry: RetryPolicy {
                attempts_max: 1,
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap()
    }

    /// Two owners' entries, one shared destination, and a service only the catalog knows.
    async fn populate(&self) {
        for entry in [
            json!({"Kind": "service-defaults", "Name": "api", "Protocol": "http",
                   "Meta": {"mesh-gitops-owner": "team-a"}}),
            json!({"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "tcp"}}),
            json!({"Kind": "service-intentions", "Name": "api",
                   "Meta": {"mesh-gitops-shared": "true",
                            "mesh-gitops-sources-team-a": "web",
                            "mesh-gitops-sources-team-b": "batch"},
                   "Sources": [{"Name": "web", "Action": "allow"},
                               {"Name": "batch", "Action": "allow"}]}),
        ] {
            assert_eq!(self.put("/v1/config", entry).await, json!(true));
        }
        self.put(
            "/v1/agent/service/register",
            json!({"Name": "legacy", "Port": 7000, "Connect": {"SidecarService": {"Proxy": {
                "Upstreams": [{"DestinationName": "api", "LocalBindPort": 9191}]}}}}),
        )
        .await;
        self.put(
            "/v1/agent/service/register",
            json!({"Name": "plain", "Port": 7100}),
        )
        .await;
    }
}

#[tokio::test]
async fn the_read_only_policy_reads_every_entry_and_connect_service() {
    let c = Cluster::start().await;
    c.populate().await;
    let token = c.read_only_token().await;
    let client = c.client(Some(&token));
    let live = read_live(&client)
        .await
        .expect("the read-only token reads it all");
    let entries: Vec<(String, String)> = live
        .entries
        .iter()
        .map(|e| {
            let e = &e.stored.entry;
            (e.kind().as_str().to_owned(), e.name().to_owned())
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("proxy-defaults".to_owned(), "global".to_owned()),
            ("service-defaults".to_owned(), "api".to_owned()),
            ("service-intentions".to_owned(), "api".to_owned()),
        ]
    );
    let shared = live
        .entries
        .iter()
        .find_map(|e| match &e.stored.entry {
            ConfigEntry::ServiceIntentions(i) => Some(i),
            _ => None,
        })
        .unwrap();
    let sources: Vec<&str> = shared.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        sources,
        ["web", "batch"],
        "both owners' sources, in Consul's order"
    );
    // Only Connect services: `plain` has no sidecar and is not Connect-native.
    assert_eq!(live.services.len(), 1, "{:?}", live.services);
    let legacy = live.service("legacy").unwrap();
    assert_eq!(legacy.service.origin, ServiceOrigin::Catalog);
    assert_eq!(legacy.service.upstreams[0].destination_name, "api");
    assert_eq!(legacy.endpoint, "/v1/catalog/service/legacy-sidecar-proxy");
    assert!(legacy.text.contains("\"DestinationName\": \"api\""));
    assert!(live.entries[0]
        .text
        .contains("\"Kind\": \"proxy-defaults\""));

    // The same token can change nothing.
    let write = client
        .put_config_entry(&live.entries[1].stored.entry, None)
        .await;
    assert!(matches!(write, Err(ConsulError::Forbidden(_))), "{write:?}");
}

#[tokio::test]
async fn an_unknown_token_is_refused_naming_the_address_and_endpoint() {
    let c = Cluster::start().await;
    let err = read_live(&c.client(Some("not-a-token"))).await.unwrap_err();
    assert_eq!(err.address, c.address);
    assert_eq!(err.endpoint, "/v1/config/service-defaults");
    assert!(matches!(err.source, ConsulError::Forbidden(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&c.address) && text.contains("GET /v1/config/service-defaults"));
}

#[tokio::test]
async fn an_unreachable_consul_names_the_address_and_endpoint() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::new(ClientConfig {
        address: format!("http://127.0.0.1:{port}"),
        request_timeout: std::time::Duration::from_secs(5),
        retry: RetryPolicy {
            attempts_max: 1,
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let err = read_live(&client).await.unwrap_err();
    assert_eq!(err.address, format!("http://127.0.0.1:{port}"));
    assert_eq!(err.endpoint, "/v1/config/service-defaults");
    assert!(err
        .to_string()
        .starts_with("cannot read the live state from Consul at http://127.0.0.1:"));
}
