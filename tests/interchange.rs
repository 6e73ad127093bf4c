//! The NWB export's content, checked on the tree it writes (reading the file back with
//! pynwb, schema validation and nwbinspector are the Python package's tests): every spike in
//! its unit's train in time order, sampled states with their rate, the spec text and the
//! run's provenance, and the trace's own copy of the spec.

mod common;

use neurograph::analysis::trace::Trace;
use neurograph::interchange::hdf5::{Dataset, Group, Node, Values};
use neurograph::interchange::nwb::{build, NwbOptions};
use neurograph::Model;

fn group<'a>(g: &'a Group, name: &str) -> &'a Group {
    match g.members.iter().find(|(n, _)| n == name) {
        Some((_, Node::Group(g))) => g,
        _ => panic!("no group {name}"),
    }
}

fn dataset<'a>(g: &'a Group, name: &str) -> &'a Dataset {
    match g.members.iter().find(|(n, _)| n == name) {
        Some((_, Node::Dataset(d))) => d,
        _ => panic!("no dataset {name}"),
    }
}

fn attr_str(attrs: &[neurograph::interchange::hdf5::Attr], name: &str) -> String {
    match &attrs.iter().find(|a| a.name == name).unwrap().values {
        Values::Str(s) => s[0].clone(),
        v => panic!("{name} is {v:?}"),
    }
}

#[test]
fn the_nwb_tree_holds_every_spike_the_states_and_the_provenance() {
    let dir = common::temp_dir("nwb", "tree");
    let spec = dir.join("net.ng");
    let text = "model net\n\
        neuron Unit {\n  state v: 1 = 0.1 * i\n  dv/dt = (1.5 - v) / (10 ms)\n  \
        spike when v > 1 { v = 0 }\n}\n\
        population A = Unit[5]\npopulation B = Unit[3]\n\
        record A.spikes, B.spikes, A.v every 2 ms\n\
        run { dt = 0.1 ms; duration = 100 ms; seed = 4 }\n";
    std::fs::write(&spec, text).unwrap();
    let model = Model::compile_file(&spec).unwrap();
    let mut sim = model.simulation().build().unwrap();
    sim.run_for("100 ms").unwrap();
    let trace_dir = dir.join("trace");
    sim.write_trace(&trace_dir).unwrap();
    // The trace keeps the spec text and when the run started.
    assert_eq!(
        std::fs::read_to_string(trace_dir.join("spec.ng")).unwrap(),
        text
    );
    let trace = Trace::open(&trace_dir).unwrap();
    let started = trace.manifest["started_utc"].as_str().unwrap().to_string();
    assert!(
        started.ends_with("+00:00") && started.len() == 32,
        "{started}"
    );

    let (root, summary) = build(&trace, &NwbOptions::default(), started.clone()).unwrap();
    assert_eq!(attr_str(&root.attrs, "neurodata_type"), "NWBFile");
    assert_eq!(summary.units, 8);
    assert_eq!(summary.time_series, ["A.v"]);
    let units = group(&root, "units");
    let Values::F64(times) = &dataset(units, "spike_times").values else {
        panic!()
    };
    let Values::U32(ends) = &dataset(units, "spike_times_index").values else {
        panic!()
    };
    assert_eq!(ends.len(), 8);
    assert_eq!(*ends.last().unwrap() as usize, times.len());
    let mut start = 0usize;
    for (row, &end) in ends.iter().enumerate() {
        let (pop, k) = if row < 5 { ("A", row) } else { ("B", row - 5) };
        let (t, i) = sim.spikes(pop).unwrap();
        let expected: Vec<f64> = t
            .iter()
            .zip(&i)
            .filter(|(_, &j)| j as usize == k)
            .map(|(&t, _)| t)
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(&times[start..end as usize], &expected[..], "{pop}[{k}]");
        start = end as usize;
    }
    let v = group(group(&root, "acquisition"), "A.v");
    let data = dataset(v, "data");
    assert_eq!(data.shape, [50, 5]);
    assert_eq!(attr_str(&data.attrs, "unit"), "1");
    let rate = dataset(v, "starting_time");
    let Values::F64(r) = &rate.attrs.iter().find(|a| a.name == "rate").unwrap().values else {
        panic!()
    };
    assert!((r[0] - 500.0).abs() < 1e-6, "{}", r[0]);
    let general = group(&root, "general");
    let script = dataset(general, "source_script");
    assert_eq!(script.values, Values::Str(vec![text.to_string()]));
    assert!(attr_str(&script.attrs, "file_name").ends_with("net.ng"));
    let Values::Str(notes) = &dataset(general, "notes").values else {
        panic!()
    };
    assert!(notes[0].contains("seed 4"), "{}", notes[0]);
    assert_eq!(
        dataset(&root, "session_start_time").values,
        Values::Str(vec![started])
    );
    // The file itself: written whole, then refused over unless asked.
    let out = dir.join("net.nwb");
    let s = neurograph::interchange::nwb::export_trace(&trace_dir, &out, &NwbOptions::default())
        .unwrap();
    assert_eq!(s.spikes, times.len());
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..8], b"\x89HDF\r\n\x1a\n");
    let eof = u64::from_le_bytes(bytes[28..36].try_into().unwrap());
    assert_eq!(eof as usize, bytes.len());
    // Read back with neurograph's own HDF5 reader (pynwb reads it in the Python tests).
    let file = neurograph::interchange::hdf5_read::File::open(&out).unwrap();
    let read = |p: &str| match file.get(p).unwrap() {
        neurograph::interchange::hdf5_read::Object::Dataset(d) => d.values,
        _ => panic!("{p} is a group"),
    };
    assert_eq!(read("units/spike_times"), Values::F64(times.clone()));
    assert_eq!(
        read("units/spike_times_index"),
        Values::U64(ends.iter().map(|&e| u64::from(e)).collect())
    );
    assert_eq!(
        read("general/source_script"),
        Values::Str(vec![text.to_string()])
    );
    assert!(
        neurograph::interchange::nwb::export_trace(&trace_dir, &out, &NwbOptions::default())
            .is_err()
    );
}

/// A network in the shape NIR describes: a CubaLIF, a LIF with per-neuron time constants, an
/// IF and an LI population, a bias, a delay, sparse and dense weights.
const NIR_NET: &str = "model nirnet
neuron Cuba {
  param tau_syn = 5 ms, tau_mem = 10 ms
  param r = 2.0, v_leak = 0.1, v_threshold = 1.0, v_reset = 0.0, w_in = 5.0
  param bias = 0.05
  state v: 1 = 0
  state I: 1 = 0
  state x: 1 = 0
  dv/dt = (v_leak - v + r * I) / tau_mem
  dI/dt = (-I + w_in * (x + bias)) / tau_syn
  x <- 0
  method euler
  spike when v > v_threshold { v = v_reset }
}
neuron Lif {
  param tau = 20 ms + 0.5 ms * i
  param r = 20.0, v_leak = 0.0, v_threshold = 1.0, v_reset = -0.2, bias = 0.0
  state v: 1 = 0
  state x: 1 = 0
  dv/dt = (v_leak - v + r * (x + bias)) / tau
  x <- 0
  method euler
  spike when v > v_threshold { v = v_reset }
}
neuron Acc {
  param r = 100 Hz, v_threshold = 1.0, v_reset = 0.0, bias = 0.0
  state v: 1 = 0
  state x: 1 = 0
  dv/dt = r * (x + bias)
  x <- 0
  method euler
  spike when v > v_threshold { v = v_reset }
}
neuron Leaky {
  param tau = 10 ms, r = 10.0, v_leak = 0.0, bias = 0.0
  state v: 1 = 0
  state x: 1 = 0
  dv/dt = (v_leak - v + r * (x + bias)) / tau
  x <- 0
  method euler
}
synapse W { param w = normal(0.4, 0.2); on pre { post.x += w } }
input In = spikes(\"in.npy\", 20)
population H = Cuba[16]
population L = Lif[12]
population A = Acc[8]
population O = Leaky[4]
project In -> H via W { connect all_to_all }
project In -> L via W { connect bernoulli(0.6) }
project H -> A via W { connect bernoulli(0.5); delay = 2 ms }
project L -> A via W { connect all_to_all }
project A -> O via W { connect all_to_all }
record H.spikes, L.spikes, A.spikes, O.v every 1 ms
run { dt = 1 ms; duration = 300 ms; seed = 5 }
";

/// Spikes of 20 sources over 300 steps of 1 ms, each with probability 0.1 per step.
fn input_train(path: &std::path::Path) {
    let mut rows = Vec::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for s in 0..20u32 {
        for k in 0..300u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state.is_multiple_of(10) {
                rows.extend([f64::from(k) * 1e-3, f64::from(s)]);
            }
        }
    }
    let n = rows.len() / 2;
    neurograph_runtime::npy::write(path, &rows, &[n, 2], neurograph_runtime::npy::Dtype::F64)
        .unwrap();
}

fn run_spec(path: &std::path::Path) -> Vec<Vec<u64>> {
    let model = Model::compile_file(path).unwrap();
    let mut sim = model.simulation().build().unwrap();
    sim.run_for("300 ms").unwrap();
    let mut out = Vec::new();
    for p in ["H", "L", "A"] {
        let (t, i) = sim.spikes(p).unwrap();
        assert!(t.len() > 50, "{p}: {} spikes prove little", t.len());
        out.push(t.iter().map(|x| x.to_bits()).collect());
        out.push(i.iter().map(|&x| u64::from(x)).collect());
    }
    out.push(
        sim.state("O", "v")
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect(),
    );
    out
}

#[test]
fn a_spec_exported_to_nir_and_imported_again_gives_the_same_trace() {
    use neurograph::interchange::nir;
    let dir = common::temp_dir("nir", "roundtrip");
    std::fs::write(dir.join("net.ng"), NIR_NET).unwrap();
    input_train(&dir.join("in.npy"));
    let model = Model::compile_file(&dir.join("net.ng")).unwrap();
    let graph = neurograph::nir_export::export(&model).unwrap();
    let kinds: Vec<(&str, &str)> = graph
        .nodes
        .iter()
        .map(|(n, node)| (n.as_str(), node.kind.as_str()))
        .collect();
    for want in [
        ("In", "Input"),
        ("H", "CubaLIF"),
        ("L", "LIF"),
        ("A", "IF"),
        ("O", "LI"),
        ("In_to_H", "Affine"),
        ("H_to_A_delay", "Delay"),
        ("O_out", "Output"),
    ] {
        assert!(kinds.contains(&want), "{want:?} not in {kinds:?}");
    }
    // Per-neuron time constants, exactly.
    let l = graph.node("L").unwrap();
    assert_eq!(l.param("tau").unwrap().data[3], 0.02 + 0.0005 * 3.0);
    assert_eq!(graph.node("H").unwrap().param("w_in").unwrap().data[0], 5.0);
    assert_eq!(
        graph.node("In_to_H").unwrap().param("bias").unwrap().data[0],
        0.05
    );
    assert_eq!(
        graph
            .node("H_to_A_delay")
            .unwrap()
            .param("delay")
            .unwrap()
            .data[0],
        0.002
    );
    let file = dir.join("net.nir");
    nir::write(&file, &graph).unwrap();
    let back = nir::read(&file).unwrap();
    assert_eq!(back.nodes.len(), graph.nodes.len());
    assert_eq!(back.metadata, vec![("dt".to_string(), 1e-3)]);
    let again = dir.join("re").join("net.ng");
    std::fs::create_dir_all(again.parent().unwrap()).unwrap();
    let summary = nir::to_spec(&back, &again, 1e-3, 0.3, false).unwrap();
    assert_eq!(summary.projections, 5);
    // Nothing is written over: the spec and its data files exist now.
    let e = nir::to_spec(&back, &again, 1e-3, 0.3, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("exists; pass --overwrite"), "{e}");
    std::fs::copy(dir.join("in.npy"), dir.join("re").join("net.In.spikes.npy")).unwrap();
    assert_eq!(run_spec(&dir.join("net.ng")), run_spec(&again));
    // And the imported spec exports to the same graph.
    let re = neurograph::nir_export::export(&Model::compile_file(&again).unwrap()).unwrap();
    for (name, node) in &graph.nodes {
        let other = re.node(name).unwrap_or_else(|| panic!("{name} lost"));
        assert_eq!(node.kind, other.kind, "{name}");
        for (p, a) in &node.params {
            assert_eq!(Some(a), other.param(p), "{name}.{p}");
        }
    }
}

#[test]
fn what_nir_cannot_express_is_named() {
    let dir = common::temp_dir("nir", "unsupported");
    let export = |name: &str, text: &str| -> String {
        let path = dir.join(format!("{name}.ng"));
        std::fs::write(&path, text).unwrap();
        let model = Model::compile_file(&path).unwrap();
        match neurograph::nir_export::export(&model) {
            Ok(_) => panic!("{name} exported"),
            Err(e) => e.to_string(),
        }
    };
    let cuba = std::fs::read_to_string(common::root().join("specs/cuba.ng")).unwrap();
    let e = export("cuba", &cuba);
    assert!(e.contains("refractory"), "{e}");
    let e = export(
        "three",
        "model three\nneuron N {\n  state v: 1 = 0\n  state a: 1 = 0\n  state b: 1 = 0\n  \
         dv/dt = (a + b - v) / (10 ms)\n  da/dt = -a / (5 ms)\n  db/dt = -b / (5 ms)\n}\n\
         population P = N[3]\nrun { dt = 1 ms; duration = 1 ms }\n",
    );
    assert!(
        e.contains("3 state variables with equations (v, a, b)"),
        "{e}"
    );
    let e = export(
        "coupled",
        "model coupled\nunit R {\n  state r: 1 = 0\n  state d: 1 = 0\n  dr/dt = (d - r) / (5 ms)\n}\n\
         synapse S { param w = 0.5 }\npopulation P = R[3]\n\
         project P -> P via S { connect all_to_all; delay = 1 ms; post.d = sum(w * pre.r) }\n\
         run { dt = 1 ms; duration = 1 ms }\n",
    );
    assert!(e.contains("a coupling"), "{e}");
    // A conventional LIF whose synapses jump v: exported with r = tau / dt.
    let path = dir.join("jump.ng");
    std::fs::write(
        &path,
        "model jump\nneuron N {\n  param tau = 20 ms\n  state v: 1 = 0\n  dv/dt = (0.5 - v) / tau\n  \
         spike when v > 1 { v = 0 }\n}\ninput S = poisson(5, rate = 20 Hz)\npopulation P = N[3]\n\
         project S -> P { connect all_to_all; on pre { post.v += 0.25 } }\n\
         record P.spikes\nrun { dt = 0.5 ms; duration = 10 ms }\n",
    )
    .unwrap();
    let g = neurograph::nir_export::export(&Model::compile_file(&path).unwrap()).unwrap();
    let p = g.node("P").unwrap();
    assert_eq!(p.kind, "LIF");
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b.abs();
    assert!(close(p.param("tau").unwrap().data[0], 0.02));
    assert!(close(p.param("r").unwrap().data[0], 40.0));
    assert!(close(p.param("v_leak").unwrap().data[0], 0.5));
    assert_eq!(
        g.node("S_to_P").unwrap().param("weight").unwrap().data,
        vec![0.25; 15]
    );
}

#[test]
fn nir_nodes_neurograph_cannot_run_are_named_on_import() {
    use neurograph::interchange::nir::{self, Array, Graph, Node as NirNode};
    let dir = common::temp_dir("nir", "import-errors");
    let graph = Graph {
        nodes: vec![
            (
                "in".into(),
                NirNode::new("Input", vec![("shape", Array::vector(vec![4.0]))]),
            ),
            ("conv".into(), NirNode::new("Conv2d", vec![])),
        ],
        edges: vec![("in".into(), "conv".into())],
        metadata: vec![],
    };
    let e = nir::to_spec(&graph, &dir.join("x.ng"), 1e-3, 0.1, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("node `conv` (Conv2d)"), "{e}");
    // A cycle of zero delays in front of a neuron: an error, not a loop.
    let lif = NirNode::new(
        "LIF",
        ["tau", "r", "v_leak", "v_threshold", "v_reset"]
            .iter()
            .map(|&p| (p, Array::filled(2, 1.0)))
            .collect(),
    );
    let graph = Graph {
        nodes: vec![
            ("lif".into(), lif),
            (
                "d1".into(),
                NirNode::new("Delay", vec![("delay", Array::filled(2, 0.0))]),
            ),
            (
                "d2".into(),
                NirNode::new("Delay", vec![("delay", Array::filled(2, 0.0))]),
            ),
        ],
        edges: vec![
            ("d1".into(), "lif".into()),
            ("d2".into(), "d1".into()),
            ("d1".into(), "d2".into()),
        ],
        metadata: vec![],
    };
    let e = nir::to_spec(&graph, &dir.join("y.ng"), 1e-3, 0.1, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("or a cycle"), "{e}");
}
