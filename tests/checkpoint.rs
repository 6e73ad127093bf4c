//! Checkpoint and resume: a run of 2T straight and a run of T, a checkpoint, a new process and
//! T more give the same trace, bit for bit, on networks that exercise state, plasticity,
//! delays and regimes; checkpoints from another model or version, damaged ones and foreign
//! files are refused with a message.

mod common;

use std::path::{Path, PathBuf};

use neurograph::{Model, Simulation};

use common::{manifest, neurograph};

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("ckpt", name)
}

/// Every array file of two traces is byte-identical, and there is at least one.
fn assert_same_trace(a: &Path, b: &Path) {
    let files = manifest(a)["files"].as_array().unwrap().clone();
    let mut arrays = 0;
    for f in &files {
        let f = f.as_str().unwrap();
        if f.ends_with(".npy") {
            let (x, y) = (
                std::fs::read(a.join(f)).unwrap(),
                std::fs::read(b.join(f)).unwrap(),
            );
            assert!(
                x == y,
                "{f} differs between {} and {}",
                a.display(),
                b.display()
            );
            arrays += 1;
        }
    }
    assert!(arrays > 0);
    let (ma, mb) = (manifest(a), manifest(b));
    for key in [
        "steps",
        "duration_s",
        "seed",
        "status",
        "records",
        "projections",
    ] {
        assert_eq!(ma[key], mb[key], "manifest field {key}");
    }
}

/// `seconds` straight, and `seconds / 2` + checkpoint + `resume` in a new process.
fn straight_and_resumed(spec: &str, seconds: f64, extra: &[&str]) {
    let tmp = temp_dir(spec.trim_end_matches(".ng"));
    let (full, split, ckpt) = (tmp.join("full"), tmp.join("split"), tmp.join("run.ckpt"));
    let path = format!("specs/{spec}");
    let total = format!("{seconds}s");
    let half = format!("{}s", seconds / 2.0);
    let mut args = vec!["run", &path, "--quiet", "--seed", "4", "--duration", &total];
    args.extend_from_slice(extra);
    args.extend(["--out", full.to_str().unwrap()]);
    common::neurograph_ok(&args);
    let mut args = vec!["run", &path, "--quiet", "--seed", "4", "--duration", &half];
    args.extend_from_slice(extra);
    args.extend([
        "--out",
        split.to_str().unwrap(),
        "--checkpoint",
        ckpt.to_str().unwrap(),
    ]);
    common::neurograph_ok(&args);
    common::neurograph_ok(&[
        "resume",
        ckpt.to_str().unwrap(),
        "--quiet",
        "--duration",
        &half,
        "--out",
        split.to_str().unwrap(),
    ]);
    assert_same_trace(&full, &split);
}

#[test]
fn cuba_resumed_in_a_new_process_is_bit_identical() {
    straight_and_resumed("cuba.ng", 1.0, &[]);
}

#[test]
fn stdp_resumed_in_a_new_process_is_bit_identical() {
    // Plastic weights, traces and Poisson inputs; the weights are recorded at the end.
    straight_and_resumed("stdp.ng", 1.0, &[]);
}

#[test]
fn hmm_glm_resumed_in_a_new_process_is_bit_identical() {
    // Regime switching, per-state weights and spike history.
    straight_and_resumed("hmm_glm.ng", 1.0, &[]);
}

#[test]
fn delays_resumed_in_a_new_process_are_bit_identical() {
    // Spikes in flight in the delay ring at the checkpoint.
    let text = std::fs::read_to_string(common::root().join("specs/cuba.ng"))
        .unwrap()
        .replace(
            "connect bernoulli(0.02) }",
            "connect bernoulli(0.02); delay = 1 ms + (i % 7) * 0.3 ms }",
        );
    assert_eq!(text.matches("delay = 1 ms").count(), 2, "cuba.ng changed");
    let model = Model::compile_text(&common::root().join("specs/cuba_delays.ng"), text).unwrap();
    let mut full = model.simulation().seed(2).build().unwrap();
    full.step(3000).unwrap();
    // Written on two threads (the delay ring split by post element between them), resumed on
    // one and on two.
    let mut first = model.simulation().seed(2).threads(2).build().unwrap();
    first.step(1503).unwrap();
    assert!(
        first.raw().split_deliveries > 0,
        "the delay ring was not split"
    );
    let bytes = first.snapshot();
    drop(first);
    for threads in [1, 2] {
        let mut second = Simulation::restore(&model, &bytes).unwrap();
        second.set_threads(threads);
        assert_eq!(second.steps(), 1503);
        second.step(1497).unwrap();
        same_cuba_state(&full, &second);
    }
}

fn same_cuba_state(full: &Simulation, second: &Simulation) {
    for (p, v) in [("E", "v"), ("E", "ge"), ("I", "gi")] {
        let (a, b) = (full.state(p, v).unwrap(), second.state(p, v).unwrap());
        assert!(
            a.iter()
                .zip(b.iter())
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{p}.{v}"
        );
    }
    assert_eq!(full.spikes("E").unwrap(), second.spikes("E").unwrap());
    assert_eq!(
        full.spike_count("I").unwrap(),
        second.spike_count("I").unwrap()
    );
}

#[test]
fn a_checkpoint_of_another_model_version_or_file_is_refused() {
    let cuba = Model::compile_file(&common::root().join("specs/cuba.ng")).unwrap();
    let coba = Model::compile_file(&common::root().join("specs/coba.ng")).unwrap();
    let mut sim = cuba.simulation().build().unwrap();
    sim.step(10).unwrap();
    let bytes = sim.snapshot();
    let msg = |r: Result<Simulation, neurograph::Error>| match r {
        Ok(_) => panic!("resumed"),
        Err(e) => e.to_string(),
    };
    let err = msg(Simulation::restore(&coba, &bytes));
    assert!(err.contains("another model"), "{err}");
    let err = msg(Simulation::restore(&cuba, b"hello, world"));
    assert!(err.contains("not a neurograph checkpoint"), "{err}");
    let err = msg(Simulation::restore(&cuba, &bytes[..bytes.len() / 2]));
    assert!(err.contains("damaged or truncated"), "{err}");
    // Another version: the version string follows the 8 magic bytes and its length.
    let mut other = bytes.clone();
    let version = env!("CARGO_PKG_VERSION").as_bytes();
    let at = 16;
    assert_eq!(&other[at..at + version.len()], version);
    other[at] = b'9';
    let err = msg(Simulation::restore(&cuba, &other));
    assert!(err.contains("written by neurograph 9"), "{err}");
    // The CLI says which file.
    let tmp = temp_dir("refused");
    std::fs::write(tmp.join("x.ckpt"), b"not a checkpoint at all").unwrap();
    let r = neurograph(&["resume", tmp.join("x.ckpt").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("x.ckpt") && stderr.contains("not a neurograph checkpoint"),
        "{stderr}"
    );
}

#[test]
fn an_interrupted_run_leaves_a_checkpoint_that_finishes_it() {
    let tmp = temp_dir("interrupted");
    let (ckpt, out, full) = (tmp.join("c.ckpt"), tmp.join("trace"), tmp.join("full"));
    let o = common::run_and_signal(
        &[
            "run",
            "specs/cuba.ng",
            "--quiet",
            "--duration",
            "300s",
            "--seed",
            "3",
            "--out",
            out.to_str().unwrap(),
            "--checkpoint",
            ckpt.to_str().unwrap(),
        ],
        "INT",
    );
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let steps = manifest(&out)["steps"].as_u64().unwrap();
    assert!(steps > 0 && steps < 3_000_000);
    // Resume 0.2 s more and compare with a straight run of the same total length.
    common::neurograph_ok(&[
        "resume",
        ckpt.to_str().unwrap(),
        "--quiet",
        "--duration",
        "0.2s",
        "--out",
        out.to_str().unwrap(),
    ]);
    let total = format!("{}s", (steps + 2000) as f64 * 1e-4);
    common::neurograph_ok(&[
        "run",
        "specs/cuba.ng",
        "--quiet",
        "--seed",
        "3",
        "--duration",
        &total,
        "--out",
        full.to_str().unwrap(),
    ]);
    assert_same_trace(&full, &out);
}

/// `resume` checks the memory of the whole run before continuing, as `run` does: records of
/// 100,000 cells every step for 10,000 s more are refused before anything is simulated.
#[test]
fn resume_refuses_a_run_that_does_not_fit_in_memory() {
    let dir = common::temp_dir("checkpoint", "resume-memory");
    let text = "model big\nneuron N {\n  state v: 1 = 0\n  dv/dt = -v / (10 ms)\n}\npopulation P = N[100000]\nrecord P.v\nrun { dt = 1 ms; duration = 1 ms; seed = 1 }\n";
    let ckpt = dir.join("big.ckpt");
    common::run_spec_text(&dir, "big", text, &["--checkpoint", ckpt.to_str().unwrap()]);
    let out = common::neurograph(&[
        "resume",
        ckpt.to_str().unwrap(),
        "--duration",
        "10000 s",
        "--out",
        dir.join("more").to_str().unwrap(),
        "--quiet",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("record P.v"),
        "names the largest buffer: {err}"
    );
    assert!(!dir.join("more").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
