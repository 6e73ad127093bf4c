//! `neurograph analyze TRACE coverage --reference REF`: FakeSpotter's neuron coverage over
//! runs of a small spec whose input switches between two classes by `--set cls=0|1` (drive to
//! one half of the input population or the other, Poisson-like noise, several seeds per class).
//! Known answers: the thresholds are the mean rates of the reference runs, computed here from
//! the spike records; the coverage vectors of the two classes are separable (leave-one-out
//! nearest-centroid accuracy 1, computed here from the pass's JSON). Bad input is an error
//! naming the trace or record.

mod common;

use std::path::{Path, PathBuf};

use neurograph_analysis::trace::Trace;
use serde_json::Value;

/// Input layer `In`: neurons of the driven half fire at `hi`, the others at `lo`; which half
/// is driven is the class `cls`. Hidden layer `Hid`: leaky units fed mostly by one half each.
const SPEC: &str = r#"
model classes
param cls = 0
param hi = 60 Hz
param lo = 10 Hz
neuron Src {
  state r: Hz = 0 Hz
  r <- if(cls < 0.5, if(i < N / 2, hi, lo), if(i < N / 2, lo, hi))
  spike with probability r * dt
}
neuron LIF {
  state v: 1 = 0
  dv/dt = -v / (10 ms)
  spike when v > 1 { v = 0 }
}
synapse Exc { on pre { post.v += 0.4 } }
population In = Src[40]
population Hid = LIF[20]
project In -> Hid via Exc { connect bernoulli(if(floor(i / 20) == floor(j / 10), 0.5, 0.05)) }
record In.spikes, Hid.spikes, Hid.v every 1 ms
run { dt = 1 ms; duration = 1 s; seed = 1 }
"#;

fn run(spec: &Path, out: &Path, seed: u64, cls: u8) {
    common::neurograph_ok(&[
        "run",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--seed",
        &seed.to_string(),
        "--set",
        &format!("cls={cls}"),
    ]);
}

/// References: seeds 1, 2 of each class in `refs/`; inputs: seeds 3–6 of each class in
/// `inputs/c{cls}-s{seed}`.
fn setup(name: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let dir = common::temp_dir("coverage", name);
    let spec = dir.join("classes.ng");
    std::fs::write(&spec, SPEC).unwrap();
    let (refs, inputs) = (dir.join("refs"), dir.join("inputs"));
    for cls in 0..2 {
        for seed in 1..=2 {
            run(&spec, &refs.join(format!("c{cls}-s{seed}")), seed, cls);
        }
        for seed in 3..=6 {
            run(&spec, &inputs.join(format!("c{cls}-s{seed}")), seed, cls);
        }
    }
    (dir, spec, refs, inputs)
}

fn coverage_json(args: &[&str], json: &Path) -> Value {
    let mut a = args.to_vec();
    a.extend(["--json", json.to_str().unwrap()]);
    common::neurograph_ok(&a);
    common::read_json(json)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Leave-one-out nearest-centroid accuracy of `vectors` with `labels` (0 or 1), and the
/// smallest margin (distance to the other centroid minus distance to its own).
fn loo_nearest_centroid(vectors: &[Vec<f64>], labels: &[usize]) -> (f64, f64) {
    let dist = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let mut correct = 0;
    let mut margin = f64::INFINITY;
    for k in 0..vectors.len() {
        let mut centroids = vec![vec![0.0; vectors[k].len()]; 2];
        let mut counts = [0usize; 2];
        for (j, v) in vectors.iter().enumerate() {
            if j == k {
                continue;
            }
            counts[labels[j]] += 1;
            for (c, x) in centroids[labels[j]].iter_mut().zip(v) {
                *c += x;
            }
        }
        for (c, n) in centroids.iter_mut().zip(counts) {
            c.iter_mut().for_each(|x| *x /= n as f64);
        }
        let own = dist(&vectors[k], &centroids[labels[k]]);
        let other = dist(&vectors[k], &centroids[1 - labels[k]]);
        if own < other {
            correct += 1;
        }
        margin = margin.min(other - own);
    }
    (correct as f64 / vectors.len() as f64, margin)
}

#[test]
fn two_input_classes_give_separable_coverage_vectors() {
    let (dir, _spec, refs, inputs) = setup("classes");
    let json = dir.join("cov.json");
    let d = coverage_json(
        &[
            "analyze",
            inputs.to_str().unwrap(),
            "coverage",
            "--reference",
            refs.to_str().unwrap(),
        ],
        &json,
    );
    assert_eq!(d["format"], "neurograph-analysis-coverage");
    assert_eq!(d["format_version"], 1);
    // Layers: every spike record, in manifest order.
    let layers = d["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["variable"], "In.spikes");
    assert_eq!(layers[1]["variable"], "Hid.spikes");
    assert_eq!(layers[1]["offset"], 40);
    // Thresholds: total spikes of the reference runs over (neurons x duration x runs).
    let mut ref_dirs: Vec<PathBuf> = Vec::new();
    for c in 0..2 {
        for s in 1..=2 {
            ref_dirs.push(refs.join(format!("c{c}-s{s}")));
        }
    }
    assert_eq!(d["references"].as_array().unwrap().len(), 4);
    for (l, pop, n) in [(0, "In", 40.0), (1, "Hid", 20.0)] {
        let spikes: usize = ref_dirs
            .iter()
            .map(|r| Trace::open(r).unwrap().spikes(pop).unwrap().times.len())
            .sum();
        let want = spikes as f64 / (n * 1.0 * 4.0);
        let got = layers[l]["threshold"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "{pop}: {got} vs {want}");
    }
    // Inputs in natural order; the class is in the name.
    let ins = d["inputs"].as_array().unwrap();
    assert_eq!(ins.len(), 8);
    let mut vectors = Vec::new();
    let mut labels = Vec::new();
    for c in ins {
        let trace = c["trace"].as_str().unwrap();
        let label = usize::from(trace.contains("/c1-"));
        let v = floats(&c["vector"]);
        assert_eq!(v.len(), 60);
        // The vector is the indicator of activity above threshold, and the coverage its mean
        // per layer.
        let act = floats(&c["activity"]);
        for (k, (&x, &a)) in v.iter().zip(&act).enumerate() {
            let t = layers[usize::from(k >= 40)]["threshold"].as_f64().unwrap();
            assert_eq!(x, f64::from(u8::from(a > t)), "{trace} neuron {k}");
        }
        let cov = floats(&c["coverage"]);
        assert!((cov[0] - v[..40].iter().sum::<f64>() / 40.0).abs() < 1e-12);
        assert!((cov[1] - v[40..].iter().sum::<f64>() / 20.0).abs() < 1e-12);
        // The driven half of the input layer is the activated one.
        let (driven, other) = if label == 0 {
            (0..20, 20..40)
        } else {
            (20..40, 0..20)
        };
        assert!(v[driven].iter().sum::<f64>() >= 18.0, "{trace}: {v:?}");
        assert!(v[other].iter().sum::<f64>() <= 2.0, "{trace}: {v:?}");
        vectors.push(v);
        labels.push(label);
    }
    assert_eq!(labels, vec![0, 0, 0, 0, 1, 1, 1, 1]);
    let (acc, margin) = loo_nearest_centroid(&vectors, &labels);
    assert_eq!(acc, 1.0);
    assert!(margin > 1.0, "margin {margin}");
    // The hidden layer alone also separates the classes (its units are fed by one half).
    let hidden: Vec<Vec<f64>> = vectors.iter().map(|v| v[40..].to_vec()).collect();
    assert_eq!(loo_nearest_centroid(&hidden, &labels).0, 1.0);

    // A state variable's time-mean as the activity; one trace as the input.
    let one = inputs.join("c0-s3");
    let d = coverage_json(
        &[
            "analyze",
            one.to_str().unwrap(),
            "coverage",
            "--reference",
            refs.to_str().unwrap(),
            "--variable",
            "Hid.v",
        ],
        &json,
    );
    let st = Trace::open(&one).unwrap().state("Hid.v").unwrap();
    let act = floats(&d["inputs"][0]["activity"]);
    assert_eq!(act.len(), 20);
    for (e, a) in act.iter().enumerate() {
        let mean = (0..st.rows).map(|r| st.values[r * 20 + e]).sum::<f64>() / st.rows as f64;
        assert!((a - mean).abs() < 1e-12);
    }
    assert_eq!(d["layers"][0]["unit"], "1");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let dir = common::temp_dir("coverage", "errors");
    let spec = dir.join("classes.ng");
    std::fs::write(&spec, SPEC).unwrap();
    let a = dir.join("a");
    run(&spec, &a, 1, 0);
    // A network of another size.
    let small = dir.join("small.ng");
    std::fs::write(&small, SPEC.replace("Src[40]", "Src[30]")).unwrap();
    let b = dir.join("b");
    run(&small, &b, 1, 0);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    common::expect_error(
        &["analyze", a, "coverage", "--reference", b],
        &format!("{a}: `In.spikes` has 40 neurons, the first reference trace 30"),
    );
    common::expect_error(
        &[
            "analyze",
            a,
            "coverage",
            "--reference",
            a,
            "--variable",
            "Hid.w",
        ],
        "the trace has no state record `Hid.w`; add `record Hid.w`",
    );
    common::expect_error(
        &[
            "analyze",
            a,
            "coverage",
            "--reference",
            a,
            "--variable",
            "Out.spikes",
        ],
        "no spike record of population `Out`",
    );
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    common::expect_error(
        &[
            "analyze",
            a,
            "coverage",
            "--reference",
            empty.to_str().unwrap(),
        ],
        "empty: neither a trace directory nor a directory of traces",
    );
    common::expect_error(
        &[
            "analyze",
            a,
            "coverage",
            "--reference",
            dir.join("missing").to_str().unwrap(),
        ],
        "missing: cannot read",
    );
    // The reference set is required (a usage error).
    common::expect_usage_error(&["analyze", a, "coverage"], "--reference <DIR>");
    // A corrupt spike file of a reference is named.
    std::fs::write(Path::new(b).join("In.spikes.t.npy"), b"junk").unwrap();
    common::expect_error(
        &["analyze", a, "coverage", "--reference", b],
        "In.spikes.t.npy",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
