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

/// Rewrite the divisions; returns how many were rewritten. Copy on write: the rewritten
/// equations get new expression nodes, so that expressions they share with anything else (a
/// `let` also read by a spike condition, a reset or a record) stay as written there.
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
    let cells: Vec<Handle<CellType>> = model
        .cell_types
        .handles()
        .filter(|h| stepped(cell_methods.get(h)))
        .collect();
    let projections: Vec<Handle<Projection>> = model
        .projections
        .handles()
        .filter(|h| stepped(projection_methods.get(h)))
        .collect();
    let mut memo = HashMap::new();
    let mut rewritten = 0;
    let mut map = |model: &mut Model, e: Handle<Expr>| {
        copy_rewritten(model, types, &mut memo, &mut rewritten, e)
    };
    for h in cells {
        for k in 0..model.cell_types[h].dynamics.odes.len() {
            let e = map(model, model.cell_types[h].dynamics.odes[k].rhs);
            model.cell_types[h].dynamics.odes[k].rhs = e;
        }
        for k in 0..model.cell_types[h].dynamics.updates.len() {
            let e = map(model, model.cell_types[h].dynamics.updates[k].value);
            model.cell_types[h].dynamics.updates[k].value = e;
        }
    }
    for h in projections {
        for k in 0..model.projections[h].code.dynamics.odes.len() {
            let e = map(model, model.projections[h].code.dynamics.odes[k].rhs);
            model.projections[h].code.dynamics.odes[k].rhs = e;
        }
        for k in 0..model.projections[h].code.dynamics.updates.len() {
            let e = map(model, model.projections[h].code.dynamics.updates[k].value);
            model.projections[h].code.dynamics.updates[k].value = e;
        }
    }
    rewritten
}

/// `root` with its divisions by run-constant leaves rewritten, as new nodes where anything
/// below changed (`memo`: original to rewritten, shared between roots). Iterative: expressions
/// may nest deeper than recursion allows.
fn copy_rewritten(
    model: &mut Model,
    types: &mut Vec<Ty>,
    memo: &mut HashMap<Handle<Expr>, Handle<Expr>>,
    rewritten: &mut usize,
    root: Handle<Expr>,
) -> Handle<Expr> {
    let children = |e: &Expr| -> Vec<Handle<Expr>> {
        match e {
            Expr::Unary(_, a) => vec![*a],
            Expr::Binary(_, a, b) => vec![*a, *b],
            Expr::Call(_, args) | Expr::Array(args) => args.clone(),
            _ => Vec::new(),
        }
    };
    let mut stack = vec![(root, false)];
    while let Some((e, expanded)) = stack.pop() {
        if memo.contains_key(&e) {
            continue;
        }
        let node = model.exprs[e].clone();
        if !expanded {
            stack.push((e, true));
            stack.extend(
                children(&node)
                    .into_iter()
                    .filter(|c| !memo.contains_key(c))
                    .map(|c| (c, false)),
            );
            continue;
        }
        let m = |c: &Handle<Expr>| memo.get(c).copied().unwrap_or(*c);
        let changed = children(&node).iter().any(|c| m(c) != *c);
        let ty = types.get(e.index()).copied();
        let new = match node {
            Expr::Binary(BinOp::Div, a, b) if run_constant_leaf(model, b) => {
                match (types.get(b.index()).copied(), ty) {
                    (Some(Ty::Real(dim)), Some(Ty::Real(_))) => {
                        let one = model.exprs.push(Expr::Const(1.0));
                        types.push(Ty::Real(crate::units::Dim::NONE));
                        let reciprocal = model.exprs.push(Expr::Binary(BinOp::Div, one, b));
                        types.push(Ty::Real(dim.powi(-1)));
                        *rewritten += 1;
                        Some(Expr::Binary(BinOp::Mul, m(&a), reciprocal))
                    }
                    _ => changed.then(|| Expr::Binary(BinOp::Div, m(&a), b)),
                }
            }
            Expr::Unary(op, a) if changed => Some(Expr::Unary(op, m(&a))),
            Expr::Binary(op, a, b) if changed => Some(Expr::Binary(op, m(&a), m(&b))),
            Expr::Call(f, args) if changed => Some(Expr::Call(f, args.iter().map(m).collect())),
            Expr::Array(args) if changed => Some(Expr::Array(args.iter().map(m).collect())),
            _ => None,
        };
        let mapped = match (new, ty) {
            (Some(n), Some(ty)) => {
                let h = model.exprs.push(n);
                types.push(ty);
                h
            }
            _ => e,
        };
        memo.insert(e, mapped);
    }
    memo.get(&root).copied().unwrap_or(root)
}

/// A constant, or a read of a parameter (the same at every step).
fn run_constant_leaf(model: &Model, e: Handle<Expr>) -> bool {
    match &model.exprs[e] {
        Expr::Const(_) => true,
        // Own side: one value per evaluation (a `pre.` / `post.` parameter is gathered).
        Expr::Var { var, side } => {
            let v = &model.variables[*var];
            v.kind == VarKind::Param && v.regime.is_none() && *side == Side::Own
        }
        _ => false,
    }
}
