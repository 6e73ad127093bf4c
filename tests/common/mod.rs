//! Helpers shared by the simulation tests: compile a bundled spec and run it in-process.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use neurograph::compiler::Compiled;
use neurograph_runtime::{RunConfig, Sim};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compile a spec file (panicking with the rendered diagnostics if it does not compile).
pub fn compile(path: &Path) -> Arc<Compiled> {
    let c = neurograph::compile_file(path).unwrap();
    if c.output.has_errors() {
        panic!(
            "{}",
            neurograph::diagnostics::render_plain(&c.sources, &c.output.diagnostics)
        );
    }
    Arc::new(c.output.compiled.unwrap())
}

/// Compile spec text (relative paths start at `specs/`).
pub fn compile_text(text: &str) -> Arc<Compiled> {
    let c = neurograph::compile_text(&root().join("specs/inline.ng"), text.to_string());
    if c.output.has_errors() {
        panic!(
            "{}",
            neurograph::diagnostics::render_plain(&c.sources, &c.output.diagnostics)
        );
    }
    Arc::new(c.output.compiled.unwrap())
}

/// Run the `neurograph` binary in the repository root.
pub fn neurograph(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_neurograph"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

/// Run the `neurograph` binary and require exit status 0 (the failure shows its stderr).
pub fn neurograph_ok(args: &[&str]) -> std::process::Output {
    let out = neurograph(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "neurograph {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Start the binary with `args`, send it `signal` (`INT`, `TERM`) after 1.5 s of running, and
/// wait for it to end.
pub fn run_and_signal(args: &[&str], signal: &str) -> std::process::Output {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_neurograph"))
        .args(args)
        .current_dir(root())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} failed");
    child.wait_with_output().unwrap()
}

/// An empty directory of its own for one test (`prefix`: the test file, `name`: the test).
pub fn temp_dir(prefix: &str, name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{prefix}-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Write `text` as `dir/NAME.ng` and run it quietly (plus `extra` flags) into `dir/NAME-trace`;
/// returns (spec, trace directory).
pub fn run_spec_text(dir: &Path, name: &str, text: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let spec = dir.join(format!("{name}.ng"));
    std::fs::write(&spec, text).unwrap();
    let out = dir.join(format!("{name}-trace"));
    let mut args = vec![
        "run",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend(extra);
    neurograph_ok(&args);
    (spec, out)
}

/// A trace directory's manifest.
pub fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

pub fn config(seed: u64) -> RunConfig {
    RunConfig {
        seed,
        backend: neurograph_runtime::Backend::Interp,
        base_dir: root().join("specs"),
        overrides: Vec::new(),
    }
}

/// Run `steps` steps and return the simulation (recordings inside).
pub fn simulate(c: &Arc<Compiled>, seed: u64, steps: u64) -> Sim {
    let mut sim = Sim::new(Arc::clone(c), &config(seed)).unwrap();
    sim.run(steps, &AtomicBool::new(false), 0, &mut |_| {});
    sim.finish_records();
    sim
}

/// (times, indices) of the record with index `k` (an events record).
pub fn events(sim: &Sim, k: usize) -> (Vec<f64>, Vec<u32>) {
    let r = &sim.recordings[k];
    (
        r.times.clone(),
        r.values.iter().map(|&v| v as u32).collect(),
    )
}

/// The block `<keyword> <name> { ... }` of a spec text, braces balanced.
pub fn block(text: &str, header: &str) -> String {
    let start = text.find(header).unwrap_or_else(|| panic!("no `{header}`"));
    let mut depth = 0;
    for (k, ch) in text[start..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return text[start..start + k + 1].to_string();
                }
            }
            _ => {}
        }
    }
    panic!("unclosed `{header}`");
}

/// SplitMix64: the tests' own seeded generator (uniforms in (0, 1), normals by Box–Muller).
pub struct Rng(pub u64);

impl Rng {
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Write one population's spike arrays (times in s, indices; in time order) into a trace
/// directory `dir` as a run does, and return the manifest's record for them.
pub fn write_spike_record(
    dir: &Path,
    population: &str,
    size: usize,
    times: &[f64],
    indices: &[f64],
) -> serde_json::Value {
    use neurograph_runtime::npy::{self, Dtype};
    let base = format!("{population}.spikes");
    npy::write(
        &dir.join(format!("{base}.t.npy")),
        times,
        &[times.len()],
        Dtype::F64,
    )
    .unwrap();
    npy::write(
        &dir.join(format!("{base}.i.npy")),
        indices,
        &[indices.len()],
        Dtype::U32,
    )
    .unwrap();
    serde_json::json!({
        "kind": "events", "name": base, "population": population, "event": "spike",
        "count": times.len(), "size": size,
        "times": {"file": format!("{base}.t.npy"), "unit": "s", "shape": [times.len()], "dtype": "float64"},
        "indices": {"file": format!("{base}.i.npy"), "shape": [indices.len()], "dtype": "uint32"},
    })
}

/// Write a trace directory's manifest around `records`, as a complete run of `duration` s.
pub fn write_manifest(dir: &Path, model: &str, duration: f64, records: Vec<serde_json::Value>) {
    let manifest = serde_json::json!({
        "format": "neurograph-trace", "format_version": 1, "model": model, "seed": 1,
        "dt_s": 1e-4, "duration_s": duration, "status": "complete", "records": records,
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
}
