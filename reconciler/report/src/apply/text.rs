//! The lines `apply` prints as it goes, and `plan`'s line on stderr about reading Consul.

use mesh_apply::{ApplyEvent, PlanStats};

/// One line of what reading Consul for a plan cost, for stderr.
pub fn stats(s: &PlanStats) -> String {
    format!(
        "read {} object(s) from {} with {} request(s); planned in {} ms",
        s.objects,
        s.address,
        s.requests,
        s.elapsed.as_millis()
    )
}

/// One line of an apply's progress (without the newline); `None` for the events that are
/// progress only (the plan's size, a step starting).
pub fn event(e: &ApplyEvent<'_>) -> Option<String> {
    Some(match e {
        // `!` keeps Consul from matching the repository; `#` is only noted (as in `plan`).
        ApplyEvent::Refused(r) => format!(
            "  {} {} \"{}\": {}",
            if r.blocking { '!' } else { '#' },
            r.kind,
            r.name,
            r.reason
        ),
        ApplyEvent::Planned { .. } | ApplyEvent::Started(_) => return None,
        ApplyEvent::Applied(s) => {
            let note = if s.root_rotation {
                "  (root rotated)"
            } else {
                ""
            };
            format!("  {} {} \"{}\"{note}", s.action.sign(), s.kind, s.name)
        }
        ApplyEvent::Conflict(s) => format!(
            "  ? {} \"{}\" changed in Consul meanwhile; re-reading",
            s.kind, s.name
        ),
        ApplyEvent::Replanned { steps } => {
            format!("re-planned after a concurrent change: {steps} step(s) left")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replan_says_how_many_steps_are_left() {
        assert_eq!(
            event(&ApplyEvent::Replanned { steps: 3 }).as_deref(),
            Some("re-planned after a concurrent change: 3 step(s) left")
        );
    }
}
