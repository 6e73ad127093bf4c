//! Passes over recorded traces. They depend on the trace format (spike times and indices,
//! sampled arrays), not on compiler internals. `trace` reads a trace directory; `plot` draws
//! spike rasters and population rates as SVG.

pub mod hmm_glm;
pub mod plot;
pub mod spikes;
pub mod timescales;
pub mod trace;
