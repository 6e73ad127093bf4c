//! `neurograph analyze TRACE hmm-glm`: the covariates and ground truth read from a run of
//! `specs/hmm_glm.ng` reproduce the rate the run recorded (so the model fitted is the model
//! that generated); a fit from the command line of sequences drawn from a known HMM-GLM,
//! written as `seed-N` trace directories, recovers the hidden states (accuracy ≥ 0.9), the
//! edge types and the held-out likelihood of the true parameters; bad input is an error naming
//! the directory, record or flag (exit status 1, no panic).

mod common;

use std::path::{Path, PathBuf};

use neurograph_analysis::hmm_glm::{self, LoadOptions, Params, Sequence};
use neurograph_analysis::trace::{Trace, TraceError};
use neurograph_runtime::npy::{self, Dtype};
use serde_json::json;

use common::Rng;

/// A random HMM-GLM like the benchmark's: per pair a type prior, per state a type drawn from
/// it (inhibitory, none, excitatory) and a strength `log(1 + 3U)`; biases in ±0.05.
fn random_model(rng: &mut Rng, states: usize, units: usize) -> Params {
    let mut p = Params::new(states, units);
    p.initial = vec![1.0 / states as f64; states];
    for b in &mut p.bias {
        *b = 0.1 * (rng.uniform() - 0.5);
    }
    for n in 0..units {
        for pre in (0..units).filter(|&j| j != n) {
            let (p_inh, p_exc) = (0.3 * rng.uniform(), 0.3 * rng.uniform());
            for s in 0..states {
                let u = rng.uniform();
                let sign = if u < p_inh {
                    -1.0
                } else if u > 1.0 - p_exc {
                    1.0
                } else {
                    0.0
                };
                p.weights[(s * units + n) * units + pre] = sign * (1.0 + 3.0 * rng.uniform()).ln();
            }
        }
    }
    p
}

/// Write one sequence as a trace directory the way a run of hmm_glm.ng does: `Units.x`
/// (bins × units), `regime.brain`, `W.w at end` (one row per state) and `W.edges`.
fn write_trace(dir: &Path, seq: &Sequence, truth: &Params) {
    std::fs::create_dir_all(dir).unwrap();
    let (u, s_n, bins) = (truth.units, truth.states, seq.bins);
    let times: Vec<f64> = (1..=bins).map(|k| k as f64 * 1e-3).collect();
    let w = |name: &str, data: &[f64], shape: &[usize], dtype: Dtype| {
        npy::write(&dir.join(name), data, shape, dtype).unwrap();
    };
    w("Units.x.npy", &seq.counts, &[bins, u], Dtype::F64);
    w("Units.x.t.npy", &times, &[bins], Dtype::F64);
    let z: Vec<f64> = seq
        .states
        .as_ref()
        .unwrap()
        .iter()
        .map(|&s| s as f64)
        .collect();
    w("regime.brain.npy", &z, &[bins], Dtype::I64);
    w("regime.brain.t.npy", &times, &[bins], Dtype::F64);
    let (mut pre, mut post, mut ww) = (Vec::new(), Vec::new(), vec![Vec::new(); s_n]);
    for i in 0..u {
        for j in (0..u).filter(|&j| j != i) {
            pre.push(i as f64);
            post.push(j as f64);
            for (s, row) in ww.iter_mut().enumerate() {
                row.push(truth.w(s, j, i));
            }
        }
    }
    let syn = pre.len();
    w("W.w.npy", &ww.concat(), &[s_n, syn], Dtype::F64);
    w(
        "W.w.t.npy",
        &vec![bins as f64 * 1e-3; s_n],
        &[s_n],
        Dtype::F64,
    );
    w("W.edges.pre.npy", &pre, &[syn], Dtype::U32);
    w("W.edges.post.npy", &post, &[syn], Dtype::U32);
    let part = json!([{"node": "Units", "offset": 0, "size": u, "start": 0}]);
    let manifest = json!({
        "format": "neurograph-trace", "format_version": 1, "model": "hmm_glm", "seed": 1,
        "dt_s": 1e-3, "duration_s": bins as f64 * 1e-3, "status": "complete",
        "records": [
            {"kind": "state", "name": "Units.x", "unit": "1", "at_end": false,
             "values": {"file": "Units.x.npy", "shape": [bins, u], "dtype": "float64"},
             "times": {"file": "Units.x.t.npy", "shape": [bins], "unit": "s"}},
            {"kind": "regime", "name": "regime.brain", "regime": "brain",
             "states": (0..s_n).map(|s| format!("s{}", s + 1)).collect::<Vec<_>>(),
             "values": {"file": "regime.brain.npy", "shape": [bins], "dtype": "int64"},
             "times": {"file": "regime.brain.t.npy", "shape": [bins], "unit": "s"}},
            {"kind": "state", "name": "W.w", "unit": "1", "at_end": true,
             "values": {"file": "W.w.npy", "shape": [s_n, syn], "dtype": "float64"},
             "times": {"file": "W.w.t.npy", "shape": [s_n], "unit": "s"}},
            {"kind": "edges", "name": "W.edges", "projection": "W", "n_pre": u, "n_post": u,
             "pre_parts": part, "post_parts": part, "synapses": syn,
             "pre": {"file": "W.edges.pre.npy", "shape": [syn], "dtype": "uint32"},
             "post": {"file": "W.edges.post.npy", "shape": [syn], "dtype": "uint32"}},
        ],
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
}

/// A directory of `seed-N` traces, one sequence each, drawn from `truth`.
fn write_experiment(name: &str, truth: &Params, sequences: usize, bins: usize) -> PathBuf {
    let d = common::temp_dir("hmm_glm", name);
    let seqs = hmm_glm::simulate(truth, &vec![bins; sequences], 11);
    for (k, seq) in seqs.iter().enumerate() {
        write_trace(&d.join(format!("seed-{}", k + 1)), seq, truth);
    }
    d
}

#[test]
fn spec_covariates_and_truth_reproduce_the_recorded_rate() {
    // logit(rate) - Σ W_true[z_t](n ← n') h_{t,n'} is the unit's bias in every bin: the
    // covariate, its timing (bin t reads bins up to t - 1) and the orientation of the true
    // weights are those the spec generates with.
    let d = common::temp_dir("hmm_glm", "spec");
    let out = d.join("run");
    let o = out.to_str().unwrap();
    common::neurograph_ok(&[
        "run",
        "specs/hmm_glm.ng",
        "--out",
        o,
        "--quiet",
        "--seed",
        "5",
        "--duration",
        "300ms",
    ]);
    let data = hmm_glm::load(
        &out,
        &LoadOptions {
            length: 0,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        (data.units, data.sequences.len(), data.true_states),
        (20, 1, Some(5))
    );
    let seq = &data.sequences[0];
    assert_eq!(seq.bins, 300);
    let w = data.true_weights.as_ref().unwrap();
    let nonzero = w.iter().filter(|v| **v != 0.0).count();
    assert!(nonzero > 50, "{nonzero} true couplings");
    let rate = Trace::open(&out).unwrap().state("Units.rate").unwrap();
    let z = seq.states.as_ref().unwrap();
    let u = 20;
    let mut biggest_drive: f64 = 0.0;
    for n in 0..u {
        let mut bias = None;
        for t in 0..seq.bins {
            let f = (rate.values[t * u + n] - hmm_glm::EPS) / (1.0 - hmm_glm::EPS);
            let logit = (f / (1.0 - f)).ln();
            let drive: f64 = (0..u)
                .map(|j| w[(z[t] * u + n) * u + j] * seq.cov[t * u + j])
                .sum();
            biggest_drive = biggest_drive.max(drive.abs());
            let b = logit - drive;
            match bias {
                None => bias = Some(b),
                Some(b0) => assert!((b - b0).abs() < 1e-6, "unit {n}, bin {t}: {b} vs {b0}"),
            }
        }
        assert!(bias.unwrap().abs() <= 0.05 + 1e-9);
    }
    assert!(biggest_drive > 0.5, "{biggest_drive}");
    // Cut into sequences of 120 bins: the same rows, the covariate carried across the cuts
    // (it is the recording's, not restarted at zero), the remainder left out.
    let cut = hmm_glm::load(
        &out,
        &LoadOptions {
            length: 120,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(cut.sequences.len(), 2);
    let second = &cut.sequences[1];
    assert_eq!(second.bins, 120);
    assert_eq!(second.counts[..], seq.counts[120 * u..240 * u]);
    assert_eq!(second.cov[..], seq.cov[120 * u..240 * u]);
    assert!(second.cov[..u].iter().any(|&h| h > 0.0));
    assert_eq!(second.states.as_deref(), Some(&z[120..240]));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn fit_recovers_the_states_and_edges_of_a_known_model() {
    let mut rng = Rng(2024);
    let (states, units) = (3, 10);
    let truth = random_model(&mut rng, states, units);
    let d = write_experiment("fit", &truth, 6, 2000);
    let json_path = d.join("fit.json");
    let out = common::neurograph_ok(&[
        "analyze",
        d.to_str().unwrap(),
        "hmm-glm",
        "--states",
        "3",
        "--train",
        "4",
        "--test",
        "2",
        "--length",
        "0",
        "--iterations",
        "30",
        "--quiet",
        "--json",
        json_path.to_str().unwrap(),
    ]);
    let table = String::from_utf8_lossy(&out.stdout);
    eprintln!("{table}");
    assert!(table.contains("6 trace(s), 10 units, 3 states, 4 training + 2 test sequences"));
    let v = common::read_json(&json_path);
    assert_eq!(v["format"], "neurograph-analysis-hmm-glm");
    // The held-out likelihood of the true parameters, for comparison.
    let data = hmm_glm::load(
        &d,
        &LoadOptions {
            length: 0,
            ..Default::default()
        },
    )
    .unwrap();
    let test: Vec<&Sequence> = data.sequences[4..].iter().collect();
    let bins: usize = test.iter().map(|s| s.bins).sum();
    let true_ll = test
        .iter()
        .map(|s| hmm_glm::decode(&truth, s).1)
        .sum::<f64>()
        / bins as f64;
    let priors = v["priors"].as_array().unwrap();
    assert_eq!(priors.len(), 3);
    for p in priors {
        let name = p["prior"].as_str().unwrap();
        let acc = p["test_state_accuracy"].as_f64().unwrap();
        let ll = p["test_loglik_per_bin"].as_f64().unwrap();
        let mse = p["weight_mse"].as_f64().unwrap();
        let edge_f1 = p["edge_f1"].as_f64().unwrap();
        eprintln!("{name}: acc {acc} mse {mse} f1 {edge_f1} ll {ll} (true {true_ll})");
        assert!(acc >= 0.9, "{name}: state accuracy {acc}");
        // Within 0.05 nats per bin (of about -9.5) of the true model on unseen data.
        assert!((ll - true_ll).abs() < 0.05, "{name}: {ll} vs {true_ll}");
        assert!(mse < 0.1, "{name}: weight MSE {mse}");
        assert!(edge_f1 > 0.6, "{name}: edge F1 {edge_f1}");
        let trace = p["loglik_trace"].as_array().unwrap();
        assert!(!trace.is_empty());
        // Without a prior, EM never decreases the training likelihood (up to rounding); with
        // one it raises the posterior instead.
        if name != "naive" {
            continue;
        }
        assert!(trace.len() >= 3, "{name}: {} EM iterations", trace.len());
        for w in trace.windows(2) {
            let (a, b) = (w[0].as_f64().unwrap(), w[1].as_f64().unwrap());
            assert!(b >= a - 1e-6 * a.abs(), "{name}: {a} -> {b}");
        }
    }
    // The one-hot prior's exact zeros bring the weights closer to the truth than free ones.
    let mse = |k: usize| priors[k]["weight_mse"].as_f64().unwrap();
    assert!(mse(2) < mse(0), "one-hot {} vs naive {}", mse(2), mse(0));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_input_is_an_error_naming_the_directory_record_or_flag() {
    let mut rng = Rng(7);
    let truth = random_model(&mut rng, 2, 3);
    let d = write_experiment("bad", &truth, 2, 50);
    let dir = d.to_str().unwrap();
    let missing = d.join("nothing-here");
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    // A third seed from another model: the sequences do not share one connectome.
    let mut other = truth.clone();
    other.weights[1] += 0.5;
    let mixed = common::temp_dir("hmm_glm", "mixed");
    let seqs = hmm_glm::simulate(&truth, &[50, 50], 3);
    write_trace(&mixed.join("seed-1"), &seqs[0], &truth);
    write_trace(&mixed.join("seed-2"), &seqs[1], &other);
    // Counts that are not counts.
    let frac = common::temp_dir("hmm_glm", "fraction");
    let mut bad = seqs[0].clone();
    bad.counts[4] = 0.5;
    write_trace(&frac, &bad, &truth);
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec![missing.to_str().unwrap()],
            format!("{}: cannot read", missing.display()),
        ),
        (
            vec![empty.to_str().unwrap()],
            "neither a trace directory".into(),
        ),
        (
            vec![dir, "--counts", "Units.y"],
            "no state record `Units.y`".into(),
        ),
        (
            vec![dir, "--length", "0"],
            "fewer than --train 30 + --test 20".into(),
        ),
        (
            vec![
                dir, "--length", "0", "--train", "1", "--test", "1", "--states", "0",
            ],
            "--states must be at least 1".into(),
        ),
        (
            vec![dir, "--length", "0", "--train", "0"],
            "--train must be at least 1".into(),
        ),
        (
            vec![dir, "--iterations", "0"],
            "--iterations must be at least 1".into(),
        ),
        (
            vec![mixed.to_str().unwrap(), "--length", "0"],
            "differ from those of".into(),
        ),
        (
            vec![frac.to_str().unwrap(), "--length", "0"],
            "record `Units.x`: value 0.5 (row 1, unit 1) is not a count".into(),
        ),
    ];
    for (args, expect) in cases {
        let full = common::analyze_args(Path::new(args[0]), "hmm-glm", &args[1..]);
        common::expect_error(&full, &expect);
    }
    // A corrupt array names its file.
    std::fs::write(d.join("seed-2/Units.x.npy"), b"not an npy file").unwrap();
    let e = hmm_glm::load(&d, &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, TraceError::Npy { .. }), "{e:?}");
    assert!(e.to_string().contains("Units.x.npy"), "{e}");
    // An unknown prior is a usage error (exit status 2).
    common::expect_usage_error(
        &["analyze", dir, "hmm-glm", "--prior", "laplace"],
        "invalid value 'laplace' for '--prior",
    );
    for x in [&d, &mixed, &frac] {
        let _ = std::fs::remove_dir_all(x);
    }
}
