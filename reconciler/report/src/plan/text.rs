//! `plan`'s text, Terraform-like.

use mesh_plan::{Action, Plan};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Terraform-like text: `+` create, `~` update with the fields that change, `-` delete, in
/// apply order (with the reason when it is not the ordinary one: drift restored, an adoption);
/// then what is left alone: `!` what keeps Consul from matching the repository (blocked), `#`
/// what is only noted; and the outcome.
pub fn render(plan: &Plan) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let blocked = plan.blocked().count();
    if plan.steps.is_empty() && plan.refused.is_empty() {
        out.push_str("No changes. Consul matches the repository.\n");
    } else if plan.steps.is_empty() && blocked > 0 {
        out.push_str("No changes that mesh-gitops may make, and Consul does not match the repository; left alone:\n");
    } else if plan.steps.is_empty() {
        out.push_str("No changes that mesh-gitops may make; left alone:\n");
    } else {
        out.push_str("mesh-gitops will make these changes, in this order:\n\n");
    }
    for s in &plan.steps {
        let _ = write!(out, "  {} {} \"{}\"", s.action.sign(), s.kind, s.name);
        match s.action {
            Action::Record | Action::Forget => {
                let _ = writeln!(out, ": {}", s.reason);
                continue;
            }
            _ if !s.is_routine() && !s.root_rotation => {
                let _ = writeln!(out, ": {}", s.reason);
            }
            _ if s.root_rotation => {
                let _ = writeln!(
                    out,
                    "  (ROOT ROTATION: a new root, cross-signed by the current one)"
                );
            }
            _ => out.push('\n'),
        }
        let before = flatten(s.before.as_ref());
        let after = flatten(s.after.as_ref());
        let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for k in keys {
            match (before.get(k), after.get(k)) {
                (Some(a), Some(b)) if a == b => {}
                (Some(Value::String(a)), Some(Value::String(b)))
                    if a.contains('\n') || b.contains('\n') =>
                {
                    let _ = writeln!(out, "      ~ {k}:");
                    line_diff(&mut out, a, b);
                }
                (Some(a), Some(b)) => {
                    let _ = writeln!(out, "      ~ {k}: {} -> {}", a, b);
                }
                (None, Some(b)) if s.action == Action::Create => {
                    block(&mut out, "        ", k, b);
                }
                (None, Some(b)) => block(&mut out, "      + ", k, b),
                (Some(a), None) if s.action != Action::Delete => block(&mut out, "      - ", k, a),
                _ => {}
            }
        }
    }
    for r in &plan.refused {
        let sign = if r.blocking { '!' } else { '#' };
        let _ = writeln!(out, "\n  {sign} {} \"{}\": {}", r.kind, r.name, r.reason);
    }
    for (s, d) in &plan.unavoidable_breaks {
        let _ = writeln!(out, "\n  ! {s} -> {d} is denied for a moment during the change: no order of the intention writes avoids it");
    }
    let count = |a: Action| plan.steps.iter().filter(|s| s.action == a).count();
    let _ = write!(
        out,
        "\nPlan: {} to create, {} to update, {} to delete",
        count(Action::Create),
        count(Action::Update),
        count(Action::Delete)
    );
    let records = count(Action::Record) + count(Action::Forget);
    if records > 0 {
        let _ = write!(out, ", {records} inventory record(s)");
    }
    out.push_str(".\n");
    if blocked > 0 {
        let _ = writeln!(
            out,
            "Blocked: {blocked} declared object(s) marked \"!\" cannot be brought to the repository's state; Consul will not match the repository (exit code 4)."
        );
    }
    out
}

/// A leaf; a multi-line string (ACL rules) as an indented block rather than one escaped line.
fn block(out: &mut String, lead: &str, k: &str, v: &Value) {
    use std::fmt::Write as _;
    match v {
        Value::String(text) if text.contains('\n') => {
            let _ = writeln!(out, "{lead}{k}: <<EOT");
            for line in text.lines() {
                let _ = writeln!(out, "{:width$}    {line}", "", width = lead.len());
            }
            let _ = writeln!(out, "{:width$}EOT", "", width = lead.len());
        }
        _ => {
            let _ = writeln!(out, "{lead}{k}: {}", v);
        }
    }
}

/// The lines that differ between two texts, with the common head and tail trimmed.
fn line_diff(out: &mut String, a: &str, b: &str) {
    use std::fmt::Write as _;
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    for line in &a[head..a.len() - tail] {
        let _ = writeln!(out, "          - {line}");
    }
    for line in &b[head..b.len() - tail] {
        let _ = writeln!(out, "          + {line}");
    }
}

/// JSON leaves by path (`Sources[0].Action`); empty lists and strings are how Consul spells
/// "absent", so they are left out.
fn flatten(v: Option<&Value>) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, x, out);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                for (i, x) in a.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), x, out);
                }
            }
            Value::Array(_) => {}
            Value::String(x) if x.is_empty() => {}
            other => {
                out.insert(prefix.to_owned(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Some(v) = v {
        walk("", v, &mut out);
    }
    out.remove("Kind");
    out.remove("Name");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_model::EntryKind;
    use mesh_plan::{ObjectKind, Step};
    use serde_json::json;

    fn step(action: Action, name: &str, before: Option<Value>, after: Option<Value>) -> Step {
        Step {
            action,
            kind: ObjectKind::ConfigEntry(EntryKind::ServiceDefaults),
            name: name.into(),
            reason: String::new(),
            before,
            after,
            cas: 0,
            id: None,
            root_rotation: false,
        }
    }

    #[test]
    fn creates_list_their_fields_and_updates_only_what_changes() {
        let plan = Plan {
            steps: vec![
                step(
                    Action::Create,
                    "api",
                    None,
                    Some(json!({"Kind": "service-defaults", "Name": "api", "Protocol": "grpc"})),
                ),
                step(
                    Action::Update,
                    "web",
                    Some(
                        json!({"Kind": "service-defaults", "Name": "web", "Protocol": "tcp", "Meta": {"a": "1"}}),
                    ),
                    Some(
                        json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http", "Meta": {"a": "1"}}),
                    ),
                ),
            ],
            ..Plan::default()
        };
        assert_eq!(
            render(&plan),
            "mesh-gitops will make these changes, in this order:\n\n  + service-defaults \"api\"\n        Protocol: \"grpc\"\n  ~ service-defaults \"web\"\n      ~ Protocol: \"tcp\" -> \"http\"\n\nPlan: 1 to create, 1 to update, 0 to delete.\n"
        );
        assert_eq!(
            render(&Plan::default()),
            "No changes. Consul matches the repository.\n\nPlan: 0 to create, 0 to update, 0 to delete.\n"
        );
    }
}
