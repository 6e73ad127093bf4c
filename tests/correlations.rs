//! `neurograph analyze TRACE correlations`: known answers on spike trains written here (planted
//! coincidences at +3 ms over independent Poisson background: the corrected peak is at +3 ms
//! with the planted excess; independent Poisson trains: corrected correlogram consistent with 0;
//! the jitter predictor equals the raw correlogram in expectation; seeded surrogates agree with
//! the exact jitter moments), and bad input as exit status 1 with `error: ...`.

mod common;

use std::path::{Path, PathBuf};

use neurograph_analysis::correlations::{
    analyze_trace, parse_pair, Correction, CorrelationOptions, CorrelationResult,
};
use neurograph_analysis::trace::Trace;

use common::Rng;

/// Poisson spike times at `rate` Hz over `duration` s, on a 0.1 ms grid (as a run stamps
/// them), without repeats.
fn poisson_train(rng: &mut Rng, rate: f64, duration: f64) -> Vec<f64> {
    let mut out: Vec<f64> = common::poisson_train(rng, rate, duration)
        .into_iter()
        .map(|t| (t * 1e4).floor() * 1e-4)
        .collect();
    out.dedup();
    out
}

/// A trace with one population `P` whose neuron k fires `trains[k]`.
fn write_trace(name: &str, duration: f64, trains: &[Vec<f64>]) -> PathBuf {
    let dir = common::temp_dir("correlations", name);
    let spikes = common::train_spikes(trains);
    common::write_spike_trace(&dir, name, duration, &[("P", trains.len(), spikes)]);
    dir
}

/// Two 20 Hz trains over 200 s; train 1 also repeats `planted` randomly chosen spikes of train
/// 0 exactly 3 ms later.
fn planted(rng: &mut Rng, planted: usize) -> (f64, Vec<Vec<f64>>) {
    let duration = 200.0;
    let a = poisson_train(rng, 20.0, duration);
    let mut b = poisson_train(rng, 20.0, duration);
    let mut chosen = std::collections::BTreeSet::new();
    while chosen.len() < planted {
        chosen.insert((rng.uniform() * a.len() as f64) as usize);
    }
    for k in chosen {
        let s = ((a[k] + 0.003) * 1e4).round() * 1e-4;
        if s < duration {
            b.push(s);
        }
    }
    b.sort_by(f64::total_cmp);
    b.dedup();
    (duration, vec![a, b])
}

fn pair() -> Vec<(
    neurograph_analysis::correlations::Selection,
    neurograph_analysis::correlations::Selection,
)> {
    vec![parse_pair("--pairs", "P:0,P:1").unwrap()]
}

fn run(dir: &Path, opts: &CorrelationOptions) -> CorrelationResult {
    analyze_trace(&Trace::open(dir).unwrap(), &pair(), &[], opts).unwrap()
}

/// Planted coincidences at +3 ms: the corrected peak is at +3 ms and holds the planted excess
/// (less the share the jitter predictor itself sees, 1/25 of it in 25 ms windows), within 4
/// SD; with the shift predictor too; the peak z is large.
#[test]
fn planted_coincidences_give_the_peak_and_the_excess() {
    let mut rng = Rng(11);
    let n_planted = 400;
    let (duration, trains) = planted(&mut rng, n_planted);
    let dir = write_trace("planted", duration, &trains);
    for correction in [Correction::Jitter, Correction::Shuffle] {
        let opts = CorrelationOptions {
            correction,
            surrogates: if correction == Correction::Shuffle {
                10
            } else {
                0
            },
            ..Default::default()
        };
        let r = run(&dir, &opts);
        let e = &r.entries[0];
        assert_eq!(e.kind, "pair");
        let peak = e.peak();
        assert!(
            (r.lag_s(peak) - 0.003).abs() < 1e-9,
            "{correction:?}: peak at {} s",
            r.lag_s(peak)
        );
        let excess = e.corrected()[peak];
        let expected = match correction {
            Correction::Jitter => n_planted as f64 * (1.0 - 1.0 / 25.0),
            _ => n_planted as f64,
        };
        let sd = e.variance.as_ref().unwrap()[peak].sqrt();
        assert!(
            (excess - expected).abs() < 4.0 * sd,
            "{correction:?}: excess {excess} vs {expected} (sd {sd})"
        );
        assert!(e.z()[peak] > 10.0, "{correction:?}: z {}", e.z()[peak]);
        // Away from the peak the corrected correlogram is noise.
        let z = e.z();
        let others: Vec<f64> = (0..z.len()).filter(|&i| i != peak).map(|i| z[i]).collect();
        let ms = others.iter().map(|v| v * v).sum::<f64>() / others.len() as f64;
        assert!(ms < 2.0, "{correction:?}: mean z² off the peak {ms}");
    }
    // The command line prints the same peak and writes it to JSON.
    let json = dir.join("c.json");
    let out = common::neurograph_ok(&[
        "analyze",
        dir.to_str().unwrap(),
        "correlations",
        "--pairs",
        "P:0,P:1",
        "--json",
        json.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("P:0") && text.contains("3.0"), "{text}");
    let doc = common::read_json(&json);
    assert_eq!(doc["format"], "neurograph-analysis-correlations");
    assert_eq!(doc["correction"], "jitter");
    let e = &doc["entries"][0];
    assert!((e["peak_lag_s"].as_f64().unwrap() - 0.003).abs() < 1e-9);
    assert_eq!(e["raw"].as_array().unwrap().len(), 101);
    assert_eq!(doc["lags_s"].as_array().unwrap().len(), 101);
    // Rate form: raw counts over (spikes of a × bin).
    let (raw0, rate0, na) = (
        e["raw"][0].as_f64().unwrap(),
        e["raw_rate_hz"][0].as_f64().unwrap(),
        e["spikes_a"].as_f64().unwrap(),
    );
    assert!((rate0 - raw0 / (na * 0.001)).abs() < 1e-9);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Independent Poisson trains: the corrected correlogram is consistent with 0 at every lag
/// (z about standard normal), for both corrections.
#[test]
fn independent_trains_have_a_flat_corrected_correlogram() {
    let mut rng = Rng(5);
    let duration = 200.0;
    let trains = vec![
        poisson_train(&mut rng, 20.0, duration),
        poisson_train(&mut rng, 30.0, duration),
    ];
    let dir = write_trace("independent", duration, &trains);
    for correction in [Correction::Jitter, Correction::Shuffle] {
        // Exact jitter moments; the shift predictor averaged over 10 shifts.
        let opts = CorrelationOptions {
            correction,
            surrogates: if correction == Correction::Shuffle {
                10
            } else {
                0
            },
            ..Default::default()
        };
        let r = run(&dir, &opts);
        let z = r.entries[0].z();
        let mean = z.iter().sum::<f64>() / z.len() as f64;
        let ms = z.iter().map(|v| v * v).sum::<f64>() / z.len() as f64;
        assert!(mean.abs() < 0.5, "{correction:?}: mean z {mean}");
        assert!(ms > 0.5 && ms < 1.6, "{correction:?}: mean z² {ms}");
        assert!(z.iter().all(|v| v.abs() < 4.5), "{correction:?}: {z:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Over 60 independent Poisson neurons, the default sample of pairs: summed over 300 pairs,
/// the jitter predictor equals the raw correlogram in expectation, at every lag (within 4
/// SD) and in total (within 1 %).
#[test]
fn jitter_predictor_equals_the_raw_correlogram_in_expectation() {
    let mut rng = Rng(9);
    let duration = 40.0;
    let trains: Vec<Vec<f64>> = (0..60)
        .map(|k| poisson_train(&mut rng, 10.0 + k as f64 / 3.0, duration))
        .collect();
    let dir = write_trace("expectation", duration, &trains);
    let opts = CorrelationOptions {
        sample_pairs: 300,
        ..Default::default()
    };
    let r = analyze_trace(&Trace::open(&dir).unwrap(), &[], &[], &opts).unwrap();
    assert_eq!(r.entries.len(), 1);
    let e = &r.entries[0];
    assert_eq!((e.kind, e.pairs), ("sample", 300));
    let p = e.predictor.as_ref().unwrap();
    let v = e.variance.as_ref().unwrap();
    for i in 0..e.raw.len() {
        assert!(
            (e.raw[i] - p[i]).abs() < 4.0 * v[i].sqrt(),
            "lag {}: raw {} predictor {}",
            r.lag_s(i),
            e.raw[i],
            p[i]
        );
    }
    let (sr, sp): (f64, f64) = (e.raw.iter().sum(), p.iter().sum());
    assert!((sr - sp).abs() < 0.01 * sp, "raw {sr} predictor {sp}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Seeded jittered surrogates estimate the moments the exact formula gives: the surrogate mean
/// within 5 standard errors, the SD within 15 %.
#[test]
fn surrogates_agree_with_the_exact_jitter_moments() {
    let mut rng = Rng(21);
    let (duration, trains) = planted(&mut rng, 200);
    let dir = write_trace("surrogates", duration, &trains);
    let exact = run(&dir, &CorrelationOptions::default());
    let n = 400;
    let mc = run(
        &dir,
        &CorrelationOptions {
            surrogates: n,
            ..Default::default()
        },
    );
    let (e, m) = (&exact.entries[0], &mc.entries[0]);
    assert_eq!(e.raw, m.raw);
    let (pe, ve) = (e.predictor.as_ref().unwrap(), e.variance.as_ref().unwrap());
    let (pm, vm) = (m.predictor.as_ref().unwrap(), m.variance.as_ref().unwrap());
    for i in 0..pe.len() {
        let se = (ve[i] / n as f64).sqrt();
        assert!(
            (pe[i] - pm[i]).abs() < 5.0 * se,
            "lag {i}: {} vs {}",
            pe[i],
            pm[i]
        );
        let ratio = (vm[i] / ve[i]).sqrt();
        assert!((ratio - 1.0).abs() < 0.15, "lag {i}: SD ratio {ratio}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Groups are summed trains: the group correlogram of {0} and {1, 2} is the sum of the two
/// pair correlograms.
#[test]
fn a_group_correlogram_sums_its_members() {
    let mut rng = Rng(2);
    let trains: Vec<Vec<f64>> = (0..3)
        .map(|_| poisson_train(&mut rng, 15.0, 20.0))
        .collect();
    let dir = write_trace("groups", 20.0, &trains);
    let trace = Trace::open(&dir).unwrap();
    let opts = CorrelationOptions::default();
    let pairs = vec![
        parse_pair("--pairs", "P:0,P:1").unwrap(),
        parse_pair("--pairs", "P:0,P:2").unwrap(),
    ];
    let groups = vec![parse_pair("--groups", "P:0,P:1..3").unwrap()];
    let r = analyze_trace(&trace, &pairs, &groups, &opts).unwrap();
    assert_eq!(r.entries.len(), 3);
    assert_eq!(r.entries[2].kind, "group");
    assert_eq!(r.entries[2].b, "P:1..3");
    for i in 0..r.entries[0].raw.len() {
        assert_eq!(
            r.entries[2].raw[i],
            r.entries[0].raw[i] + r.entries[1].raw[i]
        );
        let p = |k: usize| r.entries[k].predictor.as_ref().unwrap()[i];
        assert!((p(2) - p(0) - p(1)).abs() < 1e-9);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad input: exit status 1 with `error: ...` naming the flag or record; never a panic.
#[test]
fn correlation_errors_name_the_problem() {
    let mut rng = Rng(4);
    let trains: Vec<Vec<f64>> = (0..3).map(|_| poisson_train(&mut rng, 15.0, 5.0)).collect();
    let dir = write_trace("errors", 5.0, &trains);
    let d = dir.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--correction", "shift"], "--correction: `shift`"),
        (vec!["--jitter", "2.5ms"], "--jitter"),
        (vec!["--max-lag", "0ms"], "--max-lag"),
        (vec!["--max-lag", "6s"], "--max-lag"),
        (vec!["--bin", "1mV"], "--bin"),
        (vec!["--pairs", "P:0"], "--pairs: `P:0`"),
        (vec!["--pairs", "P:0..2,P:1"], "not two single neurons"),
        (vec!["--pairs", "P:0,P:7"], "has 3 neurons"),
        (vec!["--groups", "Q,P"], "no spike record of population `Q`"),
        (
            vec!["--correction", "shuffle", "--segment", "3s"],
            "--segment",
        ),
        (vec!["--sample", "0"], "--sample"),
    ];
    for (flags, want) in cases {
        common::expect_error(&common::analyze_args(&dir, "correlations", &flags), want);
    }
    // A corrupt spike file names the file.
    std::fs::write(dir.join("P.spikes.t.npy"), b"garbage").unwrap();
    common::expect_error(&["analyze", d, "correlations"], "P.spikes.t.npy");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `neurograph plot TRACE correlogram --pair`: one bar per lag, the tallest at the planted
/// +3 ms, the raw step line (two points per lag) and the predictor (one per lag), axis titles
/// with units, a legend; bad flags are exit status 1.
#[test]
fn correlogram_plot_draws_bars_raw_and_predictor() {
    let mut rng = Rng(11);
    let (duration, trains) = planted(&mut rng, 400);
    let dir = write_trace("plot", duration, &trains);
    let d = dir.to_str().unwrap();
    let svg_path = dir.join("cch.svg");
    let svg = svg_path.to_str().unwrap();
    common::neurograph_ok(&[
        "plot",
        d,
        "correlogram",
        "--pair",
        "P:0,P:1",
        "--bin",
        "1ms",
        "-o",
        svg,
    ]);
    let text = std::fs::read_to_string(&svg_path).unwrap();
    let doc = common::parse_svg(&text);
    assert!(common::elements(&doc, "text").len() >= 10);
    let lags = common::class_attrs(&doc, "bar", "data-lag-ms");
    assert_eq!(lags.len(), 101);
    assert_eq!((lags[0].as_str(), lags[100].as_str()), ("-50", "50"));
    // The tallest bar (smallest y of a bar reaching above zero) is at +3 ms.
    let ys: Vec<f64> = common::class_attrs(&doc, "bar", "y")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    let top = (0..ys.len())
        .min_by(|&a, &b| ys[a].total_cmp(&ys[b]))
        .unwrap();
    assert_eq!(lags[top], "3");
    let raw = common::class_attrs(&doc, "raw", "points");
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0].split(' ').count(), 202);
    let pred = common::class_attrs(&doc, "predictor", "points");
    assert_eq!(pred[0].split(' ').count(), 101);
    let texts = common::texts(&doc);
    for want in [
        "lag (ms; positive: second train after the first)",
        "coincidences per 1 ms bin",
        "jitter predictor (25 ms)",
        "raw",
        "P:0 → P:1",
        "peak 3 ms",
    ] {
        assert!(texts.iter().any(|t| t.contains(want)), "no {want:?}");
    }
    // Without a correction there is no predictor line.
    common::neurograph_ok(&[
        "plot",
        d,
        "correlogram",
        "--pair",
        "P:0,P:1",
        "--correction",
        "none",
        "-o",
        svg,
    ]);
    let text = std::fs::read_to_string(&svg_path).unwrap();
    let doc = common::parse_svg(&text);
    assert!(common::class_attrs(&doc, "predictor", "points").is_empty());
    // With the default 5 ms bin: 21 bars.
    assert_eq!(common::class_attrs(&doc, "bar", "data-lag-ms").len(), 21);
    for (flags, want) in [
        (vec![], "--pair"),
        (vec!["--pair", "P:0"], "--pair: `P:0`"),
        (
            vec!["--pair", "P:0,P:1", "--correction", "x"],
            "--correction",
        ),
        (vec!["--pair", "P:0,P:1", "--jitter", "7ms"], "--jitter"),
    ] {
        let mut args = vec!["plot", d, "correlogram", "-o", svg];
        args.extend(&flags);
        common::expect_error(&args, want);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
