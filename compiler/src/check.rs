//! Checks of integration methods: linearity analysis of ODE systems and the choice of a
//! default method (`exact` for linear systems with constant coefficients, else `euler`).

use std::collections::HashSet;

use neurograph_grammar::{BinOp, Diagnostic, Span, UnOp};

use crate::funcs::{self, FuncClass};
use crate::ir::*;
use crate::lower::Lowerer;

/// How an expression depends on a set of variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linearity {
    /// Does not mention the variables; `parametric` when it is also constant over time
    /// (constants, parameters, indices).
    Free {
        parametric: bool,
    },
    /// Affine in the variables; `parametric` when every coefficient is constant over time.
    Linear {
        parametric: bool,
    },
    Nonlinear,
}

use Linearity::*;

pub fn linearity(model: &Model, e: Handle<Expr>, vars: &HashSet<Handle<Variable>>) -> Linearity {
    match &model.exprs[e] {
        Expr::Const(_) | Expr::Bool(_) | Expr::Load(_) | Expr::Array(_) => {
            Free { parametric: true }
        }
        Expr::Builtin(b) => Free {
            parametric: !matches!(b, Builtin::T | Builtin::Step),
        },
        Expr::RegimeState(_) | Expr::Token { .. } => Free { parametric: false },
        Expr::Var { var, side } => {
            if *side == Side::Own && vars.contains(var) {
                Linear { parametric: true }
            } else {
                Free {
                    parametric: model.variables[*var].kind != VarKind::State
                        && model.variables[*var].regime.is_none(),
                }
            }
        }
        Expr::Unary(UnOp::Neg, a) => linearity(model, *a, vars),
        Expr::Unary(UnOp::Not, a) => match linearity(model, *a, vars) {
            Free { parametric } => Free { parametric },
            _ => Nonlinear,
        },
        Expr::Binary(op, a, b) => {
            let (la, lb) = (linearity(model, *a, vars), linearity(model, *b, vars));
            match (op, la, lb) {
                (_, Nonlinear, _) | (_, _, Nonlinear) => Nonlinear,
                (_, Free { parametric: p }, Free { parametric: q }) => Free { parametric: p && q },
                (BinOp::Add | BinOp::Sub, Linear { parametric: p }, Linear { parametric: q }) => {
                    Linear { parametric: p && q }
                }
                (BinOp::Add | BinOp::Sub, Linear { parametric: p }, Free { .. })
                | (BinOp::Add | BinOp::Sub, Free { .. }, Linear { parametric: p }) => {
                    Linear { parametric: p }
                }
                (BinOp::Mul, Linear { parametric: p }, Free { parametric: q })
                | (BinOp::Mul, Free { parametric: q }, Linear { parametric: p }) => {
                    Linear { parametric: p && q }
                }
                (BinOp::Div, Linear { parametric: p }, Free { parametric: q }) => {
                    Linear { parametric: p && q }
                }
                _ => Nonlinear,
            }
        }
        Expr::Call(f, args) => {
            let class = funcs::FUNCS.iter().find(|i| i.func == *f).map(|i| i.class);
            let mut parametric = class == Some(FuncClass::Pure);
            for a in args {
                match linearity(model, *a, vars) {
                    Free { parametric: p } => parametric &= p,
                    _ => return Nonlinear,
                }
            }
            if class == Some(FuncClass::Random) {
                // A random draw changes every step and cannot be part of a propagator.
                return Free { parametric: false };
            }
            Free { parametric }
        }
    }
}

pub(crate) fn has_random(model: &Model, e: Handle<Expr>) -> bool {
    match &model.exprs[e] {
        Expr::Call(f, args) => {
            funcs::FUNCS
                .iter()
                .any(|i| i.func == *f && i.class == FuncClass::Random)
                || args.iter().any(|a| has_random(model, *a))
        }
        Expr::Unary(_, a) => has_random(model, *a),
        Expr::Binary(_, a, b) => has_random(model, *a) || has_random(model, *b),
        Expr::Array(xs) => xs.iter().any(|a| has_random(model, *a)),
        _ => false,
    }
}

/// Whether the system can be integrated exactly: affine with constant coefficients and
/// deterministic. On failure, the first offending equation and why.
pub fn exact_applies(model: &Model, d: &Dynamics) -> Result<(), (Span, &'static str)> {
    let vars: HashSet<_> = d.odes.iter().map(|o| o.var).collect();
    for o in &d.odes {
        if has_random(model, o.rhs) {
            return Err((o.span, "it draws random numbers"));
        }
        match linearity(model, o.rhs, &vars) {
            Nonlinear => return Err((o.span, "it is not linear in the state variables")),
            Linear { parametric: false } => {
                return Err((
                    o.span,
                    "a coefficient of a state variable changes during the run",
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether each equation is linear in its own variable (coefficients may depend on others).
pub fn conditionally_linear(model: &Model, d: &Dynamics) -> Result<(), Span> {
    for o in &d.odes {
        let own: HashSet<_> = [o.var].into_iter().collect();
        if linearity(model, o.rhs, &own) == Nonlinear {
            return Err(o.span);
        }
    }
    Ok(())
}

/// Check an explicitly requested method and pick the default when none was requested.
pub(crate) fn choose_method(l: &mut Lowerer, d: &Dynamics, method_span: Option<Span>) -> Method {
    let exact = exact_applies(&l.model, d);
    match d.method {
        Some(Method::Exact) => {
            if let Err((span, why)) = exact {
                let name = l.model.variables[d
                    .odes
                    .iter()
                    .find(|o| o.span == span)
                    .map(|o| o.var)
                    .unwrap_or(d.odes[0].var)]
                .name
                .clone();
                l.diags.push(
                    Diagnostic::error(
                        method_span.unwrap_or(span),
                        format!("method `exact` cannot integrate this system: `d{name}/dt` — {why}"),
                    )
                    .with_label("`exact` needs a linear system with constant coefficients")
                    .with_secondary(span, "this equation")
                    .with_help("use `method exponential_euler` for conditionally linear equations, or `rk4` / `euler`"),
                );
            }
            Method::Exact
        }
        Some(Method::ExponentialEuler) => {
            if let Err(span) = conditionally_linear(&l.model, d) {
                l.diags.push(
                    Diagnostic::error(
                        method_span.unwrap_or(span),
                        "method `exponential_euler` needs every equation to be linear in its own variable",
                    )
                    .with_label("not conditionally linear")
                    .with_secondary(span, "this equation is nonlinear in its variable")
                    .with_help("use `rk4` or `euler`"),
                );
            }
            Method::ExponentialEuler
        }
        Some(m) => m,
        None if exact.is_ok() && !d.odes.is_empty() => Method::Exact,
        None => Method::Euler,
    }
}
