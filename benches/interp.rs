//! `cargo bench --bench interp`: the reference interpreter on CUBA (N = 4000, p = 0.02).
//! `interp_cuba/steps` times 100 simulation steps after a 1000-step warm-up (throughput in
//! steps per second); `interp_cuba/setup` times initial values plus connectivity.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use neurograph_runtime::{RunConfig, Sim};

fn interp_cuba(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/cuba.ng");
    let checked = neurograph::compile_file(&path).unwrap();
    let compiled = std::sync::Arc::new(checked.output.compiled.unwrap());
    let config = RunConfig {
        seed: 1,
        backend: neurograph_runtime::Backend::Interp,
        base_dir: path.parent().unwrap().to_path_buf(),
        overrides: Vec::new(),
    };
    let stop = AtomicBool::new(false);
    let mut group = c.benchmark_group("interp_cuba");
    group.sample_size(20);
    group.bench_function("setup", |b| {
        b.iter(|| Sim::new(compiled.clone(), &config).unwrap())
    });
    let mut sim = Sim::new(compiled.clone(), &config).unwrap();
    sim.run(1000, &stop, 0, &mut |_| {});
    group.throughput(Throughput::Elements(100));
    group.bench_function("steps", |b| b.iter(|| sim.run(100, &stop, 0, &mut |_| {})));
    group.finish();
}

criterion_group!(benches, interp_cuba);
criterion_main!(benches);
