//! `neurograph analyze TRACE timescales`: known answers (AR(1) processes, i.e. linear leaky
//! units `x_{t+1} = (1 - 1/tau) x_t + noise`, and sums of two, written as trace directories
//! here), typed errors naming the record (exit status 1 from the command line, no panic), and
//! the leaky RNN spec run and analysed from the command line.

mod common;

use std::path::PathBuf;

use neurograph_analysis::timescales::{analyze_trace, Model, TimescaleOptions};
use neurograph_analysis::trace::{Trace, TraceError};
use neurograph_runtime::npy::{self, Dtype};
use serde_json::{json, Value};

use common::Rng;

/// A linear leaky unit with time constant `tau` steps: `x_{t+1} = (1 - 1/tau) x_t + noise`,
/// started in its stationary distribution, unit-variance stationary.
fn ar1(rng: &mut Rng, tau: f64, n: usize) -> Vec<f64> {
    let a = 1.0 - 1.0 / tau;
    let s = (1.0 - a * a).sqrt();
    let mut x = rng.normal();
    (0..n)
        .map(|_| {
            x = a * x + s * rng.normal();
            x
        })
        .collect()
}

/// Timescale in steps of an AR(1) unit with time constant `tau` steps.
fn ar1_timescale(tau: f64) -> f64 {
    -1.0 / (1.0 - 1.0 / tau).ln()
}

/// Write a trace directory with one state record `name` (columns = units) sampled every `dt`.
fn write_state_trace(dir_name: &str, name: &str, dt: f64, columns: &[Vec<f64>]) -> PathBuf {
    let dir = common::temp_dir("timescales", dir_name);
    let rows = columns[0].len();
    let width = columns.len();
    let mut values = Vec::with_capacity(rows * width);
    for r in 0..rows {
        for c in columns {
            values.push(c[r]);
        }
    }
    let times: Vec<f64> = (1..=rows).map(|k| k as f64 * dt).collect();
    npy::write(
        &dir.join(format!("{name}.npy")),
        &values,
        &[rows, width],
        Dtype::F64,
    )
    .unwrap();
    npy::write(
        &dir.join(format!("{name}.t.npy")),
        &times,
        &[rows],
        Dtype::F64,
    )
    .unwrap();
    let manifest = json!({
        "format": "neurograph-trace", "format_version": 1, "model": dir_name, "seed": 1,
        "dt_s": dt, "duration_s": rows as f64 * dt, "status": "complete",
        "records": [{
            "kind": "state", "name": name, "unit": "1", "at_end": false,
            "values": {"file": format!("{name}.npy"), "shape": [rows, width], "dtype": "float64"},
            "times": {"file": format!("{name}.t.npy"), "shape": [rows], "unit": "s"},
        }],
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    dir
}

fn opts(max_lag_s: f64) -> TimescaleOptions {
    TimescaleOptions {
        max_lag_s: Some(max_lag_s),
        ..Default::default()
    }
}

/// Linear leaky units with tau = 5, 10, 20, 40 steps (dt = 1 ms): each fitted timescale within
/// 5 % of -1/ln(1 - 1/tau) steps, a single exponential by AIC; the population fit too.
#[test]
fn leaky_units_have_the_known_timescale() {
    let mut rng = Rng(2024);
    let taus = [5.0, 10.0, 20.0, 40.0];
    let cols: Vec<Vec<f64>> = taus.iter().map(|&t| ar1(&mut rng, t, 200_000)).collect();
    let d = write_state_trace("ar1", "L.x", 1e-3, &cols);
    let trace = Trace::open(&d).unwrap();
    let r = analyze_trace(&trace, None, &opts(0.1)).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].variable, "L.x");
    assert_eq!(r[0].max_lag, 100);
    for (tau, f) in taus.iter().zip(&r[0].units) {
        let f = f.as_ref().unwrap();
        let want = ar1_timescale(*tau) * 1e-3;
        let got = f.timescale() * r[0].sample_s;
        eprintln!(
            "tau {tau} steps: fitted {got:.6} s, want {want:.6} s, {:?}",
            f.model
        );
        assert!((got - want).abs() / want < 0.05, "{got} vs {want}: {f:?}");
    }
    let doc = neurograph_analysis::timescales::to_json(&trace, &r);
    assert_eq!(doc["format"], "neurograph-analysis-timescales");
    assert_eq!(doc["variables"][0]["per_unit"].as_array().unwrap().len(), 4);
    let _ = std::fs::remove_dir_all(&d);
}

/// The sum of two independent leaky units of tau = 2 and 60 steps (equal variance): AIC
/// chooses the double exponential, both timescales within 10 %, weights near 1/2.
#[test]
fn two_separated_timescales_are_a_double_exponential() {
    let mut rng = Rng(7);
    let n = 400_000;
    let (t1, t2) = (2.0, 60.0);
    let cols: Vec<Vec<f64>> = (0..3)
        .map(|_| {
            let fast = ar1(&mut rng, t1, n);
            let slow = ar1(&mut rng, t2, n);
            fast.iter().zip(&slow).map(|(a, b)| a + b).collect()
        })
        .collect();
    let d = write_state_trace("ar1-double", "L.x", 1e-3, &cols);
    let trace = Trace::open(&d).unwrap();
    let r = analyze_trace(&trace, Some(&["L.x".to_string()]), &opts(0.2)).unwrap();
    let (w1, w2) = (ar1_timescale(t1), ar1_timescale(t2));
    for f in r[0].units.iter().chain([&r[0].population]) {
        let f = f.as_ref().unwrap();
        eprintln!(
            "fitted tau1 {:.4} tau2 {:.3} steps (want {w1:.4}, {w2:.3}), weights {:.3} {:.3}, AIC {:.1} vs {:.1}",
            f.tau1,
            f.tau2,
            f.a1 / (f.a1 + f.a2),
            f.a2 / (f.a1 + f.a2),
            f.aic_double,
            f.aic_single
        );
        assert_eq!(f.model, Model::Double, "{f:?}");
        assert!((f.tau1 - w1).abs() / w1 < 0.1, "{f:?}");
        assert!((f.tau2 - w2).abs() / w2 < 0.1, "{f:?}");
        let w = f.a1 / (f.a1 + f.a2);
        assert!((w - 0.5).abs() < 0.1, "{f:?}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A missing or unsampled record, bad options: typed errors naming the record, exit status 1.
#[test]
fn errors_name_the_record() {
    let mut rng = Rng(3);
    let cols = vec![ar1(&mut rng, 5.0, 1000), vec![1.0; 1000]];
    let d = write_state_trace("errors", "L.x", 1e-3, &cols);
    let trace = Trace::open(&d).unwrap();
    let e = analyze_trace(&trace, Some(&["X.y".to_string()]), &opts(0.03)).unwrap_err();
    assert!(matches!(e, TraceError::MissingSampledState { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "the trace has no state record `X.y`; add `record X.y every 1 ms`"
    );
    let e = analyze_trace(&trace, Some(&["E.spikes".to_string()]), &opts(0.03)).unwrap_err();
    assert!(e.to_string().contains("add `record E.spikes`"), "{e}");
    // A constant unit has no autocorrelation: null, not a panic.
    let r = analyze_trace(&trace, None, &opts(0.03)).unwrap();
    assert!(r[0].units[0].is_some() && r[0].units[1].is_none());
    let dir = d.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--variable", "X.y"],
            "the trace has no state record `X.y`; add `record X.y every 1 ms`",
        ),
        (vec!["--max-lag", "5 mV"], "--max-lag: `5 mV` is not a time"),
        (
            vec!["--max-lag", "0 ms"],
            "--max-lag must be a positive time",
        ),
        (vec!["--max-lag", "2 ms"], "fitting needs at least 4"),
        (vec!["--from=-1 s"], "--from must be a non-negative time"),
        (vec!["--from", "0.999 s"], "the timescales need at least 8"),
    ];
    let e = analyze_trace(
        &trace,
        Some(&["L.x".to_string()]),
        &TimescaleOptions {
            from_s: -1.0,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, TraceError::Option(_)), "{e:?}");
    for (extra, expect) in cases {
        common::expect_error(&common::analyze_args(&d, "timescales", &extra), expect);
    }
    // Each pass takes only its own flags (clap's usage error, exit status 2).
    for (pass, flag) in [("spikes", "--max-lag"), ("timescales", "--population")] {
        common::expect_usage_error(
            &["analyze", dir, pass, flag, "5ms"],
            &format!("unexpected argument '{flag}'"),
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// Spearman rank correlation.
fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let rank = |v: &[f64]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        for (k, &i) in idx.iter().enumerate() {
            r[i] = k as f64;
        }
        r
    };
    let (rx, ry) = (rank(x), rank(y));
    let n = x.len() as f64;
    let m = (n - 1.0) / 2.0;
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - m) * (b - m)).sum();
    let var: f64 = rx.iter().map(|a| (a - m) * (a - m)).sum();
    cov / var
}

/// Run a variant of `specs/rnn_timescales.ng` (per-neuron time constants widened to
/// 1 + U(0, 20) steps, biases 2 + U(0, 1) so that every unit stays in the linear part of the
/// leaky ReLU, the first 50 units' h and tau recorded), then `analyze ... timescales --json`;
/// returns the JSON's `H.h` entry and the recorded time constants (steps).
fn run_rnn_variant(
    name: &str,
    recurrent: bool,
    duration: &str,
    max_lag: &str,
) -> (Value, Vec<f64>) {
    let dir = common::temp_dir("timescales", name);
    let text = std::fs::read_to_string(common::root().join("specs/rnn_timescales.ng")).unwrap();
    let mut spec = text
        .replace(
            "param tau = 1 + uniform(0, 1) ",
            "param tau = 1 + uniform(0, 20) ",
        )
        .replace(
            "param b = uniform(-1 / sqrt(n_hidden), 1 / sqrt(n_hidden)) + uniform(-1, 1)",
            "param b = 2 + uniform(0, 1)",
        )
        .replace(
            "record H.h, In.x",
            "record H.h[0..50] every 1 ms, H.tau[0..50] at end",
        );
    if !recurrent {
        spec = spec.replace(&common::block(&text, "project W: H -> H via Weight {"), "");
    }
    assert!(spec.contains("uniform(0, 20)") && spec.contains("param b = 2 + uniform(0, 1)"));
    assert!(spec.contains("H.tau[0..50] at end"));
    assert_eq!(spec.contains("project W:"), recurrent);
    let spec_path = dir.join("rnn.ng");
    std::fs::write(&spec_path, spec).unwrap();
    let trace = dir.join("trace");
    let json_path = dir.join("timescales.json");
    common::neurograph_ok(&[
        "run",
        spec_path.to_str().unwrap(),
        "--duration",
        duration,
        "--quiet",
        "--out",
        trace.to_str().unwrap(),
    ]);
    let out = common::analyze_ok(
        &trace,
        "timescales",
        &[
            "--variable",
            "H.h",
            "--max-lag",
            max_lag,
            "--from",
            "500ms",
            "--json",
            json_path.to_str().unwrap(),
        ],
    );
    let table = String::from_utf8_lossy(&out.stdout);
    eprintln!("{table}");
    assert!(table.starts_with("variable"), "{table}");
    let doc = common::read_json(&json_path);
    assert_eq!(doc["format"], "neurograph-analysis-timescales");
    assert_eq!(doc["model"], "rnn_timescales");
    let v = doc["variables"][0].clone();
    assert_eq!(v["variable"], "H.h");
    assert_eq!(v["units"], 50);
    assert_eq!(v["sample_s"].as_f64().unwrap(), 1e-3);
    let samples = v["samples"].as_u64().unwrap();
    // Samples are stamped at the end of their step (1 ms, 2 ms, ...): 499 before 500 ms.
    let want = match duration {
        "10s" => 9501,
        "100s" => 99501,
        other => panic!("no sample count known for {other}"),
    };
    assert_eq!(samples, want);
    let taus = npy::parse(&std::fs::read(trace.join("H.tau.npy")).unwrap())
        .unwrap()
        .data;
    assert_eq!(taus.len(), 50);
    let _ = std::fs::remove_dir_all(&dir);
    (v, taus)
}

/// One positive timescale per unit (seconds) from the JSON.
fn unit_taus(v: &Value) -> Vec<f64> {
    let fitted: Vec<f64> = v["per_unit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["tau_s"].as_f64().unwrap())
        .collect();
    assert_eq!(fitted.len(), 50);
    assert!(
        fitted.iter().all(|&t| t > 0.0 && t.is_finite()),
        "{fitted:?}"
    );
    fitted
}

/// Without the recurrent projection every unit of the spec is a linear leaky unit driven by
/// white input bits: its timescale is -1/ln(1 - 1/tau) steps. Each fitted timescale within
/// 10 % of it over lags 0..30 ms (100 s of samples after 500 ms burn-in: the units share one
/// input sequence, so their statistical errors are correlated), ranks agreeing (Spearman > 0.95).
#[test]
fn rnn_spec_without_recurrence_has_the_leaky_unit_timescales() {
    let (v, taus) = run_rnn_variant("rnn-isolated", false, "100s", "30ms");
    assert!((v["max_lag_s"].as_f64().unwrap() - 0.03).abs() < 1e-12);
    let fitted = unit_taus(&v);
    let mut worst: f64 = 0.0;
    for (t, f) in taus.iter().zip(&fitted) {
        let want = ar1_timescale(*t) * 1e-3;
        let err = (f - want).abs() / want;
        eprintln!(
            "tau {t:6.2} steps: fitted {:7.3} ms, leaky unit {:7.3} ms",
            f * 1e3,
            want * 1e3
        );
        worst = worst.max(err);
    }
    let rho = spearman(&taus, &fitted);
    eprintln!("worst relative error {worst:.3}; Spearman {rho:.3}");
    assert!(worst < 0.1, "worst relative error {worst}");
    assert!(rho > 0.95, "rank correlation {rho}");
}

/// The recurrent network (the spec's untrained weights): one positive timescale per unit, and
/// the third of the units with the longest own time constants is slower on average than the
/// third with the shortest (the recurrence mixes in network timescales, so ranks agree only
/// loosely: Spearman > 0.3).
#[test]
fn rnn_spec_run_and_analysed_from_the_command_line() {
    let (v, taus) = run_rnn_variant("rnn", true, "10s", "60ms");
    assert!((v["max_lag_s"].as_f64().unwrap() - 0.06).abs() < 1e-12);
    let fitted = unit_taus(&v);
    assert!(v["population"]["tau_s"].as_f64().unwrap() > 0.0);
    let mut idx: Vec<usize> = (0..50).collect();
    idx.sort_by(|&a, &b| taus[a].total_cmp(&taus[b]));
    let mean = |s: &[usize]| s.iter().map(|&i| fitted[i]).sum::<f64>() / s.len() as f64;
    let (low, high) = (mean(&idx[..16]), mean(&idx[34..]));
    let rho = spearman(&taus, &fitted);
    eprintln!(
        "shortest third {:.3} ms, longest third {:.3} ms, Spearman {rho:.3}",
        low * 1e3,
        high * 1e3
    );
    assert!(high > 1.3 * low, "{high} vs {low}");
    assert!(rho > 0.3, "rank correlation {rho}");
}

/// Binned spike counts (`--variable E.spikes --bin 1ms`): 20 neurons spiking with a shared
/// probability per 1 ms bin that follows a leaky unit of tau = 10 steps. The counts'
/// autocorrelation is a white part at lag 0 plus that unit's exponential: the population fit
/// is a double exponential whose slow time constant is the unit's timescale within 10 %.
#[test]
fn binned_spike_counts_of_a_modulated_population() {
    let mut rng = Rng(11);
    let (n, bins, tau) = (20usize, 100_000usize, 10.0);
    let x = ar1(&mut rng, tau, bins);
    let mut spikes: Vec<(f64, u32)> = Vec::new();
    for (b, xv) in x.iter().enumerate() {
        let p = (0.5 + 0.2 * xv).clamp(0.0, 1.0);
        for i in 0..n as u32 {
            if rng.uniform() < p {
                spikes.push(((b as f64 + 0.5) * 1e-3, i));
            }
        }
    }
    let dir = common::temp_dir("timescales", "spikes");
    common::write_spike_trace(&dir, "spikes", bins as f64 * 1e-3, &[("E", n, spikes)]);
    let json_path = dir.join("ts.json");
    common::analyze_ok(
        &dir,
        "timescales",
        &[
            "--variable",
            "E.spikes",
            "--bin",
            "1ms",
            "--max-lag",
            "60ms",
            "--json",
            json_path.to_str().unwrap(),
        ],
    );
    let doc = common::read_json(&json_path);
    let v = &doc["variables"][0];
    assert_eq!(v["variable"], "E.spikes");
    assert_eq!(v["units"], 20);
    assert_eq!(v["samples"], 100_000);
    let pop = &v["population"];
    let want = ar1_timescale(tau) * 1e-3;
    eprintln!("{pop}\nwant slow tau {want}");
    assert_eq!(pop["model"], "double");
    let slow = pop["tau2_s"].as_f64().unwrap();
    assert!((slow - want).abs() / want < 0.1, "{slow} vs {want}");
    common::expect_error(
        &common::analyze_args(
            &dir,
            "timescales",
            &["--variable", "E.spikes", "--bin", "1ns"],
        ),
        "use wider bins",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
