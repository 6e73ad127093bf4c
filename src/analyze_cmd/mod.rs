//! `neurograph analyze TRACE PASS [options]` and `neurograph plot TRACE KIND -o FILE`: one
//! sub-command per pass, each in its own file with its own flags.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

mod correlations;
mod coverage;
mod glm;
mod graph;
mod groups;
mod hmm_glm;
mod plot;
mod spikes;
mod timescales;

pub use plot::{plot, PlotArgs};

/// The passes of `neurograph analyze`.
#[derive(Subcommand)]
pub enum Pass {
    /// Rates, ISI CV, CV2, LV, Fano factor, population rate, pairwise correlation, synchrony.
    Spikes(spikes::SpikesArgs),
    /// Autocorrelation per unit and its timescales (single or double exponential by AIC).
    Timescales(timescales::TimescalesArgs),
    /// Core neurons of a target by attribution and ablation, their groups and the circuit.
    Groups(groups::GroupsArgs),
    /// Degree distributions (power law vs exponential), Louvain modularity against a
    /// degree-preserving null model, GraphML / TSV export of recorded synapses.
    Graph(graph::GraphArgs),
    /// Neuron coverage (FakeSpotter): per-population thresholds from reference runs, the
    /// fraction of neurons above them and the activated-neuron vector of each input run.
    Coverage(coverage::CoverageArgs),
    /// Cross-correlograms of pairs and groups with a jitter or shift-predictor correction.
    Correlations(correlations::CorrelationsArgs),
    /// Poisson GLM of spike history (coupling weights), ROC AUC against `record W.edges`.
    Glm(glm::GlmArgs),
    /// HMM-GLM fit by EM (naive, Gaussian, one-hot priors): states, weights, edge types, held-out LL.
    HmmGlm(hmm_glm::HmmGlmArgs),
}

/// Flags every pass takes.
#[derive(Args)]
pub struct Common {
    /// Also write the results as JSON to FILE (schema in README, "neurograph analyze").
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Run one pass over the trace directory `trace`: a table on stdout, JSON on request.
pub fn analyze(trace: &Path, pass: Pass) -> Result<(), String> {
    match pass {
        Pass::Spikes(a) => spikes::run(trace, a),
        Pass::Timescales(a) => timescales::run(trace, a),
        Pass::Groups(a) => groups::run(trace, a),
        Pass::Graph(a) => graph::run(trace, a),
        Pass::Coverage(a) => coverage::run(trace, a),
        Pass::Correlations(a) => correlations::run(trace, a),
        Pass::Glm(a) => glm::run(trace, a),
        Pass::HmmGlm(a) => hmm_glm::run(trace, a),
    }
}

/// A time flag (`5ms`, `1 s`) in seconds.
/// Write `text` to standard output. A reader that stops early (`| head`) is not an error;
/// another failure is reported.
pub fn print_out(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write the output: {e}"))
        }
        _ => Ok(()),
    }
}

pub fn parse_time(flag: &str, text: &str) -> Result<f64, String> {
    match neurograph_compiler::quantity::parse_quantity(text) {
        Ok((v, d)) if d == neurograph_compiler::units::Dim::TIME => Ok(v),
        Ok(_) => Err(format!("{flag}: `{text}` is not a time")),
        Err(e) => Err(format!("{flag}: {e}")),
    }
}

/// An analysis result as pretty JSON (`analyze … --json FILE`).
pub fn write_json(path: &Path, doc: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(doc).map_err(|e| e.to_string())? + "\n";
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Open a trace directory, with the error as text.
pub fn open_trace(trace: &Path) -> Result<neurograph_analysis::trace::Trace, String> {
    neurograph_analysis::trace::Trace::open(trace).map_err(|e| e.to_string())
}
