//! Dense rows: projections whose rows are runs of consecutive post elements (all-to-all,
//! one-to-one, block-diagonal) run generated code that reads the post side contiguously, on
//! lanes, and splits big calls between threads by post element. Each of these gives the same
//! bits as the interpreter, as one thread and as the forced CSR layout, in f64 and in f32.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use neurograph_compiler::ir::{Handle, Projection};
use neurograph_runtime::state::Store;
use neurograph_runtime::{Backend, Sim};

/// Rows that straddle the post endpoint's parts (200 sources onto 150 + 151 elements, odd
/// lengths), block-diagonal rows, one-to-one rows, activity-sparse sources, `j` in a coupling,
/// an `on step` write of synapse state, `on pre` code onto a post part pair, and code that must
/// not be split between threads by post element: `on pre` that also writes the presynaptic
/// side (P6), reads on the presynaptic side what it writes on the postsynaptic one in a
/// recurrent projection (P7), or writes onto a post endpoint that names one population twice
/// (P8).
const SPEC: &str = "model runs
neuron L {
  state v: volt = uniform(0 mV, 10 mV)
  state g: volt = 0 mV
  state c: 1 = 0
  dv/dt = (15 mV + g - v) / (10 ms)
  dg/dt = -g / (5 ms)
  method exact
  spike when v > 10 mV { v = 0 mV }
}
unit S { state x: 1 = 0
  x <- if((i + step) % 3 == 0, 0, sin(0.1 * i + 0.01 * step)) }
unit T { state y: 1 = 0; state z: 1 = 0; state q: 1 = 0; state r: 1 = 0 }
synapse W { param w = normal(0, 1) }
synapse M { state s: 1 = 0
  on step { s += pre.x * post.y } }
synapse F { param w = uniform(0, 0.2)
  on pre { post.g += w * 1 mV } }
synapse E { param w = uniform(0, 0.2)
  on pre { post.g += w * 1 mV; pre.c += 1 } }
population A = S[123]
population B = S[77]
population C = T[150]
population D = T[151]
population G1 = T[100]
population G2 = T[201]
population N1 = L[90]
population N2 = L[61]
project P1: (A, B) -> (C, D) via W { connect all_to_all; post.y = sum(w * pre.x) }
project P2: (A, B) -> (C, D) via W {
  connect bernoulli(floor(i / 100) == floor(j / 151))
  post.q = sum(w * pre.x + j)
}
project P3: (C, D) -> (G1, G2) { connect one_to_one; post.z = sum(pre.y) }
project P4: (A, B) -> (C, D) via M { connect all_to_all; post.r = sum(s * pre.x) }
project P5: N1 -> (N1, N2) via F { connect all_to_all }
project P6: N2 -> (N1, N2) via E { connect all_to_all }
project P7: N1 -> N1 { connect all_to_all; on pre { post.c += 0.001 * pre.c } }
project P8: N1 -> (N2, N2) via F { connect all_to_all }
record C.y, D.y, C.q, D.q, G1.z, G2.z, D.r, N1.spikes, N2.spikes, N1.g, N2.c, P4.s at end
run { dt = 0.1 ms; duration = 20 ms }
";

/// Run the spec for 200 steps; on several threads every call that may be split is split,
/// whatever its size (`share_always`).
fn run(text: &str, backend: Backend, threads: usize) -> (Sim, common::TraceBits) {
    let c = common::compile_text(text);
    let mut cfg = common::config(7);
    cfg.backend = backend;
    let mut sim = Sim::new(Arc::clone(&c), &cfg).unwrap();
    sim.set_threads(threads);
    if threads > 1 {
        sim.share_always(1);
    }
    sim.run(200, &AtomicBool::new(false), 0, &mut |_| {});
    sim.finish_records();
    let traces = common::trace_bits(&sim);
    (sim, traces)
}

fn projection(sim: &Sim, name: &str) -> Handle<Projection> {
    sim.model()
        .projections
        .iter()
        .find(|(_, p)| p.name == name)
        .unwrap()
        .0
}

#[test]
fn dense_rows_agree_with_the_interpreter_one_thread_and_forced_csr() {
    for precision in ["f64", "f32"] {
        let text = SPEC.replace(
            "duration = 20 ms }",
            &format!("duration = 20 ms; precision = {precision} }}"),
        );
        let (jit, traces) = run(&text, Backend::Jit, 2);
        // The dense rows are found where the rows are runs, and no post index is held for
        // them: generated code computes it.
        for name in ["P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8"] {
            let h = projection(&jit, name);
            assert!(jit.post_runs(h).is_some(), "{name} has dense rows");
            assert!(
                !jit.conn[h.index()].holds_post(),
                "{name} holds a post index"
            );
        }
        // In f32, the weights and `on step` state are held as f32 (by the JIT only), except
        // where other code writes them.
        for (name, var) in [("P1", "w"), ("P4", "s"), ("P5", "w")] {
            let h = projection(&jit, name);
            let narrow = jit.nodes[jit.n_pops + h.index()].vars.iter().any(|(x, s)| {
                jit.model().variables[*x].name == var && matches!(s, Store::Narrow(_))
            });
            assert_eq!(narrow, precision == "f32", "{precision}: {name}.{var}");
        }
        // Every kind of code ran generated: couplings, `on step`, `on pre`.
        assert!(jit.event_code_calls[3] > 0 && jit.event_code_calls[4] > 0);
        assert!(jit.event_code_calls[0] > 0, "no `on pre` code ran");
        // Something happened in every trace.
        for (k, (_, values)) in traces.iter().enumerate() {
            assert!(
                values.iter().any(|&v| v != 0.0f64.to_bits()),
                "{precision}: trace {k} is all 0"
            );
        }
        let (_, interp) = run(&text, Backend::Interp, 1);
        assert!(interp == traces, "{precision}: interpreter");
        let (_, one) = run(&text, Backend::Jit, 1);
        assert!(one == traces, "{precision}: one thread");
        let forced = text.replace("{ connect", "{ layout = csr; connect");
        let (csr, general) = run(&forced, Backend::Jit, 2);
        assert!(csr.post_runs(projection(&csr, "P1")).is_none());
        assert!(csr.conn[projection(&csr, "P1").index()].holds_post());
        assert!(general == traces, "{precision}: forced CSR");
    }
}

/// A checkpoint of an f32 run holds its f32 columns (widened) and continues bit for bit in a
/// new simulation, also where a per-synapse parameter was set to one value before it.
#[test]
fn f32_columns_survive_a_checkpoint() {
    let text = SPEC.replace("duration = 20 ms }", "duration = 20 ms; precision = f32 }");
    let c = common::compile_text(&text);
    let new_sim = |threads: usize| {
        let mut cfg = common::config(7);
        cfg.backend = Backend::Jit;
        let mut sim = Sim::new(Arc::clone(&c), &cfg).unwrap();
        sim.set_threads(threads);
        sim
    };
    let one_weight = neurograph_runtime::params::resolve(&c.model, "P5.w=0.05").unwrap();
    let stop = AtomicBool::new(false);
    let mut straight = new_sim(1);
    straight.set_param(one_weight).unwrap();
    straight.run(200, &stop, 0, &mut |_| {});
    let mut first = new_sim(2);
    first.set_param(one_weight).unwrap();
    first.run(100, &stop, 0, &mut |_| {});
    let mut w = neurograph_runtime::checkpoint::Writer::default();
    first.write_state(&mut w);
    let mut resumed = new_sim(2);
    let p1 = projection(&resumed, "P1");
    assert!(resumed.nodes[resumed.n_pops + p1.index()]
        .vars
        .values()
        .any(|s| matches!(s, Store::Narrow(_))));
    resumed
        .read_state(&mut neurograph_runtime::checkpoint::Reader::new(&w.bytes))
        .unwrap();
    // Narrow again after the restore.
    assert!(resumed.nodes[resumed.n_pops + p1.index()]
        .vars
        .values()
        .any(|s| matches!(s, Store::Narrow(_))));
    resumed.run(100, &stop, 0, &mut |_| {});
    for (a, b) in straight.nodes.iter().zip(&resumed.nodes) {
        for (v, store) in &a.vars {
            let bits = |s: &Store| {
                s.elements(a.size)
                    .iter()
                    .map(|x| x.to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(store), bits(&b.vars[v]));
        }
    }
}

/// Rows that skip or repeat a post element are not runs.
#[test]
fn rows_with_gaps_are_not_dense() {
    let text = "model gaps
unit S { state x: 1 = 1 }
unit T { state y: 1 = 0 }
population A = S[30]
population B = T[40]
project P: A -> B { connect bernoulli(j % 3 != 1); post.y = sum(pre.x) }
project Q: A -> B { connect bernoulli(j < i) ; post.y = sum(pre.x) }
record B.y
run { dt = 1 ms; duration = 2 ms }
";
    let (sim, _) = run(text, Backend::Jit, 1);
    assert!(sim.post_runs(projection(&sim, "P")).is_none());
    // Rows 0..j < i: consecutive from 0 (row 0 empty).
    let runs = sim.post_runs(projection(&sim, "Q")).unwrap();
    assert_eq!(runs.len(), 30);
    assert!(runs.iter().all(|&j| j == 0));
}
