//! The ACL and CA conformance corpus: vectors taken from Consul's own tests of the ACL rules
//! parser, policy merging, the policy authorizer and the Connect CA configuration (under
//! `tests/data/conformance/acl/`, each naming the Consul test file, test and case it comes
//! from). Each runs through `mesh-semantics` directly and through the embedded control plane
//! over HTTP (`PUT /v1/acl/policy`, a token asking the endpoints the control plane enforces,
//! `PUT /v1/connect/ca/configuration`); the rules and CA vectors also as a repository's
//! `acl-policy` and `ca-config` files.

mod common;

use common::serve::{Serve, ServeOpts};
use mesh_diagnostics::FileId;
use mesh_semantics::acl::{
    self, Access, AccessLevel, Authorizer, Decision, DefaultAuthorizer, PolicyRules, Resource,
    Singleton,
};
use reqwest::blocking::Client;
use reqwest::Method;
use serde_json::{json, Map, Value};

struct Vector {
    id: String,
    input: Value,
    expect: Value,
    through_loader: bool,
}

fn corpus(file: &str) -> Vec<Vector> {
    let path = common::root().join("tests/data/conformance/acl").join(file);
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    doc["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let t = &v["consul_test"];
            Vector {
                id: format!(
                    "{} {} {:?}",
                    t["file"].as_str().unwrap(),
                    t["test"].as_str().unwrap(),
                    t["case"].as_str().unwrap()
                ),
                input: v["input"].clone(),
                expect: v["expect"].clone(),
                through_loader: v["through"]
                    .as_array()
                    .is_none_or(|t| t.iter().any(|w| w == "loader")),
            }
        })
        .collect()
}

fn report(failed: Vec<String>) {
    assert!(
        failed.is_empty(),
        "{} vector(s) disagree:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// A policy in the vectors' normal form: resource (`service`, `key_prefix`...) -> segment ->
/// `{policy, intentions}` as written, singletons as their level.
fn normal_form(r: &PolicyRules) -> Value {
    let mut out = Map::new();
    let mut put = |map: &std::collections::BTreeMap<(Resource, String), AccessLevel>,
                   suffix: &str| {
        for ((res, seg), level) in map {
            let (name, field) = match res {
                Resource::Intention => ("service", "intentions"),
                other => (other.name(), "policy"),
            };
            let by_seg = out
                .entry(format!("{name}{suffix}"))
                .or_insert_with(|| json!({}));
            by_seg[seg.as_str()][field] = json!(level.as_str());
        }
    };
    put(&r.exact, "");
    put(&r.prefix, "_prefix");
    for (s, l) in &r.singletons {
        out.insert(s.name().to_owned(), json!(l.as_str()));
    }
    Value::Object(out)
}

fn parse(text: &str) -> Result<PolicyRules, String> {
    acl::parse_rules(text, FileId(0), 0).map_err(|e| e[0].message.clone())
}

fn policies(v: &Vector) -> Vec<String> {
    v.input["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_acl_corpus_holds_vectors_from_consuls_tests() {
    let n: usize = [
        "acl_rules.json",
        "acl_merge.json",
        "acl_authorizer.json",
        "ca_config.json",
    ]
    .iter()
    .map(|f| corpus(f).len())
    .sum();
    assert!(n >= 120, "{n} vectors");
}

#[test]
fn rules_vectors_through_the_parser() {
    let mut failed = Vec::new();
    for v in corpus("acl_rules.json") {
        match (
            parse(v.input["rules"].as_str().unwrap()),
            &v.expect["error"],
        ) {
            (Err(got), Value::String(want)) if !got.starts_with(want.as_str()) => {
                failed.push(format!("{}: want {want:?}, got {got:?}", v.id))
            }
            (Ok(r), Value::String(want)) => failed.push(format!(
                "{}: want {want:?}, accepted {}",
                v.id,
                normal_form(&r)
            )),
            (Err(got), Value::Null) => failed.push(format!("{}: refused: {got}", v.id)),
            (Ok(r), Value::Null) if normal_form(&r) != v.expect["rules"] => failed.push(format!(
                "{}: parsed {}, Consul {}",
                v.id,
                normal_form(&r),
                v.expect["rules"]
            )),
            _ => {}
        }
    }
    report(failed);
}

#[test]
fn merge_vectors_through_the_merger() {
    let mut failed = Vec::new();
    for v in corpus("acl_merge.json") {
        let parsed: Vec<PolicyRules> = policies(&v).iter().map(|p| parse(p).unwrap()).collect();
        let merged = normal_form(&PolicyRules::merged(&parsed));
        if merged != v.expect["rules"] {
            failed.push(format!(
                "{}: merged {merged}, Consul {}",
                v.id, v.expect["rules"]
            ));
        }
    }
    report(failed);
}

fn access(name: &str) -> Access {
    match name {
        "Read" => Access::Read,
        "List" => Access::List,
        _ => Access::Write,
    }
}

/// The policy authorizer's answer to the Consul `Authorizer` method `check`.
fn decide(a: &Authorizer, check: &str, seg: &str) -> Decision {
    let (res, acc) = check.split_at(check.len() - if check.ends_with("Write") { 5 } else { 4 });
    if let Some(acc) = check.strip_prefix("AnyAllowed") {
        return a.any_allowed(Resource::Key, access(acc));
    }
    if let Some(acc) = check.strip_prefix("AllAllowed") {
        return a.all_allowed(Resource::Key, access(acc));
    }
    let segmented = |r: Resource| a.decide(r, seg, access(acc));
    let singleton = |s: Singleton| a.decide_singleton(s, access(acc));
    match (check, res) {
        ("IntentionDefaultAllow", _) => Decision::Default,
        ("ServiceWriteAny", _) => a.any_allowed(Resource::Service, Access::Write),
        ("Snapshot", _) => a.decide_singleton(Singleton::Acl, Access::Write),
        ("KeyWritePrefix", _) => a.decide_key_write_prefix(seg),
        ("KeyList", _) => a.decide(Resource::Key, seg, Access::List),
        ("IntentionRead", _) => a.decide_intention_read(seg),
        ("IntentionWrite", _) => a.decide_intention_write(seg),
        (_, "Agent") => segmented(Resource::Agent),
        (_, "Event") => segmented(Resource::Event),
        (_, "Key") => segmented(Resource::Key),
        (_, "Node") => segmented(Resource::Node),
        (_, "PreparedQuery") => segmented(Resource::Query),
        (_, "Service") => segmented(Resource::Service),
        (_, "Session") => segmented(Resource::Session),
        (_, "ACL") => singleton(Singleton::Acl),
        (_, "Keyring") => singleton(Singleton::Keyring),
        (_, "Mesh") => singleton(Singleton::Mesh),
        (_, "Operator") => singleton(Singleton::Operator),
        (_, "Peering") => singleton(Singleton::Peering),
        _ => panic!("no check {check}"),
    }
}

fn authorizer_of(v: &Vector) -> Authorizer {
    let parsed: Vec<PolicyRules> = policies(v).iter().map(|p| parse(p).unwrap()).collect();
    Authorizer::from_policies(&parsed, DefaultAuthorizer::DenyAll)
}

#[test]
fn authorizer_vectors_through_the_authorizer() {
    let mut failed = Vec::new();
    for v in corpus("acl_authorizer.json") {
        let check = v.input["check"].as_str().unwrap();
        let seg = v.input["segment"].as_str().unwrap();
        let mut got = decide(&authorizer_of(&v), check, seg).as_str();
        // With a default policy the test asks the chain: the default answers `default`.
        if let (Some(d), "default") = (v.input["default_policy"].as_str(), got) {
            got = d;
        }
        let want = v.expect["decision"].as_str().unwrap();
        if got != want {
            failed.push(format!(
                "{}: {check}({seg:?}) is {got:?}, Consul {want}",
                v.id
            ));
        }
    }
    report(failed);
}

fn ca_model(input: &Value) -> mesh_model::CaConfig {
    mesh_model::CaConfig {
        provider: input["Provider"].as_str().unwrap_or("consul").to_owned(),
        config: input["Config"].as_object().cloned().unwrap_or_default(),
        force_without_cross_signing: input["ForceWithoutCrossSigning"].as_bool().unwrap_or(false),
        token_from: None,
        span: Default::default(),
    }
}

/// The effective settings a vector names, as Consul spells them.
fn settings_json(s: &mesh_semantics::ca_config::CaSettings) -> Value {
    let go = |d: std::time::Duration| mesh_semantics::duration::to_go(d.as_nanos());
    json!({"LeafCertTTL": go(s.leaf_cert_ttl), "IntermediateCertTTL": go(s.intermediate_cert_ttl),
           "RootCertTTL": go(s.root_cert_ttl), "PrivateKeyType": s.private_key_type,
           "PrivateKeyBits": s.private_key_bits})
}

/// What a vector's errors (or their absence) say against its expectation.
fn judge(id: &str, errors: &[String], expect: &Value) -> Option<String> {
    match expect["error"].as_str() {
        Some(want) if !errors.first().is_some_and(|e| e.contains(want)) => Some(format!(
            "{id}: want the first error to contain {want:?}, got {errors:?}"
        )),
        None if !errors.is_empty() => Some(format!("{id}: want acceptance, got {errors:?}")),
        _ => None,
    }
}

#[test]
fn ca_vectors_through_the_ca_rules() {
    let mut failed = Vec::new();
    for v in corpus("ca_config.json")
        .into_iter()
        .filter(|v| v.through_loader)
    {
        let model = ca_model(&v.input);
        let errors: Vec<String> = mesh_semantics::ca_config::validate(&model)
            .into_iter()
            .filter(|d| d.is_error())
            .map(|d| d.message)
            .collect();
        failed.extend(judge(&v.id, &errors, &v.expect));
        if let Some(want) = v.expect["settings"].as_object() {
            let got =
                settings_json(&mesh_semantics::ca_config::CaSettings::from_config(&model).unwrap());
            for (k, w) in want {
                if &got[k] != w {
                    failed.push(format!("{}: {k} is {}, Consul {w}", v.id, got[k]));
                }
            }
        }
    }
    report(failed);
}

#[test]
fn ca_vectors_through_the_loader_as_a_file() {
    let mut failed = Vec::new();
    for v in corpus("ca_config.json")
        .into_iter()
        .filter(|v| v.through_loader)
    {
        let mut file = v.input.clone();
        file["Kind"] = json!("ca-config");
        let files = vec![
            mesh_loader::RepoFile {
                path: "mesh-gitops.hcl".into(),
                contents: b"datacenter = \"dc1\"\nowner = \"conformance\"\n".to_vec(),
            },
            mesh_loader::RepoFile {
                path: "ca.json".into(),
                contents: file.to_string().into_bytes(),
            },
        ];
        let loaded = mesh_loader::load_files(files, &mesh_loader::LoadOptions::default());
        let errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.message.clone())
            .collect();
        failed.extend(judge(&v.id, &errors, &v.expect));
    }
    report(failed);
}

#[test]
fn rules_vectors_through_the_loader_as_a_file() {
    let mut failed = Vec::new();
    for v in corpus("acl_rules.json")
        .into_iter()
        .filter(|v| v.through_loader)
    {
        let policy = json!({"Kind": "acl-policy", "Name": "p", "Rules": v.input["rules"]});
        let files = vec![
            mesh_loader::RepoFile {
                path: "mesh-gitops.hcl".into(),
                contents: b"datacenter = \"dc1\"\nowner = \"conformance\"\n".to_vec(),
            },
            mesh_loader::RepoFile {
                path: "acl/p.json".into(),
                contents: policy.to_string().into_bytes(),
            },
        ];
        let loaded = mesh_loader::load_files(files, &mesh_loader::LoadOptions::default());
        let errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.message.clone())
            .collect();
        match v.expect["error"].as_str() {
            Some(want) if !errors.first().is_some_and(|e| e.starts_with(want)) => {
                failed.push(format!("{}: want {want:?}, got {errors:?}", v.id))
            }
            None if !errors.is_empty() => failed.push(format!("{}: refused: {errors:?}", v.id)),
            _ => {}
        }
    }
    report(failed);
}

/// A server with ACLs on (`default` the default policy) and its management client.
fn acl_server(dir: &std::path::Path, default: &str) -> (Serve, Client, String) {
    let server = Serve::start(
        dir,
        ServeOpts {
            bootstrap_token: true,
            extra: vec!["--acl-default-policy".into(), default.into()],
            ..ServeOpts::default()
        },
    );
    let http = server.client();
    let url = server.url();
    (server, http, url)
}

#[test]
fn rules_vectors_through_the_acl_policy_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, http, url) = acl_server(dir.path(), "deny");
    let mut failed = Vec::new();
    for (i, v) in corpus("acl_rules.json").into_iter().enumerate() {
        let body = json!({"Name": format!("rules-{i}"), "Rules": v.input["rules"]});
        let r = http
            .put(format!("{url}/v1/acl/policy"))
            .body(body.to_string())
            .send()
            .unwrap();
        let ok = r.status().is_success();
        let text = r.text().unwrap();
        match v.expect["error"].as_str() {
            Some(want) if ok || !text.starts_with(want) => {
                failed.push(format!("{}: want {want:?}, got {text:?}", v.id))
            }
            None if !ok => failed.push(format!("{}: refused: {text}", v.id)),
            _ => {}
        }
    }
    report(failed);
}

/// The request that asks the control plane for `check` on `seg`, where it enforces it with a
/// 403: (method, path, body).
fn probe(check: &str, seg: &str) -> Option<(Method, String, Option<Value>)> {
    let plain = !seg.is_empty() && seg != "*";
    let entry = |kind: &str| json!({"Kind": kind, "Name": seg});
    Some(match check {
        "KeyRead" if plain => (Method::GET, format!("/v1/kv/{seg}"), None),
        "KeyWrite" if plain => (Method::PUT, format!("/v1/kv/{seg}"), Some(json!("v"))),
        "KeyWritePrefix" if plain => (Method::DELETE, format!("/v1/kv/{seg}?recurse"), None),
        "ServiceRead" if plain => (
            Method::GET,
            format!("/v1/config/service-defaults/{seg}"),
            None,
        ),
        "ServiceWrite" if plain => (
            Method::PUT,
            "/v1/config".into(),
            Some(entry("service-defaults")),
        ),
        "IntentionRead" if !seg.is_empty() => (
            Method::GET,
            format!("/v1/config/service-intentions/{seg}"),
            None,
        ),
        // Consul validates an entry before it asks the token (`ConfigEntry.Apply`): a valid one.
        "IntentionWrite" if !seg.is_empty() => {
            let mut e = entry("service-intentions");
            e["Sources"] = json!([{"Name": "web", "Action": "allow"}]);
            (Method::PUT, "/v1/config".into(), Some(e))
        }
        // A node-only registration at a new address: it changes the node.
        "NodeWrite" if plain => (
            Method::PUT,
            "/v1/catalog/register".into(),
            Some(json!({"Node": seg, "Address": format!("10.1.{}.1", seg.len())})),
        ),
        "MeshWrite" => (
            Method::PUT,
            "/v1/config".into(),
            Some(json!({"Kind": "mesh"})),
        ),
        "OperatorWrite" => (Method::GET, "/v1/connect/ca/configuration".into(), None),
        _ => return None,
    })
}

/// A token holding the vector's policies, made with the management client.
fn token_for(http: &Client, url: &str, tag: &str, v: &Vector) -> String {
    let mut links = Vec::new();
    for (j, rules) in policies(v).iter().enumerate() {
        let name = format!("{tag}-{j}");
        let r = http
            .put(format!("{url}/v1/acl/policy"))
            .body(json!({"Name": name, "Rules": rules}).to_string())
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{}: {}", v.id, r.text().unwrap());
        links.push(json!({"Name": name}));
    }
    let r: Value = http
        .put(format!("{url}/v1/acl/token"))
        .body(json!({"Policies": links}).to_string())
        .send()
        .unwrap()
        .json()
        .unwrap();
    r["SecretID"].as_str().unwrap().to_owned()
}

#[test]
fn authorizer_vectors_over_http_under_both_default_policies() {
    let vectors: Vec<Vector> = corpus("acl_authorizer.json")
        .into_iter()
        .filter(|v| {
            probe(
                v.input["check"].as_str().unwrap(),
                v.input["segment"].as_str().unwrap(),
            )
            .is_some()
        })
        .collect();
    assert!(vectors.len() >= 60, "{} vectors over HTTP", vectors.len());
    let mut failed = Vec::new();
    for default in ["deny", "allow"] {
        let dir = tempfile::tempdir().unwrap();
        let (_server, http, url) = acl_server(dir.path(), default);
        let plain = Client::new();
        for (i, v) in vectors.iter().enumerate() {
            if v.input["default_policy"]
                .as_str()
                .is_some_and(|d| d != default)
            {
                continue;
            }
            let check = v.input["check"].as_str().unwrap();
            let seg = v.input["segment"].as_str().unwrap();
            let (method, path, body) = probe(check, seg).unwrap();
            let token = token_for(&http, &url, &format!("{default}-{i}"), v);
            let mut req = plain
                .request(method, format!("{url}{path}"))
                .header("X-Consul-Token", token);
            if let Some(b) = body {
                req = req.body(b.to_string());
            }
            let r = req.send().unwrap();
            let status = r.status().as_u16();
            let allowed = status != 403;
            let want = match v.expect["decision"].as_str().unwrap() {
                "allow" => true,
                "deny" => false,
                _ => default == "allow",
            };
            if allowed != want {
                failed.push(format!(
                    "{} (default {default}): {check}({seg:?}) answered {status}: {}",
                    v.id,
                    r.text().unwrap()
                ));
            }
        }
    }
    report(failed);
}

#[test]
fn ca_vectors_through_the_ca_configuration_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, http, url) = acl_server(dir.path(), "deny");
    let mut failed = Vec::new();
    for v in corpus("ca_config.json") {
        let r = http
            .put(format!("{url}/v1/connect/ca/configuration"))
            .body(v.input.to_string())
            .send()
            .unwrap();
        let ok = r.status().is_success();
        let text = r.text().unwrap();
        let errors = if ok { Vec::new() } else { vec![text] };
        failed.extend(judge(&v.id, &errors, &v.expect));
        if let (true, Some(stored)) = (ok, v.expect["stored"].as_object()) {
            let got: Value = http
                .get(format!("{url}/v1/connect/ca/configuration"))
                .send()
                .unwrap()
                .json()
                .unwrap();
            for (k, w) in stored {
                if &got[k] != w {
                    failed.push(format!("{}: stored {k} is {}, Consul {w}", v.id, got[k]));
                }
            }
        }
    }
    report(failed);
}
