//! `neurograph analyze TRACE spikes` and the trace reader: statistics with answers known by
//! construction (Poisson, regular, independent and identical trains written as trace
//! directories here), every kind of bad input as a typed error naming the file or record (exit
//! status 1 from the command line, no panic), and a CUBA run analysed against its own summary
//! and the Brian2 reference bands.

mod common;

use std::path::{Path, PathBuf};

use neurograph_analysis::spikes::{analyze_trace, SpikeOptions};
use neurograph_analysis::trace::{Trace, TraceError};
use neurograph_runtime::npy::{self, Dtype};
use serde_json::{json, Value};

use common::{poisson_train, Rng};

/// Write a trace directory with one spike record per `(population, trains)`.
fn write_trace(name: &str, duration: f64, pops: &[(&str, &[Vec<f64>])]) -> PathBuf {
    let dir = common::temp_dir("analyze", name);
    let pops: Vec<common::SpikeRecord> = pops
        .iter()
        .map(|(pop, trains)| (*pop, trains.len(), common::train_spikes(trains)))
        .collect();
    common::write_spike_trace(&dir, name, duration, &pops);
    dir
}

fn analyze(dir: &Path) -> Vec<neurograph_analysis::spikes::PopulationSpikes> {
    analyze_trace(&Trace::open(dir).unwrap(), None, &SpikeOptions::default()).unwrap()
}

/// Poisson trains of 20 Hz: rate within 4 standard errors, ISI CV, CV2, LV and Fano near 1,
/// independent neurons uncorrelated, synchrony chi near 1/sqrt(n).
#[test]
fn poisson_trains_have_the_known_statistics() {
    let (n, rate, duration) = (400, 20.0, 50.0);
    let mut rng = Rng(7);
    let trains: Vec<Vec<f64>> = (0..n)
        .map(|_| poisson_train(&mut rng, rate, duration))
        .collect();
    let dir = write_trace("poisson", duration, &[("P", &trains)]);
    let s = &analyze(&dir)[0];
    assert_eq!(s.n, n);
    let se = (rate / (n as f64 * duration)).sqrt();
    assert!(
        (s.mean_rate_hz - rate).abs() < 4.0 * se,
        "rate {}",
        s.mean_rate_hz
    );
    assert!((s.cv_isi.mean - 1.0).abs() < 0.05, "CV {}", s.cv_isi.mean);
    assert_eq!(s.cv_isi.neurons, n);
    assert!((s.cv2.mean - 1.0).abs() < 0.05, "CV2 {}", s.cv2.mean);
    assert!((s.lv.mean - 1.0).abs() < 0.05, "LV {}", s.lv.mean);
    // var/mean of n Poisson counts: standard error about sqrt(2 / n) = 0.07.
    assert!((s.fano - 1.0).abs() < 0.25, "Fano {}", s.fano);
    // 10,000 bins of 5 ms: one pair's coefficient has SD 0.01, the mean of 1000 pairs 3e-4.
    assert_eq!(s.pairs_sampled, 1000);
    assert!(
        s.correlation.mean.abs() < 0.003,
        "corr {}",
        s.correlation.mean
    );
    assert!(
        (s.correlation.sd - 0.01).abs() < 0.003,
        "{}",
        s.correlation.sd
    );
    let chi = s.synchrony_chi * (n as f64).sqrt();
    assert!((chi - 1.0).abs() < 0.1, "chi sqrt(n) {chi}");
    // The histogram: whole 5 ms bins, averaging to the mean rate.
    assert_eq!(s.rate_hz.len(), 10_000);
    let hist_mean = s.rate_hz.iter().sum::<f64>() / s.rate_hz.len() as f64;
    assert!((hist_mean - s.mean_rate_hz).abs() < 1e-9 * rate);
    // Population Fano of independent Poisson trains is 1 as well.
    assert!(
        (s.population_fano - 1.0).abs() < 0.05,
        "{}",
        s.population_fano
    );
}

/// Regular trains (period 100 ms, each neuron its own phase): CV, CV2 and LV 0, Fano 0.
#[test]
fn regular_trains_have_zero_variability() {
    let trains: Vec<Vec<f64>> = (0..20)
        .map(|i| (0..50).map(|k| 0.003 * i as f64 + 0.1 * k as f64).collect())
        .collect();
    let dir = write_trace("regular", 5.0, &[("R", &trains)]);
    let s = &analyze(&dir)[0];
    assert!((s.mean_rate_hz - 10.0).abs() < 1e-12);
    assert!(s.rate_sd_hz.abs() < 1e-12);
    assert!(s.cv_isi.mean.abs() < 1e-9, "{}", s.cv_isi.mean);
    assert!(s.cv2.mean.abs() < 1e-9, "{}", s.cv2.mean);
    assert!(s.lv.mean.abs() < 1e-9, "{}", s.lv.mean);
    assert!(s.fano.abs() < 1e-12);
    assert_eq!(s.silent_fraction, 0.0);
}

/// Every neuron fires the same Poisson train: correlation 1 for every pair, synchrony 1. Two
/// populations in one trace are analysed separately, in manifest order.
#[test]
fn identical_trains_are_fully_correlated() {
    let mut rng = Rng(3);
    let one = poisson_train(&mut rng, 30.0, 10.0);
    let same = vec![one; 50];
    let mut rng = Rng(4);
    let independent: Vec<Vec<f64>> = (0..50)
        .map(|_| poisson_train(&mut rng, 30.0, 10.0))
        .collect();
    let dir = write_trace("identical", 10.0, &[("S", &same), ("P", &independent)]);
    let stats = analyze(&dir);
    assert_eq!(stats[0].population, "S");
    assert_eq!(stats[1].population, "P");
    let s = &stats[0];
    // 50 neurons have 1225 pairs: more than the sample, so 1000 distinct pairs are drawn.
    assert_eq!(s.pairs_sampled, 1000);
    assert!(
        (s.correlation.mean - 1.0).abs() < 1e-12,
        "{}",
        s.correlation.mean
    );
    assert!((s.synchrony_chi - 1.0).abs() < 1e-12, "{}", s.synchrony_chi);
    assert!(s.fano.abs() < 1e-12, "equal counts: Fano 0");
    assert!(stats[1].correlation.mean.abs() < 0.01);
    // Fewer pairs than asked for: all of them.
    let opts = SpikeOptions {
        pairs: 5000,
        ..Default::default()
    };
    let all = analyze_trace(&Trace::open(&dir).unwrap(), None, &opts).unwrap();
    assert_eq!(all[0].pairs_sampled, 1225);
}

/// Silent neurons count in the rates, not in CV, CV2, LV or correlations; a silent population
/// gives undefined (null) statistics, not a panic.
#[test]
fn silent_neurons_and_populations() {
    let mut trains = vec![Vec::new(); 4];
    trains[0] = vec![0.1, 0.2, 0.4];
    let dir = write_trace(
        "silent",
        1.0,
        &[("A", &trains), ("Z", &[Vec::new(), Vec::new()])],
    );
    let trace = Trace::open(&dir).unwrap();
    let stats = analyze_trace(&trace, None, &SpikeOptions::default()).unwrap();
    let a = &stats[0];
    assert_eq!(a.silent_fraction, 0.75);
    assert!((a.mean_rate_hz - 0.75).abs() < 1e-12);
    assert_eq!(a.cv_isi.neurons, 1);
    assert_eq!(a.lv.neurons, 1);
    // ISIs 0.1, 0.2: CV2 = 2 * 0.1 / 0.3, LV = 3 * (0.1 / 0.3)^2.
    assert!((a.cv2.mean - 2.0 / 3.0).abs() < 1e-9);
    assert!((a.lv.mean - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(
        a.correlation.neurons, 0,
        "pairs with a silent neuron are undefined"
    );
    let z = &stats[1];
    assert!(z.cv_isi.mean.is_nan() && z.fano.is_nan() && z.synchrony_chi.is_nan());
    let doc = neurograph_analysis::spikes::to_json(&trace, &stats);
    assert_eq!(doc["populations"][1]["fano"], Value::Null);
    assert_eq!(doc["populations"][1]["cv_isi"]["neurons"], 0);
}

/// Bad input of every kind: the typed error names the file or the record.
#[test]
fn bad_traces_are_typed_errors_naming_the_problem() {
    let trains = vec![vec![0.1, 0.5], vec![0.3]];
    let fresh = |name: &str| write_trace(name, 1.0, &[("E", &trains)]);
    let err = |dir: &Path| {
        Trace::open(dir)
            .and_then(|t| analyze_trace(&t, None, &SpikeOptions::default()))
            .unwrap_err()
    };

    let d = fresh("corrupt");
    std::fs::write(d.join("manifest.json"), "{\"format\": \"neurograph-tr").unwrap();
    let e = err(&d);
    assert!(matches!(e, TraceError::Manifest { .. }), "{e:?}");
    assert!(e.to_string().contains("manifest.json"), "{e}");

    let d = fresh("version");
    let mut m = common::manifest(&d);
    m["format_version"] = json!(2);
    std::fs::write(d.join("manifest.json"), m.to_string()).unwrap();
    let e = err(&d);
    assert!(matches!(e, TraceError::Version { .. }), "{e:?}");
    assert!(e.to_string().contains("format_version 2"), "{e}");

    let d = fresh("format");
    let mut m = common::manifest(&d);
    m["format"] = json!("something-else");
    std::fs::write(d.join("manifest.json"), m.to_string()).unwrap();
    assert!(matches!(err(&d), TraceError::Format { .. }));

    let d = fresh("missing-npy");
    std::fs::remove_file(d.join("E.spikes.t.npy")).unwrap();
    let e = err(&d);
    assert!(matches!(e, TraceError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("E.spikes.t.npy"), "{e}");

    let d = fresh("malformed-npy");
    std::fs::write(d.join("E.spikes.i.npy"), b"\x93NUMPY\x01\x00garbage").unwrap();
    let e = err(&d);
    assert!(matches!(e, TraceError::Npy { .. }), "{e:?}");
    assert!(e.to_string().contains("E.spikes.i.npy"), "{e}");

    let d = fresh("lengths");
    npy::write(&d.join("E.spikes.i.npy"), &[0.0], &[1], Dtype::U32).unwrap();
    let e = err(&d);
    assert!(e.to_string().contains("1 indices for 3 spike times"), "{e}");

    let d = fresh("escape");
    let mut m = common::manifest(&d);
    m["records"][0]["times"]["file"] = json!("../E.spikes.t.npy");
    std::fs::write(d.join("manifest.json"), m.to_string()).unwrap();
    assert!(matches!(err(&d), TraceError::Manifest { .. }));

    for size in [json!(1), json!(1e15), json!("2")] {
        let d = fresh("size");
        let mut m = common::manifest(&d);
        m["records"][0]["size"] = size;
        std::fs::write(d.join("manifest.json"), m.to_string()).unwrap();
        let e = err(&d);
        assert!(e.to_string().contains("`size`"), "{e}");
    }

    let d = fresh("missing-record");
    let t = Trace::open(&d).unwrap();
    let e = analyze_trace(&t, Some(&["I".to_string()]), &SpikeOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the trace has no spike record of population `I`; add `record I.spikes`"
    );
    assert!(matches!(
        t.state("E.v"),
        Err(TraceError::MissingState { .. })
    ));

    let d = write_trace("no-records", 1.0, &[]);
    assert!(matches!(err(&d), TraceError::NoSpikeRecords));

    let d = fresh("long-bin");
    let opts = SpikeOptions {
        bin_s: 2.0,
        ..Default::default()
    };
    let e = analyze_trace(&Trace::open(&d).unwrap(), None, &opts).unwrap_err();
    assert!(e.to_string().contains("longer than the trace"), "{e}");
}

/// The command line: exit status 1 and one `error: ...` line naming the problem, no panic.
#[test]
fn cli_errors_exit_1() {
    let trains = vec![vec![0.1, 0.5], vec![0.3]];
    let d = write_trace("cli-errors", 1.0, &[("E", &trains)]);
    let dir = d.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--population", "X"], "add `record X.spikes`"),
        (vec!["--bin", "5 mV"], "--bin: `5 mV` is not a time"),
        (vec!["--bin", "0 ms"], "bin width must be positive"),
    ];
    for (extra, expect) in cases {
        common::expect_error(&common::analyze_args(&d, "spikes", &extra), expect);
    }
    std::fs::write(d.join("manifest.json"), "not json").unwrap();
    common::expect_error(
        &["analyze", dir, "spikes"],
        "manifest.json: not a valid trace manifest",
    );
    common::expect_error(
        &["analyze", "no/such/trace", "spikes"],
        "no/such/trace/manifest.json",
    );
}

/// `neurograph run specs/cuba.ng --duration 1s`, then `analyze ... spikes --json`: the counts
/// and rates agree with the run's own summary, the ISI CV lies in the band of the Brian2
/// reference runs (about 0.45), the JSON has every documented field.
#[test]
fn cuba_run_analysed_from_the_command_line() {
    let dir = common::temp_dir("analyze", "cuba");
    let trace = dir.join("trace");
    let json_path = dir.join("spikes.json");
    let run = common::neurograph_ok(&[
        "run",
        "specs/cuba.ng",
        "--duration",
        "1s",
        "--out",
        trace.to_str().unwrap(),
    ]);
    let summary = String::from_utf8_lossy(&run.stdout).into_owned();
    let out = common::analyze_ok(
        &trace,
        "spikes",
        &["--bin", "5ms", "--json", json_path.to_str().unwrap()],
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("population"), "{table}");
    let doc = common::read_json(&json_path);
    assert_eq!(doc["format"], "neurograph-analysis-spikes");
    assert_eq!(doc["model"], "cuba");
    assert_eq!(doc["duration_s"], 1.0);
    let reference = common::read_json(&common::root().join("tests/data/brian2.json"));
    let seeds = reference["networks"]["cuba"]["per_seed"]
        .as_array()
        .unwrap();
    let band = |key: &str| {
        let v: Vec<f64> = seeds.iter().map(|s| s[key].as_f64().unwrap()).collect();
        (
            v.iter().cloned().fold(f64::INFINITY, f64::min),
            v.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        )
    };
    let (cv_lo, cv_hi) = band("isi_cv_mean");
    let (rate_lo, rate_hi) = band("mean_rate_hz");
    let pops = doc["populations"].as_array().unwrap();
    assert_eq!(pops.len(), 2);
    for (p, name, n) in [(&pops[0], "E", 3200), (&pops[1], "I", 800)] {
        assert_eq!(p["population"], name);
        assert_eq!(p["n"], n);
        // The run's summary line: `  E   3200 cells   17005 spikes   5.314 Hz`.
        let line = summary
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no summary line for {name}:\n{summary}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        let spikes: u64 = words[3].parse().unwrap();
        let rate: f64 = words[5].parse().unwrap();
        assert_eq!(p["spikes"].as_u64().unwrap(), spikes, "{line}");
        let r = p["mean_rate_hz"].as_f64().unwrap();
        assert!((r - rate).abs() < 0.0005 + 1e-9, "{r} vs {line}");
        // Loosely within the Brian2 bands: the networks differ in their random draws.
        assert!(r > 0.8 * rate_lo && r < 1.2 * rate_hi, "rate {r}");
        let cv = p["cv_isi"]["mean"].as_f64().unwrap();
        assert!(
            cv > cv_lo - 0.05 && cv < cv_hi + 0.05,
            "CV {cv} vs [{cv_lo}, {cv_hi}]"
        );
        for key in [
            "duration_s",
            "rate_sd_hz",
            "silent_fraction",
            "fano",
            "population_fano",
            "synchrony_chi",
            "bin_s",
        ] {
            assert!(p[key].is_number(), "{key}: {}", p[key]);
        }
        for key in ["cv_isi", "cv2", "lv"] {
            assert!(p[key]["mean"].is_number() && p[key]["sd"].is_number());
            assert!(p[key]["neurons"].as_u64().unwrap() > 100);
        }
        assert!(p["correlation"]["mean"].as_f64().unwrap().abs() < 0.05);
        assert_eq!(p["correlation"]["pairs_sampled"], 1000);
        assert_eq!(p["rate_hz"].as_array().unwrap().len(), 200);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
