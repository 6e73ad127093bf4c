//! `neurograph run` end to end: every spec runs, traces load, overrides and experiment files
//! work, bad input is a one-line error with exit status 1 and no trace left behind, and Ctrl-C
//! still leaves a valid trace.

mod common;

use std::path::{Path, PathBuf};

use neurograph_runtime::npy;

use common::{manifest, neurograph};

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("test", name)
}

/// No trace and no partial directory next to where it would have gone.
fn assert_nothing_written(out: &Path) {
    assert!(!out.exists(), "{} was created", out.display());
    if let Some(parent) = out.parent().filter(|p| p.exists()) {
        for e in std::fs::read_dir(parent).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.contains(".partial-"), "left behind {name}");
        }
    }
}

#[test]
fn every_spec_runs_to_completion_with_the_interpreter() {
    let tmp = temp_dir("all");
    for path in common::runnable_specs() {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let out = tmp.join(&stem);
        let o = neurograph(&[
            "run",
            path.to_str().unwrap(),
            "--duration",
            "20 ms",
            "--backend",
            "interp",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{stem}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let m = manifest(&out);
        assert_eq!(m["interrupted"], false);
        assert!(
            (m["duration_s"].as_f64().unwrap() - 0.02).abs() < 1e-12,
            "{stem}"
        );
        for r in m["records"].as_array().unwrap() {
            for key in ["times", "values", "indices"] {
                if let Some(f) = r[key]["file"].as_str() {
                    let arr = npy::read(&out.join(f)).unwrap_or_else(|e| panic!("{stem}/{f}: {e}"));
                    let shape: Vec<usize> = r[key]["shape"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_u64().unwrap() as usize)
                        .collect();
                    assert_eq!(arr.shape, shape, "{stem}/{f}");
                }
            }
        }
    }
}

#[test]
fn cuba_trace_holds_the_spikes_the_summary_reports() {
    let out = temp_dir("cuba").join("trace");
    let o = common::neurograph_ok(&[
        "run",
        "specs/cuba.ng",
        "--duration",
        "100ms",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let m = manifest(&out);
    assert_eq!(m["seed"], 3);
    assert_eq!(m["steps"], 1000);
    let rec = &m["records"][0];
    assert_eq!(rec["population"], "E");
    let t = npy::read(&out.join(rec["times"]["file"].as_str().unwrap())).unwrap();
    let i = npy::read(&out.join(rec["indices"]["file"].as_str().unwrap())).unwrap();
    assert_eq!(t.data.len(), i.data.len());
    assert!(t.data.iter().all(|&x| (0.0..0.1).contains(&x)));
    assert!(i.data.iter().all(|&x| (0.0..3200.0).contains(&x)));
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("E "))
        .unwrap();
    assert!(
        line.contains(&format!("{} spikes", t.data.len())),
        "{line} vs {}",
        t.data.len()
    );
    assert!(stdout.contains("real-time factor"));
}

#[test]
fn set_changes_a_parameter_without_touching_the_spec() {
    let tmp = temp_dir("set");
    let run = |extra: &[&str], name: &str| {
        let out = tmp.join(name);
        let mut args = vec![
            "run",
            "specs/cuba.ng",
            "--duration",
            "100ms",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        common::neurograph_ok(&args);
        manifest(&out)
    };
    let base = run(&[], "base");
    let silent = run(&["--set", "LIF.Vt=0 mV"], "silent");
    let count = |m: &serde_json::Value| m["records"][0]["count"].as_u64().unwrap();
    assert!(count(&base) > 0);
    assert_eq!(
        count(&silent),
        0,
        "with the threshold at 0 mV nothing fires"
    );
    let vt = silent["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "LIF.Vt")
        .unwrap();
    assert_eq!(vt["value"].as_f64(), Some(0.0));
}

#[test]
fn run_time_errors_are_one_line_and_leave_no_trace() {
    let tmp = temp_dir("errors");
    let out = tmp.join("trace");
    let o = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["run", "specs/cuba.ng", "--set", "nosuch=1", "--out", o],
            "--set nosuch: unknown parameter",
        ),
        (
            vec!["run", "specs/cuba.ng", "--set", "LIF.taum=5 mV", "--out", o],
            "`taum` is in s, but `5 mV` is in V",
        ),
        (
            vec!["run", "specs/cuba.ng", "--set", "we", "--out", o],
            "--set expects name=value",
        ),
        (
            vec!["run", "specs/cuba.ng", "--duration", "5 mV", "--out", o],
            "--duration: `5 mV` is not a time",
        ),
        (
            vec!["run", "specs/cuba.ng", "--duration", "soon", "--out", o],
            "--duration",
        ),
        (
            vec![
                "run",
                "specs/cuba.ng",
                "--duration",
                "10ms",
                "--out",
                "/proc/neurograph/trace",
            ],
            "cannot create output directory",
        ),
    ];
    for (args, want) in cases {
        let r = neurograph(&args);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: not one line: {stderr}"
        );
        assert!(
            stderr.starts_with("error: ") && stderr.contains(want),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"));
        assert_nothing_written(&out);
    }
    // An existing directory that is not a trace is never overwritten.
    let other = tmp.join("not-a-trace");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "keep me").unwrap();
    let r = neurograph(&[
        "run",
        "specs/cuba.ng",
        "--duration",
        "10ms",
        "--out",
        other.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("is not a neurograph trace"));
    assert_eq!(
        std::fs::read_to_string(other.join("notes.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn missing_and_malformed_data_files_are_reported() {
    let tmp = temp_dir("files");
    let spec = "model w
neuron N { state v: volt = 0 mV; dv/dt = -v / (10 ms); spike when v > 1 mV { v = 0 mV } }
synapse S { param w = 1; on pre { post.v += w * 1 mV } }
population A = N[3]
project A -> A via S { connect all_to_all; w = load(\"w.npy\") }
";
    std::fs::write(tmp.join("w.ng"), spec).unwrap();
    let out = tmp.join("trace");
    let (spec_path, out_path) = (tmp.join("w.ng"), out.clone());
    let run_w = |extra: &[&str]| {
        let mut args = vec![
            "run",
            spec_path.to_str().unwrap(),
            "--out",
            out_path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        neurograph(&args)
    };
    let r = run_w(&[]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("file not found: `w.npy`") && stderr.contains("w.ng:5:"),
        "{stderr}"
    );
    assert_nothing_written(&out);
    std::fs::write(tmp.join("w.npy"), b"not numpy at all").unwrap();
    let r = run_w(&[]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: cannot load") && stderr.contains("not a .npy file"),
        "{stderr}"
    );
    assert_nothing_written(&out);
    std::fs::write(
        tmp.join("w.npy"),
        npy::to_bytes(&[0.5; 9], &[3, 3], npy::Dtype::F64),
    )
    .unwrap();
    let r = run_w(&["--duration", "1ms"]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}

#[test]
fn experiment_files_run_one_trace_per_seed() {
    let tmp = temp_dir("experiment");
    let spec = common::root().join("specs/cuba.ng");
    std::fs::write(
        tmp.join("exp.yaml"),
        format!(
            "spec: {}\nduration: 20 ms\nseeds: [4, 5]\nset:\n  we: 2 mV\nrecord: [\"E.v[0..3] every 1 ms\"]\nout: sweep\n",
            spec.display()
        ),
    )
    .unwrap();
    common::neurograph_ok(&["run", tmp.join("exp.yaml").to_str().unwrap(), "--quiet"]);
    for seed in [4, 5] {
        let dir = tmp.join("sweep").join(format!("seed-{seed}"));
        let m = manifest(&dir);
        assert_eq!(m["seed"], seed);
        let we = m["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "we")
            .unwrap();
        assert!((we["value"].as_f64().unwrap() - 0.002).abs() < 1e-15);
        let v = m["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["variable"] == "v")
            .unwrap();
        assert_eq!(v["values"]["shape"], serde_json::json!([20, 3]));
    }
    std::fs::write(tmp.join("bad.yaml"), "spec: x.ng\nseedz: [1]\n").unwrap();
    let r = neurograph(&["run", tmp.join("bad.yaml").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr.contains("bad.yaml:2:") && stderr.contains("seedz"),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_stops_at_a_step_and_writes_a_valid_trace() {
    let out = temp_dir("interrupt").join("trace");
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
        "INT",
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let m = manifest(&out);
    assert_eq!(m["interrupted"], true);
    let simulated = m["duration_s"].as_f64().unwrap();
    assert!(simulated > 0.0 && simulated < 60.0);
    assert_eq!(m["requested_duration_s"].as_f64(), Some(60.0));
    let rec = &m["records"][0];
    let t = npy::read(&out.join(rec["times"]["file"].as_str().unwrap())).unwrap();
    assert!(t.data.iter().all(|&x| x < simulated));
    let v = m["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "state")
        .unwrap();
    let vals = npy::read(&out.join(v["values"]["file"].as_str().unwrap())).unwrap();
    assert_eq!(vals.shape[0] as u64, m["steps"].as_u64().unwrap());
}

/// A reader that closes the pipe early (`neurograph inspect --clif ... | head -1`) ends the
/// command quietly: no panic, exit status 0.
#[test]
fn a_closed_output_pipe_is_not_a_panic() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_neurograph"))
        .args(["inspect", "--clif", "--asm", "specs/cobahh.ng"])
        .current_dir(common::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is closed here (dropped), long before the output's end (about 600 kB,
    // beyond any pipe buffer).
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
