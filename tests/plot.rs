//! `neurograph plot TRACE raster|rate|isi -o FILE.svg` and `analysis::plot`: on small trace
//! directories written here, the SVG is well-formed, names its axes with units and its
//! populations, draws exactly one mark per spike of a plotted neuron in the window (after the
//! subsampling rule), one rate point per whole bin with the right value; bad input is exit
//! status 1 with `error: ...`, never a panic.

mod common;

use std::path::{Path, PathBuf};

use common::{parse_svg, texts, Document};
use neurograph_analysis::plot::{self, PlotOptions};
use neurograph_analysis::trace::Trace;

/// Write a trace directory with one spike record per population.
fn write_trace(name: &str, duration: f64, pops: &[common::SpikeRecord]) -> PathBuf {
    let dir = common::temp_dir("plot", name);
    common::write_spike_trace(&dir, name, duration, pops);
    dir
}

/// The value of attribute `attr` of every element with `class="class"`, keyed by its
/// `data-population` (elements without either are left out).
fn by_class(doc: &Document, class: &str, attr: &str) -> Vec<(String, String)> {
    common::by_class(doc, class)
        .iter()
        .filter_map(|n| Some((n.attribute("data-population")?, n.attribute(attr)?)))
        .map(|(p, v)| (p.to_string(), v.to_string()))
        .collect()
}

/// Spike marks per population: one `M` move per spike in the `d` of `class="spikes"`.
fn marks(doc: &Document) -> Vec<(String, usize)> {
    by_class(doc, "spikes", "d")
        .into_iter()
        .map(|(p, d)| (p, d.matches('M').count()))
        .collect()
}

fn opts() -> PlotOptions {
    PlotOptions::default()
}

/// Every spike of a small trace is one mark; axis titles with units, the population names and
/// the model in the title; the SVG is well-formed.
#[test]
fn raster_draws_one_mark_per_spike() {
    let e = vec![(0.01, 0), (0.2, 3), (0.2, 4), (0.55, 0), (0.9, 9)];
    let i = vec![(0.1, 1), (0.7, 0), (0.99, 2)];
    let d = write_trace("raster-small", 1.0, &[("Exc", 10, e), ("Inh", 3, i)]);
    let p = plot::raster(&Trace::open(&d).unwrap(), &opts()).unwrap();
    let doc = parse_svg(&p.svg);
    assert!(common::elements(&doc, "text").len() >= 10);
    assert!(common::elements(&doc, "line").len() >= 8);
    assert_eq!(marks(&doc), vec![("Exc".into(), 5), ("Inh".into(), 3)]);
    assert_eq!(p.marks, vec![("Exc".into(), 5), ("Inh".into(), 3)]);
    let t = texts(&doc);
    for want in ["time (ms)", "neuron index", "Exc", "Inh"] {
        assert!(t.iter().any(|s| s == want), "no text {want:?} in {t:?}");
    }
    assert!(t
        .iter()
        .any(|s| s.contains("raster-small") && s.contains("Exc, Inh")));
    assert!(t
        .iter()
        .any(|s| s.contains("all 13 neurons") && s.contains("8 spikes")));
    // Tick labels are "nice": 0, 200, ..., 1000 ms.
    for want in ["0", "200", "400", "600", "800", "1000"] {
        assert!(t.iter().any(|s| s == want), "no tick {want} in {t:?}");
    }
}

/// More neurons than `max_neurons`: shares in proportion to the sizes, evenly spaced indices,
/// marks only for the kept neurons, and the caption says so.
#[test]
fn raster_subsamples_evenly_and_says_so() {
    assert_eq!(plot::subsample_counts(&[300, 100], 40), vec![30, 10]);
    assert_eq!(plot::subsample_counts(&[300, 100], 400), vec![300, 100]);
    assert_eq!(plot::subsample_counts(&[1000, 1], 10), vec![10, 1]);
    assert_eq!(plot::subsample_indices(300, 30)[..3], [0, 10, 20]);
    assert_eq!(plot::subsample_indices(10, 4), vec![0, 2, 5, 7]);
    // Every neuron fires twice: the kept ones give 2 marks each.
    let spikes = |n: u32| -> Vec<(f64, u32)> {
        (0..n)
            .flat_map(|i| [(0.001 * f64::from(i), i), (0.5 + 0.001 * f64::from(i), i)])
            .collect()
    };
    let d = write_trace(
        "raster-sub",
        1.0,
        &[("A", 300, spikes(300)), ("B", 100, spikes(100))],
    );
    let o = PlotOptions {
        max_neurons: 40,
        ..opts()
    };
    let p = plot::raster(&Trace::open(&d).unwrap(), &o).unwrap();
    let doc = parse_svg(&p.svg);
    assert_eq!(marks(&doc), vec![("A".into(), 60), ("B".into(), 20)]);
    assert_eq!(p.neurons, vec![("A".into(), 30), ("B".into(), 10)]);
    let t = texts(&doc);
    assert!(
        t.iter()
            .any(|s| s.contains("showing 30 of 300 A, 10 of 100 B neurons (evenly spaced")),
        "{t:?}"
    );
}

/// `--from/--to`: only spikes inside the window are marks; a window over 2 s has a time axis
/// in s; a window past the end or empty is an error.
#[test]
fn raster_respects_the_time_window() {
    let e: Vec<(f64, u32)> = (0..50).map(|k| (0.1 * f64::from(k), k % 5)).collect();
    let d = write_trace("raster-window", 5.0, &[("E", 5, e)]);
    let t = Trace::open(&d).unwrap();
    let o = PlotOptions {
        from_s: Some(1.0),
        to_s: Some(1.95),
        ..opts()
    };
    let p = plot::raster(&t, &o).unwrap();
    let doc = parse_svg(&p.svg);
    // Spikes at 1.0, 1.1, ..., 1.9 s.
    assert_eq!(marks(&doc), vec![("E".into(), 10)]);
    let tx = texts(&doc);
    assert!(tx.iter().any(|s| s == "time (ms)"));
    assert!(tx.iter().any(|s| s == "1000") && tx.iter().any(|s| s == "1900"));
    let whole = plot::raster(&t, &opts()).unwrap();
    let doc = parse_svg(&whole.svg);
    assert_eq!(marks(&doc), vec![("E".into(), 50)]);
    assert!(texts(&doc).iter().any(|s| s == "time (s)"));
    for (from, to, msg) in [
        (None, Some(6.0), "past the end of the trace"),
        (Some(2.0), Some(1.0), "--to must be after --from"),
    ] {
        let o = PlotOptions {
            from_s: from,
            to_s: to,
            ..opts()
        };
        let e = plot::raster(&t, &o).unwrap_err().to_string();
        assert!(e.contains(msg), "{e}");
    }
}

/// Rate: one point per whole bin of the window, each spikes / (size x bin), a legend entry
/// and the axis titles with units.
#[test]
fn rate_has_one_point_per_bin_with_the_rate() {
    // 10 neurons; in [0.1, 0.15): 5 spikes -> 10 Hz; [0.15, 0.2): none; [0.2, 0.25): 1 -> 2 Hz.
    let mut e = vec![(0.05, 0), (0.26, 1), (0.3, 2)];
    e.extend((0..5).map(|k| (0.1 + 0.01 * f64::from(k), k)));
    e.push((0.2, 9));
    let d = write_trace("rate", 1.0, &[("E", 10, e), ("I", 2, vec![(0.12, 1)])]);
    let t = Trace::open(&d).unwrap();
    let o = PlotOptions {
        from_s: Some(0.1),
        to_s: Some(0.275),
        bin_s: 0.05,
        ..opts()
    };
    let pe = t.spikes("E").unwrap();
    let r = plot::population_rate(&pe, 0.1, 0.275, 0.05);
    // Three whole bins; the spike at 0.26 s lies in the partial bin and is not counted.
    assert_eq!(r.len(), 3);
    for (got, want) in r.iter().zip([10.0, 0.0, 2.0]) {
        assert!((got - want).abs() < 1e-9, "{r:?}");
    }
    let p = plot::rate(&t, &o).unwrap();
    let doc = parse_svg(&p.svg);
    let lines = by_class(&doc, "rate", "points");
    assert_eq!(lines.len(), 2);
    for (pop, pts) in &lines {
        assert_eq!(pts.split(' ').count(), 3, "{pop}: {pts}");
    }
    let tx = texts(&doc);
    for want in ["time (ms)", "population rate (Hz)", "E", "I"] {
        assert!(tx.iter().any(|s| s == want), "no text {want:?} in {tx:?}");
    }
    assert!(tx.iter().any(|s| s.contains("50 ms bins")), "{tx:?}");
    // Default 5 ms bins over 1 s: 200 points.
    let p = plot::rate(&t, &opts()).unwrap();
    let lines = by_class(&parse_svg(&p.svg), "rate", "points");
    assert!(lines.iter().all(|(_, pts)| pts.split(' ').count() == 200));
    let e = plot::rate(
        &t,
        &PlotOptions {
            bin_s: 2.0,
            ..opts()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("longer than the time window"), "{e}");
}

#[test]
fn nice_ticks_are_multiples_of_1_2_5() {
    assert_eq!(
        plot::nice_ticks(0.0, 1000.0, 8),
        vec![0.0, 100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0]
    );
    assert_eq!(
        plot::nice_ticks(0.0, 4000.0, 6),
        vec![0.0, 1000.0, 2000.0, 3000.0, 4000.0]
    );
    assert_eq!(
        plot::nice_ticks(200.0, 400.0, 8),
        (0..=10)
            .map(|k| 200.0 + 20.0 * k as f64)
            .collect::<Vec<_>>()
    );
    let t = plot::nice_ticks(0.0, 0.3, 5);
    assert!(t.contains(&0.1) && t.contains(&0.3), "{t:?}");
}

/// The command line writes the SVG; every bad input is exit status 1 with `error: ...`.
#[test]
fn cli_writes_svg_and_errors_exit_1() {
    let d = write_trace("cli", 1.0, &[("E", 4, vec![(0.1, 0), (0.5, 3)])]);
    let dir = d.to_str().unwrap();
    let svg = d.join("raster.svg");
    common::neurograph_ok(&["plot", dir, "raster", "-o", svg.to_str().unwrap()]);
    let raster = std::fs::read_to_string(&svg).unwrap();
    let raster = parse_svg(&raster);
    assert_eq!(marks(&raster), vec![("E".into(), 2)]);
    let rate = d.join("rate.svg");
    common::neurograph_ok(&[
        "plot",
        dir,
        "rate",
        "--bin",
        "10ms",
        "-o",
        rate.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&rate).unwrap();
    assert_eq!(
        by_class(&parse_svg(&text), "rate", "points")[0]
            .1
            .split(' ')
            .count(),
        100
    );
    // PNG: the same plot rendered, 2 pixels per SVG unit by default.
    let png_out = d.join("raster.png");
    common::neurograph_ok(&["plot", dir, "raster", "-o", png_out.to_str().unwrap()]);
    let bytes = std::fs::read(&png_out).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    // The root's `width` and `height` attributes.
    let size = |name: &str| -> u32 {
        let v: f64 = common::attr(raster.root_element(), name).parse().unwrap();
        v.round() as u32
    };
    assert_eq!((width, height), (2 * size("width"), 2 * size("height")));

    let no_dir = d.join("no/such/dir/x.svg");
    let png = d.join("bad.png");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["histogram", "-o", "x.svg"],
            "unknown plot kind `histogram`",
        ),
        (
            vec!["raster", "--population", "X", "-o", svg.to_str().unwrap()],
            "add `record X.spikes`",
        ),
        (
            vec!["raster", "-o", no_dir.to_str().unwrap()],
            "cannot write",
        ),
        (
            vec!["raster", "-o", "x.pdf"],
            "must be an .svg or .png file",
        ),
        (
            vec!["raster", "--scale", "0", "-o", png.to_str().unwrap()],
            "PNG scale must be in (0, 8]",
        ),
        (
            vec!["raster", "--to", "2s", "-o", svg.to_str().unwrap()],
            "past the end of the trace",
        ),
        (
            vec!["raster", "--from", "5 mV", "-o", svg.to_str().unwrap()],
            "--from: `5 mV` is not a time",
        ),
        (
            vec!["rate", "--bin", "0 ms", "-o", svg.to_str().unwrap()],
            "bin width must be positive",
        ),
        (
            vec!["raster", "--max-neurons", "0", "-o", svg.to_str().unwrap()],
            "--max-neurons must be at least 1",
        ),
    ];
    for (extra, expect) in cases {
        let mut args = vec!["plot", dir];
        args.extend(extra);
        common::expect_error(&args, expect);
    }
    assert!(!Path::new(&common::root().join("x.svg")).exists());
    assert!(!png.exists());
    common::expect_error(
        &["plot", "no/such/trace", "raster", "-o", "x.svg"],
        "no/such/trace/manifest.json",
    );
    // A trace without any spike record.
    let empty = write_trace("cli-empty", 1.0, &[]);
    common::expect_error(
        &[
            "plot",
            empty.to_str().unwrap(),
            "raster",
            "-o",
            svg.to_str().unwrap(),
        ],
        "records no spikes",
    );
}

#[test]
fn isi_histogram_counts_each_interval_once() {
    // Neuron 0 fires every 10 ms from 0.1 s (9 intervals of 10 ms), neuron 1 twice 25 ms apart,
    // neuron 2 once (no interval); a spike before the window does not pair with one inside.
    let mut e: Vec<(f64, u32)> = (0..10).map(|k| (0.1 + 0.01 * f64::from(k), 0)).collect();
    e.extend([(0.3, 1), (0.325, 1), (0.4, 2), (0.05, 2)]);
    let d = write_trace("isi", 1.0, &[("E", 3, e)]);
    let t = Trace::open(&d).unwrap();
    let pe = t.spikes("E").unwrap();
    let mut isis = plot::intervals(&pe, 0.08, 1.0);
    isis.sort_by(f64::total_cmp);
    assert_eq!(isis.len(), 10, "{isis:?}");
    assert!((isis[0] - 0.01).abs() < 1e-12 && (isis[9] - 0.025).abs() < 1e-12);
    let h = plot::isi_histogram(&isis, 0.005, 6);
    // 10 ms lies in bin 2 ([10, 15) ms), 25 ms in bin 5.
    assert!(
        (h[2] - 0.9).abs() < 1e-12 && (h[5] - 0.1).abs() < 1e-12,
        "{h:?}"
    );
    assert!((h.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let o = PlotOptions {
        from_s: Some(0.08),
        bin_s: 0.005,
        ..opts()
    };
    let p = plot::isi(&t, &o).unwrap();
    let doc = parse_svg(&p.svg);
    assert_eq!(p.marks, vec![("E".to_string(), 10)]);
    assert_eq!(by_class(&doc, "isi", "points").len(), 1);
    let tx = texts(&doc);
    for want in ["inter-spike interval (ms)", "E"] {
        assert!(tx.iter().any(|s| s == want), "no text {want:?} in {tx:?}");
    }
    assert!(
        tx.iter()
            .any(|s| s.starts_with("fraction of intervals per 5 ms")),
        "{tx:?}"
    );
    // No neuron firing twice: a clear error, no panic.
    let lone = write_trace("isi-lone", 1.0, &[("E", 2, vec![(0.1, 0), (0.2, 1)])]);
    let err = plot::isi(&Trace::open(&lone).unwrap(), &opts())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no neuron fired twice"), "{err}");
}

/// `state`: one line per element, values in mV with the unit on the axis, long records reduced
/// to the extremes per pixel column (the peaks stay), and clear errors.
#[test]
fn state_plot_draws_each_element_with_its_unit() {
    use neurograph_analysis::plot::state;
    assert_eq!(state::si_prefix(0.065), (1e3, "m"));
    assert_eq!(state::si_prefix(2.5e-9), (1e9, "n"));
    assert_eq!(state::si_prefix(3.0), (1.0, ""));
    // 10,000 samples of a slow sine with one spike: 700 columns keep the spike's peak.
    let times: Vec<f64> = (1..=10_000).map(|k| k as f64 * 1e-4).collect();
    let mut values: Vec<f64> = times.iter().map(|t| (t * 3.0).sin()).collect();
    values[4321] = 10.0;
    let d = state::min_max_decimate(&times, &values, 0.0, 1.0, 700);
    assert!(d.len() <= 1400, "{}", d.len());
    assert!(d.iter().any(|p| p.1 == 10.0));
    assert!(d.windows(2).all(|w| w[0].0 <= w[1].0));
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(d.iter().any(|p| p.1 == lo));

    let dir = common::temp_dir("plot", "state");
    let (_, out) = common::run_spec_text(
        &dir,
        "s",
        "model s\nneuron N {\n  state v: volt = -65 mV + 1 mV * i\n  dv/dt = (-50 mV - v) / (20 ms)\n}\npopulation P = N[10]\nrecord P.v[2..8] every 1 ms\nrun { dt = 0.1 ms; duration = 200 ms; seed = 1 }\n",
        &[],
    );
    let t = Trace::open(&out).unwrap();
    let p = state::state(&t, &opts()).unwrap();
    let doc = parse_svg(&p.svg);
    let lines = by_class(&doc, "state", "points");
    assert_eq!(lines.len(), 5, "the first five recorded elements");
    assert!(lines.iter().all(|(_, pts)| pts.split(' ').count() == 200));
    let tx = texts(&doc);
    assert!(tx.iter().any(|t| t == "v (mV)"), "{tx:?}");
    assert!(tx.iter().any(|t| t == "P[2]"));
    let o = PlotOptions {
        elements: Some((6, 8)),
        from_s: Some(0.1),
        ..opts()
    };
    let p = state::state(&t, &o).unwrap();
    let lines = by_class(&parse_svg(&p.svg), "state", "points");
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|(_, pts)| pts.split(' ').count() == 101));
    let png = dir.join("state.png");
    common::neurograph_ok(&[
        "plot",
        out.to_str().unwrap(),
        "state",
        "--variable",
        "P.v",
        "--elements",
        "2..4",
        "-o",
        png.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    for (extra, expect) in [
        (vec!["--elements", "0..3"], "`P.v` records elements 2..8"),
        (vec!["--elements", "3"], "expected a range like `0..5`"),
        (vec!["--variable", "P.u"], "add `record P.u every 1 ms`"),
    ] {
        let mut args = vec!["plot", out.to_str().unwrap(), "state", "-o", "x.svg"];
        args.extend(extra);
        common::expect_error(&args, expect);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
