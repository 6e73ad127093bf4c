//! `neurograph analyze TRACE glm`.

use std::path::Path;

use clap::Args;
use neurograph_analysis::glm::{self, BasisKind, GlmOptions};

use super::{open_trace, parse_time, write_json, Common};

#[derive(Args)]
pub struct GlmArgs {
    /// The neurons, sources and targets alike: `POP` or `POP:START..END`; repeatable; default:
    /// every population with a spike record.
    #[arg(long = "population", value_name = "POP[:A..B]")]
    populations: Vec<String>,
    /// Bin width, e.g. `1ms`.
    #[arg(long, default_value = "1 ms")]
    bin: String,
    /// History window of the covariates, e.g. `30ms`.
    #[arg(long, default_value = "30 ms")]
    window: String,
    /// Basis functions over the window: `raised-cosine` or `exponential`.
    #[arg(long, default_value = "raised-cosine")]
    basis: String,
    /// Number of basis functions.
    #[arg(long, default_value_t = 3)]
    basis_count: usize,
    /// Precision of the Gaussian prior on the coupling weights (L2 penalty λ/2 |w|²).
    #[arg(long, default_value_t = 1.0)]
    l2: f64,
    /// Score against the connectivity of this projection (`record W.edges`); repeatable;
    /// default: every recorded projection between the analysed populations.
    #[arg(long = "projection", value_name = "W")]
    projections: Vec<String>,
    #[command(flatten)]
    common: Common,
}

pub fn run(trace: &Path, a: GlmArgs) -> Result<(), String> {
    let basis = match a.basis.as_str() {
        "raised-cosine" => BasisKind::RaisedCosine,
        "exponential" => BasisKind::Exponential,
        other => {
            return Err(format!(
                "--basis: `{other}` is not `raised-cosine` or `exponential`"
            ))
        }
    };
    let opts = GlmOptions {
        bin_s: parse_time("--bin", &a.bin)?,
        window_s: parse_time("--window", &a.window)?,
        basis,
        n_basis: a.basis_count,
        l2: a.l2,
        ..Default::default()
    };
    let trace = open_trace(trace)?;
    let pops = (!a.populations.is_empty()).then_some(&a.populations[..]);
    let projs = (!a.projections.is_empty()).then_some(&a.projections[..]);
    let r = glm::analyze_trace(&trace, pops, projs, &opts).map_err(|e| e.to_string())?;
    super::print_out(&glm::table_text(&r))?;
    if let Some(path) = a.common.json.as_deref() {
        write_json(path, &glm::to_json(&trace, &r))?;
    }
    Ok(())
}
