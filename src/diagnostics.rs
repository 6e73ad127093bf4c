//! Rendering of [`Diagnostic`]s with the source line, a caret under the span and a help line.
//! The one place diagnostics become text.

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label, Severity as CsSeverity};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, termcolor};

use neurograph_grammar::{Diagnostic, Severity, SourceMap, Span};

fn files(sources: &SourceMap) -> SimpleFiles<String, String> {
    let mut files = SimpleFiles::new();
    for f in sources.files() {
        files.add(f.name.clone(), f.text.clone());
    }
    files
}

fn local(sources: &SourceMap, span: Span) -> Option<(usize, std::ops::Range<usize>)> {
    let id = sources.lookup(span.start)?;
    let f = sources.file(id);
    let start = (span.start - f.base) as usize;
    let end = ((span.end.max(span.start) - f.base) as usize).min(f.text.len());
    Some((
        id.0 as usize,
        start.min(f.text.len())..end.max(start.min(f.text.len())),
    ))
}

fn convert(sources: &SourceMap, d: &Diagnostic) -> CsDiagnostic<usize> {
    let severity = match d.severity {
        Severity::Error => CsSeverity::Error,
        Severity::Warning => CsSeverity::Warning,
    };
    let mut labels = Vec::new();
    if let Some((file, range)) = local(sources, d.span) {
        labels.push(Label::primary(file, range).with_message(d.label.clone()));
    }
    for (span, msg) in &d.secondary {
        if let Some((file, range)) = local(sources, *span) {
            labels.push(Label::secondary(file, range).with_message(msg.clone()));
        }
    }
    let mut notes = Vec::new();
    if let Some(h) = &d.help {
        notes.push(format!("help: {h}"));
    }
    CsDiagnostic::new(severity)
        .with_message(d.message.clone())
        .with_labels(labels)
        .with_notes(notes)
}

/// Render diagnostics as plain text (no colour), e.g. for tests and logs.
pub fn render_plain(sources: &SourceMap, diags: &[Diagnostic]) -> String {
    let files = files(sources);
    let config = term::Config::default();
    let mut out = String::new();
    for d in diags {
        match term::emit_into_string(&config, &files, &convert(sources, d)) {
            Ok(s) => out.push_str(&s),
            Err(_) => out.push_str(&format!("{}: {}\n", sources.describe(d.span), d.message)),
        }
    }
    out
}

/// Render diagnostics to standard error, in colour when it is a terminal.
pub fn emit_stderr(sources: &SourceMap, diags: &[Diagnostic]) {
    let files = files(sources);
    let config = term::Config::default();
    let stream = termcolor::StandardStream::stderr(
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            termcolor::ColorChoice::Auto
        } else {
            termcolor::ColorChoice::Never
        },
    );
    let mut lock = stream.lock();
    for d in diags {
        if term::emit_to_write_style(&mut lock, &config, &files, &convert(sources, d)).is_err() {
            eprintln!("{}: {}", sources.describe(d.span), d.message);
        }
    }
}

/// `file:line:col: error: message`, one line per diagnostic.
pub fn one_line(sources: &SourceMap, d: &Diagnostic) -> String {
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    format!("{}: {sev}: {}", sources.describe(d.span), d.message)
}
