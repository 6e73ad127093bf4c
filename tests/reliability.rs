//! `neurograph run` never destroys what a user owns and refuses bad input before or while
//! simulating, with an error that says where: foreign directories at `--out`, concurrent runs
//! into one place, runs killed half-way, signals, file-size limits, values `--set` must not
//! take, diverging simulations, models that do not fit in memory and data files that do not
//! fit the model. Each test reproduces a defect found by trying the release binary as a user.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use neurograph_runtime::npy;

use common::{manifest, neurograph};

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("rel", name)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Names in `dir` that are temporary siblings of a trace (`.NAME.partial-…`, `.NAME.old-…`).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial-") || n.contains(".old-"))
        .collect()
}

fn run_cuba(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        "specs/cuba.ng",
        "--duration",
        "20ms",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    neurograph(&args)
}

#[test]
fn a_directory_neurograph_did_not_write_is_never_replaced() {
    let tmp = temp_dir("foreign");
    // A user's results folder that happens to hold a file named manifest.json.
    let mine = tmp.join("results");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("manifest.json"), "{\"experiment\": 7}").unwrap();
    std::fs::write(mine.join("notes.txt"), "keep me").unwrap();
    let r = run_cuba(&mine, &[]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("neurograph only replaces a trace it wrote itself"),
        "{}",
        stderr(&r)
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("manifest.json")).unwrap(),
        "{\"experiment\": 7}"
    );
    // Not JSON at all.
    std::fs::write(mine.join("manifest.json"), "hello").unwrap();
    assert_eq!(run_cuba(&mine, &[]).status.code(), Some(1));
    assert!(mine.join("notes.txt").exists());

    // A real trace is replaced by the next run into the same place...
    let trace = tmp.join("trace");
    assert_eq!(run_cuba(&trace, &[]).status.code(), Some(0));
    let r = run_cuba(&trace, &["--seed", "9"]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    assert_eq!(manifest(&trace)["seed"], 9);
    assert_eq!(manifest(&trace)["format"], "neurograph-trace");
    // ...but not once the user has put a file of their own into it.
    std::fs::write(trace.join("analysis.ipynb"), "{}").unwrap();
    let r = run_cuba(&trace, &["--seed", "10"]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("holds `analysis.ipynb`"),
        "{}",
        stderr(&r)
    );
    assert!(trace.join("analysis.ipynb").exists());
    assert_eq!(manifest(&trace)["seed"], 9);
    assert!(leftovers(&tmp).is_empty(), "{:?}", leftovers(&tmp));
}

#[test]
fn concurrent_runs_into_one_directory_all_succeed_and_leave_one_whole_trace() {
    let tmp = temp_dir("concurrent");
    let out = tmp.join("trace");
    let children: Vec<_> = (1..=3)
        .map(|seed| {
            Command::new(env!("CARGO_BIN_EXE_neurograph"))
                .args([
                    "run",
                    "specs/cuba.ng",
                    "--duration",
                    "20ms",
                    "--quiet",
                    "--seed",
                    &seed.to_string(),
                    "--out",
                    out.to_str().unwrap(),
                ])
                .current_dir(common::root())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let m = manifest(&out);
    assert!((1..=3).contains(&m["seed"].as_u64().unwrap()));
    // Every file the manifest names is there and is the manifest's own run.
    for f in m["files"].as_array().unwrap() {
        assert!(out.join(f.as_str().unwrap()).is_file(), "{f}");
    }
    assert!(leftovers(&tmp).is_empty(), "{:?}", leftovers(&tmp));
}

#[test]
fn temporary_directories_of_killed_runs_are_removed_by_the_next_run() {
    let tmp = temp_dir("stale");
    let out = tmp.join("trace");
    // A run that was killed (its process id no longer exists: above Linux's pid_max) left
    // its partial trace, an older version's name without the suffix too.
    for name in [".trace.partial-999999999-0-5", ".trace.partial-999999998"] {
        std::fs::create_dir_all(tmp.join(name)).unwrap();
        std::fs::write(tmp.join(name).join("E.spikes.t.npy"), "x").unwrap();
    }
    // A run in progress (this test's own process is alive) is left alone.
    let live = format!(".trace.partial-{}-0-0", std::process::id());
    std::fs::create_dir_all(tmp.join(&live)).unwrap();
    let r = run_cuba(&out, &[]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    assert_eq!(leftovers(&tmp), vec![live]);
}

fn interrupt_with(signal: &str) {
    let out = temp_dir(&format!("signal-{signal}")).join("trace");
    let o = common::run_and_signal(
        &[
            "run",
            "specs/cobahh.ng",
            "--duration",
            "60s",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ],
        signal,
    );
    assert_eq!(o.status.code(), Some(130), "{signal}: {}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    let m = manifest(&out);
    assert_eq!(m["interrupted"], true);
    assert_eq!(m["status"], "interrupted");
    let simulated = m["duration_s"].as_f64().unwrap();
    assert!(simulated > 0.0 && simulated < 60.0);
}

#[test]
fn sigterm_stops_a_run_as_ctrl_c_does() {
    interrupt_with("TERM");
}

#[cfg(unix)]
#[test]
fn a_file_size_limit_is_a_clean_error_that_keeps_the_old_trace() {
    let tmp = temp_dir("fsize");
    let out = tmp.join("trace");
    assert_eq!(run_cuba(&out, &["--seed", "3"]).status.code(), Some(0));
    // 200 ms of CUBA records ~5000 spikes (40 KB of times): over a 4-block limit.
    let script = format!(
        "ulimit -f 4; exec '{}' run specs/cuba.ng --duration 200ms --quiet --seed 4 --out '{}'",
        env!("CARGO_BIN_EXE_neurograph"),
        out.display()
    );
    let o = Command::new("sh")
        .args(["-c", &script])
        .current_dir(common::root())
        .output()
        .unwrap();
    let err = stderr(&o);
    // Not killed by SIGXFSZ: an exit status and a message.
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write the trace"), "{err}");
    assert!(
        err.contains("too large") || err.contains("File too large"),
        "{err}"
    );
    assert_eq!(manifest(&out)["seed"], 3, "the earlier trace is intact");
    assert!(leftovers(&tmp).is_empty(), "{:?}", leftovers(&tmp));
}

/// The step in which forward Euler of dx/dt = r x^2 (x0 = 1, r = 1000/s, dt = 0.1 ms) first
/// gives a non-finite value, computed here as the interpreter does it: x + dt * (r * x * x).
fn first_non_finite_euler_step() -> u64 {
    let (r, dt) = (1000.0f64, 1e-4f64);
    let mut x = 1.0f64;
    for step in 0..10_000 {
        x += dt * (r * x * x);
        if !x.is_finite() {
            return step;
        }
    }
    panic!("never diverges");
}

#[test]
fn a_diverging_run_stops_at_the_first_non_finite_value_and_keeps_the_trace() {
    let tmp = temp_dir("diverge");
    std::fs::write(
        tmp.join("div.ng"),
        "model div
neuron X {
  param r = 1000 / 1 s
  state x: 1 = 1
  state y: 1 = 0
  dx/dt = r * x * x
  dy/dt = -y / (10 ms)
  method euler
}
population P = X[3]
record P.x
run { dt = 0.1 ms; duration = 1 s }
",
    )
    .unwrap();
    let step = first_non_finite_euler_step();
    for backend in ["interp", "jit"] {
        let out = tmp.join(format!("trace-{backend}"));
        let r = neurograph(&[
            "run",
            tmp.join("div.ng").to_str().unwrap(),
            "--backend",
            backend,
            "--out",
            out.to_str().unwrap(),
        ]);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(1), "{backend}: {err}");
        assert!(
            err.contains(&format!("P.x[0] became inf in step {step} ")),
            "{backend}: {err}"
        );
        let m = manifest(&out);
        assert_eq!(m["status"], "failed");
        assert!(m["error"].as_str().unwrap().contains("diverged"));
        assert_eq!(m["steps"].as_u64(), Some(step + 1));
        // The trace holds every step up to and including the one that diverged.
        let rec = &m["records"][0];
        let x = npy::read(&out.join(rec["values"]["file"].as_str().unwrap())).unwrap();
        assert_eq!(x.shape, vec![step as usize + 1, 3]);
        assert!(x.data[..3 * step as usize].iter().all(|v| v.is_finite()));
        assert!(x.data[3 * step as usize..].iter().all(|v| v.is_infinite()));
    }
    // A zero time constant written in the spec: NaN from the first step.
    std::fs::write(
        tmp.join("zero.ng"),
        "model zero
neuron X {
  param tau = 0 ms
  state v: volt = 1 mV
  dv/dt = -v / tau
  method euler
}
population P = X[2]
run { dt = 0.1 ms; duration = 50 ms }
",
    )
    .unwrap();
    let r = neurograph(&[
        "run",
        tmp.join("zero.ng").to_str().unwrap(),
        "--out",
        tmp.join("zero").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("P.v[0] became") && stderr(&r).contains("in step 0 "),
        "{}",
        stderr(&r)
    );
    // A run shorter than the check interval is checked at its end.
    let r = neurograph(&[
        "run",
        tmp.join("zero.ng").to_str().unwrap(),
        "--duration",
        "3ms",
        "--out",
        tmp.join("zero-short").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains("in step 0 "), "{}", stderr(&r));
}

#[test]
fn set_refuses_values_the_checker_refuses_as_literals() {
    let tmp = temp_dir("set");
    std::fs::write(
        tmp.join("p.ng"),
        "model p
param p = 0.1
param q = 0.5
neuron N {
  state v: volt = 0 mV
  dv/dt = -v / (10 ms)
  spike with probability q
}
synapse S { on pre { post.v += 1 mV } }
population A = N[10]
project A -> A via S { connect bernoulli(p) }
run { dt = 0.1 ms; duration = 5 ms }
",
    )
    .unwrap();
    let spec = tmp.join("p.ng");
    let out = tmp.join("trace");
    let cases: Vec<(&str, &str, &[&str])> = vec![
        (
            "specs/cuba.ng",
            "LIF.taum=1e400 ms",
            &["not a finite number"],
        ),
        (
            "specs/cuba.ng",
            "LIF.taum=0/0*1 ms",
            &["not a finite number"],
        ),
        ("specs/cuba.ng", "we=1e999 mV", &["not a finite number"]),
        (
            "specs/cuba.ng",
            "LIF.taum=0 ms",
            &["divide by zero", "cuba.ng:6:9"],
        ),
        (
            "specs/cuba.ng",
            "LIF.taum=-5 ms",
            &["time constant", "must stay positive", "cuba.ng:6:9"],
        ),
        (
            spec.to_str().unwrap(),
            "p=1.5",
            &["connection probability", "becomes 1.5", "p.ng:11:"],
        ),
        (
            spec.to_str().unwrap(),
            "q=2",
            &["spike probability", "becomes 2", "p.ng:7:"],
        ),
    ];
    for (file, set, wants) in cases {
        let r = neurograph(&[
            "run",
            file,
            "--set",
            set,
            "--duration",
            "5ms",
            "--out",
            out.to_str().unwrap(),
        ]);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(1), "{set}: {err}");
        for want in wants {
            assert!(err.contains(want), "{set}: wants `{want}` in {err}");
        }
        assert!(!out.exists(), "{set}: a trace was written");
    }
    // In range, it runs.
    let r = neurograph(&[
        "run",
        spec.to_str().unwrap(),
        "--set",
        "p=1",
        "--set",
        "q=0",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
}

#[test]
fn a_model_that_does_not_fit_in_memory_is_refused_before_allocating() {
    let tmp = temp_dir("memory");
    let specs = [
        (
            "huge_population",
            "population P = LIF[4000000000]",
            "",
            "population P state (4000000000 cells)",
        ),
        (
            "all_to_all",
            "population P = LIF[100000]\nproject P -> P via S { connect all_to_all }",
            "",
            "projection P->P synapses (~10000000000)",
        ),
        (
            "record_everything",
            "population P = LIF[100000]",
            "record P.v",
            "record P.v (100000 samples x 100000)",
        ),
    ];
    for (name, body, record, largest) in specs {
        let text = format!(
            "model {name}
neuron LIF {{
  state v: volt = 0 mV
  dv/dt = -v / (10 ms)
  spike when v > 1 mV {{ v = 0 mV }}
}}
synapse S {{ on pre {{ post.v += 1 mV }} }}
{body}
{record}
run {{ dt = 0.1 ms; duration = 10 s }}
"
        );
        let spec = tmp.join(format!("{name}.ng"));
        std::fs::write(&spec, text).unwrap();
        for limit in [None, Some("16GiB")] {
            let mut args = vec![
                "run",
                spec.to_str().unwrap(),
                "--out",
                tmp.to_str().unwrap(),
            ];
            if let Some(l) = limit {
                args.extend(["--max-memory", l]);
            }
            let started = std::time::Instant::now();
            let r = neurograph(&args);
            let err = stderr(&r);
            assert_eq!(r.status.code(), Some(1), "{name}: {err}");
            assert!(err.contains("nothing was allocated"), "{name}: {err}");
            assert!(err.contains(largest), "{name}: {err}");
            if limit.is_some() {
                assert!(err.contains("more than 16.0 GiB (--max-memory)"), "{err}");
            }
            // Refused up front, not after minutes of building connectivity.
            assert!(started.elapsed().as_secs() < 60);
        }
    }
    // A limit too small for CUBA: refused; a sufficient one: runs.
    let out = tmp.join("cuba");
    assert_eq!(
        run_cuba(&out, &["--max-memory", "1MB"]).status.code(),
        Some(1)
    );
    assert_eq!(
        run_cuba(&out, &["--max-memory", "1GiB"]).status.code(),
        Some(0)
    );
    let r = run_cuba(&out, &["--max-memory", "lots"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(stderr(&r).contains("--max-memory"), "{}", stderr(&r));
}

#[test]
fn data_files_that_do_not_fit_the_model_are_errors_with_a_place() {
    let tmp = temp_dir("data");
    let write = |name: &str, text: &str| std::fs::write(tmp.join(name), text).unwrap();
    let run = |spec: &str| {
        neurograph(&[
            "run",
            tmp.join(spec).to_str().unwrap(),
            "--duration",
            "2ms",
            "--out",
            tmp.join("trace").to_str().unwrap(),
        ])
    };
    // Fewer values than cells.
    write(
        "cells.ng",
        "model cells
neuron N {
  param b = 0
  state v: volt = 0 mV
  dv/dt = (b * 1 mV - v) / (10 ms)
}
population A = N[10] { b = load(\"b.npy\") }
run { dt = 0.1 ms; duration = 2 ms }
",
    );
    std::fs::write(
        tmp.join("b.npy"),
        npy::to_bytes(&[0.5; 9], &[9], npy::Dtype::F64),
    )
    .unwrap();
    let r = run("cells.ng");
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`load(\"b.npy\")` has shape (9)")
            && err.contains("population `A` (10 cells)"),
        "{err}"
    );
    // Fewer values than synapses (a 3 x 2 array for 3 x 3 endpoints).
    write(
        "syn.ng",
        "model syn
neuron N { state v: volt = 0 mV; dv/dt = -v / (10 ms); spike when v > 1 mV { v = 0 mV } }
synapse S { param w = 1; on pre { post.v += w * 1 mV } }
population A = N[3]
project A -> A via S { connect all_to_all; w = load(\"w.npy\") }
",
    );
    std::fs::write(
        tmp.join("w.npy"),
        npy::to_bytes(&[0.5; 6], &[3, 2], npy::Dtype::F64),
    )
    .unwrap();
    let r = run("syn.ng");
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`load(\"w.npy\")` has shape (3, 2)") && err.contains("synapse (0, 2)"),
        "{err}"
    );
    // A directory where a file belongs: named as such, with its place.
    std::fs::remove_file(tmp.join("w.npy")).unwrap();
    std::fs::create_dir_all(tmp.join("w.npy")).unwrap();
    let r = run("syn.ng");
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`w.npy` is a directory, not a file") && err.contains("syn.ng:5:"),
        "{err}"
    );
    // Token files: empty, and bytes outside the vocabulary.
    write(
        "tok.ng",
        "model tok
input T = tokens(\"text.txt\", vocab = 4)
run { dt = 1 ms; duration = 2 ms }
",
    );
    write("text.txt", "");
    let r = run("tok.ng");
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is empty") && err.contains("tok.ng:2:"),
        "{err}"
    );
    std::fs::write(tmp.join("text.txt"), [0u8, 1, 2, 3, 200, 1]).unwrap();
    let r = run("tok.ng");
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("byte 200 at offset 4, outside the vocabulary of 4 tokens")
            && err.contains("tok.ng:2:"),
        "{err}"
    );
    std::fs::write(tmp.join("text.txt"), [0u8, 1, 2, 3]).unwrap();
    let r = run("tok.ng");
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    // A spike-train file that is not a .npy file: the error says where it is used.
    write(
        "spk.ng",
        "model spk
input S = spikes(\"train.npy\", 2)
run { dt = 0.1 ms; duration = 2 ms }
",
    );
    write("train.npy", "not numpy");
    let r = run("spk.ng");
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot load spike trains") && err.contains("spk.ng:2:"),
        "{err}"
    );
}

#[test]
fn the_manifest_gives_each_projections_synapse_count() {
    let out = temp_dir("synapses").join("trace");
    let r = neurograph(&[
        "run",
        "specs/cuba.ng",
        "--duration",
        "5ms",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let summary = String::from_utf8_lossy(&r.stdout).into_owned();
    let total: u64 = summary
        .split(" synapses")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no synapse count in {summary}"));
    let m = manifest(&out);
    let projections = m["projections"].as_array().unwrap();
    assert_eq!(projections.len(), 2);
    let counts: Vec<u64> = projections
        .iter()
        .map(|p| p["synapses"].as_u64().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), total);
    // About p * n_pre * n_post each: 0.02 * 3200 * 4000 and 0.02 * 800 * 4000.
    assert!((counts[0] as f64 - 256_000.0).abs() < 5.0 * 256_000f64.sqrt());
    assert!((counts[1] as f64 - 64_000.0).abs() < 5.0 * 64_000f64.sqrt());
    assert_eq!(projections[0]["synapse_type"], "Exc");
    assert_eq!(m["status"], "complete");
}
