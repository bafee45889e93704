//! `plan --format json`: the plan as data (steps with their typed kinds written as Consul's
//! names, refusals with whether they block, unavoidable breaks), and its outcome with the exit
//! code that reports it (`in-sync` 0, `changes` 2, `blocked` 4).

use mesh_plan::Plan;

pub fn render(plan: &Plan) -> String {
    let mut v = serde_json::to_value(plan).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(m) = &mut v {
        let outcome = plan.outcome();
        m.insert("outcome".into(), serde_json::json!(outcome));
        m.insert("exit_code".into(), serde_json::json!(outcome.exit_code()));
    }
    let mut out = serde_json::to_string_pretty(&v).unwrap_or_else(|_| "null".to_owned());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_plan_is_an_object_with_no_steps() {
        let v: serde_json::Value = serde_json::from_str(&render(&Plan::default())).unwrap();
        assert_eq!(v["steps"], serde_json::json!([]));
        assert_eq!(v["outcome"], "in-sync");
        assert_eq!(v["exit_code"], 0);
    }

    #[test]
    fn a_blocking_refusal_makes_the_outcome_blocked_with_code_4() {
        let plan = Plan {
            refused: vec![mesh_plan::Refusal {
                kind: mesh_plan::ObjectKind::ConfigEntry(mesh_model::EntryKind::ServiceDefaults),
                name: "api".into(),
                reason: "exists and is owned by \"payments\"; it is left unchanged".into(),
                blocking: true,
                owner: Some("payments".into()),
            }],
            ..Plan::default()
        };
        let v: serde_json::Value = serde_json::from_str(&render(&plan)).unwrap();
        assert_eq!(
            (&v["outcome"], &v["exit_code"], &v["refused"][0]["owner"]),
            (
                &serde_json::json!("blocked"),
                &serde_json::json!(4),
                &serde_json::json!("payments")
            )
        );
    }
}
