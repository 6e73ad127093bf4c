//! Text -> AST. The only module that knows pest.
//!
//! Error recovery: the source is cut into top-level items by a small lexical scan (keywords at
//! the start of a line at brace depth 0), and each piece is parsed on its own, so every broken
//! item reports its own error. A well-formed file is cut exactly at its item boundaries, so the
//! pieces parse to the same AST as the whole would.

use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::{Pair, Pairs};
use std::cell::RefCell;

use pest::Parser;
use pest_derive::Parser;

use crate::ast::*;
use crate::span::{Diagnostic, Span};

#[derive(Parser)]
#[grammar = "neurograph.pest"]
struct SpecParser;

/// Keywords that start a top-level item.
const ITEM_KEYWORDS: &[&str] = &[
    "model",
    "import",
    "const",
    "param",
    "neuron",
    "astrocyte",
    "unit",
    "cell",
    "synapse",
    "population",
    "project",
    "switch",
    "input",
    "record",
    "run",
];

/// Item keywords that, at column 1, start a new item even when braces are unbalanced
/// (`param` and `const` also appear inside bodies, so they do not).
const RECOVERY_KEYWORDS: &[&str] = &[
    "model",
    "import",
    "neuron",
    "astrocyte",
    "unit",
    "cell",
    "synapse",
    "population",
    "project",
    "switch",
    "input",
    "record",
    "run",
];

/// Parse a spec whose first byte sits at global offset `base`. Returns the items that parsed
/// and one diagnostic per item that did not. Never panics.
pub fn parse_at(src: &str, base: u32) -> (Ast, Vec<Diagnostic>) {
    // A UTF-8 byte-order mark is not part of the text: skip it, keeping offsets right.
    let (src, base) = match src.strip_prefix('\u{feff}') {
        Some(rest) => (rest, base + '\u{feff}'.len_utf8() as u32),
        None => (src, base),
    };
    let mut ast = Ast::default();
    let mut diags = Vec::new();
    for (start, end) in split_items(src) {
        let piece = &src[start..end];
        let offset = base as usize + start;
        if let Some((at, max)) = check_brackets(piece) {
            let span = Span::new(offset + at, offset + at + 1);
            diags.push(nesting_error(span, format!("{max} levels of brackets")));
            continue;
        }
        match SpecParser::parse(Rule::file, piece) {
            Ok(mut pairs) => {
                let file = pairs.next().expect("file rule always yields one pair");
                let b = Builder::new(offset);
                for pair in file.into_inner() {
                    if pair.as_rule() == Rule::EOI {
                        continue;
                    }
                    // An expression nested too deeply is reported and replaced by `0`.
                    ast.items.push(b.item(pair));
                    diags.extend(b.take_error());
                }
            }
            Err(e) => {
                diags.push(syntax_error(piece, offset, e));
                ast.broken.extend(item_name(piece));
            }
        }
    }
    (ast, diags)
}

/// The name a top-level item declares: the word after its keyword (`neuron N {`, `population
/// P = …`, `input I = …`, `project W: …`), if it has one.
fn item_name(piece: &str) -> Option<String> {
    let mut words = piece
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("//"))?
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    let keyword = words.next()?;
    if !ITEM_KEYWORDS.contains(&keyword) || matches!(keyword, "record" | "run" | "import") {
        return None;
    }
    words.next().map(str::to_string)
}

/// Parse a single expression (used by `--set name=value` and the experiment file).
pub fn parse_expr_at(src: &str, base: u32) -> Result<Expr, Diagnostic> {
    if let Some((at, max)) = check_brackets(src) {
        let span = Span::new(base as usize + at, base as usize + at + 1);
        return Err(nesting_error(span, format!("{max} levels of brackets")));
    }
    match SpecParser::parse(Rule::expr_only, src) {
        Ok(mut pairs) => {
            let top = pairs.next().expect("expr_only yields one pair");
            let b = Builder::new(base as usize);
            let inner = top.into_inner().next().expect("expr_only contains expr");
            let e = b.expr(inner);
            match b.take_error() {
                Some(d) => Err(d),
                None => Ok(e),
            }
        }
        Err(e) => Err(syntax_error(src, base as usize, e)),
    }
}

/// Byte ranges of the top-level items of `src` (plus any leading text).
fn split_items(src: &str) -> Vec<(usize, usize)> {
    let bytes = src.as_bytes();
    let mut cuts = vec![0usize];
    let mut depth: i64 = 0;
    let mut i = 0;
    let mut line_start = true; // only whitespace seen since the last newline
    let mut column0 = true;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\n' {
            line_start = true;
            column0 = true;
            i += 1;
            continue;
        }
        if c == b' ' || c == b'\t' || c == b'\r' {
            column0 = false;
            i += 1;
            continue;
        }
        if src[i..].starts_with("//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if src[i..].starts_with("/*") {
            match src[i + 2..].find("*/") {
                Some(k) => i += k + 4,
                None => i = bytes.len(),
            }
            line_start = false;
            column0 = false;
            continue;
        }
        if line_start && (c.is_ascii_alphabetic()) {
            let word_end = src[i..]
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .map(|k| i + k)
                .unwrap_or(bytes.len());
            let word = &src[i..word_end];
            let starts_item = (depth <= 0 && ITEM_KEYWORDS.contains(&word))
                || (column0 && depth > 0 && RECOVERY_KEYWORDS.contains(&word));
            if starts_item {
                if i > 0 {
                    cuts.push(line_begin(src, i));
                }
                depth = 0;
            }
        }
        line_start = false;
        column0 = false;
        match c {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b'"' => {
                // Skip a string literal up to its closing quote or the end of the line.
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += 1;
                }
                if i < bytes.len() && bytes[i] == b'"' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        i += src[i..].chars().next().map_or(1, char::len_utf8);
    }
    cuts.dedup();
    let mut ranges = Vec::new();
    for (k, &s) in cuts.iter().enumerate() {
        let e = cuts.get(k + 1).copied().unwrap_or(src.len());
        ranges.push((s, e));
    }
    ranges
}

fn line_begin(src: &str, i: usize) -> usize {
    src[..i].rfind('\n').map_or(0, |k| k + 1)
}

fn rule_name(r: &Rule) -> Option<&'static str> {
    Some(match r {
        Rule::ident => "a name",
        Rule::number
        | Rule::quantity
        | Rule::expr
        | Rule::expr_only
        | Rule::boolean
        | Rule::array
        | Rule::paren => "an expression",
        Rule::string | Rule::string_body => "a string",
        Rule::unit_expr
        | Rule::unit_term
        | Rule::unit_atom
        | Rule::unit_symbol
        | Rule::unit_one => "a unit",
        Rule::unit_glued => "a unit",
        Rule::op_or
        | Rule::op_and
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_le
        | Rule::op_ge
        | Rule::op_lt
        | Rule::op_gt
        | Rule::op_add
        | Rule::op_sub
        | Rule::op_mul
        | Rule::op_div
        | Rule::op_mod
        | Rule::op_pow
        | Rule::call_args
        | Rule::index_args
        | Rule::field => "an operator",
        Rule::op_neg | Rule::op_pos | Rule::op_not => "an expression",
        Rule::eq_sign => "`=`",
        Rule::unit_annot => "`:` and a unit",
        Rule::arg | Rule::named_arg => "an argument",
        Rule::range | Rule::open_range | Rule::range_tail => "a range `a..b`",
        Rule::assign => "an assignment",
        Rule::assign_op => "`=`, `+=`, `-=`, `*=` or `/=`",
        Rule::path => "a name",
        Rule::block => "`{`",
        Rule::body => "`{`",
        Rule::binding => "a binding `name = value`",
        Rule::state_item => "a state variable",
        Rule::const_decl
        | Rule::param_decl
        | Rule::state_decl
        | Rule::let_decl
        | Rule::ode
        | Rule::ode_lhs
        | Rule::update
        | Rule::spike_when
        | Rule::spike_prob
        | Rule::event_decl
        | Rule::refractory_decl
        | Rule::method_decl
        | Rule::on_block => "a statement",
        Rule::unless_refractory => "`unless refractory`",
        Rule::regime_dim => "`[`",
        Rule::model_decl
        | Rule::import_decl
        | Rule::cell_decl
        | Rule::cell_kind
        | Rule::synapse_decl
        | Rule::population_decl
        | Rule::project_decl
        | Rule::switch_decl
        | Rule::input_decl
        | Rule::record_decl
        | Rule::run_decl => "an item (`neuron`, `population`, `project`, ...)",
        Rule::pop_body | Rule::proj_body => "`{`",
        Rule::endpoint | Rule::endpoints => "a population name",
        Rule::proj_name => "a projection name",
        Rule::connect_stmt => "`connect`",
        Rule::delay_stmt => "`delay`",
        Rule::layout_stmt => "`layout`",
        Rule::switch_states => "`states`",
        Rule::switch_transition => "`transition`",
        Rule::switch_initial => "`initial`",
        Rule::record_item => "something to record",
        Rule::record_every => "`every`",
        Rule::record_at_end => "`at end`",
        Rule::EOI => "end of input",
        Rule::file | Rule::item_only => "an item (`neuron`, `population`, `project`, ...)",
        _ => return None,
    })
}

fn describe_found(piece: &str, pos: usize) -> String {
    let rest = &piece[pos.min(piece.len())..];
    let Some(c) = rest.chars().next() else {
        return "end of input".to_string();
    };
    if c == '\n' {
        return "end of line".to_string();
    }
    if c.is_alphanumeric() || c == '_' {
        let word: String = rest
            .chars()
            .take_while(|ch| ch.is_alphanumeric() || *ch == '_' || *ch == '.')
            .take(24)
            .collect();
        return format!("`{word}`");
    }
    format!("`{c}`")
}

fn syntax_error(piece: &str, offset: usize, e: pest::error::Error<Rule>) -> Diagnostic {
    let (pos, end) = match e.location {
        InputLocation::Pos(p) => (p, p),
        InputLocation::Span((a, b)) => (a, b),
    };
    // Point at the offending token, or at the last character when input ended.
    let trimmed_end = piece.trim_end().len();
    let at_eof = pos >= trimmed_end;
    let found = if at_eof {
        "end of input".to_string()
    } else {
        describe_found(piece, pos)
    };
    let span_pos = if at_eof {
        trimmed_end.saturating_sub(1)
    } else {
        pos
    };
    let token_len = if at_eof {
        1
    } else {
        piece[span_pos..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .map(char::len_utf8)
            .sum::<usize>()
            .max(piece[span_pos..].chars().next().map_or(0, char::len_utf8))
    };
    let span = Span::new(offset + span_pos, offset + (span_pos + token_len).max(end));
    let message = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().filter_map(rule_name).collect();
            names.sort_unstable();
            names.dedup();
            if names.is_empty() {
                format!("syntax error: unexpected {found}")
            } else {
                format!("syntax error: expected {}, found {found}", join_or(&names))
            }
        }
        ErrorVariant::CustomError { message } => format!("syntax error: {message}"),
    };
    let mut d = Diagnostic::error(span, message).with_label(if at_eof {
        "the input ends here".to_string()
    } else {
        "unexpected here".to_string()
    });
    if at_eof {
        d = d.with_help("the file looks truncated: is a closing `}` or `)` missing?");
    } else if let Some(help) = habit_hint(piece, span_pos) {
        d = d.with_help(help);
    }
    d
}

/// Help for syntax other languages use (Python, Brian2) at the position of a syntax error.
fn habit_hint(piece: &str, pos: usize) -> Option<&'static str> {
    let before = piece[..pos].trim_end();
    let rest = &piece[pos..];
    if rest.starts_with('*') && before.ends_with('*') || rest.starts_with("**") {
        return Some("powers are written `^`: `x^2`, not `x**2`");
    }
    if rest.starts_with(':') {
        return Some("Brian2's `: unit` annotations are not written here: a unit belongs to the declaration (`state v: volt = -65 mV`, `param tau = 10 ms`) and equations are checked against it");
    }
    None
}

fn join_or(names: &[&str]) -> String {
    match names.len() {
        0 => String::new(),
        1 => names[0].to_string(),
        n => format!("{} or {}", names[..n - 1].join(", "), names[n - 1]),
    }
}

/// Turns pest pairs into AST nodes, shifting spans by the piece's global offset.
struct Builder {
    offset: usize,
    /// The first expression of the current item found nested too deeply.
    error: RefCell<Option<Diagnostic>>,
}

impl Builder {
    fn new(offset: usize) -> Builder {
        Builder {
            offset,
            error: RefCell::new(None),
        }
    }

    fn take_error(&self) -> Option<Diagnostic> {
        self.error.borrow_mut().take()
    }
}

impl Builder {
    /// The pair's span without trailing whitespace: pest skips whitespace before an optional
    /// part that then does not match, and an underline should not run onto the next line.
    fn span(&self, p: &Pair<Rule>) -> Span {
        let s = p.as_span();
        let end = s.start() + p.as_str().trim_end().len().max(1).min(s.end() - s.start());
        Span::new(self.offset + s.start(), self.offset + end)
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    fn item(&self, p: Pair<Rule>) -> Item {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut inner = p.into_inner();
        let kind = match rule {
            Rule::model_decl => ItemKind::Model(self.ident(inner.next().unwrap())),
            Rule::import_decl => ItemKind::Import(self.string(inner.next().unwrap())),
            Rule::const_decl => ItemKind::Const(inner.map(|b| self.binding(b)).collect()),
            Rule::param_decl => ItemKind::Param(inner.map(|b| self.binding(b)).collect()),
            Rule::cell_decl => {
                let kind = match inner.next().unwrap().as_str() {
                    "neuron" => CellKind::Neuron,
                    "astrocyte" => CellKind::Astrocyte,
                    "unit" => CellKind::Unit,
                    _ => CellKind::Cell,
                };
                let name = self.ident(inner.next().unwrap());
                let body = self.body(inner.next().unwrap());
                ItemKind::Cell(CellDecl { kind, name, body })
            }
            Rule::synapse_decl => {
                let name = self.ident(inner.next().unwrap());
                let body = self.body(inner.next().unwrap());
                ItemKind::Synapse(SynapseDecl { name, body })
            }
            Rule::population_decl => {
                let name = self.ident(inner.next().unwrap());
                let cell_type = self.ident(inner.next().unwrap());
                let size = self.expr(inner.next().unwrap());
                let mut params = Vec::new();
                let mut overrides = Vec::new();
                if let Some(body) = inner.next() {
                    for s in body.into_inner() {
                        match s.as_rule() {
                            Rule::param_decl => {
                                params.extend(s.into_inner().map(|b| self.binding(b)))
                            }
                            _ => overrides.push(self.assign(s)),
                        }
                    }
                }
                ItemKind::Population(PopulationDecl {
                    name,
                    cell_type,
                    size,
                    params,
                    overrides,
                })
            }
            Rule::project_decl => ItemKind::Project(self.project(inner)),
            Rule::switch_decl => {
                let name = self.ident(inner.next().unwrap());
                let mut d = SwitchDecl {
                    name,
                    states: Vec::new(),
                    transition: None,
                    initial: None,
                };
                for s in inner {
                    match s.as_rule() {
                        Rule::switch_states => {
                            d.states.extend(s.into_inner().map(|i| self.ident(i)))
                        }
                        Rule::switch_transition => {
                            d.transition = Some(self.expr(s.into_inner().next().unwrap()))
                        }
                        _ => d.initial = Some(self.expr(s.into_inner().next().unwrap())),
                    }
                }
                ItemKind::Switch(d)
            }
            Rule::input_decl => {
                let name = self.ident(inner.next().unwrap());
                let source = self.expr(inner.next().unwrap());
                let target = inner.next().map(|p| self.path(p));
                ItemKind::Input(InputDecl {
                    name,
                    source,
                    target,
                })
            }
            Rule::record_decl => ItemKind::Record(
                inner
                    .map(|r| {
                        let span = self.span(&r);
                        let mut it = r.into_inner();
                        let what = self.expr(it.next().unwrap());
                        let mut item = RecordItem {
                            what,
                            every: None,
                            at_end: None,
                            span,
                        };
                        if let Some(m) = it.next() {
                            match m.as_rule() {
                                Rule::record_every => {
                                    item.every = Some(self.expr(m.into_inner().next().unwrap()))
                                }
                                _ => item.at_end = Some(self.span(&m)),
                            }
                        }
                        item
                    })
                    .collect(),
            ),
            Rule::run_decl => ItemKind::Run(inner.map(|a| self.assign(a)).collect()),
            r => unreachable!("not an item rule: {r:?}"),
        };
        Item { kind, span }
    }

    fn project(&self, inner: Pairs<Rule>) -> ProjectDecl {
        let mut d = ProjectDecl {
            name: None,
            sources: Vec::new(),
            targets: Vec::new(),
            via: None,
            body: Vec::new(),
        };
        let mut seen_endpoints = 0;
        for p in inner {
            match p.as_rule() {
                Rule::proj_name => d.name = Some(self.ident(p.into_inner().next().unwrap())),
                Rule::endpoints => {
                    let eps = p.into_inner().map(|e| self.endpoint(e)).collect();
                    if seen_endpoints == 0 {
                        d.sources = eps;
                    } else {
                        d.targets = eps;
                    }
                    seen_endpoints += 1;
                }
                Rule::ident => d.via = Some(self.ident(p)),
                Rule::proj_body => {
                    for s in p.into_inner() {
                        let span = self.span(&s);
                        let stmt = match s.as_rule() {
                            Rule::connect_stmt => {
                                ProjStmt::Connect(self.expr(s.into_inner().next().unwrap()), span)
                            }
                            Rule::delay_stmt => {
                                ProjStmt::Delay(self.expr(s.into_inner().next().unwrap()), span)
                            }
                            Rule::layout_stmt => {
                                ProjStmt::Layout(self.ident(s.into_inner().next().unwrap()), span)
                            }
                            Rule::on_block => {
                                let mut it = s.into_inner();
                                let trigger = self.ident(it.next().unwrap());
                                let body = self.block(it.next().unwrap());
                                ProjStmt::On {
                                    trigger,
                                    body,
                                    span,
                                }
                            }
                            _ => ProjStmt::Assign(self.assign(s)),
                        };
                        d.body.push(stmt);
                    }
                }
                r => unreachable!("unexpected in project: {r:?}"),
            }
        }
        d
    }

    fn endpoint(&self, p: Pair<Rule>) -> Endpoint {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.ident(it.next().unwrap());
        let slice = it.next().map(|r| self.range(r));
        Endpoint { name, slice, span }
    }

    fn string(&self, p: Pair<Rule>) -> StrLit {
        let span = self.span(&p);
        let body = p.into_inner().next().map_or("", |b| b.as_str());
        StrLit {
            value: body.to_string(),
            span,
        }
    }

    fn binding(&self, p: Pair<Rule>) -> Binding {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.ident(it.next().unwrap());
        let mut regime = None;
        let mut unit = None;
        let mut value = None;
        for q in it {
            match q.as_rule() {
                Rule::regime_dim => regime = Some(self.ident(q.into_inner().next().unwrap())),
                Rule::unit_annot => unit = Some(self.unit_expr(q.into_inner().next().unwrap())),
                Rule::eq_sign => {}
                _ => value = Some(self.expr(q)),
            }
        }
        Binding {
            name,
            regime,
            unit,
            value: value.expect("binding has a value"),
            span,
        }
    }

    fn state_item(&self, p: Pair<Rule>) -> StateItem {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.ident(it.next().unwrap());
        let mut s = StateItem {
            name,
            regime: None,
            unit: None,
            init: None,
            span,
        };
        for q in it {
            match q.as_rule() {
                Rule::regime_dim => s.regime = Some(self.ident(q.into_inner().next().unwrap())),
                Rule::unit_annot => s.unit = Some(self.unit_expr(q.into_inner().next().unwrap())),
                Rule::eq_sign => {}
                _ => s.init = Some(self.expr(q)),
            }
        }
        s
    }

    fn body(&self, p: Pair<Rule>) -> Vec<Stmt> {
        p.into_inner().map(|s| self.stmt(s)).collect()
    }

    fn stmt(&self, p: Pair<Rule>) -> Stmt {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut it = p.into_inner();
        let kind = match rule {
            Rule::const_decl => StmtKind::Const(it.map(|b| self.binding(b)).collect()),
            Rule::param_decl => StmtKind::Param(it.map(|b| self.binding(b)).collect()),
            Rule::state_decl => StmtKind::State(it.map(|b| self.state_item(b)).collect()),
            Rule::let_decl => StmtKind::Let {
                name: self.ident(it.next().unwrap()),
                value: self.expr(it.next().unwrap()),
            },
            Rule::ode => {
                let lhs = it.next().unwrap();
                let var = self.ident(lhs.into_inner().next().unwrap());
                let rhs = self.expr(it.next().unwrap());
                let unless_refractory = it.next().map(|u| self.span(&u));
                StmtKind::Ode {
                    var,
                    rhs,
                    unless_refractory,
                }
            }
            Rule::update => StmtKind::Update {
                var: self.ident(it.next().unwrap()),
                value: self.expr(it.next().unwrap()),
            },
            Rule::spike_when => StmtKind::SpikeWhen {
                cond: self.expr(it.next().unwrap()),
                reset: it.next().map(|b| self.block(b)).unwrap_or_default(),
            },
            Rule::spike_prob => StmtKind::SpikeProb {
                prob: self.expr(it.next().unwrap()),
                reset: it.next().map(|b| self.block(b)).unwrap_or_default(),
            },
            Rule::event_decl => StmtKind::Event {
                name: self.ident(it.next().unwrap()),
                cond: self.expr(it.next().unwrap()),
                body: it.next().map(|b| self.block(b)).unwrap_or_default(),
            },
            Rule::refractory_decl => StmtKind::Refractory(self.expr(it.next().unwrap())),
            Rule::method_decl => StmtKind::Method(self.ident(it.next().unwrap())),
            Rule::on_block => StmtKind::On {
                trigger: self.ident(it.next().unwrap()),
                body: self.block(it.next().unwrap()),
            },
            r => unreachable!("not a statement rule: {r:?}"),
        };
        Stmt { kind, span }
    }

    fn block(&self, p: Pair<Rule>) -> Vec<Assign> {
        p.into_inner().map(|a| self.assign(a)).collect()
    }

    fn path(&self, p: Pair<Rule>) -> Path {
        let span = self.span(&p);
        Path {
            segments: p.into_inner().map(|i| self.ident(i)).collect(),
            span,
        }
    }

    fn assign(&self, p: Pair<Rule>) -> Assign {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let target = self.path(it.next().unwrap());
        let op = match it.next().unwrap().as_str() {
            "+=" => AssignOp::Add,
            "-=" => AssignOp::Sub,
            "*=" => AssignOp::Mul,
            "/=" => AssignOp::Div,
            _ => AssignOp::Set,
        };
        let value = self.expr(it.next().unwrap());
        Assign {
            target,
            op,
            value,
            span,
        }
    }

    fn unit_expr(&self, p: Pair<Rule>) -> UnitExpr {
        let span = self.span(&p);
        let mut factors = Vec::new();
        self.unit_factors(p, 1, &mut factors);
        UnitExpr { factors, span }
    }

    /// Flattens `a/b*c^2` and `1/(uM*s)` into factors with signed powers.
    fn unit_factors(&self, p: Pair<Rule>, sign: i32, out: &mut Vec<UnitFactor>) {
        let mut current = sign;
        for q in p.into_inner() {
            match q.as_rule() {
                Rule::unit_op => {
                    current = if q.as_str() == "/" { -sign } else { sign };
                }
                Rule::unit_term => {
                    let inner = q.into_inner().next().unwrap();
                    match inner.as_rule() {
                        Rule::unit_one => {}
                        Rule::unit_atom => out.push(self.unit_atom(inner, current)),
                        _ => self.unit_factors(inner, current, out),
                    }
                }
                Rule::unit_atom => out.push(self.unit_atom(q, current)),
                r => unreachable!("unexpected in unit: {r:?}"),
            }
        }
    }

    fn unit_atom(&self, p: Pair<Rule>, sign: i32) -> UnitFactor {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let symbol = it.next().unwrap().as_str().to_string();
        let power = it
            .next()
            .and_then(|q| q.as_str().parse::<i32>().ok())
            .unwrap_or(1);
        UnitFactor {
            symbol,
            power: power.saturating_mul(sign),
            span,
        }
    }

    /// A range from the pairs of `range` / `index_args`: `open_range` (`..b`), or an
    /// expression followed by `range_tail` (`a..`, `a..b`).
    fn range(&self, p: Pair<Rule>) -> Expr {
        let span = self.span(&p);
        match self.range_from(p.into_inner(), span) {
            Ok((e, _)) | Err((e, _)) => e,
        }
    }

    /// `Ok(range)` when the pairs form a range, `Err(expr)` when they are a plain expression;
    /// each with its depth.
    #[allow(clippy::type_complexity)]
    fn range_from(&self, mut it: Pairs<Rule>, span: Span) -> Result<(Expr, u32), (Expr, u32)> {
        let first = it.next().expect("index has content");
        let tail_end = |q: Pair<Rule>| {
            q.into_inner().next().map(|e| {
                let (e, d) = self.expr_d(e);
                (Box::new(e), d)
            })
        };
        match first.as_rule() {
            Rule::open_range => {
                let end = tail_end(first);
                let d = end.as_ref().map_or(0, |e| e.1) + 1;
                Ok((
                    Expr {
                        kind: ExprKind::Range {
                            start: None,
                            end: end.map(|e| e.0),
                        },
                        span,
                    },
                    d,
                ))
            }
            _ => {
                let (start, ds) = self.expr_d(first);
                match it.next() {
                    Some(tail) => {
                        let end = tail_end(tail);
                        let d = end.as_ref().map_or(0, |e| e.1).max(ds) + 1;
                        Ok((
                            Expr {
                                kind: ExprKind::Range {
                                    start: Some(Box::new(start)),
                                    end: end.map(|e| e.0),
                                },
                                span,
                            },
                            d,
                        ))
                    }
                    None => Err((start, ds)),
                }
            }
        }
    }

    /// An expression whose nesting is within [`MAX_NESTING`]; a deeper one records an error
    /// (see [`Builder::error`]) and becomes a placeholder.
    fn expr(&self, p: Pair<Rule>) -> Expr {
        self.expr_d(p).0
    }

    /// An expression and its depth (a leaf is 1), built by operator precedence with explicit
    /// stacks: a long chain of operators makes a deep tree but never a deep call stack here.
    /// Only brackets recurse, and `check_brackets` bounds them before pest runs.
    fn expr_d(&self, p: Pair<Rule>) -> (Expr, u32) {
        let whole = self.span(&p);
        let mut operands: Vec<(Expr, u32)> = Vec::new();
        let mut ops: Vec<PendingOp> = Vec::new();
        let mut it = p.into_inner().peekable();
        loop {
            // prefix* primary postfix*
            while let Some(q) = it.peek() {
                let prec = match q.as_rule() {
                    Rule::op_neg | Rule::op_pos => PREC_NEG,
                    Rule::op_not => PREC_NOT,
                    _ => break,
                };
                let q = it.next().unwrap();
                let op = match q.as_rule() {
                    Rule::op_neg => Some(UnOp::Neg),
                    Rule::op_not => Some(UnOp::Not),
                    _ => None,
                };
                ops.push(PendingOp::Prefix(op, self.span(&q), prec));
            }
            let Some(q) = it.next() else { break };
            let mut operand = self.primary_d(q);
            while let Some(q) = it.peek() {
                if !matches!(
                    q.as_rule(),
                    Rule::call_args | Rule::index_args | Rule::field
                ) {
                    break;
                }
                let q = it.next().unwrap();
                operand = self.postfix(operand, q);
                if self.too_deep(&operand) {
                    return self.placeholder(whole);
                }
            }
            operands.push(operand);
            // infix, or the end
            let Some(q) = it.next() else { break };
            let (bop, prec, right) = infix_op(q.as_rule());
            while let Some(top) = ops.last() {
                let reduce = match *top {
                    PendingOp::Prefix(_, _, tp) => tp > prec,
                    PendingOp::Infix(_, tp) => tp > prec || (tp == prec && !right),
                };
                if !reduce {
                    break;
                }
                let top = ops.pop().unwrap();
                if !self.reduce(top, &mut operands) {
                    return self.placeholder(whole);
                }
            }
            ops.push(PendingOp::Infix(bop, prec));
        }
        while let Some(top) = ops.pop() {
            if !self.reduce(top, &mut operands) {
                return self.placeholder(whole);
            }
        }
        operands.pop().unwrap_or_else(|| self.placeholder(whole))
    }

    /// Apply `op` to the top operand(s); false (with the error recorded) when the result is too
    /// deep.
    fn reduce(&self, op: PendingOp, operands: &mut Vec<(Expr, u32)>) -> bool {
        let node = match op {
            PendingOp::Prefix(op, span, _) => {
                let (rhs, d) = operands.pop().expect("prefix has an operand");
                let span = span.to(rhs.span);
                match op {
                    // `+x` is `x` (its span includes the sign)
                    None => (
                        Expr {
                            kind: rhs.kind,
                            span,
                        },
                        d,
                    ),
                    Some(u) => (
                        Expr {
                            kind: ExprKind::Unary(u, Box::new(rhs)),
                            span,
                        },
                        d + 1,
                    ),
                }
            }
            PendingOp::Infix(bop, _) => {
                let (rhs, dr) = operands.pop().expect("infix has a right operand");
                let (lhs, dl) = operands.pop().expect("infix has a left operand");
                let span = lhs.span.to(rhs.span);
                (
                    Expr {
                        kind: ExprKind::Binary(bop, Box::new(lhs), Box::new(rhs)),
                        span,
                    },
                    dl.max(dr) + 1,
                )
            }
        };
        let deep = self.too_deep(&node);
        operands.push(node);
        !deep
    }

    /// Records the error for an expression deeper than [`MAX_NESTING`] (the first one only).
    fn too_deep(&self, e: &(Expr, u32)) -> bool {
        if e.1 as usize <= MAX_NESTING {
            return false;
        }
        let mut slot = self.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(nesting_error(e.0.span, format!("{} levels", e.1)));
        }
        true
    }

    fn placeholder(&self, span: Span) -> (Expr, u32) {
        (
            Expr {
                kind: ExprKind::Number(0.0),
                span,
            },
            1,
        )
    }

    fn postfix(&self, lhs: (Expr, u32), op: Pair<Rule>) -> (Expr, u32) {
        let (lhs, dl) = lhs;
        let span = lhs.span.to(self.span(&op));
        let mut depth = dl;
        let kind = match op.as_rule() {
            Rule::call_args => {
                let mut args = Vec::new();
                for a in op.into_inner() {
                    let (a, d) = self.arg_d(a);
                    depth = depth.max(d);
                    args.push(a);
                }
                ExprKind::Call {
                    callee: Box::new(lhs),
                    args,
                }
            }
            Rule::index_args => {
                let inner = op.into_inner();
                // The range's own span, inside the brackets.
                let parts: Vec<Pair<Rule>> = inner.clone().collect();
                let ispan = self.span(&parts[0]).to(self.span(&parts[parts.len() - 1]));
                let (index, d) = match self.range_from(inner, ispan) {
                    Ok(r) => r,
                    Err(e) => e,
                };
                depth = depth.max(d);
                ExprKind::Index {
                    base: Box::new(lhs),
                    index: Box::new(index),
                }
            }
            _ => ExprKind::Field {
                base: Box::new(lhs),
                field: self.ident(op.into_inner().next().unwrap()),
            },
        };
        (Expr { kind, span }, depth + 1)
    }

    fn arg_d(&self, p: Pair<Rule>) -> (Arg, u32) {
        let mut it = p.into_inner();
        let first = it.next().unwrap();
        match first.as_rule() {
            Rule::named_arg => {
                let name = Some(self.ident(first.into_inner().next().unwrap()));
                let (value, d) = self.expr_d(it.next().unwrap());
                (Arg { name, value }, d)
            }
            _ => {
                let (value, d) = self.expr_d(first);
                (Arg { name: None, value }, d)
            }
        }
    }

    fn primary_d(&self, p: Pair<Rule>) -> (Expr, u32) {
        let span = self.span(&p);
        let mut depth = 1;
        let kind = match p.as_rule() {
            Rule::number => ExprKind::Number(parse_number(p.as_str())),
            Rule::quantity => {
                let mut it = p.into_inner();
                let value = parse_number(it.next().unwrap().as_str());
                let glued = it.next().unwrap();
                let uspan = self.span(&glued);
                let mut factors = Vec::new();
                self.unit_factors(glued, 1, &mut factors);
                ExprKind::Quantity {
                    value,
                    unit: UnitExpr {
                        factors,
                        span: uspan,
                    },
                }
            }
            Rule::boolean => ExprKind::Bool(p.as_str() == "true"),
            Rule::string => ExprKind::Str(self.string(p).value),
            Rule::ident => ExprKind::Name(p.as_str().to_string()),
            Rule::array => {
                let mut items = Vec::new();
                for e in p.into_inner() {
                    let (e, d) = self.expr_d(e);
                    depth = depth.max(d + 1);
                    items.push(e);
                }
                ExprKind::Array(items)
            }
            Rule::paren => return self.expr_d(p.into_inner().next().unwrap()),
            r => unreachable!("not a primary: {r:?}"),
        };
        (Expr { kind, span }, depth)
    }
}

/// An operator waiting on the stack of [`Builder::expr_d`]: a prefix (`None` for `+`) or an
/// infix operator, with its precedence (and for infix, whether it is right-associative).
#[derive(Clone, Copy)]
enum PendingOp {
    Prefix(Option<UnOp>, Span, u8),
    Infix(BinOp, u8),
}

// Precedence, low to high (postfix operators bind tighter than all of these).
const PREC_NOT: u8 = 3;
const PREC_NEG: u8 = 7;

fn infix_op(rule: Rule) -> (BinOp, u8, bool) {
    match rule {
        Rule::op_or => (BinOp::Or, 1, false),
        Rule::op_and => (BinOp::And, 2, false),
        Rule::op_eq => (BinOp::Eq, 4, false),
        Rule::op_ne => (BinOp::Ne, 4, false),
        Rule::op_lt => (BinOp::Lt, 4, false),
        Rule::op_le => (BinOp::Le, 4, false),
        Rule::op_gt => (BinOp::Gt, 4, false),
        Rule::op_ge => (BinOp::Ge, 4, false),
        Rule::op_add => (BinOp::Add, 5, false),
        Rule::op_sub => (BinOp::Sub, 5, false),
        Rule::op_mul => (BinOp::Mul, 6, false),
        Rule::op_div => (BinOp::Div, 6, false),
        Rule::op_mod => (BinOp::Mod, 6, false),
        _ => (BinOp::Pow, 8, true),
    }
}

/// How deeply expressions may nest: operators, calls, indexing and brackets each add a level.
/// Every stage after parsing (lowering, folding, printing, the interpreter, code generation)
/// recurses over expressions, and this bound keeps each of them far inside a 2 MiB thread
/// stack.
pub const MAX_NESTING: usize = 256;

fn nesting_error(span: Span, levels: String) -> Diagnostic {
    Diagnostic::error(
        span,
        format!("expression nested too deeply ({levels}; the limit is {MAX_NESTING})"),
    )
    .with_label("this expression is too deep")
    .with_help(
        "split it into named parts (`let`, `const` or `param`), or sum long lists with fewer \
         levels, e.g. `(a + b) + (c + d)`",
    )
}

/// Pest recurses once per bracket level (`(`, `[`): before parsing, find the first bracket that
/// opens a level beyond [`MAX_NESTING`], skipping comments and strings. Returns its offset in
/// `piece` and the deepest level reached.
fn check_brackets(piece: &str) -> Option<(usize, usize)> {
    let bytes = piece.as_bytes();
    let mut depth = 0usize;
    let mut max = 0usize;
    let mut first = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                match piece[i + 2..].find("*/") {
                    Some(k) => i += k + 4,
                    None => i = bytes.len(),
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' => {
                depth += 1;
                max = max.max(depth);
                if depth > MAX_NESTING && first.is_none() {
                    first = Some(i);
                }
            }
            b')' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    first.map(|at| (at, max))
}

fn parse_number(s: &str) -> f64 {
    // The grammar only admits decimal literals, which f64 parsing accepts (large ones become inf,
    // which the checker reports).
    s.parse().unwrap_or(f64::INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_top_level_keywords_only() {
        let src = "model m\nneuron A {\n  param x = 1\n}\nparam y = 2\n";
        let pieces: Vec<&str> = split_items(src).iter().map(|&(a, b)| &src[a..b]).collect();
        assert_eq!(
            pieces,
            vec![
                "model m\n",
                "neuron A {\n  param x = 1\n}\n",
                "param y = 2\n"
            ]
        );
    }

    #[test]
    fn recovers_after_unclosed_brace_at_column_one() {
        let src = "neuron A {\n  param x = 1\n\npopulation P = A[3]\n";
        let (ast, diags) = parse_at(src, 0);
        assert_eq!(diags.len(), 1);
        assert_eq!(ast.items.len(), 1);
    }
}
