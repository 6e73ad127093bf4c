//! `cargo bench --bench analyze`: `spikes/cuba_10s` is the `spikes` pass of `neurograph analyze`
//! (reading the trace included: manifest, `.npy` files, then every statistic of both
//! populations with the default 1000-pair correlation sample) on a 10 s CUBA trace
//! (N = 4000, about 220,000 spikes) written once before timing. Goal: under 0.5 s.
//!
//! `glm/cuba_10s_100_neurons` is the `glm` pass on the same trace (reading it included) for the
//! neurons E:0..80 and I:0..20: 100 targets, each a Poisson GLM with all 100 neurons as sources
//! (their own history included), 3 raised-cosine functions over 30 ms, 1 ms bins (10,000 bins,
//! 301 parameters per target), L2 1, Newton to a decrement of 1e-6, on every core. There is no
//! `record W.edges` in cuba.ng, so no AUC: the time is the fits.
//!
//! `correlations/cuba_10s` is the `correlations` pass with its defaults: 50 sampled neuron pairs
//! for each of E×E, E×I and I×I, 1 ms bins, lags ±50 ms, exact interval-jitter predictor (25 ms).

use criterion::{criterion_group, criterion_main, Criterion};
use neurograph::analysis::spikes::{analyze_trace, SpikeOptions};
use neurograph::analysis::trace::Trace;
use neurograph::analysis::{correlations, glm};
use neurograph::Model;

fn spikes(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-analyze");
    let _ = std::fs::remove_dir_all(&dir);
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
    let mut group = c.benchmark_group("glm");
    group.sample_size(10);
    let neurons = ["E:0..80".to_string(), "I:0..20".to_string()];
    group.bench_function("cuba_10s_100_neurons", |b| {
        b.iter(|| {
            let trace = Trace::open(&dir).unwrap();
            let r = glm::analyze_trace(&trace, Some(&neurons), None, &glm::GlmOptions::default())
                .unwrap();
            assert_eq!(r.fits.len(), 100);
            r
        })
    });
    group.finish();
    let mut group = c.benchmark_group("correlations");
    group.sample_size(10);
    group.bench_function("cuba_10s", |b| {
        b.iter(|| {
            let trace = Trace::open(&dir).unwrap();
            correlations::analyze_trace(
                &trace,
                &[],
                &[],
                &correlations::CorrelationOptions::default(),
            )
            .unwrap()
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, spikes);
criterion_main!(benches);
