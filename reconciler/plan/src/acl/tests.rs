use super::*;
use crate::{plan_all, PlanInput, PlanOptions};
use mesh_model::{AclLink, AclPolicy, AclRole, AclToken};

/// An answer as the client hands it over, typed by `mesh_wire`.
fn answer(kind: AclKind, v: &Value) -> AclObject {
    match kind {
        AclKind::Policy => AclObject::policy(v),
        AclKind::Role => AclObject::role(v),
        AclKind::Token => AclObject::token(v),
    }
    .unwrap()
}

fn ca_answer(v: Value) -> wire::CaConfiguration {
    wire::decode(&v).unwrap()
}

fn link(n: &str) -> AclLink {
    AclLink {
        name: n.into(),
        span: Default::default(),
    }
}

fn policy(name: &str, rules: &str) -> DesiredAcl {
    DesiredAcl::policy(&AclPolicy {
        name: name.into(),
        description: String::new(),
        rules: rules.into(),
        datacenters: Vec::new(),
        span: Default::default(),
        rules_span: Default::default(),
    })
}

fn role(name: &str, policies: &[&str]) -> DesiredAcl {
    DesiredAcl::role(&AclRole {
        name: name.into(),
        description: String::new(),
        policies: policies.iter().map(|p| link(p)).collect(),
        service_identities: Vec::new(),
        node_identities: Vec::new(),
        span: Default::default(),
    })
}

fn token(name: &str, policies: &[&str], roles: &[&str]) -> DesiredAcl {
    DesiredAcl::token(&AclToken {
        name: name.into(),
        description: String::new(),
        policies: policies.iter().map(|p| link(p)).collect(),
        roles: roles.iter().map(|p| link(p)).collect(),
        service_identities: Vec::new(),
        node_identities: Vec::new(),
        local: false,
        secret_id_from: None,
        span: Default::default(),
    })
}

/// What Consul would hold after the desired objects were created, with the inventory that
/// records them.
fn applied(desired: &[DesiredAcl]) -> (Vec<ObservedAcl>, Inventory) {
    let mut inv = Inventory::default();
    let observed = desired
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let id = format!("id-{i}");
            let index = 10 + i as u64;
            inv.objects.insert(
                Inventory::key(d.kind.as_str(), &d.name),
                Record {
                    id: id.clone(),
                    modify_index: index,
                    body: Some(d.body.clone()),
                },
            );
            // What Consul answers: IDs and indexes beside the body, links as {ID, Name}.
            let mut v = d.request.clone();
            v[d.kind.id_field()] = id.clone().into();
            v["ModifyIndex"] = index.into();
            v["CreateIndex"] = index.into();
            for k in ["Policies", "Roles"] {
                if let Some(a) = v.get_mut(k).and_then(Value::as_array_mut) {
                    for l in a {
                        l["ID"] = "some-id".into();
                    }
                }
            }
            ObservedAcl::from_api(&answer(d.kind, &v)).unwrap()
        })
        .collect();
    (observed, inv)
}

fn run(
    desired: &[DesiredAcl],
    observed: &[ObservedAcl],
    inv: &Inventory,
    adopt: bool,
) -> crate::Plan {
    let input = PlanInput {
        entries: &[],
        observed_entries: &[],
        declared: &[],
        default_allow: false,
        acl: desired,
        observed_acl: observed,
        inventory: inv,
        ca: None,
        observed_ca: None,
    };
    plan_all(
        &input,
        &PlanOptions {
            owner: "team".into(),
            adopt,
            allow_empty: false,
            ..PlanOptions::default()
        },
    )
    .unwrap()
}

fn order(p: &crate::Plan) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| format!("{} {} {}", s.action.sign(), s.kind, s.name))
        .collect()
}

#[test]
fn creates_follow_links_and_a_second_plan_is_empty() {
    // Listed in an order that would break Consul's link resolution if written as is.
    let desired = vec![
        token("web", &[], &["ops"]),
        role("ops", &["read"]),
        policy("read", "node_prefix \"\" { policy = \"read\" }"),
    ];
    let p = run(&desired, &[], &Inventory::default(), false);
    assert_eq!(
        order(&p),
        ["+ acl-policy read", "+ acl-role ops", "+ acl-token web"]
    );
    let (observed, inv) = applied(&desired);
    assert!(run(&desired, &observed, &inv, false).steps.is_empty());
}

#[test]
fn deletions_run_in_reverse_and_only_for_owned_objects() {
    let old = vec![
        policy("read", "x"),
        role("ops", &["read"]),
        token("web", &["read"], &["ops"]),
        policy("kept", "z"),
    ];
    let (mut observed, inv) = applied(&old);
    // A policy nobody recorded: never deleted.
    observed.push(ObservedAcl {
        kind: AclKind::Policy,
        id: "theirs".into(),
        name: "hand-made".into(),
        body: Some(json!({})),
        modify_index: 3,
    });
    let keep = vec![policy("other", "y"), policy("kept", "z")];
    let p = run(&keep, &observed, &inv, false);
    assert_eq!(
        order(&p),
        [
            "+ acl-policy other",
            "- acl-token web",
            "- acl-role ops",
            "- acl-policy read"
        ]
    );
    assert!(p.steps.iter().all(|s| s.name != "hand-made"));
}

#[test]
fn removing_everything_owned_needs_consent() {
    let old = vec![policy("read", "x")];
    let (observed, inv) = applied(&old);
    let input = PlanInput {
        entries: &[],
        observed_entries: &[],
        declared: &[],
        default_allow: false,
        acl: &[],
        observed_acl: &observed,
        inventory: &inv,
        ca: None,
        observed_ca: None,
    };
    let mut opts = PlanOptions {
        owner: "team".into(),
        adopt: false,
        allow_empty: false,
        ..PlanOptions::default()
    };
    assert_eq!(
        plan_all(&input, &opts),
        Err(crate::PlanError::WouldDeleteEverything(1))
    );
    opts.allow_empty = true;
    assert_eq!(plan_all(&input, &opts).unwrap().steps.len(), 1);
}

#[test]
fn a_plan_deleting_more_than_max_deletes_is_refused() {
    let old = vec![
        policy("read", "x"),
        policy("write", "y"),
        policy("keep", "z"),
    ];
    let (observed, inv) = applied(&old);
    let keep = vec![policy("keep", "z")];
    let input = PlanInput {
        entries: &[],
        observed_entries: &[],
        declared: &[],
        default_allow: false,
        acl: &keep,
        observed_acl: &observed,
        inventory: &inv,
        ca: None,
        observed_ca: None,
    };
    let opts = |max| PlanOptions {
        owner: "team".into(),
        max_deletes: Some(max),
        ..PlanOptions::default()
    };
    assert_eq!(
        plan_all(&input, &opts(1)),
        Err(crate::PlanError::TooManyDeletes { deletes: 2, max: 1 })
    );
    assert_eq!(plan_all(&input, &opts(2)).unwrap().steps.len(), 2);
}

#[test]
fn unowned_objects_are_refused_or_adopted_when_identical() {
    let desired = vec![policy("read", "x")];
    let (observed, _) = applied(&desired);
    let p = run(&desired, &observed, &Inventory::default(), false);
    assert!(p.steps.is_empty());
    assert!(p.refused[0].reason.contains("pass --adopt"));
    let p = run(&desired, &observed, &Inventory::default(), true);
    assert_eq!(order(&p), ["= acl-policy read"]);
    let changed = vec![policy("read", "y")];
    let p = run(&changed, &observed, &Inventory::default(), true);
    assert!(
        p.steps.is_empty(),
        "a different unowned object is never adopted"
    );
    assert!(p.refused[0].reason.contains("differs"));
}

#[test]
fn a_claim_left_by_a_killed_apply_is_resolved_by_name_or_recreated() {
    let desired = vec![policy("read", "x")];
    let mut claim = Inventory::default();
    claim
        .objects
        .insert("acl-policy/read".into(), Record::default());
    // The create did not happen: create it.
    assert_eq!(
        order(&run(&desired, &[], &claim, false)),
        ["+ acl-policy read"]
    );
    // The create happened: the object is ours and only the record is completed.
    let (observed, _) = applied(&desired);
    let p = run(&desired, &observed, &claim, false);
    assert_eq!(order(&p), ["= acl-policy read"]);
    assert_eq!(p.steps[0].id.as_deref(), Some("id-0"));
}

#[test]
fn drift_is_an_update_with_the_observed_index_and_links_compare_by_name() {
    let desired = vec![policy("read", "x"), role("ops", &["read"])];
    let (mut observed, inv) = applied(&desired);
    // Consul lists links with IDs and in its own order: no diff.
    assert!(run(&desired, &observed, &inv, false).steps.is_empty());
    observed[0].body =
        Some(json!({"Name": "read", "Description": "", "Rules": "edited", "Datacenters": []}));
    observed[0].modify_index = 99;
    let p = run(&desired, &observed, &inv, false);
    assert_eq!(order(&p), ["~ acl-policy read"]);
    assert_eq!(p.steps[0].cas, 99);
}

#[test]
fn a_policy_listed_without_rules_is_trusted_only_at_the_recorded_index() {
    let desired = vec![policy("read", "x")];
    let (mut observed, inv) = applied(&desired);
    observed[0].body = None;
    assert!(needing_details(&desired, &observed, &inv).is_empty());
    assert!(run(&desired, &observed, &inv, false).steps.is_empty());
    observed[0].modify_index += 1;
    assert_eq!(needing_details(&desired, &observed, &inv).len(), 1);
}

fn ca(config: Value) -> CaConfig {
    CaConfig {
        provider: "consul".into(),
        config: config.as_object().cloned().unwrap_or_default(),
        force_without_cross_signing: false,
        token_from: None,
        span: Default::default(),
    }
}

#[test]
fn ca_changes_ignore_consul_defaults_and_flag_root_rotations_last() {
    let observed = ObservedCa::from_api(&ca_answer(json!({
        "Provider": "consul",
        "Config": {"LeafCertTTL": "72h", "IntermediateCertTTL": "8760h", "RotationPeriod": "2160h", "PrivateKeyType": "ec", "PrivateKeyBits": 256},
        "ModifyIndex": 7
    })))
    .unwrap();
    // The repository spells out a default: no change.
    assert!(plan_ca(Some(&ca(json!({"LeafCertTTL": "72h"}))), Some(&observed)).is_none());
    let ttl = plan_ca(Some(&ca(json!({"LeafCertTTL": "24h"}))), Some(&observed)).unwrap();
    assert!(!ttl.root_rotation);
    assert_eq!(ttl.cas, 7);
    let rsa = plan_ca(
        Some(&ca(
            json!({"PrivateKeyType": "rsa", "PrivateKeyBits": 2048}),
        )),
        Some(&observed),
    )
    .unwrap();
    assert!(rsa.root_rotation && rsa.reason.contains("ROOT ROTATION"));
    // Last in the whole plan, after ACL objects.
    let input = PlanInput {
        entries: &[],
        observed_entries: &[],
        declared: &[],
        default_allow: false,
        acl: &[policy("read", "x")],
        observed_acl: &[],
        inventory: &Inventory::default(),
        ca: Some(&ca(
            json!({"PrivateKeyType": "rsa", "PrivateKeyBits": 2048}),
        )),
        observed_ca: Some(&observed),
    };
    let opts = PlanOptions {
        owner: "team".into(),
        adopt: false,
        allow_empty: false,
        ..PlanOptions::default()
    };
    let p = plan_all(&input, &opts).unwrap();
    assert_eq!(order(&p), ["+ acl-policy read", "~ ca-config connect"]);
}

#[test]
fn secrets_never_enter_a_plan() {
    let mut t = AclToken {
        name: "web".into(),
        description: String::new(),
        policies: vec![link("read")],
        roles: Vec::new(),
        service_identities: Vec::new(),
        node_identities: Vec::new(),
        local: false,
        secret_id_from: Some(mesh_model::SecretSource::Env("WEB_TOKEN".into())),
        span: Default::default(),
    };
    let d = DesiredAcl::token(&t);
    let p = run(std::slice::from_ref(&d), &[], &Inventory::default(), false);
    let text = serde_json::to_string(&p).unwrap();
    assert!(!text.contains("SecretID\":"), "{text}");
    assert!(p.steps[0].reason.contains("SecretID from env:WEB_TOKEN"));
    // An observed token answer with a SecretID: the normal form drops it.
    t.secret_id_from = None;
    let answered = answer(
        AclKind::Token,
        &json!({"AccessorID": "a", "SecretID": "s3cr3t", "Description": "x", "ModifyIndex": 1}),
    );
    assert!(!format!("{answered:?}").contains("s3cr3t"));
    let o = ObservedAcl::from_api(&answered).unwrap();
    assert!(!format!("{o:?}").contains("s3cr3t"));
    // Nor is it ever printed by a plan that updates that token.
    let mut inv = Inventory::default();
    inv.objects.insert(
        Inventory::key("acl-token", "web"),
        Record {
            id: "a".into(),
            modify_index: 0,
            body: None,
        },
    );
    let p = run(
        std::slice::from_ref(&d),
        std::slice::from_ref(&o),
        &inv,
        false,
    );
    assert_eq!(order(&p), ["~ acl-token web"]);
    let text = serde_json::to_string(&p).unwrap();
    assert!(!text.contains("s3cr3t"), "{text}");
}

#[test]
fn a_ca_setting_outside_the_derived_ones_is_compared_by_value() {
    let observed = ObservedCa::from_api(&ca_answer(json!({
        "Provider": "consul",
        "Config": {"LeafCertTTL": "72h", "RotationPeriod": "2160h"},
        "ModifyIndex": 3
    })))
    .unwrap();
    assert!(plan_ca(
        Some(&ca(json!({"RotationPeriod": "2160h"}))),
        Some(&observed)
    )
    .is_none());
    let step = plan_ca(
        Some(&ca(json!({"RotationPeriod": "720h"}))),
        Some(&observed),
    )
    .unwrap();
    assert!(!step.root_rotation);
    assert_eq!(step.after.unwrap()["Config"]["RotationPeriod"], "720h");
}
