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

/// The weight column `w` of a projection.
fn weights(sim: &Sim, name: &str) -> Arc<Vec<f64>> {
    let h = projection(sim, name);
    let model = sim.model();
    let w = model.synapse_types[model.projections[h].synapse].params[0];
    match sim.nodes[sim.n_pops + h.index()].vars.get(&w) {
        Some(Store::Elements(col)) => Arc::clone(col),
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
                Arc::ptr_eq(&weights(&a, first), &weights(&a, second)),
                "{first} and {second} share"
            );
            assert!(!Arc::ptr_eq(&weights(&b, first), &weights(&b, second)));
            assert_eq!(weights(&a, second), weights(&b, second));
            // Their synapses too: one post index.
            let post = |s: &Sim, name: &str| Arc::clone(&s.conn[projection(s, name).index()].post);
            assert!(Arc::ptr_eq(&post(&a, first), &post(&a, second)));
            assert!(!Arc::ptr_eq(&post(&b, first), &post(&b, second)));
            assert_eq!(post(&a, second), post(&b, second));
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
    let mut sim = common::simulate(&auto, 1337, 2);
    let (enc1, enc2) = (weights(&sim, "Enc1"), weights(&sim, "Enc2"));
    assert!(Arc::ptr_eq(&enc1, &enc2));
    let h = projection(&sim, "Enc2");
    let model = Arc::clone(sim.program());
    let w = model.model.synapse_types[model.model.projections[h].synapse].params[0];
    let doubled: Vec<f64> = enc2.iter().map(|x| 2.0 * x).collect();
    drop((enc1, enc2));
    sim.set_values(Node::Projection(h), w, &doubled).unwrap();
    assert_eq!(*weights(&sim, "Enc2"), doubled);
    let enc1 = weights(&sim, "Enc1");
    assert!(enc1.iter().zip(&doubled).all(|(a, b)| 2.0 * a == *b));
    assert!(!Arc::ptr_eq(&enc1, &weights(&sim, "Enc2")));
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
