use super::*;
use proptest::prelude::*;
use serde_json::json;

fn names() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z][a-z0-9-]{0,8}"]
}

fn token() -> impl Strategy<Value = AclToken> {
    (
        names(),
        proptest::collection::vec(names(), 0..3),
        proptest::collection::vec((names(), proptest::collection::vec(names(), 0..2)), 0..3),
        proptest::collection::vec((names(), names()), 0..2),
        any::<bool>(),
    )
        .prop_map(|(description, links, sids, nids, local)| AclToken {
            accessor_id: "6a1253d2-1785-24fd-91c2-f8e78c745511".into(),
            description,
            policies: links
                .iter()
                .map(|n| AclLink {
                    name: n.clone(),
                    ..AclLink::default()
                })
                .collect(),
            roles: Vec::new(),
            service_identities: sids
                .into_iter()
                .map(|(service_name, datacenters)| ServiceIdentity {
                    service_name,
                    datacenters,
                    ..ServiceIdentity::default()
                })
                .collect(),
            node_identities: nids
                .into_iter()
                .map(|(node_name, datacenter)| NodeIdentity {
                    node_name,
                    datacenter,
                    ..NodeIdentity::default()
                })
                .collect(),
            local,
            ..AclToken::default()
        })
}

/// How Consul answers an object: the request body plus `Hash`, indexes, a create time, a
/// field from a newer Consul, a secret, and every zero value written out (`null` lists too).
fn as_consul_answers(body: Value, nulls: bool) -> Value {
    let mut v = body;
    let m = v.as_object_mut().unwrap();
    m.insert(
        "Hash".into(),
        json!("UuiRkOQPRZ3Y4t6bd4jBAJy1ZUvXVo4qoU8tJNhKeJk="),
    );
    m.insert("CreateIndex".into(), json!(12));
    m.insert("ModifyIndex".into(), json!(34));
    m.insert("CreateTime".into(), json!("2026-12-01T04:00:00Z"));
    m.insert(
        "TemplatedPolicies".into(),
        json!([{ "TemplateName": "builtin/dns" }]),
    );
    m.insert(
        "SecretID".into(),
        json!("45a3bd52-07c7-47a4-52fd-0745e0cfe967"),
    );
    for k in [
        "Policies",
        "Roles",
        "ServiceIdentities",
        "NodeIdentities",
        "Datacenters",
    ] {
        let empty = if nulls { Value::Null } else { json!([]) };
        m.entry(k).or_insert(empty);
    }
    m.entry("Description").or_insert(json!(""));
    m.entry("Local").or_insert(json!(false));
    v
}

proptest! {
    #[test]
    fn a_token_as_consul_answers_it_decodes_equal_to_itself(t in token(), nulls in any::<bool>()) {
        let answer = as_consul_answers(request(&t), nulls);
        let back: AclToken = decode(&answer).unwrap();
        prop_assert_eq!(&back, &t);
        prop_assert_eq!(back.server.modify_index, 34);
        prop_assert!(back.unknown.0.contains_key("TemplatedPolicies"));
        let shown = format!("{:?}", back);
        prop_assert!(!shown.contains("45a3bd52"));
        // The request body never carries what the server manages or what we do not know.
        prop_assert_eq!(request(&back), request(&t));
    }

    #[test]
    fn a_policy_as_consul_answers_it_decodes_equal_to_itself(
        name in "[a-z]{1,8}", rules in names(), dcs in proptest::collection::vec(names(), 0..3),
        nulls in any::<bool>(),
    ) {
        let p = AclPolicy { name, rules, datacenters: dcs, ..AclPolicy::default() };
        let answer = as_consul_answers(request(&p), nulls);
        let back: AclPolicy = decode(&answer).unwrap();
        prop_assert_eq!(&back, &p);
        prop_assert_eq!(back.server.create_index, 12);
    }
}

#[test]
fn a_secret_in_an_answer_does_not_survive_decoding() {
    let answer = json!({
        "AccessorID": "a", "SecretID": "s3cr3t", "Description": "d",
        "Policies": [{ "ID": "p", "Name": "web", "SecretID": "s3cr3t" }],
        "Newer": { "Token": "s3cr3t", "Keep": 1 },
    });
    let t: AclToken = decode(&answer).unwrap();
    let shown = format!("{t:?} {}", request(&t));
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert_eq!(t.unknown.0["Newer"], json!({ "Keep": 1 }));

    let ca: CaConfiguration = decode(&json!({
        "Provider": "vault",
        "Config": { "Address": "https://vault", "Token": "s3cr3t", "privatekey": "s3cr3t" },
        "State": { "k": "v" }, "ForceWithoutCrossSigning": null, "ModifyIndex": 9,
    }))
    .unwrap();
    assert!(!format!("{ca:?}").contains("s3cr3t"));
    assert_eq!(ca.config.len(), 1);
    assert_eq!(ca.server.modify_index, 9);
    // State is read-only: never sent back.
    assert_eq!(
        request(&ca),
        json!({ "Provider": "vault", "Config": { "Address": "https://vault" }, "ForceWithoutCrossSigning": false })
    );
}

#[test]
fn a_renamed_field_is_not_silently_equal() {
    let good: AclRole = decode(&json!({ "Name": "r", "Description": "x" })).unwrap();
    let renamed: AclRole = decode(&json!({ "Name": "r", "Descr": "x" })).unwrap();
    assert_ne!(good, renamed);
    assert!(renamed.unknown.0.contains_key("Descr"));
    let err =
        decode_strict::<AclToken>(&json!({ "AccessorID": "a", "Policies": [{ "Nam": "x" }] }))
            .unwrap_err();
    assert!(err.0.contains("Policies/0/Nam"), "{err}");
    assert!(decode_strict::<AclToken>(&json!({ "AccessorID": "a", "SecretID": "s" })).is_ok());
}

#[test]
fn a_policy_list_element_is_a_stub_until_it_carries_rules() {
    let stub = AclObject::policy(&json!({ "ID": "1", "Name": "p", "ModifyIndex": 3 })).unwrap();
    assert!(matches!(stub, AclObject::PolicyStub(_)));
    assert_eq!((stub.id(), stub.name(), stub.modify_index()), ("1", "p", 3));
    let whole = AclObject::policy(&json!({ "ID": "1", "Name": "p", "Rules": "" })).unwrap();
    assert!(matches!(whole, AclObject::Policy(_)));
}

#[test]
fn auth_methods_and_binding_rules_decode() {
    let m: AclAuthMethod = decode(&json!({
        "Name": "k8s", "Type": "kubernetes", "MaxTokenTTL": 3_600_000_000_000i64,
        "Config": { "Host": "h", "ServiceAccountJWT": "jwt" },
    }))
    .unwrap();
    assert_eq!(m.max_token_ttl, Some(GoDuration::Nanos(3_600_000_000_000)));
    let r: AclBindingRule = decode(&json!({
        "ID": "b", "AuthMethod": "k8s", "BindType": "service", "BindName": "${serviceaccount.name}",
        "Selector": "", "CreateIndex": 1, "ModifyIndex": 2,
    }))
    .unwrap();
    assert_eq!(r.bind_type, "service");
}
