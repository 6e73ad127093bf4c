//! The embedding API (`neurograph::Model`, `neurograph::Simulation`): compile, step, read and
//! write state and parameters by name, and the central promise that a parameter changed in
//! the middle of a run leaves the generated code and the interpreter bit-identical.

mod common;

use neurograph::{Backend, Error, Model, Simulation, Stopped};

fn cuba() -> Model {
    Model::compile_file(&common::root().join("specs/cuba.ng")).unwrap()
}

/// Everything a run leaves that a backend could get wrong: spikes and every state value.
fn fingerprint(sim: &Simulation, pops: &[&str], vars: &[&str]) -> (Vec<(f64, u32)>, Vec<u64>) {
    let mut spikes = Vec::new();
    for p in pops {
        let (t, i) = sim.spikes(p).unwrap();
        spikes.extend(t.into_iter().zip(i));
    }
    let mut bits = Vec::new();
    for p in pops {
        for v in vars {
            bits.extend(sim.state(p, v).unwrap().iter().map(|x| x.to_bits()));
        }
    }
    (spikes, bits)
}

/// Run `model` 100 steps, change a parameter, run 200 more, on both backends; the two must
/// agree bit for bit and differ from a run without the change.
fn change_at_step_100(model: &Model, name: &str, value: &str, pops: &[&str], vars: &[&str]) {
    let run = |backend: Backend, change: bool| {
        let mut sim = model.simulation().seed(3).backend(backend).build().unwrap();
        assert_eq!(sim.step(100).unwrap(), Stopped::Done);
        if change {
            sim.set_param(name, value).unwrap();
        }
        sim.step(200).unwrap();
        fingerprint(&sim, pops, vars)
    };
    let interp = run(Backend::Interp, true);
    let jit = run(Backend::Jit, true);
    assert!(
        interp == jit,
        "{name} = {value}: interp and jit differ after the change ({} vs {} spikes)",
        interp.0.len(),
        jit.0.len()
    );
    let unchanged = run(Backend::Jit, false);
    assert!(
        unchanged != jit,
        "{name} = {value}: the change had no effect, so the comparison proves nothing"
    );
}

#[test]
fn a_model_level_parameter_changed_mid_run_keeps_the_backends_identical() {
    change_at_step_100(&cuba(), "we", "4 mV", &["E", "I"], &["v", "ge", "gi"]);
}

#[test]
fn a_cell_parameter_under_exact_integration_changed_mid_run_keeps_the_backends_identical() {
    // The defect this reproduces: El = -40 mV at 10 ms gave 2225 spikes with the interpreter
    // and 645 with the JIT (cached propagator constants were never rebuilt).
    change_at_step_100(&cuba(), "LIF.El", "-40 mV", &["E", "I"], &["v", "ge", "gi"]);
    change_at_step_100(
        &cuba(),
        "LIF.taum",
        "12 ms",
        &["E", "I"],
        &["v", "ge", "gi"],
    );
}

#[test]
fn a_cell_parameter_under_euler_changed_mid_run_keeps_the_backends_identical() {
    let coba = Model::compile_file(&common::root().join("specs/coba.ng")).unwrap();
    change_at_step_100(
        &coba,
        "CondLIF.taum",
        "12 ms",
        &["E", "I"],
        &["v", "ge", "gi"],
    );
}

#[test]
fn a_synapse_parameter_changed_mid_run_keeps_the_backends_identical() {
    let text = std::fs::read_to_string(common::root().join("specs/cuba.ng"))
        .unwrap()
        .replace(
            "synapse Exc { on pre { post.ge += we } }",
            "synapse Exc { param w = 1.62 mV; on pre { post.ge += w } }",
        );
    assert!(text.contains("param w = 1.62 mV"), "cuba.ng changed");
    let model = Model::compile_text(&common::root().join("specs/cuba_w.ng"), text).unwrap();
    change_at_step_100(&model, "Exc.w", "5 mV", &["E", "I"], &["v", "ge", "gi"]);
}

#[test]
fn a_connection_probability_cannot_change_after_set_up() {
    let text = "model p
param p = 0.1
neuron N { state v: volt = 0 mV; dv/dt = -v / (10 ms); spike when v > 1 mV { v = 0 mV } }
synapse S { on pre { post.v += 1 mV } }
population A = N[20]
project A -> A via S { connect bernoulli(p) }
";
    let model = Model::compile_text(&common::root().join("specs/p.ng"), text.into()).unwrap();
    let mut sim = model.simulation().set("p", "0.5").build().unwrap();
    sim.step(10).unwrap();
    let err = sim.set_param("p", "0.9").unwrap_err().to_string();
    assert!(
        err.contains("connection rule") && err.contains("cannot change during a run"),
        "{err}"
    );
    assert!(err.contains("p.ng:6:"), "{err}");
    assert_eq!(sim.param("p").unwrap(), 0.5);
}

#[test]
fn a_population_parameter_does_not_leak_into_other_populations_of_its_type() {
    let model = cuba();
    // At set-up...
    let sim = model.simulation().set("E.taum", "15 ms").build().unwrap();
    assert_eq!(sim.param("E.taum").unwrap(), 0.015);
    assert_eq!(sim.param("I.taum").unwrap(), 0.02);
    assert!(
        sim.param("LIF.taum").is_err(),
        "differs between populations"
    );
    // ...and during a run.
    let mut sim = model.simulation().build().unwrap();
    sim.step(5).unwrap();
    sim.set_param("I.Vt", "-45 mV").unwrap();
    assert_eq!(sim.param("I.Vt").unwrap(), -0.045);
    assert_eq!(sim.param("E.Vt").unwrap(), -0.05);
    sim.set_param("LIF.Vt", "-51 mV").unwrap();
    assert!((sim.param("LIF.Vt").unwrap() + 0.051).abs() < 1e-15);
}

#[test]
fn state_is_read_and_written_by_name_in_si_units() {
    let model = cuba();
    let mut sim = model.simulation().seed(2).build().unwrap();
    let v = sim.state("E", "v").unwrap().into_owned();
    assert_eq!(v.len(), 3200);
    assert!(
        v.iter().all(|&x| (-0.06..=-0.05).contains(&x)),
        "uniform(Vr, Vt)"
    );
    let new = vec![-0.055; 3200];
    sim.set_state("E", "v", &new).unwrap();
    assert_eq!(&*sim.state("E", "v").unwrap(), &new[..]);
    assert!(sim.set_state("E", "v", &[0.0; 3]).is_err());
    assert!(sim.set_state("E", "v", &[f64::NAN; 3200]).is_err());
    let err = sim.state("E", "vv").unwrap_err().to_string();
    assert!(
        err.contains("no variable `vv`") && err.contains("ge, gi"),
        "{err}"
    );
    let err = sim.state("X", "v").unwrap_err().to_string();
    assert!(err.contains("no population or projection `X`"), "{err}");
    let err = sim.set_param("LIF.taum", "5 mV").unwrap_err().to_string();
    assert!(err.contains("is in s"), "{err}");
}

#[test]
fn compile_errors_carry_their_place() {
    let err = match Model::compile_str("model x\nneuron N { state v: volt = 0 mV; dv/dt = v }\n") {
        Err(e) => e,
        Ok(_) => panic!("compiled"),
    };
    let Error::Compile {
        rendered,
        diagnostics,
        lines,
    } = &err
    else {
        panic!("{err}")
    };
    assert!(!diagnostics.is_empty());
    assert!(lines[0].starts_with("<string>:2:"), "{lines:?}");
    assert!(rendered.contains("<string>:2:"), "{rendered}");
    assert!(err.to_string().contains("unit mismatch"), "{err}");
}

#[test]
fn a_simulation_runs_on_another_thread_and_matches_the_cli() {
    let model = cuba();
    let mut sim = model.simulation().seed(7).build().unwrap();
    let handle = std::thread::spawn(move || {
        sim.run_for("50 ms").unwrap();
        sim
    });
    let sim = handle.join().unwrap();
    assert_eq!(sim.steps(), 500);
    let (t, i) = sim.spikes("E").unwrap();
    assert!(!t.is_empty());
    // The CLI with the same seed records the same spikes.
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("embed");
    let _ = std::fs::remove_dir_all(&out);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_neurograph"))
        .args([
            "run",
            "specs/cuba.ng",
            "--seed",
            "7",
            "--duration",
            "50ms",
            "--quiet",
        ])
        .arg("--out")
        .arg(&out)
        .current_dir(common::root())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let ct = neurograph_runtime::npy::read(&out.join("E.spikes.t.npy")).unwrap();
    let ci = neurograph_runtime::npy::read(&out.join("E.spikes.i.npy")).unwrap();
    assert_eq!(ct.data, t);
    assert_eq!(ci.data, i.iter().map(|&x| x as f64).collect::<Vec<_>>());
}

#[test]
fn a_stop_flag_interrupts_and_a_trace_can_be_written_at_any_point() {
    let model = cuba();
    let mut sim = model.simulation().build().unwrap();
    let stop = sim.stop_flag();
    let mut calls = 0;
    let stopped = sim
        .step_with_progress(10_000, &mut |done, total| {
            calls += 1;
            assert_eq!(total, 10_000);
            if done >= 1000 {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        })
        .unwrap();
    assert_eq!(stopped, Stopped::Interrupted);
    assert!(calls >= 20);
    assert!((1000..1100).contains(&sim.steps()), "{}", sim.steps());
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("embed-trace");
    let _ = std::fs::remove_dir_all(&out);
    sim.write_trace(&out).unwrap();
    let m = common::manifest(&out);
    assert_eq!(m["status"], "interrupted");
    assert_eq!(m["steps"].as_u64(), Some(sim.steps()));
    // The next call runs again.
    assert_eq!(sim.step(10).unwrap(), Stopped::Done);
    // Spikes of each step, as they happen.
    let mut seen = 0usize;
    sim.step_each(50, &mut |s| {
        seen += s.fired("E")?.len();
        Ok(())
    })
    .unwrap();
    assert!(seen > 0);
}

fn compiled_functions(model: &Model) -> usize {
    model.compiled().kernels.get().map_or(0, |j| j.functions())
}

#[test]
fn simulations_of_one_model_share_its_compiled_kernels() {
    let model = cuba();
    assert_eq!(compiled_functions(&model), 0);
    let mut first = model.simulation().seed(1).build().unwrap();
    first.step(20).unwrap();
    let after_first = compiled_functions(&model);
    assert!(after_first > 0, "the first simulation compiled its kernels");
    for seed in 2..6 {
        let mut sim = model.simulation().seed(seed).build().unwrap();
        sim.step(20).unwrap();
        assert!(sim.raw().fused_calls > 0, "generated code ran");
    }
    assert_eq!(
        compiled_functions(&model),
        after_first,
        "other seeds compiled nothing new"
    );
}

/// A stop requested before a run stops it before its first step (it is not lost by the run
/// starting), and the interrupted run answers it: the next one runs.
#[test]
fn a_stop_requested_before_a_run_is_not_lost() {
    let model = Model::compile_file(&common::root().join("specs/cuba.ng")).unwrap();
    let mut sim = model.simulation().seed(2).build().unwrap();
    sim.step(5).unwrap();
    sim.stop_flag()
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(sim.step(10).unwrap(), neurograph::Stopped::Interrupted);
    assert_eq!(sim.steps(), 5);
    assert_eq!(sim.step(10).unwrap(), neurograph::Stopped::Done);
    assert_eq!(sim.steps(), 15);
}
