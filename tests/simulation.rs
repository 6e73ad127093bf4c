//! The interpreter against closed forms: exact integration of a LIF neuron, spike times
//! against the analytic inter-spike interval, the STDP window of `specs/stdp.ng`.

mod common;

/// One LIF neuron with constant input, integrated exactly.
fn lif_spec(vt: &str) -> String {
    format!(
        "model lif
neuron LIF {{
  param tau = 20 ms, R = 100 Mohm, El = -70 mV, Vr = -65 mV, I0 = 0.25 nA
  param Vt = {vt}
  state v: volt = El
  dv/dt = (El - v + R * I0) / tau
  method exact
  spike when v > Vt {{ v = Vr }}
}}
population P = LIF[1]
record P.spikes, P.v
run {{ dt = 0.1 ms; duration = 1 s }}
"
    )
}

#[test]
fn exact_integration_matches_the_closed_form() {
    let c = common::compile_text(&lif_spec("0 mV")); // never reached: v tends to -45 mV
    let sim = common::simulate(&c, 1, 10_000);
    let rec = &sim.recordings[1];
    let (tau, el, v_inf) = (0.02, -0.070, -0.070 + 100e6 * 0.25e-9);
    let mut worst: f64 = 0.0;
    for (t, v) in rec.times.iter().zip(&rec.values) {
        let exact = v_inf + (el - v_inf) * (-t / tau).exp();
        worst = worst.max(((v - exact) / exact).abs());
    }
    assert_eq!(rec.times.len(), 10_000);
    assert!(worst < 1e-12, "largest relative error {worst:e}");
}

#[test]
fn spike_times_follow_the_analytic_interval() {
    let c = common::compile_text(&lif_spec("-50 mV"));
    let sim = common::simulate(&c, 1, 10_000);
    let (times, _) = common::events(&sim, 0);
    // tau ln((R I - (Vr - El)) / (R I - (Vt - El)))
    let (tau, ri, vr_el, vt_el): (f64, f64, f64, f64) = (0.02, 0.025, 0.005, 0.020);
    let isi = tau * ((ri - vr_el) / (ri - vt_el)).ln();
    let first = tau * (ri / (ri - vt_el)).ln();
    assert!(times.len() > 30, "{} spikes", times.len());
    let dt = 1e-4;
    // Spikes are detected at the end of the step in which v crosses: within one step.
    assert!(
        times[0] + dt - first >= 0.0 && times[0] + dt - first < dt,
        "first spike {} vs {first}",
        times[0]
    );
    for w in times.windows(2) {
        let measured = w[1] - w[0];
        assert!(
            (measured - isi).abs() < dt,
            "interval {measured} vs analytic {isi}"
        );
    }
}

/// The `synapse STDP` block and the model-level params of `specs/stdp.ng`, so the test
/// exercises the rule as shipped.
fn stdp_parts() -> (String, String) {
    let text = std::fs::read_to_string(common::root().join("specs/stdp.ng")).unwrap();
    let params: String = text
        .lines()
        .filter(|l| l.starts_with("param "))
        .map(|l| format!("{l}\n"))
        .collect();
    (params, common::block(&text, "synapse STDP {"))
}

/// Weight change after one pre spike at 10 ms and one post spike at 10 ms + delta.
fn weight_change(delta_steps: i64) -> (f64, f64, f64) {
    let (params, synapse) = stdp_parts();
    let t_pre = 300i64;
    let t_post = t_pre + delta_steps;
    let spec = format!(
        "model window
{params}
unit Clock {{
  param fire_step = 0
  state ge: 1 = 0
  spike when step == fire_step
}}
{synapse}
population Pre = Clock[1] {{ fire_step = {t_pre} }}
population Post = Clock[1] {{ fire_step = {t_post} }}
project S: Pre -> Post via STDP {{ connect all_to_all; w = 0.005 }}
record S.w at end
run {{ dt = 0.1 ms; duration = 100 ms }}
"
    );
    let c = common::compile_text(&spec);
    let sim = common::simulate(&c, 1, 1000);
    let w = sim.recordings[0].values[0];
    let dapre = 0.01 * 0.01;
    let dapost = -dapre * 1.05;
    (w - 0.005, dapre, dapost)
}

#[test]
fn stdp_window_matches_the_rule() {
    let tau = 0.02f64;
    for delta_steps in [1i64, 5, 50, 200] {
        let dt_s = delta_steps as f64 * 1e-4;
        let (dw, dapre, _) = weight_change(delta_steps);
        let want = dapre * (-dt_s / tau).exp();
        assert!(
            (dw - want).abs() < 1e-9 * want.abs().max(1e-300) + 1e-15,
            "pre before post by {dt_s}: {dw} vs {want}"
        );
        let (dw, _, dapost) = weight_change(-delta_steps);
        let want = dapost * (-dt_s / tau).exp();
        assert!(
            (dw - want).abs() < 1e-9 * want.abs() + 1e-15,
            "post before pre by {dt_s}: {dw} vs {want}"
        );
    }
}

/// A unit that fires once, at a given step.
const CLOCK: &str =
    "unit Clock {\n  param fire_step = 0\n  state x: 1 = 0\n  spike when step == fire_step\n}\n";

#[test]
fn delays_hold_events_for_whole_steps_per_synapse() {
    let spec = format!(
        "model delays
{CLOCK}
synapse Kick {{ on pre {{ post.x += 1 }} }}
population Pre = Clock[1] {{ fire_step = 100 }}
population Post = Clock[3] {{ fire_step = -1 }}
project Pre -> Post via Kick {{ connect all_to_all; delay = (1 + j) * 1 ms }}
record Post.x
run {{ dt = 0.1 ms; duration = 50 ms }}
"
    );
    let c = common::compile_text(&spec);
    let sim = common::simulate(&c, 1, 200);
    let x = &sim.recordings[0].values;
    for j in 0..3usize {
        // Delivered at step 100 + 10 (1 + j), recorded at the end of that step.
        let arrival = 100 + 10 * (1 + j);
        assert_eq!(x[(arrival - 1) * 3 + j], 0.0, "post {j} early");
        assert_eq!(x[arrival * 3 + j], 1.0, "post {j} at step {arrival}");
    }
}

#[test]
fn runs_reproduce_exactly_for_a_seed() {
    let c = common::compile(&common::root().join("specs/hmm_glm.ng"));
    let a = common::simulate(&c, 3, 300);
    let b = common::simulate(&c, 3, 300);
    let d = common::simulate(&c, 4, 300);
    let counts = |s: &neurograph_runtime::Sim| s.recordings[0].values.clone();
    assert_eq!(counts(&a), counts(&b));
    assert_eq!(
        a.recordings[1].values, b.recordings[1].values,
        "regime sequence"
    );
    assert_ne!(counts(&a), counts(&d));
    assert_eq!(a.conn[0].post(), b.conn[0].post());
}

#[test]
fn random_initial_values_do_not_depend_on_other_items() {
    // Draws are keyed by where they are written: a model-level parameter added at the end of
    // the spec (lowered last among the parameters) leaves a synapse type's random initial
    // weights and a cell type's random initial voltages unchanged.
    let stdp = std::fs::read_to_string(common::root().join("specs/stdp.ng")).unwrap();
    let edited = format!("{stdp}\nparam unused_extra = 1\n");
    assert_ne!(stdp, edited);
    let initial = |text: &str| {
        let c = common::compile_text(text);
        let sim =
            neurograph_runtime::Sim::new(std::sync::Arc::clone(&c), &common::config(5)).unwrap();
        let w = sim.nodes[sim.n_pops]
            .vars
            .values()
            .map(|s| s.elements(4))
            .collect::<Vec<_>>();
        let mut w: Vec<Vec<u64>> = w
            .iter()
            .map(|col| col.iter().map(|x| x.to_bits()).collect())
            .collect();
        w.sort();
        w
    };
    assert_eq!(initial(&stdp), initial(&edited));
    // And the cell's own draws: CUBA's uniform initial voltages.
    let cuba = std::fs::read_to_string(common::root().join("specs/cuba.ng")).unwrap();
    let edited = format!("{cuba}\nparam unused_extra = 1\n");
    let v0 = |text: &str| {
        let c = common::compile_text(text);
        let sim =
            neurograph_runtime::Sim::new(std::sync::Arc::clone(&c), &common::config(5)).unwrap();
        let (e, pop) = c.model.populations.iter().next().unwrap();
        let v = c.model.cell_types[pop.cell_type].states[0];
        sim.state_values(neurograph::compiler::ir::Node::Population(e), v, None)
    };
    assert_eq!(v0(&cuba), v0(&edited));
}

#[test]
fn a_connection_probability_follows_its_parameter_override() {
    // `connect bernoulli(p)` with a model-level `p`: `--set p=...` changes the connectivity.
    let c = common::compile_text(
        "model conn\nparam p = 0.1\ncell C { state x: 1 = 0 }\nsynapse S { state w: 1 = 1 }\n\
         population A = C[50]\nproject A -> A via S { connect bernoulli(p) }\n",
    );
    let synapses = |sets: &[&str]| {
        let mut cfg = common::config(1);
        for s in sets {
            cfg.overrides
                .push(neurograph_runtime::params::resolve(&c.model, s).unwrap());
        }
        neurograph_runtime::Sim::new(std::sync::Arc::clone(&c), &cfg)
            .unwrap()
            .n_synapses()
    };
    let default = synapses(&[]);
    assert!(default > 100 && default < 400, "{default}");
    assert_eq!(synapses(&["p=1"]), 50 * 50);
    assert_eq!(synapses(&["p=0"]), 0);
}

fn single(method: &str, eqs: &str, init: &str) -> String {
    format!(
        "model one
cell C {{
  param w = 20 Hz, tau = 10 ms
  {init}
  {eqs}
  method {method}
}}
population P = C[1]
record P.x
run {{ dt = 0.1 ms; duration = 1 s }}
"
    )
}

#[test]
fn integrators_have_their_expected_accuracy() {
    // Euler on dx/dt = -x/tau is exactly (1 - dt/tau)^n.
    let c = common::compile_text(&single("euler", "dx/dt = -x / tau", "state x: 1 = 1"));
    let x = common::simulate(&c, 1, 1000).recordings[0].values.clone();
    assert!((x[999] - (1.0 - 0.01f64).powi(1000)).abs() < 1e-13);
    // Exponential Euler is exact for a linear decay.
    let c = common::compile_text(&single(
        "exponential_euler",
        "dx/dt = -x / tau",
        "state x: 1 = 1",
    ));
    let x = common::simulate(&c, 1, 1000).recordings[0].values.clone();
    assert!((x[999] - (-10.0f64).exp()).abs() / (-10.0f64).exp() < 1e-12);
    // RK4 on a harmonic oscillator: global error of order (w dt)^4.
    let c = common::compile_text(&single(
        "rk4",
        "dx/dt = 2 * pi * w * y\n  dy/dt = -2 * pi * w * x",
        "state x: 1 = 1, y: 1 = 0",
    ));
    let x = common::simulate(&c, 1, 10_000).recordings[0].values.clone();
    let want = (2.0 * std::f64::consts::PI * 20.0 * 1.0).cos();
    assert!((x[9999] - want).abs() < 1e-8, "{} vs {want}", x[9999]);
}

#[test]
fn exprel_rate_functions_are_finite_at_their_singular_voltage() {
    // a_m of COBAHH has 0/0 at v = VT + 13 mV; written with exprel it is 0.32 kHz * 4 there.
    let spec = "model sing
neuron H {
  param VT = -63 mV
  state v: volt = -50 mV
  state m: 1 = 0
  let alpha_m = 0.32 kHz * 4 / exprel((13 mV - v + VT) / (4 mV))
  dm/dt = alpha_m * (1 - m)
  method exponential_euler
}
population P = H[1]
record P.m
run { dt = 0.1 ms; duration = 1 ms }
";
    let c = common::compile_text(spec);
    let m = common::simulate(&c, 1, 1).recordings[0].values[0];
    let want = 1.0 - (-1280.0f64 * 1e-4).exp();
    assert!((m - want).abs() < 1e-12, "{m} vs {want}");
}

fn stdp_run(seconds: f64) -> (f64, Vec<f64>) {
    let c = common::compile(&common::root().join("specs/stdp.ng"));
    let steps = (seconds / c.model.run.dt).round() as u64;
    let sim = common::simulate(&c, 1, steps);
    let rate = sim.spike_counts[1] as f64 / seconds;
    let w_end = sim.recordings.last().unwrap().values.clone();
    (rate, w_end)
}

#[test]
#[ignore = "100 s of 1000 Poisson inputs (about a minute); run with --release -- --ignored"]
fn stdp_full_run_completes_with_a_bimodal_weight_distribution() {
    let (rate, w) = stdp_run(100.0);
    assert_eq!(w.len(), 1000);
    let (lo, hi, counts) = neurograph::run::histogram(&w);
    eprintln!("output rate {rate:.1} Hz; final weights {lo:e}..{hi:e}: {counts:?}");
    // Additive STDP drives weights towards the bounds (Song et al. 2000): the outer bins
    // each hold more weights than any bin in between.
    let middle = counts[1..9].iter().copied().max().unwrap();
    assert!(counts[0] > middle && counts[9] > middle, "{counts:?}");
    assert!(rate > 5.0 && rate < 60.0, "{rate}");
}

/// 2 s of `specs/stdp.ng` with its input spikes recorded: every final weight equals the
/// rule's result replayed independently here from the initial weights and the recorded input
/// and output spike trains, and the run both potentiates and depresses.
#[test]
fn stdp_short_run_changes_weights_as_the_rule_implies() {
    let text = std::fs::read_to_string(common::root().join("specs/stdp.ng")).unwrap();
    let record = text
        .lines()
        .find(|l| l.starts_with("record "))
        .expect("stdp.ng records");
    let c =
        common::compile_text(&text.replace(record, "record Out.spikes, Inputs.spikes, S.w at end"));
    let seconds = 2.0;
    let dt = c.model.run.dt;
    let steps = (seconds / dt).round() as u64;
    let mut sim =
        neurograph_runtime::Sim::new(std::sync::Arc::clone(&c), &common::config(1)).unwrap();
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
        .find(|(_, v)| v.name == "w" && !matches!(v.scope, neurograph::compiler::ir::Scope::Global))
        .unwrap();
    let w0 = sim.state_values(
        neurograph::compiler::ir::Node::Projection(proj),
        w_var,
        None,
    );
    sim.run(
        steps,
        &std::sync::atomic::AtomicBool::new(false),
        0,
        &mut |_| {},
    );
    sim.finish_records();
    let (t_out, _) = common::events(&sim, 0);
    let (t_in, i_in) = common::events(&sim, 1);
    let w_end = sim.recordings[2].values.clone();
    assert_eq!(w0.len(), 1000);
    assert_eq!(w_end.len(), 1000);
    assert!(t_in.len() > 25_000, "{} input spikes", t_in.len());
    assert!(t_out.len() > 10, "{} output spikes", t_out.len());

    // The rule (synapse STDP of specs/stdp.ng, step order of compiler/src/ir.rs): every step
    // the traces decay by exp(-dt / tau); then `on pre` of the synapses whose source spiked
    // (Apre += dApre; w = clip(w + Apost, 0, wmax)); then `on post` of all synapses when the
    // output spiked (Apost += dApost; w = clip(w + Apre, 0, wmax)).
    let (wmax, tau) = (0.01, 0.02);
    let dapre = 0.01 * wmax;
    let dapost = -dapre * 1.05;
    let decay = (-dt / tau).exp();
    let step_of = |t: f64| (t / dt).round() as u64;
    let mut ins: Vec<(u64, usize)> = t_in
        .iter()
        .zip(&i_in)
        .map(|(&t, &i)| (step_of(t), i as usize))
        .collect();
    ins.sort();
    let outs: Vec<u64> = t_out.iter().map(|&t| step_of(t)).collect();
    let (mut apre, mut apost, mut w) = (vec![0.0f64; 1000], vec![0.0f64; 1000], w0.clone());
    let (mut k_in, mut k_out) = (0, 0);
    for n in 0..steps {
        for a in apre.iter_mut().chain(apost.iter_mut()) {
            *a *= decay;
        }
        while k_in < ins.len() && ins[k_in].0 == n {
            let i = ins[k_in].1;
            apre[i] += dapre;
            w[i] = (w[i] + apost[i]).clamp(0.0, wmax);
            k_in += 1;
        }
        if k_out < outs.len() && outs[k_out] == n {
            for i in 0..1000 {
                apost[i] += dapost;
                w[i] = (w[i] + apre[i]).clamp(0.0, wmax);
            }
            k_out += 1;
        }
    }
    assert_eq!(
        (k_in, k_out),
        (ins.len(), outs.len()),
        "spikes outside the run"
    );
    let worst = w
        .iter()
        .zip(&w_end)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let (mut up, mut down, mut at_bounds) = (0, 0, 0);
    for (a, b) in w0.iter().zip(&w_end) {
        assert!((0.0..=wmax).contains(b), "weight {b} outside [0, wmax]");
        if b > a {
            up += 1;
        } else if b < a {
            down += 1;
        }
        if *b == 0.0 || *b == wmax {
            at_bounds += 1;
        }
    }
    let mean0 = w0.iter().sum::<f64>() / 1000.0;
    let mean_end = w_end.iter().sum::<f64>() / 1000.0;
    eprintln!(
        "{} input and {} output spikes; {up} weights potentiated, {down} depressed, {at_bounds} at a bound; mean {mean0:e} -> {mean_end:e}; largest difference to the replay {worst:e}",
        t_in.len(),
        t_out.len()
    );
    // Float rounding only: the traces decay by a propagator that may differ from exp() in
    // the last bit.
    assert!(
        worst < 1e-12 * wmax,
        "final weights differ from the rule's by up to {worst:e}"
    );
    // Both sides of the window act: hundreds of synapses move each way.
    assert!(up > 100 && down > 100, "{up} potentiated, {down} depressed");
}

/// `specs/stdp.ng` (seed 1, 10 s) against Brian2 2.11 running STDP.py's network (method
/// 'exact') on the same input spikes and initial weights (`benches/peers/stdp_replay.sh`
/// exported them from this run and committed Brian2's output, see `tests/data/README.md`):
/// the same output spikes, each in the same step, and the same final weights.
#[test]
fn stdp_replay_reproduces_brian2_spike_for_spike() {
    let text = std::fs::read_to_string(common::root().join("specs/stdp.ng")).unwrap();
    let record = text.lines().find(|l| l.starts_with("record ")).unwrap();
    let c = common::compile_text(&text.replace(record, "record Out.spikes, S.w at end"));
    let dt = c.model.run.dt;
    let mut cfg = common::config(1);
    cfg.backend = neurograph_runtime::Backend::Jit;
    let mut sim = neurograph_runtime::Sim::new(std::sync::Arc::clone(&c), &cfg).unwrap();
    sim.run(
        (10.0 / dt).round() as u64,
        &std::sync::atomic::AtomicBool::new(false),
        0,
        &mut |_| {},
    );
    sim.finish_records();
    let load = |name: &str| {
        neurograph_runtime::npy::read(&common::root().join("tests/data").join(name))
            .unwrap()
            .data
    };
    let (brian_t, brian_w) = (
        load("stdp_replay_brian2_t.npy"),
        load("stdp_replay_brian2_w.npy"),
    );
    let ours_t = &sim.recordings[0].times;
    let ours_w = &sim.recordings[1].values;
    assert!(brian_t.len() > 300, "{} Brian2 spikes", brian_t.len());
    let first_difference = ours_t
        .iter()
        .zip(&brian_t)
        .position(|(a, b)| (a - b).abs() >= 0.5 * dt);
    assert!(
        ours_t.len() == brian_t.len() && first_difference.is_none(),
        "{} output spikes vs Brian2's {}; first in another step: {first_difference:?}",
        ours_t.len(),
        brian_t.len()
    );
    assert_eq!(ours_w.len(), brian_w.len());
    let worst = ours_w
        .iter()
        .zip(&brian_w)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "{} output spikes as Brian2's; final weights within {worst:e}",
        ours_t.len()
    );
    assert!(
        worst < 1e-12 * 0.01,
        "final weights differ from Brian2's by {worst:e}"
    );
}

#[test]
fn spike_file_inputs_replay_their_trains() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("spikes");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("train.npy");
    // (time in s, source): source 0 at 1 ms and 3 ms, source 1 at 2 ms.
    let rows = [0.001, 0.0, 0.002, 1.0, 0.003, 0.0];
    std::fs::write(
        &file,
        neurograph_runtime::npy::to_bytes(&rows, &[3, 2], neurograph_runtime::npy::Dtype::F64),
    )
    .unwrap();
    let spec = format!(
        "model replay
{CLOCK}
synapse Kick {{ on pre {{ post.x += 1 }} }}
input S = spikes(\"{}\", 2)
population Post = Clock[1] {{ fire_step = -1 }}
project S -> Post via Kick {{ connect all_to_all }}
record S.spikes, Post.x at end
run {{ dt = 0.1 ms; duration = 5 ms }}
",
        file.display()
    );
    let c = common::compile_text(&spec);
    let sim = common::simulate(&c, 1, 50);
    let (t, i) = common::events(&sim, 0);
    assert_eq!(i, vec![0, 1, 0]);
    assert!(
        t.iter()
            .zip([0.001, 0.002, 0.003])
            .all(|(a, b)| (a - b).abs() < 1e-12),
        "{t:?}"
    );
    assert_eq!(sim.recordings[1].values, vec![3.0]);
}
