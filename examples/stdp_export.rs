//! Exports what Brian2 needs to replay a run of `specs/stdp.ng` (`benches/peers/stdp_replay.py`):
//! the Poisson input spikes, the initial weights, and our output spikes and final weights.
//!
//! `cargo run --example stdp_export -- OUT_DIR SECONDS SEED` writes `inputs_t.npy` (s),
//! `inputs_i.npy`, `w0.npy`, `out_t.npy` (s) and `w_end.npy` into OUT_DIR.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use neurograph::compiler::ir::{Node, Scope};
use neurograph_runtime::npy::{self, Dtype};
use neurograph_runtime::{Backend, RunConfig, Sim};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: stdp_export OUT_DIR SECONDS SEED");
        std::process::exit(2);
    }
    let out = PathBuf::from(&args[1]);
    let seconds: f64 = args[2].parse().expect("SECONDS");
    let seed: u64 = args[3].parse().expect("SEED");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = root.join("specs/stdp.ng");
    let text = std::fs::read_to_string(&spec).unwrap();
    let record = text.lines().find(|l| l.starts_with("record ")).unwrap();
    let checked = neurograph::compile_text(
        &spec,
        text.replace(record, "record Out.spikes, Inputs.spikes, S.w at end"),
    );
    assert!(!checked.output.has_errors());
    let c = std::sync::Arc::new(checked.output.compiled.unwrap());
    let cfg = RunConfig {
        seed,
        backend: Backend::Jit,
        base_dir: root.join("specs"),
        overrides: Vec::new(),
    };
    let mut sim = Sim::new(std::sync::Arc::clone(&c), &cfg).unwrap();
    let (proj, _) = c
        .model
        .projections
        .iter()
        .find(|(_, p)| p.name == "S")
        .unwrap();
    let (w_var, _) = c
        .model
        .variables
        .iter()
        .find(|(_, v)| v.name == "w" && matches!(v.scope, Scope::Synapse(_)))
        .unwrap();
    let w0 = sim.state_values(Node::Projection(proj), w_var, None);
    let steps = (seconds / c.model.run.dt).round() as u64;
    sim.run(steps, &AtomicBool::new(false), 0, &mut |_| {});
    sim.finish_records();
    std::fs::create_dir_all(&out).unwrap();
    let write = |name: &str, values: &[f64], dtype: Dtype| {
        npy::write(&out.join(name), values, &[values.len()], dtype).unwrap();
    };
    let (o, i) = (&sim.recordings[0], &sim.recordings[1]);
    write("out_t.npy", &o.times, Dtype::F64);
    write("inputs_t.npy", &i.times, Dtype::F64);
    write("inputs_i.npy", &i.values, Dtype::I64);
    write("w0.npy", &w0, Dtype::F64);
    write("w_end.npy", &sim.recordings[2].values, Dtype::F64);
    eprintln!(
        "{} input spikes, {} output spikes in {seconds} s (seed {seed}) -> {}",
        i.times.len(),
        o.times.len(),
        out.display()
    );
}
