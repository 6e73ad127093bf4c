//! `cargo bench --bench analyze`: `spikes/cuba_10s` is the `spikes` pass of `neurograph analyze`
//! (reading the trace included: manifest, `.npy` files, then every statistic of both
//! populations with the default 1000-pair correlation sample) on a 10 s CUBA trace
//! (N = 4000, about 220,000 spikes) written once before timing. Goal: under 0.5 s.

use criterion::{criterion_group, criterion_main, Criterion};
use neurograph::analysis::spikes::{analyze_trace, SpikeOptions};
use neurograph::analysis::trace::Trace;
use neurograph::Model;

fn spikes(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("neurograph-bench-analyze-{}", std::process::id()));
    let model = Model::compile_file(&root.join("specs/cuba.ng")).unwrap();
    let mut sim = model.simulation().seed(1).build().unwrap();
    sim.run_for("10 s").unwrap();
    sim.write_trace(&dir).unwrap();
    let mut group = c.benchmark_group("spikes");
    group.sample_size(10);
    group.bench_function("cuba_10s", |b| {
        b.iter(|| {
            let trace = Trace::open(&dir).unwrap();
            analyze_trace(&trace, None, &SpikeOptions::default()).unwrap()
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, spikes);
criterion_main!(benches);
