//! Suspension: `mesh-gitops suspend` sets a flag in Consul KV (`mesh-gitops/<owner>/suspended`)
//! that whichever replica leads reads whenever a pass has changes to make; while it is set
//! nothing is applied or healed (new commits are still gated, and the changes left pending are
//! named in the status). `mesh-gitops resume` removes it. The flag is watched like the
//! inventory, so a resume is acted on within a blocking-query round.

use serde::{Deserialize, Serialize};

/// The KV key of an owner's suspension flag.
pub fn suspended_key(owner: &str) -> String {
    format!("mesh-gitops/{owner}/suspended")
}

/// Who suspended the loop, why and when (the value of the flag).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub reason: String,
    /// RFC 3339, UTC.
    #[serde(default)]
    pub time: String,
}

impl Suspension {
    /// The status's reason while suspended.
    pub fn describe(&self) -> String {
        let mut out = "suspended".to_owned();
        if !self.by.is_empty() {
            out.push_str(&format!(" by {}", self.by));
        }
        if !self.time.is_empty() {
            out.push_str(&format!(" at {}", self.time));
        }
        if !self.reason.is_empty() {
            out.push_str(&format!(": {}", self.reason));
        }
        out.push_str("; nothing is applied or healed until `mesh-gitops resume`");
        out
    }

    /// Reads a flag's value; a value that is not our JSON (set by hand) still suspends.
    pub fn from_bytes(bytes: &[u8]) -> Suspension {
        serde_json::from_slice(bytes).unwrap_or_else(|_| Suspension {
            reason: String::from_utf8_lossy(bytes).trim().to_owned(),
            ..Suspension::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_set_by_hand_still_suspends_and_says_why() {
        let s = Suspension::from_bytes(b"maintenance window\n");
        assert_eq!(s.reason, "maintenance window");
        assert_eq!(
            s.describe(),
            "suspended: maintenance window; nothing is applied or healed until `mesh-gitops resume`"
        );
        let s = Suspension::from_bytes(
            br#"{"by": "ana", "reason": "", "time": "2026-01-01T00:00:00Z"}"#,
        );
        assert!(s
            .describe()
            .starts_with("suspended by ana at 2026-01-01T00:00:00Z;"));
    }
}
