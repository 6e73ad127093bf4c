//! Projection layouts: a layout forced in the spec (`layout = csr`) gives the same trace as the
//! one the layout pass chooses; columns and post indices shared between projections are held
//! once, and a shared column is copied when one of them is changed.

mod common;

use std::sync::Arc;

use neurograph_compiler::ir::{Handle, Layout, Node, Projection};
use neurograph_runtime::state::Store;
use neurograph_runtime::{Backend, Sim};

/// `specs/bdh_gpu.ng` with `layout = csr` in every projection body.
fn bdh_forced_csr() -> String {
    let text = std::fs::read_to_string(common::root().join("specs/bdh_gpu.ng")).unwrap();
    let forced: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("connect ") {
                l.replacen("connect ", "layout = csr; connect ", 1)
            } else {
                l.replacen("{ connect ", "{ layout = csr; connect ", 1)
            }
        })
        .collect();
    let forced = forced.join("\n");
    assert_eq!(
        forced.matches("layout = csr").count(),
        20,
        "bdh_gpu.ng changed"
    );
    forced
}

fn projection(sim: &Sim, name: &str) -> Handle<Projection> {
    sim.model()
        .projections
        .iter()
        .find(|(_, p)| p.name == name)
        .unwrap_or_else(|| panic!("no projection {name}"))
        .0
}

/// A per-synapse column: which allocation holds it, its values, and whether it is held as
/// f32 (`Store::Narrow`).
#[derive(Debug)]
struct Column {
    id: usize,
    values: Vec<f64>,
    narrow: bool,
}

/// The weight column `w` of a projection.
fn weights(sim: &Sim, name: &str) -> Column {
    let h = projection(sim, name);
    let model = sim.model();
    let w = model.synapse_types[model.projections[h].synapse].params[0];
    match sim.nodes[sim.n_pops + h.index()].vars.get(&w) {
        Some(Store::Elements(col)) => Column {
            id: Arc::as_ptr(col) as usize,
            values: col.to_vec(),
            narrow: false,
        },
        Some(Store::Narrow(col)) => Column {
            id: Arc::as_ptr(col) as usize,
            values: col.iter().map(|&x| f64::from(x)).collect(),
            narrow: true,
        },
        other => panic!("{name}.w is {other:?}"),
    }
}

#[test]
fn shared_weights_and_forced_csr_give_the_same_trace() {
    let auto = common::compile(&common::root().join("specs/bdh_gpu.ng"));
    let csr = common::compile_text(&bdh_forced_csr());
    assert!(csr
        .model
        .projections
        .iter()
        .all(|(_, p)| p.layout == Layout::Csr));
    for backend in [Backend::Interp, Backend::Jit] {
        let a = common::simulate_with(&auto, 1337, 40, backend);
        let b = common::simulate_with(&csr, 1337, 40, backend);
        // The layers' encoders, value encoders and decoders: one column each in the chosen
        // layout, one per layer when forced.
        for (first, second) in [("Enc1", "Enc2"), ("EncV1", "EncV2"), ("Dec1", "Dec2")] {
            assert!(
                weights(&a, first).id == weights(&a, second).id,
                "{first} and {second} share"
            );
            assert!(weights(&b, first).id != weights(&b, second).id);
            assert_eq!(weights(&a, second).values, weights(&b, second).values);
            // The f32 model's weights are held as f32 by the JIT.
            assert_eq!(weights(&a, second).narrow, backend == Backend::Jit);
            // Their synapses too: one index (dense rows; the post index itself is not held
            // once set up), and one post index each when forced.
            let conn = |s: &Sim, name: &str| s.conn[projection(s, name).index()].clone();
            assert!(conn(&a, first).same_index(&conn(&a, second)));
            assert!(conn(&a, second).runs().is_some());
            // (The interpreter reads the post index, made again from the dense rows.)
            assert_eq!(conn(&a, second).holds_post(), backend == Backend::Interp);
            assert!(!conn(&b, first).same_index(&conn(&b, second)));
            assert!(conn(&b, second).holds_post() && conn(&b, second).runs().is_none());
            assert_eq!(conn(&a, second).post(), conn(&b, second).post());
        }
        assert_eq!(a.recordings.len(), b.recordings.len());
        for (x, y) in a.recordings.iter().zip(&b.recordings) {
            assert!(!x.values.is_empty());
            assert_eq!(x.times, y.times, "{backend:?}");
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&x.values), bits(&y.values), "{backend:?}");
        }
    }
}

#[test]
fn changing_a_shared_column_copies_it() {
    let auto = common::compile(&common::root().join("specs/bdh_gpu.ng"));
    // (The JIT holds the f32 model's weights as f32; the interpreter as f64.)
    for backend in [Backend::Interp, Backend::Jit] {
        changing_a_shared_column_copies_it_with(&auto, backend);
    }
}

fn changing_a_shared_column_copies_it_with(
    auto: &Arc<neurograph_compiler::Compiled>,
    backend: Backend,
) {
    let mut sim = common::simulate_with(auto, 1337, 2, backend);
    let (enc1, enc2) = (weights(&sim, "Enc1"), weights(&sim, "Enc2"));
    assert_eq!(enc1.id, enc2.id);
    let h = projection(&sim, "Enc2");
    let model = Arc::clone(sim.program());
    let w = model.model.synapse_types[model.model.projections[h].synapse].params[0];
    let doubled: Vec<f64> = enc2.values.iter().map(|x| 2.0 * x).collect();
    sim.set_values(Node::Projection(h), w, &doubled).unwrap();
    assert_eq!(weights(&sim, "Enc2").values, doubled);
    let enc1 = weights(&sim, "Enc1");
    assert!(enc1.values.iter().zip(&doubled).all(|(a, b)| 2.0 * a == *b));
    assert_ne!(enc1.id, weights(&sim, "Enc2").id);
    assert_eq!(weights(&sim, "Enc2").narrow, backend == Backend::Jit);
}

#[test]
fn an_unknown_layout_is_a_located_error() {
    let text = std::fs::read_to_string(common::root().join("specs/cuba.ng"))
        .unwrap()
        .replacen(
            "connect bernoulli(0.02)",
            "layout = dense; connect bernoulli(0.02)",
            1,
        );
    let dir = common::temp_dir("layout", "unknown");
    let path = dir.join("bad.ng");
    std::fs::write(&path, text).unwrap();
    let err = common::expect_error(
        &["check", path.to_str().unwrap()],
        "unknown layout `dense`; the layouts are `auto`, `csr`",
    );
    assert!(err.contains("bad.ng:"), "{err}");
}

/// Two populations pairs of equal sizes, projections of one synapse type between them with
/// rules the layout pass may or may not share (see the test below).
const SHARING: &str = "model share
unit U { param x = 0; state y: 1 = 0 }
synapse W { param w = normal(0, 1) }
population A = U[20] { x = 1 }
population B = U[30]
population C = U[20] { x = 0.5 }
population D = U[30]
population E = U[31]
project P0: A -> B via W { connect all_to_all; post.y = sum(w * pre.x) }
project P1: C -> D via W { connect all_to_all; post.y = sum(w * pre.x) }
project P2: C -> D via W { connect bernoulli(0.5); post.y = sum(w * pre.x) }
project P3: A -> B via W { connect bernoulli(pre.x > 0.5); post.y = sum(w * pre.x) }
project P4: C -> D via W { connect bernoulli(pre.x > 0.5); post.y = sum(w * pre.x) }
project P5: A -> E via W { connect all_to_all; post.y = sum(w * pre.x) }
project P6: C -> D via W { connect all_to_all; w = normal(0, 2); post.y = sum(w * pre.x) }
project P7: C -> D via W { layout = csr; connect all_to_all; post.y = sum(w * pre.x) }
project P8: A -> B via W { connect bernoulli(i % 2 == j % 3); post.y = sum(w * pre.x) }
project P9: C -> D via W { connect bernoulli(i % 2 == j % 3); post.y = sum(w * pre.x) }
record B.y, D.y, E.y
run { dt = 1 ms; duration = 3 ms }
";

/// What the layout pass shares, and what it must not: the same synapse type over the same
/// deterministic rule and sizes shares; a random rule, a condition on endpoint values, other
/// sizes, a per-projection value or a forced layout does not. Forcing CSR everywhere gives
/// the same trace.
#[test]
fn the_layout_pass_shares_only_what_is_drawn_alike() {
    let c = common::compile_text(SHARING);
    let model = &c.model;
    let name = |h: Handle<Projection>| model.projections[h].name.clone();
    let plan = neurograph_compiler::layout::plan(model);
    let (columns, conns) = (&plan.columns, &plan.connectivity);
    let shared: Vec<(String, String)> = model
        .projections
        .iter()
        .flat_map(|(h, _)| columns[h.index()].iter().map(move |(_, q)| (h, *q)))
        .map(|(h, q)| (name(h), name(q)))
        .collect();
    let pairs = |list: &[(&str, &str)]| {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(shared, pairs(&[("P1", "P0"), ("P9", "P8")]));
    let same: Vec<(String, String)> = model
        .projections
        .iter()
        .filter_map(|(h, _)| conns[h.index()].map(|q| (name(h), name(q))))
        .collect();
    assert_eq!(same, pairs(&[("P1", "P0"), ("P6", "P0"), ("P9", "P8")]));
    // The run shares what the pass found, and nothing else.
    let sim = common::simulate(&c, 4, 3);
    assert!(weights(&sim, "P0").id == weights(&sim, "P1").id);
    assert!(weights(&sim, "P8").id == weights(&sim, "P9").id);
    for other in ["P2", "P5", "P6", "P7"] {
        assert!(weights(&sim, "P0").id != weights(&sim, other).id, "{other}");
    }
    assert!(weights(&sim, "P3").id != weights(&sim, "P4").id);
    assert_eq!(sim.conn[projection(&sim, "P4").index()].n_synapses(), 0);
    let forced =
        common::compile_text(&SHARING.replace("via W { connect", "via W { layout = csr; connect"));
    let csr = common::simulate(&forced, 4, 3);
    assert!(weights(&csr, "P0").id != weights(&csr, "P1").id);
    for (x, y) in sim.recordings.iter().zip(&csr.recordings) {
        assert!(x.values.iter().any(|v| *v != 0.0));
        assert_eq!(x.values, y.values);
    }
}
