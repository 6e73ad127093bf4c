//! Division by a run constant as multiplication by its reciprocal, in the equations integrated
//! step by step.
//!
//! A division costs several times a multiplication (on x86-64 a 128-bit `divpd` issues once
//! every 4 to 8 cycles, a `mulpd` twice per cycle), and the right-hand sides of explicitly
//! integrated equations divide by time constants at every element and step:
//! `dge/dt = -ge / taue`. Where the divisor is a parameter or a constant, `a / b` becomes
//! `a * (1 / b)`: the reciprocal is one value for all elements (computed once per evaluation
//! by the interpreter, hoisted out of the loop by the code generator), and the product differs
//! from the quotient by at most one rounding (Brian2's generated code, compiled with
//! `-ffast-math`, makes the same substitution). The rewrite is in the IR, so both backends
//! compute the same products and stay bit-identical.
//!
//! Only right-hand sides and discrete updates of dynamics integrated by `euler`, `rk4` or
//! `exponential_euler` are rewritten: `exact` integration evaluates its right sides once per
//! run to build the propagator, where a division costs nothing. The divisor must be a leaf (a
//! parameter read or a constant), so the rewrite adds at most one level of nesting.

use std::collections::HashMap;

use crate::ir::*;
use crate::lower::Ty;
use crate::BinOp;

/// Rewrite the divisions; returns how many were rewritten.
pub fn rewrite(
    model: &mut Model,
    types: &mut Vec<Ty>,
    cell_methods: &HashMap<Handle<CellType>, Method>,
    projection_methods: &HashMap<Handle<Projection>, Method>,
) -> usize {
    let stepped = |m: Option<&Method>| {
        matches!(
            m,
            Some(Method::Euler | Method::Rk4 | Method::ExponentialEuler)
        )
    };
    let roots_of = |d: &Dynamics| -> Vec<Handle<Expr>> {
        d.odes
            .iter()
            .map(|o| o.rhs)
            .chain(d.updates.iter().map(|u| u.value))
            .collect()
    };
    let mut roots = Vec::new();
    for (h, ct) in model.cell_types.iter() {
        if stepped(cell_methods.get(&h)) {
            roots.extend(roots_of(&ct.dynamics));
        }
    }
    for (h, p) in model.projections.iter() {
        if stepped(projection_methods.get(&h)) {
            roots.extend(roots_of(&p.code.dynamics));
        }
    }
    let mut seen = vec![false; model.exprs.len()];
    let mut pending = roots;
    let mut rewritten = 0;
    // Iterative: expressions may nest deeper than recursion allows.
    while let Some(e) = pending.pop() {
        if std::mem::replace(&mut seen[e.index()], true) {
            continue;
        }
        match model.exprs[e].clone() {
            Expr::Binary(BinOp::Div, a, b) if run_constant_leaf(model, b) => {
                let (Some(&Ty::Real(dim)), Some(&Ty::Real(_))) =
                    (types.get(b.index()), types.get(e.index()))
                else {
                    pending.push(a);
                    continue;
                };
                let one = model.exprs.push(Expr::Const(1.0));
                types.push(Ty::Real(crate::units::Dim::NONE));
                let reciprocal = model.exprs.push(Expr::Binary(BinOp::Div, one, b));
                types.push(Ty::Real(dim.powi(-1)));
                model.exprs[e] = Expr::Binary(BinOp::Mul, a, reciprocal);
                seen.resize(model.exprs.len(), true);
                rewritten += 1;
                pending.push(a);
            }
            Expr::Unary(_, a) => pending.push(a),
            Expr::Binary(_, a, b) => pending.extend([a, b]),
            Expr::Call(_, args) | Expr::Array(args) => pending.extend(args),
            _ => {}
        }
    }
    rewritten
}

/// A constant, or a read of a parameter (the same at every step).
fn run_constant_leaf(model: &Model, e: Handle<Expr>) -> bool {
    match &model.exprs[e] {
        Expr::Const(_) => true,
        Expr::Var { var, .. } => {
            let v = &model.variables[*var];
            v.kind == VarKind::Param && v.regime.is_none()
        }
        _ => false,
    }
}
