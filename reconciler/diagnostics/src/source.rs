use std::sync::Arc;

/// Index of a file in the [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileId(pub u32);

/// A byte range `[start, end)` in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Self {
        Span {
            file,
            start: start as u32,
            end: end.max(start) as u32,
        }
    }

    /// The smallest span covering both (same file assumed).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// A sub-range of this span, offsets relative to its start (for text embedded in a string).
    pub fn sub(self, start: usize, end: usize) -> Span {
        Span {
            file: self.file,
            start: self.start + start as u32,
            end: (self.start + end as u32).min(self.end.max(self.start + end as u32)),
        }
    }
}

/// A resolved position: repository-relative path, 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone)]
struct SourceFile {
    path: String,
    text: Arc<str>,
    /// Byte offset of the start of each line.
    line_starts: Vec<u32>,
}

/// All files of a load, by [`FileId`]. Paths are repository-relative with `/` separators.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, path: impl Into<String>, text: impl Into<Arc<str>>) -> FileId {
        let text: Arc<str> = text.into();
        let mut line_starts = vec![0u32];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i as u32 + 1);
            }
        }
        let id = FileId(self.files.len() as u32);
        self.files.push(SourceFile {
            path: path.into(),
            text,
            line_starts,
        });
        id
    }

    /// The file's path; `<unknown>` for an id this map did not issue.
    pub fn path(&self, file: FileId) -> &str {
        self.files
            .get(file.0 as usize)
            .map(|f| f.path.as_str())
            .unwrap_or("<unknown>")
    }

    pub fn text(&self, file: FileId) -> &str {
        self.files
            .get(file.0 as usize)
            .map(|f| &*f.text)
            .unwrap_or("")
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &str)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f.path.as_str()))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// 1-based line and column of a byte offset. Columns count characters, not bytes.
    pub fn line_col(&self, file: FileId, offset: u32) -> (u32, u32) {
        let Some(f) = self.files.get(file.0 as usize) else {
            return (1, 1);
        };
        let offset = offset.min(f.text.len() as u32);
        let line = match f.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = f.line_starts[line] as usize;
        let mut end = offset as usize;
        while !f.text.is_char_boundary(end) {
            end -= 1;
        }
        let col = f.text[start..end].chars().count() as u32 + 1;
        (line as u32 + 1, col)
    }

    pub fn location(&self, span: Span) -> Location {
        let (line, column) = self.line_col(span.file, span.start);
        Location {
            file: self.path(span.file).to_owned(),
            line,
            column,
        }
    }

    /// Masks a secret written at `span` (its value, quotes included): every character but line
    /// ends becomes `*`, byte for byte, so offsets and lines stay where they were and no excerpt
    /// of a diagnostic, nor anything else read from this map, shows it. Call after parsing.
    pub fn redact(&mut self, span: Span) {
        let Some(f) = self.files.get_mut(span.file.0 as usize) else {
            return;
        };
        let (start, end) = (span.start as usize, (span.end as usize).min(f.text.len()));
        if start >= end {
            return;
        }
        let mut bytes = f.text.as_bytes().to_vec();
        for b in &mut bytes[start..end] {
            if *b != b'\n' && *b != b'\r' {
                *b = b'*';
            }
        }
        // Only whole characters were replaced by ASCII, so the bytes stay UTF-8 unless the span
        // cut a character; then the text is kept as it was.
        if let Ok(text) = String::from_utf8(bytes) {
            f.text = text.into();
        }
    }

    /// Masks the value of a `key = value` (HCL), `"key": value` (JSON) or `key: value` (YAML)
    /// written at `span`, the key left readable so an excerpt still shows which setting holds a
    /// secret: everything after the first `=` or `:` of the span, leading blanks kept. A span
    /// with neither (a value alone) is masked whole.
    pub fn redact_value(&mut self, span: Span) {
        let Some(f) = self.files.get(span.file.0 as usize) else {
            return;
        };
        let (start, end) = (span.start as usize, (span.end as usize).min(f.text.len()));
        let Some(written) = f.text.get(start..end) else {
            return;
        };
        let value_at = match written.find(['=', ':']) {
            Some(i) => {
                let after = &written[i + 1..];
                start + i + 1 + (after.len() - after.trim_start().len())
            }
            None => start,
        };
        self.redact(Span::new(span.file, value_at, end));
    }

    /// The text of 1-based `line`, without its line terminator.
    pub fn line_text(&self, file: FileId, line: u32) -> &str {
        let Some(f) = self.files.get(file.0 as usize) else {
            return "";
        };
        let i = (line as usize).saturating_sub(1);
        let Some(&start) = f.line_starts.get(i) else {
            return "";
        };
        let end = f
            .line_starts
            .get(i + 1)
            .map(|&e| e as usize)
            .unwrap_or(f.text.len());
        f.text[start as usize..end].trim_end_matches(['\n', '\r'])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let mut map = SourceMap::new();
        let f = map.add("a.hcl", "ab\nçd = 1\n");
        assert_eq!(map.line_col(f, 0), (1, 1));
        assert_eq!(map.line_col(f, 3), (2, 1));
        // "ç" is two bytes; the "d" after it is column 2.
        assert_eq!(map.line_col(f, 5), (2, 2));
        assert_eq!(map.line_text(f, 2), "çd = 1");
        assert_eq!(
            map.location(Span::new(f, 5, 6)).to_string_parts(),
            ("a.hcl", 2, 2)
        );
    }

    #[test]
    fn a_redacted_secret_is_masked_in_place() {
        let mut map = SourceMap::new();
        let f = map.add("a.hcl", "a = 1\nencrypt = \"s3cr3t\"\nb = 2\n");
        map.redact(Span::new(f, 16, 24));
        assert_eq!(map.line_text(f, 2), "encrypt = ********");
        assert_eq!(map.line_text(f, 3), "b = 2");
        assert_eq!(map.line_col(f, 25), (3, 1));
    }

    #[test]
    fn a_redacted_value_keeps_its_key_in_every_syntax() {
        let mut map = SourceMap::new();
        let hcl = "SecretID = \"4a1f\"\n";
        let f = map.add("a.hcl", hcl);
        map.redact_value(Span::new(f, 0, hcl.len() - 1));
        assert_eq!(map.line_text(f, 1), "SecretID = ******");
        let json = "{\"token\": \"8f3c\"}";
        let g = map.add("a.json", json);
        map.redact_value(Span::new(g, 1, json.len() - 1));
        assert_eq!(map.line_text(g, 1), "{\"token\": ******}");
        let yaml = "DB_PASSWORD: hunter2";
        let h = map.add("a.yaml", yaml);
        map.redact_value(Span::new(h, 0, yaml.len()));
        assert_eq!(map.line_text(h, 1), "DB_PASSWORD: *******");
        let value = "\"s3cr3t\"";
        let v = map.add("v.hcl", value);
        map.redact_value(Span::new(v, 0, value.len()));
        assert_eq!(map.line_text(v, 1), "********");
    }

    impl Location {
        fn to_string_parts(&self) -> (&str, u32, u32) {
            (&self.file, self.line, self.column)
        }
    }
}
