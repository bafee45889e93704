//! The three parsers against the shapes real files use, their error positions, and the
//! guarantee that no input panics.

use mesh_diagnostics::{Code, FileId, SourceMap};
use mesh_syntax::{parse_hcl, parse_json, parse_yaml, EntryStyle, Node, NodeKind};
use proptest::prelude::*;

const F: FileId = FileId(0);

/// The tree without spans, for comparing formats.
fn shape(n: &Node) -> String {
    match &n.kind {
        NodeKind::Null => "null".into(),
        NodeKind::Bool(b) => b.to_string(),
        NodeKind::Int(i) => i.to_string(),
        NodeKind::Float(x) => x.to_string(),
        NodeKind::String(s) => format!("{s:?}"),
        NodeKind::List(items) => format!(
            "[{}]",
            items.iter().map(shape).collect::<Vec<_>>().join(",")
        ),
        NodeKind::Object(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|e| format!("{}={}", e.key, shape(&e.value)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

fn error_at(
    result: Result<impl std::fmt::Debug, Vec<mesh_diagnostics::Diagnostic>>,
    text: &str,
) -> (Code, u32, u32, String) {
    let errors = result.expect_err("must fail");
    let mut map = SourceMap::new();
    map.add("f", text);
    let d = &errors[0];
    let loc = map.location(d.span.expect("span"));
    (d.code, loc.line, loc.column, d.message.clone())
}

#[test]
fn hcl1_objects_need_no_separators_and_hold_blocks() {
    let text = "Kind = \"service-intentions\"\nName = \"api\"\nSources = [{ Name = \"web\" Action = \"allow\" }, { Name = \"ops\"  Permissions = [{ Action = \"allow\"  HTTP { PathPrefix = \"/admin\" } }] }]\n";
    let n = parse_hcl(F, text).unwrap();
    assert_eq!(
        shape(&n),
        r#"{Kind="service-intentions",Name="api",Sources=[{Name="web",Action="allow"},{Name="ops",Permissions=[{Action="allow",HTTP={PathPrefix="/admin"}}]}]}"#
    );
    let sources = n.get_ci("sources").unwrap().value.as_list().unwrap();
    let perm = sources[1]
        .get_ci("permissions")
        .unwrap()
        .value
        .as_list()
        .unwrap();
    assert_eq!(perm[0].get_ci("http").unwrap().style, EntryStyle::Block);
}

#[test]
fn hcl_blocks_labels_heredocs_comments_and_quoted_keys() {
    let text = "# comment\n// another\n/* block\ncomment */\nservice \"web\" {\n  policy = \"write\"\n}\nservice_prefix \"\" { policy = \"read\" }\noperator = \"read\"\nRules = <<EOF\nkey \"a\" {\n  policy = \"list\"\n}\nEOF\nIndented = <<-EOT\n    one\n      two\n    EOT\n\"Quoted\" = 0x1F\nn = -1.5e3\nt = \"${var.x}-${lookup(m, \"k\")}\"\r\nlist = [\n  1,\n  2\n  3,\n]\n";
    let n = parse_hcl(F, text).unwrap();
    let entries = n.as_object().unwrap();
    assert_eq!(entries[0].key, "service");
    assert_eq!(entries[0].labels[0].value, "web");
    assert_eq!(entries[1].labels[0].value, "");
    assert_eq!(
        n.get_ci("rules").unwrap().value.as_str(),
        Some("key \"a\" {\n  policy = \"list\"\n}\n")
    );
    assert_eq!(
        n.get_ci("indented").unwrap().value.as_str(),
        Some("one\n  two\n")
    );
    assert_eq!(n.get_ci("quoted").unwrap().value.kind, NodeKind::Int(31));
    assert_eq!(n.get_ci("n").unwrap().value.kind, NodeKind::Float(-1500.0));
    assert_eq!(
        n.get_ci("t").unwrap().value.as_str(),
        Some("${var.x}-${lookup(m, \"k\")}")
    );
    assert_eq!(n.get_ci("list").unwrap().value.as_list().unwrap().len(), 3);
}

#[test]
fn one_document_in_three_formats_has_one_shape() {
    let hcl = "Kind = \"service-defaults\"\nName = \"web\"\nMeta = { team = \"a\" }\nPorts = [1, 2]\nOn = true\n";
    let json = r#"{"Kind": "service-defaults", "Name": "web", "Meta": {"team": "a"}, "Ports": [1, 2], "On": true}"#;
    let yaml = "Kind: service-defaults\nName: web\nMeta:\n  team: a\nPorts: [1, 2]\nOn: true\n";
    let a = shape(&parse_hcl(F, hcl).unwrap());
    let b = shape(&parse_json(F, json).unwrap());
    let c = shape(&parse_yaml(F, yaml).unwrap()[0]);
    assert_eq!(a, b);
    assert_eq!(b, c);
}

#[test]
fn errors_point_at_the_offending_token() {
    let t = "Kind = \"x\"\nName = var.db\n";
    assert_eq!(error_at(parse_hcl(F, t), t).0, Code::HclSyntax);
    assert_eq!(error_at(parse_hcl(F, t), t).1, 2);
    assert_eq!(error_at(parse_hcl(F, t), t).2, 8);
    let t = "A = {\n  B = 1\n";
    let (_, line, col, msg) = error_at(parse_hcl(F, t), t);
    assert_eq!((line, col), (1, 5));
    assert!(msg.contains("unclosed"), "{msg}");
    let t = "A = \"open\nB = 1\n";
    assert_eq!(error_at(parse_hcl(F, t), t).1, 1);
    let t = "{\n  \"a\": 1,\n}\n";
    let (code, line, _, _) = error_at(parse_json(F, t), t);
    assert_eq!((code, line), (Code::JsonSyntax, 2)); // the trailing comma itself
    let t = "a: 1\n  b: 2\n c: [\n";
    let (code, _, _, _) = error_at(parse_yaml(F, t), t);
    assert_eq!(code, Code::YamlSyntax);
}

#[test]
fn yaml_spans_are_bytes_even_after_multibyte_characters() {
    let t = "café: \"ü\"\nName: web\n";
    let docs = parse_yaml(F, t).unwrap();
    let e = docs[0].get_ci("name").unwrap();
    assert_eq!(
        &t[e.key_span.start as usize..e.key_span.end as usize],
        "Name"
    );
    assert_eq!(e.value.as_str(), Some("web"));
}

#[test]
fn yaml_files_hold_several_documents_and_skip_empty_ones() {
    let docs = parse_yaml(F, "---\na: 1\n---\n---\nb: 2\n").unwrap();
    assert_eq!(docs.len(), 2);
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("a = {}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse_hcl(F, &deep).is_err());
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse_json(F, &deep).is_err());
    assert!(parse_yaml(F, &deep).is_err());
}

fn punctuation() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "{", "}", "[", "]", "=", ":", ",", "\"", "\n", " ", "#", "//", "/*", "*/", "<<EOF\n",
            "<<-X\n", "EOF\n", "${", "%{", "a", "Kind", "-", "1", "0x", ".5e", "true", "\\", "é",
            "---\n", "- ", "&a ", "*a", "|\n", "'", "\t",
        ]),
        0..48,
    )
    .prop_map(|v| v.concat())
}

fn spans_ok(text: &str, n: &Node) -> bool {
    let ok = |s: mesh_diagnostics::Span| {
        (s.end as usize) <= text.len()
            && text.is_char_boundary(s.start as usize)
            && text.is_char_boundary(s.end as usize)
    };
    ok(n.span)
        && match &n.kind {
            NodeKind::List(items) => items.iter().all(|i| spans_ok(text, i)),
            NodeKind::Object(es) => es
                .iter()
                .all(|e| ok(e.key_span) && spans_ok(text, &e.value)),
            _ => true,
        }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 700, ..ProptestConfig::default() })]

    #[test]
    fn no_input_panics_and_spans_stay_in_the_text(text in punctuation(), any_text in ".{0,64}") {
        for t in [&text, &any_text] {
            if let Ok(n) = parse_hcl(F, t) { prop_assert!(spans_ok(t, &n)); }
            if let Ok(n) = parse_json(F, t) { prop_assert!(spans_ok(t, &n)); }
            if let Ok(docs) = parse_yaml(F, t) { for n in &docs { prop_assert!(spans_ok(t, n)); } }
            for errs in [parse_hcl(F, t).err(), parse_json(F, t).err(), parse_yaml(F, t).map(|_| Node::new(Default::default(), NodeKind::Null)).err()].into_iter().flatten() {
                for d in errs {
                    let s = d.span.unwrap();
                    prop_assert!(s.start <= s.end && (s.end as usize) <= t.len().max(1));
                }
            }
        }
    }
}
