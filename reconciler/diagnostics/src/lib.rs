//! Source spans, the source map and user-facing diagnostics.
//!
//! Every problem mesh-gitops finds in a repository is a [`Diagnostic`]: a severity, a stable
//! [`Code`], a lower-case message, a primary [`Span`] and an optional hint. Spans are byte
//! offsets into a file registered in the [`SourceMap`]; line and column are computed only when
//! rendering. This crate does no IO: callers hand it file contents.

mod code;
mod render;
mod source;

pub use code::Code;
pub use render::{render_json, render_text, JsonDiagnostic};
pub use source::{FileId, Location, SourceMap, Span};

/// How bad a finding is. Errors make `validate` exit 1; warnings are printed only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// One problem, pointing at the source that causes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    /// Lower-case, no trailing period.
    pub message: String,
    /// Where the problem is. `None` only for problems with no file (e.g. an unreadable root).
    pub span: Option<Span>,
    /// Secondary places, e.g. the first definition of a duplicate.
    pub labels: Vec<(Span, String)>,
    /// A hint on how to fix it.
    pub help: Option<String>,
    /// The field the problem is about, in Consul's spelling (`HTTP.PathPrefix`, `Sources[1].Name`),
    /// relative to the object `span` points at when it was made; the loader then moves `span`
    /// onto that field's key and value in the file. `None` for a problem with no one field.
    pub field: Option<String>,
}

impl Diagnostic {
    /// An error of `code` at `span`. The severity comes from the code's default.
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: code.default_severity(),
            code,
            message: message.into(),
            span: Some(span),
            labels: Vec::new(),
            help: None,
            field: None,
        }
    }

    /// A diagnostic with no source location.
    pub fn global(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: code.default_severity(),
            code,
            message: message.into(),
            span: None,
            labels: Vec::new(),
            help: None,
            field: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Names the field the problem is about, relative to the object at `span`.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push((span, message.into()));
        self
    }

    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A growing list of diagnostics; loaders push into it and never stop at the first problem.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn error(&mut self, code: Code, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        self.items.push(Diagnostic::new(code, span, message));
        self.items.last_mut().expect("just pushed")
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(other);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// The diagnostics pushed since there were `len` of them, to refine where they point.
    pub fn since_mut(&mut self, len: usize) -> &mut [Diagnostic] {
        let from = len.min(self.items.len());
        &mut self.items[from..]
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// Sorted by file, position, then code, so output does not depend on load order.
    pub fn into_sorted(mut self, sources: &SourceMap) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| {
            let key = |d: &Diagnostic| {
                (
                    d.span.map(|s| sources.path(s.file).to_owned()),
                    d.span.map(|s| (s.start, s.end)),
                    d.code,
                    d.message.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        self.items.dedup();
        self.items
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}
