//! Source positions (`Span`), the map from global offsets to files, and `Diagnostic`, the one
//! error type every stage returns. Rendering happens in the CLI, nowhere else.

use std::fmt;

/// A byte range in the global source space. Every file a compilation reads is placed at its own
/// base offset in a [`SourceMap`], so a span of 8 bytes identifies both the file and the range.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end.max(start) as u32,
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.end == self.start
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// One source file of a compilation.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user gave it (used in messages).
    pub name: String,
    pub text: String,
    /// Global offset of the first byte.
    pub base: u32,
}

impl SourceFile {
    /// 1-based line and column (in characters) of a global offset inside this file.
    pub fn line_col(&self, global: u32) -> (usize, usize) {
        let local = (global.saturating_sub(self.base) as usize).min(self.text.len());
        let mut line = 1;
        let mut line_start = 0;
        for (i, b) in self.text.as_bytes()[..local].iter().enumerate() {
            if *b == b'\n' {
                line += 1;
                line_start = i + 1;
            }
        }
        let col = self.text[line_start..floor_char_boundary(&self.text, local)]
            .chars()
            .count()
            + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// All files of one compilation, each at a disjoint global offset range. Files are separated
/// by one unused byte so that an end-of-file span still belongs to its file.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
    next_base: u32,
}

/// Index of a file in a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId(pub u32);

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    /// Add a file. A UTF-8 byte-order mark at its start is dropped (it is not part of the
    /// text), so offsets, lines and columns count from the first real character.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let mut text = text.into();
        if text.starts_with('\u{feff}') {
            text.drain(..'\u{feff}'.len_utf8());
        }
        let base = self.next_base;
        self.next_base = base.saturating_add(text.len() as u32 + 1);
        self.files.push(SourceFile {
            name: name.into(),
            text,
            base,
        });
        FileId(self.files.len() as u32 - 1)
    }

    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// The file that contains a global offset.
    pub fn lookup(&self, global: u32) -> Option<FileId> {
        self.files
            .iter()
            .rposition(|f| f.base <= global && global <= f.base + f.text.len() as u32)
            .map(|i| FileId(i as u32))
    }

    /// `name:line:col` of the start of a span, for one-line messages.
    pub fn describe(&self, span: Span) -> String {
        match self.lookup(span.start) {
            Some(id) => {
                let f = self.file(id);
                let (l, c) = f.line_col(span.start);
                format!("{}:{}:{}", f.name, l, c)
            }
            None => "<unknown>".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A located message with optional secondary labels and a help line.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub span: Span,
    /// Text under the caret of the primary span.
    pub label: String,
    pub secondary: Vec<(Span, String)>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span,
            label: String::new(),
            secondary: Vec::new(),
            help: None,
        }
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message)
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }

    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.secondary.push((span, label.into()));
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}
