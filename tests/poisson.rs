//! Event-driven Poisson sources (`runtime::poisson`): a `poisson` input of constant rate draws
//! the steps to each source's next spike, one draw per spike, instead of one uniform per source
//! and step. Its spikes must follow the per-step (Bernoulli) form's law: the same rate and the
//! same inter-spike-interval distribution (geometric in steps), which a time-varying rate still
//! draws step by step.

mod common;

use neurograph::{Backend, Model, Simulation};

const N: usize = 2000;

fn spec(rate: &str) -> String {
    format!(
        "model poisson_law
input P = poisson({N}, rate = {rate})
record P.spikes
run {{ dt = 0.1 ms; duration = 2 s; seed = 1 }}
"
    )
}

fn simulate(text: &str, backend: Backend, seed: u64) -> Simulation {
    let model = Model::compile_str(text).unwrap();
    let mut sim = model
        .simulation()
        .seed(seed)
        .backend(backend)
        .build()
        .unwrap();
    sim.run_for("2 s").unwrap();
    sim
}

/// Inter-spike intervals in steps, over every source, of the spikes before step `before`
/// (so that no interval is cut short by the end of the run: the window is many mean
/// intervals longer).
fn intervals(sim: &Simulation, dt: f64, before: f64) -> Vec<f64> {
    let (times, index) = sim.spikes("P").unwrap();
    let mut last = vec![None; N];
    let mut out = Vec::new();
    for (t, i) in times.iter().zip(index) {
        let step = (t / dt).round();
        if let Some(prev) = last[i as usize].replace(step) {
            if prev < before {
                out.push(step - prev);
            }
        }
    }
    out
}

/// The two-sample Kolmogorov–Smirnov statistic.
fn ks(a: &mut [f64], b: &mut [f64]) -> f64 {
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

#[test]
fn event_driven_sources_follow_the_per_step_law() {
    let dt = 1e-4;
    let rate = 200.0;
    let p = rate * dt;
    // Constant rate: event-driven. Reading `t`, the same rate is drawn step by step.
    let event = simulate(&spec("200 Hz"), Backend::Jit, 1);
    let per_step = simulate(&spec("200 Hz + 0 Hz * t / second"), Backend::Jit, 2);
    for (what, sim) in [("event-driven", &event), ("per step", &per_step)] {
        // The rate within 4 standard deviations of a Poisson count.
        let count = sim.spike_count("P").unwrap() as f64;
        let expected = rate * N as f64 * 2.0;
        assert!(
            (count - expected).abs() < 4.0 * expected.sqrt(),
            "{what}: {count} spikes, {expected} expected"
        );
    }
    // Intervals starting at least 40 mean intervals before the end (P(ISI > 40 / p) = e^-40).
    let before = 2.0 / dt - 40.0 / p;
    let mut a = intervals(&event, dt, before);
    let mut b = intervals(&per_step, dt, before);
    assert!(
        a.len() > 500_000 && b.len() > 500_000,
        "{} {}",
        a.len(),
        b.len()
    );
    // Mean interval 1 / p steps.
    for (what, x) in [("event-driven", &a), ("per step", &b)] {
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        // The interval's standard deviation is sqrt(1 - p) / p steps.
        let se = (1.0 - p).sqrt() / (x.len() as f64).sqrt();
        assert!(
            (mean * p - 1.0).abs() < 4.0 * se,
            "{what}: mean ISI {mean} steps"
        );
    }
    // Against each other and against the geometric law P(K <= k) = 1 - (1 - p)^k.
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let d = ks(&mut a, &mut b);
    let critical = 1.95 * ((na + nb) / (na * nb)).sqrt(); // alpha = 0.001
    assert!(d < critical, "two-sample KS {d} >= {critical}");
    // The law is discrete: compare the distribution functions at each interval value taken.
    let mut d_law = 0.0f64;
    for (k, &x) in a.iter().enumerate() {
        if a.get(k + 1) != Some(&x) {
            let cdf = 1.0 - (1.0 - p).powf(x);
            d_law = d_law.max(((k + 1) as f64 / na - cdf).abs());
        }
    }
    assert!(
        d_law < 1.95 / na.sqrt() + 1.0 / na,
        "KS against the geometric law {d_law}"
    );
}

#[test]
fn both_backends_draw_the_same_spikes_and_a_rate_change_applies_at_once() {
    let text = spec("20 Hz");
    let interp = simulate(&text, Backend::Interp, 3);
    let jit = simulate(&text, Backend::Jit, 3);
    assert_eq!(interp.spikes("P").unwrap(), jit.spikes("P").unwrap());
    let report = {
        let model = Model::compile_str(&text).unwrap();
        let mut sim = model.simulation().build().unwrap();
        sim.kernel_decisions()
    };
    assert!(
        report.iter().all(|d| !d.what.starts_with("P:")),
        "event-driven sources need no kernel: {:?}",
        report.iter().map(|d| &d.what).collect::<Vec<_>>()
    );

    // 20 Hz for 1 s, then 200 Hz for 1 s: each half at its own rate.
    let model = Model::compile_str(&text).unwrap();
    let mut sim = model.simulation().seed(4).build().unwrap();
    sim.run_for("1 s").unwrap();
    let first = sim.spike_count("P").unwrap() as f64;
    sim.set_param("P.rate", "200 Hz").unwrap();
    sim.run_for("1 s").unwrap();
    let second = sim.spike_count("P").unwrap() as f64 - first;
    for (count, rate) in [(first, 20.0), (second, 200.0)] {
        let expected = rate * N as f64;
        assert!(
            (count - expected).abs() < 4.0 * expected.sqrt(),
            "{count} spikes at {rate} Hz, {expected} expected"
        );
    }
}

#[test]
fn a_checkpoint_keeps_the_pending_spikes() {
    let text = spec("30 Hz");
    let model = Model::compile_str(&text).unwrap();
    let mut straight = model.simulation().seed(5).build().unwrap();
    straight.run_for("1 s").unwrap();
    let mut first = model.simulation().seed(5).build().unwrap();
    first.run_for("0.5 s").unwrap();
    let mut resumed = Simulation::restore(&model, &first.snapshot()).unwrap();
    resumed.run_for("0.5 s").unwrap();
    assert_eq!(
        straight.spikes("P").unwrap(),
        resumed.spikes("P").unwrap(),
        "a resumed run draws the spikes of the straight one"
    );
}

#[test]
fn inspect_names_the_event_driven_sources() {
    let spec = common::root().join("specs/stdp.ng");
    let out = common::neurograph_ok(&["inspect", spec.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("event-driven Inputs: Poisson sources"),
        "{text}"
    );
}
