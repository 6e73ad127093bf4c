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
    let d = std::env::temp_dir().join(format!("neurograph-{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
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
