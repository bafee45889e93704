//! The process's exit codes, in one table: `--help` prints [`HELP`], the README's command table
//! and `docs/exit-codes.md` say the same.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success: valid, nothing to change, applied, or in sync.
    Ok = 0,
    /// An error: invalid input, or a failure talking to Consul, git or the file system.
    Error = 1,
    /// `plan` found changes.
    Changes = 2,
    /// A verdict against: `check` or `simulate` found a violation, or `status` reports a refused
    /// or failed commit or drift.
    Violation = 3,
    /// The repository cannot be reached as things stand: a declared object is owned by another
    /// owner, or exists unowned, differs and is not adopted (`plan`, `apply`, `status`), whatever
    /// else changes.
    Blocked = 4,
    /// `apply --plan`: the saved plan is stale (Consul or the repository changed since it was
    /// made); nothing was written.
    Stale = 5,
}

impl Exit {
    pub const ALL: [Exit; 6] = [
        Exit::Ok,
        Exit::Error,
        Exit::Changes,
        Exit::Violation,
        Exit::Blocked,
        Exit::Stale,
    ];

    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "success",
            Exit::Error => "error or invalid input",
            Exit::Changes => "plan has changes",
            Exit::Violation => "violation (check, simulate) or not converged (status)",
            Exit::Blocked => "blocked: objects owned elsewhere or unowned and different",
            Exit::Stale => "saved plan stale: Consul or the repository changed since",
        }
    }
}

/// A plan's outcome as `plan` and `apply` report it.
impl From<mesh_plan::Outcome> for Exit {
    fn from(o: mesh_plan::Outcome) -> Exit {
        match o {
            mesh_plan::Outcome::InSync => Exit::Ok,
            mesh_plan::Outcome::Changes => Exit::Changes,
            mesh_plan::Outcome::Blocked => Exit::Blocked,
        }
    }
}

/// The `--help` footer.
pub const HELP: &str = "Exit codes: 0 success, 1 error or invalid input, 2 plan has changes, \
                        3 violation (check, simulate) or not converged (status), \
                        4 blocked: objects owned elsewhere or unowned and different \
                        (plan, apply, status), \
                        5 saved plan stale: Consul or the repository changed since \
                        (apply --plan; nothing written).";

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_footer_names_every_code_with_its_meaning() {
        for e in Exit::ALL {
            let line = format!("{} {}", e as u8, e.meaning());
            assert!(HELP.contains(&line), "{HELP:?} lacks {line:?}");
        }
    }

    #[test]
    fn the_json_plan_and_the_process_give_an_outcome_the_same_code() {
        use mesh_plan::Outcome;
        for o in [Outcome::InSync, Outcome::Changes, Outcome::Blocked] {
            assert_eq!(Exit::from(o) as u8, o.exit_code(), "{o:?}");
        }
    }

    #[test]
    fn the_documentation_lists_every_code() {
        let doc = include_str!("../../../docs/exit-codes.md");
        for e in Exit::ALL {
            let row = format!("| {} | `{:?}` |", e as u8, e);
            assert!(doc.contains(&row), "docs/exit-codes.md lacks {row:?}");
        }
    }
}
