//! `neurograph analyze TRACE correlations`.

use std::path::Path;

use clap::Args;
use neurograph_analysis::correlations::{self, parse_pair, Correction, CorrelationOptions};

use super::{open_trace, parse_time, write_json, Common};

#[derive(Args)]
pub struct CorrelationsArgs {
    /// A neuron pair `POP:I,POP:J` (positive lags: J fires after I); repeatable.
    #[arg(long = "pairs", value_name = "POP:I,POP:J")]
    pairs: Vec<String>,
    /// A pair of groups, each `POP` or `POP:START..END`, their trains summed; repeatable.
    #[arg(long = "groups", value_name = "X,Y")]
    groups: Vec<String>,
    /// Bin width, e.g. `1ms`.
    #[arg(long, default_value = "1 ms")]
    bin: String,
    /// Largest lag, both sides, e.g. `50ms`.
    #[arg(long, default_value = "50 ms")]
    max_lag: String,
    /// `jitter` (interval jitter of the second train), `shuffle` (shift predictor) or `none`.
    #[arg(long, default_value = "jitter")]
    correction: String,
    /// Jitter window, e.g. `25ms` (a whole number of bins).
    #[arg(long, default_value = "25 ms")]
    jitter: String,
    /// Shift predictor: segment (trial) length, e.g. `1s`.
    #[arg(long, default_value = "1 s")]
    segment: String,
    /// Jitter: 0 for the exact expectation and variance, N for N seeded surrogates.
    /// Shuffle: the number of segment shifts averaged.
    #[arg(long, default_value_t = 0)]
    surrogates: usize,
    /// Without --pairs or --groups: neuron pairs sampled per population pair.
    #[arg(long, default_value_t = 50)]
    sample: usize,
    /// Seed of the pair sample and the surrogates.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    common: Common,
}

pub fn run(trace: &Path, a: CorrelationsArgs) -> Result<(), String> {
    let correction = Correction::parse(&a.correction).ok_or_else(|| {
        format!(
            "--correction: `{}` is not `jitter`, `shuffle` or `none`",
            a.correction
        )
    })?;
    let opts = CorrelationOptions {
        bin_s: parse_time("--bin", &a.bin)?,
        max_lag_s: parse_time("--max-lag", &a.max_lag)?,
        correction,
        jitter_s: parse_time("--jitter", &a.jitter)?,
        segment_s: parse_time("--segment", &a.segment)?,
        surrogates: a.surrogates,
        seed: a.seed,
        sample_pairs: a.sample,
    };
    let pairs = a
        .pairs
        .iter()
        .map(|p| parse_pair("--pairs", p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let groups = a
        .groups
        .iter()
        .map(|p| parse_pair("--groups", p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let trace = open_trace(trace)?;
    let r =
        correlations::analyze_trace(&trace, &pairs, &groups, &opts).map_err(|e| e.to_string())?;
    super::print_out(&correlations::table_text(&r))?;
    if let Some(path) = a.common.json.as_deref() {
        write_json(path, &correlations::to_json(&trace, &r))?;
    }
    Ok(())
}
