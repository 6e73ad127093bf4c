//! `correlogram`: the cross-correlogram of one pair of neurons or groups (`--pair X,Y`, as the
//! `correlations` pass defines it): bars of the corrected correlogram (raw − predictor), the raw
//! correlogram as a step line and the predictor as a line, against the lag in ms, in
//! coincidences per bin. One `<rect class="bar">` per lag, one `<polyline class="raw">` and one
//! `<polyline class="predictor">` with one point per lag (the step line two), which tests count.

use std::fmt::Write;

use super::{axes, caption, esc, header, model_name, nice_range, points, trim};
use super::{Frame, Plot, PlotOptions, COLOURS, LEFT, TOP};
use crate::correlations::{self, parse_pair, Correction};
use crate::trace::{Trace, TraceError};

/// Draw the correlogram of `opts.pair` with `opts.correlation` (its bin is `opts.bin_s`).
pub fn correlogram(trace: &Trace, opts: &PlotOptions) -> Result<Plot, TraceError> {
    let text = opts.pair.as_deref().ok_or_else(|| {
        TraceError::Option(
            "the correlogram needs --pair X,Y (two neurons POP:I,POP:J or groups POP[:A..B])"
                .into(),
        )
    })?;
    let pair = parse_pair("--pair", text)?;
    let mut copts = opts.correlation.clone();
    copts.bin_s = opts.bin_s;
    let r = correlations::analyze_trace(trace, &[], std::slice::from_ref(&pair), &copts)?;
    let e = &r.entries[0];
    let l = r.max_lag_bins;
    let bin = copts.bin_s;
    let corrected = e.corrected();
    let pred = e.predictor.clone();
    let all = e
        .raw
        .iter()
        .chain(&corrected)
        .chain(pred.iter().flatten())
        .copied();
    let (lo, hi) = all.fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let (y0, y1, yt) = nice_range(lo, hi, 8);
    let half = (l as f64 + 0.5) * bin;
    let f = Frame::new(-half, half, y0, y1);
    let model = model_name(trace);
    let mut out = String::new();
    header(
        &mut out,
        &format!(
            "{model}: cross-correlogram {} → {}",
            pair.0.label(),
            pair.1.label()
        ),
    );
    axes(
        &mut out,
        &f,
        "lag (ms; positive: second train after the first)",
        1e3,
        &format!("coincidences per {} ms bin", trim(bin * 1e3)),
        &yt,
    );
    // Zero line.
    let _ = writeln!(
        out,
        r##"<line class="zero" x1="{LEFT}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" stroke="#999"/>"##,
        f.x(half),
        y = f.y(0.0)
    );
    // Bars of the corrected correlogram.
    let w = (f.x(bin) - f.x(0.0)) * 0.85;
    for (i, c) in corrected.iter().enumerate() {
        let lag = r.lag_s(i);
        let (ya, yb) = (f.y(c.max(0.0)), f.y(c.min(0.0)));
        let _ = writeln!(
            out,
            r##"<rect class="bar" data-lag-ms="{}" x="{:.2}" y="{ya:.2}" width="{w:.2}" height="{:.2}" fill="{}" fill-opacity="0.75"/>"##,
            trim(lag * 1e3),
            f.x(lag) - w / 2.0,
            (yb - ya).max(0.0),
            COLOURS[0]
        );
    }
    // Raw correlogram as a step line, the predictor as a line.
    let pts = points(e.raw.iter().enumerate().flat_map(|(i, v)| {
        let lag = r.lag_s(i);
        [
            (f.x(lag - bin / 2.0), f.y(*v)),
            (f.x(lag + bin / 2.0), f.y(*v)),
        ]
    }));
    let _ = writeln!(
        out,
        r##"<polyline class="raw" fill="none" stroke="#333" stroke-width="1.2" points="{pts}"/>"##
    );
    let mut legend = vec![
        (COLOURS[0], "corrected (raw − predictor)".to_string()),
        ("#333", "raw".to_string()),
    ];
    if let Some(p) = &pred {
        let pts = points(
            p.iter()
                .enumerate()
                .map(|(i, v)| (f.x(r.lag_s(i)), f.y(*v))),
        );
        let _ = writeln!(
            out,
            r##"<polyline class="predictor" fill="none" stroke="{}" stroke-width="2" points="{pts}"/>"##,
            COLOURS[1]
        );
        let name = match copts.correction {
            Correction::Jitter => format!("jitter predictor ({} ms)", trim(copts.jitter_s * 1e3)),
            _ => "shift predictor".to_string(),
        };
        legend.push((COLOURS[1], name));
    }
    // Legend inside the plot, top left.
    for (k, (colour, name)) in legend.iter().enumerate() {
        let y = TOP + 18.0 + 20.0 * k as f64;
        let x = LEFT + 12.0;
        let _ = writeln!(
            out,
            r##"<line class="legend" x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{colour}" stroke-width="4"/><text class="legend-label" x="{}" y="{}" font-size="14">{}</text>"##,
            x + 22.0,
            x + 28.0,
            y + 5.0,
            esc(name)
        );
    }
    let peak = e.peak();
    let z = e.z()[peak];
    let zt = if z.is_finite() {
        format!(", z {z:.1}")
    } else {
        String::new()
    };
    caption(
        &mut out,
        &format!(
            "{} spikes × {} spikes over {} s; correction: {}; peak {} ms ({:.0} coincidences{zt})",
            e.spikes_a,
            e.spikes_b,
            trim(trace.duration_s),
            copts.correction.name(),
            trim(r.lag_s(peak) * 1e3),
            corrected[peak]
        ),
    );
    out.push_str("</svg>\n");
    Ok(Plot {
        svg: out,
        marks: vec![("bars".into(), corrected.len())],
        neurons: Vec::new(),
    })
}
