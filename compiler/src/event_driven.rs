//! Event-driven synaptic variables, found by the compiler.
//!
//! A synapse variable that decays on its own, `dx/dt = a x` with `a` a run constant
//! (`dApre/dt = -Apre / taupre`), and that nothing but the projection's `on pre` / `on post`
//! code (and records) reads, needs no update at steps where no event touches its synapse: its
//! value after `d` steps is `x P^d`, `P` the one-step propagator of exact integration. The
//! runtime keeps, per synapse, how many steps its value has been advanced, and advances it when
//! an event or a record reaches it (`runtime::lazy`). STDP's traces then cost per spike instead
//! of per synapse and step, as Brian2's `(event-driven)` flag does, without the flag.
//!
//! Chosen only for projections integrated `exact` (the clock-driven form is then the same
//! propagator applied step by step, so the two agree to rounding) that no other projection
//! uses as an endpoint, in f64 models (f32 state rounds at every step). `run { event_driven =
//! false }` keeps every equation clock-driven.

use std::collections::HashMap;

use crate::funcs;
use crate::ir::*;
use crate::BinOp;

/// Move every qualifying equation of every projection into `SynapseCode::event_driven`.
pub fn select(model: &mut Model, projection_methods: &HashMap<Handle<Projection>, Method>) {
    // In f32 the clock-driven form rounds every step, which one power cannot reproduce.
    if !model.run.event_driven || model.run.precision == Precision::F32 {
        return;
    }
    let endpoints: Vec<Handle<Projection>> = model
        .projections
        .iter()
        .flat_map(|(_, p)| p.pre.parts.iter().chain(&p.post.parts))
        .filter_map(|part| match part.node {
            Node::Projection(q) => Some(q),
            Node::Population(_) => None,
        })
        .collect();
    let handles: Vec<Handle<Projection>> = model.projections.handles().collect();
    for h in handles {
        if projection_methods.get(&h) != Some(&Method::Exact) || endpoints.contains(&h) {
            continue;
        }
        let chosen: Vec<usize> = {
            let p = &model.projections[h];
            let code = &p.code;
            (0..code.dynamics.odes.len())
                .filter(|&k| {
                    let o = &code.dynamics.odes[k];
                    !o.unless_refractory
                        && model.variables[o.var].regime.is_none()
                        && homogeneous_linear(model, o.rhs, o.var)
                        && !read_elsewhere(model, p, k)
                })
                .collect()
        };
        let p = &mut model.projections[h];
        for &k in chosen.iter().rev() {
            let o = p.code.dynamics.odes.remove(k);
            p.code.event_driven.insert(0, o);
        }
    }
}

/// Whether `e` is `x` times a run constant: `x` occurs once, reached from the root through
/// negations, products with a run constant and divisions by one only.
fn homogeneous_linear(model: &Model, e: Handle<Expr>, x: Handle<Variable>) -> bool {
    let mut e = e;
    loop {
        match &model.exprs[e] {
            Expr::Var { var, side } if *var == x && *side == Side::Own => return true,
            Expr::Unary(crate::UnOp::Neg, a) => e = *a,
            Expr::Binary(BinOp::Mul, a, b) => {
                if run_constant(model, *b) {
                    e = *a;
                } else if run_constant(model, *a) {
                    e = *b;
                } else {
                    return false;
                }
            }
            Expr::Binary(BinOp::Div, a, b) if run_constant(model, *b) => e = *a,
            _ => return false,
        }
    }
}

/// Whether `e` is the same at every step and element: constants, parameters and pure
/// functions of them.
fn run_constant(model: &Model, e: Handle<Expr>) -> bool {
    funcs::pure_over(model, e, |leaf| match leaf {
        Expr::Const(_) => true,
        Expr::Var { var, side } => {
            let v = &model.variables[*var];
            v.kind == VarKind::Param && v.regime.is_none() && *side == Side::Own
        }
        _ => false,
    })
}

/// Whether the variable of equation `k` of `p` is read or written by anything but its own
/// equation and the `on pre` / `on post` code: another equation, a discrete update, `on step`
/// code, a coupling.
fn read_elsewhere(model: &Model, p: &Projection, k: usize) -> bool {
    let code = &p.code;
    let x = code.dynamics.odes[k].var;
    let reads = |e: Handle<Expr>| funcs::reads_var(model, e, x);
    code.dynamics
        .odes
        .iter()
        .enumerate()
        .any(|(j, o)| j != k && reads(o.rhs))
        || code
            .dynamics
            .updates
            .iter()
            .any(|u| u.var == x || reads(u.value))
        || code.on_step.iter().any(|s| s.var == x || reads(s.value))
        || p.couplings.iter().any(|c| reads(c.value))
}
