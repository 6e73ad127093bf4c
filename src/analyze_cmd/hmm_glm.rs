//! `neurograph analyze TRACE hmm-glm`.

use std::path::Path;

use clap::{Args, ValueEnum};
use neurograph_analysis::hmm_glm::{self, FitOptions, LoadOptions, Prior};

use super::{write_json, Common};

#[derive(Clone, Copy, ValueEnum)]
enum PriorArg {
    Naive,
    Gaussian,
    Onehot,
    All,
}

#[derive(Args)]
pub struct HmmGlmArgs {
    /// The prior on the per-state coupling weights.
    #[arg(long, value_enum, default_value = "all")]
    prior: PriorArg,
    /// Number of hidden states.
    #[arg(long, default_value_t = 5)]
    states: usize,
    /// Training sequences: the first N (traces sorted by seed, each cut into --length bins).
    #[arg(long, default_value_t = 30)]
    train: usize,
    /// Test sequences: the N after the training ones.
    #[arg(long, default_value_t = 20)]
    test: usize,
    /// Largest number of EM iterations per prior.
    #[arg(long, default_value_t = 50)]
    iterations: usize,
    /// Bins per sequence (0: each trace is one sequence; a remainder is left out).
    #[arg(long, default_value_t = 2000)]
    length: usize,
    /// Seed of the initialisation (k-means++).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// State record of the per-bin counts.
    #[arg(long, default_value = "Units.x", value_name = "POP.VAR")]
    counts: String,
    /// Regime record of the true hidden state (metrics only when present).
    #[arg(long, default_value = "brain")]
    regime: String,
    /// State record of the true weights, one row per regime state (metrics only when present).
    #[arg(long, default_value = "W.w", value_name = "PROJ.VAR")]
    weights: String,
    /// Projection whose `edges` record maps the weights to (pre, post) units.
    #[arg(long, default_value = "W")]
    projection: String,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    common: Common,
}

pub fn run(trace: &Path, a: HmmGlmArgs) -> Result<(), String> {
    let priors: Vec<Prior> = match a.prior {
        PriorArg::Naive => vec![Prior::Naive],
        PriorArg::Gaussian => vec![Prior::Gaussian],
        PriorArg::Onehot => vec![Prior::OneHot],
        PriorArg::All => Prior::ALL.to_vec(),
    };
    if a.iterations == 0 {
        return Err("--iterations must be at least 1".into());
    }
    let load = LoadOptions {
        counts: a.counts,
        regime: a.regime,
        weights: a.weights,
        projection: a.projection,
        length: a.length,
    };
    let opts = FitOptions {
        states: a.states,
        iterations: a.iterations,
        seed: a.seed,
        ..FitOptions::default()
    };
    let quiet = a.quiet;
    let mut progress = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let result = hmm_glm::analyze(trace, &load, &priors, a.train, a.test, &opts, &mut progress)
        .map_err(|e| e.to_string())?;
    super::print_out(&hmm_glm::table_text(&result))?;
    if let Some(path) = a.common.json.as_deref() {
        write_json(path, &hmm_glm::to_json(&result))?;
    }
    Ok(())
}
