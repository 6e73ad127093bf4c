//! Native runners (`neurograph build`): for every bundled spec, the runner writes the trace
//! `neurograph run` writes, byte for byte; `--info`; the runner refuses what `run` refuses.
//! Skipped, with the reason printed, where no C compiler exists.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{neurograph, root, temp_dir};

fn c_compiler() -> Option<String> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    Command::new(&cc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| cc)
}

/// Build the runner of `spec` into `dir`; its path.
fn build(spec: &Path, dir: &Path) -> PathBuf {
    build_with(spec, dir, &[])
}

/// `build` with more flags.
fn build_with(spec: &Path, dir: &Path, flags: &[&str]) -> PathBuf {
    let runner = dir.join(spec.file_stem().unwrap());
    let mut args = vec![
        "build",
        spec.to_str().unwrap(),
        "-o",
        runner.to_str().unwrap(),
    ];
    args.extend(flags);
    let out = neurograph(&args);
    assert!(
        out.status.success(),
        "build {} failed:\n{}",
        spec.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    runner
}

/// Every file of trace directory `a` equals the one of the same name in `b`, and they hold
/// the same files.
fn assert_same_trace(a: &Path, b: &Path, what: &str) {
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(a), names(b), "{what}: trace files differ");
    for name in names(a) {
        let (mut x, mut y) = (
            std::fs::read(a.join(&name)).unwrap(),
            std::fs::read(b.join(&name)).unwrap(),
        );
        if name == "manifest.json" {
            // The start time is the one field two runs cannot share.
            let without_start = |bytes: &[u8]| {
                let mut m: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                assert!(m["started_utc"].is_string(), "{what}: no started_utc");
                m.as_object_mut().unwrap().remove("started_utc");
                m.to_string().into_bytes()
            };
            (x, y) = (without_start(&x), without_start(&y));
        }
        assert!(
            x == y,
            "{what}: {name} differs between the runner and `run`"
        );
    }
}

/// Run `runner` and `neurograph run SPEC` with the same `flags` (ending in `--out`), traces
/// into `dir/<name>-runner` and `dir/<name>-run`, and require the same trace.
fn assert_runner_matches_run(runner: &Path, spec: &Path, flags: &[&str], dir: &Path, name: &str) {
    let (a, b) = (
        dir.join(format!("{name}-runner")),
        dir.join(format!("{name}-run")),
    );
    let o = Command::new(runner).args(flags).arg(&a).output().unwrap();
    assert!(
        o.status.success(),
        "runner of {name} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut args: Vec<&str> = vec!["run", spec.to_str().unwrap()];
    args.extend(flags);
    args.push(b.to_str().unwrap());
    let o = neurograph(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_trace(&a, &b, name);
}

#[test]
fn every_bundled_spec_runs_to_the_same_trace_as_neurograph_run() {
    let Some(_) = c_compiler() else {
        eprintln!("skipped: no C compiler (cc or $CC) to link runners with");
        return;
    };
    let dir = temp_dir("runner", "bundled");
    let specs = common::runnable_specs();
    assert!(specs.len() >= 10);
    for spec in &specs {
        let runner = build(spec, &dir);
        let name = spec.file_stem().unwrap().to_str().unwrap();
        // The same kernel calls run generated code as with the JIT (a kernel missing from
        // the table would run interpreted, with the same trace).
        let kernels = Command::new(&runner).arg("--kernels").output().unwrap();
        assert!(kernels.status.success(), "{name}: runner --kernels failed");
        let runner_report = String::from_utf8_lossy(&kernels.stdout).into_owned();
        let inspect = neurograph(&["inspect", spec.to_str().unwrap()]);
        let jit_report = String::from_utf8_lossy(&inspect.stdout).into_owned();
        let jit_kernels = jit_report
            .split("\nkernels (JIT")
            .nth(1)
            .unwrap_or_else(|| panic!("{name}: no kernel list in inspect:\n{jit_report}"));
        assert!(
            runner_report.ends_with(jit_kernels),
            "{name}: kernel decisions differ\nrunner:{runner_report}\nJIT:{jit_kernels}"
        );
        let flags = ["--duration", "50 ms", "--seed", "3", "--quiet", "--out"];
        assert_runner_matches_run(&runner, spec, &flags, &dir, name);
        std::fs::remove_file(&runner).unwrap();
    }
}

#[test]
fn a_runner_takes_run_flags_reports_itself_and_refuses_what_run_refuses() {
    let Some(_) = c_compiler() else {
        eprintln!("skipped: no C compiler (cc or $CC) to link runners with");
        return;
    };
    let dir = temp_dir("runner", "flags");
    let spec = dir.join("small.ng");
    std::fs::write(
        &spec,
        "model small\nconst tau = 10 ms\nparam drive = 1.2\n\
         neuron L {\n  state v = 0\n  dv/dt = (drive - v) / tau\n  method exact\n  spike when v > 1 { v = 0 }\n}\n\
         population P = L[50]\nrecord P.spikes\nrecord P.v[0..3]\nrun { dt = 0.1 ms; duration = 100 ms }\n",
    )
    .unwrap();
    let runner = build(&spec, &dir);
    let info = Command::new(&runner).arg("--info").output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success());
    assert!(text.contains("model small"), "{text}");
    assert!(text.contains(&format!("neurograph {}", env!("CARGO_PKG_VERSION"))));
    assert!(text.contains("spec hash "), "{text}");
    // A changed parameter, the same as `run` with the same flag.
    let flags = ["--set", "drive=1.5", "--seed", "2", "--quiet", "--out"];
    assert_runner_matches_run(&runner, &spec, &flags, &dir, "small-drive-1.5");
    // A constant was folded into the kernels: changing it needs a rebuild, and the runner
    // says which name.
    let o = Command::new(&runner)
        .args(["--set", "tau=5ms", "--quiet", "--out"])
        .arg(dir.join("c"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("tau"), "{err}");
    assert!(err.contains("const"), "{err}");
    // Bad flags are usage errors, not panics.
    let o = Command::new(&runner)
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn build_errors_are_reported_with_their_place() {
    let dir = temp_dir("runner", "errors");
    let spec = dir.join("bad.ng");
    std::fs::write(&spec, "model bad\nparam x = 1 mV + 2 ms\n").unwrap();
    let out = neurograph(&[
        "build",
        spec.to_str().unwrap(),
        "-o",
        dir.join("bad").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("bad.ng:2:"), "{err}");
    assert!(!dir.join("bad").exists());
    let out = neurograph(&[
        "build",
        root().join("specs/cuba.ng").to_str().unwrap(),
        "-o",
        dir.join("cuba").to_str().unwrap(),
        "--runtime-lib",
        dir.join("missing.a").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("missing.a"), "{err}");
}

/// Kernels are found by positions in the IR: a runner refuses to run when an imported file
/// changed since it was built (the same spec text would then lower differently).
#[test]
fn a_runner_refuses_imports_changed_since_it_was_built() {
    let Some(_) = c_compiler() else {
        eprintln!("skipped: no C compiler (cc or $CC) to link runners with");
        return;
    };
    let dir = temp_dir("runner", "imports");
    let lib = |drive: &str| {
        format!(
            "param drive = {drive}\nneuron L {{\n  state v = 0\n  dv/dt = (drive - v) / (10 ms)\n  method exact\n  spike when v > 1 {{ v = 0 }}\n}}\n"
        )
    };
    std::fs::write(dir.join("cells.ng"), lib("1.2")).unwrap();
    let spec = dir.join("main.ng");
    std::fs::write(
        &spec,
        "model imports\nimport \"cells.ng\"\npopulation P = L[20]\nrecord P.spikes\n\
         run { dt = 0.1 ms; duration = 20 ms }\n",
    )
    .unwrap();
    let runner = build(&spec, &dir);
    let run = |out: &str| {
        Command::new(&runner)
            .args(["--quiet", "--out"])
            .arg(dir.join(out))
            .output()
            .unwrap()
    };
    assert!(run("a").status.success());
    // A different expression in the import: refused with the reason, nothing written.
    std::fs::write(
        dir.join("cells.ng"),
        lib("1.2").replace("(drive - v)", "(2 * drive - v)"),
    )
    .unwrap();
    let o = run("b");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("changed since this runner was built"), "{err}");
    assert!(!dir.join("b").exists());
}

#[test]
fn a_baseline_runner_runs_the_same_trace() {
    // `--target baseline`: kernels for any x86-64 (SSE2 only), the same results.
    let Some(_) = c_compiler() else {
        eprintln!("skipped: no C compiler (cc or $CC) to link runners with");
        return;
    };
    let dir = temp_dir("runner", "baseline");
    let spec = root().join("specs/coba.ng");
    let runner = build_with(&spec, &dir, &["--target", "baseline"]);
    let info = Command::new(&runner).arg("--info").output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("cpu features baseline"), "{text}");
    let flags = ["--duration", "50ms", "--quiet", "--out"];
    assert_runner_matches_run(&runner, &spec, &flags, &dir, "coba-baseline");
    // Anything else is a usage error.
    let o = neurograph(&[
        "build",
        spec.to_str().unwrap(),
        "-o",
        "x",
        "--target",
        "avx9",
    ]);
    assert_eq!(o.status.code(), Some(2));
}
