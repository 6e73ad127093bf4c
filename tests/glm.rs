//! `neurograph analyze TRACE glm`: the Poisson GLM recovers the weights of data simulated from
//! a known GLM (within their posterior SD), recovers the connectivity of `specs/glm_network.ng`
//! run from the command line (ROC AUC ≥ 0.9 against `record W.edges`, signs from `W.w`), ROC AUC
//! agrees with a direct count over all positive–negative pairs, and bad input is exit status 1
//! with `error: ...` naming the flag, record or file.

mod common;

use neurograph_analysis::glm::{basis, fit_target, roc_auc, BasisKind, Design, GlmOptions};

use common::Rng;

/// A Poisson draw (Knuth's product of uniforms; λ here is far below 1).
fn poisson(rng: &mut Rng, lambda: f64) -> u32 {
    let l = (-lambda).exp();
    let (mut k, mut p) = (0, 1.0);
    loop {
        p *= rng.uniform();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

/// Three neurons simulated from a known GLM with the pass's own basis (2 exponentials over 10
/// bins): the fit (no prior) finds every summed coupling weight within 4 posterior SDs (each
/// SD below 0.25), and the bias within 0.1.
#[test]
#[allow(clippy::needless_range_loop)] // i, j, k index the weight array as in the formula
fn irls_recovers_the_weights_of_a_simulated_glm() {
    let (n, nb, window, bins) = (3usize, 2usize, 10usize, 300_000usize);
    let phi = basis(BasisKind::Exponential, nb, window);
    let bias = [(0.05f64).ln(), (0.04f64).ln(), (0.03f64).ln()];
    // w[i][j][k]: target i, source j, basis k (self-history on the diagonal).
    let w = [
        [[-2.0, -0.5], [1.5, 0.5], [0.0, 0.0]],
        [[0.0, 0.0], [-1.0, 0.0], [-1.5, -1.0]],
        [[1.0, 0.5], [0.0, 0.0], [-0.5, 0.0]],
    ];
    let mut rng = Rng(7);
    let mut spikes: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut y = vec![vec![0u32; bins]; n];
    for t in 0..bins {
        for i in 0..n {
            let mut eta = bias[i];
            for j in 0..n {
                for d in 1..=window.min(t) {
                    let c = y[j][t - d];
                    if c > 0 {
                        for k in 0..nb {
                            eta += w[i][j][k] * phi[k][d - 1] * c as f64;
                        }
                    }
                }
            }
            let c = poisson(&mut rng, eta.exp());
            y[i][t] = c;
            for _ in 0..c {
                spikes[i].push(t as u32);
            }
        }
    }
    // The process stays in its low-rate regime (no runaway excitation).
    let most = y.iter().flatten().max().copied().unwrap();
    assert!(most <= 4, "a bin with {most} spikes");
    let design = Design::build(&spikes, bins, &phi);
    let opts = GlmOptions {
        l2: 0.0,
        ..Default::default()
    };
    for i in 0..n {
        let counts: Vec<(u32, f64)> = (0..bins)
            .filter(|&t| y[i][t] > 0)
            .map(|t| (t as u32, y[i][t] as f64))
            .collect();
        let fit = fit_target(&design, &counts, &opts);
        assert!(fit.converged, "target {i}: {fit:?}");
        assert!(
            (fit.bias - bias[i]).abs() < 0.1,
            "target {i}: bias {} vs {}",
            fit.bias,
            bias[i]
        );
        for j in 0..n {
            let truth: f64 = w[i][j].iter().sum();
            let got = fit.score(j, nb);
            let sd = fit.score_sd[j];
            assert!(sd > 0.0 && sd < 0.25, "target {i} source {j}: sd {sd}");
            assert!(
                (got - truth).abs() < 4.0 * sd,
                "target {i} source {j}: {got} vs {truth} (sd {sd})"
            );
        }
    }
}

/// The rank formula agrees with counting every (positive, negative) pair, ties one half.
#[test]
fn auc_equals_the_pair_count() {
    let mut rng = Rng(3);
    for case in 0..20 {
        // Scores on a coarse grid so that ties occur.
        let pos: Vec<f64> = (0..5 + case)
            .map(|_| (rng.uniform() * 6.0).floor())
            .collect();
        let neg: Vec<f64> = (0..7 + 2 * case)
            .map(|_| (rng.uniform() * 5.0).floor())
            .collect();
        let mut wins = 0.0;
        for p in &pos {
            for q in &neg {
                wins += if p > q {
                    1.0
                } else if p == q {
                    0.5
                } else {
                    0.0
                };
            }
        }
        let direct = wins / (pos.len() * neg.len()) as f64;
        assert!((roc_auc(&pos, &neg) - direct).abs() < 1e-12, "case {case}");
    }
}

/// The coupled point-process network, 30 s, run and analysed from the command line: the
/// recovered coupling ranks true edges above absent pairs (AUC ≥ 0.9) and has their signs.
#[test]
fn glm_recovers_the_connectivity_of_glm_network() {
    let dir = common::temp_dir("glm", "network");
    let trace = dir.join("trace");
    let json = dir.join("glm.json");
    common::neurograph_ok(&[
        "run",
        "specs/glm_network.ng",
        "--out",
        trace.to_str().unwrap(),
        "--duration",
        "30s",
        "--quiet",
    ]);
    let out = common::analyze_ok(&trace, "glm", &["--json", json.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ROC AUC"), "{text}");
    let doc = common::read_json(&json);
    assert_eq!(doc["format"], "neurograph-analysis-glm");
    assert_eq!(doc["format_version"], 1);
    let rec = &doc["recovery"];
    assert_eq!(rec["projections"][0], "W");
    assert_eq!(rec["weights_record"], "W.w");
    let (edges, absent) = (
        rec["true_edges"].as_u64().unwrap(),
        rec["absent_edges"].as_u64().unwrap(),
    );
    assert_eq!(edges + absent, 40 * 39, "{rec}");
    assert!(edges > 100, "{rec}");
    let auc = rec["auc"].as_f64().unwrap();
    eprintln!("AUC {auc} (README: `cargo test --test glm -- --nocapture`)");
    assert!(auc >= 0.9, "AUC {auc}\n{text}");
    assert!(rec["sign_accuracy"].as_f64().unwrap() >= 0.9, "{rec}");
    let targets = doc["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 40);
    assert!(targets.iter().all(|t| t["converged"] == true));
    // The baseline is 10 Hz; the fitted no-history rate is near it for most units.
    let near = targets
        .iter()
        .filter(|t| (t["rate_hz"].as_f64().unwrap() - 10.0).abs() < 5.0)
        .count();
    assert!(near >= 30, "{near} of 40 near 10 Hz");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad input: exit status 1, `error: ...` naming the flag, record or file; never a panic.
#[test]
fn glm_errors_name_the_problem() {
    let dir = common::temp_dir("glm", "errors");
    let trace = dir.join("trace");
    common::neurograph_ok(&[
        "run",
        "specs/glm_network.ng",
        "--out",
        trace.to_str().unwrap(),
        "--duration",
        "1s",
        "--quiet",
    ]);
    let t = trace.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--population", "E"],
            "no spike record of population `E`",
        ),
        (vec!["--population", "Units:30..50"], "has 40 neurons"),
        (vec!["--population", "Units:x"], "--population: `Units:x`"),
        (vec!["--basis", "gauss"], "--basis: `gauss`"),
        (vec!["--basis-count", "0"], "--basis-count"),
        (vec!["--window", "0.1ms"], "--window"),
        (vec!["--window", "5mV"], "--window"),
        (vec!["--l2=-1"], "--l2"),
        (vec!["--projection", "Q"], "add `record Q.edges`"),
    ];
    for (flags, want) in cases {
        common::expect_error(&common::analyze_args(&trace, "glm", &flags), want);
    }
    // A corrupt edge file names the file.
    std::fs::write(trace.join("W.edges.pre.npy"), b"garbage").unwrap();
    common::expect_error(&["analyze", t, "glm"], "W.edges.pre.npy");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A trace without an edge record: the fits are made, the AUC is absent (`null`) and the
/// table says why.
#[test]
fn without_edges_there_is_no_auc() {
    let dir = common::temp_dir("glm", "no-edges");
    let mut rng = Rng(12);
    // Five 20 Hz trains on a 1 ms grid.
    let trains: Vec<Vec<f64>> = (0..5)
        .map(|_| {
            common::poisson_train(&mut rng, 20.0, 5.0)
                .into_iter()
                .map(|t| (t * 1e3).floor() * 1e-3)
                .collect()
        })
        .collect();
    let spikes = common::train_spikes(&trains);
    common::write_spike_trace(&dir, "poisson", 5.0, &[("P", 5, spikes)]);
    let json = dir.join("glm.json");
    let out = common::analyze_ok(
        &dir,
        "glm",
        &["--basis", "exponential", "--json", json.to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no connectivity record"), "{text}");
    let doc = common::read_json(&json);
    assert!(doc["recovery"].is_null());
    assert_eq!(doc["basis"]["kind"], "exponential");
    let targets = doc["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 5);
    // Independent 20 Hz trains: every fit converges near 20 Hz with no coupling beyond noise.
    for t in targets {
        assert_eq!(t["converged"], true);
        assert!((t["rate_hz"].as_f64().unwrap() - 20.0).abs() < 6.0, "{t}");
        let scores = t["scores"].as_array().unwrap();
        let sds = t["score_sd"].as_array().unwrap();
        for (s, sd) in scores.iter().zip(sds) {
            assert!(
                s.as_f64().unwrap().abs() < 5.0 * sd.as_f64().unwrap(),
                "{t}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
