//! The JIT backend against the interpreter: every recorded array of every bundled spec is the
//! same bit for bit, for two seeds; compiled kernels refuse inputs that would take them outside
//! their buffers.
#![cfg(feature = "jit")]

mod common;

use std::sync::atomic::AtomicBool;

use neurograph::compiler::codegen::{InputMode, KernelKey};
use neurograph::compiler::ir::Node;
use neurograph_runtime::jit::{call_checked, new_jit, CallArgs, Column};
use neurograph_runtime::{Backend, Sim};

type Traces = common::TraceBits;

fn run(
    c: &std::sync::Arc<neurograph::compiler::Compiled>,
    seed: u64,
    steps: u64,
    backend: Backend,
) -> Traces {
    run_counting(c, seed, steps, backend).0
}

/// The recorded arrays as bits, and how many fused-kernel calls and event-code calls (per
/// kind: on pre, on post, cell events, couplings) the run made.
fn run_counting(
    c: &std::sync::Arc<neurograph::compiler::Compiled>,
    seed: u64,
    steps: u64,
    backend: Backend,
) -> (Traces, u64, [u64; 5]) {
    let sim = common::simulate_with(c, seed, steps, backend);
    (bits(&sim), sim.fused_calls, sim.event_code_calls)
}

/// The recorded arrays of a finished simulation, as bits.
fn bits(sim: &Sim) -> Traces {
    common::trace_bits(sim)
}

/// What generated code each bundled spec must run in its first 20 ms (at least 50 steps) with
/// the JIT backend, for both seeds: fused population / synapse-dynamics kernels (or none), and
/// event code per kind (on pre, on post, cell events, couplings, on step; `false`: not
/// required). A new spec needs an entry.
const GENERATED: [(&str, bool, [bool; 5]); 12] = [
    ("astro_minimal", true, [true, false, true, true, false]),
    // No neuron fires in the first 20 ms: its on-pre code and the astrocytes' release are
    // compared by `the_tripartite_release_path_equals_the_interpreter`.
    ("astro_tripartite", true, [false, false, false, true, false]),
    ("bdh_gpu", true, [false, false, false, true, true]),
    ("coba", true, [true, false, true, false, false]),
    ("cobahh", true, [true, false, true, false, false]),
    ("cuba", true, [true, false, true, false, false]),
    ("glm_network", true, [true, false, true, false, false]),
    // Its coupling reads per-regime weights, which stay with the interpreter.
    ("hmm_glm", true, [false, false, false, false, false]),
    // No input spike in the first 20 ms.
    ("lr_astrocyte", true, [false, false, false, false, false]),
    ("microcircuit", true, [true, false, true, false, false]),
    ("rnn_timescales", true, [false, false, false, true, false]),
    ("stdp", true, [true, true, true, false, false]),
];

/// A spec with every state variable of every population and named projection recorded at the
/// end as well, so that a difference that does not reach the spec's own records (a coupling
/// target, a synapse variable) is still compared.
fn with_every_state_at_end(
    path: &std::path::Path,
) -> std::sync::Arc<neurograph::compiler::Compiled> {
    let text = std::fs::read_to_string(path).unwrap();
    let plain = common::compile(path);
    let m = &plain.model;
    let mut extra = String::new();
    for (_, p) in m.populations.iter() {
        for &v in &m.cell_types[p.cell_type].states {
            extra.push_str(&format!(
                "record {}.{} at end\n",
                p.name, m.variables[v].name
            ));
        }
    }
    for (_, p) in m.projections.iter() {
        if !text.contains(&format!("project {}:", p.name)) {
            continue; // anonymous: no name to record it by
        }
        for &v in &m.synapse_types[p.synapse].states {
            extra.push_str(&format!(
                "record {}.{} at end\n",
                p.name, m.variables[v].name
            ));
        }
    }
    assert!(!extra.is_empty(), "{}: no state", path.display());
    let c = common::compile_text(&format!("{text}\n{extra}"));
    assert!(c.model.records.len() > m.records.len());
    c
}

#[test]
fn jit_traces_equal_the_interpreter_bit_for_bit_on_every_spec() {
    let specs = common::runnable_specs();
    assert_eq!(
        specs.len(),
        GENERATED.len(),
        "a spec without an entry in GENERATED"
    );
    for path in specs {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let &(_, fused_expected, events_expected) = GENERATED
            .iter()
            .find(|(name, _, _)| *name == stem)
            .unwrap_or_else(|| panic!("{stem}: add it to GENERATED"));
        let c = with_every_state_at_end(&path);
        let steps = (0.02 / c.model.run.dt).round().max(50.0) as u64;
        for seed in [1, 2] {
            let a = run(&c, seed, steps, Backend::Interp);
            for backend in [Backend::Jit, Backend::JitScalar] {
                let (b, fused, calls) = run_counting(&c, seed, steps, backend);
                assert_eq!(a.len(), b.len(), "{}: record count", path.display());
                for (k, (ra, rb)) in a.iter().zip(&b).enumerate() {
                    assert!(
                        ra == rb,
                        "{}: record {k} differs between interp and {backend:?} (seed {seed})",
                        path.display()
                    );
                }
                // Generated code ran (and so was compared), every step where expected.
                assert_eq!(
                    fused > 0,
                    fused_expected,
                    "{stem} {backend:?}: fused calls {fused}"
                );
                assert!(
                    fused == 0 || fused % steps == 0,
                    "{stem}: {fused} fused calls in {steps} steps"
                );
                for kind in 0..5 {
                    assert!(
                        calls[kind] > 0 || !events_expected[kind],
                        "{stem} {backend:?} seed {seed}: event code calls {calls:?}"
                    );
                }
            }
        }
    }
}

/// Fused population updates shared between 2 and 4 threads (every population with at least
/// two cells per thread, forced), and delayed events delivered in parts by post element, give
/// the one-thread traces bit for bit on every bundled spec.
#[test]
fn traces_do_not_depend_on_threads_on_every_spec() {
    let specs = common::runnable_specs();
    let (mut shared_specs, mut split_specs) = (0, 0);
    for path in specs {
        let c = with_every_state_at_end(&path);
        let steps = (0.02 / c.model.run.dt).round().max(50.0) as u64;
        let one = run(&c, 1, steps, Backend::Jit);
        for threads in [2, 4] {
            let mut cfg = common::config(1);
            cfg.backend = Backend::Jit;
            let mut sim = Sim::new(std::sync::Arc::clone(&c), &cfg).unwrap();
            sim.set_threads(threads);
            sim.share_always(2);
            sim.run(steps, &AtomicBool::new(false), 0, &mut |_| {});
            sim.finish_records();
            let many = bits(&sim);
            assert!(
                one == many,
                "{}: traces differ with {threads} threads",
                path.display()
            );
            if threads == 2 && sim.shared_calls > 0 {
                shared_specs += 1;
            }
            split_specs += usize::from(threads == 2 && sim.split_deliveries > 0);
        }
    }
    // Every spec with a fused population update shared it (the others have none).
    assert!(shared_specs >= 8, "{shared_specs} specs shared an update");
    // Delayed events delivered in parts (the microcircuit's projections at least).
    assert!(split_specs >= 1, "{split_specs} specs split a delivery");
}

#[test]
fn the_tripartite_release_path_equals_the_interpreter() {
    // The astrocytes of specs/astro_tripartite.ng first release gliotransmitter at 2.08 s
    // (seed 1); with the release threshold C_Theta lowered from 0.5 uM to 0.015 uM (a `--set`
    // override) all 320 release at 35 ms, and the network fires from about 90 ms on. So 0.12 s
    // compare the release (the G-ChI reset in generated code), the gliotransmitter coupling
    // into the synapses, the receptors it activates (Gamma_S) and the on-pre code whose
    // release probability U_0 they lower, bit for bit in all three backends.
    let text = std::fs::read_to_string(common::root().join("specs/astro_tripartite.ng")).unwrap();
    let record = text.lines().find(|l| l.starts_with("record ")).unwrap();
    let c = common::compile_text(&text.replace(
        record,
        "record Exc.spikes, Inh.spikes, Astro.spikes, Astro.C[0..10], Astro.G_A[0..10], ExcSyn.Gamma_S at end, ExcSyn.U_0 at end, ExcSyn.u_S at end, ExcSyn.G_A[0..400] every 1 ms, Astro.Y_S every 1 ms, Astro.J_coupling every 1 ms, Astro.C at end, Exc.v at end",
    ));
    let steps = 1200;
    for seed in [1, 2] {
        let runs: Vec<(Traces, u64, [u64; 5])> =
            [Backend::Interp, Backend::Jit, Backend::JitScalar]
                .into_iter()
                .map(|backend| {
                    let mut cfg = common::config(seed);
                    cfg.backend = backend;
                    cfg.overrides.push(
                        neurograph_runtime::params::resolve(&c.model, "GChI.C_Theta=0.015uM")
                            .unwrap(),
                    );
                    let mut sim = Sim::new(std::sync::Arc::clone(&c), &cfg).unwrap();
                    sim.run(steps, &AtomicBool::new(false), 0, &mut |_| {});
                    sim.finish_records();
                    (bits(&sim), sim.fused_calls, sim.event_code_calls)
                })
                .collect();
        let interp = &runs[0].0;
        let f = |bits: &Vec<u64>| {
            bits.iter()
                .map(|&b| f64::from_bits(b))
                .collect::<Vec<f64>>()
        };
        // The release happened in the compared window, and reached the synapses.
        let releases = f(&interp[2].0);
        let first_release = releases.first().copied().unwrap_or(f64::INFINITY);
        assert!(
            first_release < 0.05,
            "seed {seed}: no release by 50 ms ({releases:?})"
        );
        let g_a = f(&interp[4].1);
        assert!(
            g_a.iter().any(|&g| g > 0.0),
            "seed {seed}: no gliotransmitter"
        );
        let gamma = f(&interp[5].1);
        let u0 = f(&interp[6].1);
        assert!(
            gamma.iter().any(|&g| g > 0.01),
            "seed {seed}: receptors not activated"
        );
        assert!(
            u0.iter().any(|&u| u > 0.0 && u < 0.6),
            "seed {seed}: U_0 not lowered"
        );
        let late_spikes = f(&interp[0].0)
            .iter()
            .filter(|&&t| t > first_release)
            .count();
        assert!(
            late_spikes > 20,
            "seed {seed}: {late_spikes} Exc spikes after the release"
        );
        for (k, (traces, fused, calls)) in runs.iter().enumerate().skip(1) {
            assert!(
                traces == interp,
                "seed {seed}: backend {k} differs from the interpreter"
            );
            assert_eq!(*fused, 5 * steps, "seed {seed}: fused calls");
            // At most one call per coupling and step: a step where every source of a
            // product `w * pre.x` is 0 sums nothing (activity-sparse) and calls no code.
            assert!(
                calls[3] > 0 && calls[3] <= 3 * steps,
                "seed {seed}: {} coupling calls in {steps} steps",
                calls[3]
            );
            assert!(
                calls[0] > 0 && calls[2] > 0,
                "seed {seed}: event code calls {calls:?}"
            );
        }
    }
}

#[test]
fn jit_equals_the_interpreter_over_longer_runs_of_the_fused_populations() {
    // CUBA (exact, fused) and COBA (Euler, fused; vectorised right-hand sides), 0.2 s each,
    // and COBA with odd population sizes (quads, a pair and a single element).
    let coba = std::fs::read_to_string(common::root().join("specs/coba.ng")).unwrap();
    let odd = coba
        .replace("CondLIF[3200]", "CondLIF[3199]")
        .replace("CondLIF[800]", "CondLIF[807]");
    let models = [
        (
            "cuba",
            common::compile(&common::root().join("specs/cuba.ng")),
        ),
        ("coba", common::compile_text(&coba)),
        ("coba, odd sizes", common::compile_text(&odd)),
    ];
    for (name, c) in &models {
        let interp = run(c, 3, 2000, Backend::Interp);
        let (jit, fused, _) = run_counting(c, 3, 2000, Backend::Jit);
        assert_eq!(fused, 2 * 2000, "{name}: fused kernel not used");
        assert!(interp == jit, "{name}: SIMD");
        assert!(
            interp == run(c, 3, 2000, Backend::JitScalar),
            "{name}: scalar"
        );
    }
}

#[test]
fn fused_kernel_variants_equal_the_interpreter() {
    // Variants of CUBA that take the fused kernel's other paths: f32 state (vector demotion),
    // odd population sizes (the scalar remainder after the f64x2 pairs), a threshold that
    // reads the element index (evaluated lane by lane), and a parameter that makes the
    // propagator dense in a different pattern (`--set`-style override of El to 0), and event
    // code that reads the variable it writes.
    let base = std::fs::read_to_string(common::root().join("specs/cuba.ng")).unwrap();
    let variants = [
        (
            "f32",
            base.replace("seed = 1 }", "seed = 1; precision = f32 }"),
        ),
        (
            "odd sizes",
            base.replace("LIF[3200]", "LIF[3201]")
                .replace("LIF[800]", "LIF[799]"),
        ),
        (
            "per-lane threshold",
            base.replace("spike when v > Vt", "spike when v > Vt + i * 0.001 mV"),
        ),
        (
            "no constant input",
            base.replace("El = -49 mV", "El = 0 mV"),
        ),
        (
            // Event code whose value reads what it writes: computed for every due synapse
            // before any write (the generated code's two-pass path).
            "event code reads its target",
            base.replace("post.ge += we", "post.ge += we - 0.01 * post.ge"),
        ),
        // RK4 in the fused kernel: on f64x2 lanes, and lane by lane where a right side calls
        // a function (the stages' times matter there).
        ("rk4", base.replace("method exact", "method rk4")),
        (
            "rk4 with time and a function",
            base.replace("method exact", "method rk4").replace(
                "dge/dt = -ge / taue",
                "dge/dt = -ge / taue + 0.01 mV/ms * sin(t / (1 ms))",
            ),
        ),
        (
            // A parameter of the targets: one shared value per endpoint part.
            "event code reads a shared value of its targets",
            base.replace("post.ge += we", "post.ge += we * post.taue / 5 ms"),
        ),
    ];
    for (name, text) in variants {
        let c = common::compile_text(&text);
        let interp = run(&c, 2, 1500, Backend::Interp);
        let spikes: usize = interp.iter().map(|r| r.1.len()).sum();
        assert!(spikes > 0, "{name}: no spikes");
        let (jit, fused, calls) = run_counting(&c, 2, 1500, Backend::Jit);
        // Both populations fused every step; on-pre code and resets generated.
        assert_eq!(fused, 2 * 1500, "{name}: fused kernel not used");
        assert!(calls[0] > 0, "{name}: on-pre event code not used");
        assert!(calls[2] > 0, "{name}: reset code not used");
        assert!(interp == jit, "{name}: SIMD");
        assert!(
            interp == run(&c, 2, 1500, Backend::JitScalar),
            "{name}: scalar"
        );
    }
}

#[test]
fn astrocytes_integrate_in_fused_kernels_and_couple_in_generated_code() {
    // RK4 cells with a discrete update and no spike event (Li–Rinzel; its Poisson drive is
    // event-driven, no kernel), and RK4 cells with a
    // refractory condition and a release event (G-ChI): fused, and equal to the interpreter;
    // the tripartite network's three couplings (sum, mean, and a gap-junction sum reading both
    // ends) accumulate in generated code every step, and its two projections' synapse
    // dynamics (gliotransmitter-modulated and plain Tsodyks–Markram) are fused kernels too.
    for (spec, fused_per_step, couplings_per_step) in
        [("lr_astrocyte.ng", 1, 0), ("astro_tripartite.ng", 5, 3)]
    {
        let c = common::compile(&common::root().join("specs").join(spec));
        let steps = (0.05 / c.model.run.dt).round() as u64;
        let interp = run(&c, 1, steps, Backend::Interp);
        let (jit, fused, calls) = run_counting(&c, 1, steps, Backend::Jit);
        assert_eq!(fused, fused_per_step * steps, "{spec}");
        // At most one call per coupling and step (none where every source is 0).
        assert!(
            calls[3] <= couplings_per_step * steps && (couplings_per_step == 0 || calls[3] > 0),
            "{spec}: {} coupling calls",
            calls[3]
        );
        assert!(interp == jit, "{spec}");
    }
}

#[test]
fn event_code_refuses_indices_outside_its_buffers() {
    // Generated event code trusts due synapses and endpoint indices; the runtime refuses to
    // call it (the interpreter, which checks every access, runs instead) when they do not fit.
    let c = common::compile(&common::root().join("specs/cuba.ng"));
    let mut sim = Sim::new(std::sync::Arc::clone(&c), &common::config(1)).unwrap();
    let (p, _) = c.model.projections.iter().next().unwrap();
    let n_syn = sim.conn[p.index()].n_synapses() as u32;
    assert!(sim.delivery_fits(p, &[0, n_syn - 1]).is_ok());
    let err = sim.delivery_fits(p, &[0, n_syn]).unwrap_err();
    assert!(err.message.contains("due synapse"), "{err}");
    let row = sim.conn[p.index()].row(0);
    sim.conn[p.index()].post_mut()[row.clone()].reverse();
    let err = sim.delivery_fits(p, &[0]).unwrap_err();
    assert!(err.message.contains("not in post order"), "{err}");
    sim.conn[p.index()].post_mut()[row].reverse();
    assert!(sim.delivery_fits(p, &[0]).is_ok());
    sim.conn[p.index()].post_mut()[7] = 4000;
    let err = sim.delivery_fits(p, &[0]).unwrap_err();
    assert!(
        err.message.contains("post index 4000 outside the 4000"),
        "{err}"
    );
    sim.conn[p.index()].post_mut().pop();
    let err = sim.delivery_fits(p, &[0]).unwrap_err();
    assert!(err.message.contains("post indices for"), "{err}");
}

#[test]
fn fused_kernels_refuse_columns_that_do_not_fit() {
    // A state column one element short: the fused kernel is refused (the interpreter, whose
    // every access is checked, would run instead); the other population's still fits.
    let c = common::compile(&common::root().join("specs/cuba.ng"));
    let mut cfg = common::config(1);
    cfg.backend = Backend::Jit;
    let mut sim = Sim::new(std::sync::Arc::clone(&c), &cfg).unwrap();
    let mut pops = c.model.populations.iter();
    let (e_pop, pop) = pops.next().unwrap();
    let (i_pop, _) = pops.next().unwrap();
    assert!(sim.fused_fits(Node::Population(e_pop)).is_ok());
    let v = c.model.cell_types[pop.cell_type].states[0];
    match sim.nodes[e_pop.index()].vars.get_mut(&v) {
        Some(neurograph_runtime::state::Store::Elements(col)) => {
            neurograph_runtime::state::Store::column_mut(col).pop();
        }
        _ => panic!("v is a column"),
    }
    let err = sim.fused_fits(Node::Population(e_pop)).unwrap_err();
    assert!(
        err.message.contains("`v` has 3199 values for 3200 cells"),
        "{err}"
    );
    assert!(sim.fused_fits(Node::Population(i_pop)).is_ok());
}

#[test]
fn inline_random_draws_equal_the_runtime_generator() {
    // Every distribution drawn per step by generated code (Philox inline; Poisson counts
    // inline for means up to 30, past the unrolled steps for the larger ones, through the
    // runtime's sampler for zero and larger means), recorded for 101 cells (an odd count)
    // over 40 steps.
    let c = common::compile_text(
        "model draws
cell C {
  param m = 0.5, s = 2, p = 0.3
  state a: 1 = 0; state b: 1 = 0; state c: 1 = 0; state d: 1 = 0; state e: 1 = 0
  state f: 1 = 0; state g: 1 = 0
  a <- rand()
  b <- randn()
  c <- uniform(m, 3 * m + i)
  d <- normal(m, s)
  e <- bernoulli(p)
  f <- poisson(2 + i / 10)
  g <- poisson(if(i < 5, 0, 20 + i / 2) + if(i > 95, 600, 0))
}
population P = C[101]
record P.a, P.b, P.c, P.d, P.e, P.f, P.g
run { dt = 1 ms; duration = 40 ms }
",
    );
    for seed in [1, 2] {
        let interp = run(&c, seed, 40, Backend::Interp);
        let values: usize = interp.iter().map(|r| r.1.len()).sum();
        assert_eq!(values, 7 * 101 * 40);
        for backend in [Backend::Jit, Backend::JitScalar] {
            let (jit, fused, _) = run_counting(&c, seed, 40, backend);
            // The draws ran in the generated fused update, every step.
            assert_eq!(fused, 40, "seed {seed} {backend:?}: fused calls");
            assert!(interp == jit, "seed {seed} {backend:?}");
        }
    }
}

#[test]
fn exact_integration_with_inputs_that_change_is_not_fused_and_agrees() {
    // A time-varying input under `method exact`: its constant part changes every step, so the
    // population is not fused (the fused kernel takes it once per run); traces still agree.
    let base = std::fs::read_to_string(common::root().join("specs/cuba.ng")).unwrap();
    let text = base.replace(
        "dge/dt = -ge / taue",
        "dge/dt = -ge / taue + 0.01 mV/ms * sin(t / (1 ms))",
    );
    assert_ne!(text, base);
    let c = common::compile_text(&text);
    let interp = run(&c, 2, 1500, Backend::Interp);
    let (jit, fused, _) = run_counting(&c, 2, 1500, Backend::Jit);
    assert_eq!(fused, 0);
    assert!(interp == jit);
}

#[test]
fn kernels_reject_inputs_that_do_not_fit() {
    let c = common::compile_text(
        "model k\ncell C { state x: 1 = 0; state y: 1 = 0; x <- y * 2 + 1 }\npopulation P = C[4]\n",
    );
    let m = &c.model;
    let update = &m.cell_types.iter().next().unwrap().1.dynamics.updates[0];
    let mut jit = new_jit().unwrap();
    let key = KernelKey {
        expr: update.value,
        modes: vec![InputMode::Element],
        subset: false,
        synapses: false,
    };
    let sub_key = KernelKey {
        subset: true,
        ..key.clone()
    };
    let sub = jit.compile(m, &sub_key).unwrap();
    let kernel = jit.compile(m, &key).unwrap();
    let y = [1.0, 2.0, 3.0, 4.0];
    let args = |n: usize, col: &'static [f64]| CallArgs {
        n,
        elems: None,
        columns: vec![Column::Element(col)],
        pre_idx: None,
        post_idx: None,
        t: 0.0,
        step: 0,
        node_key: 0,
        seed: 1,
        size: n,
    };
    let ok = call_checked(
        &kernel,
        &key,
        &CallArgs {
            columns: vec![Column::Element(&y)],
            ..args(4, &[])
        },
    )
    .unwrap();
    assert_eq!(ok, vec![3.0, 5.0, 7.0, 9.0]);
    // Four elements, but only two input values: refused before any read.
    let err = call_checked(&kernel, &key, &args(4, &[1.0, 2.0])).unwrap_err();
    assert!(err.message.contains("has 2 values, 4 needed"), "{err}");
    // A subset that points past the column.
    let elems = [0u32, 9];
    let err = call_checked(
        &kernel,
        &key,
        &CallArgs {
            elems: Some(&elems),
            columns: vec![Column::Element(&y)],
            ..args(2, &[])
        },
    )
    .unwrap_err();
    assert!(err.message.contains("subset"), "{err}");
    let err = call_checked(
        &sub,
        &sub_key,
        &CallArgs {
            elems: Some(&elems),
            columns: vec![Column::Element(&y)],
            ..args(2, &[])
        },
    )
    .unwrap_err();
    assert!(err.message.contains("10 needed"), "{err}");
    // A key the kernel was not compiled for (here: a subset for a whole-column kernel).
    let err = call_checked(
        &kernel,
        &sub_key,
        &CallArgs {
            elems: Some(&[0, 1]),
            columns: vec![Column::Element(&y)],
            ..args(2, &[])
        },
    )
    .unwrap_err();
    assert!(err.message.contains("another key"), "{err}");
    // A mode that does not match the compiled kernel.
    let err = call_checked(
        &kernel,
        &key,
        &CallArgs {
            columns: vec![Column::Scalar(1.0)],
            ..args(4, &[])
        },
    )
    .unwrap_err();
    assert!(
        err.message.contains("does not have the compiled mode"),
        "{err}"
    );
}

/// A synapse kernel gets only the endpoint indices it reads (`i`, `j`): one reading `j` is
/// refused without the post index, one reading neither runs without either (so that dense rows
/// need not make their post index for it).
#[test]
fn synapse_kernels_need_only_the_indices_they_read() {
    let c = common::compile_text(
        "model idx
unit U { state x: 1 = 0 }
synapse S { param a = 1; param b = 1 }
population P = U[3]
project Q: P -> P via S { connect all_to_all; a = j + 1; b = 2 }
",
    );
    let m = &c.model;
    let q = &m.projections.iter().next().unwrap().1;
    let init = |name: &str| {
        q.inits
            .iter()
            .find(|(v, _)| m.variables[*v].name == name)
            .unwrap()
            .1
    };
    let mut jit = new_jit().unwrap();
    let key = |expr| KernelKey {
        expr,
        modes: vec![],
        subset: false,
        synapses: true,
    };
    let (reads_j, plain) = (key(init("a")), key(init("b")));
    let reads_j_kernel = jit.compile(m, &reads_j).unwrap();
    let plain_kernel = jit.compile(m, &plain).unwrap();
    assert_eq!(reads_j_kernel.reads_index, [false, true]);
    assert_eq!(plain_kernel.reads_index, [false, false]);
    let post = [0u32, 1, 2, 0, 1, 2, 0, 1, 2];
    let args = |post_idx| CallArgs {
        n: 9,
        elems: None,
        columns: vec![],
        pre_idx: None,
        post_idx,
        t: 0.0,
        step: 0,
        node_key: 0,
        seed: 1,
        size: 9,
    };
    let err = call_checked(&reads_j_kernel, &reads_j, &args(None)).unwrap_err();
    assert!(err.message.contains("endpoint indices it reads"), "{err}");
    let values = call_checked(&reads_j_kernel, &reads_j, &args(Some(&post))).unwrap();
    assert_eq!(values, vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    let values = call_checked(&plain_kernel, &plain, &args(None)).unwrap();
    assert!(values.iter().all(|&v| v == 2.0), "{values:?}");
}

#[test]
fn inspect_prints_the_generated_cranelift_ir() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_neurograph"))
        .args(["inspect", "--clif", "specs/cuba.ng"])
        .current_dir(common::root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("; LIF: fused update and spike detection"),
        "{text}"
    );
    assert!(text.contains("; LIF: dv/dt"), "{text}");
    assert!(text.matches("function ").count() >= 5, "{text}");
    assert!(text.contains("fmul") && text.contains("fcmp"), "{text}");
    // The fused update a run uses: the exact propagator without its zero entries (v reads v,
    // ge and gi; ge and gi only themselves: 5 products per cell, in the four-, two- and
    // one-cell loops 20), not the dense 3 x 3 (36).
    let fused: String = text
        .split("\n; ")
        .find(|part| {
            part.trim_start_matches("; ")
                .starts_with("LIF: fused update")
        })
        .expect("the fused kernel")
        .to_string();
    assert_eq!(fused.matches(" fmul ").count(), 20, "{fused}");
}

#[test]
fn a_coupling_into_several_targets_is_computed_once_and_agrees_across_backends() {
    // A coupling that reads its targets' state, into two populations (review finding): the
    // interpreter and the fused JIT kernel must see the same coupled value.
    let spec = "model multi
neuron L {
  state v: volt = 0 mV
  state I: volt = 0 mV
  dv/dt = (15 mV - v) / (10 ms)
  method exact
  spike when v + I > 10 mV { v = 0 mV }
}
population E = L[3]
population A = L[4]
population B = L[5]
project G: E -> (A, B) { connect all_to_all; post.I = sum(0.5 * post.v) }
record A.spikes, B.spikes, A.I
run { dt = 0.1 ms; duration = 50 ms }
";
    let c = common::compile_text(spec);
    let schedule = neurograph::compiler::abi::step_schedule(&c.model, &c.info);
    let couplings = schedule
        .iter()
        .filter(|k| matches!(k, neurograph::compiler::abi::KernelCall::Coupling(_)))
        .count();
    assert_eq!(couplings, 1, "{schedule:?}");
    let a = run(&c, 1, 500, Backend::Interp);
    assert!(!a[0].1.is_empty(), "A never spiked");
    assert_eq!(a, run(&c, 1, 500, Backend::Jit));
}

#[test]
fn exponential_euler_steps_whose_parts_are_shared_match_the_interpreter() {
    // `y` (decay with a parameter rate), `x` (A = 0: a constant slope) and `w` (time-driven)
    // have the same exponential-Euler step for every cell, computed once before the fused
    // loop; `z` reads other state and is computed per cell.
    let c = common::compile_text(
        "model expshared
neuron N {
  param tau = 7 ms
  state x: volt = 0 mV
  state y: volt = uniform(-70 mV, -50 mV)
  state w: 1 = uniform(0, 1)
  state z: volt = 0 mV
  dx/dt = 2 mV / ms
  dy/dt = -y / tau
  dw/dt = (sin(2 * pi * 40 Hz * t) - w) / tau
  dz/dt = (y - z) / tau + w * mV / ms
  method exponential_euler
  spike when z > -40 mV { z = -65 mV }
}
population P = N[37]
record P.x every 0.5 ms, P.y every 0.5 ms, P.w every 0.5 ms, P.z every 0.5 ms, P.spikes
run { dt = 0.1 ms; duration = 50 ms; seed = 2 }
",
    );
    let steps = 500;
    let interp = run(&c, 2, steps, Backend::Interp);
    let (jit, fused, _) = run_counting(&c, 2, steps, Backend::Jit);
    assert_eq!(fused, steps, "the update ran fused");
    assert!(interp == jit, "bit-identical to the interpreter");
}

/// Activity-sparse couplings: a product `w * pre.x` is summed over the sources where `pre.x`
/// is not 0 only. While every source is silent the generated coupling code is not called at
/// all; once half of them are active it runs once per step and the sum is over them alone,
/// in both backends alike.
#[test]
fn couplings_skip_silent_sources() {
    let c = common::compile_text(
        "model sparse
unit S { state x: 1 = 0
  x <- if(t >= 5 ms, i % 2, 0) }
unit T { state y: 1 = 0 }
synapse W { param w = 1 + i }
population A = S[40]
population B = T[3]
project P: A -> B via W { connect all_to_all; post.y = sum(w * pre.x) }
record B.y
run { dt = 1 ms; duration = 10 ms }
",
    );
    // Sources 1, 3, ..., 39 are active from step 5 (x is set before the coupling reads it):
    // y = sum of (1 + i) over odd i = 20 + (1 + 3 + ... + 39) = 420.
    let interp = common::simulate_with(&c, 1, 5, Backend::Interp);
    let jit = common::simulate_with(&c, 1, 5, Backend::Jit);
    assert_eq!(
        jit.event_code_calls[3], 0,
        "no coupling code while all sources are 0"
    );
    assert!(bits(&interp) == bits(&jit));
    let interp = common::simulate_with(&c, 1, 10, Backend::Interp);
    let jit = common::simulate_with(&c, 1, 10, Backend::Jit);
    assert_eq!(jit.event_code_calls[3], 5);
    assert!(bits(&interp) == bits(&jit));
    let y = &jit.recordings[0].values;
    assert_eq!(y.len(), 30);
    assert!(y[..15].iter().all(|&v| v == 0.0), "{y:?}");
    assert!(y[15..].iter().all(|&v| v == 420.0), "{y:?}");
}
