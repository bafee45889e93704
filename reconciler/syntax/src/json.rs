//! JSON, strictly (Consul's decoder accepts no comments and no trailing commas), into the
//! span-keeping tree. Duplicate keys are kept; the decoder decides what they mean.

use crate::node::{Entry, EntryStyle, Node, NodeKind};
use jsonc_parser::ast::{ObjectPropName, Value};
use jsonc_parser::{CollectOptions, ParseOptions};
use mesh_diagnostics::{Code, Diagnostic, FileId, Span};

/// Deeper nesting than this is reported instead of risking the stack.
const MAX_DEPTH: usize = 128;

pub fn parse_json(file: FileId, text: &str) -> Result<Node, Vec<Diagnostic>> {
    let strict = ParseOptions {
        allow_comments: false,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    if nesting_depth(text) > MAX_DEPTH {
        return Err(vec![Diagnostic::new(
            Code::JsonSyntax,
            Span::new(file, 0, 1),
            format!("nesting deeper than {MAX_DEPTH} levels"),
        )
        .with_help("flatten the structure")]);
    }
    let parsed = jsonc_parser::parse_to_ast(text, &CollectOptions::default(), &strict);
    match parsed {
        Ok(result) => match result.value {
            Some(v) => Ok(convert(file, &v)),
            None => Err(vec![Diagnostic::new(
                Code::JsonSyntax,
                Span::new(file, 0, 0),
                "empty JSON file",
            )
            .with_help("a JSON file holds one object")]),
        },
        Err(e) => {
            let r = e.range();
            let start = r.start.min(text.len());
            let end = r.end.clamp(start, text.len());
            let message = lowercase_first(&e.kind().to_string());
            let help = match e.kind().to_string().as_str() {
                m if m.contains("omment") => "JSON has no comments; Consul rejects them",
                m if m.contains("railing comma") => "remove the comma after the last item",
                _ => "check the JSON syntax near this position",
            };
            Err(vec![Diagnostic::new(
                Code::JsonSyntax,
                Span::new(file, start, end),
                message,
            )
            .with_help(help)])
        }
    }
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Brackets outside strings, deepest level: checked before recursion so hostile input cannot
/// overflow the stack in the parser or in `convert`.
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn convert(file: FileId, v: &Value) -> Node {
    let span = |r: jsonc_parser::common::Range| Span::new(file, r.start, r.end);
    match v {
        Value::StringLit(s) => Node::new(span(s.range), NodeKind::String(s.value.to_string())),
        Value::NumberLit(n) => {
            let text = n.value;
            let kind = if !text.contains(['.', 'e', 'E']) {
                match text.parse::<i64>() {
                    Ok(i) => NodeKind::Int(i),
                    Err(_) => NodeKind::Float(text.parse::<f64>().unwrap_or(f64::MAX)),
                }
            } else {
                NodeKind::Float(text.parse::<f64>().unwrap_or(0.0))
            };
            Node::new(span(n.range), kind)
        }
        Value::BooleanLit(b) => Node::new(span(b.range), NodeKind::Bool(b.value)),
        Value::NullKeyword(n) => Node::new(span(n.range), NodeKind::Null),
        Value::Array(a) => Node::new(
            span(a.range),
            NodeKind::List(a.elements.iter().map(|e| convert(file, e)).collect()),
        ),
        Value::Object(o) => {
            let entries = o
                .properties
                .iter()
                .map(|p| {
                    let (key, key_range) = match &p.name {
                        ObjectPropName::String(s) => (s.value.to_string(), s.range),
                        ObjectPropName::Word(w) => (w.value.to_string(), w.range),
                    };
                    Entry {
                        key,
                        key_span: span(key_range),
                        labels: Vec::new(),
                        value: convert(file, &p.value),
                        style: EntryStyle::Attribute,
                    }
                })
                .collect();
            Node::new(span(o.range), NodeKind::Object(entries))
        }
    }
}
