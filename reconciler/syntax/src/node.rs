//! The span-keeping tree every input format is parsed into.
//!
//! HCL blocks become object entries whose `style` is [`EntryStyle::Block`] and which may carry
//! labels (`service "web" { ... }` is key `service`, label `web`, value an object). Repeated keys
//! are kept as repeated entries, in source order: whether they merge into a list or are a
//! duplicate is the decoder's decision, since only it knows the schema.

use mesh_diagnostics::Span;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    /// An integer literal that fits i64.
    Int(i64),
    Float(f64),
    /// A string after escape processing. HCL `${...}` interpolations are kept as literal text.
    String(String),
    List(Vec<Node>),
    Object(Vec<Entry>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStyle {
    /// `key = value`, `key: value` (YAML, JSON, HCL object items).
    Attribute,
    /// `key { ... }` or `key "label" { ... }` (HCL only).
    Block,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub value: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub labels: Vec<Label>,
    pub value: Node,
    pub style: EntryStyle,
}

impl Node {
    pub fn new(span: Span, kind: NodeKind) -> Self {
        Node { span, kind }
    }

    /// A short name of the node's type for messages: "string", "number", "object", ...
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "bool",
            NodeKind::Int(_) | NodeKind::Float(_) => "number",
            NodeKind::String(_) => "string",
            NodeKind::List(_) => "list",
            NodeKind::Object(_) => "object",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[Entry]> {
        match &self.kind {
            NodeKind::Object(e) => Some(e),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::List(l) => Some(l),
            _ => None,
        }
    }

    /// The first entry whose key equals `key` ignoring ASCII case.
    pub fn get_ci(&self, key: &str) -> Option<&Entry> {
        self.as_object()?
            .iter()
            .find(|e| e.key.eq_ignore_ascii_case(key))
    }
}
