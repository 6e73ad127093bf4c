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
    /// What to draw: `raster`, `rate`, `isi` (inter-spike interval histogram), `state` (a state
    /// record over time), `correlogram` (of --pair), `degree` (degree distribution of recorded
    /// synapses, `record W.edges`) or `circuit` (the circuit of `analyze TRACE groups`,
    /// --circuit FILE).
    kind: String,
    /// The file to write: `.svg` (vector) or `.png` (rendered with an embedded font).
    #[arg(short = 'o', long = "output", value_name = "FILE.svg|FILE.png")]
    output: PathBuf,
    /// PNG: pixels per SVG unit (the plots are 900 units wide; 2 gives 1800 pixels).
    #[arg(long, default_value_t = 2.0)]
    scale: f32,
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
    /// State: the record to draw, `POP.VAR` (default: the only record sampled over time).
    #[arg(long, value_name = "POP.VAR")]
    variable: Option<String>,
    /// State: the elements drawn, `a..b` (default: the first up to 5 recorded; at most 8).
    #[arg(long, value_name = "A..B")]
    elements: Option<String>,
    /// Circuit: the JSON written by `neurograph analyze TRACE groups --json FILE`.
    #[arg(long, value_name = "FILE")]
    circuit: Option<PathBuf>,
    /// Degree: only these projections (repeatable; default: every one with `record W.edges`).
    #[arg(long = "projection", value_name = "W")]
    projections: Vec<String>,
    /// Degree: `total` (in + out), `in`, `out` or `undirected` (distinct partners).
    #[arg(long, default_value = "total")]
    degree: String,
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
    ("state", plot::state::state),
    ("circuit", plot::circuit),
    ("degree", plot::degree),
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
    let png = is_png(&a.output)?;
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
        variable: a.variable,
        elements: a.elements.as_deref().map(parse_range).transpose()?,
        circuit: a.circuit,
        projections: (!a.projections.is_empty()).then_some(a.projections),
        degree: a.degree,
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
    let bytes = if png {
        #[cfg(feature = "png")]
        {
            plot::png::svg_to_png(&p.svg, a.scale)
                .map_err(|e| format!("{}: {e}", a.output.display()))?
        }
        #[cfg(not(feature = "png"))]
        return Err(format!(
            "{}: this neurograph was built without PNG output (feature `png`); write .svg",
            a.output.display()
        ));
    } else {
        p.svg.into_bytes()
    };
    std::fs::write(&a.output, bytes)
        .map_err(|e| format!("cannot write {}: {e}", a.output.display()))?;
    Ok(())
}

/// Whether the output is PNG (else SVG); other extensions are an error.
fn is_png(output: &Path) -> Result<bool, String> {
    match output.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("svg") => Ok(false),
        Some(e) if e.eq_ignore_ascii_case("png") => Ok(true),
        _ => Err(format!(
            "{}: the output must be an .svg or .png file",
            output.display()
        )),
    }
}

/// `a..b` with a < b.
fn parse_range(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--elements `{text}`: expected a range like `0..5`");
    let (a, b) = text.split_once("..").ok_or_else(bad)?;
    let a: usize = a.trim().parse().map_err(|_| bad())?;
    let b: usize = b.trim().parse().map_err(|_| bad())?;
    if a >= b {
        return Err(format!("--elements {a}..{b} is empty"));
    }
    Ok((a, b))
}
