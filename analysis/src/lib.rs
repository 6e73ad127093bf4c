//! Passes over recorded traces. They depend on the trace format (spike times and indices,
//! sampled arrays, synapses), not on compiler internals. `trace` reads a trace directory; one
//! module per pass of `neurograph analyze`; `plot` draws the plots of `neurograph plot`.

pub mod correlations;
pub mod coverage;
pub mod glm;
pub mod graph;
pub mod groups;
pub mod hmm_glm;
pub mod numeric;
pub mod plot;
pub mod rng;
pub mod spikes;
pub mod timescales;
pub mod trace;
