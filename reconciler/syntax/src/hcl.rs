//! A parser for the literal syntax of HCL 1 and HCL 2 together.
//!
//! `consul config write` reads files with HCL 1 rules, which real files rely on: object items
//! need no separator (`{ Name = "web" Action = "allow" }`) and a block may stand inside an object
//! (`[{ Action = "allow"  HTTP { PathPrefix = "/admin" } }]`). HCL 2 parsers reject both, so
//! this parser accepts the union of both literal syntaxes. Expressions (`var.x`, `a + b`,
//! function calls) are not evaluated by Consul and are reported.

use crate::node::{Entry, EntryStyle, Label, Node, NodeKind};
use mesh_diagnostics::{Code, Diagnostic, FileId, Span};

/// Deeper nesting than this is reported instead of risking the stack.
const MAX_DEPTH: usize = 128;

/// Parses an HCL body (a file) into an object node.
pub fn parse_hcl(file: FileId, text: &str) -> Result<Node, Vec<Diagnostic>> {
    let mut p = Parser {
        file,
        src: text.as_bytes(),
        text,
        pos: 0,
        depth: 0,
    };
    // A UTF-8 byte order mark is not content.
    if text.starts_with('\u{feff}') {
        p.pos = 3;
    }
    match p.body(None) {
        Ok(entries) => Ok(Node::new(
            Span::new(file, 0, text.len()),
            NodeKind::Object(entries),
        )),
        Err(d) => Err(vec![*d]),
    }
}

type PResult<T> = Result<T, Box<Diagnostic>>;

struct Parser<'a> {
    file: FileId,
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start, end)
    }

    fn err(&self, start: usize, end: usize, message: impl Into<String>) -> Box<Diagnostic> {
        Box::new(Diagnostic::new(
            Code::HclSyntax,
            self.span(start, end.max(start)),
            message,
        ))
    }

    fn err_help(
        &self,
        start: usize,
        end: usize,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Box<Diagnostic> {
        Box::new(
            Diagnostic::new(Code::HclSyntax, self.span(start, end.max(start)), message)
                .with_help(help),
        )
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, off: usize) -> Option<u8> {
        self.src.get(self.pos + off).copied()
    }

    /// The token at the current position, for messages.
    fn describe_here(&self) -> String {
        match self.peek() {
            None => "end of file".to_owned(),
            Some(b'\n') => "end of line".to_owned(),
            Some(_) => {
                let rest = &self.text[self.pos..];
                let c = rest.chars().next().unwrap_or(' ');
                if c.is_alphanumeric() || c == '_' {
                    let word: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-' || *c == '.')
                        .take(24)
                        .collect();
                    format!("`{word}`")
                } else {
                    format!("`{c}`")
                }
            }
        }
    }

    fn here_len(&self) -> usize {
        self.text[self.pos..]
            .chars()
            .next()
            .map(char::len_utf8)
            .unwrap_or(0)
    }

    /// Skips spaces, tabs, comments and (if `newlines`) line breaks. Returns whether a line
    /// break was crossed.
    fn skip_ws(&mut self, newlines: bool) -> PResult<bool> {
        let mut crossed = false;
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r') => self.pos += 1,
                Some(b'\n') if newlines => {
                    crossed = true;
                    self.pos += 1;
                }
                Some(b'#') => self.skip_line_comment(),
                Some(b'/') if self.peek_at(1) == Some(b'/') => self.skip_line_comment(),
                Some(b'/') if self.peek_at(1) == Some(b'*') => {
                    let start = self.pos;
                    self.pos += 2;
                    loop {
                        match self.peek() {
                            None => {
                                return Err(self.err_help(
                                    start,
                                    start + 2,
                                    "unterminated block comment",
                                    "close it with `*/`",
                                ))
                            }
                            Some(b'*') if self.peek_at(1) == Some(b'/') => {
                                self.pos += 2;
                                break;
                            }
                            Some(b'\n') => {
                                crossed = true;
                                self.pos += 1;
                            }
                            Some(_) => self.pos += 1,
                        }
                    }
                }
                _ => return Ok(crossed),
            }
        }
    }

    fn skip_line_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == b'\n' {
                break;
            }
            self.pos += 1;
        }
    }

    fn enter(&mut self, at: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_help(
                at,
                at + 1,
                format!("nesting deeper than {MAX_DEPTH} levels"),
                "flatten the structure",
            ));
        }
        Ok(())
    }

    /// Items until `close` (or end of file for the top level). Items may be separated by
    /// newlines, commas, or nothing (HCL 1 objects).
    fn body(&mut self, close: Option<(u8, usize)>) -> PResult<Vec<Entry>> {
        let mut entries = Vec::new();
        loop {
            self.skip_ws(true)?;
            match (self.peek(), close) {
                (None, None) => return Ok(entries),
                (None, Some((c, open))) => {
                    return Err(self.err_help(
                        open,
                        open + 1,
                        format!("unclosed `{}`", if c == b'}' { '{' } else { '[' }),
                        format!("add the matching `{}`", c as char),
                    ))
                }
                (Some(c), Some((close_c, _))) if c == close_c => return Ok(entries),
                (Some(b','), Some(_)) => {
                    self.pos += 1;
                    continue;
                }
                (Some(b'}'), None) => {
                    return Err(self.err_help(
                        self.pos,
                        self.pos + 1,
                        "unexpected `}`",
                        "this closing brace has no matching `{`",
                    ))
                }
                _ => {}
            }
            entries.push(self.item(close.is_some())?);
            // After an item: a separator, a newline, the closing brace, or (inside objects)
            // simply the next item.
            let crossed = self.skip_ws(false)?;
            match self.peek() {
                Some(b'\n') | None => {}
                Some(b',') => {
                    if close.is_none() {
                        return Err(self.err(
                            self.pos,
                            self.pos + 1,
                            "unexpected `,` between top-level items",
                        ));
                    }
                    self.pos += 1;
                }
                Some(c) if Some(c) == close.map(|x| x.0) => {}
                Some(_) if close.is_some() || crossed => {}
                Some(_) => {
                    return Err(self.err_help(
                        self.pos,
                        self.pos + self.here_len(),
                        format!(
                            "expected a new line after an item, found {}",
                            self.describe_here()
                        ),
                        "put each top-level item on its own line",
                    ))
                }
            }
        }
    }

    /// A key or label: an identifier or a quoted string.
    fn key(&mut self) -> PResult<(String, Span)> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => {
                let (s, span) = self.quoted()?;
                Ok((s, span))
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.' || c >= 0x80
                    {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                // Never split a multi-byte character.
                while !self.text.is_char_boundary(self.pos) {
                    self.pos += 1;
                }
                Ok((
                    self.text[start..self.pos].to_owned(),
                    self.span(start, self.pos),
                ))
            }
            _ => Err(self.err_help(
                start,
                start + self.here_len(),
                format!("expected a key, found {}", self.describe_here()),
                "items are written `key = value` or `key { ... }`",
            )),
        }
    }

    fn item(&mut self, in_object: bool) -> PResult<Entry> {
        let (key, key_span) = self.key()?;
        let mut labels = Vec::new();
        loop {
            self.skip_ws(false)?;
            match self.peek() {
                Some(b'=') => {
                    if !labels.is_empty() {
                        return Err(self.err(
                            self.pos,
                            self.pos + 1,
                            "a labelled block needs `{` after its labels",
                        ));
                    }
                    self.pos += 1;
                    self.skip_ws(false)?;
                    let value = self.value()?;
                    return Ok(Entry {
                        key,
                        key_span,
                        labels,
                        value,
                        style: EntryStyle::Attribute,
                    });
                }
                Some(b':') if in_object && labels.is_empty() => {
                    self.pos += 1;
                    self.skip_ws(false)?;
                    let value = self.value()?;
                    return Ok(Entry {
                        key,
                        key_span,
                        labels,
                        value,
                        style: EntryStyle::Attribute,
                    });
                }
                Some(b'{') => {
                    let open = self.pos;
                    self.enter(open)?;
                    self.pos += 1;
                    let entries = self.body(Some((b'}', open)))?;
                    self.pos += 1;
                    self.depth -= 1;
                    let value = Node::new(self.span(open, self.pos), NodeKind::Object(entries));
                    return Ok(Entry {
                        key,
                        key_span,
                        labels,
                        value,
                        style: EntryStyle::Block,
                    });
                }
                Some(b'"') => {
                    let (value, span) = self.quoted()?;
                    labels.push(Label { value, span });
                }
                Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                    let (value, span) = self.key()?;
                    labels.push(Label { value, span });
                }
                _ => {
                    return Err(self.err_help(
                        self.pos,
                        self.pos + self.here_len(),
                        format!(
                            "expected `=` or `{{` after `{key}`, found {}",
                            self.describe_here()
                        ),
                        format!("write `{key} = value` or `{key} {{ ... }}`"),
                    ))
                }
            }
        }
    }

    fn value(&mut self) -> PResult<Node> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => {
                let (s, span) = self.quoted()?;
                Ok(Node::new(span, NodeKind::String(s)))
            }
            Some(b'<') if self.peek_at(1) == Some(b'<') => self.heredoc(),
            Some(b'{') => {
                self.enter(start)?;
                self.pos += 1;
                let entries = self.body(Some((b'}', start)))?;
                self.pos += 1;
                self.depth -= 1;
                Ok(Node::new(
                    self.span(start, self.pos),
                    NodeKind::Object(entries),
                ))
            }
            Some(b'[') => self.list(),
            Some(c) if c == b'-' || c.is_ascii_digit() => self.number(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let (word, span) = self.key()?;
                match word.as_str() {
                    "true" => Ok(Node::new(span, NodeKind::Bool(true))),
                    "false" => Ok(Node::new(span, NodeKind::Bool(false))),
                    "null" => Ok(Node::new(span, NodeKind::Null)),
                    _ => Err(self.err_help(
                        span.start as usize,
                        span.end as usize,
                        "expressions are not supported here",
                        "config entries take literal values; quote strings (\"...\")",
                    )),
                }
            }
            None => Err(self.err_help(
                start,
                start,
                "expected a value, found end of file",
                "complete the item",
            )),
            _ => Err(self.err_help(
                start,
                start + self.here_len(),
                format!("expected a value, found {}", self.describe_here()),
                "values are strings, numbers, true/false, lists [...] or objects {...}",
            )),
        }
    }

    fn list(&mut self) -> PResult<Node> {
        let open = self.pos;
        self.enter(open)?;
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws(true)?;
            match self.peek() {
                None => {
                    return Err(self.err_help(
                        open,
                        open + 1,
                        "unclosed `[`",
                        "add the matching `]`",
                    ))
                }
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                Some(b',') if !items.is_empty() => {
                    return Err(self.err(self.pos, self.pos + 1, "unexpected `,` in a list"));
                }
                _ => {}
            }
            items.push(self.value()?);
            let crossed = self.skip_ws(true)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {}
                // Tolerate a missing comma between items on separate lines.
                Some(_) if crossed => {}
                None => {}
                Some(_) => {
                    return Err(self.err_help(
                        self.pos,
                        self.pos + self.here_len(),
                        format!(
                            "expected `,` or `]` in a list, found {}",
                            self.describe_here()
                        ),
                        "separate list items with commas",
                    ))
                }
            }
        }
        self.depth -= 1;
        Ok(Node::new(self.span(open, self.pos), NodeKind::List(items)))
    }

    fn number(&mut self) -> PResult<Node> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        if self.peek() == Some(b'0') && matches!(self.peek_at(1), Some(b'x' | b'X')) {
            self.pos += 2;
            let digits = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                self.pos += 1;
            }
            let neg = self.src[start] == b'-';
            return match i64::from_str_radix(&self.text[digits..self.pos], 16) {
                Ok(v) => Ok(Node::new(
                    self.span(start, self.pos),
                    NodeKind::Int(if neg { -v } else { v }),
                )),
                Err(_) => Err(self.err(start, self.pos, "invalid hexadecimal number")),
            };
        }
        let mut float = false;
        while let Some(c) = self.peek() {
            match c {
                b'0'..=b'9' => self.pos += 1,
                b'.' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => {
                    float = true;
                    self.pos += 1;
                }
                b'e' | b'E' => {
                    float = true;
                    self.pos += 1;
                    if matches!(self.peek(), Some(b'+' | b'-')) {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
        let text = &self.text[start..self.pos];
        let span = self.span(start, self.pos);
        if !float {
            if let Ok(v) = text.parse::<i64>() {
                return Ok(Node::new(span, NodeKind::Int(v)));
            }
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Node::new(span, NodeKind::Float(v))),
            _ => Err(self.err(
                start,
                self.pos.max(start + 1),
                format!("invalid number `{text}`"),
            )),
        }
    }

    /// A double-quoted string. `${...}` and `%{...}` sequences are kept verbatim, including
    /// quotes and braces inside them.
    fn quoted(&mut self) -> PResult<(String, Span)> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err_help(
                    start,
                    start + 1,
                    "unterminated string",
                    "close the string with `\"`",
                ));
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok((out, self.span(start, self.pos)));
                }
                b'\n' => {
                    return Err(self.err_help(
                        start,
                        self.pos,
                        "unterminated string",
                        "close the string with `\"` before the end of the line, or use a heredoc",
                    ))
                }
                b'\\' => {
                    let esc = self.pos;
                    self.pos += 1;
                    match self.peek() {
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'u') | Some(b'U') => {
                            let n = if self.peek() == Some(b'u') { 4 } else { 8 };
                            let hex = self.text.get(self.pos + 1..self.pos + 1 + n).unwrap_or("");
                            let ch = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                            match ch {
                                Some(ch) if hex.len() == n => {
                                    out.push(ch);
                                    self.pos += n;
                                }
                                _ => {
                                    return Err(self.err(
                                        esc,
                                        self.pos + 1,
                                        "invalid unicode escape",
                                    ))
                                }
                            }
                        }
                        _ => {
                            return Err(self.err_help(
                                esc,
                                (self.pos + self.here_len()).max(esc + 1),
                                "invalid escape sequence",
                                "escapes are \\n, \\r, \\t, \\\", \\\\, \\uXXXX and \\UXXXXXXXX",
                            ))
                        }
                    }
                    self.pos += 1;
                }
                b'$' | b'%' if self.peek_at(1) == Some(b'{') => {
                    let from = self.pos;
                    self.template_sequence(start)?;
                    out.push_str(&self.text[from..self.pos]);
                }
                _ => {
                    let ch = self.text[self.pos..].chars().next().unwrap_or('\u{fffd}');
                    out.push(ch);
                    self.pos += ch.len_utf8().max(1);
                }
            }
        }
    }

    /// Skips `${ ... }` / `%{ ... }` with nested braces and strings, keeping it verbatim.
    fn template_sequence(&mut self, string_start: usize) -> PResult<()> {
        let open = self.pos;
        self.pos += 2;
        let mut depth = 1usize;
        while depth > 0 {
            match self.peek() {
                None | Some(b'\n') => {
                    return Err(self.err_help(
                        open,
                        open + 2,
                        "unterminated interpolation",
                        "close `${` with `}`",
                    ))
                }
                Some(b'{') => {
                    depth += 1;
                    self.pos += 1;
                }
                Some(b'}') => {
                    depth -= 1;
                    self.pos += 1;
                }
                Some(b'"') => {
                    // A string inside the interpolation.
                    self.pos += 1;
                    loop {
                        match self.peek() {
                            None | Some(b'\n') => {
                                return Err(self.err(
                                    string_start,
                                    string_start + 1,
                                    "unterminated string",
                                ))
                            }
                            Some(b'\\') => self.pos += 2,
                            Some(b'"') => {
                                self.pos += 1;
                                break;
                            }
                            Some(_) => self.pos += 1,
                        }
                    }
                }
                Some(_) => self.pos += 1,
            }
        }
        while !self.text.is_char_boundary(self.pos) {
            self.pos += 1;
        }
        Ok(())
    }

    /// `<<EOF ... EOF` and `<<-EOF ... EOF` (indentation stripped).
    fn heredoc(&mut self) -> PResult<Node> {
        let start = self.pos;
        self.pos += 2;
        let indent = self.peek() == Some(b'-');
        if indent {
            self.pos += 1;
        }
        let marker_start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.pos += 1;
        }
        let marker = &self.text[marker_start..self.pos];
        if marker.is_empty() {
            return Err(self.err_help(
                start,
                self.pos,
                "heredoc without a marker",
                "write `<<EOF`",
            ));
        }
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r')) {
            self.pos += 1;
        }
        if self.peek() != Some(b'\n') {
            return Err(self.err(start, self.pos, "a heredoc marker must end its line"));
        }
        self.pos += 1;
        let mut lines: Vec<&str> = Vec::new();
        loop {
            if self.pos >= self.src.len() {
                return Err(self.err_help(
                    start,
                    marker_start + marker.len(),
                    format!("unterminated heredoc: no closing `{marker}`"),
                    format!("end the text with a line holding only `{marker}`"),
                ));
            }
            let line_end = self.text[self.pos..]
                .find('\n')
                .map(|i| self.pos + i)
                .unwrap_or(self.text.len());
            let line = &self.text[self.pos..line_end];
            let trimmed = line.trim_end_matches('\r');
            if trimmed.trim() == marker && (indent || trimmed.trim_start() == trimmed) {
                self.pos = line_end.min(self.text.len());
                let end = self.pos;
                let mut content = String::new();
                let strip = if indent {
                    lines
                        .iter()
                        .filter(|l| !l.trim().is_empty())
                        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
                        .min()
                        .unwrap_or(0)
                } else {
                    0
                };
                for l in &lines {
                    let l = l.trim_end_matches('\r');
                    content.push_str(l.get(strip..).unwrap_or(l.trim_start()));
                    content.push('\n');
                }
                return Ok(Node::new(self.span(start, end), NodeKind::String(content)));
            }
            lines.push(line);
            self.pos = (line_end + 1).min(self.text.len().max(line_end + 1));
            if line_end >= self.text.len() {
                self.pos = self.text.len();
            }
        }
    }
}
