//! `cargo bench --bench jit`:
//! - `compile/<spec>`: spec text to callable kernels (parse, check, lower, and Cranelift
//!   compilation of every kernel the model can use: fused population updates, event code and
//!   expression kernels, in a fresh JIT module);
//! - `sim/cuba`: 100 steps of CUBA (N = 4000) with `--backend jit` (throughput: steps/s);
//! - `sim/events`: 10 steps of a 20,000-neuron network with in-degree ~1,000, where synaptic
//!   events dominate (throughput: synaptic events/s; its inverse is ns per event);
//! - `seed/*`: a new seed of CUBA ready to run, i.e. set-up plus the first step (where the
//!   kernels are compiled when they are not yet): `fresh_model` compiles the spec and every
//!   kernel again for the seed (what each seed cost before simulations shared a model's
//!   kernels); `shared_model` makes another simulation of a model whose kernels exist;
//!   `step_one_call` is one call of `Simulation::step(1)` on CUBA (the Rust side of
//!   `benches/python_step.py`);
//! - `bdh/token`: one token of `specs/bdh_gpu.ng` (the bundled small configuration) as
//!   `neurograph generate` feeds it: set the token, one step, read the logits (throughput:
//!   tokens/s). `benches/peers/bdh_torch.sh` measures the reference configuration against
//!   PyTorch.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use neurograph::compiler::{compile_str, FsLoader};
use neurograph::inspect::compile_all_kernels;
use neurograph_runtime::{Backend, RunConfig, Sim};

fn specs_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("specs")
}

fn compile(c: &mut Criterion) {
    let dir = specs_dir();
    let loader = FsLoader { base: dir.clone() };
    let specs = neurograph::spec_files(&dir).unwrap();
    let mut group = c.benchmark_group("compile");
    group.sample_size(20);
    for path in specs {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        group.bench_function(&name, |b| {
            b.iter(|| {
                let (_, out) = compile_str(&name, &text, &loader);
                let compiled = out.compiled.expect("compiles");
                let mut jit = neurograph_runtime::jit::new_jit().unwrap();
                compile_all_kernels(&compiled, &mut jit).unwrap().len()
            })
        });
    }
    group.finish();
}

fn config(backend: Backend) -> RunConfig {
    RunConfig {
        seed: 1,
        backend,
        base_dir: specs_dir(),
        overrides: Vec::new(),
    }
}

fn sim(c: &mut Criterion) {
    let stop = AtomicBool::new(false);
    let mut group = c.benchmark_group("sim");
    group.sample_size(10);
    let checked = neurograph::compile_file(&specs_dir().join("cuba.ng")).unwrap();
    let cuba = std::sync::Arc::new(checked.output.compiled.unwrap());
    let mut s = Sim::new(cuba.clone(), &config(Backend::Jit)).unwrap();
    s.run(1000, &stop, 0, &mut |_| {});
    group.throughput(Throughput::Elements(100));
    group.bench_function("cuba", |b| b.iter(|| s.run(100, &stop, 0, &mut |_| {})));

    // Events dominate: 20,000 neurons, p = 0.05 (in-degree ~1,000), weights scaled by 1/12.5.
    let cuba_text = std::fs::read_to_string(specs_dir().join("cuba.ng")).unwrap();
    let text = cuba_text
        .replace("LIF[3200]", "LIF[16000]")
        .replace("LIF[800]", "LIF[4000]")
        .replace("bernoulli(0.02)", "bernoulli(0.05)")
        .replace("param we = 1.62 mV", "param we = 0.1296 mV")
        .replace("param wi = -9 mV", "param wi = -0.72 mV");
    assert_eq!(
        text.matches("bernoulli(0.05)").count(),
        2,
        "cuba.ng changed"
    );
    let (_, out) = compile_str("events", &text, &FsLoader { base: specs_dir() });
    let events = std::sync::Arc::new(out.compiled.unwrap());
    let mut s = Sim::new(events.clone(), &config(Backend::Jit)).unwrap();
    s.run(500, &stop, 0, &mut |_| {});
    // Criterion's throughput needs a count per iteration before timing: the events of 10
    // steps averaged over 200 steps of the steady state. The events actually delivered while
    // timed are counted too and printed as ns per event.
    let before = s.events_delivered;
    s.run(200, &stop, 0, &mut |_| {});
    let per_10_steps = ((s.events_delivered - before) / 20).max(1);
    group.throughput(Throughput::Elements(per_10_steps));
    let (mut timed, mut delivered) = (std::time::Duration::ZERO, 0u64);
    group.bench_function("events", |b| {
        b.iter_custom(|iters| {
            let e0 = s.events_delivered;
            let start = std::time::Instant::now();
            for _ in 0..iters {
                s.run(10, &stop, 0, &mut |_| {});
            }
            let elapsed = start.elapsed();
            timed += elapsed;
            delivered += s.events_delivered - e0;
            elapsed
        })
    });
    group.finish();
    eprintln!(
        "sim/events: {:.2} ns per synaptic event delivered while timed ({delivered} events)",
        timed.as_nanos() as f64 / delivered.max(1) as f64
    );
}

fn seed(c: &mut Criterion) {
    let path = specs_dir().join("cuba.ng");
    let mut group = c.benchmark_group("seed");
    group.sample_size(10);
    let mut seed = 0u64;
    group.bench_function("fresh_model", |b| {
        b.iter(|| {
            seed += 1;
            let model = neurograph::Model::compile_file(&path).unwrap();
            let mut sim = model.simulation().seed(seed).build().unwrap();
            sim.step(1).unwrap();
            sim.steps()
        })
    });
    let model = neurograph::Model::compile_file(&path).unwrap();
    model.simulation().build().unwrap().step(1).unwrap();
    let mut one = model.simulation().seed(1).build().unwrap();
    one.step(1000).unwrap();
    // One step per call through the embedding API (compare benches/python_step.py).
    group.bench_function("step_one_call", |b| b.iter(|| one.step(1).unwrap()));
    group.bench_function("shared_model", |b| {
        b.iter(|| {
            seed += 1;
            let mut sim = model.simulation().seed(seed).build().unwrap();
            sim.step(1).unwrap();
            sim.steps()
        })
    });
    group.finish();
}

fn bdh(c: &mut Criterion) {
    let mut group = c.benchmark_group("bdh");
    let model = neurograph::Model::compile_file(&specs_dir().join("bdh_gpu.ng")).unwrap();
    let mut sim = model.simulation().build().unwrap();
    sim.step(16).unwrap();
    let mut tok = 65u32;
    group.throughput(Throughput::Elements(1));
    group.bench_function("token", |b| {
        b.iter(|| {
            sim.set_token("Tok", Some(tok)).unwrap();
            sim.step(1).unwrap();
            let logits = sim.state("Out", "logit").unwrap();
            tok = neurograph::generate::choose(&logits, 0.0, None, 0.0) as u32;
            tok
        })
    });
}

criterion_group!(benches, compile, sim, seed, bdh);
criterion_main!(benches);
