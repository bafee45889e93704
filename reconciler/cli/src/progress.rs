//! Progress on a terminal: one line on stderr, `applying: 3/10 step(s)`, redrawn in place and
//! erased at the end. None when stderr is not a terminal or `CI` is set, so logs, pipes and CI
//! output never carry it.

use std::io::{IsTerminal as _, Write as _};

pub struct Progress {
    label: &'static str,
    unit: &'static str,
    shown: bool,
    drawn: bool,
}

impl Progress {
    /// A progress line for `label` counting `unit`s, shown only on an interactive terminal.
    pub fn new(label: &'static str, unit: &'static str) -> Progress {
        let shown = std::env::var_os("CI").is_none() && std::io::stderr().is_terminal();
        Progress {
            label,
            unit,
            shown,
            drawn: false,
        }
    }

    /// Draws `done` of `total`.
    pub fn set(&mut self, done: u64, total: u64) {
        if !self.shown || total == 0 {
            return;
        }
        let mut err = std::io::stderr().lock();
        // A terminal that went away is no reason to fail the command.
        let _ = write!(err, "\r\x1b[2K{}: {done}/{total} {}", self.label, self.unit);
        let _ = err.flush();
        self.drawn = true;
    }

    /// Erases the line, so what is printed next starts on a clean line.
    pub fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
