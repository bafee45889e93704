//! The control plane's ACL and CA answers decode strictly with `mesh-wire`, Consul's spelling
//! (`api/acl.go`, `api/connect_ca.go`): a renamed or invented field fails here instead of
//! reading as zero in the planner.

use mesh_wire::{
    decode_strict, AclPolicy, AclPolicyListEntry, AclRole, AclToken, CaConfiguration, Fields,
};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

struct Server {
    base: String,
    token: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
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
        let base = format!("http://{}", bound.addr);
        tokio::spawn(bound.serve(std::future::pending()));
        Server {
            base,
            token: std::fs::read_to_string(&token_file).unwrap(),
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("X-Consul-Token", &self.token);
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        serde_json::from_str(&resp.text().await.unwrap()).unwrap()
    }
}

fn strict<T: DeserializeOwned + Fields>(what: &str, v: &Value) -> T {
    decode_strict(v).unwrap_or_else(|e| panic!("{what}: {e}\n{v:#}"))
}

fn strict_list<T: DeserializeOwned + Fields>(what: &str, v: &Value) -> Vec<T> {
    let list = v.as_array().unwrap_or_else(|| panic!("{what} is a list"));
    list.iter().map(|x| strict(what, x)).collect()
}

#[tokio::test]
async fn acl_and_ca_answers_are_in_consuls_spelling() {
    let s = Server::start().await;
    let p: AclPolicy = strict(
        "policy write",
        &s.send(
            Method::PUT,
            "/v1/acl/policy",
            Some(json!({"Name": "web", "Description": "d", "Rules": "service \"web\" { policy = \"write\" }", "Datacenters": ["dc1"]})),
        )
        .await,
    );
    assert_eq!(
        (p.name.as_str(), p.datacenters.as_slice()),
        ("web", &["dc1".to_owned()][..])
    );
    assert!(p.server.modify_index > 0 && !p.id.is_empty());
    let read: AclPolicy = strict(
        "policy read",
        &s.send(Method::GET, &format!("/v1/acl/policy/{}", p.id), None)
            .await,
    );
    assert_eq!(read, p);
    // Consul's list leaves the rules out (`ACLPolicyListEntry`); this one lists policies whole,
    // which a reader takes as either.
    let listed = s.send(Method::GET, "/v1/acl/policies", None).await;
    let listed: Vec<AclPolicyListEntry> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let whole: AclPolicy = strict("policy list", x);
            let mut stub = x.clone();
            stub.as_object_mut().unwrap().remove("Rules");
            assert_eq!(whole.id, stub["ID"]);
            strict("policy list", &stub)
        })
        .collect();
    assert!(listed.iter().any(|l| l.id == p.id && l.description == "d"));

    let r: AclRole = strict(
        "role write",
        &s.send(
            Method::PUT,
            "/v1/acl/role",
            Some(json!({"Name": "ops", "Policies": [{"Name": "web"}],
                "ServiceIdentities": [{"ServiceName": "api", "Datacenters": ["dc1"]}],
                "NodeIdentities": [{"NodeName": "n1", "Datacenter": "dc1"}]})),
        )
        .await,
    );
    assert_eq!(r.policies[0].id, p.id);
    assert_eq!(r.service_identities[0].service_name, "api");
    assert_eq!(r.node_identities[0].node_name, "n1");
    let _: Vec<AclRole> = strict_list(
        "role list",
        &s.send(Method::GET, "/v1/acl/roles", None).await,
    );

    let answer = s
        .send(
            Method::PUT,
            "/v1/acl/token",
            Some(json!({"Description": "t", "Policies": [{"Name": "web"}], "Roles": [{"Name": "ops"}], "Local": true})),
        )
        .await;
    let secret = answer["SecretID"]
        .as_str()
        .expect("a create answers the secret")
        .to_owned();
    let t: AclToken = strict("token write", &answer);
    assert!(
        !format!("{t:?}").contains(&secret),
        "the secret never enters"
    );
    assert!(t.local && t.roles[0].name == "ops" && t.policies[0].name == "web");
    let read: AclToken = strict(
        "token read",
        &s.send(
            Method::GET,
            &format!("/v1/acl/token/{}", t.accessor_id),
            None,
        )
        .await,
    );
    assert_eq!(read, t);
    let _: Vec<AclToken> = strict_list(
        "token list",
        &s.send(Method::GET, "/v1/acl/tokens", None).await,
    );

    let ca: CaConfiguration = strict(
        "ca configuration",
        &s.send(Method::GET, "/v1/connect/ca/configuration", None)
            .await,
    );
    assert_eq!(ca.provider, "consul");
    assert!(ca
        .config
        .keys()
        .all(|k| !k.eq_ignore_ascii_case("PrivateKey")));
}
