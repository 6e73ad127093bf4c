//! Event code: the `on pre` / `on post` statements of a projection over the synapses due this
//! step, or the body of a cell event (a reset) over the cells that fired, as one generated
//! function.
//!
//! The semantics are the interpreter's (`runtime::kernels::execute`): statement after
//! statement, each over all due synapses in ascending synapse order; a statement's values are
//! all computed before any of its writes (the generated code computes and writes in one pass
//! when the value cannot read what the statement writes, else it fills a scratch buffer
//! first); writes round to f32 when the model asks. `pre.x` / `post.x` go through the
//! projection's endpoint map, whose parts (one per population range of the endpoint) the code
//! selects branch-free.

use super::{inputs_of, jittable, InputKey};
use crate::ir::*;
use crate::AssignOp;

/// How a delivery kernel reads or writes a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnMode {
    /// `ptr[0]` (read only).
    Scalar,
    /// `ptr[s]` for synapse `s`.
    Element,
    /// `ptr[s]` for synapse `s`, stored as f32 (a column of an f32 model held narrow: read
    /// widened, written narrowed, which is exact since its writes round to f32 anyway).
    Element32,
    /// Through the synapse's endpoint index into this many parts, each a column.
    Parts(u32),
    /// As `Parts`, where some part is one shared value (`stride` 0).
    SharedParts(u32),
}

impl DeliveryKey {
    /// The key of `code` with these column modes in a model: written values are rounded to
    /// f32 when the model's state is f32, except a coupling's sums (the runtime rounds the
    /// reduced values where it stores them).
    pub fn new(
        model: &Model,
        code: EventCode,
        modes: Vec<ColumnMode>,
        rows: bool,
        runs: bool,
    ) -> Self {
        DeliveryKey {
            runs: rows && runs,
            code,
            modes,
            f32_state: model.run.precision == Precision::F32
                && !matches!(code, EventCode::Coupling { .. }),
            rows,
        }
    }
}

/// Which statements an event-code kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventCode {
    OnPre(Handle<Projection>),
    OnPost(Handle<Projection>),
    /// A projection's `on step` code, over every synapse every step (walking the rows).
    OnStep(Handle<Projection>),
    /// The body of event number `event` of a cell type, over the cells that fired.
    Cell {
        cell: Handle<CellType>,
        event: usize,
    },
    /// The per-synapse part of coupling number `index` of a projection: `post.target +=
    /// value` over every synapse, where the runtime points `post.target` at a zeroed
    /// accumulator (one value per post endpoint element) and reduces it afterwards.
    Coupling {
        projection: Handle<Projection>,
        index: usize,
    },
}

impl EventCode {
    /// The statements, in order.
    pub fn statements(self, model: &Model) -> std::borrow::Cow<'_, [Statement]> {
        use std::borrow::Cow;
        match self {
            EventCode::OnPre(p) => Cow::Borrowed(&model.projections[p].code.on_pre),
            EventCode::OnPost(p) => Cow::Borrowed(&model.projections[p].code.on_post),
            EventCode::OnStep(p) => Cow::Borrowed(&model.projections[p].code.on_step),
            EventCode::Cell { cell, event } => Cow::Borrowed(
                model.cell_types[cell]
                    .events
                    .get(event)
                    .map_or(&[], |e| &e.body[..]),
            ),
            EventCode::Coupling { projection, index } => Cow::Owned(
                model.projections[projection]
                    .couplings
                    .get(index)
                    .map(|c| Statement {
                        var: c.target,
                        side: Side::Post,
                        op: AssignOp::Add,
                        value: c.value,
                        span: c.span,
                    })
                    .into_iter()
                    .collect(),
            ),
        }
    }

    /// 0 `on pre`, 1 `on post`, 2 cell event, 3 coupling, 4 `on step` (for per-kind counts).
    pub fn kind(self) -> usize {
        match self {
            EventCode::OnPre(_) => 0,
            EventCode::OnPost(_) => 1,
            EventCode::Cell { .. } => 2,
            EventCode::Coupling { .. } => 3,
            EventCode::OnStep(_) => 4,
        }
    }

    /// The projection whose synapses the code runs over (`None` for a cell event).
    pub fn projection(self) -> Option<Handle<Projection>> {
        match self {
            EventCode::OnPre(p)
            | EventCode::OnPost(p)
            | EventCode::OnStep(p)
            | EventCode::Coupling { projection: p, .. } => Some(p),
            EventCode::Cell { .. } => None,
        }
    }

    /// Whether the elements are synapses (so `i`, `j` are endpoint indices).
    pub fn synapses(self) -> bool {
        !matches!(self, EventCode::Cell { .. })
    }
}

/// What to compile: event code, with the modes of its columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    pub code: EventCode,
    pub modes: Vec<ColumnMode>,
    /// Round every written value to f32 (state of an f32 model; never a coupling's sums,
    /// which are not state: `DeliveryKey::new` decides).
    pub f32_state: bool,
    /// Run over the CSR rows of the spiking sources (`due` holds source endpoint indices,
    /// `row_ptr` the rows) instead of a list of due synapses; each row is split at the post
    /// endpoint's part boundaries, so that post-side reads and writes need no selection.
    /// Requires `on pre` code without delays and post-side columns that are all `Parts`.
    pub rows: bool,
    /// Rows mode over rows whose post indices are consecutive (`row_first[i]`, then one more
    /// per synapse: all-to-all, one-to-one and block-diagonal connectivity): post-side columns
    /// are read and written contiguously, without the post index, on `f64x2` lanes where the
    /// statement allows.
    pub runs: bool,
}

/// The columns of a projection's event code: each statement's inputs, then its target, in
/// first-use order. `None` when a value cannot be compiled.
pub fn delivery_columns(model: &Model, stmts: &[Statement]) -> Option<Vec<InputKey>> {
    let mut out = Vec::new();
    for st in stmts {
        if !jittable(model, st.value) || model.variables[st.var].regime.is_some() {
            return None;
        }
        inputs_of(model, st.value, &mut out);
        if !out.contains(&(st.var, st.side)) {
            out.push((st.var, st.side));
        }
    }
    Some(out)
}
