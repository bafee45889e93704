//! Consul agent configuration and consul-k8s Helm values: recognised by their top-level keys,
//! never mistaken for config entries, service definitions or Nomad jobs (and the other way
//! round), kept with their spans, secrets without their values.

use mesh_diagnostics::Code;
use mesh_loader::{load_files, FileFormat, LoadOptions, Loaded, RepoFile};
use mesh_model::{AgentOrigin, AgentValue};

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

fn format_of(l: &Loaded, path: &str) -> FileFormat {
    l.files.iter().find(|f| f.path == path).unwrap().format
}

const SERVER_HCL: &str = r#"datacenter = "dc1"
data_dir   = "/opt/consul"
server     = true
encrypt    = "i0P+gFTkLPg0h53eNYjydg=="

tls {
  defaults {
    ca_file         = "/etc/consul.d/ca.pem"
    verify_incoming = true
  }
  internal_rpc {
    verify_server_hostname = true
  }
}

acl {
  enabled        = true
  default_policy = "deny"
  tokens {
    agent = "3f1c9a62-8e6b-4a8f-9d1e-2f4b8c7a6d5e"
  }
}

ports {
  https = 8501
}
"#;

#[test]
fn an_agent_hcl_file_is_recognised_with_every_setting_at_its_key() {
    let l = load(&[("consul/server.hcl", SERVER_HCL)]);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert_eq!(format_of(&l, "consul/server.hcl"), FileFormat::AgentConfig);
    let a = &l.state.agents[0];
    assert_eq!(a.origin, AgentOrigin::ConsulAgent);
    assert_eq!(a.path, "consul/server.hcl");
    assert_eq!(a.bool("server").map(|b| b.0), Some(true));
    assert_eq!(
        a.bool("tls.internal_rpc.verify_server_hostname")
            .map(|b| b.0),
        Some(true)
    );
    assert_eq!(a.int("ports.https").map(|p| p.0), Some(8501));
    let (_, span) = a.bool("tls.defaults.verify_incoming").unwrap();
    let loc = l.sources.location(span);
    assert_eq!((loc.line, loc.column), (9, 5));
    // Secrets are kept as being there, never with their value.
    assert_eq!(a.get("encrypt").unwrap().value, AgentValue::Secret);
    assert_eq!(a.get("acl.tokens.agent").unwrap().value, AgentValue::Secret);
    let shown = serde_json::to_string(&l.state.agents).unwrap();
    assert!(
        !shown.contains("i0P+gFTk") && !shown.contains("3f1c9a62"),
        "{shown}"
    );
    assert!(l.state.config_entries.is_empty() && l.state.services.is_empty());
}

#[test]
fn an_agent_json_file_is_recognised_keys_in_any_case_and_blocks_as_lists() {
    let l = load(&[(
        "server.json",
        r#"{
  "ca_file": "/etc/tls/ca.pem",
  "Verify_Incoming": true,
  "verify_outgoing": true,
  "acl": [{ "enabled": true, "tokens": [{ "initial_management": "root" }] }],
  "ports": { "https": 8443 }
}"#,
    )]);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert_eq!(format_of(&l, "server.json"), FileFormat::AgentConfig);
    let a = &l.state.agents[0];
    assert_eq!(a.bool("verify_incoming").map(|b| b.0), Some(true));
    assert_eq!(a.bool("acl.enabled").map(|b| b.0), Some(true));
    assert_eq!(
        a.get("acl.tokens.initial_management").unwrap().value,
        AgentValue::Secret
    );
    assert_eq!(a.int("ports.https").map(|p| p.0), Some(8443));
}

#[test]
fn an_agent_file_may_define_services_too() {
    let l = load(&[(
        "client.hcl",
        "datacenter = \"dc1\"\nretry_join = [\"consul.service\"]\nservice {\n  name = \"web\"\n  port = 8080\n  connect { sidecar_service {} }\n}\n",
    )]);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert_eq!(format_of(&l, "client.hcl"), FileFormat::AgentConfig);
    assert_eq!(l.state.services.len(), 1);
    assert!(l.state.services[0].sidecar);
    assert!(l.state.agents[0].get("service.name").is_none());
    assert_eq!(
        l.state.agents[0].get("retry_join").unwrap().value,
        AgentValue::List(vec![AgentValue::Str("consul.service".into())])
    );
}

#[test]
fn helm_values_are_recognised_with_their_keys_as_written() {
    let l = load(&[(
        "helm/values.yaml",
        "global:\n  name: consul\n  tls:\n    enabled: true\n  gossipEncryption:\n    autoGenerate: true\n  acls:\n    manageSystemACLs: true\n    bootstrapToken: 0e7f0b2c-1d43-4c6d-9a8e-0d5b7d3f2a11\nserver:\n  replicas: 3\n  extraConfig: |\n    {\"acl\": {\"tokens\": {\"agent\": \"9d1e2f4b\"}}}\nconnectInject:\n  enabled: true\n",
    )]);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert_eq!(format_of(&l, "helm/values.yaml"), FileFormat::HelmValues);
    let h = &l.state.agents[0];
    assert_eq!(h.origin, AgentOrigin::HelmValues);
    assert_eq!(h.bool("global.tls.enabled").map(|b| b.0), Some(true));
    assert_eq!(h.int("server.replicas").map(|b| b.0), Some(3));
    // A token written where the chart takes a secret reference, and one inside extraConfig.
    let secrets: Vec<&str> = h.secrets().map(|s| s.0).collect();
    assert_eq!(
        secrets,
        [
            "global.acls.bootstrapToken",
            "server.extraConfig.acl.tokens.agent"
        ]
    );
    let loc = l
        .sources
        .location(h.get("global.acls.bootstrapToken").unwrap().span);
    assert_eq!((loc.line, loc.column), (9, 5));
    let text = l.sources.text(h.span.file);
    assert!(
        !text.contains("0e7f0b2c") && !text.contains("9d1e2f4b"),
        "{text}"
    );
    assert!(text.contains("replicas: 3"));
}

#[test]
fn config_entries_service_definitions_nomad_jobs_and_resources_are_not_agent_files() {
    let l = load(&[
        ("mesh-gitops.hcl", "datacenter = \"dc1\"\nacl {\n  enabled = true\n  default_policy = \"deny\"\n}\n"),
        // A mesh entry has a TLS block, a proxy-defaults entry a Config: both carry Kind.
        ("mesh.hcl", "Kind = \"mesh\"\nTLS {\n  Incoming {\n    TLSMinVersion = \"TLSv1_2\"\n  }\n}\n"),
        ("web.json", r#"{"service": {"name": "web", "port": 8080, "connect": {"sidecar_service": {}}}}"#),
        ("web.nomad.hcl", "job \"api\" {\n  datacenters = [\"dc1\"]\n  group \"api\" {\n    network {\n      mode = \"bridge\"\n    }\n    service {\n      name = \"api\"\n      port = \"9090\"\n      connect {\n        sidecar_service {}\n      }\n    }\n  }\n}\n"),
        ("k8s.yaml", "apiVersion: consul.hashicorp.com/v1alpha1\nkind: ServiceDefaults\nmetadata:\n  name: web\nspec:\n  protocol: http\n"),
    ]);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert!(l.state.agents.is_empty());
    assert_eq!(format_of(&l, "mesh-gitops.hcl"), FileFormat::Settings);
    assert_eq!(format_of(&l, "mesh.hcl"), FileFormat::ConfigEntry);
    assert_eq!(format_of(&l, "web.json"), FileFormat::ServiceDefinition);
    assert_eq!(format_of(&l, "web.nomad.hcl"), FileFormat::NomadJob);
    assert_eq!(format_of(&l, "k8s.yaml"), FileFormat::KubernetesResources);
    // A config entry that forgot its Kind is still reported as one, not read as an agent file.
    let l = load(&[("svc.hcl", "Name = \"web\"\nProtocol = \"http\"\n")]);
    assert_eq!(format_of(&l, "svc.hcl"), FileFormat::Invalid);
    // YAML is not an agent format: Consul reads HCL and JSON only.
    let l = load(&[("agent.yaml", "datacenter: dc1\nserver: true\n")]);
    assert_eq!(format_of(&l, "agent.yaml"), FileFormat::Invalid);
}

#[test]
fn values_consul_refuses_are_errors_and_the_gossip_key_is_never_printed() {
    let l = load(&[(
        "server.hcl",
        "server = true\nverify_incoming = \"true\"\nencrypt = \"this is not a valid key\"\nports {\n  https = \"8501\"\n}\n",
    )]);
    let found: Vec<(String, u32)> = l
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::AgentConfigInvalid)
        .map(|d| {
            let loc = l.sources.location(d.span.unwrap());
            (d.field.clone().unwrap_or_default(), loc.line)
        })
        .collect();
    assert_eq!(
        found,
        [
            ("verify_incoming".to_owned(), 2),
            ("encrypt".to_owned(), 3),
            ("ports.https".to_owned(), 5)
        ]
    );
    for d in &l.diagnostics {
        assert!(!d.message.contains("not a valid key"), "{}", d.message);
    }
    // Consul's own test vector (`builder_test.go`): a valid 16-byte key.
    let ok = load(&[("a.hcl", "encrypt = \"i0P+gFTkLPg0h53eNYjydg==\"\n")]);
    assert!(!ok.has_errors(), "{:?}", ok.diagnostics);
}

#[test]
fn a_secret_a_template_fills_in_at_deploy_time_is_a_reference_not_a_literal() {
    let l = load(&[(
        "consul/gossip.hcl",
        "encrypt = \"{{ with secret \\\"kv/data/consul/gossip\\\" }}{{ .Data.data.key }}{{ end }}\"\nacl {\n  tokens {\n    agent = \"${CONSUL_AGENT_TOKEN}\"\n  }\n}\n",
    )]);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    let a = &l.state.agents[0];
    assert_eq!(a.secrets().count(), 0);
    assert!(matches!(
        a.get("encrypt").unwrap().value,
        AgentValue::Str(_)
    ));
}
