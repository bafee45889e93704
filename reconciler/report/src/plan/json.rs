//! `plan --format json`: the plan as data (steps with their typed kinds written as Consul's
//! names, refusals, unavoidable breaks).

use mesh_plan::Plan;

pub fn render(plan: &Plan) -> String {
    let mut out = serde_json::to_string_pretty(plan).unwrap_or_else(|_| "null".to_owned());
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
    }
}
