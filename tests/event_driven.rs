//! Event-driven synaptic variables (`compiler::event_driven`, `runtime::lazy`): STDP's traces
//! advance per synapse when an event or a record touches them. Against the clock-driven form
//! (`run { event_driven = false }`): the same spikes, and every value within 1e-12 relative.

mod common;

use neurograph::{Backend, Model};

/// `specs/stdp.ng` for `seconds`, recording the traces, optionally clock-driven.
fn stdp(seconds: f64, clock_driven: bool) -> String {
    let text = std::fs::read_to_string(common::root().join("specs/stdp.ng")).unwrap();
    let record = text.lines().find(|l| l.starts_with("record ")).unwrap();
    let run = text.lines().find(|l| l.starts_with("run ")).unwrap();
    let option = if clock_driven {
        "; event_driven = false"
    } else {
        ""
    };
    text.replace(
        record,
        "record Out.spikes, S.Apre[0..50] every 1 ms, S.Apost[0..50] every 1 ms, S.w at end",
    )
    .replace(
        run,
        &format!("run {{ dt = 0.1 ms; duration = {seconds} s; seed = 1{option} }}"),
    )
}

fn run(text: &str, backend: Backend) -> Vec<Vec<f64>> {
    let c = common::compile_text(text);
    let steps = (c.model.run.duration / c.model.run.dt).round() as u64;
    common::simulate_with(&c, 1, steps, backend)
        .recordings
        .iter()
        .flat_map(|r| [r.times.clone(), r.values.clone()])
        .collect()
}

fn assert_close(what: &str, a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        let scale = x.abs().max(y.abs());
        assert!(
            (x - y).abs() <= 1e-12 * scale,
            "{what}[{k}]: {x:e} event-driven, {y:e} clock-driven"
        );
    }
}

#[test]
fn stdp_traces_become_event_driven_and_agree_with_the_clock_driven_form() {
    let ir = |text: &str| {
        let c = common::compile_text(text);
        neurograph::compiler::print::print_model(&c.model, &c.info)
    };
    let lazy_text = stdp(2.0, false);
    let clock_text = stdp(2.0, true);
    assert!(ir(&lazy_text).contains("event-driven dApre/dt"));
    assert!(ir(&clock_text).contains("ode dApre/dt"));

    let lazy = run(&lazy_text, Backend::Jit);
    let clock = run(&clock_text, Backend::Jit);
    // Output spikes: the same steps.
    assert!(lazy[0].len() > 20, "{} output spikes", lazy[0].len());
    assert_eq!(lazy[0], clock[0], "spike times");
    assert_eq!(lazy[1], clock[1], "spike indices");
    for (k, what) in [
        (3, "Apre samples"),
        (5, "Apost samples"),
        (7, "final weights"),
    ] {
        assert_close(what, &lazy[k], &clock[k]);
    }
    // The traces moved: pre spikes raise Apre, post spikes lower Apost.
    assert!(lazy[3].iter().any(|&x| x > 0.0) && lazy[5].iter().any(|&x| x < 0.0));
    // Both backends run the same lazy updates.
    assert_eq!(run(&lazy_text, Backend::Interp), lazy);
}

#[test]
fn state_reads_and_writes_see_current_values() {
    // Read between steps, overwrite, go on: as the clock-driven form does.
    let go = |clock_driven: bool| {
        let model = Model::compile_str(&stdp(0.3, clock_driven)).unwrap();
        let mut sim = model.simulation().seed(1).build().unwrap();
        sim.run_for("0.15 s").unwrap();
        let apre = sim.state("S", "Apre").unwrap().into_owned();
        let doubled: Vec<f64> = apre.iter().map(|x| 2.0 * x).collect();
        sim.set_state("S", "Apre", &doubled).unwrap();
        sim.run_for("0.15 s").unwrap();
        let after = sim.state("S", "Apre").unwrap().into_owned();
        let w = sim.state("S", "w").unwrap().into_owned();
        (apre, after, w, sim.spikes("Out").unwrap())
    };
    let (a0, a1, w, spikes) = go(false);
    let (b0, b1, v, clock_spikes) = go(true);
    assert!(a0.iter().any(|&x| x > 0.0));
    assert_close("Apre at 0.15 s", &a0, &b0);
    assert_close("Apre at 0.3 s", &a1, &b1);
    assert_close("w at 0.3 s", &w, &v);
    assert_eq!(spikes, clock_spikes);
}

#[test]
fn variables_read_elsewhere_stay_clock_driven() {
    // `x` feeds a coupling and `y` another equation; `z` is integrated by Euler: none can be
    // left to events. `u` qualifies.
    let text = "model mixed
neuron N {
  state v: volt = 0 mV
  state drive: 1 = 0
  dv/dt = -v / (10 ms) + drive * mV / ms
  spike when v > 1 mV { v = 0 mV }
}
synapse Traces {
  state x: 1 = 0, y: 1 = 0, u: 1 = 0, q: 1 = 0
  dx/dt = -x / (10 ms)
  dy/dt = -y / (10 ms)
  dq/dt = y / (10 ms) - q / (5 ms)
  du/dt = -u / (20 ms)
  on pre { x += 1; y += 1; u += 1 }
}
synapse Euler {
  state z: 1 = 0
  dz/dt = -z / (10 ms)
  method euler
  on pre { z += 1 }
}
synapse Kick { on pre { post.v += 2 mV } }
input In = poisson(10, rate = 300 Hz)
population P = N[10]
project In -> P via Kick { connect one_to_one }
project A: P -> P via Traces {
  connect all_to_all
  delay = dt
  post.drive = sum(x)
}
project B: P -> P via Euler { connect all_to_all }
record P.spikes, A.u every 1 ms, A.x every 1 ms
run { dt = 0.1 ms; duration = 200 ms }
";
    let c = common::compile_text(text);
    let ir = neurograph::compiler::print::print_model(&c.model, &c.info);
    for clock in ["ode dx/dt", "ode dy/dt", "ode dq/dt", "ode dz/dt"] {
        assert!(ir.contains(clock), "{clock}:\n{ir}");
    }
    assert!(ir.contains("event-driven du/dt"), "{ir}");
    // With a delay (due synapses from the queue): as the clock-driven form.
    let clock_text = text.replace(
        "duration = 200 ms",
        "duration = 200 ms; event_driven = false",
    );
    let lazy = run(text, Backend::Jit);
    let clock = run(&clock_text, Backend::Jit);
    assert!(lazy[0].len() > 50, "{} spikes", lazy[0].len());
    assert_eq!(lazy[0], clock[0]);
    assert_close("u samples", &lazy[3], &clock[3]);
    assert!(lazy[3].iter().any(|&u| u > 0.0));
    assert_eq!(lazy[5], clock[5], "x stays clock-driven in both");
}

#[test]
fn a_parameter_change_applies_from_the_step_it_is_made() {
    let go = |clock_driven: bool| {
        let model = Model::compile_str(&stdp(0.4, clock_driven)).unwrap();
        let mut sim = model.simulation().seed(1).build().unwrap();
        sim.run_for("0.2 s").unwrap();
        sim.set_param("taupre", "5 ms").unwrap();
        sim.run_for("0.2 s").unwrap();
        (
            sim.state("S", "Apre").unwrap().into_owned(),
            sim.spikes("Out").unwrap(),
        )
    };
    let (a, spikes) = go(false);
    let (b, clock_spikes) = go(true);
    assert_close("Apre after a change of taupre", &a, &b);
    assert_eq!(spikes, clock_spikes);
}

#[test]
fn a_trace_written_mid_run_leaves_the_run_unchanged_and_f32_stays_clock_driven() {
    let model = Model::compile_str(&stdp(0.3, false)).unwrap();
    let straight = {
        let mut sim = model.simulation().seed(1).build().unwrap();
        sim.run_for("0.3 s").unwrap();
        sim.state("S", "Apre").unwrap().into_owned()
    };
    let dir = common::temp_dir("event_driven", "mid_run");
    let mut sim = model.simulation().seed(1).build().unwrap();
    sim.run_for("0.15 s").unwrap();
    sim.write_trace(&dir.join("half")).unwrap();
    sim.run_for("0.15 s").unwrap();
    let bits = |xs: &[f64]| xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&sim.state("S", "Apre").unwrap()),
        bits(&straight),
        "writing a trace changed the run"
    );

    let f32_text = stdp(0.1, false).replace("seed = 1 }", "seed = 1; precision = f32 }");
    let c = common::compile_text(&f32_text);
    let ir = neurograph::compiler::print::print_model(&c.model, &c.info);
    assert!(ir.contains("ode dApre/dt"), "{ir}");
}

#[test]
fn a_growing_event_driven_value_is_caught_by_the_finiteness_check() {
    // `x` grows e-fold every 0.1 ms and no event touches it after the first: in memory it
    // stays at its last event's value, as it is now it has overflowed.
    let text = "model growing
neuron N { state v: volt = 0 mV; dv/dt = -v / (10 ms); spike when v > 1 mV { v = 0 mV } }
synapse Grow { state x: 1 = 0; dx/dt = x / (0.1 ms); on pre { x += 1 } }
input In = spikes(\"one_spike.npy\", 1)
population P = N[1]
project In -> P via Grow { connect all_to_all }
run { dt = 0.1 ms; duration = 100 ms }
";
    let dir = common::temp_dir("event_driven", "growing");
    neurograph_runtime::npy::write(
        &dir.join("one_spike.npy"),
        &[0.001, 0.0],
        &[1, 2],
        neurograph_runtime::npy::Dtype::F64,
    )
    .unwrap();
    let model = Model::compile_text(&dir.join("growing.ng"), text.to_string()).unwrap();
    let ir =
        neurograph::compiler::print::print_model(&model.compiled().model, &model.compiled().info);
    assert!(ir.contains("event-driven dx/dt"), "{ir}");
    let mut sim = model.simulation().build().unwrap();
    // The periodic check stops the run.
    match sim.run_for("100 ms") {
        Err(neurograph::Error::Diverged(d)) => {
            assert_eq!((d.node.as_str(), d.variable.as_str()), ("In->P", "x"));
            assert!(d.value.is_infinite());
        }
        other => panic!("not stopped: {other:?}"),
    }
}
