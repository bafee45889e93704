//! mesh-gitops's own kinds (`acl-policy`, `acl-role`, `acl-token`, `ca-config`) and the settings
//! file. They are written like config entries, with Consul's API field names.

use crate::decode::Decoded;
use crate::entry::{decode_with, FieldSpans};
use crate::schema;
use mesh_diagnostics::{Code, Diagnostic, Diagnostics, FileId, Span};
use mesh_model::{
    AclLink, AclPolicy, AclRole, AclToken, CaConfig, DefaultPolicy, GithubStatus, NodeIdentity,
    Notifications, SecretSource, ServiceIdentity, Settings,
};
use mesh_syntax::Node;
use serde_json::Value;

/// An object of one of our kinds, decoded.
#[derive(Debug)]
pub(crate) enum OwnKind {
    Policy(AclPolicy),
    Role(AclRole),
    Token(AclToken),
    Ca(CaConfig),
}

pub(crate) fn own_kind(
    node: &Node,
    kind: &str,
    source: &str,
    diags: &mut Diagnostics,
) -> Option<OwnKind> {
    let skip = ["Kind"];
    match kind {
        "acl-policy" => {
            let d = decode_with(node, &schema::ACL_POLICY, &skip, diags);
            policy(&d, node.span, source, diags).map(OwnKind::Policy)
        }
        "acl-role" => {
            let d = decode_with(node, &schema::ACL_ROLE, &skip, diags);
            role(&d, node.span, diags).map(OwnKind::Role)
        }
        "acl-token" => {
            let d = decode_with(node, &schema::ACL_TOKEN, &skip, diags);
            token(&d, node.span, diags).map(OwnKind::Token)
        }
        "ca-config" => {
            let d = decode_with(node, &schema::CA_CONFIG, &skip, diags);
            ca_config(d, node.span, diags).map(OwnKind::Ca)
        }
        _ => None,
    }
}

fn str_at<'a>(d: &'a Decoded, key: &str) -> Option<&'a str> {
    d.json.get(key).and_then(Value::as_str)
}

fn required_name(d: &Decoded, span: Span, what: &str, diags: &mut Diagnostics) -> Option<String> {
    match str_at(d, "Name") {
        Some(n) if !n.is_empty() => Some(n.to_owned()),
        _ => {
            diags.push(
                Diagnostic::new(Code::MissingField, span, format!("{what} has no Name"))
                    .with_help("add `Name = \"...\"`"),
            );
            None
        }
    }
}

fn check_name(
    d: &Decoded,
    name: &str,
    check: fn(&str) -> Option<String>,
    diags: &mut Diagnostics,
    span: Span,
) {
    if let Some(msg) = check(name) {
        diags.push(
            d.locate(
                Diagnostic::new(Code::AclName, d.at("/Name").unwrap_or(span), msg),
                "/Name",
            )
            .with_help("names use letters, digits, '-' and '_'"),
        );
    }
}

fn policy(d: &Decoded, span: Span, source: &str, diags: &mut Diagnostics) -> Option<AclPolicy> {
    let name = required_name(d, span, "acl-policy", diags)?;
    check_name(
        d,
        &name,
        mesh_semantics::acl::validate_policy_name,
        diags,
        span,
    );
    let Some(rules) = str_at(d, "Rules") else {
        diags.push(
            Diagnostic::new(Code::MissingField, span, "acl-policy has no Rules")
                .with_help("add `Rules = <<EOF ... EOF` with the policy's rules"),
        );
        return None;
    };
    let rules_span = d.span("/Rules").unwrap_or(span);
    // Parse the rules now, so a bad rule is reported at its own line inside the file.
    if let Err(errors) = mesh_semantics::acl::parse_rules_strict(rules, RULES_FILE, 0) {
        let map = EmbeddedText::new(source, rules_span, rules);
        for mut e in errors {
            e.span = e.span.map(|s| map.map(s));
            for (s, _) in &mut e.labels {
                *s = map.map(*s);
            }
            diags.push(e);
        }
    }
    Some(AclPolicy {
        name,
        description: str_at(d, "Description").unwrap_or_default().to_owned(),
        rules: rules.to_owned(),
        datacenters: strings(d.json.get("Datacenters")),
        span,
        rules_span,
    })
}

/// The file id the rules are parsed under before their spans are mapped into the real file.
const RULES_FILE: FileId = FileId(u32::MAX);

/// Maps offsets in text embedded in a file (a heredoc, a YAML block scalar, a plain string) back
/// to the file, line by line. Lines that cannot be found (escaped strings) map to the start of
/// the string.
struct EmbeddedText {
    file: FileId,
    fallback: Span,
    /// For each line of the embedded text: (offset of the line in the embedded text, offset of
    /// the same text in the file).
    lines: Vec<(usize, Option<usize>)>,
}

impl EmbeddedText {
    fn new(source: &str, region: Span, embedded: &str) -> Self {
        let start = (region.start as usize).min(source.len());
        let end = (region.end as usize).clamp(start, source.len());
        let hay = source.get(start..end).unwrap_or("");
        let mut lines = Vec::new();
        let mut cursor = 0usize;
        let mut offset = 0usize;
        for line in embedded.split_inclusive('\n') {
            let content = line.trim_end_matches(['\n', '\r']);
            let trimmed = content.trim_start();
            let lead = content.len() - trimmed.len();
            let found = if trimmed.is_empty() {
                None
            } else {
                hay.get(cursor..).and_then(|h| h.find(trimmed)).map(|i| {
                    cursor += i + trimmed.len();
                    start + cursor - trimmed.len() - lead
                })
            };
            lines.push((offset, found));
            offset += line.len();
        }
        EmbeddedText {
            file: region.file,
            fallback: Span {
                file: region.file,
                start: region.start,
                end: region.start + 1,
            },
            lines,
        }
    }

    fn map(&self, s: Span) -> Span {
        let start = s.start as usize;
        let idx = match self.lines.binary_search_by(|(o, _)| o.cmp(&start)) {
            Ok(i) => i,
            Err(0) => return self.fallback,
            Err(i) => i - 1,
        };
        match self.lines[idx] {
            (line_start, Some(file_off)) => {
                let delta = start - line_start;
                let len = (s.end - s.start) as usize;
                Span::new(self.file, file_off + delta, file_off + delta + len)
            }
            _ => self.fallback,
        }
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn links(d: &Decoded, key: &str, what: &str, diags: &mut Diagnostics) -> Vec<AclLink> {
    let mut out = Vec::new();
    let Some(items) = d.json.get(key).and_then(Value::as_array) else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let ptr = format!("/{key}/{i}");
        let span = d.span(&ptr).unwrap_or_default();
        match (item.get("Name").and_then(Value::as_str), item.get("ID")) {
            (Some(name), None) if !name.is_empty() => out.push(AclLink {
                name: name.to_owned(),
                span,
            }),
            (_, Some(_)) => diags.push(
                d.locate(
                    Diagnostic::new(
                        Code::AclMissingReference,
                        d.at(&format!("{ptr}/ID")).unwrap_or(span),
                        format!("{key}[{i}] links a {what} by ID"),
                    ),
                    &format!("{ptr}/ID"),
                )
                .with_help(format!(
                    "link {what}s by Name: IDs are assigned by Consul and differ per cluster"
                )),
            ),
            _ => diags.push(
                Diagnostic::new(Code::MissingField, span, format!("{key}[{i}] has no Name"))
                    .with_help(format!("write `{{ Name = \"<{what} name>\" }}`")),
            ),
        }
    }
    out
}

fn service_identities(d: &Decoded, diags: &mut Diagnostics) -> Vec<ServiceIdentity> {
    let mut out = Vec::new();
    let Some(items) = d.json.get("ServiceIdentities").and_then(Value::as_array) else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let ptr = format!("/ServiceIdentities/{i}");
        let span = d.span(&ptr).unwrap_or_default();
        let Some(name) = item.get("ServiceName").and_then(Value::as_str) else {
            diags.push(
                Diagnostic::new(
                    Code::AclIdentity,
                    span,
                    format!("ServiceIdentities[{i}] has no ServiceName"),
                )
                .with_help("write `{ ServiceName = \"web\" }`"),
            );
            continue;
        };
        if let Some(msg) = mesh_semantics::acl::validate_service_identity_name(name) {
            diags.push(
                d.locate(
                    Diagnostic::new(
                        Code::AclIdentity,
                        d.at(&format!("{ptr}/ServiceName")).unwrap_or(span),
                        msg,
                    ),
                    &format!("{ptr}/ServiceName"),
                )
                .with_help("service identity names are lower-case letters, digits, '-' and '_'"),
            );
        }
        out.push(ServiceIdentity {
            service_name: name.to_owned(),
            datacenters: strings(item.get("Datacenters")),
            span,
        });
    }
    out
}

fn node_identities(d: &Decoded, diags: &mut Diagnostics) -> Vec<NodeIdentity> {
    let mut out = Vec::new();
    let Some(items) = d.json.get("NodeIdentities").and_then(Value::as_array) else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let span = d.span(&format!("/NodeIdentities/{i}")).unwrap_or_default();
        let name = item.get("NodeName").and_then(Value::as_str).unwrap_or("");
        let dc = item.get("Datacenter").and_then(Value::as_str).unwrap_or("");
        if let Some(msg) = mesh_semantics::acl::validate_node_identity(name, dc) {
            diags.push(
                Diagnostic::new(Code::AclIdentity, span, msg)
                    .with_help("write `{ NodeName = \"node-1\", Datacenter = \"dc1\" }`"),
            );
            continue;
        }
        out.push(NodeIdentity {
            node_name: name.to_owned(),
            datacenter: dc.to_owned(),
            span,
        });
    }
    out
}

fn role(d: &Decoded, span: Span, diags: &mut Diagnostics) -> Option<AclRole> {
    let name = required_name(d, span, "acl-role", diags)?;
    check_name(
        d,
        &name,
        mesh_semantics::acl::validate_role_name,
        diags,
        span,
    );
    Some(AclRole {
        name,
        description: str_at(d, "Description").unwrap_or_default().to_owned(),
        policies: links(d, "Policies", "policy", diags),
        service_identities: service_identities(d, diags),
        node_identities: node_identities(d, diags),
        span,
    })
}

/// Parses `env:VAR` or `file:path`.
pub fn secret_source(text: &str) -> Result<SecretSource, String> {
    match text.split_once(':') {
        Some(("env", var)) if is_env_name(var) => Ok(SecretSource::Env(var.to_owned())),
        Some(("file", path)) if !path.is_empty() => Ok(SecretSource::File(path.to_owned())),
        _ => Err(format!(
            "\"{text}\" is not a secret source: write \"env:VARIABLE\" or \"file:path\""
        )),
    }
}

fn is_env_name(v: &str) -> bool {
    !v.is_empty()
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !v.starts_with(|c: char| c.is_ascii_digit())
}

/// An inline-certificate's private key in a repository: a literal `PrivateKey` is E0504 (and
/// dropped, so its value goes no further); `PrivateKeyFrom` must name a secret source. Apply
/// reads the source before the first write (`mesh_model::entry_secret`).
pub(crate) fn inline_certificate_key(
    e: &mut mesh_model::ConfigEntry,
    at: &FieldSpans,
    diags: &mut Diagnostics,
) {
    use mesh_model::entry_secret::{INLINE_CERTIFICATE, PRIVATE_KEY, PRIVATE_KEY_FROM};
    let span = e.span();
    let mesh_model::ConfigEntry::Other(cert) = e else {
        return;
    };
    if cert.kind != INLINE_CERTIFICATE {
        return;
    }
    if cert.body.remove(PRIVATE_KEY).is_some() {
        literal_secret(
            diags,
            at.field("/PrivateKey").unwrap_or(span),
            PRIVATE_KEY,
            "write `PrivateKeyFrom = \"env:VAR\"` or `PrivateKeyFrom = \"file:PATH\"`: apply \
             reads the key from there and sends it to Consul",
        );
    }
    if let Some(Value::String(r)) = cert.body.get(PRIVATE_KEY_FROM) {
        if let Err(msg) = secret_source(r.as_str()) {
            diags.push(
                Diagnostic::new(
                    Code::SecretSource,
                    at.field("/PrivateKeyFrom").unwrap_or(span),
                    msg,
                )
                .with_field(PRIVATE_KEY_FROM)
                .with_help("for example `PrivateKeyFrom = \"env:GATEWAY_KEY\"`"),
            );
        }
    }
}

/// `what` is the field's path (`SecretID`, `Config.Token`), `span` where it is written.
fn literal_secret(diags: &mut Diagnostics, span: Span, what: &str, hint: &str) {
    diags.push(
        Diagnostic::new(
            Code::LiteralSecret,
            span,
            format!("{what} is a secret and must not be written in the repository"),
        )
        .with_field(what)
        .with_help(hint.to_owned()),
    );
}

fn token(d: &Decoded, span: Span, diags: &mut Diagnostics) -> Option<AclToken> {
    let name = required_name(d, span, "acl-token", diags)?;
    check_name(
        d,
        &name,
        mesh_semantics::acl::validate_role_name,
        diags,
        span,
    );
    if d.json.contains_key("SecretID") {
        literal_secret(
            diags,
            d.at("/SecretID").unwrap_or(span),
            "SecretID",
            "remove it: Consul generates the secret, or write `SecretIDFrom = \"env:VAR\"` to \
             supply one at apply time",
        );
    }
    let secret_id_from = match str_at(d, "SecretIDFrom") {
        None => None,
        Some(s) => match secret_source(s) {
            Ok(src) => Some(src),
            Err(msg) => {
                diags.push(
                    d.locate(
                        Diagnostic::new(
                            Code::SecretSource,
                            d.at("/SecretIDFrom").unwrap_or(span),
                            msg,
                        ),
                        "/SecretIDFrom",
                    )
                    .with_help("for example `SecretIDFrom = \"env:WEB_TOKEN\"`"),
                );
                None
            }
        },
    };
    Some(AclToken {
        name,
        description: str_at(d, "Description").unwrap_or_default().to_owned(),
        policies: links(d, "Policies", "policy", diags),
        roles: links(d, "Roles", "role", diags),
        service_identities: service_identities(d, diags),
        node_identities: node_identities(d, diags),
        local: d
            .json
            .get("Local")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        secret_id_from,
        span,
    })
}

fn ca_config(mut d: Decoded, span: Span, diags: &mut Diagnostics) -> Option<CaConfig> {
    let provider = str_at(&d, "Provider").unwrap_or("consul").to_owned();
    let mut config = match d.json.remove("Config") {
        Some(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    for key in ["Token", "PrivateKey"] {
        if config.remove(key).is_some() {
            literal_secret(
                diags,
                d.at(&format!("/Config/{key}")).unwrap_or(span),
                &format!("Config.{key}"),
                if key == "Token" {
                    "reference the Vault token with `TokenFrom = \"env:VAULT_TOKEN\"`"
                } else {
                    "let the consul provider generate its key, or manage the CA key outside git"
                },
            );
        }
    }
    let token_from = match config.remove("TokenFrom") {
        Some(Value::String(s)) => match secret_source(&s) {
            Ok(src) => Some(src),
            Err(msg) => {
                diags.push(d.locate(
                    Diagnostic::new(
                        Code::SecretSource,
                        d.at("/Config/TokenFrom").unwrap_or(span),
                        msg,
                    ),
                    "/Config/TokenFrom",
                ));
                None
            }
        },
        _ => None,
    };
    let ca = CaConfig {
        provider,
        config,
        force_without_cross_signing: d
            .json
            .get("ForceWithoutCrossSigning")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        token_from,
        span,
    };
    let fields = FieldSpans::of(&d);
    for mut diag in mesh_semantics::ca_config::validate(&ca) {
        // Point at the field the problem names, where it is written.
        fields.place(&mut diag);
        diags.push(diag);
    }
    d.json.clear();
    Some(ca)
}

/// `mesh-gitops.hcl`.
pub(crate) fn settings(node: &Node, diags: &mut Diagnostics) -> Settings {
    let d = decode_with(node, &schema::SETTINGS, &[], diags);
    let mut s = Settings {
        span: Some(node.span),
        ..Settings::default()
    };
    if let Some(dc) = str_at(&d, "datacenter") {
        if valid_id(dc) {
            s.datacenter = dc.to_owned();
        } else {
            diags.push(
                d.locate(
                    Diagnostic::new(
                        Code::Settings,
                        d.at("/datacenter").unwrap_or(node.span),
                        format!("invalid datacenter name \"{dc}\""),
                    ),
                    "/datacenter",
                )
                .with_help("datacenter names use letters, digits, '-' and '_'"),
            );
        }
    }
    if let Some(owner) = str_at(&d, "owner") {
        if valid_id(owner) {
            s.owner = owner.to_owned();
        } else {
            diags.push(
                d.locate(
                    Diagnostic::new(
                        Code::Settings,
                        d.at("/owner").unwrap_or(node.span),
                        format!("invalid owner \"{owner}\""),
                    ),
                    "/owner",
                )
                .with_help(
                    "the owner is written into Consul KV paths and Meta: use letters, digits, \
                     '-', '_' and '.'",
                ),
            );
        }
    }
    if let Some(acl) = d.json.get("acl").and_then(Value::as_object) {
        s.acl.enabled = acl.get("enabled").and_then(Value::as_bool).unwrap_or(true);
        match acl.get("default_policy").and_then(Value::as_str) {
            None | Some("allow") => s.acl.default_policy = DefaultPolicy::Allow,
            Some("deny") => s.acl.default_policy = DefaultPolicy::Deny,
            Some(other) => diags.push(
                d.locate(
                    Diagnostic::new(
                        Code::Settings,
                        d.at("/acl/default_policy").unwrap_or(node.span),
                        format!("invalid acl default_policy \"{other}\""),
                    ),
                    "/acl/default_policy",
                )
                .with_help("default_policy is \"allow\" or \"deny\""),
            ),
        }
    }
    s.guardrails = strings(d.json.get("guardrails"));
    s.notifications = notifications(&d, node.span, diags);
    s
}

/// `notifications { webhook {...} slack {...} github {...} }`: secret references only.
fn notifications(d: &Decoded, span: Span, diags: &mut Diagnostics) -> Notifications {
    let mut n = Notifications::default();
    let Some(block) = d.json.get("notifications").and_then(Value::as_object) else {
        return n;
    };
    let secret = |channel: &str, field: &str, diags: &mut Diagnostics| {
        let pointer = format!("/notifications/{channel}/{field}");
        let text = block.get(channel)?.get(field)?.as_str()?;
        match secret_source(text) {
            Ok(source) => Some(source),
            Err(why) => {
                diags.push(
                    d.locate(
                        Diagnostic::new(Code::Settings, d.at(&pointer).unwrap_or(span), why),
                        &pointer,
                    )
                    .with_help(
                        "the reconciler reads the URL or token from the environment variable or \
                         the file when a commit declaring it passes the gate",
                    ),
                );
                None
            }
        }
    };
    for (channel, literal, from) in [
        ("webhook", "url", "url_from"),
        ("slack", "url", "url_from"),
        ("github", "token", "token_from"),
    ] {
        if block.get(channel).and_then(|c| c.get(literal)).is_some() {
            let pointer = format!("/notifications/{channel}/{literal}");
            literal_secret(
                diags,
                d.at(&pointer).unwrap_or(span),
                &format!("notifications.{channel}.{literal}"),
                &format!("write `{from} = \"env:VAR\"` or `{from} = \"file:path\"` instead"),
            );
        }
    }
    n.webhook = secret("webhook", "url_from", diags);
    n.slack = secret("slack", "url_from", diags);
    if let Some(github) = block.get("github").and_then(Value::as_object) {
        let repository = github.get("repository").and_then(Value::as_str);
        let valid = repository.is_some_and(|r| {
            r.split_once('/')
                .is_some_and(|(o, name)| valid_id(o) && valid_id(name))
        });
        if !valid {
            diags.push(
                Diagnostic::new(
                    Code::Settings,
                    d.at("/notifications/github/repository")
                        .or(d.at("/notifications/github"))
                        .unwrap_or(span),
                    "github notifications need `repository = \"owner/name\"`",
                )
                .with_field("notifications.github.repository")
                .with_help("the repository whose commits get the status, e.g. \"platform/mesh\""),
            );
        }
        let token = secret("github", "token_from", diags);
        if github.get("token_from").is_none() && github.get("token").is_none() {
            diags.push(
                Diagnostic::new(
                    Code::Settings,
                    d.at("/notifications/github").unwrap_or(span),
                    "github notifications need `token_from`",
                )
                .with_help(
                    "a token that may write commit statuses: `token_from = \"env:GITHUB_TOKEN\"`",
                ),
            );
        }
        if let (Some(repository), Some(token), true) = (repository, token, valid) {
            n.github = Some(GithubStatus {
                repository: repository.to_owned(),
                token,
                api_url: github
                    .get("api_url")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                context: github
                    .get("context")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
        }
    }
    n
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_sources_parse_env_and_file_only() {
        assert_eq!(
            secret_source("env:WEB_TOKEN"),
            Ok(SecretSource::Env("WEB_TOKEN".into()))
        );
        assert_eq!(
            secret_source("file:/run/secrets/web"),
            Ok(SecretSource::File("/run/secrets/web".into()))
        );
        assert!(secret_source("vault:secret/web").is_err());
        assert!(secret_source("env:1BAD").is_err());
        assert!(secret_source("b7c9-literal").is_err());
    }

    #[test]
    fn embedded_text_maps_lines_of_a_heredoc_back_to_the_file() {
        let source = "Rules = <<EOF\nservice \"web\" {\n  policy = \"nope\"\n}\nEOF\n";
        let rules = "service \"web\" {\n  policy = \"nope\"\n}\n";
        let region = Span::new(FileId(0), 8, source.len() - 1);
        let map = EmbeddedText::new(source, region, rules);
        // "nope" inside the rules text ...
        let at = rules.find("\"nope\"").unwrap();
        let mapped = map.map(Span::new(RULES_FILE, at, at + 6));
        assert_eq!(
            &source[mapped.start as usize..mapped.end as usize],
            "\"nope\""
        );
        assert_eq!(mapped.file, FileId(0));
    }
}
