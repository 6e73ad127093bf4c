//! `record W.edges`: a projection's synapses as (pre, post) index pairs in the trace, read back
//! by `analysis::trace::Trace::edges`, in the order of the synapse state arrays.

mod common;

use neurograph_analysis::trace::{Edges, Trace, TraceError};

const SPEC: &str = r#"
model edges
neuron N {
  state v: 1 = 0
  dv/dt = -v / (10 ms)
  spike when v > 1 { v = 0 }
}
synapse S {
  state w: 1 = i + 1000 * j
  on pre { post.v += w }
}
population A = N[30]
population B = N[7]
population C = N[5]
project P: A -> (B, C[1..4]) via S { connect bernoulli(0.4) }
record P.edges, P.w at end
run { dt = 1 ms; duration = 10 ms; seed = 3 }
"#;

#[test]
fn edges_are_written_in_synapse_order_with_their_endpoints() {
    let dir = common::temp_dir("edges", "tuple");
    let (_, out) = common::run_spec_text(&dir, "edges", SPEC, &[]);
    let t = Trace::open(&out).unwrap();
    assert_eq!(t.edge_projections(), vec!["P".to_string()]);
    let e: Edges = t.edges("P").unwrap();
    let manifest = common::manifest(&out);
    let n = manifest["projections"][0]["synapses"].as_u64().unwrap() as usize;
    assert_eq!((e.pre.len(), e.post.len()), (n, n));
    assert!(n > 50, "{n} synapses of 30 x 10 at p = 0.4");
    assert_eq!((e.n_pre, e.n_post), (30, 10));
    assert_eq!(e.post_parts.len(), 2);
    assert_eq!(Edges::locate(&e.post_parts, 6), Some(("B", 6)));
    assert_eq!(Edges::locate(&e.post_parts, 7), Some(("C", 1)));
    assert_eq!(Edges::locate(&e.post_parts, 9), Some(("C", 3)));
    assert_eq!(Edges::locate(&e.post_parts, 10), None);
    // The synapse state was initialised from i and j: the record pairs line up with it.
    let w = t.state("P.w").unwrap();
    assert_eq!(w.width, n);
    for k in 0..n {
        assert_eq!(
            w.values[k],
            f64::from(e.pre[k]) + 1000.0 * f64::from(e.post[k]),
            "synapse {k}"
        );
    }
    // Rows are sorted by pre index (CSR order).
    assert!(e.pre.windows(2).all(|p| p[0] <= p[1]));
    // A pass asking for a projection without the record is told what to add.
    let err = t.edges("Q").unwrap_err();
    assert!(matches!(err, TraceError::MissingEdges { .. }));
    assert_eq!(
        err.to_string(),
        "the trace has no connectivity record of projection `Q`; add `record Q.edges`"
    );
    // A corrupt index file names the file.
    std::fs::write(out.join("P.edges.post.npy"), b"not npy").unwrap();
    let err = Trace::open(&out).unwrap().edges("P").unwrap_err();
    assert!(err.to_string().contains("P.edges.post.npy"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn edges_of_a_population_are_an_error_at_its_location() {
    let text = SPEC.replace("record P.edges", "record A.edges");
    let dir = common::temp_dir("edges", "pop");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("bad.ng");
    std::fs::write(&spec, text).unwrap();
    let out = common::neurograph(&["check", "--short", spec.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bad.ng:16:10: error: cell type `N` has no variable `edges`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
