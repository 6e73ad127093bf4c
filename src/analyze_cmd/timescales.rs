//! `neurograph analyze TRACE timescales`.

use std::path::Path;

use clap::Args;
use neurograph_analysis::timescales;

use super::{open_trace, parse_time, write_json, Common};

#[derive(Args)]
pub struct TimescalesArgs {
    /// The variable: a state record `POP.VAR` or `POP.spikes` (spike counts in bins of --bin);
    /// repeatable; default: every state record sampled over time.
    #[arg(long = "variable", value_name = "POP.VAR")]
    variables: Vec<String>,
    /// Bin width of the spike counts of `--variable POP.spikes`, e.g. `5ms`.
    #[arg(long, default_value = "5 ms")]
    bin: String,
    /// Largest lag fitted, e.g. `30ms` (default: 30 samples).
    #[arg(long, value_name = "TIME")]
    max_lag: Option<String>,
    /// Leave out samples before this time (burn-in), e.g. `500ms`.
    #[arg(long, value_name = "TIME", default_value = "0 s")]
    from: String,
    #[command(flatten)]
    common: Common,
}

pub fn run(trace: &Path, a: TimescalesArgs) -> Result<(), String> {
    let opts = timescales::TimescaleOptions {
        max_lag_s: a
            .max_lag
            .as_deref()
            .map(|m| parse_time("--max-lag", m))
            .transpose()?,
        bin_s: parse_time("--bin", &a.bin)?,
        from_s: parse_time("--from", &a.from)?,
    };
    let trace = open_trace(trace)?;
    let vars = (!a.variables.is_empty()).then_some(&a.variables[..]);
    let results = timescales::analyze_trace(&trace, vars, &opts).map_err(|e| e.to_string())?;
    super::print_out(&timescales::table_text(&results))?;
    if let Some(path) = a.common.json.as_deref() {
        write_json(path, &timescales::to_json(&trace, &results))?;
    }
    Ok(())
}
