//! JSON values written as HCL the loader reads back to the same value: objects as blocks, lists
//! of objects as lists of object literals, multi-line strings as heredocs. Only what Consul's
//! answers hold is needed (strings, numbers, booleans, lists and objects; nulls are dropped, as
//! Consul reads an absent field and a null alike).

use serde_json::{Map, Value};
use std::fmt::Write as _;

/// The attributes of `body` as an HCL file, one per line, in their order.
pub fn file(body: &Map<String, Value>) -> String {
    let mut out = String::new();
    items(&mut out, body, 0);
    out
}

fn items(out: &mut String, body: &Map<String, Value>, depth: usize) {
    let width = body
        .iter()
        .filter(|(_, v)| !matches!(v, Value::Null | Value::Object(_)) && !is_heredoc(v))
        .map(|(k, _)| key(k).len())
        .max()
        .unwrap_or(0);
    for (k, v) in body {
        let pad = "  ".repeat(depth);
        match v {
            Value::Null => {}
            Value::Object(m) => {
                let _ = writeln!(out, "{pad}{} {{", key(k));
                items(out, m, depth + 1);
                let _ = writeln!(out, "{pad}}}");
            }
            _ if is_heredoc(v) => {
                let _ = writeln!(
                    out,
                    "{pad}{} = {}",
                    key(k),
                    heredoc(v.as_str().unwrap_or(""))
                );
            }
            _ => {
                let _ = write!(out, "{pad}{:width$} = ", key(k));
                value(out, v, depth);
                out.push('\n');
            }
        }
    }
}

fn value(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&quote(s)),
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                value(out, x, depth);
            }
            out.push(']');
        }
        Value::Array(a) => {
            let pad = "  ".repeat(depth + 1);
            out.push_str("[\n");
            for x in a {
                out.push_str(&pad);
                value(out, x, depth + 1);
                out.push_str(",\n");
            }
            out.push_str(&"  ".repeat(depth));
            out.push(']');
        }
        Value::Object(m) => {
            out.push_str("{\n");
            items(out, m, depth + 1);
            out.push_str(&"  ".repeat(depth));
            out.push('}');
        }
    }
}

/// A key as written: bare when it is an identifier the parser reads back, quoted otherwise.
fn key(k: &str) -> String {
    let bare = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare && !matches!(k, "true" | "false" | "null") {
        k.to_owned()
    } else {
        quote(k)
    }
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Multi-line text (ACL rules) reads best as a heredoc; it must end with a new line, since a
/// heredoc's value does, and hold no carriage return.
fn is_heredoc(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.ends_with('\n') && s.trim_end().contains('\n') && !s.contains('\r'))
}

fn heredoc(s: &str) -> String {
    let mut marker = "EOF".to_owned();
    while s.lines().any(|l| l.trim() == marker) {
        marker.push('F');
    }
    format!("<<{marker}\n{s}{marker}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reparsed(v: &Value) -> Value {
        let text = file(v.as_object().unwrap());
        let node = mesh_syntax::parse_hcl(mesh_diagnostics::FileId(0), &text)
            .unwrap_or_else(|e| panic!("{text}\n{e:?}"));
        to_json(&node)
    }

    fn to_json(n: &mesh_syntax::Node) -> Value {
        use mesh_syntax::NodeKind::*;
        match &n.kind {
            Null => Value::Null,
            Bool(b) => json!(b),
            Int(i) => json!(i),
            Float(f) => json!(f),
            String(s) => json!(s),
            List(l) => Value::Array(l.iter().map(to_json).collect()),
            Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), to_json(&e.value)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn values_read_back_as_they_were_written() {
        let v = json!({
            "Kind": "service-intentions",
            "Name": "*",
            "Sources": [
                {"Name": "web", "Action": "allow", "Description": "say \"hi\"\\ \t"},
                {"Name": "api", "Permissions": [{"Action": "deny", "HTTP": {"Methods": ["GET", "PUT"]}}]}
            ],
            "Meta": {"app.kubernetes.io/name": "x", "true": "y"},
            "Rules": "service \"web\" {\n  policy = \"write\"\n}\nEOF\n",
            "Count": 3, "Ratio": 0.5, "On": false
        });
        assert_eq!(reparsed(&v), v);
    }

    #[test]
    fn keys_that_are_not_identifiers_are_quoted() {
        assert_eq!(key("Protocol"), "Protocol");
        assert_eq!(
            key("envoy_prometheus_bind_addr"),
            "envoy_prometheus_bind_addr"
        );
        assert_eq!(key("a.b/c"), "\"a.b/c\"");
        assert_eq!(key("1x"), "\"1x\"");
    }
}
