//! `neurograph plot TRACE degree -o FILE.svg` and `analysis::plot::degree`: on a connectivity
//! record written here (out-degrees drawn from a discrete power law, α = 2.5), the SVG is
//! well-formed, has log–log axes with titles, one CCDF point per distinct non-zero degree at
//! the right height, both fitted curves starting at x_min, and a caption that says which model
//! wins; bad input is exit status 1 with `error: ...`.

mod common;

use std::path::{Path, PathBuf};

use common::{attr, find, parse_svg};
use neurograph_analysis::plot::{self, PlotOptions};
use neurograph_analysis::trace::Trace;
use neurograph_runtime::npy::{self, Dtype};

use common::{power_law_draw, Rng};

/// A trace with one edges record `W: A -> A` of `n` nodes where node `u` has `out[u]`
/// synapses to distinct other nodes.
fn write_edges_trace(name: &str, n: usize, out: &[usize], rng: &mut Rng) -> PathBuf {
    let dir = common::temp_dir("plot-degree", name);
    let (mut pre, mut post) = (Vec::new(), Vec::new());
    for (u, &d) in out.iter().enumerate() {
        let mut targets = std::collections::BTreeSet::new();
        while targets.len() < d {
            let v = (rng.uniform() * n as f64) as usize % n;
            if v != u {
                targets.insert(v);
            }
        }
        for v in targets {
            pre.push(u as f64);
            post.push(v as f64);
        }
    }
    npy::write(&dir.join("W.edges.pre.npy"), &pre, &[pre.len()], Dtype::U32).unwrap();
    npy::write(
        &dir.join("W.edges.post.npy"),
        &post,
        &[post.len()],
        Dtype::U32,
    )
    .unwrap();
    let part = serde_json::json!([{"node": "A", "start": 0, "offset": 0, "size": n}]);
    let record = serde_json::json!({
        "kind": "edges", "name": "W.edges", "projection": "W", "synapses": pre.len(),
        "n_pre": n, "n_post": n, "pre_parts": part, "post_parts": part,
        "pre": {"file": "W.edges.pre.npy", "shape": [pre.len()], "dtype": "uint32"},
        "post": {"file": "W.edges.post.npy", "shape": [post.len()], "dtype": "uint32"},
    });
    common::write_manifest(&dir, "powerlaw", 1.0, vec![record]);
    dir
}

fn points(p: &str) -> Vec<(f64, f64)> {
    p.split(' ')
        .filter(|s| !s.is_empty())
        .map(|xy| {
            let (x, y) = xy.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

#[test]
fn degree_plot_of_power_law_out_degrees() {
    let mut rng = Rng(5);
    let n = 2000;
    // Out-degrees from the power law (capped below n), 100 nodes without synapses.
    let out: Vec<usize> = (0..n)
        .map(|u| {
            if u < 100 {
                0
            } else {
                power_law_draw(&mut rng, 2.5, 1).min(n - 1)
            }
        })
        .collect();
    let dir = write_edges_trace("powerlaw", n, &out, &mut rng);
    let trace = Trace::open(&dir).unwrap();
    let opts = PlotOptions {
        degree: "out".into(),
        ..PlotOptions::default()
    };
    let p = plot::degree(&trace, &opts).unwrap();
    let doc = parse_svg(&p.svg);
    // One CCDF point per distinct positive out-degree, from (min degree, 1) down to
    // (max degree, 1/n_positive): y decreases, x increases.
    let mut distinct: Vec<usize> = out.iter().copied().filter(|&d| d > 0).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let ccdf = find(&doc, "class", "ccdf");
    let pts = points(attr(ccdf, "points"));
    assert_eq!(pts.len(), distinct.len());
    assert_eq!(attr(ccdf, "data-points"), distinct.len().to_string());
    assert_eq!(p.marks, vec![("ccdf".to_string(), distinct.len())]);
    assert!(pts.windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 > w[0].1));
    // The first point is at CCDF 1: the top of the frame (y = 60 px, the frame's top, since
    // the y axis ends at 10^0).
    assert!((pts[0].1 - 60.0).abs() < 0.06, "{:?}", pts[0]);
    // The fraction falls by log10(n_positive) decades to the last point; the frame spans
    // 405 px (560 - 60 - 95) over the decades from 10^floor(log10(1/n_pos)) to 1.
    let n_pos = out.iter().filter(|&&d| d > 0).count() as f64;
    let decades = -(1.0 / n_pos).log10().floor();
    let want_last = 60.0 + 405.0 * n_pos.log10() / decades;
    assert!(
        (pts.last().unwrap().1 - want_last).abs() < 0.06,
        "{:?} vs {want_last}",
        pts.last()
    );
    // Both fits are drawn, from the same x_min (the dotted line).
    let pl = points(attr(find(&doc, "data-model", "power_law"), "points"));
    let ex = points(attr(find(&doc, "data-model", "exponential"), "points"));
    assert!(pl.len() > 5 && ex.len() > 2, "{pl:?} {ex:?}");
    let xmin: f64 = attr(find(&doc, "class", "xmin"), "x1").parse().unwrap();
    assert!((pl[0].0 - xmin).abs() < 0.06 && (ex[0].0 - xmin).abs() < 0.06);
    // Titles, labels, caption.
    let t = common::texts(&doc);
    assert!(
        t.contains(&"powerlaw: out degree distribution of W".to_string()),
        "{t:?}"
    );
    assert!(t.contains(&"out degree x (synaptic partners)".to_string()));
    assert!(t.contains(&"fraction of nodes with degree ≥ x".to_string()));
    assert!(t.contains(&"1".to_string()) && t.contains(&"0.1".to_string()));
    assert!(t.iter().any(|s| s.starts_with("power law α = ")));
    let cap = t.last().unwrap();
    assert!(
        cap.starts_with("2000 nodes (100 of degree 0, not drawn)"),
        "{cap}"
    );
    assert!(cap.contains("power law preferred"), "{cap}");

    // The command line writes the same SVG.
    let svg = dir.join("degree.svg");
    common::neurograph_ok(&[
        "plot",
        dir.to_str().unwrap(),
        "degree",
        "--degree",
        "out",
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&svg).unwrap(), p.svg);
    // Total degree (the default) and undirected also draw.
    for kind in ["total", "undirected", "in"] {
        let o = PlotOptions {
            degree: kind.into(),
            ..PlotOptions::default()
        };
        parse_svg(&plot::degree(&trace, &o).unwrap().svg);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn plot_err(dir: &Path, args: &[&str], want: &str) {
    let svg = dir.join("x.svg");
    let mut a = vec![
        "plot",
        dir.to_str().unwrap(),
        "degree",
        "-o",
        svg.to_str().unwrap(),
    ];
    a.extend_from_slice(args);
    common::expect_error(&a, want);
    assert!(!svg.exists());
}

#[test]
fn degree_plot_errors() {
    let mut rng = Rng(1);
    let dir = write_edges_trace("errors", 30, &[2; 30], &mut rng);
    plot_err(
        &dir,
        &["--degree", "both"],
        "--degree both: the distributions are `total`, `in`, `out` and `undirected`",
    );
    plot_err(
        &dir,
        &["--projection", "V"],
        "no connectivity record of projection `V`; add `record V.edges`",
    );
    // No synapse at all.
    let empty = write_edges_trace("empty", 5, &[0; 5], &mut rng);
    plot_err(&empty, &[], "no node has a synapse");
    // No edges record.
    let plain = common::temp_dir("plot-degree", "plain");
    common::write_spike_trace(&plain, "plain", 1.0, &[("E", 3, vec![(0.1, 1)])]);
    plot_err(
        &plain,
        &[],
        "the trace has no connectivity record; add `record W.edges`",
    );
    for d in [dir, empty, plain] {
        let _ = std::fs::remove_dir_all(d);
    }
}
