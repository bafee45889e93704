//! Consul's stored normal form, as properties over generated entries of the typed kinds
//! (service-defaults, proxy-defaults, mesh, service-intentions), written the many ways a file
//! may write them (zero values, mixed case, unsorted sources, durations in seconds):
//!
//! - normalizing twice changes nothing;
//! - the normal form written as a file and read back (strict decoder) is the same entry;
//! - the normal form written as a current Consul answers it (`Hash`, the Raft indexes, the
//!   zero-value structs and empty fields Go's encoder writes, durations as nanoseconds, a field
//!   of a newer Consul) and read back (tolerant decoder) is the same entry.

use mesh_diagnostics::FileId;
use mesh_model::ConfigEntry;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn decode_file(text: &str) -> ConfigEntry {
    let node = mesh_syntax::parse_json(FileId(0), text).unwrap();
    mesh_loader::decode_config_entry(&node).unwrap_or_else(|d| panic!("{text}: {d:?}"))
}

fn decode_answer(text: &str) -> ConfigEntry {
    let node = mesh_syntax::parse_json(FileId(0), text).unwrap();
    mesh_loader::decode_server_entry(&node)
        .unwrap_or_else(|d| panic!("{text}: {d:?}"))
        .entry
}

fn normal(mut e: ConfigEntry) -> ConfigEntry {
    mesh_semantics::config_entry::normalize(&mut e);
    e
}

/// Seconds of a duration in Go's spelling with whole seconds (`1h0m0s`, `1m30s`, `45s`).
fn go_seconds(s: &str) -> u64 {
    let mut total = 0;
    let mut n = 0;
    for c in s.chars() {
        match c {
            '0'..='9' => n = n * 10 + u64::from(c.to_digit(10).unwrap()),
            'h' => (total, n) = (total + n * 3600, 0),
            'm' => (total, n) = (total + n * 60, 0),
            's' => (total, n) = (total + n, 0),
            _ => panic!("{s}"),
        }
    }
    total
}

fn set_default(obj: &mut Map<String, Value>, key: &str, v: Value) {
    obj.entry(key.to_owned()).or_insert(v);
}

/// The body as Consul 1.17+ answers it: see `agent/structs/config_entry.go`
/// (`ServiceConfigEntry`, `ProxyConfigEntry`: `Protocol` and `Config` without omitempty, the
/// struct fields `TransparentProxy`, `MeshGateway`, `Expose`, `AccessLogs`, `Hash`),
/// `config_entry_mesh.go` (`MeshDestinationsOnly` without omitempty) and
/// `config_entry_intentions.go` (`Sources`, `Precedence`, `Type` without omitempty);
/// a `time.Duration` is written as nanoseconds.
fn as_answer(body: &Value) -> Value {
    let mut v = body.clone();
    let obj = v.as_object_mut().unwrap();
    match obj["Kind"].as_str().unwrap() {
        "service-defaults" => {
            set_default(obj, "Protocol", json!(""));
            for k in ["TransparentProxy", "MeshGateway", "Expose"] {
                set_default(obj, k, json!({}));
            }
            if let Some(Value::Object(up)) = obj.get_mut("UpstreamConfig") {
                if let Some(Value::Object(d)) = up.get_mut("Defaults") {
                    set_default(d, "MeshGateway", json!({}));
                    if let Some(Value::Object(p)) = d.get_mut("PassiveHealthCheck") {
                        if let Some(Value::String(i)) = p.get("Interval") {
                            let ns = go_seconds(i) * 1_000_000_000;
                            p.insert("Interval".into(), json!(ns));
                        }
                    }
                }
            }
        }
        "proxy-defaults" => {
            set_default(obj, "Config", Value::Null);
            for k in ["TransparentProxy", "MeshGateway", "Expose", "AccessLogs"] {
                set_default(obj, k, json!({}));
            }
        }
        "mesh" => {
            set_default(obj, "TransparentProxy", json!({}));
            if let Some(Value::Object(tp)) = obj.get_mut("TransparentProxy") {
                set_default(tp, "MeshDestinationsOnly", json!(false));
            }
        }
        "service-intentions" => set_default(obj, "Sources", Value::Null),
        _ => {}
    }
    obj.insert("Hash".into(), json!(9_876_543_210u64));
    obj.insert("CreateIndex".into(), json!(3));
    obj.insert("ModifyIndex".into(), json!(5));
    obj.insert("FieldOfANewerConsul".into(), json!({"On": true}));
    v
}

fn maybe(
    key: &'static str,
    v: impl Strategy<Value = Value>,
) -> impl Strategy<Value = Option<(String, Value)>> {
    proptest::option::of(v.prop_map(move |v| (key.to_owned(), v)))
}

fn object(fields: Vec<Option<(String, Value)>>) -> Value {
    Value::Object(fields.into_iter().flatten().collect())
}

fn protocol() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(""),
        Just("http"),
        Just("HTTP"),
        Just("tcp"),
        Just("gRPC")
    ]
    .prop_map(Value::from)
}

fn service_defaults() -> impl Strategy<Value = Value> {
    let upstream = (
        maybe("Protocol", protocol()),
        maybe(
            "ConnectTimeoutMs",
            prop_oneof![Just(-5), Just(0), Just(500)].prop_map(Value::from),
        ),
        maybe(
            "Limits",
            prop_oneof![Just(0), Just(10)].prop_map(|n| json!({"MaxConnections": n})),
        ),
        maybe(
            "PassiveHealthCheck",
            (1u64..7200).prop_map(|s| json!({"Interval": format!("{s}s"), "MaxFailures": 0})),
        ),
    )
        .prop_map(|(a, b, c, d)| object(vec![a, b, c, d]));
    (
        "[a-z]{1,8}",
        maybe("Protocol", protocol()),
        maybe(
            "MutualTLSMode",
            prop_oneof![Just(""), Just("strict"), Just("permissive")].prop_map(Value::from),
        ),
        maybe(
            "TransparentProxy",
            (prop_oneof![Just(0), Just(15001)], any::<bool>())
                .prop_map(|(p, d)| json!({"OutboundListenerPort": p, "DialedDirectly": d})),
        ),
        maybe(
            "MeshGateway",
            prop_oneof![Just(""), Just("local")].prop_map(|m| json!({"Mode": m})),
        ),
        maybe(
            "LocalRequestTimeoutMs",
            prop_oneof![Just(0), Just(15000)].prop_map(Value::from),
        ),
        maybe(
            "UpstreamConfig",
            upstream.prop_map(|d| json!({"Defaults": d})),
        ),
    )
        .prop_map(|(name, a, b, c, d, e, f)| {
            let mut v = object(vec![a, b, c, d, e, f]);
            v["Kind"] = json!("service-defaults");
            v["Name"] = json!(name);
            v
        })
}

fn proxy_defaults() -> impl Strategy<Value = Value> {
    (
        maybe("Name", Just(json!("global"))),
        maybe("Config", protocol().prop_map(|p| json!({"protocol": p}))),
        maybe(
            "AccessLogs",
            any::<bool>().prop_map(|b| json!({"Enabled": b})),
        ),
        maybe("Expose", any::<bool>().prop_map(|b| json!({"Checks": b}))),
        maybe(
            "Mode",
            prop_oneof![Just(""), Just("transparent")].prop_map(Value::from),
        ),
    )
        .prop_map(|(a, b, c, d, e)| {
            let mut v = object(vec![a, b, c, d, e]);
            v["Kind"] = json!("proxy-defaults");
            v
        })
}

fn mesh() -> impl Strategy<Value = Value> {
    (
        maybe(
            "TransparentProxy",
            any::<bool>().prop_map(|b| json!({"MeshDestinationsOnly": b})),
        ),
        maybe(
            "AllowEnablingPermissiveMutualTLS",
            any::<bool>().prop_map(Value::from),
        ),
        maybe(
            "HTTP",
            any::<bool>().prop_map(|b| json!({"SanitizeXForwardedClientCert": b})),
        ),
    )
        .prop_map(|(a, b, c)| {
            let mut v = object(vec![a, b, c]);
            v["Kind"] = json!("mesh");
            v
        })
}

fn intentions() -> impl Strategy<Value = Value> {
    let source = (
        prop_oneof![Just("*".to_owned()), "[a-z]{1,5}"],
        prop_oneof![Just("allow"), Just("deny")],
        any::<bool>(),
        proptest::option::of(prop_oneof![Just(""), Just("why")]),
    )
        .prop_map(|(name, action, l7, description)| {
            let mut s = if l7 {
                json!({"Name": name, "Permissions": [{"Action": action,
                    "HTTP": {"PathPrefix": "/v1", "Methods": ["get", "POST"]}}]})
            } else {
                json!({"Name": name, "Action": action})
            };
            if let Some(d) = description {
                s["Description"] = json!(d);
            }
            s
        });
    (
        prop_oneof![Just("*".to_owned()), "[a-z]{1,6}"],
        proptest::collection::vec(source, 1..5),
    )
        .prop_map(|(name, sources)| {
            json!({"Kind": "service-intentions", "Name": name, "Sources": sources})
        })
}

fn entry() -> impl Strategy<Value = Value> {
    prop_oneof![service_defaults(), proxy_defaults(), mesh(), intentions()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_normal_form_is_a_fixed_point_and_survives_a_file_and_consuls_answer(body in entry()) {
        let once = normal(decode_file(&body.to_string()));
        let twice = normal(once.clone());
        prop_assert_eq!(twice.to_json(), once.to_json(), "normalizing twice");

        let stored = once.to_json();
        let from_file = normal(decode_file(&stored.to_string()));
        prop_assert_eq!(from_file.to_json(), stored.clone(), "written as a file");

        let answer = as_answer(&stored);
        let from_answer = normal(decode_answer(&answer.to_string()));
        prop_assert_eq!(from_answer.to_json(), stored, "as Consul answers it: {}", answer);
    }
}

#[test]
fn the_normal_form_follows_consuls_normalize() {
    // `ServiceConfigEntry.Normalize` and `UpstreamConfig.normalize`
    // (`agent/structs/config_entry.go`): protocols lower-cased, a negative timeout made 0.
    let e = normal(decode_file(
        r#"{"Kind": "service-defaults", "Name": "api", "Protocol": "HTTP",
            "UpstreamConfig": {"Defaults": {"Protocol": "GRPC", "ConnectTimeoutMs": -1},
            "Overrides": [{"Name": "db", "Protocol": "TCP"}]}}"#,
    ));
    assert_eq!(
        e.to_json(),
        json!({"Kind": "service-defaults", "Name": "api", "Protocol": "http",
            "UpstreamConfig": {"Overrides": [{"Name": "db", "Protocol": "tcp"}],
            "Defaults": {"Protocol": "grpc"}}})
    );
    // `ProxyConfigEntry.Normalize`: no Name is "global".
    let pd = normal(decode_file(r#"{"Kind": "proxy-defaults"}"#));
    assert_eq!(pd.name(), "global");
    // `ServiceIntentionsConfigEntry.normalize`: Type "consul", methods upper-cased, sources by
    // precedence (exact names before the wildcard).
    let i = normal(decode_file(
        r#"{"Kind": "service-intentions", "Name": "api", "Sources": [
            {"Name": "*", "Action": "deny"},
            {"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"Methods": ["get"]}}]}]}"#,
    ));
    let v = i.to_json();
    assert_eq!(v["Sources"][0]["Name"], "web");
    assert_eq!(v["Sources"][0]["Type"], "consul");
    assert_eq!(
        v["Sources"][0]["Permissions"][0]["HTTP"]["Methods"][0],
        "GET"
    );
    assert_eq!(v["Sources"][1]["Name"], "*");
}
