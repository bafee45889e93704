//! Schema-driven decoding of a [`Node`] tree into canonical JSON.
//!
//! Consul decodes config entries with mapstructure: field names match case-insensitively,
//! snake_case works only where a field declares an alias, unknown keys are rejected, and input is
//! weakly typed (`"5"` is a number). This module applies those rules from a declarative schema,
//! reports every problem with the span of the offending key or value, and produces JSON with
//! Consul's canonical spelling, so the same entry written in HCL, JSON, YAML or as a consul-k8s
//! resource decodes to identical bytes. It also records the span of every decoded value by JSON
//! pointer, so typed objects built from the JSON can point back at their source.
//!
//! Two modes, never mixed. `Strict` reads repository files: an unknown key is an error at the
//! key. `Tolerant` reads what a server answered: unknown keys (fields of a newer Consul, the
//! Enterprise `Namespace`) are kept aside and never fail the read, and the server-managed
//! fields (`Hash`, `Status`, the Raft indexes, `CreateTime`) are set apart from the entry.
//!
//! Both modes produce Consul's stored form of a value: Consul answers with Go's JSON encoder,
//! whose `omitempty` drops empty strings, `false`, `0` and empty lists and maps, while a struct
//! field that is not a pointer is always written, as `{}` when zero (`TransparentProxy`,
//! `MeshGateway`, `Expose`, `AccessLogs` in `agent/structs/config_entry.go`). A Go struct cannot
//! tell such a zero value from an absent one, so neither does the decoded JSON: zero values are
//! dropped, except where the schema marks the field `Keep` (a Go pointer, whose zero is a value).

use mesh_diagnostics::{Code, Diagnostic, Diagnostics, Span};
use mesh_syntax::{EntryStyle, Node, NodeKind};
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

/// How keys are matched against field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyMatch {
    /// Consul's config-entry decoder: case-insensitive name, or a declared alias.
    Consul,
    /// Our own kinds and agent service definitions: case- and underscore-insensitive, so
    /// `DestinationName`, `destination_name` and `destinationName` all match.
    Loose,
}

#[derive(Debug)]
pub(crate) struct Schema {
    /// What the object is, for messages ("service-intentions source").
    pub what: &'static str,
    pub fields: &'static [Field],
    pub matching: KeyMatch,
}

#[derive(Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub ty: Ty,
}

pub(crate) const fn f(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        aliases: &[],
        ty,
    }
}

pub(crate) const fn fa(name: &'static str, alias: &'static [&'static str], ty: Ty) -> Field {
    Field {
        name,
        aliases: alias,
        ty,
    }
}

#[derive(Debug)]
pub(crate) enum Ty {
    Str,
    Int,
    /// A Go `float32`/`float64` (rates, a split's `Weight`): any number, or a string that parses
    /// as one; a whole number stays whole, as Go writes it.
    Float,
    Bool,
    /// A Go duration string such as `10s` (also accepted: integer nanoseconds).
    Duration,
    List(&'static Ty),
    Obj(&'static Schema),
    /// `map[string]string`: keys verbatim, values weakly converted to strings.
    StrMap,
    /// `map[string]T`: keys verbatim, each value decoded as `T` (a resolver's `Subsets`).
    Map(&'static Ty),
    /// Opaque JSON, keys verbatim.
    Any,
    /// Accepted and dropped (read-only fields such as `CreateIndex`).
    Ignored,
    /// The inner type, whose zero value is kept: a Go pointer field (`*int`), or a field whose
    /// emptiness validation reports (`Name`).
    Keep(&'static Ty),
}

/// How strictly keys are checked; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Strict,
    Tolerant,
}

/// Top-level fields a server sets and a client never writes (`Hash` since Consul 1.16 in
/// `agent/structs/config_entry.go`, `Status` of the gateway kinds in `config_entry_status.go`,
/// `RaftIndex`); in a server's answer they never take part in a comparison.
pub(crate) const SERVER_MANAGED: &[&str] =
    &["Hash", "Status", "CreateIndex", "ModifyIndex", "CreateTime"];

/// The result of decoding one object.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub json: Map<String, Value>,
    /// Span of every decoded value, keyed by JSON pointer (`""` is the object itself).
    pub spans: BTreeMap<String, Span>,
    /// Span of every field written with a key, from the key to the end of its value, keyed by
    /// JSON pointer (a repeated HCL block's items too): where a problem with the field points.
    pub fields: BTreeMap<String, Span>,
    /// Tolerant mode: keys no schema knows, by JSON pointer, as the server wrote them.
    pub unknown: Map<String, Value>,
    /// Tolerant mode: the server-managed top-level fields ([`SERVER_MANAGED`]).
    pub server: Map<String, Value>,
}

impl Decoded {
    pub fn span(&self, pointer: &str) -> Option<Span> {
        self.spans.get(pointer).copied()
    }

    /// Where the field at `pointer` is written: its key to the end of its value, or the value
    /// alone when it has no key (a list item).
    pub fn at(&self, pointer: &str) -> Option<Span> {
        self.fields
            .get(pointer)
            .or(self.spans.get(pointer))
            .copied()
    }

    /// `diag` about the field at `pointer`: named, and pointing at the field when it is written.
    pub fn locate(&self, diag: Diagnostic, pointer: &str) -> Diagnostic {
        let mut diag = diag.with_field(crate::entry::display_path(pointer));
        if let Some(span) = self.at(pointer) {
            diag.span = Some(span);
        }
        diag
    }
}

pub(crate) struct Decoder<'d> {
    pub diags: &'d mut Diagnostics,
    spans: BTreeMap<String, Span>,
    fields: BTreeMap<String, Span>,
    mode: Mode,
    unknown: Map<String, Value>,
    server: Map<String, Value>,
}

impl<'d> Decoder<'d> {
    pub fn new(diags: &'d mut Diagnostics) -> Self {
        Self::with_mode(diags, Mode::Strict)
    }

    pub fn with_mode(diags: &'d mut Diagnostics, mode: Mode) -> Self {
        Decoder {
            diags,
            spans: BTreeMap::new(),
            fields: BTreeMap::new(),
            mode,
            unknown: Map::new(),
            server: Map::new(),
        }
    }

    /// Decodes `node` (an object) with `schema`, skipping the keys in `skip` (already handled
    /// by the caller, e.g. `Kind`).
    pub fn decode(mut self, node: &Node, schema: &Schema, skip: &[&str]) -> Decoded {
        let json = self.object(node, schema, "", schema.what, skip);
        Decoded {
            json: json.unwrap_or_default(),
            spans: self.spans,
            fields: self.fields,
            unknown: self.unknown,
            server: self.server,
        }
    }

    /// Records where the field `entry` is written (its key to the end of its value) and moves
    /// the problems found in exactly its value, pushed since `before`, onto it.
    fn at_key(&mut self, before: usize, entry: &mesh_syntax::Entry, pointer: &str, display: &str) {
        let span = entry_span(entry);
        self.fields.insert(pointer.to_owned(), span);
        for d in self.diags.since_mut(before) {
            if d.span == Some(entry.value.span) {
                d.span = Some(span);
                d.field.get_or_insert_with(|| display.to_owned());
            }
        }
    }

    fn object(
        &mut self,
        node: &Node,
        schema: &Schema,
        pointer: &str,
        display: &str,
        skip: &[&str],
    ) -> Option<Map<String, Value>> {
        let node = single_object(node)?;
        let Some(entries) = node.as_object() else {
            self.wrong_type(node, "an object", display);
            return None;
        };
        self.spans.insert(pointer.to_owned(), node.span);
        // Group entries by field, in the schema's order, so output order never depends on input.
        let mut by_field: Vec<Vec<&mesh_syntax::Entry>> = vec![Vec::new(); schema.fields.len()];
        for entry in entries {
            if skip.iter().any(|s| s.eq_ignore_ascii_case(&entry.key)) {
                continue;
            }
            if self.mode == Mode::Tolerant
                && pointer.is_empty()
                && SERVER_MANAGED
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&entry.key))
            {
                self.server.insert(entry.key.clone(), to_json(&entry.value));
                continue;
            }
            match (find_field(schema, &entry.key), self.mode) {
                (Some(i), _) => by_field[i].push(entry),
                (None, Mode::Strict) => self.unknown_key(schema, entry, display),
                (None, Mode::Tolerant) => {
                    self.unknown.insert(
                        format!("{pointer}/{}", escape_pointer(&entry.key)),
                        to_json(&entry.value),
                    );
                }
            }
        }
        let mut out = Map::new();
        for (field, entries) in schema.fields.iter().zip(by_field) {
            let Some(first) = entries.first() else {
                continue;
            };
            let child_ptr = format!("{pointer}/{}", field.name);
            let child_display = if display.is_empty() || pointer.is_empty() {
                field.name.to_owned()
            } else {
                format!("{display}.{}", field.name)
            };
            if matches!(field.ty, Ty::Ignored) {
                continue;
            }
            let value = if entries.len() > 1 {
                // Repeated HCL blocks build a list; anything else is given twice.
                let all_blocks = entries.iter().all(|e| e.style == EntryStyle::Block);
                if let (Ty::List(item), true) = (&field.ty, all_blocks) {
                    self.spans.insert(child_ptr.clone(), first.value.span);
                    let mut items = Vec::new();
                    for (i, e) in entries.iter().enumerate() {
                        let p = format!("{child_ptr}/{i}");
                        let d = format!("{child_display}[{i}]");
                        let before = self.diags.len();
                        let v = self.value(&e.value, item, &p, &d);
                        self.at_key(before, e, &p, &d);
                        if let Some(v) = v {
                            items.push(v);
                        }
                    }
                    Some(Value::Array(items))
                } else {
                    for dup in &entries[1..] {
                        let spelled = if dup.key == first.key {
                            format!("key \"{}\" is given more than once", dup.key)
                        } else {
                            format!(
                                "\"{}\" and \"{}\" are the same field, given twice",
                                first.key, dup.key
                            )
                        };
                        self.diags.push(
                            Diagnostic::new(Code::DuplicateKey, entry_span(dup), spelled)
                                .with_field(dup.key.as_str())
                                .with_label(first.key_span, "first given here")
                                .with_help(format!("keep one spelling of {}", field.name)),
                        );
                    }
                    let before = self.diags.len();
                    let v = self.value(&first.value, &field.ty, &child_ptr, &child_display);
                    self.at_key(before, first, &child_ptr, &child_display);
                    v
                }
            } else {
                if !first.labels.is_empty() {
                    self.diags.push(
                        Diagnostic::new(
                            Code::WrongType,
                            first.labels[0].span,
                            format!("block \"{}\" takes no labels", first.key),
                        )
                        .with_help(format!("write `{} {{ ... }}`", first.key)),
                    );
                }
                let before = self.diags.len();
                let v = self.value(&first.value, &field.ty, &child_ptr, &child_display);
                self.at_key(before, first, &child_ptr, &child_display);
                v
            };
            if let Some(v) = value {
                if schema.matching == KeyMatch::Consul && is_zero(&v, &field.ty) {
                    continue;
                }
                out.insert(field.name.to_owned(), v);
            }
        }
        Some(out)
    }

    fn value(&mut self, node: &Node, ty: &Ty, pointer: &str, display: &str) -> Option<Value> {
        if matches!(node.kind, NodeKind::Null) {
            return None;
        }
        self.spans.insert(pointer.to_owned(), node.span);
        match ty {
            Ty::Str => match &node.kind {
                NodeKind::String(s) => Some(Value::String(s.clone())),
                // Consul's decoder is weakly typed: scalars convert to strings.
                NodeKind::Int(i) => Some(Value::String(i.to_string())),
                NodeKind::Float(x) => Some(Value::String(x.to_string())),
                NodeKind::Bool(b) => Some(Value::String(if *b { "1" } else { "0" }.to_owned())),
                _ => self.wrong_type(node, "a string", display),
            },
            Ty::Int => match &node.kind {
                NodeKind::Int(i) => Some(Value::Number((*i).into())),
                NodeKind::Float(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => {
                    Some(Value::Number((*x as i64).into()))
                }
                NodeKind::String(s) => match s.trim().parse::<i64>() {
                    Ok(i) => Some(Value::Number(i.into())),
                    Err(_) => self.wrong_type(node, "a whole number", display),
                },
                _ => self.wrong_type(node, "a whole number", display),
            },
            Ty::Float => match &node.kind {
                NodeKind::Int(i) => Some(Value::Number((*i).into())),
                NodeKind::Float(x) => Number::from_f64(*x).map(Value::Number),
                NodeKind::String(s) => {
                    match s.trim().parse::<f64>().ok().and_then(Number::from_f64) {
                        Some(n) => Some(Value::Number(n)),
                        None => self.wrong_type(node, "a number", display),
                    }
                }
                _ => self.wrong_type(node, "a number", display),
            },
            Ty::Map(item) => self.map(node, item, pointer, display),
            Ty::Bool => match &node.kind {
                NodeKind::Bool(b) => Some(Value::Bool(*b)),
                NodeKind::Int(0) => Some(Value::Bool(false)),
                NodeKind::Int(1) => Some(Value::Bool(true)),
                // strconv.ParseBool's spellings.
                NodeKind::String(s) => match s.as_str() {
                    "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(Value::Bool(true)),
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(Value::Bool(false)),
                    _ => self.wrong_type(node, "true or false", display),
                },
                _ => self.wrong_type(node, "true or false", display),
            },
            Ty::Duration => match &node.kind {
                NodeKind::String(s) => {
                    if let Some(n) = mesh_semantics::duration::parse_go(s) {
                        Some(Value::String(mesh_semantics::duration::to_go(n)))
                    } else {
                        self.diags.push(
                            Diagnostic::new(
                                Code::WrongType,
                                node.span,
                                format!("{display}: invalid duration \"{s}\""),
                            )
                            .with_help("write a Go duration such as \"10s\", \"1m30s\" or \"72h\""),
                        );
                        None
                    }
                }
                // Go's encoder writes a time.Duration as integer nanoseconds.
                NodeKind::Int(i) if *i >= 0 => {
                    Some(Value::String(mesh_semantics::duration::to_go(*i as u128)))
                }
                _ => self.wrong_type(node, "a duration such as \"10s\"", display),
            },
            Ty::List(item) => {
                let items: Vec<&Node> = match &node.kind {
                    NodeKind::List(items) => items.iter().collect(),
                    // HCL1: a single block or value where a list is expected is a one-item list.
                    _ => vec![node],
                };
                let mut out = Vec::with_capacity(items.len());
                for (i, n) in items.into_iter().enumerate() {
                    if let Some(v) = self.value(
                        n,
                        item,
                        &format!("{pointer}/{i}"),
                        &format!("{display}[{i}]"),
                    ) {
                        out.push(v);
                    }
                }
                Some(Value::Array(out))
            }
            Ty::Obj(schema) => self
                .object(node, schema, pointer, display, &[])
                .map(Value::Object),
            Ty::StrMap => {
                let node = single_object(node)?;
                let Some(entries) = node.as_object() else {
                    return self.wrong_type(node, "a map of strings", display);
                };
                let mut out = Map::new();
                for e in entries {
                    let v = match &e.value.kind {
                        NodeKind::String(s) => s.clone(),
                        NodeKind::Int(i) => i.to_string(),
                        NodeKind::Float(x) => x.to_string(),
                        NodeKind::Bool(b) => b.to_string(),
                        _ => {
                            self.wrong_type(&e.value, "a string", &format!("{display}.{}", e.key));
                            continue;
                        }
                    };
                    if out.insert(e.key.clone(), Value::String(v)).is_some() {
                        self.diags.push(Diagnostic::new(
                            Code::DuplicateKey,
                            e.key_span,
                            format!("key \"{}\" is given more than once", e.key),
                        ));
                    }
                    self.spans.insert(
                        format!("{pointer}/{}", escape_pointer(&e.key)),
                        e.value.span,
                    );
                }
                Some(Value::Object(out))
            }
            Ty::Any => Some(to_json(node)),
            Ty::Ignored => None,
            Ty::Keep(inner) => self.value(node, inner, pointer, display),
        }
    }

    /// A `map[string]T`: every key kept as written, every value decoded as `item`.
    fn map(&mut self, node: &Node, item: &Ty, pointer: &str, display: &str) -> Option<Value> {
        let node = single_object(node)?;
        let Some(entries) = node.as_object() else {
            return self.wrong_type(node, "a map", display);
        };
        let mut out = Map::new();
        for e in entries {
            let p = format!("{pointer}/{}", escape_pointer(&e.key));
            let d = format!("{display}[{:?}]", e.key);
            let before = self.diags.len();
            let v = self.value(&e.value, item, &p, &d);
            self.at_key(before, e, &p, &d);
            if out.contains_key(&e.key) {
                self.diags.push(Diagnostic::new(
                    Code::DuplicateKey,
                    e.key_span,
                    format!("key \"{}\" is given more than once", e.key),
                ));
            }
            out.insert(e.key.clone(), v.unwrap_or(Value::Object(Map::new())));
        }
        Some(Value::Object(out))
    }

    fn wrong_type(&mut self, node: &Node, expected: &str, display: &str) -> Option<Value> {
        self.diags.push(
            Diagnostic::new(
                Code::WrongType,
                node.span,
                format!("{display}: expected {expected}, found {}", node.type_name()),
            )
            .with_help(format!("{display} takes {expected}")),
        );
        None
    }

    fn unknown_key(&mut self, schema: &Schema, entry: &mesh_syntax::Entry, display: &str) {
        let key = &entry.key;
        let at = entry_span(entry);
        let lower = key.to_ascii_lowercase();
        let place = if display.is_empty() || display == schema.what {
            schema.what.to_owned()
        } else {
            format!("{} ({display})", schema.what)
        };
        if schema.matching == KeyMatch::Consul
            && (lower.ends_with("namespace") || lower == "partition")
        {
            self.diags.push(
                Diagnostic::new(
                    Code::EnterpriseOnly,
                    at,
                    format!(
                        "invalid config key \"{key}\" in {place}: namespaces and partitions are a \
                         Consul Enterprise feature"
                    ),
                )
                .with_field(key.as_str())
                .with_help("remove the key; Consul CE rejects it even when empty"),
            );
            return;
        }
        // `validateUnusedKeys` (`agent/structs/config_entry_ce.go`): CE has no API-gateway JWT
        // fields, and names them so.
        if schema.matching == KeyMatch::Consul && lower.contains("jwt") {
            self.diags.push(
                Diagnostic::new(
                    Code::EnterpriseOnly,
                    at,
                    format!(
                        "invalid config key \"{key}\", api-gateway jwt validation is a consul \
                         enterprise feature"
                    ),
                )
                .with_field(key.as_str())
                .with_help("remove the key; Consul CE rejects it"),
            );
            return;
        }
        let mut d = Diagnostic::new(
            Code::UnknownKey,
            at,
            format!("invalid config key \"{key}\" in {place}"),
        )
        .with_field(key.as_str());
        let names: Vec<&str> = schema
            .fields
            .iter()
            .filter(|f| !matches!(f.ty, Ty::Ignored))
            .map(|f| f.name)
            .collect();
        d = match closest(key, &names) {
            Some(best) => d.with_help(format!("did you mean \"{best}\"?")),
            None => d.with_help(format!("accepted keys: {}", names.join(", "))),
        };
        self.diags.push(d);
    }
}

/// Where an entry is written: its key to the end of its value.
pub(crate) fn entry_span(entry: &mesh_syntax::Entry) -> Span {
    Span {
        start: entry.key_span.start.min(entry.value.span.start),
        end: entry.value.span.end.max(entry.key_span.end),
        ..entry.value.span
    }
}

/// Whether a decoded value is the zero value of its Go field, which Consul's `omitempty`
/// leaves out and a zero struct writes as `{}` (see the module documentation).
fn is_zero(v: &Value, ty: &Ty) -> bool {
    match (ty, v) {
        (Ty::Keep(_), _) => false,
        (_, Value::Null) => true,
        (_, Value::String(s)) => s.is_empty(),
        (_, Value::Bool(b)) => !b,
        (Ty::Int, Value::Number(n)) => n.as_i64() == Some(0),
        (Ty::Float, Value::Number(n)) => n.as_f64() == Some(0.0),
        (_, Value::Array(a)) => a.is_empty(),
        (_, Value::Object(o)) => o.is_empty(),
        _ => false,
    }
}

/// A single-element list holding an object counts as that object (mapstructure's weak decoding
/// of `[{...}]`, and HCL1's list-of-blocks shape).
fn single_object(node: &Node) -> Option<&Node> {
    match &node.kind {
        NodeKind::List(items) if items.len() == 1 && items[0].as_object().is_some() => {
            Some(&items[0])
        }
        NodeKind::Null => None,
        _ => Some(node),
    }
}

fn find_field(schema: &Schema, key: &str) -> Option<usize> {
    match schema.matching {
        KeyMatch::Consul => schema.fields.iter().position(|f| {
            f.name.eq_ignore_ascii_case(key)
                || f.aliases.iter().any(|a| a.eq_ignore_ascii_case(key))
        }),
        KeyMatch::Loose => {
            let k = loose(key);
            schema
                .fields
                .iter()
                .position(|f| loose(f.name) == k || f.aliases.iter().any(|a| loose(a) == k))
        }
    }
}

pub(crate) fn loose(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The closest candidate by edit distance, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let k = key.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&k, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Converts a node to JSON verbatim (keys as written; repeated HCL blocks become a list).
pub(crate) fn to_json(node: &Node) -> Value {
    match &node.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Bool(b) => Value::Bool(*b),
        NodeKind::Int(i) => Value::Number((*i).into()),
        NodeKind::Float(x) => Number::from_f64(*x)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        NodeKind::String(s) => Value::String(s.clone()),
        NodeKind::List(items) => Value::Array(items.iter().map(to_json).collect()),
        NodeKind::Object(entries) => {
            let mut out = Map::new();
            for e in entries {
                let v = to_json(&e.value);
                match out.get_mut(&e.key) {
                    Some(Value::Array(existing)) if e.style == EntryStyle::Block => {
                        existing.push(v)
                    }
                    Some(existing) if e.style == EntryStyle::Block => {
                        let first = existing.take();
                        *existing = Value::Array(vec![first, v]);
                    }
                    _ => {
                        out.insert(e.key.clone(), v);
                    }
                }
            }
            Value::Object(out)
        }
    }
}
