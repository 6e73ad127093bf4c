//! `neurograph plot TRACE KIND -o FILE.svg`.

use std::path::{Path, PathBuf};

use clap::Args;
use neurograph_analysis::plot;

use super::{open_trace, parse_time};

/// The options of `neurograph plot`.
#[derive(Args)]
pub struct PlotArgs {
    /// The trace directory.
    trace: PathBuf,
    /// What to draw: `raster`, `rate`, `isi` (inter-spike interval histogram) or
    /// `correlogram` (of --pair).
    kind: String,
    /// The SVG file to write.
    #[arg(short = 'o', long = "output", value_name = "FILE.svg")]
    output: PathBuf,
    /// Start of the time window, e.g. `200ms` (default 0).
    #[arg(long)]
    from: Option<String>,
    /// End of the time window, e.g. `1s` (default: the end of the trace).
    #[arg(long)]
    to: Option<String>,
    /// Raster: plot at most this many neurons, shared among the populations in proportion
    /// to their sizes (evenly spaced indices; the caption says so).
    #[arg(long, default_value_t = 500)]
    max_neurons: usize,
    /// Rate, ISI histogram, correlogram: bin width, e.g. `5ms`.
    #[arg(long, default_value = "5 ms")]
    bin: String,
    /// Only these populations (repeatable; default: every population with a spike record).
    #[arg(long = "population", value_name = "NAME")]
    populations: Vec<String>,
    /// Correlogram: the two trains, `POP:I,POP:J` or groups `POP[:A..B],POP[:A..B]`.
    #[arg(long, value_name = "X,Y")]
    pair: Option<String>,
    /// Correlogram: largest lag, e.g. `50ms`.
    #[arg(long, default_value = "50 ms")]
    max_lag: String,
    /// Correlogram: `jitter`, `shuffle` or `none` (as `analyze correlations`).
    #[arg(long, default_value = "jitter")]
    correction: String,
    /// Correlogram: jitter window, e.g. `25ms`.
    #[arg(long, default_value = "25 ms")]
    jitter: String,
}

/// The plot kinds: name, drawing function.
type Draw = fn(
    &neurograph_analysis::trace::Trace,
    &plot::PlotOptions,
) -> Result<plot::Plot, neurograph_analysis::trace::TraceError>;
const KINDS: &[(&str, Draw)] = &[
    ("raster", plot::raster),
    ("rate", plot::rate),
    ("isi", plot::isi),
    ("correlogram", plot::correlogram),
];

/// `neurograph plot TRACE KIND -o FILE.svg`.
pub fn plot(a: PlotArgs) -> Result<(), String> {
    let Some(&(_, draw)) = KINDS.iter().find(|(k, _)| *k == a.kind) else {
        let names: Vec<String> = KINDS.iter().map(|(k, _)| format!("`{k}`")).collect();
        return Err(format!(
            "unknown plot kind `{}`; the kinds are {}",
            a.kind,
            names.join(", ")
        ));
    };
    check_output(&a.output)?;
    let opts = plot::PlotOptions {
        from_s: a
            .from
            .as_deref()
            .map(|t| parse_time("--from", t))
            .transpose()?,
        to_s: a.to.as_deref().map(|t| parse_time("--to", t)).transpose()?,
        max_neurons: a.max_neurons,
        bin_s: parse_time("--bin", &a.bin)?,
        populations: (!a.populations.is_empty()).then_some(a.populations),
        pair: a.pair,
        correlation: neurograph_analysis::correlations::CorrelationOptions {
            max_lag_s: parse_time("--max-lag", &a.max_lag)?,
            correction: neurograph_analysis::correlations::Correction::parse(&a.correction)
                .ok_or_else(|| {
                    format!(
                        "--correction: `{}` is not `jitter`, `shuffle` or `none`",
                        a.correction
                    )
                })?,
            jitter_s: parse_time("--jitter", &a.jitter)?,
            ..Default::default()
        },
    };
    let trace = open_trace(&a.trace)?;
    let p = draw(&trace, &opts).map_err(|e| e.to_string())?;
    std::fs::write(&a.output, p.svg)
        .map_err(|e| format!("cannot write {}: {e}", a.output.display()))?;
    Ok(())
}

/// The output must be an SVG file.
fn check_output(output: &Path) -> Result<(), String> {
    match output.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("svg") => Ok(()),
        Some(e) if e.eq_ignore_ascii_case("png") => Err(format!(
            "{}: PNG needs a rasteriser with fonts, which neurograph does not bundle; write .svg (e.g. `rsvg-convert -o {} FILE.svg` converts it)",
            output.display(),
            output.display()
        )),
        _ => Err(format!("{}: the output must be an .svg file", output.display())),
    }
}
