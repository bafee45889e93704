//! Guardrails: the team's own rules about the mesh, in `policies/*.hcl` of the repository, and
//! built-in packs (the project's top-level `policies/`) enabled by `guardrails = [...]`.
//!
//! ```hcl
//! assert "only-dynamic-app-reaches-mysql" {
//!   description = "mysql-server is reachable from dynamic-app and from nothing else"
//!   allow = [{ from = "dynamic-app", to = "mysql-server" }]
//!   deny  = [{ from = "*", to = "mysql-server", except = ["dynamic-app"] }]
//! }
//!
//! forbid "acl-default-deny" {
//!   description = "ACLs are enabled and deny by default"
//!   findings    = ["W1005"]
//! }
//! ```
//! `from`/`to` take a service name or `*` (every service the repository knows). A `forbid`
//! turns the listed findings into guardrail failures.

use crate::graph::PolicyGraph;
use mesh_diagnostics::{Code, Diagnostic, FileId, Span};
use mesh_syntax::{Node, NodeKind};

/// Built-in packs: name and text.
pub const PACKS: &[(&str, &str)] = &[
    (
        "production",
        include_str!("../../../policies/production.hcl"),
    ),
    (
        "zero-trust",
        include_str!("../../../policies/zero-trust.hcl"),
    ),
];

/// Where built-in packs live when parsed; their spans are never shown.
const PACK_FILE: FileId = FileId(u32::MAX - 1);

#[derive(Debug, Clone, PartialEq)]
pub struct Guardrail {
    /// `name`, or `pack/name` for built-in packs.
    pub name: String,
    pub description: String,
    /// The rule's block in the repository; `None` for built-in packs.
    pub span: Option<Span>,
    pub rule: Rule,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Reach {
        allow: Vec<PairRule>,
        deny: Vec<PairRule>,
    },
    Forbid(Vec<Code>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PairRule {
    pub from: String,
    pub to: String,
    pub except: Vec<String>,
}

/// Parses one guardrail file (already parsed as HCL). `pack` is the pack name for built-ins.
pub fn parse(node: &Node, pack: Option<&str>, diags: &mut Vec<Diagnostic>) -> Vec<Guardrail> {
    let mut out = Vec::new();
    let invalid = |span: Span, msg: String, help: &str| {
        Diagnostic::new(Code::GuardrailInvalid, span, msg).with_help(help.to_owned())
    };
    for e in node.as_object().unwrap_or(&[]) {
        let kind = e.key.as_str();
        if kind != "assert" && kind != "forbid" {
            diags.push(invalid(e.key_span, format!("unknown guardrail block \"{kind}\""), "guardrail files hold `assert \"name\" { ... }` and `forbid \"name\" { ... }` blocks"));
            continue;
        }
        let Some(label) = e.labels.first() else {
            diags.push(invalid(
                e.key_span,
                format!("{kind} block needs a name"),
                "write `assert \"name\" { ... }`",
            ));
            continue;
        };
        let name = match pack {
            Some(p) => format!("{p}/{}", label.value),
            None => label.value.clone(),
        };
        let mut description = String::new();
        let mut allow = Vec::new();
        let mut deny = Vec::new();
        let mut codes = Vec::new();
        for f in e.value.as_object().unwrap_or(&[]) {
            match (kind, f.key.as_str()) {
                (_, "description") => description = f.value.as_str().unwrap_or_default().to_owned(),
                ("assert", "allow") => allow = pair_rules(&f.value, diags),
                ("assert", "deny") => deny = pair_rules(&f.value, diags),
                ("forbid", "findings") => {
                    for item in f.value.as_list().unwrap_or(&[]) {
                        match item.as_str().and_then(Code::from_code_str) {
                            Some(c) => codes.push(c),
                            None => diags.push(invalid(
                                item.span,
                                format!(
                                    "{} is not a finding code",
                                    item.as_str().unwrap_or("this")
                                ),
                                "list codes such as \"W1004\"; see docs/diagnostics.md",
                            )),
                        }
                    }
                }
                _ => diags.push(invalid(
                    f.key_span,
                    format!("unknown field \"{}\" in {kind}", f.key),
                    if kind == "assert" {
                        "assert takes description, allow and deny"
                    } else {
                        "forbid takes description and findings"
                    },
                )),
            }
        }
        let rule = if kind == "assert" {
            Rule::Reach { allow, deny }
        } else {
            Rule::Forbid(codes)
        };
        let span = (pack.is_none()).then_some(e.key_span.to(e.value.span));
        out.push(Guardrail {
            name,
            description,
            span,
            rule,
        });
    }
    out
}

fn pair_rules(list: &Node, diags: &mut Vec<Diagnostic>) -> Vec<PairRule> {
    let mut out = Vec::new();
    let items: Vec<&Node> = match &list.kind {
        NodeKind::List(items) => items.iter().collect(),
        _ => vec![list],
    };
    for item in items {
        let get = |k: &str| {
            item.get_ci(k)
                .and_then(|e| e.value.as_str())
                .map(str::to_owned)
        };
        match (get("from"), get("to")) {
            (Some(from), Some(to)) => out.push(PairRule {
                from,
                to,
                except: item
                    .get_ci("except")
                    .and_then(|e| e.value.as_list())
                    .map(|l| {
                        l.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            _ => diags.push(
                Diagnostic::new(
                    Code::GuardrailInvalid,
                    item.span,
                    "a rule needs `from` and `to`",
                )
                .with_help("write `{ from = \"web\", to = \"api\" }`; either may be \"*\""),
            ),
        }
    }
    out
}

/// The guardrails of built-in packs named in the settings; unknown names are reported.
pub fn packs(
    names: &[String],
    settings_span: Option<Span>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Guardrail> {
    let mut out = Vec::new();
    for name in names {
        match PACKS.iter().find(|(n, _)| n == name) {
            Some((n, text)) => match mesh_syntax::parse_hcl(PACK_FILE, text) {
                Ok(node) => out.extend(parse(&node, Some(n), diags)),
                Err(e) => diags.extend(e),
            },
            None => {
                let known: Vec<&str> = PACKS.iter().map(|(n, _)| *n).collect();
                let mut d = Diagnostic::global(
                    Code::UnknownGuardrailPack,
                    format!("unknown guardrail pack \"{name}\""),
                )
                .with_help(format!("built-in packs: {}", known.join(", ")));
                d.span = settings_span;
                diags.push(d);
            }
        }
    }
    out
}

/// Applies the guardrails: failed assertions become errors at their block (or at the settings
/// for built-in packs); forbidden findings become guardrail errors in place.
pub fn evaluate(
    guardrails: &[Guardrail],
    g: &PolicyGraph,
    settings_span: Option<Span>,
    findings: &mut Vec<Diagnostic>,
) {
    for gr in guardrails {
        match &gr.rule {
            Rule::Reach { allow, deny } => {
                let mut violations = Vec::new();
                for r in allow {
                    for (s, d) in expand(g, r) {
                        if !g.decide(&s, &d).allowed {
                            violations.push(format!("{s} -> {d} is denied"));
                        }
                    }
                }
                for r in deny {
                    for (s, d) in expand(g, r) {
                        if g.decide(&s, &d).allowed {
                            violations.push(format!("{s} -> {d} is allowed"));
                        }
                    }
                }
                if !violations.is_empty() {
                    let shown: Vec<&str> = violations.iter().take(5).map(String::as_str).collect();
                    let more = if violations.len() > 5 {
                        format!(" (and {} more)", violations.len() - 5)
                    } else {
                        String::new()
                    };
                    let what = if gr.description.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", gr.description)
                    };
                    let mut d = Diagnostic::global(
                        Code::GuardrailFailed,
                        format!(
                            "guardrail \"{}\"{what} fails: {}{more}",
                            gr.name,
                            shown.join(", ")
                        ),
                    )
                    .with_help(
                        "change the intentions, or the guardrail if the rule itself changed",
                    );
                    d.span = gr.span.or(settings_span);
                    findings.push(d);
                }
            }
            Rule::Forbid(codes) => {
                for f in findings.iter_mut() {
                    if codes.contains(&f.code) {
                        let what = if gr.description.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", gr.description)
                        };
                        f.message = format!(
                            "guardrail \"{}\"{what} fails: {} [{}]",
                            gr.name, f.message, f.code
                        );
                        f.code = Code::GuardrailFailed;
                        f.severity = mesh_diagnostics::Severity::Error;
                        if let Some(span) = gr.span {
                            f.labels
                                .push((span, "required by this guardrail".to_owned()));
                        }
                    }
                }
            }
        }
    }
}

fn expand(g: &PolicyGraph, r: &PairRule) -> Vec<(String, String)> {
    let side = |x: &str| -> Vec<String> {
        if x == "*" {
            g.services.iter().cloned().collect()
        } else {
            vec![x.to_owned()]
        }
    };
    let mut out = Vec::new();
    for s in side(&r.from) {
        if r.except.contains(&s) {
            continue;
        }
        for d in side(&r.to) {
            if s != d {
                out.push((s.clone(), d));
            }
        }
    }
    out
}
