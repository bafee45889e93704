//! consul-k8s custom resources (`apiVersion: consul.hashicorp.com/v1alpha1`), mapped to the
//! config entries the consul-k8s controller would write.

use crate::decode::entry_span;
use crate::entry::{config_entry_located, FieldSpans};
use mesh_diagnostics::{Code, Diagnostic, Diagnostics, Span};
use mesh_model::ConfigEntry;
use mesh_syntax::{Entry, EntryStyle, Node, NodeKind};

/// CRD kind -> config entry kind.
const KINDS: &[(&str, &str)] = &[
    ("ServiceIntentions", "service-intentions"),
    ("ServiceDefaults", "service-defaults"),
    ("ProxyDefaults", "proxy-defaults"),
    ("Mesh", "mesh"),
    ("ServiceRouter", "service-router"),
    ("ServiceSplitter", "service-splitter"),
    ("ServiceResolver", "service-resolver"),
    ("IngressGateway", "ingress-gateway"),
    ("TerminatingGateway", "terminating-gateway"),
    ("ExportedServices", "exported-services"),
    ("SamenessGroup", "sameness-group"),
    ("JWTProvider", "jwt-provider"),
    ("ControlPlaneRequestLimit", "control-plane-request-limit"),
];

pub(crate) fn is_k8s_resource(node: &Node) -> bool {
    node.get_ci("apiVersion").is_some()
}

/// Maps one resource. Resources of other API groups are reported as ignored.
pub(crate) fn resource(node: &Node, diags: &mut Diagnostics) -> Option<(ConfigEntry, FieldSpans)> {
    let api = node.get_ci("apiVersion")?;
    let api_version = api.value.as_str().unwrap_or("");
    let kind_entry = node.get_ci("kind");
    let kind = kind_entry.and_then(|k| k.value.as_str()).unwrap_or("");
    if !api_version.starts_with("consul.hashicorp.com/") {
        diags.push(
            Diagnostic::new(
                Code::ForeignResource,
                api.value.span,
                format!("{kind} ({api_version}) is not a Consul resource; ignored"),
            )
            .with_help("add the file to .meshignore to silence this"),
        );
        return None;
    }
    let Some(&(_, entry_kind)) = KINDS.iter().find(|(k, _)| *k == kind) else {
        let span = kind_entry.map_or(node.span, entry_span);
        diags.push(
            Diagnostic::new(
                Code::UnknownKind,
                span,
                format!("consul-k8s kind \"{kind}\" has no config entry"),
            )
            .with_field("kind")
            .with_help(format!(
                "mesh-gitops maps these kinds: {}",
                KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            )),
        );
        return None;
    };
    let kind_span = kind_entry.map(|k| k.value.span).unwrap_or(node.span);
    let metadata = node.get_ci("metadata");
    let meta_name = metadata
        .and_then(|m| m.value.get_ci("name"))
        .and_then(|n| n.value.as_str().map(|s| (s.to_owned(), n.value.span)));
    let Some((meta_name, meta_name_span)) = meta_name else {
        diags.push(
            Diagnostic::new(
                Code::MissingField,
                node.span,
                format!("{kind} has no metadata.name"),
            )
            .with_help("add `metadata: { name: ... }`"),
        );
        return None;
    };
    let spec = node.get_ci("spec");
    let spec_entries: Vec<Entry> = match spec.map(|s| &s.value.kind) {
        Some(NodeKind::Object(entries)) => entries.clone(),
        Some(NodeKind::Null) | None => Vec::new(),
        Some(_) => {
            let s = spec.map(|s| s.value.span).unwrap_or(node.span);
            diags.push(Diagnostic::new(
                Code::WrongType,
                s,
                "spec: expected an object",
            ));
            return None;
        }
    };
    let mut entries = vec![string_entry("Kind", entry_kind, kind_span)];
    let mut rest = Vec::new();
    let mut name = Some((meta_name, meta_name_span));
    for e in spec_entries {
        if entry_kind == "service-intentions" && e.key.eq_ignore_ascii_case("destination") {
            // The destination names the entry; metadata.name is only the resource's name.
            name = destination_name(&e, diags);
            continue;
        }
        rest.push(e);
    }
    if entry_kind == "service-intentions"
        && spec.and_then(|s| s.value.get_ci("destination")).is_none()
    {
        diags.push(
            Diagnostic::new(
                Code::MissingField,
                spec.map(|s| s.key_span).unwrap_or(node.span),
                "ServiceIntentions has no spec.destination",
            )
            .with_help("add `destination: { name: <service> }`"),
        );
        return None;
    }
    let (name, name_span) = name?;
    if entry_kind != "mesh" {
        entries.push(string_entry("Name", &name, name_span));
    }
    entries.extend(rest);
    let synthetic = Node::new(node.span, NodeKind::Object(entries));
    config_entry_located(&synthetic, diags)
}

fn destination_name(e: &Entry, diags: &mut Diagnostics) -> Option<(String, Span)> {
    let mut name = None;
    for d in e.value.as_object().unwrap_or(&[]) {
        match d.key.to_ascii_lowercase().as_str() {
            "name" => name = d.value.as_str().map(|s| (s.to_owned(), d.value.span)),
            "namespace" | "partition" => diags.push(
                Diagnostic::new(
                    Code::EnterpriseOnly,
                    entry_span(d),
                    format!(
                        "destination.{}: namespaces and partitions are a Consul Enterprise feature",
                        d.key
                    ),
                )
                .with_field(format!("destination.{}", d.key))
                .with_help("remove the key; Consul CE rejects it"),
            ),
            _ => diags.push(
                Diagnostic::new(
                    Code::UnknownKey,
                    entry_span(d),
                    format!("invalid key \"{}\" in spec.destination", d.key),
                )
                .with_field(format!("destination.{}", d.key)),
            ),
        }
    }
    if name.is_none() {
        diags.push(
            Diagnostic::new(
                Code::MissingField,
                e.value.span,
                "spec.destination has no name",
            )
            .with_help("write `destination: { name: <service> }`"),
        );
    }
    name
}

fn string_entry(key: &str, value: &str, span: Span) -> Entry {
    Entry {
        key: key.to_owned(),
        key_span: span,
        labels: Vec::new(),
        value: Node::new(span, NodeKind::String(value.to_owned())),
        style: EntryStyle::Attribute,
    }
}
