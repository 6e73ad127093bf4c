//! The layout pass: what each projection's synapses keep, decided from the IR. Today: which
//! per-synapse variables nothing writes after set-up (`constant_synapse_vars`), which of those
//! hold the same values as an earlier projection's, so that the run keeps one column for both
//! (`shared_columns`: BDH's layers use one encoder, one decoder), and which projections have
//! the same synapses as an earlier one, so that they keep one post index
//! (`shared_connectivity`). `layout = csr` on a projection keeps everything its own; the
//! trace is the same either way.

use crate::funcs::{FuncClass, FUNCS};
use crate::ir::*;

/// The layout pass's results, per projection (indexed by projection).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// `constant_synapse_vars`.
    pub constant: Vec<Vec<Handle<Variable>>>,
    /// `shared_columns`.
    pub columns: Vec<Vec<(Handle<Variable>, Handle<Projection>)>>,
    /// `shared_connectivity`.
    pub connectivity: Vec<Option<Handle<Projection>>>,
}

/// Whether the per-synapse columns of projection `h` are held as f32 when generated code runs
/// it (`runtime::Sim::narrow_projection`): the model runs in f32 (every write rounds to f32)
/// and only event code writes them (no synapse dynamics, no event-driven variables, whose
/// kernels read f64 columns).
pub fn narrow_columns(model: &Model, h: Handle<Projection>) -> bool {
    let code = &model.projections[h].code;
    model.run.precision == Precision::F32
        && code.dynamics.odes.is_empty()
        && code.dynamics.updates.is_empty()
        && code.event_driven.is_empty()
}

/// Runs the layout pass over a model.
pub fn plan(model: &Model) -> Plan {
    let constant = constant_synapse_vars(model);
    Plan {
        columns: shared_columns(model, &constant),
        connectivity: shared_connectivity(model),
        constant,
    }
}

/// Per projection, the synapse states nothing writes after set-up (no equation, event-driven
/// update, discrete update or own-side assignment in event code), for projections that no
/// other projection uses as an endpoint. With the parameters (which only `set_param` changes),
/// these are the columns a run may share and need check for inf/NaN only once.
fn constant_synapse_vars(model: &Model) -> Vec<Vec<Handle<Variable>>> {
    let modulated: Vec<Handle<Projection>> = model
        .projections
        .iter()
        .flat_map(|(_, q)| q.pre.parts.iter().chain(&q.post.parts))
        .filter_map(|part| match part.node {
            Node::Projection(p) => Some(p),
            _ => None,
        })
        .collect();
    model
        .projections
        .iter()
        .map(|(h, p)| {
            if modulated.contains(&h) {
                return Vec::new();
            }
            let code = &p.code;
            let written = |v: Handle<Variable>| {
                code.dynamics.odes.iter().any(|o| o.var == v)
                    || code.event_driven.iter().any(|o| o.var == v)
                    || code.dynamics.updates.iter().any(|u| u.var == v)
                    || code
                        .on_pre
                        .iter()
                        .chain(&code.on_post)
                        .chain(&code.on_step)
                        .any(|st| st.side == Side::Own && st.var == v)
            };
            model.synapse_types[p.synapse]
                .states
                .iter()
                .copied()
                .filter(|&v| !written(v))
                .collect()
        })
        .collect()
}

/// Per projection, its columns that hold the same values as an earlier projection's (in
/// index order), with that projection (the first of them, so sharing never chains). Shared
/// when both projections have `layout` auto and the same synapse type, the variable is a
/// parameter or a constant state with the type's own initial value (no per-projection
/// value) reading no variable but model-level ones (draws are keyed by (pre, post) and the
/// expression's stream, the same for both), and the two connectivities are the same: equal
/// endpoint sizes, populations only, and the same deterministic rule (`all_to_all`,
/// `one_to_one`, one file, or `bernoulli` of the same comparison of `i`, `j` and constants).
/// `constant` is `constant_synapse_vars`.
fn shared_columns(
    model: &Model,
    constant: &[Vec<Handle<Variable>>],
) -> Vec<Vec<(Handle<Variable>, Handle<Projection>)>> {
    let mut out: Vec<Vec<(Handle<Variable>, Handle<Projection>)>> =
        vec![Vec::new(); model.projections.len()];
    let projections: Vec<(Handle<Projection>, &Projection)> = model.projections.iter().collect();
    for (k, &(h, p)) in projections.iter().enumerate() {
        if p.layout != Layout::Auto {
            continue;
        }
        let st = &model.synapse_types[p.synapse];
        let candidates = st.params.iter().copied().chain(
            st.states
                .iter()
                .copied()
                .filter(|v| constant[h.index()].contains(v)),
        );
        for v in candidates {
            let var = &model.variables[v];
            if var.kind == VarKind::Const
                || var.regime.is_some()
                || p.inits.iter().any(|(x, _)| *x == v)
                || !reads_only_globals(model, var.init)
            {
                continue;
            }
            let earlier = projections[..k].iter().find(|(q, other)| {
                other.layout == Layout::Auto
                    && other.synapse == p.synapse
                    && !other.inits.iter().any(|(x, _)| *x == v)
                    && (var.kind == VarKind::Param || constant[q.index()].contains(&v))
                    && !out[q.index()].iter().any(|(x, _)| *x == v)
                    && same_connectivity(model, p, other)
            });
            if let Some(&(q, _)) = earlier {
                out[h.index()].push((v, q));
            }
        }
    }
    out
}

/// Per projection, the first earlier projection (index order) that the layout pass expects to
/// have the same synapses, pair for pair (see `shared_columns`), so that the run takes that
/// projection's synapses instead of evaluating the rule again. (The run also shares any
/// other post index it finds equal.)
fn shared_connectivity(model: &Model) -> Vec<Option<Handle<Projection>>> {
    let projections: Vec<(Handle<Projection>, &Projection)> = model.projections.iter().collect();
    projections
        .iter()
        .enumerate()
        .map(|(k, (_, p))| {
            if p.layout != Layout::Auto {
                return None;
            }
            projections[..k]
                .iter()
                .find(|(_, q)| q.layout == Layout::Auto && same_connectivity(model, p, q))
                .map(|(q, _)| *q)
        })
        .collect()
}

/// Whether an expression reads no variable but model-level (global) ones.
fn reads_only_globals(model: &Model, e: Handle<Expr>) -> bool {
    match &model.exprs[e] {
        Expr::Var { var, .. } => model.variables[*var].scope == Scope::Global,
        Expr::RegimeState(_) | Expr::Token { .. } => false,
        Expr::Unary(_, a) => reads_only_globals(model, *a),
        Expr::Binary(_, a, b) => reads_only_globals(model, *a) && reads_only_globals(model, *b),
        Expr::Call(_, args) | Expr::Array(args) => {
            args.iter().all(|a| reads_only_globals(model, *a))
        }
        Expr::Const(_) | Expr::Bool(_) | Expr::Builtin(_) | Expr::Load(_) => true,
    }
}

/// Whether the rule keeps every pair it names: autapses allowed, or no population at both ends.
fn no_dropped_autapses(p: &Projection) -> bool {
    p.connect.autapses
        || p.pre
            .parts
            .iter()
            .all(|x| p.post.parts.iter().all(|y| x.node != y.node))
}

/// Whether projection `h` is known from the spec to have dense rows (each row's post elements
/// consecutive, `runtime::Sim::post_runs`): `all_to_all` or `one_to_one` keeping every pair,
/// layout not forced. (Other rules may still build such rows; the run finds them.)
pub fn dense_rows(model: &Model, h: Handle<Projection>) -> bool {
    let p = &model.projections[h];
    dense_rows_allowed(model, h)
        && matches!(
            p.connect.rule,
            ConnectRule::AllToAll | ConnectRule::OneToOne
        )
        && no_dropped_autapses(p)
}

/// Whether projection `h` may hold dense rows instead of its post index: the layout is not
/// forced, and no code goes through the post index anyway (delayed deliveries over due
/// synapses, `on post` code over the index by post element).
pub fn dense_rows_allowed(model: &Model, h: Handle<Projection>) -> bool {
    let p = &model.projections[h];
    p.layout == Layout::Auto && p.delay.is_none() && p.code.on_post.is_empty()
}

/// Whether two projections' connect rules build the same synapses (see `shared_columns`).
fn same_connectivity(model: &Model, a: &Projection, b: &Projection) -> bool {
    let populations = |p: &Projection| {
        p.pre
            .parts
            .iter()
            .chain(&p.post.parts)
            .all(|part| matches!(part.node, Node::Population(_)))
    };
    // Without autapses a pair is dropped where pre and post are one cell: the same pairs only
    // when neither projection's ends share a population.
    let disjoint = no_dropped_autapses;
    if a.pre.size() != b.pre.size()
        || a.post.size() != b.post.size()
        || !populations(a)
        || !populations(b)
        || !disjoint(a)
        || !disjoint(b)
    {
        return false;
    }
    match (&a.connect.rule, &b.connect.rule) {
        (ConnectRule::AllToAll, ConnectRule::AllToAll)
        | (ConnectRule::OneToOne, ConnectRule::OneToOne) => true,
        (ConnectRule::File(x), ConnectRule::File(y)) => x == y,
        // A condition of `i`, `j` and model-level names only: the same reading endpoint
        // variables would see other cells' values.
        (ConnectRule::Bernoulli(x), ConnectRule::Bernoulli(y)) => {
            is_condition(model, *x) && reads_only_globals(model, *x) && same_expr(model, *x, *y)
        }
        _ => false,
    }
}

/// A comparison or logical combination: a probability of 0 or 1, so no draw is made.
fn is_condition(model: &Model, e: Handle<Expr>) -> bool {
    match &model.exprs[e] {
        Expr::Bool(_) => true,
        Expr::Unary(op, _) => *op == crate::UnOp::Not,
        Expr::Binary(op, _, _) => matches!(
            op,
            crate::BinOp::Lt
                | crate::BinOp::Le
                | crate::BinOp::Gt
                | crate::BinOp::Ge
                | crate::BinOp::Eq
                | crate::BinOp::Ne
                | crate::BinOp::And
                | crate::BinOp::Or
        ),
        _ => false,
    }
}

/// Structural equality of two expressions without random draws (each draw has its own
/// stream, so two draws written in two places differ).
fn same_expr(model: &Model, a: Handle<Expr>, b: Handle<Expr>) -> bool {
    let same_all = |x: &[Handle<Expr>], y: &[Handle<Expr>]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_expr(model, *p, *q))
    };
    match (&model.exprs[a], &model.exprs[b]) {
        (Expr::Const(x), Expr::Const(y)) => x.to_bits() == y.to_bits(),
        (Expr::Bool(x), Expr::Bool(y)) => x == y,
        (Expr::Builtin(x), Expr::Builtin(y)) => x == y,
        (Expr::Var { var: x, side: s }, Expr::Var { var: y, side: t }) => x == y && s == t,
        (Expr::Unary(o, x), Expr::Unary(p, y)) => o == p && same_expr(model, *x, *y),
        (Expr::Binary(o, x1, x2), Expr::Binary(p, y1, y2)) => {
            o == p && same_expr(model, *x1, *y1) && same_expr(model, *x2, *y2)
        }
        (Expr::Call(f, x), Expr::Call(g, y)) => {
            let random = FUNCS
                .iter()
                .any(|i| i.func == *f && i.class == FuncClass::Random);
            f == g && !random && same_all(x, y)
        }
        _ => false,
    }
}
