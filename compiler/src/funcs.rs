//! The functions callable in expressions: names, arities, and how units flow through them.

use crate::ir::Func;

/// How a function treats the units of its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitRule {
    /// Arguments and result are dimensionless (`exp`, `tanh`).
    Dimensionless,
    /// All arguments share one unit, which the result has (`abs`, `min`, `clip`, `uniform`).
    Same,
    /// The first argument's unit passes through; the others are dimensionless (`leaky_relu`).
    FirstPasses,
    /// Any unit in, dimensionless out (`sign`, `heaviside`).
    ToDimensionless,
    /// Result is the square root of the argument's unit.
    Sqrt,
    /// Any unit in, dimensionless out, normalised (`layernorm`).
    Normalise,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuncClass {
    /// Element-wise and deterministic.
    Pure,
    /// Draws from the counter-based generator.
    Random,
    /// Reads the whole population of the own element type (reductions, layer norm, RoPE).
    Population,
}

pub struct FuncInfo {
    pub name: &'static str,
    pub func: Func,
    pub min_args: usize,
    pub max_args: usize,
    pub units: UnitRule,
    pub class: FuncClass,
}

const fn f(
    name: &'static str,
    func: Func,
    min_args: usize,
    max_args: usize,
    units: UnitRule,
    class: FuncClass,
) -> FuncInfo {
    FuncInfo {
        name,
        func,
        min_args,
        max_args,
        units,
        class,
    }
}

use FuncClass::*;
use UnitRule::*;

pub const FUNCS: &[FuncInfo] = &[
    f("exp", Func::Exp, 1, 1, Dimensionless, Pure),
    f("log", Func::Log, 1, 1, Dimensionless, Pure),
    f("log10", Func::Log10, 1, 1, Dimensionless, Pure),
    f("expm1", Func::Expm1, 1, 1, Dimensionless, Pure),
    f("exprel", Func::Exprel, 1, 1, Dimensionless, Pure),
    f("sin", Func::Sin, 1, 1, Dimensionless, Pure),
    f("cos", Func::Cos, 1, 1, Dimensionless, Pure),
    f("tanh", Func::Tanh, 1, 1, Dimensionless, Pure),
    f("sigmoid", Func::Sigmoid, 1, 1, Dimensionless, Pure),
    f("sqrt", Func::Sqrt, 1, 1, Sqrt, Pure),
    f("abs", Func::Abs, 1, 1, Same, Pure),
    f("sign", Func::Sign, 1, 1, ToDimensionless, Pure),
    f("heaviside", Func::Heaviside, 1, 1, ToDimensionless, Pure),
    f("floor", Func::Floor, 1, 1, Same, Pure),
    f("ceil", Func::Ceil, 1, 1, Same, Pure),
    f("round", Func::Round, 1, 1, Same, Pure),
    f("min", Func::Min, 2, 2, Same, Pure),
    // `max(a, b)` is element-wise; `max(x)` with one argument is the population maximum.
    f("max", Func::Max, 2, 2, Same, Pure),
    f("clip", Func::Clip, 3, 3, Same, Pure),
    f("relu", Func::Relu, 1, 1, Same, Pure),
    f("leaky_relu", Func::LeakyRelu, 2, 2, FirstPasses, Pure),
    // The condition is checked apart (see `lower::expr`); the branches share one unit.
    f("if", Func::If, 3, 3, Same, Pure),
    f("rand", Func::Rand, 0, 0, Dimensionless, Random),
    f("uniform", Func::Uniform, 2, 2, Same, Random),
    f("randn", Func::Randn, 0, 0, Dimensionless, Random),
    f("normal", Func::Normal, 2, 2, Same, Random),
    f("truncnormal", Func::TruncNormal, 3, 4, Same, Random),
    f("poisson", Func::Poisson, 1, 1, Dimensionless, Random),
    f("bernoulli", Func::Bernoulli, 1, 1, Dimensionless, Random),
    f("sum", Func::Sum, 1, 1, Same, Population),
    f("mean", Func::Mean, 1, 1, Same, Population),
    f("max", Func::MaxOf, 1, 1, Same, Population),
    f("norm", Func::Norm, 1, 1, Same, Population),
    f("layernorm", Func::LayerNorm, 1, 1, Normalise, Population),
    f("rope", Func::Rope, 1, 1, Same, Population),
];

/// Other names that are callable in specific places (connect rules, inputs, files).
pub const SPECIAL_CALLS: &[&str] = &[
    "load",
    "timed",
    "fixed_indegree",
    "fixed_outdegree",
    "all_to_all",
    "one_to_one",
    "file",
    "current",
    "tokens",
    "spikes",
    "rate",
];

/// Candidates for a call of `name` with `n_args` arguments: exact arity first.
pub fn lookup(name: &str, n_args: usize) -> Option<&'static FuncInfo> {
    FUNCS
        .iter()
        .find(|f| f.name == name && (f.min_args..=f.max_args).contains(&n_args))
        .or_else(|| FUNCS.iter().find(|f| f.name == name))
}

/// Whether `e` is built from leaves that `leaf` accepts by arithmetic, logic and pure
/// functions only (iterative: expressions may nest deeper than recursion allows).
pub fn pure_over(
    model: &crate::ir::Model,
    e: crate::ir::Handle<crate::ir::Expr>,
    leaf: impl Fn(&crate::ir::Expr) -> bool,
) -> bool {
    use crate::ir::Expr;
    let mut pending = vec![e];
    while let Some(e) = pending.pop() {
        match &model.exprs[e] {
            Expr::Unary(_, a) => pending.push(*a),
            Expr::Binary(_, a, b) => pending.extend([*a, *b]),
            Expr::Call(f, args) if is_pure(*f) => pending.extend(args.iter().copied()),
            other => {
                if !leaf(other) {
                    return false;
                }
            }
        }
    }
    true
}

/// Whether `e` reads variable `var` (on any side; iterative).
pub fn reads_var(
    model: &crate::ir::Model,
    e: crate::ir::Handle<crate::ir::Expr>,
    var: crate::ir::Handle<crate::ir::Variable>,
) -> bool {
    use crate::ir::Expr;
    let mut pending = vec![e];
    while let Some(e) = pending.pop() {
        match &model.exprs[e] {
            Expr::Var { var: v, .. } if *v == var => return true,
            Expr::Unary(_, a) => pending.push(*a),
            Expr::Binary(_, a, b) => pending.extend([*a, *b]),
            Expr::Call(_, args) | Expr::Array(args) => pending.extend(args.iter().copied()),
            _ => {}
        }
    }
    false
}

/// Whether `func` is a pure function of its arguments (no draw, no population-wide value).
pub fn is_pure(func: Func) -> bool {
    FUNCS
        .iter()
        .any(|f| f.func == func && f.class == FuncClass::Pure)
}

pub fn name_of(func: Func) -> &'static str {
    FUNCS
        .iter()
        .find(|f| f.func == func)
        .map(|f| f.name)
        .unwrap_or("?")
}

pub fn all_names() -> impl Iterator<Item = &'static str> {
    FUNCS
        .iter()
        .map(|f| f.name)
        .chain(SPECIAL_CALLS.iter().copied())
}

/// Levenshtein distance, for "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate within a third of the name's length (at least 1 edit).
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = name.chars().count();
    let limit = (len / 3).max(1);
    candidates
        .into_iter()
        // The edit distance is at least the difference in length: a cheap filter first.
        .filter(|c| c.chars().count().abs_diff(len) <= limit && *c != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
