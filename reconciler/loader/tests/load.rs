//! Loading repositories from in-memory files: formats, decoding rules, cross-file checks.

use mesh_diagnostics::Code;
use mesh_loader::{load_files, FileFormat, LoadOptions, Loaded, RepoFile};
use mesh_model::{ConfigEntry, DefaultPolicy, IntentionAction, ServiceOrigin};

fn load(files: &[(&str, &str)]) -> Loaded {
    let files = files
        .iter()
        .map(|(p, t)| RepoFile {
            path: (*p).to_owned(),
            contents: t.as_bytes().to_vec(),
        })
        .collect();
    load_files(files, &LoadOptions::default())
}

fn codes(l: &Loaded) -> Vec<&'static str> {
    l.diagnostics.iter().map(|d| d.code.as_str()).collect()
}

fn location(l: &Loaded, code: Code) -> (String, u32, u32) {
    let d = l
        .diagnostics
        .iter()
        .find(|d| d.code == code)
        .unwrap_or_else(|| panic!("no {code} in {:?}", codes(l)));
    let loc = l.sources.location(d.span.expect("a span"));
    (loc.file, loc.line, loc.column)
}

#[test]
fn hcl1_objects_without_separators_and_blocks_inside_list_items_decode() {
    let l = load(&[
        (
            "i.hcl",
            "Kind = \"service-intentions\"\nName = \"api\"\nSources = [{ Name = \"web\"  Permissions = [{ Action = \"allow\"  HTTP { PathPrefix = \"/admin\" } }] }]\n",
        ),
        ("d.hcl", "Kind = \"service-defaults\"\nName = \"api\"\nProtocol = \"HTTP\"\n"),
    ]);
    let entries = &l.state.config_entries;
    let ConfigEntry::ServiceIntentions(i) = entries
        .iter()
        .find(|e| e.name() == "api" && matches!(e, ConfigEntry::ServiceIntentions(_)))
        .unwrap()
    else {
        unreachable!()
    };
    let perm = &i.sources[0].permissions[0];
    assert_eq!(perm.action, IntentionAction::Allow);
    assert_eq!(
        perm.http.as_ref().unwrap().path_prefix.as_deref(),
        Some("/admin")
    );
    // Protocol is lower-cased as Consul does on write.
    let ConfigEntry::ServiceDefaults(sd) = entries
        .iter()
        .find(|e| matches!(e, ConfigEntry::ServiceDefaults(_)))
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(sd.protocol.as_deref(), Some("http"));
    assert!(!l.has_errors(), "{:?}", codes(&l));
}

#[test]
fn snake_case_works_only_for_declared_aliases() {
    let l = load(&[(
        "d.hcl",
        "Kind = \"service-defaults\"\nName = \"web\"\ntransparent_proxy { dialed_directly = true }\nexternal_sni = \"web.example\"\nlocal_connect_timeout_ms = 500\n",
    )]);
    assert!(!l.has_errors(), "{:?}", codes(&l));
    let json = l.state.config_entries[0].to_json();
    assert_eq!(json["TransparentProxy"]["DialedDirectly"], true);
    assert_eq!(json["ExternalSNI"], "web.example");
    assert_eq!(json["LocalConnectTimeoutMs"], 500);

    // `max_connections` is an alias of Limits.MaxConnections, but `source_name` is no field.
    let l = load(&[(
        "i.hcl",
        "Kind = \"service-intentions\"\nName = \"db\"\nSources = [{ source_name = \"web\", Action = \"allow\" }]\n",
    )]);
    assert_eq!(location(&l, Code::UnknownKey), ("i.hcl".into(), 3, 14));
}

#[test]
fn weak_typing_converts_numeric_strings_like_consul() {
    let l = load(&[(
        "d.json",
        r#"{"Kind": "service-defaults", "Name": "web", "MaxInboundConnections": "100", "Meta": {"tier": 1}}"#,
    )]);
    assert!(!l.has_errors(), "{:?}", codes(&l));
    let json = l.state.config_entries[0].to_json();
    assert_eq!(json["MaxInboundConnections"], 100);
    assert_eq!(json["Meta"]["tier"], "1");
}

#[test]
fn meshignore_excludes_paths_with_gitignore_syntax() {
    let l = load(&[
        (".meshignore", "drafts/\n*.tmp.hcl\n"),
        ("drafts/broken.hcl", "this is { not hcl"),
        ("scratch.tmp.hcl", "also { broken"),
        ("d.hcl", "Kind = \"service-defaults\"\nName = \"web\"\n"),
    ]);
    assert!(!l.has_errors(), "{:?}", codes(&l));
    assert_eq!(l.files.len(), 1);
}

#[test]
fn files_without_a_config_extension_are_not_read_and_unknown_config_files_are_reported() {
    let l = load(&[
        ("README.md", "# anything { goes"),
        ("notes.txt", "Kind = nothing"),
        ("misc/values.yaml", "replicas: 3\n"),
    ]);
    assert_eq!(codes(&l), ["E0105"]);
    assert_eq!(location(&l, Code::UnrecognizedFile).0, "misc/values.yaml");
}

#[test]
fn settings_own_kinds_and_services_are_recognised_by_content() {
    let l = load(&[
        (
            "mesh-gitops.hcl",
            "datacenter = \"east\"\nowner = \"platform\"\nacl {\n  enabled = true\n  default_policy = \"deny\"\n}\nguardrails = [\"production\"]\n",
        ),
        (
            "acl/web.hcl",
            "Kind = \"acl-policy\"\nName = \"web\"\nRules = <<EOF\nservice \"web\" { policy = \"write\" }\nEOF\n",
        ),
        (
            "acl/web-token.yaml",
            "kind: acl-token\nname: web\npolicies:\n  - name: web\nsecret_id_from: env:WEB_TOKEN\n",
        ),
        (
            "services/web.hcl",
            "service {\n  name = \"web\"\n  port = 8080\n  connect {\n    sidecar_service {\n      proxy {\n        upstreams = [{ destination_name = \"api\", local_bind_port = 9191 }]\n      }\n    }\n  }\n}\n",
        ),
        (
            "services/api.json",
            r#"{"service": {"Name": "api", "Port": 9090, "Connect": {"SidecarService": {}}}}"#,
        ),
    ]);
    assert!(!l.has_errors(), "{:?}", codes(&l));
    let s = &l.state;
    assert_eq!(s.settings.datacenter, "east");
    assert_eq!(s.settings.owner, "platform");
    assert!(s.settings.acl.enabled);
    assert_eq!(s.settings.acl.default_policy, DefaultPolicy::Deny);
    assert_eq!(s.acl.policies[0].name, "web");
    assert_eq!(s.acl.tokens[0].policies[0].name, "web");
    assert_eq!(
        s.acl.tokens[0].secret_id_from,
        Some(mesh_model::SecretSource::Env("WEB_TOKEN".into()))
    );
    let web = s.service("web").unwrap();
    assert!(web.sidecar);
    assert_eq!(web.upstreams[0].destination_name, "api");
    assert_eq!(web.upstreams[0].local_bind_port, 9191);
    assert_eq!(web.origin, ServiceOrigin::ServiceDefinition);
    assert!(s.service("api").unwrap().sidecar);
    let formats: Vec<FileFormat> = l.files.iter().map(|f| f.format).collect();
    assert!(formats.contains(&FileFormat::Settings));
    assert!(formats.contains(&FileFormat::MeshGitopsKind));
    assert!(formats.contains(&FileFormat::ServiceDefinition));
}

#[test]
fn a_bad_acl_rule_is_reported_at_its_line_inside_the_heredoc() {
    let l = load(&[(
        "acl/web.hcl",
        "Kind = \"acl-policy\"\nName = \"web\"\nRules = <<EOF\nservice \"web\" {\n  policy = \"write\"\n}\nkey_prefix \"app/\" {\n  policy = \"sideways\"\n}\nEOF\n",
    )]);
    let (file, line, _) = location(&l, Code::AclRule);
    assert_eq!((file.as_str(), line), ("acl/web.hcl", 8));
}

#[test]
fn literal_secrets_are_errors_and_never_reach_the_model() {
    let l = load(&[
        (
            "t.hcl",
            "Kind = \"acl-token\"\nName = \"web\"\nSecretID = \"00000000-1111-2222-3333-444444444444\"\n",
        ),
        (
            "ca.hcl",
            "Kind = \"ca-config\"\nProvider = \"vault\"\nConfig {\n  Address = \"https://vault:8200\"\n  Token = \"hvs.secret\"\n  RootPKIPath = \"root\"\n  IntermediatePKIPath = \"int\"\n}\n",
        ),
    ]);
    let secrets: Vec<_> = l
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::LiteralSecret)
        .collect();
    assert_eq!(secrets.len(), 2, "{:?}", codes(&l));
    let model = format!("{:?}", l.state);
    assert!(!model.contains("hvs.secret"));
    assert!(!model.contains("00000000-1111-2222-3333-444444444444"));
}

#[test]
fn duplicates_across_formats_and_missing_references_are_reported() {
    let l = load(&[
        ("a.hcl", "Kind = \"service-defaults\"\nName = \"web\"\nProtocol = \"http\"\n"),
        (
            "k8s.yaml",
            "apiVersion: consul.hashicorp.com/v1alpha1\nkind: ServiceDefaults\nmetadata:\n  name: web\nspec:\n  protocol: http\n",
        ),
        ("r.hcl", "Kind = \"acl-role\"\nName = \"ops\"\nPolicies = [{ Name = \"missing\" }]\n"),
    ]);
    assert!(codes(&l).contains(&"E0901"));
    assert_eq!(
        location(&l, Code::AclMissingReference),
        ("r.hcl".into(), 3, 13)
    );
}

#[test]
fn yaml_files_hold_several_kubernetes_documents() {
    let l = load(&[(
        "mesh.yaml",
        "apiVersion: consul.hashicorp.com/v1alpha1\nkind: ProxyDefaults\nmetadata:\n  name: global\nspec:\n  config:\n    protocol: http\n---\napiVersion: consul.hashicorp.com/v1alpha1\nkind: Mesh\nmetadata:\n  name: mesh\nspec:\n  transparentProxy:\n    meshDestinationsOnly: true\n",
    )]);
    assert!(!l.has_errors(), "{:?}", codes(&l));
    let json: Vec<_> = l.state.config_entries.iter().map(|e| e.to_json()).collect();
    assert_eq!(json[0]["Kind"], "proxy-defaults");
    assert_eq!(json[0]["Name"], "global");
    assert_eq!(json[0]["Config"]["protocol"], "http");
    assert_eq!(json[1]["Kind"], "mesh");
    assert!(json[1].get("Name").is_none());
    assert_eq!(json[1]["TransparentProxy"]["MeshDestinationsOnly"], true);
}

#[test]
fn diagnostics_do_not_depend_on_file_order() {
    let files = [
        ("b.hcl", "Kind = \"service-defaults\"\nNmae = \"x\"\n"),
        (
            "a.json",
            "{\"Kind\": \"service-defaults\", \"Name\": \"y\", \"Bogus\": 1}",
        ),
    ];
    let forward = load(&files);
    let mut reversed = files;
    reversed.reverse();
    let backward = load(&reversed);
    let render = |l: &Loaded| {
        l.diagnostics
            .iter()
            .map(|d| mesh_diagnostics::render_text(d, &l.sources))
            .collect::<String>()
    };
    assert_eq!(render(&forward), render(&backward));
}

/// A problem with a field inside nested objects points at that field's key, whatever the
/// format and spelling, and names it (in file order: sources sorted by precedence on load keep
/// their written index here).
#[test]
fn a_nested_field_problem_points_at_the_fields_key_and_names_it() {
    let hcl = "Kind = \"service-intentions\"\nName = \"api\"\nSources = [\n  {\n    Name = \"*\"\n    Action = \"allow\"\n  },\n  {\n    Name = \"web\"\n    Permissions = [\n      {\n        Action = \"allow\"\n        HTTP {\n          PathExact = \"health\"\n        }\n      }\n    ]\n  }\n]\n";
    let json = "{\"Kind\": \"service-intentions\", \"Name\": \"api\", \"Sources\": [\n {\"Name\": \"*\", \"Action\": \"allow\"},\n {\"Name\": \"web\", \"Permissions\": [\n  {\"Action\": \"allow\", \"HTTP\": {\"path_exact\": \"health\"}}]}]}\n";
    let yaml = "apiVersion: consul.hashicorp.com/v1alpha1\nkind: ServiceIntentions\nmetadata:\n  name: api\nspec:\n  destination:\n    name: api\n  sources:\n    - name: \"*\"\n      action: allow\n    - name: web\n      permissions:\n        - action: allow\n          http:\n            pathExact: health\n";
    for (file, text, at) in [
        ("i.hcl", hcl, (14, 11)),
        ("i.json", json, (4, 32)),
        ("i.yaml", yaml, (15, 13)),
    ] {
        let l = load(&[(file, text)]);
        assert_eq!(
            location(&l, Code::IntentionPermission),
            (file.into(), at.0, at.1),
            "{file}"
        );
        let d = l
            .diagnostics
            .iter()
            .find(|d| d.code == Code::IntentionPermission)
            .unwrap();
        assert_eq!(
            d.field.as_deref(),
            Some("Sources[1].Permissions[0].HTTP.PathExact"),
            "{file}"
        );
    }
}

#[test]
fn notifications_take_secret_references_and_refuse_literal_urls() {
    let l = load(&[(
        "mesh-gitops.hcl",
        "notifications {\n  slack { url_from = \"env:SLACK_URL\" }\n  github {\n    repository = \"acme/mesh\"\n    token_from = \"file:/run/gh\"\n  }\n}\n",
    )]);
    assert!(!l.has_errors(), "{:?}", codes(&l));
    let n = &l.state.settings.notifications;
    assert_eq!(
        n.slack,
        Some(mesh_model::SecretSource::Env("SLACK_URL".into()))
    );
    assert_eq!(n.webhook, None);
    let gh = n.github.as_ref().expect("github");
    assert_eq!(gh.repository, "acme/mesh");
    assert_eq!(gh.token, mesh_model::SecretSource::File("/run/gh".into()));

    let l = load(&[(
        "mesh-gitops.hcl",
        "notifications {\n  webhook {\n    url = \"https://hooks.example/T0K3N\"\n  }\n  github { repository = \"acme\" }\n}\n",
    )]);
    assert_eq!(l.state.settings.notifications.webhook, None);
    assert_eq!(
        location(&l, Code::LiteralSecret),
        ("mesh-gitops.hcl".to_owned(), 3, 5)
    );
    let settings: Vec<String> = l
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::Settings)
        .map(|d| d.message.clone())
        .collect();
    assert_eq!(
        settings,
        [
            "github notifications need `token_from`",
            "github notifications need `repository = \"owner/name\"`",
        ]
    );
}

#[test]
fn an_inline_certificate_key_is_a_reference_never_a_literal() {
    let l = load(&[(
        "cert.hcl",
        "Kind = \"inline-certificate\"\nName = \"gw\"\nCertificate = \"CERT\"\nPrivateKey = \"K3Y-S3CR3T\"\n",
    )]);
    assert_eq!(
        location(&l, Code::LiteralSecret),
        ("cert.hcl".to_owned(), 4, 1)
    );
    let d = l
        .diagnostics
        .iter()
        .find(|d| d.code == Code::LiteralSecret)
        .unwrap();
    assert!(
        d.help
            .as_deref()
            .unwrap_or_default()
            .contains("PrivateKeyFrom"),
        "{d:?}"
    );
    assert!(!format!("{:?}", l.state).contains("K3Y-S3CR3T"));

    let l = load(&[(
        "cert.hcl",
        "Kind = \"inline-certificate\"\nName = \"gw\"\nCertificate = \"CERT\"\nPrivateKeyFrom = \"env:GW_KEY\"\n",
    )]);
    assert!(
        l.diagnostics.iter().all(|d| !d.is_error()),
        "{:?}",
        codes(&l)
    );
    assert_eq!(
        l.state.config_entries[0].secret_reference(),
        Some("env:GW_KEY")
    );

    let l = load(&[(
        "cert.hcl",
        "Kind = \"inline-certificate\"\nName = \"gw\"\nPrivateKeyFrom = \"vault:gw\"\n",
    )]);
    assert_eq!(
        location(&l, Code::SecretSource),
        ("cert.hcl".to_owned(), 3, 1)
    );
}
