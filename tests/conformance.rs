//! The conformance corpus: vectors taken from Consul's own test tables (under
//! `tests/data/conformance/`, each naming the Consul test file, test and case it comes from), run
//! twice: through the loader, as a repository file, and through the embedded control plane, as
//! the body of `PUT /v1/config` over HTTP. Both must give Consul's result: the error text the
//! Consul test requires, or acceptance and the stored (normalized) fields it checks.

mod common;

use common::serve::{Serve, ServeOpts};
use serde_json::{Map, Value};

struct Vector {
    id: String,
    input: Value,
    setup: Vec<Value>,
    error: Option<String>,
    stored: Option<Map<String, Value>>,
    /// `false` for a vector about the order of writes (an entry written after another), which
    /// a repository, applied whole in kind order, cannot express.
    through_loader: bool,
}

/// Consul's `makeStringMap(keys, keySize, valSize)` (`config_entry_intentions_test.go`).
fn make_string_map(keys: usize, key_size: usize, val_size: usize) -> Value {
    let mut m = Map::new();
    for i in 0..keys {
        let base = format!("{i}:").repeat(key_size.max(val_size));
        m.insert(
            base[..key_size].to_owned(),
            Value::String(base[..val_size].to_owned()),
        );
    }
    Value::Object(m)
}

/// Expands the corpus's generators (`$makeStringMap`).
fn expand(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Array(args)) = o.get("$makeStringMap") {
                let n: Vec<usize> = args.iter().map(|a| a.as_u64().unwrap() as usize).collect();
                *v = make_string_map(n[0], n[1], n[2]);
                return;
            }
            o.values_mut().for_each(expand);
        }
        Value::Array(items) => items.iter_mut().for_each(expand),
        _ => {}
    }
}

/// `Kind` (or `kind`, as Consul's decoder accepts it) of an entry as written.
fn entry_kind(entry: &Value) -> &str {
    entry["Kind"]
        .as_str()
        .or(entry["kind"].as_str())
        .unwrap_or_default()
}

/// The name an entry is stored under: its `Name` (or `name`), `mesh` for the mesh singleton,
/// `global` for a proxy-defaults entry without one (`ProxyConfigEntry.Normalize`).
fn entry_name(entry: &Value) -> &str {
    let name = entry["Name"]
        .as_str()
        .or(entry["name"].as_str())
        .unwrap_or_default();
    match entry_kind(entry) {
        "mesh" => "mesh",
        "proxy-defaults" if name.is_empty() => "global",
        _ => name,
    }
}

fn corpus() -> Vec<Vector> {
    let dir = common::root().join("tests/data/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let doc: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        for v in doc["vectors"].as_array().unwrap() {
            let t = &v["consul_test"];
            let mut input = v["input"].clone();
            expand(&mut input);
            out.push(Vector {
                id: format!(
                    "{} {} {:?}",
                    t["file"].as_str().unwrap(),
                    t["test"].as_str().unwrap(),
                    t["case"].as_str().unwrap()
                ),
                input,
                setup: v["setup"].as_array().cloned().unwrap_or_default(),
                error: v["expect"]["error"].as_str().map(str::to_owned),
                stored: v["expect"]["stored"].as_object().cloned(),
                through_loader: v["through"]
                    .as_array()
                    .is_none_or(|t| t.iter().any(|w| w == "loader")),
            });
        }
    }
    out
}

#[test]
fn the_corpus_holds_vectors_from_consuls_tests() {
    let vectors = corpus();
    assert!(vectors.len() >= 300, "{} vectors", vectors.len());
    assert!(vectors.iter().any(|v| v.error.is_none()));
}

#[test]
fn every_vector_through_the_loader_as_a_file() {
    let mut failed = Vec::new();
    for v in corpus().into_iter().filter(|v| v.through_loader) {
        let mut files = vec![mesh_loader::RepoFile {
            path: "mesh-gitops.hcl".into(),
            contents: b"datacenter = \"dc1\"\nowner = \"conformance\"\n".to_vec(),
        }];
        for (i, s) in v.setup.iter().enumerate() {
            files.push(mesh_loader::RepoFile {
                path: format!("setup-{i}.json"),
                contents: s.to_string().into_bytes(),
            });
        }
        files.push(mesh_loader::RepoFile {
            path: "entry.json".into(),
            contents: v.input.to_string().into_bytes(),
        });
        let loaded = mesh_loader::load_files(files, &mesh_loader::LoadOptions::default());
        let errors: Vec<&str> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.message.as_str())
            .collect();
        match (&v.error, errors.is_empty()) {
            (Some(want), _) if !errors.iter().any(|m| m.contains(want.as_str())) => {
                failed.push(format!(
                    "{}: want an error containing {want:?}, got {errors:?}",
                    v.id
                ));
            }
            (None, false) => failed.push(format!("{}: want acceptance, got {errors:?}", v.id)),
            _ => {}
        }
        if let (Some(stored), None) = (&v.stored, &v.error) {
            let kind = entry_kind(&v.input);
            let name = entry_name(&v.input);
            let entry = loaded
                .state
                .config_entries
                .iter()
                .find(|e| e.kind().as_str() == kind && e.name() == name)
                .cloned();
            let Some(mut entry) = entry else {
                failed.push(format!("{}: not loaded", v.id));
                continue;
            };
            mesh_semantics::config_entry::normalize(&mut entry);
            let got = entry.to_json();
            for (k, want) in stored {
                if &got[k] != want {
                    failed.push(format!("{}: {k} is {}, Consul stores {want}", v.id, got[k]));
                }
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} vector(s) disagree:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// Whether an answer `got` is Consul's answer for the stored `want`: the vectors write
/// durations in Go's spelling, and Consul answers most `time.Duration` fields in nanoseconds
/// (`control-plane/src/http/durations.rs`), so a number answers a duration string of the same
/// length of time.
fn answers(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Number(n), Value::String(s)) => {
            let nanos = n.as_u64().map(u128::from);
            nanos.is_some() && nanos == mesh_semantics::duration::parse_go(s)
        }
        (Value::Object(g), Value::Object(w)) => {
            g.len() == w.len()
                && w.iter()
                    .all(|(k, w)| g.get(k).is_some_and(|g| answers(g, w)))
        }
        (Value::Array(g), Value::Array(w)) => {
            g.len() == w.len() && g.iter().zip(w).all(|(g, w)| answers(g, w))
        }
        _ => got == want,
    }
}

#[test]
fn every_vector_through_the_control_plane_over_http() {
    let state = tempfile::tempdir().unwrap();
    let server = Serve::start(state.path(), ServeOpts::default());
    let http = server.client();
    let url = server.url();
    let mut failed = Vec::new();
    for v in corpus() {
        for s in &v.setup {
            let r = http
                .put(format!("{url}/v1/config"))
                .body(s.to_string())
                .send()
                .unwrap();
            assert!(r.status().is_success(), "{}: setup {s}", v.id);
        }
        let r = http
            .put(format!("{url}/v1/config"))
            .body(v.input.to_string())
            .send()
            .unwrap();
        let ok = r.status().is_success();
        let body = r.text().unwrap();
        match &v.error {
            Some(want) if ok || !body.contains(want.as_str()) => {
                failed.push(format!(
                    "{}: want an error containing {want:?}, got {body:?}",
                    v.id
                ));
            }
            None if !(ok && body.trim() == "true") => {
                failed.push(format!("{}: want acceptance, got {body:?}", v.id));
            }
            _ => {}
        }
        let kind = entry_kind(&v.input);
        let name = entry_name(&v.input);
        if let (Some(stored), None) = (&v.stored, &v.error) {
            let got: Value = http
                .get(format!("{url}/v1/config/{kind}/{name}"))
                .send()
                .unwrap()
                .json()
                .unwrap();
            for (k, want) in stored {
                if !answers(&got[k], want) {
                    failed.push(format!("{}: {k} is {}, Consul stores {want}", v.id, got[k]));
                }
            }
        }
        // Leave nothing behind for the next vector: the entry, then what it needed.
        if !name.is_empty() {
            let _ = http.delete(format!("{url}/v1/config/{kind}/{name}")).send();
        }
        // In reverse: an entry may be what an earlier one's removal would break.
        for s in v.setup.iter().rev() {
            let (k, n) = (entry_kind(s), entry_name(s));
            let _ = http.delete(format!("{url}/v1/config/{k}/{n}")).send();
        }
    }
    assert!(
        failed.is_empty(),
        "{} vector(s) disagree:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// A write without `Name` decodes in Consul and fails `ConfigEntry.Apply`'s validation: an RPC
/// error, answered 500 with the bare message (`Name is required` for the kinds whose
/// `Validate()` checks it); proxy-defaults is named `global` by its `Normalize()`.
#[test]
fn a_write_without_a_name_is_answered_as_consul_answers_it() {
    let state = tempfile::tempdir().unwrap();
    let server = Serve::start(state.path(), ServeOpts::default());
    let http = server.client();
    let url = server.url();
    for kind in ["service-defaults", "service-intentions", "jwt-provider"] {
        let r = http
            .put(format!("{url}/v1/config"))
            .body(format!("{{\"Kind\": \"{kind}\"}}"))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 500, "{kind}");
        assert_eq!(r.text().unwrap(), "Name is required", "{kind}");
    }
    let r = http
        .put(format!("{url}/v1/config"))
        .body(r#"{"Kind": "exported-services", "Services": [{"Name": "api", "Consumers": [{"Peer": "dc2"}]}]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    assert_eq!(
        r.text().unwrap(),
        "exported-services Name must be \"default\""
    );
    let r = http
        .put(format!("{url}/v1/config"))
        .body(r#"{"Kind": "proxy-defaults", "Config": {"protocol": "http"}}"#)
        .send()
        .unwrap();
    assert_eq!(r.text().unwrap(), "true");
    let stored: Value = http
        .get(format!("{url}/v1/config/proxy-defaults/global"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(stored["Name"], "global");
}

/// Consul's `TestStore_ValidateJWTProviderIsReferenced` (`agent/consul/state/config_entry_test.go`):
/// a provider an intention names cannot be deleted until the intention is.
#[test]
fn a_jwt_provider_an_intention_names_is_not_deleted() {
    let state = tempfile::tempdir().unwrap();
    let server = Serve::start(state.path(), ServeOpts::default());
    let http = server.client();
    let url = server.url();
    let put = |body: &str| {
        let r = http
            .put(format!("{url}/v1/config"))
            .body(body.to_owned())
            .send()
            .unwrap();
        assert_eq!(r.text().unwrap(), "true", "{body}");
    };
    put(
        r#"{"Kind": "jwt-provider", "Name": "okta", "JSONWebKeySet": {"Local": {"Filename": "jwks.txt"}}}"#,
    );
    put(
        r#"{"Kind": "service-intentions", "Name": "api", "JWT": {"Providers": [{"Name": "okta"}]}, "Sources": [{"Name": "web", "Action": "allow"}]}"#,
    );
    let r = http
        .delete(format!("{url}/v1/config/jwt-provider/okta"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    assert!(r.text().unwrap().contains(
        "cannot delete jwt provider config entry referenced by an intention. Provider name: okta, intention name: api"
    ));
    let r = http
        .delete(format!("{url}/v1/config/service-intentions/api"))
        .send()
        .unwrap();
    assert!(r.status().is_success());
    let r = http
        .delete(format!("{url}/v1/config/jwt-provider/okta"))
        .send()
        .unwrap();
    assert!(r.status().is_success());
}
