//! `neurograph analyze TRACE coverage --reference REF`.

use std::path::{Path, PathBuf};

use clap::Args;
use neurograph_analysis::coverage;
use neurograph_analysis::trace::{find_traces, Trace};

use super::{write_json, Common};

#[derive(Args)]
pub struct CoverageArgs {
    /// Reference runs that set each population's threshold: a trace directory or a directory
    /// of traces (an experiment's `seed-N/`); repeatable.
    #[arg(long = "reference", value_name = "DIR", required = true)]
    references: Vec<PathBuf>,
    /// The activity: `POP.spikes` (spike rate per neuron) or a state record `POP.VAR` (its
    /// time-mean per element); repeatable, one layer each. Default: every population with a
    /// spike record.
    #[arg(long = "variable", value_name = "POP.VAR")]
    variables: Vec<String>,
    #[command(flatten)]
    common: Common,
}

fn open_all(path: &Path) -> Result<Vec<Trace>, String> {
    find_traces(path)
        .map_err(|e| e.to_string())?
        .iter()
        .map(|p| Trace::open(p).map_err(|e| e.to_string()))
        .collect()
}

pub fn run(trace: &Path, a: CoverageArgs) -> Result<(), String> {
    let inputs = open_all(trace)?;
    let mut references = Vec::new();
    for r in &a.references {
        references.extend(open_all(r)?);
    }
    let vars = (!a.variables.is_empty()).then_some(&a.variables[..]);
    let report = coverage::analyze(&inputs, &references, vars).map_err(|e| e.to_string())?;
    super::print_out(&coverage::table_text(&report))?;
    if let Some(path) = a.common.json.as_deref() {
        write_json(path, &coverage::to_json(&report))?;
    }
    Ok(())
}
