use super::*;

fn rules(text: &str) -> PolicyRules {
    parse_rules(text, FileId(0), 0).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

fn authz(texts: &[&str], default: DefaultAuthorizer) -> Authorizer {
    let parsed: Vec<PolicyRules> = texts.iter().map(|t| rules(t)).collect();
    Authorizer::from_policies(&parsed, default)
}

const PREFER_EXACT: &str = r#"
service "foo" { policy = "write" intentions = "write" }
service "football" { policy = "deny" }
service_prefix "foot" { policy = "read" intentions = "read" }
service_prefix "fo" { policy = "read" intentions = "read" }
key "foo" { policy = "write" }
key "football" { policy = "deny" }
key_prefix "foot" { policy = "read" }
key_prefix "fo" { policy = "read" }
node "foo" { policy = "write" }
node_prefix "fo" { policy = "read" }
"#;

#[test]
fn vectors_7c_prefer_exact_matches() {
    let a = authz(&[PREFER_EXACT], DefaultAuthorizer::DenyAll);
    assert!(a.service_read("fo"), "1");
    assert!(!a.service_write("for"), "2");
    assert!(a.service_write("foo"), "3");
    assert!(a.service_read("foot2"), "4");
    assert!(!a.service_read("football"), "5");
    assert!(a.intention_write("foo"), "6");
    assert!(!a.intention_write("food"), "7");
    assert!(!a.intention_read("football"), "8");
    assert!(a.key_read("foot2") && !a.key_read("football") && a.key_write("foo"));
    assert!(a.node_write("foo") && a.node_read("fox") && !a.node_write("fox"));
}

#[test]
fn vectors_7c_intentions_and_defaults() {
    let web = authz(
        &[r#"service "web" { policy = "write" }"#],
        DefaultAuthorizer::DenyAll,
    );
    assert!(
        !web.intention_write("web"),
        "9: service:write does not grant intentions:write"
    );
    assert!(web.intention_read("web"), "10");
    let db = authz(
        &[r#"service "db" { policy = "read" intentions = "write" }"#],
        DefaultAuthorizer::DenyAll,
    );
    assert!(db.intention_write("db"), "11");
    let all = r#"service_prefix "" { policy = "read" intentions = "write" }"#;
    assert!(
        authz(&[all], DefaultAuthorizer::DenyAll).intention_write("*"),
        "12"
    );
    let with_deny = authz(
        &[
            all,
            r#"service "db" { policy = "read" intentions = "deny" }"#,
        ],
        DefaultAuthorizer::DenyAll,
    );
    assert!(
        !with_deny.intention_write("*"),
        "13: allAllowed sees the deny"
    );
    let open = authz(&[], DefaultAuthorizer::AllowAll);
    assert!(
        open.service_write("x") && !open.acl_write(),
        "14: allow-all never grants acl"
    );
    let id = Authorizer::new(service_identity_rules("web"), DefaultAuthorizer::DenyAll);
    assert!(
        id.service_write("web-sidecar-proxy") && id.service_read("db") && id.node_read("n1"),
        "15"
    );
    assert!(!id.intention_write("web"), "15: no intentions:write");
    let op = authz(&[r#"operator = "read""#], DefaultAuthorizer::DenyAll);
    assert!(
        !op.mesh_write() && op.mesh_read(),
        "16: mesh falls back to operator"
    );
    let merged = authz(
        &[
            r#"service "x" { policy = "write" }"#,
            r#"service "x" { policy = "deny" }"#,
        ],
        DefaultAuthorizer::DenyAll,
    );
    assert!(!merged.service_read("x"), "17: deny wins the merge");
    assert!(
        parse_rules(r#"key "a" { policy = "list" }"#, FileId(0), 0).is_ok(),
        "18: list for keys"
    );
    let err = parse_rules(r#"service "s" { policy = "list" }"#, FileId(0), 0).unwrap_err();
    assert!(
        err[0].message.starts_with("Invalid service"),
        "18: {}",
        err[0].message
    );
    assert!(Authorizer::management().acl_write());
}

#[test]
fn merging_is_order_independent() {
    let a = r#"service_prefix "" { policy = "read" }"#;
    let b = r#"service "web" { policy = "write" }"#;
    let c = r#"service "web" { policy = "deny" }"#;
    let one = authz(&[a, b, c], DefaultAuthorizer::DenyAll);
    let two = authz(&[c, a, b], DefaultAuthorizer::DenyAll);
    assert_eq!(one.rules(), two.rules());
}

#[test]
fn rule_errors_point_inside_the_text() {
    let text = "service \"web\" {\n  policy = \"write\"\n}\nnode_prefix \"\" {\n  policy = \"sideways\"\n}\n";
    let err = parse_rules(text, FileId(3), 100).unwrap_err();
    let s = err[0].span.unwrap();
    assert_eq!(s.file, FileId(3));
    assert_eq!(
        &text[(s.start - 100) as usize..(s.end - 100) as usize],
        "\"sideways\""
    );
    assert_eq!(err[0].code, Code::AclRule);
    let err = parse_rules("service \"web\" {\n  policy = \"write\"\n", FileId(0), 0).unwrap_err();
    assert_eq!(err[0].code, Code::AclRulesSyntax);
    assert!(parse_rules("services \"web\" { policy = \"read\" }", FileId(0), 0).is_ok());
    let err =
        parse_rules_strict("services \"web\" { policy = \"read\" }", FileId(0), 0).unwrap_err();
    assert!(err[0].message.contains("services"));
}

#[test]
fn what_consul_ignores_a_repository_refuses() {
    for text in [
        "namespace \"team\" { service_prefix \"\" { policy = \"write\" } }",
        "node \"n\" { policy = \"read\" intentions = \"write\" }",
        "key \"k\" { policy = \"read\" color = \"blue\" }",
    ] {
        assert!(parse_rules(text, FileId(0), 0).is_ok(), "{text}");
        let err = parse_rules_strict(text, FileId(0), 0).unwrap_err();
        assert_eq!(err[0].code, Code::AclRule, "{text}");
    }
    // Keys in any case, levels in lower case only.
    assert!(parse_rules("SERVICE \"web\" { Policy = \"read\" }", FileId(0), 0).is_ok());
    assert!(parse_rules("service \"web\" { policy = \"Read\" }", FileId(0), 0).is_err());
}

#[test]
fn intentions_are_derived_after_merging() {
    let a = authz(
        &[
            r#"service "web" { policy = "deny" }"#,
            r#"service "web" { policy = "read" intentions = "write" }"#,
        ],
        DefaultAuthorizer::DenyAll,
    );
    assert!(!a.service_read("web") && a.intention_write("web"));
    let b = authz(
        &[r#"service "web" { policy = "deny" }"#],
        DefaultAuthorizer::DenyAll,
    );
    assert_eq!(b.decide_intention_read("web"), Decision::Deny);
}

#[test]
fn wildcard_intentions_leave_the_rest_to_the_default() {
    let one = [r#"service "foo" { policy = "write" intentions = "write" }"#];
    assert!(authz(&one, DefaultAuthorizer::AllowAll).intention_write("*"));
    assert!(!authz(&one, DefaultAuthorizer::DenyAll).intention_write("*"));
    let exact = authz(
        &[r#"key "app/" { policy = "write" }"#],
        DefaultAuthorizer::DenyAll,
    );
    assert_eq!(exact.decide_key_write_prefix("app/"), Decision::Default);
}

#[test]
fn json_rules_parse_too() {
    let a = Authorizer::new(
        rules(
            r#"{"service": {"web": {"policy": "write"}}, "key_prefix": {"app/": {"policy": "read"}}, "operator": "read"}"#,
        ),
        DefaultAuthorizer::DenyAll,
    );
    assert!(
        a.service_write("web") && a.key_read("app/x") && a.operator_read() && !a.operator_write()
    );
}

#[test]
fn names() {
    assert!(validate_policy_name("web-policy_1").is_none());
    assert!(validate_policy_name("team/web").is_none());
    assert!(validate_policy_name("web policy!").is_some());
    assert!(validate_policy_name("builtin/x").is_some());
    assert!(validate_role_name("ops").is_none());
    assert!(validate_service_identity_name("web").is_none());
    assert!(validate_service_identity_name("Web_Frontend").is_some());
    assert!(validate_service_identity_name("-web").is_some());
    assert!(validate_node_identity("node-1", "dc1").is_none());
    assert!(validate_node_identity("node-1", "").is_some());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn brute(r: &PolicyRules, res: Resource, name: &str) -> Option<AccessLevel> {
        if let Some(l) = r.exact.get(&(res, name.to_owned())) {
            return Some(*l);
        }
        r.prefix
            .iter()
            .filter(|((rr, p), _)| *rr == res && name.starts_with(p.as_str()))
            .max_by_key(|((_, p), _)| p.len())
            .map(|(_, l)| *l)
    }

    proptest! {
        #[test]
        fn lookup_equals_a_scan(rs in prop::collection::vec(("[ab]{0,3}", any::<bool>(), 0u8..4), 0..12), name in "[ab]{0,4}") {
            let mut r = PolicyRules::default();
            for (seg, prefix, l) in &rs {
                let level = [AccessLevel::Read, AccessLevel::List, AccessLevel::Write, AccessLevel::Deny][*l as usize];
                if *prefix { r.add_prefix(Resource::Key, seg, level) } else { r.add_exact(Resource::Key, seg, level) }
            }
            let a = Authorizer::new(r.clone(), DefaultAuthorizer::DenyAll);
            prop_assert_eq!(a.lookup(Resource::Key, &name), brute(&r, Resource::Key, &name));
        }
    }
}
