//! The rules Consul's state store checks across entries when one is written
//! (`validateProposedConfigEntryInGraph` and `validateProposedConfigEntryInServiceGraph` in
//! `agent/consul/state/config_entry.go`), beyond the L7-intentions rule in `config_entry`.
//!
//! Two groups. [`validate_set`] holds for a whole set of entries, whichever was written last:
//! JWT providers that intentions name exist, an ingress listener's protocol is its services'.
//! [`validate_write`] is about the entry being written and what it replaces: permissive mutual
//! TLS against the mesh entry (allowed to stay, not to be newly set), and a gateway name already
//! taken by the other gateway kind. A repository is written as a whole, so the loader checks
//! every entry as a write with nothing before it.

use crate::config_entry::protocol_of;
use mesh_diagnostics::{Code, Diagnostic};
use mesh_model::{ConfigEntry, OtherEntry};
use serde_json::Value;
use std::collections::BTreeSet;

/// The rules that hold for a whole set of entries.
pub fn validate_set(entries: &[ConfigEntry]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let providers: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| match e {
            ConfigEntry::Other(o) if o.kind == "jwt-provider" => Some(o.name.as_str()),
            _ => None,
        })
        .collect();
    for e in entries {
        match e {
            ConfigEntry::ServiceIntentions(i) => {
                // `getReferencedProviderNames`: the entry's JWT and every permission's.
                let mut named = BTreeSet::new();
                let mut jwts: Vec<&Value> = i.jwt.iter().collect();
                for s in &i.sources {
                    jwts.extend(s.permissions.iter().filter_map(|p| p.jwt.as_ref()));
                }
                for jwt in jwts {
                    for p in jwt
                        .get("Providers")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(name) = p.get("Name").and_then(Value::as_str) {
                            named.insert(name);
                        }
                    }
                }
                for name in named.into_iter().filter(|n| !providers.contains(n)) {
                    out.push(
                        Diagnostic::new(
                            Code::MissingEntryReference,
                            i.span,
                            format!(
                                "Referenced JWT Provider does not exist. Provider Name: {name}"
                            ),
                        )
                        .with_field("JWT")
                        .with_help(format!(
                            "define a jwt-provider entry named {name:?}, or correct the name"
                        )),
                    );
                }
            }
            ConfigEntry::Other(o) if o.kind == "ingress-gateway" => {
                if let Some(d) = ingress_protocols(o, entries, false) {
                    out.push(d);
                }
            }
            _ => {}
        }
    }
    out
}

/// An ingress listener's services have the listener's protocol. When another entry is written
/// (`enforce` false), a TCP listener may front a service of another protocol whose discovery
/// chain starts at its resolver (no router, no splitter); writing the ingress entry itself
/// enforces the match (`enforceIngressProtocolsMatch` in
/// `validateProposedConfigEntryInServiceGraph`).
fn ingress_protocols(o: &OtherEntry, entries: &[ConfigEntry], enforce: bool) -> Option<Diagnostic> {
    let listeners = o.body.get("Listeners").and_then(Value::as_array)?;
    for (i, l) in listeners.iter().enumerate() {
        let expected = l.get("Protocol").and_then(Value::as_str).unwrap_or("tcp");
        let services = l.get("Services").and_then(Value::as_array);
        for (j, s) in services.into_iter().flatten().enumerate() {
            let name = s.get("Name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() || name == "*" {
                continue;
            }
            let protocol = protocol_of(name, entries);
            let resolver_on_top = || {
                !entries.iter().any(|e| {
                    e.name() == name
                        && matches!(e.kind().as_str(), "service-router" | "service-splitter")
                })
            };
            if protocol != expected && (enforce || expected != "tcp" || !resolver_on_top()) {
                return Some(
                    Diagnostic::new(
                        Code::GatewayListener,
                        o.span,
                        format!(
                            "service {name:?} has protocol {protocol:?}, which does not match defined listener protocol {expected:?}"
                        ),
                    )
                    .with_field(format!("Listeners[{i}].Services[{j}]"))
                    .with_help(format!(
                        "give {name:?} a service-defaults entry with Protocol = {expected:?}, or change the listener's protocol"
                    )),
                );
            }
        }
    }
    None
}

/// The rules about `written` replacing `previous` (`None`: a new entry) among `entries`.
pub fn validate_write(
    entries: &[ConfigEntry],
    written: &ConfigEntry,
    previous: Option<&ConfigEntry>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    // `checkMutualTLSMode`: setting permissive needs the mesh entry's permission; staying
    // permissive does not.
    let mode = |e: &ConfigEntry| match e {
        ConfigEntry::ServiceDefaults(sd) => sd.rest.get("MutualTLSMode").cloned(),
        ConfigEntry::ProxyDefaults(pd) => pd.rest.get("MutualTLSMode").cloned(),
        _ => None,
    };
    let new_mode = mode(written);
    if new_mode.as_ref().and_then(Value::as_str) == Some("permissive")
        && previous.and_then(mode) != new_mode
    {
        let allowed = entries.iter().any(|e| match e {
            ConfigEntry::Mesh(m) => m
                .rest
                .get("AllowEnablingPermissiveMutualTLS")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            _ => false,
        });
        if !allowed {
            out.push(
                Diagnostic::new(
                    Code::PermissiveMutualTls,
                    written.span(),
                    "cannot set MutualTLSMode=permissive because AllowEnablingPermissiveMutualTLS=false in the mesh config entry",
                )
                .with_field("MutualTLSMode")
                .with_help("set AllowEnablingPermissiveMutualTLS = true in the mesh entry, or leave MutualTLSMode strict"),
            );
        }
    }
    if let ConfigEntry::Other(o) = written {
        if o.kind == "ingress-gateway" {
            out.extend(ingress_protocols(o, entries, true));
        }
    }
    // `checkGatewayClash`: one name, one gateway kind.
    if let ConfigEntry::Other(o) = written {
        let other = match o.kind.as_str() {
            "ingress-gateway" => Some("terminating-gateway"),
            "terminating-gateway" => Some("ingress-gateway"),
            _ => None,
        };
        if let Some(other) = other {
            if entries
                .iter()
                .any(|e| e.kind().as_str() == other && e.name() == o.name)
            {
                out.push(
                    Diagnostic::new(
                        Code::GatewayService,
                        o.span,
                        format!(
                            "cannot create a {:?} config entry with name {:?}, a {other:?} config entry with that name already exists",
                            o.kind, o.name
                        ),
                    )
                    .with_field("Name")
                    .with_help("a gateway service is one kind of gateway; rename one of the two entries"),
                );
            }
        }
    }
    out
}

/// The rule about deleting the entry `kind`/`name` from a set that keeps `remaining`
/// (`validateJWTProviderIsReferenced` in `agent/consul/state/config_entry.go`): a JWT provider an
/// intention names stays.
pub fn validate_delete(remaining: &[ConfigEntry], kind: &str, name: &str) -> Vec<Diagnostic> {
    if kind != "jwt-provider" {
        return Vec::new();
    }
    let names = |jwt: Option<&Value>| {
        jwt.and_then(|j| j.get("Providers"))
            .and_then(Value::as_array)
            .is_some_and(|ps| {
                ps.iter()
                    .any(|p| p.get("Name").and_then(Value::as_str) == Some(name))
            })
    };
    remaining
        .iter()
        .filter_map(|e| match e {
            ConfigEntry::ServiceIntentions(i)
                if names(i.jwt.as_ref())
                    || i.sources.iter().any(|s| {
                        s.permissions.iter().any(|p| names(p.jwt.as_ref()))
                    }) =>
            {
                Some(
                    Diagnostic::new(
                        Code::MissingEntryReference,
                        i.span,
                        format!(
                            "cannot delete jwt provider config entry referenced by an intention. Provider name: {name}, intention name: {}",
                            i.name
                        ),
                    )
                    .with_help("remove the provider from the intentions first"),
                )
            }
            _ => None,
        })
        .take(1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_model::{MeshEntry, ServiceDefaults, ServiceIntentions};
    use serde_json::json;

    fn other(kind: &str, name: &str, body: Value) -> ConfigEntry {
        ConfigEntry::Other(OtherEntry {
            kind: kind.into(),
            name: name.into(),
            body: body.as_object().unwrap().clone(),
            ..OtherEntry::default()
        })
    }

    fn permissive(name: &str) -> ConfigEntry {
        let mut sd = ServiceDefaults {
            name: name.into(),
            ..ServiceDefaults::default()
        };
        sd.rest.insert("MutualTLSMode".into(), json!("permissive"));
        ConfigEntry::ServiceDefaults(sd)
    }

    #[test]
    fn permissive_mode_needs_the_mesh_entry_to_set_it_not_to_keep_it() {
        let sd = permissive("web");
        let d = validate_write(std::slice::from_ref(&sd), &sd, None);
        assert_eq!(d[0].code, Code::PermissiveMutualTls);
        assert!(validate_write(std::slice::from_ref(&sd), &sd, Some(&sd)).is_empty());
        let mut mesh = MeshEntry::default();
        mesh.rest
            .insert("AllowEnablingPermissiveMutualTLS".into(), json!(true));
        let set = [ConfigEntry::Mesh(mesh), sd.clone()];
        assert!(validate_write(&set, &sd, None).is_empty());
    }

    #[test]
    fn intentions_name_jwt_providers_that_exist() {
        let mut i = ServiceIntentions {
            name: "api".into(),
            ..ServiceIntentions::default()
        };
        i.jwt = Some(json!({"Providers": [{"Name": "okta"}]}));
        let set = vec![ConfigEntry::ServiceIntentions(i)];
        let d = validate_set(&set);
        assert_eq!(
            d[0].message,
            "Referenced JWT Provider does not exist. Provider Name: okta"
        );
        let mut with = set.clone();
        with.push(other("jwt-provider", "okta", json!({})));
        assert!(validate_set(&with).is_empty());
    }

    #[test]
    fn ingress_listeners_match_their_services_protocol_and_gateway_names_do_not_clash() {
        let ingress = other(
            "ingress-gateway",
            "in",
            json!({"Listeners": [{"Port": 80, "Protocol": "http", "Services": [{"Name": "web"}, {"Name": "*"}]}]}),
        );
        let d = validate_set(std::slice::from_ref(&ingress));
        assert_eq!(
            d[0].message,
            "service \"web\" has protocol \"tcp\", which does not match defined listener protocol \"http\""
        );
        let web = ConfigEntry::ServiceDefaults(ServiceDefaults {
            name: "web".into(),
            protocol: Some("http".into()),
            ..ServiceDefaults::default()
        });
        assert!(validate_set(&[web, ingress.clone()]).is_empty());
        let term = other("terminating-gateway", "in", json!({}));
        let d = validate_write(&[ingress, term.clone()], &term, None);
        assert!(d[0]
            .message
            .contains("a \"ingress-gateway\" config entry with that name already exists"));
    }
}
