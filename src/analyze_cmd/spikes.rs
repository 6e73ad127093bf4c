//! `neurograph analyze TRACE spikes`.

use std::path::Path;

use clap::Args;
use neurograph_analysis::spikes;

use super::{open_trace, parse_time, write_json, Common};

#[derive(Args)]
pub struct SpikesArgs {
    /// Bin width of the population rate histogram, correlations and synchrony, e.g. `5ms`.
    #[arg(long, default_value = "5 ms")]
    bin: String,
    /// How many neuron pairs the mean correlation coefficient samples.
    #[arg(long, default_value_t = 1000)]
    pairs: usize,
    /// Only these populations (repeatable; default: every population with a spike record).
    #[arg(long = "population", value_name = "NAME")]
    populations: Vec<String>,
    #[command(flatten)]
    common: Common,
}

pub fn run(trace: &Path, a: SpikesArgs) -> Result<(), String> {
    let bin_s = parse_time("--bin", &a.bin)?;
    let trace = open_trace(trace)?;
    let opts = spikes::SpikeOptions {
        bin_s,
        pairs: a.pairs,
        ..Default::default()
    };
    let pops = (!a.populations.is_empty()).then_some(&a.populations[..]);
    let stats = spikes::analyze_trace(&trace, pops, &opts).map_err(|e| e.to_string())?;
    super::print_out(&spikes::table_text(&stats))?;
    if let Some(path) = a.common.json.as_deref() {
        write_json(path, &spikes::to_json(&trace, &stats))?;
    }
    Ok(())
}
