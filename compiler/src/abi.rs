//! The kernel ABI: the list of kernel calls one simulation step consists of, in order.
//!
//! Every backend implements the same calls: the reference interpreter evaluates the IR for
//! each, the JIT will emit one `extern "C"` function per call taking plain pointers and lengths
//! into the state buffers. The step loop in the runtime owns everything that is not a kernel:
//! event queues for delays, monitors, the clock. The order here is the semantics of
//! `ir.rs`; changing it changes results.

use crate::ir::*;
use crate::Info;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelCall {
    /// Draw the next state of a regime (skipped on the first step).
    AdvanceRegime(Handle<Regime>),
    /// Recompute the couplings of a projection into its post elements.
    Coupling(Handle<Projection>),
    /// Set a population variable from a `current` input, or add a `poisson_input`'s drive.
    Input(Handle<Input>),
    /// Integrate a node's equations and apply its discrete updates.
    Integrate(Node),
    /// Evaluate a population's event conditions into its spike lists.
    Detect(Handle<Population>),
    /// Run `on pre` code for the events due now (the runtime supplies the synapse list).
    DeliverPre(Handle<Projection>),
    /// Run `on post` code for the post elements that spiked this step.
    DeliverPost(Handle<Projection>),
    /// Run every synapse's `on step` code.
    OnStep(Handle<Projection>),
    /// Apply event statements and start refractory periods.
    Reset(Handle<Population>),
}

/// The calls of one step, in order.
pub fn step_schedule(model: &Model, info: &Info) -> Vec<KernelCall> {
    let mut calls = Vec::new();
    for r in model.regimes.handles() {
        calls.push(KernelCall::AdvanceRegime(r));
    }
    // Delayed couplings read the state as it was at the end of the previous step.
    for (h, p) in model.projections.iter() {
        if !p.couplings.is_empty() && p.delay.is_some() {
            calls.push(KernelCall::Coupling(h));
        }
    }
    // A zero-delay coupling is computed once, right before the first of its targets in update
    // order (it writes all its targets at once).
    let mut coupled = vec![false; model.projections.len()];
    for &node in &info.update_order {
        for (h, p) in model.projections.iter() {
            let into_node = p.post.parts.iter().any(|part| part.node == node);
            if into_node && !p.couplings.is_empty() && p.delay.is_none() && !coupled[h.index()] {
                coupled[h.index()] = true;
                calls.push(KernelCall::Coupling(h));
            }
        }
        for (h, i) in model.inputs.iter() {
            if let InputKind::Current { population, .. } = i.kind {
                if node == Node::Population(population) {
                    calls.push(KernelCall::Input(h));
                }
            }
        }
        calls.push(KernelCall::Integrate(node));
    }
    for (h, p) in model.populations.iter() {
        if has_events(model, p) {
            calls.push(KernelCall::Detect(h));
        }
    }
    for (h, p) in model.projections.iter() {
        if !p.code.on_pre.is_empty() {
            calls.push(KernelCall::DeliverPre(h));
        }
    }
    // A `poisson_input` is delivered as synapses are (Brian2's `PoissonInput` acts in the
    // synapses slot): after detection, before resets.
    for (h, i) in model.inputs.iter() {
        if matches!(i.kind, InputKind::PoissonDrive { .. }) {
            calls.push(KernelCall::Input(h));
        }
    }
    for (h, p) in model.projections.iter() {
        if !p.code.on_post.is_empty() {
            calls.push(KernelCall::DeliverPost(h));
        }
    }
    for (h, p) in model.projections.iter() {
        if !p.code.on_step.is_empty() {
            calls.push(KernelCall::OnStep(h));
        }
    }
    for (h, p) in model.populations.iter() {
        if has_events(model, p) {
            calls.push(KernelCall::Reset(h));
        }
    }
    calls
}

/// Whether a population emits events: its cell type has some, or it replays a spike file.
fn has_events(model: &Model, p: &Population) -> bool {
    !model.cell_types[p.cell_type].events.is_empty()
        || p.input
            .is_some_and(|i| matches!(model.inputs[i].kind, InputKind::SpikeFile { .. }))
}
