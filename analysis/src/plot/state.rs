//! `state`: a recorded state variable of a few elements against time, one line per element
//! (`neurograph plot TRACE state --variable E.v --elements 0..4`). The values are shown with
//! an SI prefix chosen from their range (volts as mV, amperes as nA, …). Long records are
//! reduced to the minimum and maximum per pixel column, so that the drawing keeps every peak
//! (a spike's upswing) without a path of millions of points.

use std::fmt::Write;

use super::{
    axes, caption, duration_text, header, legend_entry, model_name, nice_range, points, time_unit,
    window, Frame, Plot, PlotOptions, COLOURS,
};
use crate::trace::{Trace, TraceError};

/// At most this many lines in one plot (one colour each).
pub const MAX_LINES: usize = 8;

/// The SI prefix that puts `magnitude` in [1, 1000): (factor to multiply by, prefix).
pub fn si_prefix(magnitude: f64) -> (f64, &'static str) {
    // (smallest magnitude, factor, prefix)
    const PREFIXES: &[(f64, f64, &str)] = &[
        (1e-12, 1e12, "p"),
        (1e-9, 1e9, "n"),
        (1e-6, 1e6, "µ"),
        (1e-3, 1e3, "m"),
        (1.0, 1.0, ""),
        (1e3, 1e-3, "k"),
        (1e6, 1e-6, "M"),
    ];
    if !(magnitude.is_finite() && magnitude > 0.0) {
        return (1.0, "");
    }
    let mut best = PREFIXES[0];
    for &p in PREFIXES {
        if magnitude >= p.0 * (1.0 - 1e-12) {
            best = p;
        }
    }
    (best.1, best.2)
}

/// The unit symbol of a record's unit name (`volt` → `V`); unknown names are kept.
fn unit_symbol(unit: &str) -> Option<&str> {
    Some(match unit {
        "" | "1" => return None,
        "volt" | "V" => "V",
        "ampere" | "amp" | "A" => "A",
        "siemens" | "S" => "S",
        "second" | "s" => "s",
        "hertz" | "Hz" | "1/s" => "Hz",
        "ohm" => "Ω",
        "farad" | "F" => "F",
        "mole" | "mol" => "mol",
        other => other,
    })
}

/// Minimum and maximum of `values` (one element's samples, at `times`) per column of `columns`
/// over [from, to]: points in time order, the extreme values of each column at their times.
pub fn min_max_decimate(
    times: &[f64],
    values: &[f64],
    from: f64,
    to: f64,
    columns: usize,
) -> Vec<(f64, f64)> {
    let inside: Vec<(f64, f64)> = times
        .iter()
        .zip(values)
        .filter(|(t, _)| **t >= from && **t <= to)
        .map(|(t, v)| (*t, *v))
        .collect();
    if inside.len() <= 2 * columns || columns == 0 {
        return inside;
    }
    let mut out = Vec::with_capacity(2 * columns);
    let width = (to - from) / columns as f64;
    let column = |t: f64| (((t - from) / width).floor() as usize).min(columns - 1);
    let mut k = 0;
    while k < inside.len() {
        let col = column(inside[k].0);
        let mut lo = inside[k];
        let mut hi = inside[k];
        let mut j = k;
        while j < inside.len() && column(inside[j].0) == col {
            if inside[j].1 < lo.1 {
                lo = inside[j];
            }
            if inside[j].1 > hi.1 {
                hi = inside[j];
            }
            j += 1;
        }
        if lo.0 <= hi.0 {
            out.push(lo);
            if hi != lo {
                out.push(hi);
            }
        } else {
            out.push(hi);
            out.push(lo);
        }
        k = j;
    }
    out
}

/// State plot: `opts.variable` (`POP.VAR`, a record sampled over time), the columns
/// `opts.elements` (default the first up to 5), over the window.
pub fn state(trace: &Trace, opts: &PlotOptions) -> Result<Plot, TraceError> {
    let (from, to) = window(trace, opts)?;
    let name = match &opts.variable {
        Some(v) => v.clone(),
        None => {
            let sampled = trace.sampled_state_records();
            match sampled.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(TraceError::Option(
                        "the trace has no state record sampled over time; add e.g. `record E.v[0..5] every 0.1 ms`".into(),
                    ))
                }
                many => {
                    return Err(TraceError::Option(format!(
                        "choose the record with --variable: {}",
                        many.join(", ")
                    )))
                }
            }
        }
    };
    if !trace.has_state(&name) {
        return Err(TraceError::MissingSampledState { name });
    }
    let s = trace.state(&name)?;
    if s.rows < 2 || trace.sampled_state_records().iter().all(|r| r != &name) {
        return Err(TraceError::Option(format!(
            "`{name}` is recorded at the end only; a state plot needs samples over time (`record {name} every 1 ms`)"
        )));
    }
    let first = trace.first_element(&name).unwrap_or(0);
    let (a, b) = match opts.elements {
        Some((a, b)) => (a, b),
        None => (first, first + s.width.min(5)),
    };
    if a < first || b > first + s.width || a >= b {
        return Err(TraceError::Option(format!(
            "--elements {a}..{b}: `{name}` records elements {first}..{}",
            first + s.width
        )));
    }
    if b - a > MAX_LINES {
        return Err(TraceError::Option(format!(
            "--elements {a}..{b} is {} lines; a state plot draws at most {MAX_LINES}",
            b - a
        )));
    }
    let columns: Vec<usize> = (a - first..b - first).collect();
    let series: Vec<Vec<(f64, f64)>> = columns
        .iter()
        .map(|&c| {
            let v: Vec<f64> = (0..s.rows).map(|r| s.values[r * s.width + c]).collect();
            min_max_decimate(&s.times, &v, from, to, Frame::w() as usize)
        })
        .collect();
    let all = series.iter().flatten().map(|p| p.1);
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(TraceError::Option(format!(
            "`{name}` has no finite sample in {}–{}",
            duration_text(from),
            duration_text(to)
        )));
    }
    let symbol = unit_symbol(&s.unit);
    let (factor, prefix) = match symbol {
        Some(_) => si_prefix(lo.abs().max(hi.abs())),
        None => (1.0, ""),
    };
    // A margin of 3 % of the range so that no line runs along the frame.
    let (ylo, yhi) = if hi > lo {
        let pad = 0.03 * (hi - lo) * factor;
        (lo * factor - pad, hi * factor + pad)
    } else {
        (lo * factor - 1.0, hi * factor + 1.0)
    };
    let (y0, y1, ticks) = nice_range(ylo, yhi, 7);
    let f = Frame::new(from, to, y0, y1);
    let model = model_name(trace);
    let mut out = String::new();
    header(&mut out, &format!("{model}: {name}"));
    let (tscale, tunit) = time_unit(to - from);
    let var = name.rsplit('.').next().unwrap_or(&name);
    let y_title = match symbol {
        Some(u) => format!("{var} ({prefix}{u})"),
        None => var.to_string(),
    };
    axes(
        &mut out,
        &f,
        &format!("time ({tunit})"),
        tscale,
        &y_title,
        &ticks,
    );
    let pop = name.split('.').next().unwrap_or(&name);
    for (k, pts) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let text = points(pts.iter().map(|(t, v)| (f.x(*t), f.y(v * factor))));
        let element = a + k;
        let _ = writeln!(
            out,
            r##"<polyline class="state" data-population="{}" data-element="{element}" fill="none" stroke="{colour}" stroke-width="1.2" stroke-linejoin="round" points="{text}"/>"##,
            super::esc(pop)
        );
        legend_entry(&mut out, k, colour, &format!("{pop}[{element}]"));
    }
    // Two samples at least (checked above).
    let interval = s.times[1] - s.times[0];
    caption(
        &mut out,
        &format!(
            "{} of {} recorded elements, sampled every {}; {}",
            b - a,
            name,
            duration_text(interval),
            super::window_text(from, to)
        ),
    );
    out.push_str("</svg>\n");
    Ok(Plot {
        svg: out,
        marks: Vec::new(),
        neurons: vec![(pop.to_string(), b - a)],
    })
}
