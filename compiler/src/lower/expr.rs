//! Expression lowering: name resolution, unit checking and constant folding of one AST
//! expression into the IR arena, under a [`Ctx`] that says what the expression may see.

use std::collections::HashMap;

use neurograph_grammar::{self as ast, BinOp, Diagnostic, ExprKind, Span, UnOp};

use super::{GlobalName, Lowerer};
use crate::funcs::{self, FuncClass, UnitRule};
use crate::ir::*;
use crate::units::{self, Dim};

/// How many unknown names get a "did you mean" search.
const MAX_SUGGESTIONS: u32 = 200;

/// The type of an expression, recorded per expression in the validation side table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ty {
    Real(Dim),
    Bool,
    /// An error was already reported for this expression; accept anything to avoid cascades.
    Error,
}

impl Ty {
    pub fn describe(self) -> String {
        match self {
            Ty::Real(d) if d.is_none() => "a dimensionless number".to_string(),
            Ty::Real(d) => format!("a quantity in {d}"),
            Ty::Bool => "a condition".to_string(),
            Ty::Error => "an erroneous expression".to_string(),
        }
    }
}

/// What an expression may refer to.
#[derive(Clone, Default)]
pub struct Ctx {
    /// Element type whose variables bare names refer to.
    pub own: Option<ElementType>,
    /// How many of the own element type's variables are visible (declaration order; `None`
    /// means all). Initialisers see only the variables declared before them.
    pub visible_vars: Option<Vec<Handle<Variable>>>,
    pub pre: Option<ElementType>,
    pub post: Option<ElementType>,
    pub lets: HashMap<String, (Handle<Expr>, Ty)>,
    /// `i`, `j` (the latter only with `post` or `post_index`).
    pub indices: bool,
    /// `j` (the post index) in a synapse variable's own initial value and parameters.
    pub post_index: bool,
    pub random: bool,
    /// Population-wide functions (`sum`, `layernorm`, ...).
    pub population_ops: bool,
    /// Time-dependent builtins `t`, `step`.
    pub time: bool,
    /// Runtime parameters; false where only constants are allowed.
    pub params: bool,
    /// Describes the place for messages, e.g. "a population size".
    pub place: &'static str,
}

impl Ctx {
    pub fn constant(place: &'static str) -> Ctx {
        Ctx {
            place,
            ..Ctx::default()
        }
    }

    /// An input's value, rate or weight: the variables of the cell type `own` it feeds, `i`,
    /// `t`, parameters, and random draws when `random`.
    pub fn input(own: ElementType, place: &'static str, random: bool) -> Ctx {
        Ctx {
            own: Some(own),
            indices: true,
            random,
            time: true,
            params: true,
            place,
            ..Ctx::default()
        }
    }
}

impl Lowerer<'_> {
    pub(super) fn push_expr(&mut self, e: Expr, ty: Ty) -> (Handle<Expr>, Ty) {
        let depth = |h: &Handle<Expr>| self.depths.get(h.index()).copied().unwrap_or(1);
        let d = 1 + match &e {
            Expr::Unary(_, a) => depth(a),
            Expr::Binary(_, a, b) => depth(a).max(depth(b)),
            Expr::Call(_, args) | Expr::Array(args) => args.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        };
        let h = self.model.exprs.push(e);
        self.types.push(ty);
        self.depths.push(d);
        (h, ty)
    }

    fn error_expr(&mut self) -> (Handle<Expr>, Ty) {
        self.push_expr(Expr::Const(0.0), Ty::Error)
    }

    /// Lower `e` and require it to be a real number with dimension `want`.
    pub(super) fn expr_dim(
        &mut self,
        e: &ast::Expr,
        ctx: &Ctx,
        want: Dim,
        what: &str,
    ) -> Handle<Expr> {
        let (h, ty) = self.expr(e, ctx);
        match ty {
            Ty::Real(d) if d == want => {}
            Ty::Real(_) if is_zero_literal(e) => {}
            Ty::Error => {}
            Ty::Real(d) => self.diags.push(
                Diagnostic::error(
                    e.span,
                    format!("unit mismatch: {what} must be in {want}, found {d}"),
                )
                .with_label(format!("this is in {d}"))
                .with_help(match self.unitless_divisor(h) {
                    Some(name) if d.per(want) == Dim::TIME => format!(
                        "`{name}` has no unit, so dividing by it leaves {d}: give it a time unit, e.g. `{name} = 10 ms`"
                    ),
                    _ => unit_help(want, d),
                }),
            ),
            Ty::Bool => self.diags.push(
                Diagnostic::error(
                    e.span,
                    format!("{what} must be a number, found a condition"),
                )
                .with_label("this is a condition"),
            ),
        }
        h
    }

    /// A dimensionless variable that `h` divides by (through signs, sums and products): the
    /// likely culprit when a time constant was meant.
    fn unitless_divisor(&self, h: Handle<Expr>) -> Option<String> {
        match &self.model.exprs[h] {
            Expr::Binary(ast::BinOp::Div, a, b) => match &self.model.exprs[*b] {
                Expr::Var { var, .. } if self.model.variables[*var].dim == Dim::NONE => {
                    Some(self.model.variables[*var].name.clone())
                }
                _ => self.unitless_divisor(*a),
            },
            Expr::Binary(ast::BinOp::Add | ast::BinOp::Sub | ast::BinOp::Mul, a, b) => self
                .unitless_divisor(*a)
                .or_else(|| self.unitless_divisor(*b)),
            Expr::Unary(_, a) => self.unitless_divisor(*a),
            _ => None,
        }
    }

    /// Lower `e` and require a condition.
    pub(super) fn expr_bool(&mut self, e: &ast::Expr, ctx: &Ctx, what: &str) -> Handle<Expr> {
        let (h, ty) = self.expr(e, ctx);
        match ty {
            Ty::Bool | Ty::Error => {}
            Ty::Real(d) => self.diags.push(
                Diagnostic::error(
                    e.span,
                    format!("{what} must be a condition (true or false), found a number"),
                )
                .with_label(format!("this is {}", Ty::Real(d).describe()))
                .with_help("compare it with something, e.g. `v > Vt`"),
            ),
        }
        h
    }

    /// Lower any expression, reporting errors and returning its type. The parser bounds the
    /// nesting of what is written; `let` substitution can nest deeper, and this bounds the
    /// result by the same limit (every later stage recurses over expressions).
    pub(super) fn expr(&mut self, e: &ast::Expr, ctx: &Ctx) -> (Handle<Expr>, Ty) {
        let (h, ty) = self.expr_unchecked(e, ctx);
        let depth = self.depths[h.index()];
        if depth as usize > ast::MAX_NESTING {
            self.diags.push(
                Diagnostic::error(
                    e.span,
                    format!(
                        "expression nested too deeply ({depth} levels once `let` names are \
                         substituted; the limit is {})",
                        ast::MAX_NESTING
                    ),
                )
                .with_label("this expression is too deep")
                .with_help("split the computation into state variables or parameters"),
            );
            return self.error_expr();
        }
        (h, ty)
    }

    fn expr_unchecked(&mut self, e: &ast::Expr, ctx: &Ctx) -> (Handle<Expr>, Ty) {
        match &e.kind {
            ExprKind::Number(v) => {
                if !v.is_finite() {
                    self.diags.push(
                        Diagnostic::error(e.span, "number out of range")
                            .with_label("too large for a 64-bit float"),
                    );
                    return self.error_expr();
                }
                self.push_expr(Expr::Const(*v), Ty::Real(Dim::NONE))
            }
            ExprKind::Quantity { value, unit } => match self.unit_scale(unit) {
                Some((scale, dim)) => self.push_expr(Expr::Const(value * scale), Ty::Real(dim)),
                None => self.error_expr(),
            },
            ExprKind::Bool(b) => self.push_expr(Expr::Bool(*b), Ty::Bool),
            ExprKind::Str(_) => {
                self.diags.push(
                    Diagnostic::error(e.span, format!("a string is not allowed in {}", ctx.place))
                        .with_label("strings only name files, e.g. `load(\"w.npy\")`"),
                );
                self.error_expr()
            }
            ExprKind::Array(_) => {
                self.diags.push(
                    Diagnostic::error(e.span, format!("an array is not allowed in {}", ctx.place))
                        .with_label("arrays are for transition matrices and per-regime values"),
                );
                self.error_expr()
            }
            ExprKind::Range { .. } => {
                self.diags.push(
                    Diagnostic::error(e.span, "a range is only allowed inside `[...]`")
                        .with_label("not a value"),
                );
                self.error_expr()
            }
            ExprKind::Name(n) => self.name(n, e.span, ctx),
            ExprKind::Field { base, field } => self.field(base, field, e.span, ctx),
            ExprKind::Index { base, index } => self.index(base, index, e.span, ctx),
            ExprKind::Unary(op, inner) => {
                let (h, ty) = self.expr(inner, ctx);
                match (op, ty) {
                    (_, Ty::Error) => self.error_expr(),
                    (UnOp::Neg, Ty::Real(d)) => {
                        if let Expr::Const(c) = self.model.exprs[h] {
                            return self.push_expr(Expr::Const(-c), Ty::Real(d));
                        }
                        self.push_expr(Expr::Unary(UnOp::Neg, h), Ty::Real(d))
                    }
                    (UnOp::Not, Ty::Bool) => self.push_expr(Expr::Unary(UnOp::Not, h), Ty::Bool),
                    (UnOp::Neg, Ty::Bool) => {
                        self.diags.push(
                            Diagnostic::error(e.span, "cannot negate a condition")
                                .with_label("`-` needs a number")
                                .with_help("use `not` to negate a condition"),
                        );
                        self.error_expr()
                    }
                    (UnOp::Not, Ty::Real(_)) => {
                        self.diags.push(
                            Diagnostic::error(e.span, "`not` needs a condition, found a number")
                                .with_label("this is a number"),
                        );
                        self.error_expr()
                    }
                }
            }
            ExprKind::Binary(op, l, r) => self.binary(*op, l, r, e.span, ctx),
            ExprKind::Call { callee, args } => self.call(callee, args, e.span, ctx),
        }
    }

    /// Resolve a unit written in the source: scale to SI and dimension.
    pub(super) fn unit_scale(&mut self, u: &ast::UnitExpr) -> Option<(f64, Dim)> {
        let mut scale = 1.0;
        let mut dim = Dim::NONE;
        let mut ok = true;
        for f in &u.factors {
            match units::lookup_unit(&f.symbol) {
                Some((s, d)) => {
                    scale *= s.powi(f.power);
                    dim = dim.times(d.powi(f.power));
                }
                None => {
                    let known = units::known_symbols();
                    let mut d = Diagnostic::error(f.span, format!("unknown unit `{}`", f.symbol))
                        .with_label("not a unit neurograph knows");
                    d = match funcs::suggest(&f.symbol, known.iter().map(String::as_str)) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(
                            "units are SI symbols with prefixes (ms, mV, nS, pF, uM, Hz) or \
                             names (second, volt); a number times a name needs `*`",
                        ),
                    };
                    self.diags.push(d);
                    ok = false;
                }
            }
        }
        ok.then_some((scale, dim))
    }

    fn name(&mut self, n: &str, span: Span, ctx: &Ctx) -> (Handle<Expr>, Ty) {
        if let Some(&(h, ty)) = ctx.lets.get(n) {
            return (h, ty);
        }
        if let Some(own) = ctx.own {
            let vars = match &ctx.visible_vars {
                Some(v) => v.clone(),
                None => self.model.element_vars(own),
            };
            if let Some(&v) = vars.iter().find(|&&v| self.model.variables[v].name == n) {
                return self.var_ref(v, Side::Own, span, ctx, false);
            }
            // Declared later in the same body: say so rather than "unknown".
            let all = self.model.element_vars(own);
            if let Some(&v) = all.iter().find(|&&v| self.model.variables[v].name == n) {
                self.diags.push(
                    Diagnostic::error(span, format!("`{n}` is used before it is declared"))
                        .with_label("an initial value can only use variables declared above it")
                        .with_secondary(self.model.variables[v].span, "declared here"),
                );
                return self.error_expr();
            }
        }
        match self.names.get(n).map(|(g, _)| *g) {
            Some(GlobalName::Var(v)) => return self.var_ref(v, Side::Own, span, ctx, false),
            Some(GlobalName::Regime(r)) => {
                return self.push_expr(Expr::RegimeState(r), Ty::Real(Dim::NONE))
            }
            Some(GlobalName::RegimeLabel(k)) => {
                return self.push_expr(Expr::Const(k as f64), Ty::Real(Dim::NONE))
            }
            Some(other) => {
                let what = other.describe();
                self.diags.push(
                    Diagnostic::error(span, format!("`{n}` is {what}, not a value"))
                        .with_label(format!("{what} used as a value"))
                        .with_secondary(self.names[n].1, "declared here"),
                );
                return self.error_expr();
            }
            None => {}
        }
        let builtin = match n {
            "t" => Some(Builtin::T),
            "dt" => Some(Builtin::Dt),
            "step" => Some(Builtin::Step),
            "i" => Some(Builtin::I),
            "j" => Some(Builtin::J),
            "N" => Some(Builtin::N),
            "pi" => return self.push_expr(Expr::Const(std::f64::consts::PI), Ty::Real(Dim::NONE)),
            _ => None,
        };
        if let Some(b) = builtin {
            let allowed = match b {
                Builtin::T | Builtin::Step => ctx.time,
                Builtin::Dt => true,
                Builtin::I | Builtin::N => ctx.indices,
                Builtin::J => ctx.indices && (ctx.post.is_some() || ctx.post_index),
            };
            if !allowed {
                self.diags.push(
                    Diagnostic::error(span, format!("`{n}` is not available in {}", ctx.place))
                        .with_label(format!("`{n}` has no value here")),
                );
                return self.error_expr();
            }
            if b == Builtin::Dt {
                return self.push_expr(Expr::Const(self.model.run.dt), Ty::Real(Dim::TIME));
            }
            let dim = if b == Builtin::T {
                Dim::TIME
            } else {
                Dim::NONE
            };
            return self.push_expr(Expr::Builtin(b), Ty::Real(dim));
        }
        // A unit standing alone is that quantity (`/ms` is `/ (1 ms)`, as in Brian2), unless
        // the name is declared. Not single letters (`m`, `s`, `V`, `A`, …): those are more often
        // a variable the spec forgot to declare than a unit.
        if n.chars().count() > 1 {
            if let Some((scale, dim)) = units::lookup_unit(n) {
                return self.push_expr(Expr::Const(scale), Ty::Real(dim));
            }
        }
        if !self.reported_names.contains(n) {
            self.unknown_name(n, span, ctx);
        }
        self.error_expr()
    }

    fn unknown_name(&mut self, n: &str, span: Span, ctx: &Ctx) {
        let mut d = Diagnostic::error(span, format!("unknown name `{n}`"))
            .with_label("not declared anywhere in scope");
        // Suggestions for the first few hundred unknown names only: each search looks at every
        // name in scope, and a spec with thousands of errors needs no more of them.
        let suggestion = if self.suggestions < MAX_SUGGESTIONS {
            self.suggestions += 1;
            let own_vars = ctx
                .own
                .map(|o| self.model.element_vars(o))
                .unwrap_or_default();
            let candidates = ctx
                .lets
                .keys()
                .map(String::as_str)
                .chain(
                    own_vars
                        .iter()
                        .map(|&v| self.model.variables[v].name.as_str()),
                )
                .chain(self.names.keys().map(String::as_str))
                .chain(["t", "dt", "i", "j", "N", "step"]);
            funcs::suggest(n, candidates).map(str::to_string)
        } else {
            None
        };
        if let Some(help) = brian_side_hint(n) {
            d = d.with_help(help);
        } else if let Some(s) = suggestion {
            d = d.with_help(format!("did you mean `{s}`?"));
        } else if units::lookup_unit(n).is_some() {
            d = d.with_help(format!(
                "`{n}` is a unit: write it right after a number, e.g. `1 {n}`"
            ));
        }
        self.diags.push(d);
    }

    /// A reference to a variable: constants fold, regime-indexed variables need their index.
    pub(super) fn var_ref(
        &mut self,
        v: Handle<Variable>,
        side: Side,
        span: Span,
        ctx: &Ctx,
        indexed: bool,
    ) -> (Handle<Expr>, Ty) {
        let var = &self.model.variables[v];
        let dim = var.dim;
        if var.kind == VarKind::Const {
            let value = self.const_values.get(&v).copied();
            return match value {
                Some(c) => self.push_expr(Expr::Const(c), Ty::Real(dim)),
                None => self.error_expr(),
            };
        }
        if !ctx.params {
            let name = var.name.clone();
            let decl = var.span;
            self.diags.push(
                Diagnostic::error(
                    span,
                    format!(
                        "{} must be a constant, but `{name}` is a runtime {}",
                        ctx.place,
                        var.kind.keyword()
                    ),
                )
                .with_label("not known at compile time")
                .with_secondary(decl, "declared here")
                .with_help(format!(
                    "declare it with `const {name} = ...` to fix its value at compile time"
                )),
            );
            return self.error_expr();
        }
        if let Some(r) = var.regime {
            if !indexed {
                let name = var.name.clone();
                let rname = self.model.regimes[r].name.clone();
                self.diags.push(
                    Diagnostic::error(
                        span,
                        format!("`{name}` has one value per state of `{rname}`"),
                    )
                    .with_label("needs an index")
                    .with_help(format!("write `{name}[{rname}]`")),
                );
                return self.error_expr();
            }
        }
        self.push_expr(Expr::Var { var: v, side }, Ty::Real(dim))
    }

    fn side_of(&mut self, base: &ast::Expr, ctx: &Ctx) -> Option<(Side, Option<ElementType>)> {
        match &base.kind {
            ExprKind::Name(n) if n == "pre" => Some((Side::Pre, ctx.pre)),
            ExprKind::Name(n) if n == "post" => Some((Side::Post, ctx.post)),
            _ => None,
        }
    }

    fn field(
        &mut self,
        base: &ast::Expr,
        field: &ast::Ident,
        span: Span,
        ctx: &Ctx,
    ) -> (Handle<Expr>, Ty) {
        let Some((side, elem)) = self.side_of(base, ctx) else {
            self.diags.push(
                Diagnostic::error(span, format!("`.{}` is only allowed after `pre` or `post`", field.name))
                    .with_label("not a synapse endpoint")
                    .with_help("inside a cell, refer to the cell's own variables by name; other populations are reached through projections"),
            );
            return self.error_expr();
        };
        let Some(elem) = elem else {
            self.diags.push(
                Diagnostic::error(
                    base.span,
                    format!(
                        "`{}` is only available in synapse code",
                        if side == Side::Pre { "pre" } else { "post" }
                    ),
                )
                .with_label(format!("no synapse here, in {}", ctx.place)),
            );
            return self.error_expr();
        };
        match self.find_var(elem, &field.name) {
            Some(v) => self.var_ref(v, side, span, ctx, false),
            None if field.name == "lastspike" => match elem {
                ElementType::Cell(ct) => {
                    let v = self.lastspike_var(ct, field.span);
                    self.var_ref(v, side, span, ctx, false)
                }
                _ => {
                    self.unknown_member(elem, field);
                    self.error_expr()
                }
            },
            None => {
                self.unknown_member(elem, field);
                self.error_expr()
            }
        }
    }

    /// `pre.lastspike` / `post.lastspike`: the time of the cell's last spike (−10⁴ s before the
    /// first, as in Brian2), a state the runtime sets to `t` whenever the cell spikes (after
    /// detection, before synaptic delivery). Created on first use.
    fn lastspike_var(&mut self, ct: Handle<CellType>, span: Span) -> Handle<Variable> {
        if let Some(v) = self.model.cell_types[ct].lastspike {
            return v;
        }
        let (init, _) = self.push_expr(Expr::Const(-1e4), Ty::Real(Dim::TIME));
        let v = self.model.variables.push(Variable {
            name: "lastspike".into(),
            scope: Scope::Cell(ct),
            kind: VarKind::State,
            dim: Dim::TIME,
            regime: None,
            init,
            span,
        });
        self.model.cell_types[ct].states.push(v);
        self.model.cell_types[ct].lastspike = Some(v);
        v
    }

    pub(super) fn find_var(&self, elem: ElementType, name: &str) -> Option<Handle<Variable>> {
        self.model
            .element_vars(elem)
            .into_iter()
            .find(|&v| self.model.variables[v].name == name)
    }

    pub(super) fn element_name(&self, elem: ElementType) -> String {
        match elem {
            ElementType::Cell(c) => format!("cell type `{}`", self.model.cell_types[c].name),
            ElementType::Synapse(s) => {
                format!("synapse type `{}`", self.model.synapse_types[s].name)
            }
        }
    }

    pub(super) fn unknown_member(&mut self, elem: ElementType, field: &ast::Ident) {
        let names: Vec<String> = self
            .model
            .element_vars(elem)
            .iter()
            .map(|&v| self.model.variables[v].name.clone())
            .collect();
        let mut d = Diagnostic::error(
            field.span,
            format!(
                "{} has no variable `{}`",
                self.element_name(elem),
                field.name
            ),
        )
        .with_label("unknown variable");
        if let Some(help) = brian_side_hint(&field.name) {
            d = d.with_help(help);
        } else if let Some(s) = funcs::suggest(&field.name, names.iter().map(String::as_str)) {
            d = d.with_help(format!("did you mean `{s}`?"));
        } else if !names.is_empty() {
            d = d.with_help(format!("its variables are: {}", names.join(", ")));
        }
        self.diags.push(d);
    }

    fn index(
        &mut self,
        base: &ast::Expr,
        index: &ast::Expr,
        span: Span,
        ctx: &Ctx,
    ) -> (Handle<Expr>, Ty) {
        // `load(...)[h]`: entries of the loaded array's first axis.
        if let Some((args, call_span, mut picks)) = load_chain(base) {
            picks.push(index);
            let mut at = Vec::new();
            for pick in picks {
                let (h, _) = self.expr(pick, ctx);
                match self.model.exprs[h] {
                    Expr::Const(c) if c >= 0.0 && c.fract() == 0.0 && c < u32::MAX as f64 => {
                        at.push(c as u64)
                    }
                    _ => {
                        self.diags.push(
                            Diagnostic::error(pick.span, "an index of `load(...)` must be a constant whole number (0, 1, ...)")
                                .with_label("not a constant index")
                                .with_help("it picks one entry of the array's first axis, e.g. `load(\"m.safetensors\", \"encoder\")[2]` for head 2"),
                        );
                        return self.error_expr();
                    }
                }
            }
            return self.load_call(args, call_span, ctx, at);
        }
        // `w[brain]` or `pre.w[brain]`: a regime-indexed variable.
        let resolved = match &base.kind {
            ExprKind::Name(n) => ctx
                .own
                .and_then(|o| self.find_var(o, n))
                .map(|v| (v, Side::Own))
                .or_else(|| match self.names.get(n) {
                    Some((GlobalName::Var(v), _)) => Some((*v, Side::Own)),
                    _ => None,
                }),
            ExprKind::Field { base: b, field } => self.side_of(b, ctx).and_then(|(side, elem)| {
                elem.and_then(|e| self.find_var(e, &field.name))
                    .map(|v| (v, side))
            }),
            _ => None,
        };
        let Some((v, side)) = resolved else {
            self.diags.push(
                Diagnostic::error(span, "indexing is only for variables with one value per regime state, e.g. `w[brain]`")
                    .with_label("cannot index this"),
            );
            return self.error_expr();
        };
        let var_regime = self.model.variables[v].regime;
        let idx_regime = match &index.kind {
            ExprKind::Name(n) => match self.names.get(n) {
                Some((GlobalName::Regime(r), _)) => Some(*r),
                _ => None,
            },
            _ => None,
        };
        match (var_regime, idx_regime) {
            (Some(a), Some(b)) if a == b => self.var_ref(v, side, span, ctx, true),
            (Some(a), _) => {
                let rname = self.model.regimes[a].name.clone();
                self.diags.push(
                    Diagnostic::error(
                        index.span,
                        format!(
                            "`{}` is indexed by the regime `{rname}`",
                            self.model.variables[v].name
                        ),
                    )
                    .with_label(format!("expected `{rname}`")),
                );
                self.error_expr()
            }
            (None, _) => {
                self.diags.push(
                    Diagnostic::error(span, format!("`{}` has a single value and cannot be indexed", self.model.variables[v].name))
                        .with_label("not per-regime")
                        .with_help("declare it as `state w[brain] = ...` to give it one value per regime state"),
                );
                self.error_expr()
            }
        }
    }

    fn binary(
        &mut self,
        op: BinOp,
        l: &ast::Expr,
        r: &ast::Expr,
        span: Span,
        ctx: &Ctx,
    ) -> (Handle<Expr>, Ty) {
        let (lh, lt) = self.expr(l, ctx);
        let (rh, rt) = self.expr(r, ctx);
        if lt == Ty::Error || rt == Ty::Error {
            return self.error_expr();
        }
        let ty = match op {
            BinOp::And | BinOp::Or => {
                if lt != Ty::Bool || rt != Ty::Bool {
                    let bad = if lt != Ty::Bool { l } else { r };
                    self.diags.push(
                        Diagnostic::error(
                            bad.span,
                            format!("`{}` needs conditions on both sides", op.symbol()),
                        )
                        .with_label("this is a number"),
                    );
                    return self.error_expr();
                }
                Ty::Bool
            }
            _ => {
                let (Ty::Real(ld), Ty::Real(rd)) = (lt, rt) else {
                    let bad = if lt == Ty::Bool { l } else { r };
                    self.diags.push(
                        Diagnostic::error(
                            bad.span,
                            format!("`{}` needs numbers, found a condition", op.symbol()),
                        )
                        .with_label("this is a condition")
                        .with_help(
                            "a condition is not a number: write `if(c, 1, 0)` for 1 or 0, or \
                             `if(c, a, b)` to choose between two values",
                        ),
                    );
                    return self.error_expr();
                };
                match op {
                    BinOp::Add
                    | BinOp::Sub
                    | BinOp::Mod
                    | BinOp::Eq
                    | BinOp::Ne
                    | BinOp::Lt
                    | BinOp::Le
                    | BinOp::Gt
                    | BinOp::Ge => {
                        let zero_ok = is_zero_literal(l) || is_zero_literal(r);
                        if ld != rd && !zero_ok {
                            let verb = match op {
                                BinOp::Add => "add",
                                BinOp::Sub => "subtract",
                                BinOp::Mod => "take the remainder of",
                                _ => "compare",
                            };
                            self.diags.push(
                                Diagnostic::error(
                                    span,
                                    format!("unit mismatch: cannot {verb} {ld} and {rd}"),
                                )
                                .with_label(format!(
                                    "`{}` needs both sides in the same unit",
                                    op.symbol()
                                ))
                                .with_secondary(l.span, format!("this is in {ld}"))
                                .with_secondary(r.span, format!("this is in {rd}")),
                            );
                            return self.error_expr();
                        }
                        let d = if ld.is_none() && is_zero_literal(l) {
                            rd
                        } else {
                            ld
                        };
                        if op.is_comparison() {
                            Ty::Bool
                        } else {
                            Ty::Real(d)
                        }
                    }
                    BinOp::Mul => Ty::Real(ld.times(rd)),
                    BinOp::Div => Ty::Real(ld.per(rd)),
                    BinOp::Pow => {
                        if !rd.is_none() {
                            self.diags.push(
                                Diagnostic::error(
                                    r.span,
                                    format!("an exponent must be dimensionless, found {rd}"),
                                )
                                .with_label("has a unit"),
                            );
                            return self.error_expr();
                        }
                        if ld.is_none() {
                            Ty::Real(Dim::NONE)
                        } else {
                            match self.const_eval(rh) {
                                Some(p) if p.fract() == 0.0 && p.abs() < 64.0 => {
                                    Ty::Real(ld.powi(p as i32))
                                }
                                Some(p) if (2.0 * p).fract() == 0.0 => match ld.sqrt() {
                                    Some(s) => Ty::Real(s.powi((2.0 * p) as i32)),
                                    None => {
                                        self.diags.push(
                                            Diagnostic::error(
                                                span,
                                                format!("cannot raise {ld} to a fractional power"),
                                            )
                                            .with_label("the unit has odd exponents"),
                                        );
                                        return self.error_expr();
                                    }
                                },
                                _ => {
                                    self.diags.push(
                                        Diagnostic::error(r.span, format!("a quantity in {ld} can only be raised to a constant integer power"))
                                            .with_label("not a constant integer")
                                            .with_help("divide by a unit first to make the base dimensionless"),
                                    );
                                    return self.error_expr();
                                }
                            }
                        }
                    }
                    BinOp::And | BinOp::Or => unreachable!(),
                }
            }
        };
        // Fold constant arithmetic so that constants stay constants in the IR.
        if let (Expr::Const(a), Expr::Const(b)) = (&self.model.exprs[lh], &self.model.exprs[rh]) {
            let v = match op {
                BinOp::Add => Some(a + b),
                BinOp::Sub => Some(a - b),
                BinOp::Mul => Some(a * b),
                BinOp::Div if *b != 0.0 => Some(a / b),
                BinOp::Pow => Some(pow_f64(*a, *b)),
                _ => None,
            };
            if let Some(v) = v {
                return self.push_expr(Expr::Const(v), ty);
            }
        }
        self.push_expr(Expr::Binary(op, lh, rh), ty)
    }

    fn call(
        &mut self,
        callee: &ast::Expr,
        args: &[ast::Arg],
        span: Span,
        ctx: &Ctx,
    ) -> (Handle<Expr>, Ty) {
        let ExprKind::Name(name) = &callee.kind else {
            self.diags.push(
                Diagnostic::error(callee.span, "only named functions can be called")
                    .with_label("not a function name"),
            );
            return self.error_expr();
        };
        if let Some(a) = args.iter().find_map(|a| a.name.as_ref()) {
            self.diags.push(
                Diagnostic::error(a.span, format!("`{name}` takes no named arguments"))
                    .with_label("unexpected named argument"),
            );
            return self.error_expr();
        }
        if name == "load" {
            return self.load_call(args, span, ctx, Vec::new());
        }
        if name == "timed" {
            return self.timed_call(args, span, ctx);
        }
        let Some(info) = funcs::lookup(name, args.len()) else {
            let mut d = Diagnostic::error(callee.span, format!("unknown function `{name}`"))
                .with_label("not a function neurograph knows");
            if funcs::SPECIAL_CALLS.contains(&name.as_str()) {
                d = d.with_help(format!(
                    "`{name}` is only allowed in its own place (connect rules, inputs, records)"
                ));
            } else if let Some(s) = funcs::suggest(name, funcs::all_names()) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            self.diags.push(d);
            return self.error_expr();
        };
        if !(info.min_args..=info.max_args).contains(&args.len()) {
            let want = if info.min_args == info.max_args {
                format!(
                    "{} argument{}",
                    info.min_args,
                    if info.min_args == 1 { "" } else { "s" }
                )
            } else {
                format!("{} to {} arguments", info.min_args, info.max_args)
            };
            self.diags.push(
                Diagnostic::error(span, format!("`{name}` takes {want}, found {}", args.len()))
                    .with_label("wrong number of arguments"),
            );
            return self.error_expr();
        }
        match info.class {
            FuncClass::Random if !ctx.random => {
                self.diags.push(
                    Diagnostic::error(
                        span,
                        format!("random function `{name}` is not allowed in {}", ctx.place),
                    )
                    .with_label("draws a random number"),
                );
                return self.error_expr();
            }
            FuncClass::Population if !ctx.population_ops => {
                self.diags.push(
                    Diagnostic::error(span, format!("population function `{name}` is not allowed in {}", ctx.place))
                        .with_label("reads a whole population")
                        .with_help("population functions belong in a cell's `let`, `<-` or `dx/dt` statements; couplings write `post.x = sum(...)` in a projection"),
                );
                return self.error_expr();
            }
            _ => {}
        }
        let mut hs = Vec::new();
        let mut tys = Vec::new();
        for (k, a) in args.iter().enumerate() {
            if info.func == Func::If && k == 0 {
                // The condition: true or false, which the IR holds as 1 or 0.
                hs.push(self.expr_bool(&a.value, ctx, "the first argument of `if`"));
                tys.push(Ty::Real(Dim::NONE));
                continue;
            }
            let (h, t) = self.expr(&a.value, ctx);
            if t == Ty::Bool && info.func == Func::Heaviside {
                // `heaviside(cond)`: 1 where the condition holds, else 0.
                hs.push(h);
                tys.push(Ty::Real(Dim::NONE));
                continue;
            }
            if t == Ty::Bool {
                self.diags.push(
                    Diagnostic::error(
                        a.value.span,
                        format!("`{name}` needs numbers, found a condition"),
                    )
                    .with_label("this is a condition"),
                );
                return self.error_expr();
            }
            hs.push(h);
            tys.push(t);
        }
        if tys.contains(&Ty::Error) {
            return self.error_expr();
        }
        let dims: Vec<Dim> = tys
            .iter()
            .map(|t| match t {
                Ty::Real(d) => *d,
                _ => Dim::NONE,
            })
            .collect();
        let result = match info.units {
            UnitRule::Dimensionless => {
                for (k, d) in dims.iter().enumerate() {
                    if !d.is_none() {
                        self.diags.push(
                            Diagnostic::error(
                                args[k].value.span,
                                format!("`{name}` needs a dimensionless argument, found {d}"),
                            )
                            .with_label(format!("this is in {d}"))
                            .with_help(format!(
                                "divide by a quantity in {d} to make it dimensionless"
                            )),
                        );
                        return self.error_expr();
                    }
                }
                Dim::NONE
            }
            UnitRule::Same => {
                let skip = usize::from(info.func == Func::If);
                let first = (skip..dims.len())
                    .find(|&k| !is_zero_literal(&args[k].value))
                    .map_or(Dim::NONE, |k| dims[k]);
                for (k, d) in dims.iter().enumerate().skip(skip) {
                    if *d != first && !is_zero_literal(&args[k].value) {
                        self.diags.push(
                            Diagnostic::error(args[k].value.span, format!("unit mismatch: the arguments of `{name}` must share one unit; this is {d}, the first is {first}"))
                                .with_label(format!("this is in {d}")),
                        );
                        return self.error_expr();
                    }
                }
                first
            }
            UnitRule::FirstPasses => {
                for (k, d) in dims.iter().enumerate().skip(1) {
                    if !d.is_none() {
                        self.diags.push(
                            Diagnostic::error(
                                args[k].value.span,
                                format!(
                                    "argument {} of `{name}` must be dimensionless, found {d}",
                                    k + 1
                                ),
                            )
                            .with_label("has a unit"),
                        );
                        return self.error_expr();
                    }
                }
                dims[0]
            }
            UnitRule::ToDimensionless | UnitRule::Normalise => Dim::NONE,
            UnitRule::Sqrt => match dims[0].sqrt() {
                Some(d) => d,
                None => {
                    self.diags.push(
                        Diagnostic::error(
                            args[0].value.span,
                            format!("cannot take the square root of {}", dims[0]),
                        )
                        .with_label("the unit has odd exponents"),
                    );
                    return self.error_expr();
                }
            },
        };
        if matches!(info.func, Func::Bernoulli) {
            self.check_probability(hs[0], args[0].value.span);
        }
        if matches!(info.func, Func::Normal | Func::TruncNormal) {
            if let Some(s) = self.const_eval(hs[1]) {
                if s < 0.0 {
                    self.diags.push(
                        Diagnostic::error(
                            args[1].value.span,
                            format!(
                                "the standard deviation of `{}` must not be negative",
                                info.name
                            ),
                        )
                        .with_label(format!("evaluates to {s}")),
                    );
                }
            }
        }
        if let (Func::TruncNormal, Some(high)) = (info.func, hs.get(3)) {
            if let (Some(lo), Some(hi)) = (self.const_eval(hs[2]), self.const_eval(*high)) {
                if lo > hi {
                    self.diags.push(
                        Diagnostic::error(
                            args[3].value.span,
                            "the upper bound of `truncnormal` is below its lower bound",
                        )
                        .with_label(format!("{hi} < {lo}")),
                    );
                }
            }
        }
        let all_const = hs
            .iter()
            .all(|&h| matches!(self.model.exprs[h], Expr::Const(_) | Expr::Bool(_)));
        if all_const && info.class == FuncClass::Pure {
            let vals: Vec<f64> = hs
                .iter()
                .map(|&h| match self.model.exprs[h] {
                    Expr::Const(c) => c,
                    Expr::Bool(b) => f64::from(u8::from(b)),
                    _ => 0.0,
                })
                .collect();
            if let Some(v) = eval_pure(info.func, &vals) {
                return self.push_expr(Expr::Const(v), Ty::Real(result));
            }
        }
        let call = self.push_expr(Expr::Call(info.func, hs), Ty::Real(result));
        if info.class == FuncClass::Random {
            // A stream named by where the draw is written, so that edits elsewhere in the
            // spec do not change this draw's random numbers.
            let key = format!("{}/{name}", self.stream_item);
            let n = self.stream_counts.entry(key.clone()).or_insert(0);
            let stream = stable_hash(&format!("{key}#{n}")) & 0x3FFF_FFFF;
            *n += 1;
            self.model.random_streams.insert(call.0, stream);
        }
        call
    }

    /// `timed([v0, v1, …], T)`: `v_k` while `k·T ≤ t < (k+1)·T`, the last value after the end
    /// (Brian2's `TimedArray`). Lowered to a balanced tree of `if(t < …)` with each boundary
    /// half a step early, so that a step starting on a boundary (`t = k·T` up to rounding)
    /// takes the new value.
    fn timed_call(&mut self, args: &[ast::Arg], span: Span, ctx: &Ctx) -> (Handle<Expr>, Ty) {
        if !ctx.time {
            self.diags.push(
                Diagnostic::error(
                    span,
                    format!("`timed` reads the time, which {} does not have", ctx.place),
                )
                .with_label("no time here"),
            );
            return self.error_expr();
        }
        let usage = "`timed` takes a list of values and the time each one lasts: `timed([0 nA, 1 nA, 0 nA], 100 ms)`";
        let [values, interval] = args else {
            self.diags
                .push(Diagnostic::error(span, usage).with_label("wrong arguments"));
            return self.error_expr();
        };
        let ExprKind::Array(items) = &values.value.kind else {
            self.diags.push(
                Diagnostic::error(values.value.span, usage).with_label("expected `[v0, v1, …]`"),
            );
            return self.error_expr();
        };
        if items.is_empty() {
            self.diags.push(
                Diagnostic::error(values.value.span, "`timed` needs at least one value")
                    .with_label("empty list"),
            );
            return self.error_expr();
        }
        let ih = self.expr_dim(&interval.value, ctx, Dim::TIME, "the interval of `timed`");
        let Some(step) = self.const_eval(ih).filter(|v| *v > 0.0 && v.is_finite()) else {
            self.diags.push(
                Diagnostic::error(
                    interval.value.span,
                    "the interval of `timed` must be a positive constant time",
                )
                .with_label("not a positive constant"),
            );
            return self.error_expr();
        };
        let mut values = Vec::with_capacity(items.len());
        let mut dim = None;
        for item in items {
            let (h, ty) = self.expr(item, ctx);
            match ty {
                Ty::Error => return self.error_expr(),
                Ty::Bool => {
                    self.diags.push(
                        Diagnostic::error(
                            item.span,
                            "the values of `timed` are numbers, not conditions",
                        )
                        .with_label("a condition"),
                    );
                    return self.error_expr();
                }
                Ty::Real(_) if is_zero_literal(item) => values.push(h),
                Ty::Real(d) => {
                    if let Some(first) = dim {
                        if first != d {
                            self.diags.push(
                                Diagnostic::error(
                                    item.span,
                                    format!("unit mismatch: the values of `timed` are in {first}, this one in {d}"),
                                )
                                .with_label(format!("this is in {d}")),
                            );
                            return self.error_expr();
                        }
                    }
                    dim = Some(d);
                    values.push(h);
                }
            }
        }
        let dim = dim.unwrap_or(Dim::NONE);
        let half = 0.5 * self.model.run.dt;
        let (t, _) = self.push_expr(Expr::Builtin(Builtin::T), Ty::Real(Dim::TIME));
        self.timed_tree(&values, 0, values.len() - 1, step, half, t, dim)
    }

    /// The value of `values[lo..=hi]` at time `t` (see `timed_call`).
    #[allow(clippy::too_many_arguments)]
    fn timed_tree(
        &mut self,
        values: &[Handle<Expr>],
        lo: usize,
        hi: usize,
        step: f64,
        half: f64,
        t: Handle<Expr>,
        dim: Dim,
    ) -> (Handle<Expr>, Ty) {
        if lo == hi {
            return (values[lo], Ty::Real(dim));
        }
        let mid = (lo + hi).div_ceil(2);
        let (edge, _) = self.push_expr(Expr::Const(mid as f64 * step - half), Ty::Real(Dim::TIME));
        let (cond, _) = self.push_expr(Expr::Binary(ast::BinOp::Lt, t, edge), Ty::Bool);
        let (before, _) = self.timed_tree(values, lo, mid - 1, step, half, t, dim);
        let (after, _) = self.timed_tree(values, mid, hi, step, half, t, dim);
        self.push_expr(
            Expr::Call(Func::If, vec![cond, before, after]),
            Ty::Real(dim),
        )
    }

    fn load_call(
        &mut self,
        args: &[ast::Arg],
        span: Span,
        ctx: &Ctx,
        index: Vec<u64>,
    ) -> (Handle<Expr>, Ty) {
        if !ctx.indices {
            self.diags.push(
                Diagnostic::error(span, format!("`load` is not allowed in {}", ctx.place))
                    .with_label(
                        "per-element values from a file belong in initial values and weights",
                    ),
            );
            return self.error_expr();
        }
        let text = |a: &ast::Arg| match &a.value.kind {
            ExprKind::Str(s) => Some((s.clone(), a.value.span)),
            _ => None,
        };
        let strings: Option<Vec<(String, Span)>> = args.iter().map(text).collect();
        let (path, ps, tensor) = match strings.as_deref() {
            Some([(path, ps)]) => (path.clone(), *ps, None),
            Some([(path, ps), (tensor, ts)]) => (path.clone(), *ps, Some((tensor.clone(), *ts))),
            _ => {
                self.diags.push(
                    Diagnostic::error(
                        span,
                        format!(
                            "`load` takes a file name in quotes, and for a .safetensors file the tensor's name, found {} argument(s)",
                            args.len()
                        ),
                    )
                    .with_label("e.g. `load(\"weights/encoder.npy\")` or `load(\"model.safetensors\", \"encoder\")`"),
                );
                return self.error_expr();
            }
        };
        let safetensors = path.ends_with(".safetensors");
        match (&tensor, safetensors) {
            (None, true) => {
                self.diags.push(
                    Diagnostic::error(
                        ps,
                        "a .safetensors file holds named tensors: name the one to load",
                    )
                    .with_label("which tensor?")
                    .with_help(format!("e.g. `load(\"{path}\", \"encoder\")`")),
                );
                return self.error_expr();
            }
            (Some((_, ts)), false) => {
                self.diags.push(
                    Diagnostic::error(
                        *ts,
                        "only a .safetensors file has named tensors; an .npy file holds one array",
                    )
                    .with_label("no tensor names in this file"),
                );
                return self.error_expr();
            }
            _ => {}
        }
        self.check_file(&path, ps);
        let src = LoadSource::new(&path, tensor.as_ref().map(|(t, _)| t.as_str()), index);
        self.push_expr(Expr::Load(src), Ty::Real(Dim::NONE))
    }

    /// Report a constant probability outside [0, 1].
    pub(super) fn check_probability(&mut self, h: Handle<Expr>, span: Span) {
        if let Some(p) = self.const_eval(h) {
            if !(0.0..=1.0).contains(&p) {
                self.diags.push(
                    Diagnostic::error(span, format!("probability {p} is outside [0, 1]"))
                        .with_label("not a probability"),
                );
            }
        }
    }

    /// Evaluate an expression that does not depend on state, time or randomness. Global
    /// parameters evaluate to their default values.
    pub fn const_eval(&self, h: Handle<Expr>) -> Option<f64> {
        const_eval(&self.model, h)
    }
}

pub fn const_eval(model: &Model, h: Handle<Expr>) -> Option<f64> {
    const_eval_with(model, h, &|v| {
        let var = &model.variables[v];
        if var.scope == Scope::Global && var.regime.is_none() {
            VarValue::Expr(var.init)
        } else {
            VarValue::Unknown
        }
    })
}

/// What a variable stands for when an expression is folded (`const_eval_with`).
pub enum VarValue {
    /// This value.
    Value(f64),
    /// This expression, folded in turn (a parameter's default).
    Expr(Handle<Expr>),
    /// Not known before the run.
    Unknown,
}

/// Fold an expression to a number, reading each variable through `lookup`: the compiler's
/// own folding (`const_eval`: model-level defaults) and the run-time checks of values given
/// with `--set` (every parameter, with the given values) use the same arithmetic.
pub fn const_eval_with(
    model: &Model,
    h: Handle<Expr>,
    lookup: &dyn Fn(Handle<Variable>) -> VarValue,
) -> Option<f64> {
    const_eval_within(model, h, 0, lookup)
}

/// How deep `const_eval` follows expressions, parameters included: an expression nests at most
/// `MAX_NESTING` levels, but a chain of parameters each defined by the next can be as long as
/// the spec. Beyond this the value counts as unknown at compile time (`None`), which every
/// caller treats as "known only at run time".
const MAX_CONST_EVAL_DEPTH: usize = 8 * ast::MAX_NESTING;

fn const_eval_within(
    model: &Model,
    h: Handle<Expr>,
    depth: usize,
    lookup: &dyn Fn(Handle<Variable>) -> VarValue,
) -> Option<f64> {
    if depth > MAX_CONST_EVAL_DEPTH {
        return None;
    }
    let const_eval =
        |model: &Model, h: Handle<Expr>| const_eval_within(model, h, depth + 1, lookup);
    match &model.exprs[h] {
        Expr::Const(c) => Some(*c),
        Expr::Var {
            var,
            side: Side::Own,
        } => match lookup(*var) {
            VarValue::Value(x) => Some(x),
            VarValue::Expr(e) => const_eval(model, e),
            VarValue::Unknown => None,
        },
        Expr::Unary(UnOp::Neg, a) => const_eval(model, *a).map(|x| -x),
        // Conditions are 1 or 0, as in both backends.
        Expr::Bool(b) => Some(f64::from(u8::from(*b))),
        Expr::Unary(UnOp::Not, a) => const_eval(model, *a).map(|x| f64::from(u8::from(x == 0.0))),
        Expr::Binary(op, a, b) => {
            let (a, b) = (const_eval(model, *a)?, const_eval(model, *b)?);
            let truth = |c: bool| f64::from(u8::from(c));
            Some(match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div => a / b,
                BinOp::Mod => a.rem_euclid(b),
                BinOp::Pow => pow_f64(a, b),
                BinOp::Eq => truth(a == b),
                BinOp::Ne => truth(a != b),
                BinOp::Lt => truth(a < b),
                BinOp::Le => truth(a <= b),
                BinOp::Gt => truth(a > b),
                BinOp::Ge => truth(a >= b),
                BinOp::And => truth(a != 0.0 && b != 0.0),
                BinOp::Or => truth(a != 0.0 || b != 0.0),
            })
        }
        Expr::Call(f, args) => {
            let vals: Option<Vec<f64>> = args.iter().map(|&a| const_eval(model, a)).collect();
            eval_pure(*f, &vals?)
        }
        _ => None,
    }
}

/// `(exp(x) - 1) / x`, 1 at 0 (Brian2's `exprel`).
pub fn exprel(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        crate::math::expm1(x) / x
    }
}

/// The logistic function `1 / (1 + exp(-x))`.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + crate::math::exp(-x))
}

/// Pure functions on constants, used for folding and compile-time checks.
pub fn eval_pure(f: Func, a: &[f64]) -> Option<f64> {
    Some(match (f, a) {
        (Func::Exp, [x]) => crate::math::exp(*x),
        (Func::Log, [x]) => x.ln(),
        (Func::Log10, [x]) => x.log10(),
        (Func::Expm1, [x]) => crate::math::expm1(*x),
        (Func::Exprel, [x]) => exprel(*x),
        (Func::Sin, [x]) => x.sin(),
        (Func::Cos, [x]) => x.cos(),
        (Func::Tanh, [x]) => crate::math::tanh(*x),
        (Func::Sigmoid, [x]) => sigmoid(*x),
        (Func::Sqrt, [x]) => x.sqrt(),
        (Func::Abs, [x]) => x.abs(),
        (Func::Sign, [x]) => {
            if *x > 0.0 {
                1.0
            } else if *x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        (Func::Heaviside, [x]) => f64::from(*x > 0.0),
        (Func::Floor, [x]) => x.floor(),
        (Func::Ceil, [x]) => x.ceil(),
        (Func::Round, [x]) => x.round(),
        (Func::If, [c, a, b]) => {
            if *c != 0.0 {
                *a
            } else {
                *b
            }
        }
        (Func::Min, [x, y]) => x.min(*y),
        (Func::Max, [x, y]) => x.max(*y),
        (Func::Clip, [x, lo, hi]) => x.max(*lo).min(*hi),
        (Func::Relu, [x]) => x.max(0.0),
        (Func::LeakyRelu, [x, s]) => {
            if *x > 0.0 {
                *x
            } else {
                s * x
            }
        }
        _ => return None,
    })
}

pub fn is_zero_literal(e: &ast::Expr) -> bool {
    matches!(e.kind, ExprKind::Number(v) if v == 0.0)
}

fn unit_help(want: Dim, found: Dim) -> String {
    if found.per(want) == Dim::TIME {
        "it is a quantity times time: divide by a time constant".to_string()
    } else if want.per(found) == Dim::TIME {
        "it is a rate of change: multiply by a time, or write it as a `dx/dt` equation".to_string()
    } else {
        format!(
            "convert it to {want}, e.g. by multiplying or dividing by a quantity in {}",
            want.per(found)
        )
    }
}

/// FNV-1a, 32 bit: stable across platforms and releases.
pub fn stable_hash(text: &str) -> u32 {
    let mut h: u32 = 0x811C_9DC5;
    for b in text.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The random stream of draws that have no expression (regime transitions, probabilistic
/// events, connect rules), from a name: its FNV-1a hash (`stable_hash`) with the top bit set,
/// which keeps these apart from expression streams (hashes with the top two bits clear).
pub fn named_stream(name: &str) -> u32 {
    stable_hash(name) | 0x8000_0000
}

/// The stream of the draws of a probabilistic event (`spike with probability`) of a cell type.
pub fn event_stream(cell_type: &str, event: &str) -> u32 {
    named_stream(&format!("event {cell_type}.{event}"))
}

/// The stream of a regime's transitions (and of its initial state).
pub fn regime_stream(regime: &str) -> u32 {
    named_stream(&format!("regime {regime}"))
}

/// The stream of a projection's connect rule.
pub fn connect_stream(projection: &str) -> u32 {
    named_stream(&format!("connect {projection}"))
}

/// `x ^ y` as every backend computes it: repeated multiplication for small integer exponents
/// (exact for `v^3`, `n^4`), `powf` otherwise.
pub fn pow_f64(x: f64, y: f64) -> f64 {
    if y == y.trunc() && y.abs() <= 16.0 {
        x.powi(y as i32)
    } else {
        x.powf(y)
    }
}

/// Brian2 writes the pre- and post-synaptic cells' variables `v_pre`, `v_post`: the hint for
/// such an unknown name.
fn brian_side_hint(n: &str) -> Option<String> {
    ["_post", "_pre"].iter().find_map(|suffix| {
        let stem = n.strip_suffix(suffix).filter(|s| !s.is_empty())?;
        let side = &suffix[1..];
        Some(format!(
            "the {side}-synaptic cell's `{stem}` is written `{side}.{stem}` (Brian2's `{n}`)"
        ))
    })
}

/// `load(...)[i][j]`: the arguments and place of the `load` call under a chain of indices
/// (the indices outermost last), if `e` is one.
fn load_chain(e: &ast::Expr) -> Option<(&[ast::Arg], Span, Vec<&ast::Expr>)> {
    match &e.kind {
        ExprKind::Index { base, index } => {
            let (args, span, mut picks) = load_chain(base)?;
            picks.push(index);
            Some((args, span, picks))
        }
        _ => match e.call_name() {
            Some(("load", args)) => Some((args, e.span, Vec::new())),
            _ => None,
        },
    }
}
