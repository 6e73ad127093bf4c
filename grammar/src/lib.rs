//! The neurograph spec language: the pest grammar (`neurograph.pest`), the AST (plain data with
//! spans), [`parse`], and the [`Diagnostic`] type every later stage reports with.
//!
//! Only this crate knows pest. `parse` never panics on any input; it returns the items that
//! parsed and a diagnostic for each item that did not.

pub mod ast;
mod parse;
pub mod span;

pub use ast::*;
pub use parse::MAX_NESTING;
pub use span::{Diagnostic, FileId, Severity, SourceFile, SourceMap, Span};

/// Parse a spec file. Spans are offsets into `src`.
pub fn parse(src: &str) -> (Ast, Vec<Diagnostic>) {
    parse::parse_at(src, 0)
}

/// Parse a spec file placed at global offset `base` of a [`SourceMap`].
pub fn parse_at(src: &str, base: u32) -> (Ast, Vec<Diagnostic>) {
    parse::parse_at(src, base)
}

/// Parse one expression (command-line overrides, experiment files).
pub fn parse_expr_at(src: &str, base: u32) -> Result<Expr, Diagnostic> {
    parse::parse_expr_at(src, base)
}
