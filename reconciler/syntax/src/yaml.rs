//! YAML (one node per document) into the span-keeping tree, with saphyr's markers.

use crate::node::{Entry, EntryStyle, Node, NodeKind};
use mesh_diagnostics::{Code, Diagnostic, FileId, Span};
use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

/// Aliases can multiply a document; past this many nodes the input is rejected.
const MAX_NODES: usize = 1_000_000;
/// Deeper nesting than this is reported instead of risking the stack.
const MAX_DEPTH: usize = 128;

pub fn parse_yaml(file: FileId, text: &str) -> Result<Vec<Node>, Vec<Diagnostic>> {
    let offsets = CharOffsets::new(text);
    if indentation_or_flow_depth(text) > MAX_DEPTH {
        return Err(vec![Diagnostic::new(
            Code::YamlSyntax,
            Span::new(file, 0, 1),
            format!("nesting deeper than {MAX_DEPTH} levels"),
        )
        .with_help("flatten the structure")]);
    }
    let docs = match MarkedYaml::load_from_str(text) {
        Ok(docs) => docs,
        Err(e) => {
            let at = offsets.byte(e.marker().index());
            let end = next_char_boundary(text, at);
            return Err(vec![Diagnostic::new(
                Code::YamlSyntax,
                Span::new(file, at, end),
                e.info().to_lowercase(),
            )
            .with_help(
                "check the indentation and the brackets near this position",
            )]);
        }
    };
    let mut conv = Converter {
        file,
        offsets: &offsets,
        nodes: 0,
    };
    let mut out = Vec::new();
    for doc in &docs {
        let node = conv.convert(doc, 0)?;
        if matches!(node.kind, NodeKind::Null) {
            continue;
        }
        out.push(node);
    }
    Ok(out)
}

fn next_char_boundary(text: &str, at: usize) -> usize {
    let mut end = (at + 1).min(text.len());
    while end < text.len() && !text.is_char_boundary(end) {
        end += 1;
    }
    end.max(at)
}

/// Flow brackets are the only way to nest deeply on few lines; block nesting needs lines.
fn indentation_or_flow_depth(text: &str) -> usize {
    let mut depth = 0usize;
    let mut max = 0usize;
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let indent = text
        .lines()
        .map(|l| l.len() - l.trim_start().len())
        .max()
        .unwrap_or(0);
    max.max(indent / 2)
}

/// saphyr's markers count characters; spans are bytes.
struct CharOffsets {
    /// Byte offset of each character, plus the text length at the end. Empty for ASCII text.
    bytes: Vec<usize>,
    len: usize,
}

impl CharOffsets {
    fn new(text: &str) -> Self {
        let bytes = if text.is_ascii() {
            Vec::new()
        } else {
            text.char_indices()
                .map(|(i, _)| i)
                .chain([text.len()])
                .collect()
        };
        CharOffsets {
            bytes,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        if self.bytes.is_empty() {
            char_index.min(self.len)
        } else {
            self.bytes.get(char_index).copied().unwrap_or(self.len)
        }
    }
}

struct Converter<'o> {
    file: FileId,
    offsets: &'o CharOffsets,
    nodes: usize,
}

impl Converter<'_> {
    fn span(&self, y: &MarkedYaml) -> Span {
        let start = self.offsets.byte(y.span.start.index());
        let end = self.offsets.byte(y.span.end.index());
        Span::new(self.file, start, end.max(start))
    }

    fn error(&self, y: &MarkedYaml, message: &str, help: &str) -> Vec<Diagnostic> {
        vec![Diagnostic::new(Code::YamlSyntax, self.span(y), message).with_help(help)]
    }

    fn convert(&mut self, y: &MarkedYaml, depth: usize) -> Result<Node, Vec<Diagnostic>> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.error(
                y,
                "document expands to too many nodes",
                "avoid nested aliases",
            ));
        }
        if depth > MAX_DEPTH {
            return Err(self.error(y, "nesting too deep", "flatten the structure"));
        }
        let span = self.span(y);
        let kind = match &y.data {
            YamlData::Value(s) => scalar(s),
            YamlData::Representation(text, _, _) => NodeKind::String(text.to_string()),
            YamlData::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    out.push(self.convert(i, depth + 1)?);
                }
                NodeKind::List(out)
            }
            YamlData::Mapping(map) => {
                let mut entries = Vec::with_capacity(map.len());
                for (k, v) in map {
                    let key = match &k.data {
                        YamlData::Value(s) => scalar_text(s),
                        YamlData::Representation(text, _, _) => text.to_string(),
                        _ => {
                            return Err(self.error(
                                k,
                                "mapping keys must be scalars",
                                "use a plain string as the key",
                            ))
                        }
                    };
                    entries.push(Entry {
                        key,
                        key_span: self.span(k),
                        labels: Vec::new(),
                        value: self.convert(v, depth + 1)?,
                        style: EntryStyle::Attribute,
                    });
                }
                NodeKind::Object(entries)
            }
            YamlData::Tagged(_, inner) => return self.convert(inner, depth + 1),
            YamlData::Alias(_) => {
                return Err(self.error(y, "unresolved alias", "define the anchor before using it"))
            }
            YamlData::BadValue => {
                return Err(self.error(y, "invalid value", "check this value's syntax"))
            }
        };
        // An empty scalar node has an empty span; point at its position anyway.
        Ok(Node::new(span, kind))
    }
}

fn scalar(s: &Scalar) -> NodeKind {
    match s {
        Scalar::Null => NodeKind::Null,
        Scalar::Boolean(b) => NodeKind::Bool(*b),
        Scalar::Integer(i) => NodeKind::Int(*i),
        Scalar::FloatingPoint(f) => NodeKind::Float(f.into_inner()),
        Scalar::String(s) => NodeKind::String(s.to_string()),
    }
}

fn scalar_text(s: &Scalar) -> String {
    match s {
        Scalar::Null => "null".to_owned(),
        Scalar::Boolean(b) => b.to_string(),
        Scalar::Integer(i) => i.to_string(),
        Scalar::FloatingPoint(f) => f.into_inner().to_string(),
        Scalar::String(s) => s.to_string(),
    }
}
