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
