//! Consul config entries: from a decoded object to the typed model.

use crate::decode::{closest, entry_span, to_json, Decoded, Decoder, Mode, Schema, SERVER_MANAGED};
use crate::schema;
use mesh_diagnostics::{Code, Diagnostic, Diagnostics, Span};
use mesh_model::{
    ConfigEntry, EntryKind, IntentionAction, MeshEntry, OtherEntry, ProxyDefaults, ServiceDefaults,
    ServiceIntentions,
};
use mesh_syntax::{Node, NodeKind};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The kinds mesh-gitops adds for what Consul has no file format for.
pub const MESH_GITOPS_KINDS: &[&str] = &["acl-policy", "acl-role", "acl-token", "ca-config"];

/// The `Kind` of an object (`Kind` or `kind`, as Consul accepts), with its value span.
pub(crate) fn kind_of(node: &Node) -> Option<(String, Span)> {
    let entry = node.get_ci("kind")?;
    let kind = entry.value.as_str()?;
    Some((kind.to_owned(), entry.value.span))
}

/// Decodes one Consul config entry from an object node, with Consul's decoding rules. This is
/// the decoder the embedded control plane uses for `PUT /v1/config` bodies too.
pub fn decode_config_entry(node: &Node) -> Result<ConfigEntry, Vec<Diagnostic>> {
    let mut diags = Diagnostics::new();
    let entry = config_entry(node, &mut diags);
    match entry {
        Some(e) if !diags.has_errors() => Ok(e),
        _ => Err(diags.into_vec()),
    }
}

/// A config entry as a server answered it, read with the tolerant decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerEntry {
    pub entry: ConfigEntry,
    /// Fields none of our schemas knows (a newer Consul's, Enterprise's `Namespace`), by JSON
    /// pointer, as the server wrote them. Kept to be shown, never compared.
    pub unknown: Map<String, Value>,
    /// The server-managed fields (`Hash`, `Status`, `CreateIndex`, `ModifyIndex`,
    /// `CreateTime`); never compared.
    pub server: Map<String, Value>,
}

/// Decodes a config entry from a server's answer: Consul's field rules as for a file, but a
/// key no schema knows is kept aside instead of failing the read, and the server-managed fields
/// are set apart. A value of the wrong type still fails: that is not an answer we understand.
pub fn decode_server_entry(node: &Node) -> Result<ServerEntry, Vec<Diagnostic>> {
    let mut diags = Diagnostics::new();
    let entry = config_entry_in(node, Mode::Tolerant, &mut diags).map(|(e, _)| e);
    match entry {
        Some(e) if !diags.has_errors() => Ok(e),
        _ => Err(diags.into_vec()),
    }
}

pub(crate) fn config_entry(node: &Node, diags: &mut Diagnostics) -> Option<ConfigEntry> {
    config_entry_located(node, diags).map(|(e, _)| e)
}

/// Where an entry's objects and fields are written, from its decoding: the loader moves a
/// validation problem about a field (`Diagnostic::field`) onto that field's key and value.
#[derive(Debug, Default, Clone)]
pub(crate) struct FieldSpans {
    /// Value span of every decoded object and value, by JSON pointer.
    objects: BTreeMap<String, Span>,
    /// Key-to-value span of every field written with a key, by JSON pointer.
    fields: BTreeMap<String, Span>,
}

impl FieldSpans {
    pub(crate) fn of(d: &Decoded) -> Self {
        FieldSpans {
            objects: d.spans.clone(),
            fields: d.fields.clone(),
        }
    }

    /// Moves a problem about a field (`Diagnostic::field`, relative to the object its span
    /// points at) onto where that field is written: the key's line and column, the span over
    /// the value. A field that is not written (a default) points at the nearest written field
    /// it is inside, or keeps the object.
    pub(crate) fn place(&self, d: &mut Diagnostic) {
        let (Some(span), Some(field)) = (d.span, d.field.as_deref()) else {
            return;
        };
        if let Some((at, path)) = self.resolve(span, field) {
            d.span = Some(at);
            d.field = Some(path);
        }
    }

    /// Where the field at `pointer` (`/PrivateKey`) is written: its key to its value.
    pub(crate) fn field(&self, pointer: &str) -> Option<Span> {
        self.fields
            .get(pointer)
            .or_else(|| self.objects.get(pointer))
            .copied()
    }

    /// Whether `span` is one of the entry's objects or values.
    pub(crate) fn holds(&self, span: Option<Span>) -> bool {
        span.is_some_and(|s| self.objects.values().any(|o| *o == s))
    }

    /// The span of `field` (`HTTP.PathPrefix`, `Sources[1].Name`) inside the object written at
    /// `anchor`, and its path from the entry's top, in file order.
    pub(crate) fn resolve(&self, anchor: Span, field: &str) -> Option<(Span, String)> {
        let base = self
            .objects
            .iter()
            .chain(&self.fields)
            .filter(|(_, s)| **s == anchor)
            .map(|(p, _)| p)
            .max_by_key(|p| p.len())?;
        let mut pointer = base.clone();
        for segment in field.split('.') {
            let (name, rest) = segment.split_once('[').unwrap_or((segment, ""));
            if !name.is_empty() {
                pointer.push('/');
                pointer.push_str(name);
            }
            for index in rest.split('[').map(|i| i.trim_end_matches(']')) {
                if !index.is_empty() {
                    pointer.push('/');
                    pointer.push_str(index);
                }
            }
        }
        // The field itself, else the nearest written field it is inside (a problem with a
        // default filled in under a written object points at that object's key).
        loop {
            if let Some(span) = self
                .fields
                .get(&pointer)
                .or_else(|| self.objects.get(&pointer))
            {
                if pointer.len() > base.len() {
                    return Some((*span, display_path(&pointer)));
                }
            }
            if pointer.len() <= base.len() {
                return None;
            }
            pointer.truncate(pointer.rfind('/')?);
        }
    }
}

/// `/Sources/0/Permissions/1/HTTP/PathExact` as `Sources[0].Permissions[1].HTTP.PathExact`.
pub(crate) fn display_path(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').filter(|p| !p.is_empty()) {
        if part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// [`config_entry`] with where its fields are written.
pub(crate) fn config_entry_located(
    node: &Node,
    diags: &mut Diagnostics,
) -> Option<(ConfigEntry, FieldSpans)> {
    config_entry_in(node, Mode::Strict, diags).map(|(e, spans)| (e.entry, spans))
}

/// A config entry in either decoding mode, with where its fields are written.
fn config_entry_in(
    node: &Node,
    mode: Mode,
    diags: &mut Diagnostics,
) -> Option<(ServerEntry, FieldSpans)> {
    let Some(obj) = node.as_object() else {
        diags.push(
            Diagnostic::new(
                Code::WrongType,
                node.span,
                format!(
                    "a config entry must be an object, found {}",
                    node.type_name()
                ),
            )
            .with_help("write `Kind = \"...\"` and the entry's fields at the top level"),
        );
        return None;
    };
    let Some((kind, kind_span)) = kind_of(node) else {
        let span = obj.first().map(|e| e.key_span).unwrap_or(node.span);
        diags.push(
            Diagnostic::new(Code::MissingKind, span, "config entry has no Kind")
                .with_help("add `Kind = \"service-intentions\"` (or another config entry kind)"),
        );
        return None;
    };
    let Some(entry_kind) = EntryKind::parse(&kind) else {
        let mut candidates: Vec<&str> = EntryKind::CONSUL_KINDS.to_vec();
        candidates.extend(MESH_GITOPS_KINDS);
        let help = match closest(&kind, &candidates) {
            Some(c) => format!("did you mean \"{c}\"?"),
            None => format!(
                "config entry kinds are: {}",
                EntryKind::CONSUL_KINDS.join(", ")
            ),
        };
        diags.push(
            Diagnostic::new(
                Code::UnknownKind,
                node.get_ci("kind").map_or(kind_span, entry_span),
                format!("invalid config entry kind: {kind}"),
            )
            .with_field("Kind")
            .with_help(help),
        );
        return None;
    };
    let skip = ["Kind"];
    let decoder = |diags: &mut Diagnostics, schema: &'static Schema, skip: &[&str]| {
        Decoder::with_mode(diags, mode).decode(node, schema, skip)
    };
    let (entry, d, spans) = match entry_kind {
        EntryKind::ServiceIntentions => {
            let mut d = decoder(diags, &schema::SERVICE_INTENTIONS, &skip);
            let spans = FieldSpans::of(&d);
            let e = intentions(&mut d, node.span, diags).map(ConfigEntry::ServiceIntentions);
            (e, d, spans)
        }
        EntryKind::ServiceDefaults => {
            let d = decoder(diags, &schema::SERVICE_DEFAULTS, &skip);
            let spans = FieldSpans::of(&d);
            let e = typed::<ServiceDefaults>(&d, node.span, diags).map(|mut e| {
                e.span = node.span;
                ConfigEntry::ServiceDefaults(e)
            });
            (e, d, spans)
        }
        EntryKind::ProxyDefaults => {
            let d = decoder(diags, &schema::PROXY_DEFAULTS, &skip);
            if let Some(cfg) = d.json.get("Config") {
                if !cfg.is_object() {
                    diags.push(
                        d.locate(
                            Diagnostic::new(
                                Code::WrongType,
                                d.at("/Config").unwrap_or(node.span),
                                "Config: expected an object",
                            ),
                            "/Config",
                        )
                        .with_help("write `Config { protocol = \"http\" }`"),
                    );
                    return None;
                }
            }
            let e = typed::<ProxyDefaults>(&d, node.span, diags).map(|mut e| {
                e.span = node.span;
                ConfigEntry::ProxyDefaults(e)
            });
            let spans = FieldSpans::of(&d);
            (e, d, spans)
        }
        EntryKind::Mesh => {
            let skip_mesh = mesh_name(node, diags);
            let d = decoder(diags, &schema::MESH, &skip_mesh);
            let e = typed::<MeshEntry>(&d, node.span, diags).map(|mut e| {
                e.span = node.span;
                ConfigEntry::Mesh(e)
            });
            let spans = FieldSpans::of(&d);
            (e, d, spans)
        }
        EntryKind::Other(kind) if mesh_model::ChainEntry::KINDS.contains(&kind.as_str()) => {
            let d = decoder(diags, crate::chain::schema_of(&kind), &skip);
            let spans = FieldSpans::of(&d);
            let e = crate::chain::typed_chain(&kind, &d, node.span, diags).map(ConfigEntry::Chain);
            (e, d, spans)
        }
        EntryKind::Other(kind) if crate::schema_kinds::schema_for(&kind).is_some() => {
            let schema = crate::schema_kinds::schema_for(&kind).expect("checked above");
            let (e, d) = crate::entry_kinds::decode(node, &kind, schema, mode, diags);
            let spans = FieldSpans::of(&d);
            (e.map(ConfigEntry::Other), d, spans)
        }
        EntryKind::Other(kind) => {
            let mut d = Decoded::default();
            let e = other(node, kind, mode, &mut d, diags).map(ConfigEntry::Other);
            (e, d, FieldSpans::default())
        }
    };
    Some((
        ServerEntry {
            entry: entry?,
            unknown: d.unknown,
            server: d.server,
        },
        spans,
    ))
}

/// The keys the mesh entry's decoder skips: `Kind`, and a `Name` (the mesh entry has none;
/// the one name it could mean is tolerated, any other reported).
fn mesh_name(node: &Node, diags: &mut Diagnostics) -> Vec<&'static str> {
    let mut skip_mesh = vec!["Kind"];
    if let Some(name) = node.get_ci("name") {
        if name.value.as_str() != Some("mesh") {
            diags.push(
                Diagnostic::new(
                    Code::EntryName,
                    name.value.span,
                    "the mesh config entry has no Name",
                )
                .with_help("remove Name; the mesh entry is a singleton called \"mesh\""),
            );
        }
        skip_mesh.push("Name");
    }
    skip_mesh
}

/// Builds a typed value from canonical JSON. The schema already checked every type, so a
/// failure here is a mismatch between schema and model, reported rather than panicking.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(
    d: &Decoded,
    span: Span,
    diags: &mut Diagnostics,
) -> Option<T> {
    if !d.json.contains_key("Name") && d.spans.contains_key("") && requires_name::<T>() {
        diags.push(
            Diagnostic::new(
                Code::MissingField,
                Span {
                    end: span.start,
                    ..span
                },
                // Consul's text (`ServiceConfigEntry.Validate`,
                // `ServiceIntentionsConfigEntry.validate`): an absent Name is an empty one.
                "Name is required",
            )
            .with_help("add `Name = \"<service>\"`"),
        );
        return None;
    }
    match serde_json::from_value(Value::Object(d.json.clone())) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.push(Diagnostic::new(
                Code::WrongType,
                span,
                format!("config entry does not decode: {e}"),
            ));
            None
        }
    }
}

fn requires_name<T>() -> bool {
    let t = std::any::type_name::<T>();
    t != std::any::type_name::<MeshEntry>() && t != std::any::type_name::<ProxyDefaults>()
}

fn intentions(d: &mut Decoded, span: Span, diags: &mut Diagnostics) -> Option<ServiceIntentions> {
    // Action values must be exactly "allow" or "deny"; report bad ones where they are written and
    // leave them out so the typed model stays representable.
    let mut bad_actions = Vec::new();
    let mut legacy_fields: Vec<(String, String)> = Vec::new();
    if let Some(Value::Array(sources)) = d.json.get_mut("Sources") {
        for (i, src) in sources.iter_mut().enumerate() {
            let Some(src) = src.as_object_mut() else {
                continue;
            };
            check_action(
                src,
                &format!("/Sources/{i}"),
                &format!("Sources[{i}]"),
                &mut bad_actions,
                false,
            );
            // `ServiceIntentionsConfigEntry.normalize` clears LegacyID and the legacy times
            // on a config-entry write; only a non-empty LegacyMeta fails `validate`
            // (`agent/structs/config_entry_intentions.go`).
            for legacy in ["LegacyID", "LegacyCreateTime", "LegacyUpdateTime"] {
                src.remove(legacy);
            }
            if src.remove("LegacyMeta").is_some() {
                legacy_fields.push((
                    format!("/Sources/{i}/LegacyMeta"),
                    format!("Sources[{i}].LegacyMeta must be omitted"),
                ));
            }
            if let Some(Value::Array(perms)) = src.get_mut("Permissions") {
                for (j, p) in perms.iter_mut().enumerate() {
                    if let Some(p) = p.as_object_mut() {
                        check_action(
                            p,
                            &format!("/Sources/{i}/Permissions/{j}"),
                            &format!("Sources[{i}].Permissions[{j}]"),
                            &mut bad_actions,
                            true,
                        );
                    }
                }
            }
        }
    }
    for (ptr, msg) in legacy_fields {
        diags.push(
            d.locate(
                Diagnostic::new(Code::IntentionLegacyField, d.at(&ptr).unwrap_or(span), msg),
                &ptr,
            )
            .with_help(
                "legacy intention fields belong to the deprecated intentions API; remove them",
            ),
        );
    }
    for (ptr, msg) in bad_actions {
        let action = format!("{ptr}/Action");
        let at = d.at(&action).or(d.span(&ptr)).unwrap_or(span);
        diags.push(
            d.locate(Diagnostic::new(Code::IntentionAction, at, msg), &action)
                .with_help("Action is \"allow\" or \"deny\", in lower case"),
        );
    }
    let mut e: ServiceIntentions = typed(d, span, diags)?;
    e.span = span;
    for (i, src) in e.sources.iter_mut().enumerate() {
        src.span = d.span(&format!("/Sources/{i}")).unwrap_or(span);
        for (j, p) in src.permissions.iter_mut().enumerate() {
            p.span = d
                .span(&format!("/Sources/{i}/Permissions/{j}"))
                .unwrap_or(src.span);
        }
    }
    Some(e)
}

fn check_action(
    obj: &mut Map<String, Value>,
    ptr: &str,
    display: &str,
    bad: &mut Vec<(String, String)>,
    required: bool,
) {
    let ok = match obj.get("Action") {
        Some(Value::String(a)) => a == "allow" || a == "deny",
        // A permission's Action is required (`IntentionPermission.Action`, no omitempty).
        None => !required,
        _ => false,
    };
    if !ok {
        bad.push((
            ptr.to_owned(),
            format!("{display}.Action must be set to 'allow' or 'deny'"),
        ));
        if required {
            // A permission needs some action to be representable; the error above blocks
            // anything from being applied.
            obj.insert(
                "Action".into(),
                Value::String(IntentionAction::Deny.as_str().into()),
            );
        } else {
            obj.remove("Action");
        }
    }
}

/// Kinds mesh-gitops does not interpret: keys kept as written, apart from Kind, Name and Meta,
/// and empty values (`""`, `{}`, `[]`, `null`) dropped as Consul's `omitempty` drops them. A
/// server's answer sets apart the server-managed fields and keeps Enterprise keys aside.
fn other(
    node: &Node,
    kind: String,
    mode: Mode,
    d: &mut Decoded,
    diags: &mut Diagnostics,
) -> Option<OtherEntry> {
    let entries = node.as_object()?;
    let mut out = OtherEntry {
        kind,
        span: node.span,
        ..OtherEntry::default()
    };
    let mut name = None;
    for e in entries {
        let lower = e.key.to_ascii_lowercase();
        match lower.as_str() {
            "kind" | "createindex" | "modifyindex" => {
                if mode == Mode::Tolerant && lower != "kind" {
                    d.server.insert(e.key.clone(), to_json(&e.value));
                }
            }
            _ if mode == Mode::Tolerant
                && SERVER_MANAGED
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&e.key)) =>
            {
                d.server.insert(e.key.clone(), to_json(&e.value));
            }
            _ if mode == Mode::Tolerant
                && (lower.ends_with("namespace") || lower == "partition") =>
            {
                d.unknown.insert(format!("/{}", e.key), to_json(&e.value));
            }
            "name" => match e.value.as_str() {
                Some(n) => name = Some(n.to_owned()),
                None => {
                    diags.push(Diagnostic::new(
                        Code::WrongType,
                        e.value.span,
                        format!("Name: expected a string, found {}", e.value.type_name()),
                    ));
                }
            },
            "meta" => match &e.value.kind {
                NodeKind::Object(items) => {
                    for it in items {
                        let v = match &it.value.kind {
                            NodeKind::String(s) => s.clone(),
                            NodeKind::Int(i) => i.to_string(),
                            NodeKind::Bool(b) => b.to_string(),
                            _ => {
                                diags.push(Diagnostic::new(
                                    Code::WrongType,
                                    it.value.span,
                                    format!("Meta.{}: expected a string", it.key),
                                ));
                                continue;
                            }
                        };
                        out.meta.insert(it.key.clone(), v);
                    }
                }
                _ => {
                    diags.push(Diagnostic::new(
                        Code::WrongType,
                        e.value.span,
                        "Meta: expected a map of strings",
                    ));
                }
            },
            _ if lower.ends_with("namespace") || lower == "partition" => {
                diags.push(
                    Diagnostic::new(
                        Code::EnterpriseOnly,
                        e.key_span,
                        format!(
                            "invalid config key \"{}\": namespaces and partitions are a Consul \
                             Enterprise feature",
                            e.key
                        ),
                    )
                    .with_help("remove the key; Consul CE rejects it even when empty"),
                );
            }
            _ => {
                let mut v = to_json(&e.value);
                if !drop_empty(&mut v) {
                    out.body.insert(e.key.clone(), v);
                }
            }
        }
    }
    match name {
        Some(n) if !n.is_empty() => out.name = n,
        _ => {
            diags.push(
                Diagnostic::new(
                    Code::MissingField,
                    node.span,
                    format!("{} config entry has no Name", out.kind),
                )
                .with_help("add `Name = \"...\"`"),
            );
            return None;
        }
    }
    Some(out)
}

/// Drops empty values inside `v`; `true` when `v` itself is empty.
fn drop_empty(v: &mut Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => {
            for item in items.iter_mut() {
                drop_empty(item);
            }
            items.is_empty()
        }
        Value::Object(fields) => {
            fields.retain(|_, f| !drop_empty(f));
            fields.is_empty()
        }
        _ => false,
    }
}

/// Decodes with `schema` and returns the canonical JSON with spans (for other modules).
pub(crate) fn decode_with(
    node: &Node,
    schema: &'static Schema,
    skip: &[&str],
    diags: &mut Diagnostics,
) -> Decoded {
    Decoder::new(diags).decode(node, schema, skip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_diagnostics::FileId;

    fn json_node(text: &str) -> Node {
        mesh_syntax::parse_json(FileId(0), text).unwrap()
    }

    /// A server's answer, decoded tolerantly, as the body it stands for.
    fn server(text: &str) -> Value {
        decode_server_entry(&json_node(text))
            .unwrap()
            .entry
            .to_json()
    }

    fn file(text: &str) -> ConfigEntry {
        let node = mesh_syntax::parse_hcl(FileId(0), text).unwrap();
        decode_config_entry(&node).unwrap()
    }

    #[test]
    fn a_file_rejects_a_key_no_schema_knows_at_the_key_with_a_suggestion() {
        let text = "{\"Kind\": \"service-defaults\", \"Name\": \"api\", \"Protocl\": \"http\"}";
        let errors = decode_config_entry(&json_node(text)).unwrap_err();
        let e = &errors[0];
        assert_eq!(e.code, Code::UnknownKey);
        let at = e.span.unwrap();
        // At the key, the span over its value (where every problem with a field points).
        assert_eq!(
            &text[at.start as usize..at.end as usize],
            "\"Protocl\": \"http\""
        );
        assert_eq!(e.help.as_deref(), Some("did you mean \"Protocol\"?"));
        // A server-managed field is no key of a file either.
        let text = "{\"Kind\": \"service-intentions\", \"Name\": \"db\", \"Status\": {}}";
        assert!(decode_config_entry(&json_node(text)).is_err());
    }

    /// `ServiceConfigEntry` as Consul 1.17+ writes it (`agent/structs/config_entry.go`): empty
    /// `Protocol`, zero-value structs, `Hash`, Raft indexes; plus a field of a newer Consul.
    const SERVICE_DEFAULTS_ANSWER: &str = r#"{
        "Kind": "service-defaults", "Name": "api", "Protocol": "",
        "TransparentProxy": {"FieldOfANewerConsul": 1}, "MeshGateway": {}, "Expose": {},
        "MutualTLSMode": "strict", "LocalRequestTimeoutMs": 15000,
        "FieldOfANewerConsul": {"On": true},
        "Hash": 12345678901234, "CreateIndex": 10, "ModifyIndex": 12
    }"#;

    #[test]
    fn a_server_answer_keeps_unknown_fields_aside_and_never_fails_on_them() {
        let read = decode_server_entry(&json_node(SERVICE_DEFAULTS_ANSWER)).unwrap();
        assert_eq!(
            read.entry.to_json(),
            file("Kind = \"service-defaults\"\nName = \"api\"\nMutualTLSMode = \"strict\"\nLocalRequestTimeoutMs = 15000\n").to_json()
        );
        assert_eq!(
            read.unknown["/FieldOfANewerConsul"],
            serde_json::json!({"On": true})
        );
        assert_eq!(read.unknown["/TransparentProxy/FieldOfANewerConsul"], 1);
        assert_eq!(read.server["Hash"], 12345678901234u64);
        assert_eq!(read.server["ModifyIndex"], 12);
        // The same answer is no repository file.
        assert!(decode_config_entry(&json_node(SERVICE_DEFAULTS_ANSWER)).is_err());
    }

    #[test]
    fn zero_values_equal_absent_ones() {
        let written = file(
            "Kind = \"proxy-defaults\"\nName = \"global\"\nMode = \"\"\nAccessLogs { Enabled = false }\nTransparentProxy { DialedDirectly = false }\nConfig { protocol = \"http\" }\n",
        );
        let answer = r#"{"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "http"},
            "TransparentProxy": {}, "MeshGateway": {}, "Expose": {}, "AccessLogs": {}, "Hash": 1}"#;
        assert_eq!(server(answer), written.to_json());
        let mesh = file("Kind = \"mesh\"\nAllowEnablingPermissiveMutualTLS = false\n");
        // `MeshDestinationsOnly` has no omitempty in `agent/structs/config_entry_mesh.go`.
        let answer = r#"{"Kind": "mesh", "TransparentProxy": {"MeshDestinationsOnly": false}}"#;
        assert_eq!(server(answer), mesh.to_json());
        let none = r#"{"Kind": "service-intentions", "Name": "db", "Sources": null, "Hash": 2}"#;
        assert_eq!(
            server(none),
            file("Kind = \"service-intentions\"\nName = \"db\"\n").to_json()
        );
    }

    #[test]
    fn a_go_pointer_keeps_its_zero_and_durations_take_go_spelling() {
        let e = file(
            "Kind = \"service-defaults\"\nName = \"api\"\nUpstreamConfig { Defaults { Limits { MaxConnections = 0 } PassiveHealthCheck { Interval = \"90s\" } } }\n",
        );
        let ConfigEntry::ServiceDefaults(sd) = &e else {
            panic!("{e:?}")
        };
        let defaults = &sd.rest["UpstreamConfig"]["Defaults"];
        assert_eq!(defaults["Limits"]["MaxConnections"], 0);
        assert_eq!(defaults["PassiveHealthCheck"]["Interval"], "1m30s");
        // Go's encoder writes a time.Duration as nanoseconds.
        let answer = r#"{"Kind": "service-defaults", "Name": "api", "UpstreamConfig": {"Defaults":
            {"Limits": {"MaxConnections": 0}, "PassiveHealthCheck": {"Interval": 90000000000}}}}"#;
        assert_eq!(server(answer), e.to_json());
    }

    #[test]
    fn other_kinds_drop_empty_values_and_set_server_fields_apart() {
        let answer = r#"{"Kind": "jwt-provider", "Name": "okta", "Issuer": "",
            "JSONWebKeySet": {"Remote": {"URI": "https://example.com/jwks", "JWKSCluster": {}}},
            "Namespace": "default", "Hash": 3, "CreateIndex": 4, "ModifyIndex": 5}"#;
        let read = decode_server_entry(&json_node(answer)).unwrap();
        let ConfigEntry::Other(o) = &read.entry else {
            panic!("{:?}", read.entry)
        };
        assert_eq!(
            serde_json::Value::Object(o.body.clone()),
            serde_json::json!({"JSONWebKeySet": {"Remote": {"URI": "https://example.com/jwks"}}})
        );
        assert_eq!(read.unknown["/Namespace"], "default");
        assert_eq!(read.server["Hash"], 3);
    }

    /// A router as Consul answers it (`ServiceRouterConfigEntry`): typed, Consul's spelling,
    /// the Enterprise `Namespace` kept aside, the server's fields set apart; the same entry
    /// written as a file in snake_case reads the same.
    #[test]
    fn discovery_chain_kinds_are_typed_in_both_modes() {
        let answer = r#"{"Kind": "service-router", "Name": "web", "Routes": [{"Match": {"HTTP":
            {"PathPrefix": "/api"}}, "Destination": {"Service": "api", "Namespace": "",
            "RequestTimeout": 5000000000}}],
            "Namespace": "default", "Hash": 3, "CreateIndex": 4, "ModifyIndex": 5}"#;
        let read = decode_server_entry(&json_node(answer)).unwrap();
        let ConfigEntry::Chain(mesh_model::ChainEntry::Router(r)) = &read.entry else {
            panic!("{:?}", read.entry)
        };
        assert_eq!(
            r.routes[0].destination.as_ref().unwrap().service.as_deref(),
            Some("api")
        );
        assert_eq!(read.unknown["/Namespace"], "default");
        assert_eq!(read.server["Hash"], 3);
        let written = file(
            "Kind = \"service-router\"\nName = \"web\"\nroutes = [{ match { http { path_prefix = \"/api\" } } destination { service = \"api\" request_timeout = \"5s\" } }]\n",
        );
        assert_eq!(read.entry.to_json(), written.to_json());
        assert_eq!(
            written.to_json()["Routes"][0]["Destination"]["RequestTimeout"],
            "5s"
        );
    }

    #[test]
    fn an_unknown_key_in_a_chain_entry_is_e0201_at_the_key() {
        let text = "Kind = \"service-splitter\"\nName = \"api\"\nSplits = [{ Weight = 90 }, { Wieght = 10 }]\n";
        let node = mesh_syntax::parse_hcl(FileId(0), text).unwrap();
        let errors = decode_config_entry(&node).unwrap_err();
        assert_eq!(errors[0].code, Code::UnknownKey);
        let at = errors[0].span.unwrap();
        assert_eq!(&text[at.start as usize..at.end as usize], "Wieght = 10");
        assert_eq!(errors[0].help.as_deref(), Some("did you mean \"Weight\"?"));
        let text = "Kind = \"service-resolver\"\nName = \"api\"\nSubsets = { v1 = { Filter = \"Service.Meta.version == v1\", OnlyPasing = true } }\n";
        let node = mesh_syntax::parse_hcl(FileId(0), text).unwrap();
        let errors = decode_config_entry(&node).unwrap_err();
        assert_eq!(errors[0].code, Code::UnknownKey);
        assert_eq!(
            errors[0].help.as_deref(),
            Some("did you mean \"OnlyPassing\"?")
        );
    }
}
