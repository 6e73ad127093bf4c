//! Passes over recorded traces. They depend on the trace format (spike times and indices,
//! sampled arrays), not on compiler internals.

pub mod spikes;
pub mod timescales;
