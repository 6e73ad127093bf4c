//! Plots of a trace as SVG text, written by hand (no plotting crate, no fonts: the viewer
//! renders the text). `raster`: spike times against neuron index, populations stacked, one
//! colour each, a subsample of at most `max_neurons` neurons. `rate`: the population rate in
//! bins, one line per population with a legend. `isi`: the inter-spike interval histogram, one
//! step line per population.
//!
//! The output is regular enough to be checked by tests: each population's spikes are one
//! `<path class="spikes" data-population="P">` whose `d` holds one `M x y v h` mark per
//! plotted spike; each population's rate is one `<polyline class="rate">` with one point per
//! bin. `degree` (in `degree.rs`): the degree distribution of recorded synapses, log–log.

use std::fmt::Write;

#[cfg(feature = "png")]
pub mod png;
pub mod state;

use crate::spikes::{bin_index, bin_of, trains};
use crate::trace::{Events, Trace, TraceError};

mod circuit;
pub use circuit::circuit;
mod degree;
pub use degree::degree;
mod correlogram;
pub use correlogram::correlogram;

/// What to plot and how.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    /// Start of the time window (s); default 0.
    pub from_s: Option<f64>,
    /// End of the time window (s); default the trace's duration.
    pub to_s: Option<f64>,
    /// Raster: at most this many neurons in all, shared among the populations in proportion
    /// to their sizes, evenly spaced indices.
    pub max_neurons: usize,
    /// Rate: bin width (s).
    pub bin_s: f64,
    /// Only these populations (default: every population with a spike record).
    pub populations: Option<Vec<String>>,
    /// State: the record `POP.VAR` (default: the only record sampled over time).
    pub variable: Option<String>,
    /// State: the elements `a..b` drawn (default: the first up to 5 recorded).
    pub elements: Option<(usize, usize)>,
    /// Circuit: the JSON of `analyze TRACE groups --json FILE`.
    pub circuit: Option<std::path::PathBuf>,
    /// Degree: only these projections (default: every one with an edges record).
    pub projections: Option<Vec<String>>,
    /// Degree: the distribution, `total`, `in`, `out` or `undirected`.
    pub degree: String,
    /// Correlogram: the two trains `X,Y` (`POP:I,POP:J`, or groups `POP[:A..B]`).
    pub pair: Option<String>,
    /// Correlogram: lags, correction and jitter window (its bin width is `bin_s`).
    pub correlation: crate::correlations::CorrelationOptions,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            from_s: None,
            to_s: None,
            max_neurons: 500,
            bin_s: 0.005,
            populations: None,
            variable: None,
            elements: None,
            circuit: None,
            projections: None,
            degree: "total".into(),
            pair: None,
            correlation: Default::default(),
        }
    }
}

/// A rendered plot and what it shows.
#[derive(Debug, Clone)]
pub struct Plot {
    pub svg: String,
    /// Raster: spikes drawn per population (inside the window, of plotted neurons).
    pub marks: Vec<(String, usize)>,
    /// Raster: neurons plotted per population; rate: the population sizes.
    pub neurons: Vec<(String, usize)>,
}

/// Colours of the populations, in order (Okabe–Ito, readable for colour-blind viewers).
const COLOURS: &[&str] = &[
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
];

// Layout (px).
const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 110.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 95.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Round to a 1, 2 or 5 times a power of ten.
fn nice(x: f64, round: bool) -> f64 {
    let e = x.log10().floor();
    let f = x / 10f64.powf(e);
    let n = if round {
        if f < 1.5 {
            1.0
        } else if f < 3.0 {
            2.0
        } else if f < 7.0 {
            5.0
        } else {
            10.0
        }
    } else if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * 10f64.powf(e)
}

/// "Nice" ticks covering [lo, hi]: about `count` multiples of 1, 2 or 5 times a power of ten.
pub fn nice_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        return vec![lo];
    }
    let step = nice(nice(hi - lo, false) / count.max(1) as f64, true);
    let e = step.log10().floor();
    let m = (step / 10f64.powf(e)).round();
    let first = (lo / step - 1e-9).ceil();
    let mut out = Vec::new();
    let mut k = first;
    while k * step <= hi + step * 1e-9 {
        // step = m x 10^e with m in {1, 2, 5}: k x m is exact, and one division by an exact
        // power of ten rounds correctly (0.3, not 0.30000000000000004).
        let v = if e < 0.0 {
            k * m / 10f64.powf(-e)
        } else {
            k * m * 10f64.powf(e)
        };
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        k += 1.0;
    }
    out
}

/// A tick label: as few decimals as the step needs.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil().max(0.0) as usize
    };
    format!("{v:.decimals$}")
}

/// Time axis unit: ms for windows up to 2 s, s otherwise. (factor to multiply seconds by, name)
fn time_unit(span_s: f64) -> (f64, &'static str) {
    if span_s <= 2.0 {
        (1e3, "ms")
    } else {
        (1.0, "s")
    }
}

/// A duration as readable text (`1 s`, `250 ms`).
fn duration_text(s: f64) -> String {
    if s >= 1.0 {
        format!("{} s", trim(s))
    } else {
        format!("{} ms", trim(s * 1e3))
    }
}

/// A window `[from, to]` in the unit of its time axis: `0–1000 ms`.
fn window_text(from: f64, to: f64) -> String {
    let (scale, unit) = time_unit(to - from);
    format!("{}–{} {unit}", trim(from * scale), trim(to * scale))
}

fn trim(v: f64) -> String {
    let t = format!("{v:.3}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn new(x0: f64, x1: f64, y0: f64, y1: f64) -> Frame {
        Frame { x0, x1, y0, y1 }
    }
    fn w() -> f64 {
        WIDTH - LEFT - RIGHT
    }
    fn h() -> f64 {
        HEIGHT - TOP - BOTTOM
    }
    fn x(&self, v: f64) -> f64 {
        LEFT + (v - self.x0) / (self.x1 - self.x0) * Frame::w()
    }
    fn y(&self, v: f64) -> f64 {
        TOP + Frame::h() - (v - self.y0) / (self.y1 - self.y0) * Frame::h()
    }
}

fn header(out: &mut String, title: &str) {
    let _ = write!(
        out,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif">
<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>
<text x="{}" y="32" font-size="20" text-anchor="middle">{}</text>
"##,
        LEFT + Frame::w() / 2.0,
        esc(title)
    );
}

/// The box around the plot area.
fn frame_box(out: &mut String) {
    let _ = writeln!(
        out,
        r##"<rect class="frame" x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="#333" stroke-width="1"/>"##,
        Frame::w(),
        Frame::h()
    );
}

/// A tick `len` px long below the x axis at `x` (px), with its label if any.
fn x_tick(out: &mut String, x: f64, len: f64, label: Option<&str>) {
    let b = TOP + Frame::h();
    let _ = write!(
        out,
        r##"<line class="tick" x1="{x:.2}" y1="{b}" x2="{x:.2}" y2="{}" stroke="#333"/>"##,
        b + len
    );
    if let Some(label) = label {
        let _ = write!(
            out,
            r##"<text x="{x:.2}" y="{}" font-size="14" text-anchor="middle">{label}</text>"##,
            b + 22.0
        );
    }
    out.push('\n');
}

/// A tick `len` px long left of the y axis at `y` (px), with its label if any.
fn y_tick(out: &mut String, y: f64, len: f64, label: Option<&str>) {
    let _ = write!(
        out,
        r##"<line class="tick" x1="{}" y1="{y:.2}" x2="{LEFT}" y2="{y:.2}" stroke="#333"/>"##,
        LEFT - len
    );
    if let Some(label) = label {
        let _ = write!(
            out,
            r##"<text x="{}" y="{:.2}" font-size="14" text-anchor="end">{label}</text>"##,
            LEFT - 9.0,
            y + 5.0
        );
    }
    out.push('\n');
}

/// The title below the x axis.
fn x_axis_title(out: &mut String, title: &str) {
    let (l, r, b) = (LEFT, LEFT + Frame::w(), TOP + Frame::h());
    let _ = writeln!(
        out,
        r##"<text class="axis-title" x="{}" y="{}" font-size="16" text-anchor="middle">{}</text>"##,
        (l + r) / 2.0,
        b + 46.0,
        esc(title)
    );
}

/// The title left of the y axis, rotated.
fn y_axis_title(out: &mut String, title: &str) {
    let (t, b) = (TOP, TOP + Frame::h());
    let (x, y) = (LEFT - 58.0, (t + b) / 2.0);
    let _ = writeln!(
        out,
        r##"<text class="axis-title" x="{x}" y="{y}" font-size="16" text-anchor="middle" transform="rotate(-90 {x} {y})">{}</text>"##,
        esc(title)
    );
}

/// Axes box, ticks, tick labels and axis titles. `y_ticks` are values with their labels.
fn axes(out: &mut String, f: &Frame, x_title: &str, x_scale: f64, y_title: &str, y_ticks: &[f64]) {
    frame_box(out);
    // x: ticks in display units.
    let xt = nice_ticks(f.x0 * x_scale, f.x1 * x_scale, 8);
    let xstep = if xt.len() > 1 { xt[1] - xt[0] } else { 1.0 };
    for v in &xt {
        x_tick(out, f.x(v / x_scale), 6.0, Some(&tick_label(*v, xstep)));
    }
    x_axis_title(out, x_title);
    let ystep = if y_ticks.len() > 1 {
        y_ticks[1] - y_ticks[0]
    } else {
        1.0
    };
    for v in y_ticks {
        y_tick(out, f.y(*v), 6.0, Some(&tick_label(*v, ystep)));
    }
    y_axis_title(out, y_title);
}

/// `[lo, hi]` rounded out to whole steps of its about `count` nice ticks: `(y0, y1, ticks)`, the
/// ticks those of `[y0, y1]`.
fn nice_range(lo: f64, hi: f64, count: usize) -> (f64, f64, Vec<f64>) {
    let ticks = nice_ticks(lo, hi, count);
    let step = if ticks.len() > 1 {
        ticks[1] - ticks[0]
    } else {
        1.0
    };
    let (y0, y1) = ((lo / step).floor() * step, (hi / step).ceil() * step);
    (y0, y1, nice_ticks(y0, y1, count))
}

/// A polyline's `points`: `x,y` pairs (px, one decimal) separated by spaces.
fn points(pts: impl IntoIterator<Item = (f64, f64)>) -> String {
    let mut out = String::new();
    for (x, y) in pts {
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{x:.1},{y:.1}");
    }
    out
}

/// The `k`-th legend entry at the right of the plot: a line in the colour and the name.
fn legend_entry(out: &mut String, k: usize, colour: &str, name: &str) {
    let y = TOP + 10.0 + 24.0 * k as f64;
    let x = LEFT + Frame::w() + 10.0;
    let _ = writeln!(
        out,
        r##"<line class="legend" x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{colour}" stroke-width="3"/><text class="population" x="{}" y="{}" font-size="16" fill="{colour}">{}</text>"##,
        x + 24.0,
        x + 30.0,
        y + 5.0,
        esc(name)
    );
}

fn caption(out: &mut String, text: &str) {
    let _ = writeln!(
        out,
        r##"<text class="caption" x="{LEFT}" y="{}" font-size="13" fill="#555">{}</text>"##,
        HEIGHT - 12.0,
        esc(text)
    );
}

fn model_name(trace: &Trace) -> String {
    trace
        .manifest
        .get("model")
        .and_then(|m| m.as_str())
        .unwrap_or("trace")
        .to_string()
}

/// The time window of `opts`, checked against the trace.
fn window(trace: &Trace, opts: &PlotOptions) -> Result<(f64, f64), TraceError> {
    let from = opts.from_s.unwrap_or(0.0);
    let to = opts.to_s.unwrap_or(trace.duration_s);
    if !(from.is_finite() && from >= 0.0) {
        return Err(TraceError::Option(format!(
            "--from {from} s: the window must start at 0 s or later"
        )));
    }
    if !to.is_finite() || to > trace.duration_s * (1.0 + 1e-12) + 1e-12 {
        return Err(TraceError::Option(format!(
            "--to {} is past the end of the trace ({})",
            duration_text(to),
            duration_text(trace.duration_s)
        )));
    }
    // Both are finite here.
    if to <= from {
        return Err(TraceError::Option(format!(
            "the time window [{}, {}] is empty; --to must be after --from",
            duration_text(from),
            duration_text(to)
        )));
    }
    Ok((from, to))
}

/// The spike records to plot: `opts.populations` or every one, in manifest order.
fn spike_records(trace: &Trace, opts: &PlotOptions) -> Result<Vec<Events>, TraceError> {
    let names = match &opts.populations {
        Some(p) if !p.is_empty() => p.clone(),
        _ => trace.spike_populations(),
    };
    if names.is_empty() {
        return Err(TraceError::NoSpikeRecords);
    }
    names.iter().map(|p| trace.spikes(p)).collect()
}

/// How many neurons of each population a raster shows: all when the total is at most `max`,
/// else shares of `max` in proportion to the sizes (at least one of a non-empty population).
pub fn subsample_counts(sizes: &[usize], max: usize) -> Vec<usize> {
    let total: usize = sizes.iter().sum();
    if total <= max {
        return sizes.to_vec();
    }
    sizes
        .iter()
        .map(|&s| {
            let k = (max as f64 * s as f64 / total as f64).round() as usize;
            k.clamp(usize::from(s > 0), s)
        })
        .collect()
}

/// The `k` evenly spaced indices of `0..n` a subsample keeps: `floor(j * n / k)`.
pub fn subsample_indices(n: usize, k: usize) -> Vec<usize> {
    (0..k).map(|j| j * n / k.max(1)).collect()
}

/// Raster plot: spikes in the window against neuron index, populations stacked (the first at
/// the bottom), at most `opts.max_neurons` neurons.
pub fn raster(trace: &Trace, opts: &PlotOptions) -> Result<Plot, TraceError> {
    if opts.max_neurons == 0 {
        return Err(TraceError::Option(
            "--max-neurons must be at least 1".into(),
        ));
    }
    let (from, to) = window(trace, opts)?;
    let pops = spike_records(trace, opts)?;
    let sizes: Vec<usize> = pops.iter().map(|p| p.size).collect();
    let shown = subsample_counts(&sizes, opts.max_neurons);
    let total: usize = sizes.iter().sum();
    let shown_total: usize = shown.iter().sum();
    let model = model_name(trace);
    let names: Vec<&str> = pops.iter().map(|p| p.population.as_str()).collect();
    let mut out = String::new();
    header(
        &mut out,
        &format!("{model}: spike raster of {}", names.join(", ")),
    );
    let f = Frame::new(from, to, 0.0, total.max(1) as f64);
    let (scale, unit) = time_unit(to - from);
    let yt = nice_ticks(0.0, total.max(1) as f64, 6);
    axes(
        &mut out,
        &f,
        &format!("time ({unit})"),
        scale,
        "neuron index",
        &yt,
    );
    // One row of height `row` per plotted neuron; a spike is a vertical mark most of a row
    // high (at least 2 px, so that it is visible; 500 rows in 400 px overlap by a pixel).
    let row_px = Frame::h() / shown_total.max(1) as f64;
    let mark = (row_px * 0.8).max(2.0);
    let stroke = if shown_total > 150 { 1.5 } else { 2.0 };
    let mut marks = Vec::new();
    let mut neurons = Vec::new();
    let mut offset = 0usize;
    for (k, p) in pops.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let keep = subsample_indices(p.size, shown[k]);
        // Original index -> plotted or not.
        let mut kept = vec![false; p.size];
        for &i in &keep {
            kept[i] = true;
        }
        // Rows are placed at their original (stacked) index; the neuron spans one original
        // index per plotted row's share of the population.
        let span = p.size as f64 / shown[k].max(1) as f64;
        let mut d = String::new();
        let mut n_marks = 0usize;
        for (&t, &i) in p.times.iter().zip(&p.indices) {
            let i = i as usize;
            if t < from || t > to || !kept.get(i).copied().unwrap_or(false) {
                continue;
            }
            let yc = f.y(offset as f64 + i as f64 + span / 2.0);
            let _ = write!(d, "M{:.1} {:.1}v{:.1}", f.x(t), yc - mark / 2.0, mark);
            n_marks += 1;
        }
        let _ = writeln!(
            out,
            r##"<path class="spikes" data-population="{}" stroke="{colour}" stroke-width="{stroke}" fill="none" d="{d}"/>"##,
            esc(&p.population)
        );
        // Population band: a separator above it and its name at the right.
        let top = offset + p.size;
        if k + 1 < pops.len() {
            let y = f.y(top as f64);
            let _ = writeln!(
                out,
                r##"<line class="separator" x1="{LEFT}" y1="{y:.2}" x2="{}" y2="{y:.2}" stroke="#999" stroke-dasharray="4 3"/>"##,
                LEFT + Frame::w()
            );
        }
        let ym = f.y(offset as f64 + p.size as f64 / 2.0);
        let _ = writeln!(
            out,
            r##"<text class="population" x="{}" y="{:.2}" font-size="16" font-weight="bold" fill="{colour}">{}</text>"##,
            LEFT + Frame::w() + 10.0,
            ym + 6.0,
            esc(&p.population)
        );
        offset = top;
        marks.push((p.population.clone(), n_marks));
        neurons.push((p.population.clone(), shown[k]));
    }
    let mut cap = if shown_total < total {
        let parts: Vec<String> = pops
            .iter()
            .zip(&shown)
            .map(|(p, k)| format!("{k} of {} {}", p.size, p.population))
            .collect();
        format!(
            "showing {} neurons (evenly spaced indices)",
            parts.join(", ")
        )
    } else {
        format!("all {total} neurons")
    };
    let n: usize = marks.iter().map(|m| m.1).sum();
    let _ = write!(cap, "; {n} spikes in {}", window_text(from, to));
    caption(&mut out, &cap);
    out.push_str("</svg>\n");
    Ok(Plot {
        svg: out,
        marks,
        neurons,
    })
}

/// Population rate (Hz) of `p` in whole bins of `bin_s` from `from` (spikes after the last
/// whole bin before `to` are not counted): spikes in a bin over (size x bin width).
pub fn population_rate(p: &Events, from: f64, to: f64, bin_s: f64) -> Vec<f64> {
    let n_bins = bin_of(to - from, bin_s) as usize;
    let mut counts = vec![0usize; n_bins];
    for &t in &p.times {
        if t < from {
            continue;
        }
        if let Some(b) = bin_index(t - from, bin_s, n_bins) {
            counts[b] += 1;
        }
    }
    counts
        .into_iter()
        .map(|c| c as f64 / (p.size.max(1) as f64 * bin_s))
        .collect()
}

/// Rate plot: each population's rate in bins of `opts.bin_s` over the window, one line each,
/// a legend.
pub fn rate(trace: &Trace, opts: &PlotOptions) -> Result<Plot, TraceError> {
    let (from, to) = window(trace, opts)?;
    if !(opts.bin_s.is_finite() && opts.bin_s > 0.0) {
        return Err(TraceError::Option(format!(
            "the bin width must be positive, not {} s",
            opts.bin_s
        )));
    }
    if opts.bin_s > (to - from) * (1.0 + 1e-9) {
        return Err(TraceError::Option(format!(
            "the bin width {} is longer than the time window ({})",
            duration_text(opts.bin_s),
            duration_text(to - from)
        )));
    }
    let pops = spike_records(trace, opts)?;
    let rates: Vec<Vec<f64>> = pops
        .iter()
        .map(|p| population_rate(p, from, to, opts.bin_s))
        .collect();
    let peak = rates.iter().flatten().copied().fold(0.0f64, f64::max);
    let (_, ymax, yt) = nice_range(0.0, if peak > 0.0 { peak } else { 1.0 }, 8);
    let model = model_name(trace);
    let names: Vec<&str> = pops.iter().map(|p| p.population.as_str()).collect();
    let mut out = String::new();
    header(
        &mut out,
        &format!("{model}: population rate of {}", names.join(", ")),
    );
    let f = Frame::new(from, to, 0.0, ymax);
    let (scale, unit) = time_unit(to - from);
    axes(
        &mut out,
        &f,
        &format!("time ({unit})"),
        scale,
        "population rate (Hz)",
        &yt,
    );
    for (k, (p, r)) in pops.iter().zip(&rates).enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let pts = points(r.iter().enumerate().map(|(b, v)| {
            let t = from + (b as f64 + 0.5) * opts.bin_s;
            (f.x(t), f.y(*v))
        }));
        let _ = writeln!(
            out,
            r##"<polyline class="rate" data-population="{}" fill="none" stroke="{colour}" stroke-width="1.5" stroke-linejoin="round" points="{pts}"/>"##,
            esc(&p.population)
        );
        legend_entry(&mut out, k, colour, &p.population);
    }
    let sizes: Vec<String> = pops
        .iter()
        .map(|p| format!("{} {}", p.size, p.population))
        .collect();
    caption(
        &mut out,
        &format!(
            "spikes of all neurons ({}) in {} bins, {}",
            sizes.join(", "),
            duration_text(opts.bin_s),
            window_text(
                from,
                from + rates.first().map_or(0, Vec::len) as f64 * opts.bin_s
            )
        ),
    );
    out.push_str("</svg>\n");
    Ok(Plot {
        svg: out,
        marks: Vec::new(),
        neurons: pops
            .iter()
            .map(|p| (p.population.clone(), p.size))
            .collect(),
    })
}

/// Inter-spike intervals of `p` in [from, to]: the gaps between consecutive spikes of each
/// neuron, both spikes inside the window (seconds, in neuron order then time).
pub fn intervals(p: &Events, from: f64, to: f64) -> Vec<f64> {
    let mut out = Vec::new();
    for train in trains(&p.times, &p.indices, p.size) {
        // The train is ascending: the spikes in the window are a slice of it.
        let (a, b) = (
            train.partition_point(|&t| t < from),
            train.partition_point(|&t| t <= to),
        );
        out.extend(train[a..b.max(a)].windows(2).map(|w| w[1] - w[0]));
    }
    out
}

/// Fraction of `isis` per bin of `bin_s` from 0 over `n_bins` bins (intervals beyond the last
/// bin are counted in the total, not drawn).
pub fn isi_histogram(isis: &[f64], bin_s: f64, n_bins: usize) -> Vec<f64> {
    let mut counts = vec![0usize; n_bins];
    for &d in isis {
        if let Some(b) = bin_index(d, bin_s, n_bins) {
            counts[b] += 1;
        }
    }
    let total = isis.len().max(1) as f64;
    counts.into_iter().map(|c| c as f64 / total).collect()
}

/// ISI histogram: each population's inter-spike intervals (within the window) in bins of
/// `opts.bin_s`, as the fraction of its intervals per bin, one step line per population. The
/// axis ends at the 99th percentile of all intervals, rounded up to a bin; the caption says how
/// many intervals lie beyond.
pub fn isi(trace: &Trace, opts: &PlotOptions) -> Result<Plot, TraceError> {
    let (from, to) = window(trace, opts)?;
    if !(opts.bin_s.is_finite() && opts.bin_s > 0.0) {
        return Err(TraceError::Option(format!(
            "the bin width must be positive, not {} s",
            opts.bin_s
        )));
    }
    let pops = spike_records(trace, opts)?;
    let isis: Vec<Vec<f64>> = pops.iter().map(|p| intervals(p, from, to)).collect();
    let mut all: Vec<f64> = isis.iter().flatten().copied().collect();
    if all.is_empty() {
        return Err(TraceError::Option(
            "no neuron fired twice in the time window: there is no interval to plot".to_string(),
        ));
    }
    all.sort_by(f64::total_cmp);
    let p99 = all[((all.len() - 1) as f64 * 0.99).round() as usize];
    let n_bins = ((p99 / opts.bin_s).floor() as usize + 1).max(1);
    let x_max = n_bins as f64 * opts.bin_s;
    let beyond = all.iter().filter(|&&d| d >= x_max - 1e-12).count();
    let hists: Vec<Vec<f64>> = isis
        .iter()
        .map(|v| isi_histogram(v, opts.bin_s, n_bins))
        .collect();
    let peak = hists.iter().flatten().copied().fold(0.0f64, f64::max);
    let (_, ymax, yt) = nice_range(0.0, peak.max(1e-9), 8);
    let model = model_name(trace);
    let names: Vec<&str> = pops.iter().map(|p| p.population.as_str()).collect();
    let mut out = String::new();
    header(
        &mut out,
        &format!("{model}: inter-spike intervals of {}", names.join(", ")),
    );
    let f = Frame::new(0.0, x_max, 0.0, ymax);
    let (scale, unit) = time_unit(x_max);
    axes(
        &mut out,
        &f,
        &format!("inter-spike interval ({unit})"),
        scale,
        &format!(
            "fraction of intervals per {} bin",
            duration_text(opts.bin_s)
        ),
        &yt,
    );
    for (k, (p, h)) in pops.iter().zip(&hists).enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        // A step outline: along the top of each bin.
        let pts = points(h.iter().enumerate().flat_map(|(b, v)| {
            let (x0, x1) = (b as f64 * opts.bin_s, (b + 1) as f64 * opts.bin_s);
            [(f.x(x0), f.y(*v)), (f.x(x1), f.y(*v))]
        }));
        let _ = writeln!(
            out,
            r##"<polyline class="isi" data-population="{}" fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>"##,
            esc(&p.population)
        );
        legend_entry(&mut out, k, colour, &p.population);
    }
    let counts: Vec<String> = pops
        .iter()
        .zip(&isis)
        .map(|(p, v)| format!("{} {}", v.len(), p.population))
        .collect();
    caption(
        &mut out,
        &format!(
            "intervals between consecutive spikes of a neuron ({}), {}; {beyond} beyond {} not drawn",
            counts.join(", "),
            window_text(from, to),
            duration_text(x_max)
        ),
    );
    out.push_str("</svg>\n");
    Ok(Plot {
        svg: out,
        marks: pops
            .iter()
            .zip(&isis)
            .map(|(p, v)| (p.population.clone(), v.len()))
            .collect(),
        neurons: pops
            .iter()
            .map(|p| (p.population.clone(), p.size))
            .collect(),
    })
}
