//! `degree`: the degree distribution of recorded synapses (`record W.edges`) as a
//! complementary CDF `P(X ≥ x)` over the nodes of non-zero degree on log–log axes, with the
//! power law and the exponential of the `graph` pass (fitted above the `x_min` of least KS
//! distance) overlaid from `x_min` on, each scaled to the tail's share of the nodes.
//!
//! Regular for tests: one `<polyline class="ccdf">` with one point per distinct degree,
//! `<polyline class="fit" data-model="power_law|exponential">`, a `<line class="xmin">`.

use std::fmt::Write;

use super::{caption, esc, header, model_name, points, Frame, Plot, PlotOptions, LEFT, TOP};
use super::{frame_box, x_axis_title, x_tick, y_axis_title, y_tick};
use crate::graph::{self, GraphOptions, Sign};
use crate::trace::{Trace, TraceError};

/// A fitted complementary CDF, `x -> P(X >= x)`.
type Model<'a> = Box<dyn Fn(usize) -> f64 + 'a>;

/// A decade's tick label: `1`, `10`, `0.01`, `1e-5`.
fn decade_label(k: i32) -> String {
    if (0..=6).contains(&k) {
        format!("{}", 10u64.pow(k as u32))
    } else if (-4..0).contains(&k) {
        format!("{:.*}", (-k) as usize, 10f64.powi(k))
    } else {
        format!("1e{k}")
    }
}

/// Log–log axes: box, decade ticks (with unlabelled 2..9 minor ticks), axis titles. The frame
/// is in log10 units.
fn log_axes(out: &mut String, f: &Frame, x_title: &str, y_title: &str) {
    frame_box(out);
    let decades = |lo: f64, hi: f64| (lo.floor() as i32)..=(hi.ceil() as i32);
    // Less than a decade: linear "nice" values placed on the log axis, all labelled.
    let span = f.x1 - f.x0;
    if span < 1.0 {
        let (lo, hi) = (10f64.powf(f.x0), 10f64.powf(f.x1));
        let ticks = super::nice_ticks(lo, hi, 10);
        let step = if ticks.len() > 1 {
            ticks[1] - ticks[0]
        } else {
            1.0
        };
        for v in ticks.into_iter().filter(|&v| v > 0.0 && v >= lo && v <= hi) {
            x_tick(out, f.x(v.log10()), 6.0, Some(&super::tick_label(v, step)));
        }
    }
    // Otherwise 1, 2 and 5 times the decades labelled on a medium axis, decades on a long one.
    let labelled = |m: u32| (span < 2.5 && matches!(m, 1 | 2 | 5)) || m == 1;
    for k in decades(f.x0, f.x1) {
        if span < 1.0 {
            break;
        }
        for m in 1..10u32 {
            let v = k as f64 + f64::from(m).log10();
            if v < f.x0 - 1e-9 || v > f.x1 + 1e-9 {
                continue;
            }
            let label = labelled(m).then(|| {
                if k >= 0 {
                    format!("{}", u64::from(m) * 10u64.pow(k as u32))
                } else {
                    format!("{}", f64::from(m) * 10f64.powi(k))
                }
            });
            let len = if label.is_some() { 6.0 } else { 3.0 };
            x_tick(out, f.x(v), len, label.as_deref());
        }
    }
    for k in decades(f.y0, f.y1) {
        for m in 1..10 {
            let v = k as f64 + (m as f64).log10();
            if v < f.y0 - 1e-9 || v > f.y1 + 1e-9 {
                continue;
            }
            let label = (m == 1).then(|| decade_label(k));
            let len = if label.is_some() { 6.0 } else { 3.0 };
            y_tick(out, f.y(v), len, label.as_deref());
        }
    }
    x_axis_title(out, x_title);
    y_axis_title(out, y_title);
}

/// The `k`-th legend entry inside the frame's top right corner (the CCDF falls from the top
/// left, so that corner is empty): a line in the colour and the label.
fn legend_entry(out: &mut String, k: usize, colour: &str, dashed: bool, label: &str) {
    let x = LEFT + Frame::w() - 230.0;
    let y = TOP + 22.0 + 24.0 * k as f64;
    let dash = if dashed {
        r#" stroke-dasharray="6 4""#
    } else {
        ""
    };
    let _ = writeln!(
        out,
        r##"<line class="legend" x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{colour}" stroke-width="2"{dash}/><text x="{}" y="{}" font-size="15" fill="#222">{}</text>"##,
        x + 28.0,
        x + 36.0,
        y + 5.0,
        esc(label)
    );
}

/// The degree plot (see the module documentation). `opts.projections` selects projections
/// (default: every one with an edges record), `opts.degree` the distribution: `total`, `in`,
/// `out` (directed) or `undirected`.
pub fn degree(trace: &Trace, opts: &PlotOptions) -> Result<Plot, TraceError> {
    let gopts = GraphOptions {
        projections: opts.projections.clone(),
        ..GraphOptions::default()
    };
    let inputs = graph::read_inputs(trace, &gopts)?;
    let net = graph::build_network(&inputs, Sign::Abs, 0.0);
    let n = net.nodes.len();
    let degrees: Vec<usize> = match opts.degree.as_str() {
        "undirected" => graph::undirected_degrees(&graph::symmetrise(&net.graph)),
        "in" => graph::directed_degrees(&net.graph).0,
        "out" => graph::directed_degrees(&net.graph).1,
        "total" => graph::directed_degrees(&net.graph).2,
        other => {
            return Err(TraceError::Option(format!(
                "--degree {other}: the distributions are `total`, `in`, `out` and `undirected`"
            )))
        }
    };
    let mut positive: Vec<usize> = degrees.iter().copied().filter(|&d| d > 0).collect();
    positive.sort_unstable();
    let zeros = n - positive.len();
    if positive.is_empty() {
        return Err(TraceError::Option(
            "no node has a synapse: there is no degree distribution to plot".into(),
        ));
    }
    let n_pos = positive.len() as f64;
    // CCDF at each distinct degree: the fraction of nodes with degree >= x.
    let mut ccdf: Vec<(usize, f64)> = Vec::new();
    let mut k = 0;
    while k < positive.len() {
        let x = positive[k];
        ccdf.push((x, (positive.len() - k) as f64 / n_pos));
        while k < positive.len() && positive[k] == x {
            k += 1;
        }
    }
    let fit = graph::compare_tails(&degrees);
    let (dmin, dmax) = (positive[0] as f64, positive[positive.len() - 1] as f64);
    // The x axis spans the degrees with a margin of 4 % (at least 0.3 decades in all).
    let span = (dmax / dmin).log10().max(0.3);
    let mid = 0.5 * (dmin.log10() + dmax.log10());
    let (x0, x1) = (mid - 0.54 * span, mid + 0.54 * span);
    let y0 = (1.0 / n_pos).log10().floor().min(-1.0);
    let f = Frame::new(x0, x1, y0, 0.0);
    let names: Vec<&str> = inputs.iter().map(|p| p.edges.projection.as_str()).collect();
    let mut out = String::new();
    header(
        &mut out,
        &format!(
            "{}: {} degree distribution of {}",
            model_name(trace),
            opts.degree,
            names.join(", ")
        ),
    );
    log_axes(
        &mut out,
        &f,
        &format!("{} degree x (synaptic partners)", opts.degree),
        "fraction of nodes with degree ≥ x",
    );
    let pts = points(
        ccdf.iter()
            .map(|&(x, p)| (f.x((x as f64).log10()), f.y(p.log10()))),
    );
    let colour = super::COLOURS[0];
    let _ = writeln!(
        out,
        r##"<polyline class="ccdf" data-points="{}" fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>"##,
        ccdf.len()
    );
    legend_entry(&mut out, 0, colour, false, "data (nodes of degree ≥ 1)");
    let mut cap = format!("{n} nodes ({zeros} of degree 0, not drawn)");
    if let Some(t) = &fit {
        let share = t.n_tail as f64 / n_pos;
        let z = graph::hurwitz_zeta(t.alpha, t.x_min as f64);
        // Fitted curves from x_min to the largest degree, about 60 points on the log axis.
        let lo = (t.x_min as f64).log10();
        let hi = dmax.log10().max(lo);
        let mut xs: Vec<usize> = (0..=60)
            .map(|k| 10f64.powf(lo + (hi - lo) * k as f64 / 60.0).round() as usize)
            .collect();
        xs.dedup();
        let models: [(&str, &str, Model); 2] = [
            (
                "power_law",
                super::COLOURS[1],
                Box::new(|x| share * graph::hurwitz_zeta(t.alpha, x as f64) / z),
            ),
            (
                "exponential",
                super::COLOURS[2],
                Box::new(|x| share * (-t.lambda * (x - t.x_min) as f64).exp()),
            ),
        ];
        for (k, (model, colour, p)) in models.iter().enumerate() {
            // Until the curve falls below the frame.
            let pts = points(
                xs.iter()
                    .map(|&x| (x, p(x)))
                    .take_while(|&(_, v)| !(v <= 0.0 || v.log10() < y0))
                    .map(|(x, v)| (f.x((x as f64).log10()), f.y(v.log10()))),
            );
            let _ = writeln!(
                out,
                r##"<polyline class="fit" data-model="{model}" fill="none" stroke="{colour}" stroke-width="1.5" stroke-dasharray="6 4" points="{pts}"/>"##
            );
            let label = if *model == "power_law" {
                format!("power law α = {:.2}", t.alpha)
            } else {
                format!("exponential λ = {:.3}", t.lambda)
            };
            legend_entry(&mut out, k + 1, colour, true, &label);
        }
        let x = f.x(lo);
        let _ = writeln!(
            out,
            r##"<line class="xmin" x1="{x:.2}" y1="{TOP}" x2="{x:.2}" y2="{}" stroke="#999" stroke-dasharray="2 3"/>"##,
            TOP + Frame::h()
        );
        let _ = write!(
            cap,
            "; fits above x_min = {} ({} nodes): {} (LR {:.2}, p = {:.2})",
            t.x_min,
            t.n_tail,
            match t.preferred() {
                "power_law" => "power law preferred",
                "exponential" => "exponential preferred",
                _ => "neither preferred",
            },
            t.normalized_ratio,
            t.p_value
        );
    } else {
        cap += "; too few nodes for a fit";
    }
    caption(&mut out, &cap);
    out.push_str("</svg>\n");
    Ok(Plot {
        svg: out,
        marks: vec![("ccdf".into(), ccdf.len())],
        neurons: vec![("nodes".into(), n)],
    })
}
