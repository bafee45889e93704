//! Findings about the agents that run the mesh, from the Consul agent configuration and the
//! consul-k8s Helm values in the repository: TLS and its verification, gossip encryption,
//! literal secrets, ACLs, Connect, the TLS listeners, deprecated keys (W1201-W1209).
//!
//! Consul reads every file of a configuration directory as one configuration, later files over
//! earlier ones (`agent/config/builder.go`, `NewBuilder` and `Build`), so a setting written in
//! a sibling file counts, and one that is missing is missing from the whole directory. Secrets
//! are never printed: a finding names the key, not its value.

use mesh_diagnostics::{Code, Diagnostic, Span};
use mesh_model::{AgentConfig, AgentOrigin, AgentSetting, AgentValue, DesiredState};

pub(crate) fn findings(state: &DesiredState, out: &mut Vec<Diagnostic>) {
    let sidecars = state.services.iter().any(|s| s.sidecar);
    for group in directories(&state.agents) {
        consul_agent(&group, sidecars, out);
    }
    for helm in state
        .agents
        .iter()
        .filter(|a| a.origin == AgentOrigin::HelmValues)
    {
        helm_values(helm, sidecars, out);
    }
}

/// The agent files of each directory, in path order.
fn directories(agents: &[AgentConfig]) -> Vec<Vec<&AgentConfig>> {
    let mut out: Vec<Vec<&AgentConfig>> = Vec::new();
    let dir = |a: &AgentConfig| a.path.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
    let mut files: Vec<&AgentConfig> = agents
        .iter()
        .filter(|a| a.origin == AgentOrigin::ConsulAgent)
        .collect();
    files.sort_by(|a, b| (dir(a), &a.path).cmp(&(dir(b), &b.path)));
    for f in files {
        match out.last_mut() {
            Some(g) if dir(g[0]) == dir(f) => g.push(f),
            _ => out.push(vec![f]),
        }
    }
    out
}

/// One directory's agent configuration, merged as Consul merges it: the last file that sets a
/// key decides it.
struct Merged<'a> {
    files: &'a [&'a AgentConfig],
}

impl<'a> Merged<'a> {
    fn get(&self, path: &str) -> Option<&'a AgentSetting> {
        self.files.iter().rev().find_map(|f| f.get(path))
    }

    /// The first of `paths` that is set, in Consul's order of precedence.
    fn first(&self, paths: &[&str]) -> Option<(&'a AgentSetting, String)> {
        paths
            .iter()
            .find_map(|p| self.get(p).map(|s| (s, (*p).to_owned())))
    }

    fn bool(&self, path: &str) -> Option<bool> {
        match self.get(path).map(|s| &s.value) {
            Some(AgentValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    fn int(&self, path: &str) -> Option<i64> {
        match self.get(path).map(|s| &s.value) {
            Some(AgentValue::Int(i)) => Some(*i),
            _ => None,
        }
    }

    fn has(&self, path: &str) -> bool {
        self.get(path).is_some_and(|s| match &s.value {
            AgentValue::Str(v) => !v.is_empty(),
            _ => true,
        })
    }

    /// Where a finding about a setting the directory lacks points: the start of the file that
    /// says whether the agent is a server, else of the directory's first file.
    fn start(&self) -> Span {
        let main = self
            .files
            .iter()
            .find(|f| f.get("server").is_some())
            .unwrap_or(&self.files[0]);
        Span {
            end: main.span.start + 1,
            ..main.span
        }
    }

    fn dir(&self) -> String {
        match self.files[0].path.rsplit_once('/') {
            Some((d, _)) => format!("the Consul agent configuration in {d}/"),
            None => "the Consul agent configuration at the repository's root".to_owned(),
        }
    }
}

fn is_false(s: &AgentSetting) -> bool {
    s.value == AgentValue::Bool(false)
}

fn consul_agent(files: &[&AgentConfig], sidecars: bool, out: &mut Vec<Diagnostic>) {
    let m = Merged { files };
    let server = m.bool("server") == Some(true);
    let tls = tls_configured(&m);
    if tls {
        verification(&m, server, out);
        tls_ports(&m, server, out);
    } else {
        out.push(
            Diagnostic::new(
                Code::AgentTlsOff,
                m.start(),
                format!(
                    "{} sets no TLS certificates (ca_file, cert_file, key_file): RPC between agents and servers travels in clear text, and anyone on the network can join as a server",
                    m.dir()
                ),
            )
            .with_help("set `tls { defaults { ca_file, cert_file, key_file } }` on the servers (clients: `auto_encrypt { tls = true }` with ca_file), then verify_incoming, verify_outgoing and `tls { internal_rpc { verify_server_hostname = true } }`"),
        );
    }
    gossip(&m, out);
    acl(&m, out);
    if server && sidecars {
        if let Some(s) = m.get("connect.enabled").filter(|s| is_false(s)) {
            out.push(
                Diagnostic::new(
                    Code::ConnectDisabled,
                    s.span,
                    "connect.enabled is false on a server: the servers run no Connect CA and sign no certificates, so the sidecars this repository declares cannot start",
                )
                .with_help("set `connect { enabled = true }` on every server"),
            );
        }
    }
    for f in files {
        secrets(f, out);
        deprecated(f, out);
    }
}

/// TLS material for internal RPC: certificates in `tls.defaults`, `tls.internal_rpc` or the
/// deprecated top-level keys, or a client's certificate from the servers (`auto_encrypt.tls`).
fn tls_configured(m: &Merged) -> bool {
    ["ca_file", "ca_path", "cert_file", "key_file"]
        .iter()
        .any(|k| {
            m.has(k)
                || m.has(&format!("tls.defaults.{k}"))
                || m.has(&format!("tls.internal_rpc.{k}"))
        })
        || m.bool("auto_encrypt.tls") == Some(true)
}

/// `verify_incoming` (servers), `verify_outgoing` and `verify_server_hostname` for internal
/// RPC. `tls.internal_rpc` inherits `tls.defaults`, and the deprecated top-level forms fill
/// the stanza's fields that are unset (`agent/config/deprecated.go`,
/// `applyDeprecatedTLSConfig`; `builder.go`, `buildTLSConfig`). Unset is false.
fn verification(m: &Merged, server: bool, out: &mut Vec<Diagnostic>) {
    let mut checks: Vec<(&str, Vec<&str>, &str)> = Vec::new();
    if server {
        checks.push((
            "verify_incoming",
            vec![
                "tls.internal_rpc.verify_incoming",
                "verify_incoming_rpc",
                "tls.defaults.verify_incoming",
                "verify_incoming",
            ],
            "a server accepts RPC from clients that present no certificate",
        ));
    }
    checks.push((
        "verify_outgoing",
        vec![
            "tls.internal_rpc.verify_outgoing",
            "tls.defaults.verify_outgoing",
            "verify_outgoing",
        ],
        "agents may talk to servers without TLS, and do not check the servers' certificates",
    ));
    checks.push((
        "verify_server_hostname",
        vec![
            "tls.internal_rpc.verify_server_hostname",
            "verify_server_hostname",
        ],
        "any agent holding a certificate of the CA can pose as a server and read every secret the servers replicate",
    ));
    for (name, paths, why) in checks {
        let (span, what) = match m.first(&paths) {
            Some((s, _)) if s.value == AgentValue::Bool(true) => continue,
            Some((s, path)) => (s.span, format!("{path} is false")),
            None => (m.start(), format!("{} does not set {name}", m.dir())),
        };
        out.push(
            Diagnostic::new(Code::AgentTlsVerify, span, format!("{what}: {why}")).with_help(
                format!(
                    "set `tls {{ {} {{ {name} = true }} }}`",
                    if name == "verify_server_hostname" {
                        "internal_rpc"
                    } else {
                        "defaults"
                    }
                ),
            ),
        );
    }
}

/// With TLS, the HTTP API on HTTPS (`ports.https`, off by default: `default.go`) and, where
/// the proxies read xDS over plain gRPC (`ports.grpc`), the TLS gRPC port too (`grpc_tls`, 8503
/// by default on servers only: `builder.go`, `Build`).
fn tls_ports(m: &Merged, server: bool, out: &mut Vec<Diagnostic>) {
    let https = m.int("ports.https").unwrap_or(-1);
    if https <= 0 {
        let span = m.get("ports.https").map_or(m.start(), |s| s.span);
        out.push(
            Diagnostic::new(
                Code::TlsPortsMissing,
                span,
                format!(
                    "{} serves the HTTP API without TLS (ports.https is not set): tokens and certificates' private keys cross the network in clear text",
                    m.dir()
                ),
            )
            .with_help("set `ports { https = 8501 }` and close the plain HTTP port (`http = -1`) or bind it to 127.0.0.1"),
        );
    }
    let grpc = m.int("ports.grpc").unwrap_or(-1);
    let grpc_tls = m
        .int("ports.grpc_tls")
        .unwrap_or(if server { 8503 } else { -1 });
    if grpc > 0 && grpc_tls <= 0 {
        let span = m
            .get("ports.grpc_tls")
            .or_else(|| m.get("ports.grpc"))
            .map_or(m.start(), |s| s.span);
        out.push(
            Diagnostic::new(
                Code::TlsPortsMissing,
                span,
                "the proxies read their configuration (xDS) over plain gRPC: ports.grpc is set and ports.grpc_tls is not",
            )
            .with_help("set `ports { grpc_tls = 8503 }` and point the proxies at it (`-grpc-addr https://...`)"),
        );
    }
}

/// `encrypt` missing from the directory, or unencrypted gossip still accepted or sent
/// (`encrypt_verify_incoming`/`_outgoing`, true by default: `default.go`).
fn gossip(m: &Merged, out: &mut Vec<Diagnostic>) {
    if !m.has("encrypt") {
        out.push(
            Diagnostic::new(
                Code::GossipUnencrypted,
                m.start(),
                format!(
                    "{} sets no gossip key (encrypt): membership and health gossip travel unencrypted and anyone on the network can join the cluster",
                    m.dir()
                ),
            )
            .with_help("generate a key with `consul keygen` and give it to every agent from your secret store (see W1204 for how, without committing it)"),
        );
    }
    for key in ["encrypt_verify_incoming", "encrypt_verify_outgoing"] {
        if let Some(s) = m.get(key).filter(|s| is_false(s)) {
            out.push(
                Diagnostic::new(
                    Code::GossipUnencrypted,
                    s.span,
                    format!("{key} is false: the agents still accept or send unencrypted gossip"),
                )
                .with_help(format!(
                    "remove {key} (true by default) once every agent has the key"
                )),
            );
        }
    }
}

/// ACLs off (`acl.enabled` unset; `acl_datacenter` turns them on, `deprecated.go`) or on with
/// the default policy allow (the default: `default.go`).
fn acl(m: &Merged, out: &mut Vec<Diagnostic>) {
    let enabled = m.get("acl.enabled");
    let on = enabled.is_some_and(|s| s.value == AgentValue::Bool(true)) || m.has("acl_datacenter");
    if !on {
        let span = enabled.map_or(m.start(), |s| s.span);
        out.push(
            Diagnostic::new(
                Code::AgentAclPosture,
                span,
                format!(
                    "{} does not enable ACLs: any client of the API can register as any service and obtain its certificate",
                    m.dir()
                ),
            )
            .with_help("set `acl { enabled = true  default_policy = \"deny\" }` on every agent"),
        );
        return;
    }
    let policy = m.first(&["acl.default_policy", "acl_default_policy"]);
    let allow = match &policy {
        Some((s, _)) => s.value != AgentValue::Str("deny".into()),
        None => true,
    };
    if allow {
        let (span, what) = match &policy {
            Some((s, path)) => (s.span, format!("{path} is not \"deny\"")),
            None => (
                m.start(),
                format!("{} leaves acl.default_policy at \"allow\"", m.dir()),
            ),
        };
        out.push(
            Diagnostic::new(
                Code::AgentAclPosture,
                span,
                format!("{what}: a request without a token, or one no policy covers, is allowed"),
            )
            .with_help("set `acl { default_policy = \"deny\" }` and grant what each token needs"),
        );
    }
}

fn secrets(f: &AgentConfig, out: &mut Vec<Diagnostic>) {
    for (path, span) in f.secrets() {
        let gossip =
            path == "encrypt" || path.ends_with(".encrypt") || path.contains("gossipEncryption");
        let token = path.contains("token") || path.contains("acls.");
        let d = if gossip {
            Diagnostic::new(
                Code::LiteralGossipKey,
                span,
                format!("{path} holds a literal gossip key: everyone who can read the repository can decrypt and join the cluster's gossip"),
            )
            .with_help(match f.origin {
                AgentOrigin::ConsulAgent => "remove it and rotate the key (`consul keyring -install`, `-use`, `-remove`); give agents the key at start from your secret store, with `-encrypt` on the command line or a config file that a Vault, Nomad or Kubernetes secret writes into the configuration directory",
                AgentOrigin::HelmValues => "remove it and rotate the key; store it in a Kubernetes or Vault secret and set `global.gossipEncryption.secretName` and `secretKey` (or `autoGenerate: true`)",
            })
        } else if token {
            Diagnostic::new(
                Code::LiteralAgentSecret,
                span,
                format!("{path} holds a literal ACL token: everyone who can read the repository has its permissions"),
            )
            .with_help(match f.origin {
                AgentOrigin::ConsulAgent => "remove it and revoke the token; set agent tokens at run time with `consul acl set-agent-token` (kept with `acl { enable_token_persistence = true }`), or from a config file your secret store writes",
                AgentOrigin::HelmValues => "remove it and revoke the token; store it in a Kubernetes or Vault secret and reference it with `secretName` and `secretKey`",
            })
        } else {
            Diagnostic::new(
                Code::LiteralAgentSecret,
                span,
                format!("{path} holds a literal secret"),
            )
            .with_help("remove it and rotate it; write it into the configuration at deploy time from your secret store")
        };
        out.push(d);
    }
}

/// Top-level keys Consul still reads but moved into `tls { ... }` (1.12) and `acl { ... }`
/// (1.4): `agent/config/deprecated.go`, `applyDeprecatedConfig`.
const DEPRECATED: &[(&str, &str)] = &[
    ("acl_agent_master_token", "acl.tokens.agent_recovery"),
    ("acl_agent_token", "acl.tokens.agent"),
    ("acl_datacenter", "primary_datacenter"),
    ("acl_default_policy", "acl.default_policy"),
    ("acl_down_policy", "acl.down_policy"),
    ("acl_master_token", "acl.tokens.initial_management"),
    ("acl_replication_token", "acl.tokens.replication"),
    ("acl_token", "acl.tokens.default"),
    ("acl_ttl", "acl.token_ttl"),
    ("acl.tokens.agent_master", "acl.tokens.agent_recovery"),
    ("acl.tokens.master", "acl.tokens.initial_management"),
    ("ca_file", "tls.defaults.ca_file"),
    ("ca_path", "tls.defaults.ca_path"),
    ("cert_file", "tls.defaults.cert_file"),
    ("key_file", "tls.defaults.key_file"),
    ("tls_cipher_suites", "tls.defaults.tls_cipher_suites"),
    ("tls_min_version", "tls.defaults.tls_min_version"),
    ("verify_incoming", "tls.defaults.verify_incoming"),
    ("verify_incoming_https", "tls.https.verify_incoming"),
    ("verify_incoming_rpc", "tls.internal_rpc.verify_incoming"),
    ("verify_outgoing", "tls.defaults.verify_outgoing"),
    (
        "verify_server_hostname",
        "tls.internal_rpc.verify_server_hostname",
    ),
];

fn deprecated(f: &AgentConfig, out: &mut Vec<Diagnostic>) {
    for (old, new) in DEPRECATED {
        if let Some(s) = f.get(old) {
            out.push(
                Diagnostic::new(
                    Code::DeprecatedAgentKey,
                    s.span,
                    format!("{old} is deprecated: Consul reads it as {new}, and only where {new} is not set"),
                )
                .with_help(format!("write {new} instead")),
            );
        }
    }
}

/// The consul-k8s chart's security settings (`charts/consul/values.yaml`): `global.tls.enabled`
/// (false by default), `global.tls.verify` (true), `global.tls.httpsOnly` (true),
/// `global.gossipEncryption` (none by default), `global.acls.manageSystemACLs` (false),
/// `connectInject.enabled`.
fn helm_values(h: &AgentConfig, sidecars: bool, out: &mut Vec<Diagnostic>) {
    let start = Span {
        end: h.span.start + 1,
        ..h.span
    };
    let at = |path: &str| h.get(path).map_or(start, |s| s.span);
    match h.bool("global.tls.enabled") {
        Some((true, _)) => {
            if let Some((false, span)) = h.bool("global.tls.verify") {
                out.push(
                    Diagnostic::new(
                        Code::AgentTlsVerify,
                        span,
                        "global.tls.verify is false: the agents set verify_incoming, verify_outgoing and verify_server_hostname to false",
                    )
                    .with_help("remove global.tls.verify (true by default) once TLS is rolled out"),
                );
            }
            if let Some((false, span)) = h.bool("global.tls.httpsOnly") {
                out.push(
                    Diagnostic::new(
                        Code::TlsPortsMissing,
                        span,
                        "global.tls.httpsOnly is false: the agents keep serving the HTTP API in clear text beside HTTPS",
                    )
                    .with_help("remove global.tls.httpsOnly (true by default)"),
                );
            }
        }
        _ => out.push(
            Diagnostic::new(
                Code::AgentTlsOff,
                at("global.tls.enabled"),
                "global.tls.enabled is not true: the chart runs Consul's servers and clients without TLS",
            )
            .with_help("set `global.tls.enabled: true` (and `global.tls.enableAutoEncrypt: true` for the clients)"),
        ),
    }
    let auto = h.bool("global.gossipEncryption.autoGenerate").map(|b| b.0) == Some(true);
    let named = [
        "global.gossipEncryption.secretName",
        "global.gossipEncryption.secretKey",
    ]
    .iter()
    .all(|k| h.str(k).is_some_and(|(v, _)| !v.is_empty()));
    let literal = h.get("global.gossipEncryption").is_some();
    if !auto && !named && !literal {
        out.push(
            Diagnostic::new(
                Code::GossipUnencrypted,
                at("global.gossipEncryption"),
                "global.gossipEncryption names no key: the chart runs the agents' gossip unencrypted",
            )
            .with_help("set `global.gossipEncryption.autoGenerate: true`, or secretName and secretKey of a secret holding `consul keygen`'s key"),
        );
    }
    if h.bool("global.acls.manageSystemACLs").map(|b| b.0) != Some(true) {
        out.push(
            Diagnostic::new(
                Code::AgentAclPosture,
                at("global.acls.manageSystemACLs"),
                "global.acls.manageSystemACLs is not true: the chart neither enables nor bootstraps ACLs, so any client can register as any service",
            )
            .with_help("set `global.acls.manageSystemACLs: true`"),
        );
    }
    if sidecars {
        if let Some((false, span)) = h.bool("connectInject.enabled") {
            out.push(
                Diagnostic::new(
                    Code::ConnectDisabled,
                    span,
                    "connectInject.enabled is false: no pod gets a sidecar, so the sidecars this repository declares never join the mesh",
                )
                .with_help("set `connectInject.enabled: true`"),
            );
        }
    }
    secrets(h, out);
}

#[cfg(test)]
mod tests {
    use mesh_diagnostics::Code;

    /// The agent findings of a repository: (code, file, line) in order.
    fn found(files: &[(&str, &str)]) -> Vec<(&'static str, String, u32)> {
        let files = files
            .iter()
            .map(|(p, c)| mesh_loader::RepoFile {
                path: (*p).into(),
                contents: c.as_bytes().to_vec(),
            })
            .collect();
        let loaded = mesh_loader::load_files(files, &mesh_loader::LoadOptions::default());
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        let a = crate::analyze(&loaded.state, &[]);
        a.findings
            .iter()
            .filter(|d| d.code.as_str().starts_with("W12"))
            .map(|d| {
                let loc = loaded.sources.location(d.span.unwrap());
                (d.code.as_str(), loc.file, loc.line)
            })
            .collect()
    }

    const SETTINGS: (&str, &str) = (
        "mesh-gitops.hcl",
        "acl {\n  enabled = true\n  default_policy = \"deny\"\n}\n",
    );
    const WEB: (&str, &str) = (
        "web.hcl",
        "service {\n  name = \"web\"\n  port = 8080\n  address = \"127.0.0.1\"\n  connect { sidecar_service {} }\n}\n",
    );

    /// A hardened server: TLS verified both ways, HTTPS, gossip key and ACL token from outside
    /// the repository, ACLs deny by default.
    const HARDENED: &str = "server = true\nbootstrap_expect = 3\ntls {\n  defaults {\n    ca_file = \"/etc/consul.d/ca.pem\"\n    cert_file = \"/etc/consul.d/server.pem\"\n    key_file = \"/etc/consul.d/server-key.pem\"\n    verify_incoming = true\n    verify_outgoing = true\n  }\n  internal_rpc {\n    verify_server_hostname = true\n  }\n}\nacl {\n  enabled = true\n  default_policy = \"deny\"\n}\nports {\n  https = 8501\n  http = -1\n}\n";

    #[test]
    fn a_hardened_server_is_clean_but_for_its_gossip_key() {
        // The key is written at deploy time into the same directory; an empty value is no
        // key, as a template that found none leaves it.
        let got = found(&[
            SETTINGS,
            WEB,
            ("consul/server.hcl", HARDENED),
            ("consul/gossip.json", "{\"encrypt\": \"\"}"),
        ]);
        assert_eq!(
            got,
            [(
                Code::GossipUnencrypted.as_str(),
                "consul/server.hcl".into(),
                1
            )]
        );
        // With `encrypt` filled in by the template it is clean, and the key is literal (W1204).
        let got = found(&[
            SETTINGS,
            WEB,
            ("consul/server.hcl", HARDENED),
            (
                "consul/gossip.json",
                "{\"encrypt\": \"i0P+gFTkLPg0h53eNYjydg==\"}",
            ),
        ]);
        assert_eq!(
            got,
            [(
                Code::LiteralGossipKey.as_str(),
                "consul/gossip.json".into(),
                1
            )]
        );
    }

    #[test]
    fn no_tls_is_one_finding_and_verification_is_checked_only_with_tls() {
        let got = found(&[SETTINGS, ("server.hcl", "server = true\nencrypt = \"\"\nacl {\n  enabled = true\n  default_policy = \"deny\"\n}\n")]);
        let codes: Vec<&str> = got.iter().map(|g| g.0).collect();
        assert_eq!(codes, ["W1201", "W1203"]);
    }

    #[test]
    fn each_verification_off_or_missing_is_reported_where_it_is_or_at_the_file() {
        let got = found(&[(
            "server.hcl",
            "server = true\nca_file = \"/ca.pem\"\nverify_incoming = false\ntls {\n  defaults {\n    verify_outgoing = true\n  }\n}\nacl {\n  enabled = true\n  default_policy = \"deny\"\n}\nports {\n  https = 8501\n}\n",
        )]);
        let verify: Vec<(&str, u32)> = got
            .iter()
            .filter(|g| g.0 == "W1202")
            .map(|g| (g.0, g.2))
            .collect();
        // verify_incoming false at line 3; verify_server_hostname missing (the file's start).
        assert_eq!(verify, [("W1202", 1), ("W1202", 3)]);
        // The deprecated top-level keys are named.
        let deprecated: Vec<u32> = got.iter().filter(|g| g.0 == "W1209").map(|g| g.2).collect();
        assert_eq!(deprecated, [2, 3]);
    }

    #[test]
    fn literal_tokens_acl_posture_connect_and_ports() {
        let got = found(&[
            WEB,
            (
                "server.hcl",
                "server = true\nauto_encrypt {\n  allow_tls = true\n}\nencrypt = \"\"\nca_file = \"/ca.pem\"\nverify_incoming = true\nverify_outgoing = true\nverify_server_hostname = true\nacl {\n  enabled = true\n  tokens {\n    agent = \"3f1c9a62-8e6b-4a8f-9d1e-2f4b8c7a6d5e\"\n  }\n}\nconnect {\n  enabled = false\n}\nports {\n  grpc = 8502\n  grpc_tls = -1\n}\n",
            ),
        ]);
        let codes: Vec<(&str, u32)> = got
            .iter()
            .filter(|g| g.0 != "W1209")
            .map(|g| (g.0, g.2))
            .collect();
        assert_eq!(
            codes,
            [
                ("W1203", 1),  // an empty gossip key is none
                ("W1206", 1),  // default_policy left at allow
                ("W1208", 1),  // no HTTPS port
                ("W1205", 13), // the agent token, never its value
                ("W1207", 17), // connect off on a server, with a sidecar declared
                ("W1208", 21), // grpc_tls off while plain gRPC serves xDS
            ]
        );
    }

    #[test]
    fn acls_off_and_unencrypted_gossip_accepted() {
        let got = found(&[(
            "client.json",
            r#"{"auto_encrypt": {"tls": true}, "ca_file": "/ca.pem", "encrypt": "", "encrypt_verify_incoming": false, "verify_outgoing": true, "verify_server_hostname": true, "ports": {"https": 8501}}"#,
        )]);
        let codes: Vec<&str> = got.iter().map(|g| g.0).filter(|c| *c != "W1209").collect();
        // No key (empty), and unencrypted gossip accepted.
        assert_eq!(codes, ["W1203", "W1206", "W1203"]);
    }

    #[test]
    fn helm_values_without_tls_gossip_or_acls_and_with_a_literal_token() {
        let got = found(&[(
            "values.yaml",
            "global:\n  name: consul\n  tls:\n    enabled: false\n  acls:\n    bootstrapToken: 0e7f0b2c-1d43-4c6d-9a8e-0d5b7d3f2a11\nserver:\n  replicas: 3\n",
        )]);
        assert_eq!(
            got,
            [
                ("W1203", "values.yaml".into(), 1),
                ("W1206", "values.yaml".into(), 1),
                ("W1201", "values.yaml".into(), 4),
                ("W1205", "values.yaml".into(), 6),
            ]
        );
        let hardened = found(&[(
            "values.yaml",
            "global:\n  tls:\n    enabled: true\n    enableAutoEncrypt: true\n  gossipEncryption:\n    autoGenerate: true\n  acls:\n    manageSystemACLs: true\nserver:\n  replicas: 3\nconnectInject:\n  enabled: true\n",
        )]);
        assert!(hardened.is_empty(), "{hardened:?}");
    }
}
