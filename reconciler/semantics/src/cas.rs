//! Check-and-set on config entries (consul-semantics 1.3) with Consul's no-op suppression
//! (1.2 step 7): an identical write succeeds without a new index, whatever the `cas` value.

use mesh_model::ConfigEntry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// Store the entry (answer `true`).
    Write,
    /// Identical to what is stored: answer `true`, change nothing, keep the index.
    Skip,
    /// Answer `false`: the caller must re-read.
    Conflict,
}

/// `existing` is the stored entry and its ModifyIndex; both entries are normalized. Equality
/// ignores source spans.
pub fn decide_put(
    existing: Option<(u64, &ConfigEntry)>,
    cas: Option<u64>,
    proposed: &ConfigEntry,
) -> CasOutcome {
    if let Some((_, stored)) = existing {
        if stored.to_json() == proposed.to_json() {
            return CasOutcome::Skip;
        }
    }
    match (existing, cas) {
        (_, None) => CasOutcome::Write,
        (None, Some(0)) => CasOutcome::Write,
        (None, Some(_)) => CasOutcome::Conflict,
        (Some(_), Some(0)) => CasOutcome::Conflict,
        (Some((index, _)), Some(n)) if n == index => CasOutcome::Write,
        (Some(_), Some(_)) => CasOutcome::Conflict,
    }
}

/// Delete: a missing entry is a successful no-op; with `cas` the index must match.
pub fn decide_delete(existing: Option<u64>, cas: Option<u64>) -> CasOutcome {
    match (existing, cas) {
        (None, _) => CasOutcome::Skip,
        (Some(_), None) => CasOutcome::Write,
        (Some(index), Some(n)) if n == index => CasOutcome::Write,
        (Some(_), Some(_)) => CasOutcome::Conflict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_model::ServiceDefaults;

    fn sd(proto: &str) -> ConfigEntry {
        ConfigEntry::ServiceDefaults(ServiceDefaults {
            name: "web".into(),
            protocol: Some(proto.into()),
            ..Default::default()
        })
    }

    #[test]
    fn the_cas_table() {
        let stored = sd("http");
        let other = sd("grpc");
        // PUT
        assert_eq!(decide_put(None, Some(0), &other), CasOutcome::Write);
        assert_eq!(
            decide_put(Some((5, &stored)), Some(0), &other),
            CasOutcome::Conflict
        );
        assert_eq!(decide_put(None, Some(3), &other), CasOutcome::Conflict);
        assert_eq!(
            decide_put(Some((5, &stored)), Some(5), &other),
            CasOutcome::Write
        );
        assert_eq!(
            decide_put(Some((5, &stored)), Some(4), &other),
            CasOutcome::Conflict
        );
        assert_eq!(
            decide_put(Some((5, &stored)), None, &other),
            CasOutcome::Write
        );
        // No-op suppression: identical writes succeed with any cas and bump nothing.
        assert_eq!(
            decide_put(Some((5, &stored)), Some(0), &stored),
            CasOutcome::Skip
        );
        assert_eq!(
            decide_put(Some((5, &stored)), Some(1), &stored),
            CasOutcome::Skip
        );
        assert_eq!(
            decide_put(Some((5, &stored)), None, &stored),
            CasOutcome::Skip
        );
        // DELETE
        assert_eq!(decide_delete(Some(5), Some(5)), CasOutcome::Write);
        assert_eq!(decide_delete(Some(5), Some(4)), CasOutcome::Conflict);
        assert_eq!(decide_delete(None, Some(9)), CasOutcome::Skip);
        assert_eq!(decide_delete(Some(5), None), CasOutcome::Write);
    }
}
