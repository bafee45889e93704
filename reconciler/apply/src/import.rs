//! `mesh-gitops import`: a repository written from what a control plane holds, so a team with
//! a running Consul starts from it. Every config entry, the ACL policies, roles and tokens, and
//! the CA configuration become HCL files a `plan` reads back with no change.
//!
//! Secrets never leave Consul: the client strips `SecretID`, `PrivateKey` and `Token` from every
//! answer, and each token is written with a `SecretIDFrom` placeholder the operator points at
//! the real secret (an inline-certificate with `PrivateKeyFrom = "env:CONSUL_CERT_KEY_<NAME>"`). The ownership marks of the owner imported for are dropped from the files
//! (the planner adds them back), so the files say what the entries are, not who wrote them.

use crate::hcl_out;
use crate::observe::acl_type;
use crate::{ApplyError, Result};
use mesh_consul::{AclObject, CaConfiguration, Client, StoredEntry};
use mesh_model::{AclSettings, ConfigEntry, DefaultPolicy, EntryKind};
use mesh_plan::acl::{inventory_key, AclKind, Inventory};
use mesh_wire as wire;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// What to import for.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The owner the repository is for; else the one owner whose mark the entries carry, else
    /// `mesh-gitops`.
    pub owner: Option<String>,
    /// The ACL settings for `mesh-gitops.hcl`; else read from the agent, else from whether the
    /// ACL endpoints answer.
    pub acl: Option<AclSettings>,
}

/// The repository to write: files by path relative to its root, in path order.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    pub files: BTreeMap<String, String>,
    pub owner: String,
    /// Objects read but not written, each with why.
    pub skipped: Vec<String>,
    /// How many objects of each kind were written.
    pub counts: BTreeMap<String, usize>,
}

/// Consul's built-in policies (`structs.ACLPolicyGlobalManagementID` and
/// `ACLPolicyGlobalReadOnlyID` in agent/structs/acl.go) and the anonymous token
/// (`acl.AnonymousTokenID`): they exist in every cluster and cannot be managed from a repository.
const BUILTIN_POLICY_PREFIX: &str = "00000000-0000-0000-0000-00000000000";
const ANONYMOUS_TOKEN: &str = "00000000-0000-0000-0000-000000000002";

fn read_error(what: &str) -> impl FnOnce(mesh_consul::ConsulError) -> ApplyError + '_ {
    move |source| ApplyError::Read {
        what: what.to_owned(),
        source,
    }
}

/// Reads the control plane behind `client` and builds the repository.
pub async fn import(client: &Client, opts: &ImportOptions) -> Result<Imported> {
    let mut entries: Vec<StoredEntry> = Vec::new();
    for kind in EntryKind::CONSUL_KINDS {
        let list = client
            .config_entries(kind)
            .await
            .map_err(read_error("cannot list config entries"))?;
        entries.extend(list.value);
    }
    let owner = opts
        .owner
        .clone()
        .or_else(|| single_owner(&entries))
        .unwrap_or_else(|| mesh_model::Settings::default().owner);
    let mut out = Imported {
        owner: owner.clone(),
        ..Imported::default()
    };
    for e in &entries {
        let body = entry_body(&e.entry, &owner);
        match recorded_source(&e.entry, &owner) {
            // Back where the owner's repository declared it, so the source mark the planner
            // writes is the one Consul holds.
            Some(path) if is_yaml(&path) => {
                let text = serde_json::to_string_pretty(&Value::Object(body)).unwrap_or_default();
                let file = out.files.entry(path).or_default();
                file.push_str(&format!("---\n{text}\n"));
                *out.counts.entry("config-entry".into()).or_default() += 1;
            }
            Some(path) if !out.files.contains_key(&path) => {
                let text = if path.ends_with(".json") {
                    serde_json::to_string_pretty(&Value::Object(body)).unwrap_or_default() + "\n"
                } else {
                    hcl_out::file(&body)
                };
                out.files.insert(path, text);
                *out.counts.entry("config-entry".into()).or_default() += 1;
            }
            _ => {
                let dir = match e.entry.kind() {
                    EntryKind::ServiceIntentions => "intentions".to_owned(),
                    k => format!("config/{}", k.as_str()),
                };
                out.add(&dir, e.entry.name(), "config-entry", &body);
            }
        }
    }
    let acl = match &opts.acl {
        Some(a) => *a,
        None => acl_settings(client).await?,
    };
    if acl.enabled {
        import_acl(client, &owner, &mut out).await?;
    }
    if let Some(ca) = client
        .ca_configuration()
        .await
        .map_err(read_error("cannot read the CA configuration"))?
    {
        out.add("ca", "ca-config", "ca-config", &ca_body(&ca));
    }
    let dc = agent_datacenter(client).await;
    out.files
        .insert("mesh-gitops.hcl".into(), settings_file(&dc, &owner, acl));
    Ok(out)
}

impl Imported {
    /// Adds `dir/<name>.hcl`, a name made safe for a file and unique in its directory.
    fn add(&mut self, dir: &str, name: &str, what: &str, body: &Map<String, Value>) {
        let stem = file_stem(name);
        let mut path = format!("{dir}/{stem}.hcl");
        let mut n = 2;
        while self.files.contains_key(&path) {
            path = format!("{dir}/{stem}-{n}.hcl");
            n += 1;
        }
        self.files.insert(path, hcl_out::file(body));
        *self.counts.entry(what.to_owned()).or_default() += 1;
    }
}

/// Letters, digits, `-`, `_` and `.` kept; anything else (`*`, `/`) spelled out or replaced.
fn file_stem(name: &str) -> String {
    if name == "*" {
        return "_wildcard".into();
    }
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

fn is_yaml(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

/// The file the owner's mark says the entry came from, when it is a plain relative path of a
/// config-entry file (HCL, JSON or YAML; never a Nomad job, which declares no entry).
fn recorded_source(e: &ConfigEntry, owner: &str) -> Option<String> {
    let meta = e.meta();
    if meta.get(mesh_plan::OWNER_KEY).map(String::as_str) != Some(owner) {
        return None;
    }
    let path = meta.get(mesh_plan::SOURCE_KEY)?;
    let plain = std::path::Path::new(path)
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    let kind = path.ends_with(".hcl") || path.ends_with(".json") || is_yaml(path);
    let nomad = path.ends_with(".nomad.hcl") || path == "mesh-gitops.hcl";
    (plain && kind && !nomad && !path.is_empty()).then(|| path.clone())
}

fn single_owner(entries: &[StoredEntry]) -> Option<String> {
    let owners: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| mesh_plan::ownership::owner_of(&e.entry))
        .collect();
    (owners.len() == 1).then(|| owners.into_iter().next().unwrap_or_default().to_owned())
}

/// The entry as the repository declares it: the owner's marks (which the planner writes)
/// dropped. Another owner's mark stays, so `plan` says the entry is theirs.
fn entry_body(e: &ConfigEntry, owner: &str) -> Map<String, Value> {
    let mut e = e.clone();
    let meta = e.meta_mut();
    if meta.get(mesh_plan::OWNER_KEY).map(String::as_str) == Some(owner) {
        meta.remove(mesh_plan::OWNER_KEY);
        meta.remove(mesh_plan::SOURCE_KEY);
    }
    let mut body = match e.to_json() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    // The client never reads an inline-certificate's private key: the file names where it is.
    if e.kind().as_str() == mesh_model::entry_secret::INLINE_CERTIFICATE {
        body.remove(mesh_model::entry_secret::PRIVATE_KEY);
        body.insert(
            mesh_model::entry_secret::PRIVATE_KEY_FROM.into(),
            json!(format!("env:{}", key_variable(e.name()))),
        );
    }
    body
}

/// `CONSUL_CERT_KEY_<NAME>`: the placeholder variable of an imported inline-certificate's key.
fn key_variable(name: &str) -> String {
    let name: String = name
        .to_ascii_uppercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("CONSUL_CERT_KEY_{name}")
}

/// The agent's ACL settings (`DebugConfig.ACLsEnabled` and the resolver's default policy, as
/// `agent/config/runtime.go` names them); when the agent does not say, ACLs are on with
/// default deny if the ACL endpoints answer, off otherwise.
async fn acl_settings(client: &Client) -> Result<AclSettings> {
    let me = client
        .get_json("/v1/agent/self")
        .await
        .ok()
        .flatten()
        .map(|i| i.value);
    let debug = me.as_ref().and_then(|v| v.get("DebugConfig"));
    let enabled = debug
        .and_then(|d| d.get("ACLsEnabled"))
        .and_then(Value::as_bool);
    let default = debug
        .and_then(|d| {
            d.pointer("/ACLResolverSettings/ACLDefaultPolicy")
                .or_else(|| d.get("ACLDefaultPolicy"))
        })
        .and_then(Value::as_str);
    let enabled = match enabled {
        Some(e) => e,
        None => client.acl_list(acl_type(AclKind::Policy)).await.is_ok(),
    };
    Ok(AclSettings {
        enabled,
        default_policy: if default == Some("allow") {
            DefaultPolicy::Allow
        } else {
            DefaultPolicy::Deny
        },
    })
}

async fn agent_datacenter(client: &Client) -> String {
    client
        .get_json("/v1/agent/self")
        .await
        .ok()
        .flatten()
        .and_then(|i| {
            i.value
                .pointer("/Config/Datacenter")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| mesh_model::Settings::default().datacenter)
}

fn settings_file(dc: &str, owner: &str, acl: AclSettings) -> String {
    let mut body = Map::new();
    body.insert("datacenter".into(), json!(dc));
    body.insert("owner".into(), json!(owner));
    if acl.enabled {
        let policy = match acl.default_policy {
            DefaultPolicy::Allow => "allow",
            DefaultPolicy::Deny => "deny",
        };
        body.insert(
            "acl".into(),
            json!({ "enabled": true, "default_policy": policy }),
        );
    }
    format!(
        "# Imported from a running control plane by `mesh-gitops import`.\n{}",
        hcl_out::file(&body)
    )
}

/// The CA configuration without what Consul adds (indexes, the cluster ID) and with the Vault
/// token, which the client removed, replaced by where it is to come from.
fn ca_body(ca: &CaConfiguration) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("Kind".into(), json!("ca-config"));
    let provider = if ca.provider.is_empty() {
        "consul"
    } else {
        ca.provider.as_str()
    };
    body.insert("Provider".into(), json!(provider));
    if !ca.config.is_empty() {
        body.insert("Config".into(), Value::Object(ca.config.clone()));
    }
    if ca.force_without_cross_signing {
        body.insert("ForceWithoutCrossSigning".into(), json!(true));
    }
    if provider == "vault" {
        body.insert("TokenFrom".into(), json!("env:VAULT_TOKEN"));
    }
    body
}

/// Policies, roles and tokens. A token is named by the owner's inventory when it records it,
/// else by its description; its secret is a placeholder, `env:CONSUL_TOKEN_<NAME>`.
async fn import_acl(client: &Client, owner: &str, out: &mut Imported) -> Result<()> {
    let key = inventory_key(owner);
    let inventory = match client
        .kv_get(&key)
        .await
        .map_err(read_error("cannot read the inventory"))?
    {
        Some((bytes, _)) => Inventory::from_json(&bytes)
            .map_err(|reason| ApplyError::InventoryUnreadable { key, reason })?,
        None => Inventory::default(),
    };
    let mut builtin = BTreeSet::new();
    for kind in AclKind::ALL {
        let list = client
            .acl_list(acl_type(kind))
            .await
            .map_err(|e| ApplyError::AclList {
                kind: kind.as_str(),
                source: e.into(),
            })?;
        let mut names = BTreeSet::new();
        for item in list {
            let id = item.id().to_owned();
            // Lists leave out policy rules; each object is read whole.
            let Some(v) = client.acl_read(acl_type(kind), &id).await? else {
                continue;
            };
            // A link names a built-in policy by its well-known ID (the list may not show the
            // policy itself) or by the name the list showed.
            let builtin_link = v
                .policies()
                .iter()
                .find(|l| l.id.starts_with(BUILTIN_POLICY_PREFIX) || builtin.contains(&l.name))
                .map(|l| l.name.as_str())
                .filter(|n| !n.is_empty());
            if let Some(l) = builtin_link {
                out.skipped.push(format!(
                    "{} {id}: links to the built-in \"{l}\", which a repository cannot manage",
                    kind.as_str()
                ));
                continue;
            }
            match kind {
                AclKind::Policy if id.starts_with(BUILTIN_POLICY_PREFIX) => {
                    let name = v.name();
                    builtin.insert(name.to_owned());
                    out.skipped
                        .push(format!("acl-policy \"{name}\": built into Consul"));
                }
                AclKind::Token if id == ANONYMOUS_TOKEN => {
                    out.skipped
                        .push("acl-token anonymous: built into Consul".to_owned());
                }
                AclKind::Token => {
                    let description = match &v {
                        AclObject::Token(t) => t.description.as_str(),
                        _ => "",
                    };
                    let name = token_name(description, &id, &inventory, &mut names);
                    out.add("acl/tokens", &name, kind.as_str(), &acl_body(&name, &v));
                }
                AclKind::Policy | AclKind::Role => {
                    let name = v.name();
                    let dir = if kind == AclKind::Policy {
                        "acl/policies"
                    } else {
                        "acl/roles"
                    };
                    out.add(dir, name, kind.as_str(), &acl_body(name, &v));
                }
            }
        }
    }
    Ok(())
}

/// The name the inventory records for this AccessorID, else `mesh-gitops: NAME` as the
/// planner describes unnamed tokens, else the description made a name, else the AccessorID's
/// first group; unique among the tokens.
fn token_name(
    description: &str,
    id: &str,
    inventory: &Inventory,
    taken: &mut BTreeSet<String>,
) -> String {
    let recorded = inventory
        .acl()
        .find(|(k, _, r)| *k == AclKind::Token && r.id == id)
        .map(|(_, n, _)| n.to_owned());
    let base = recorded.unwrap_or_else(|| {
        let from = description
            .strip_prefix("mesh-gitops: ")
            .unwrap_or(description);
        let slug: String = from
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let slug: Vec<&str> = slug.split('-').filter(|s| !s.is_empty()).collect();
        let slug = slug.join("-");
        if slug.is_empty() {
            format!("token-{}", id.split('-').next().unwrap_or(id))
        } else {
            slug.chars().take(64).collect()
        }
    });
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// The fields the repository declares for an ACL object, in the order a person reads them.
fn acl_body(name: &str, o: &AclObject) -> Map<String, Value> {
    let kind = match o {
        AclObject::Policy(_) | AclObject::PolicyStub(_) => AclKind::Policy,
        AclObject::Role(_) => AclKind::Role,
        AclObject::Token(_) => AclKind::Token,
    };
    let mut body = Map::new();
    body.insert("Kind".into(), json!(kind.as_str()));
    body.insert("Name".into(), json!(name));
    let description = match o {
        AclObject::Policy(p) => &p.description,
        AclObject::PolicyStub(p) => &p.description,
        AclObject::Role(r) => &r.description,
        AclObject::Token(t) => &t.description,
    };
    if !description.is_empty() {
        body.insert("Description".into(), json!(description));
    }
    let links = |l: &[wire::AclLink]| -> Option<Value> {
        let names: Vec<Value> = l
            .iter()
            .filter(|l| !l.name.is_empty())
            .map(|l| json!({ "Name": l.name }))
            .collect();
        (!names.is_empty()).then(|| json!(names))
    };
    // Identities in their request form: absent and empty fields dropped.
    fn identities<T: serde::Serialize>(items: &[T]) -> Option<Value> {
        let list: Vec<Value> = items.iter().map(wire::request).collect();
        (!list.is_empty()).then(|| json!(list))
    }
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body.insert(k.into(), v);
        }
    };
    match o {
        AclObject::Policy(p) => {
            put("Rules", Some(json!(p.rules)));
            put(
                "Datacenters",
                (!p.datacenters.is_empty()).then(|| json!(p.datacenters)),
            );
        }
        AclObject::PolicyStub(p) => put(
            "Datacenters",
            (!p.datacenters.is_empty()).then(|| json!(p.datacenters)),
        ),
        AclObject::Role(r) => {
            put("Policies", links(&r.policies));
            put("ServiceIdentities", identities(&r.service_identities));
            put("NodeIdentities", identities(&r.node_identities));
        }
        AclObject::Token(t) => {
            put("Policies", links(&t.policies));
            put("Roles", links(&t.roles));
            put("ServiceIdentities", identities(&t.service_identities));
            put("NodeIdentities", identities(&t.node_identities));
            if t.local {
                put("Local", Some(json!(true)));
            }
            let var: String = name
                .to_ascii_uppercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            put(
                "SecretIDFrom",
                Some(json!(format!("env:CONSUL_TOKEN_{var}"))),
            );
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_tokens_are_named() {
        assert_eq!(file_stem("*"), "_wildcard");
        assert_eq!(file_stem("a/b c"), "a_b_c");
        assert_eq!(file_stem(".hidden"), "_.hidden");
        let mut taken = BTreeSet::new();
        let inv = Inventory::default();
        let v = "Token for the web service!";
        assert_eq!(
            token_name(v, "ab-cd", &inv, &mut taken),
            "token-for-the-web-service"
        );
        assert_eq!(
            token_name(v, "ab-cd", &inv, &mut taken),
            "token-for-the-web-service-2"
        );
        let v = "mesh-gitops: api";
        assert_eq!(token_name(v, "ab-cd", &inv, &mut taken), "api");
        let v = "";
        assert_eq!(
            token_name(v, "1234abcd-ef", &inv, &mut taken),
            "token-1234abcd"
        );
    }

    #[test]
    fn a_token_file_has_a_placeholder_and_never_a_secret() {
        let v = AclObject::token(&json!({
            "AccessorID": "a", "SecretID": "s3cr3t", "Description": "d",
            "Policies": [{"ID": "p1", "Name": "web"}], "Local": false
        }))
        .unwrap();
        let text = hcl_out::file(&acl_body("web", &v));
        assert!(
            text.contains("SecretIDFrom = \"env:CONSUL_TOKEN_WEB\""),
            "{text}"
        );
        assert!(!text.contains("s3cr3t") && !text.contains("p1"), "{text}");
    }

    #[test]
    fn an_inline_certificate_file_has_a_key_placeholder_and_never_the_key() {
        let e = ConfigEntry::Other(mesh_model::OtherEntry {
            kind: "inline-certificate".into(),
            name: "gw-cert".into(),
            meta: Default::default(),
            body: json!({"Certificate": "CERT", "PrivateKey": "K3Y"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            span: Default::default(),
        });
        let text = hcl_out::file(&entry_body(&e, "mesh-gitops"));
        assert!(
            text.contains("PrivateKeyFrom = \"env:CONSUL_CERT_KEY_GW_CERT\""),
            "{text}"
        );
        assert!(!text.contains("K3Y") && text.contains("CERT"), "{text}");
    }
}
