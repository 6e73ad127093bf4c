//! Silencing neurons (`Simulation::silence`) and `neurograph analyze TRACE groups` with the
//! `circuit` plot. Silenced neurons never appear in the spikes and their targets receive
//! nothing, identically with both backends, also across a checkpoint. On a network built so
//! that six sources drive two target neurons (three each) and 34 others only weakly, the pass
//! finds those six as the core set, the two triples as the two groups, and silencing them
//! changes the target far more than random sets of six; on a three-layer chain `--hops`
//! finds each layer's drivers in turn; the re-run applies the manifest's parameter values;
//! bad input is a clear error.

mod common;

use std::path::{Path, PathBuf};

use neurograph::{Backend, Model};

/// Ten Bernoulli sources drive ten LIF cells one to one, each spike strong enough to fire its
/// target; `got` counts the spikes a cell received.
const ONE_TO_ONE: &str = r#"
model silence
neuron Source {
  param rate = 50 Hz
  spike with probability rate * dt
}
neuron LIF {
  param taum = 10 ms, Vt = -50 mV, Vr = -65 mV, El = -65 mV
  state v: volt = -65 mV
  state got: 1 = 0
  dv/dt = (El - v) / taum
  method exact
  spike when v > Vt { v = Vr }
  refractory 2 ms
}
synapse Hit { on pre { post.v += 20 mV; post.got += 1 } }
population In = Source[10]
population Out = LIF[10]
project In -> Out via Hit { connect one_to_one }
record In.spikes, Out.spikes, Out.got at end, Out.v every 1 ms
run { dt = 0.5 ms; duration = 400 ms; seed = 5 }
"#;

fn model(dir: &Path, name: &str, text: &str) -> Model {
    let path = dir.join(format!("{name}.ng"));
    std::fs::write(&path, text).unwrap();
    Model::compile_file(&path).unwrap()
}

/// Spikes as (time bits, index).
type Spikes = Vec<(u64, u32)>;

/// Spikes of In and Out, `got` and the samples of `v`, as bits.
fn outcome(sim: &neurograph::Simulation) -> (Spikes, Spikes, Vec<u64>, Vec<u64>) {
    let bits =
        |(t, i): (Vec<f64>, Vec<u32>)| -> Spikes { t.iter().map(|x| x.to_bits()).zip(i).collect() };
    let v: Vec<u64> = sim.raw().recordings[3]
        .values
        .iter()
        .map(|x| x.to_bits())
        .collect();
    (
        bits(sim.spikes("In").unwrap()),
        bits(sim.spikes("Out").unwrap()),
        sim.state("Out", "got")
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect(),
        v,
    )
}

#[test]
fn silenced_neurons_neither_spike_nor_reach_their_targets_with_either_backend() {
    let dir = common::temp_dir("groups", "silence");
    let m = model(&dir, "silence", ONE_TO_ONE);
    let mut results = Vec::new();
    for backend in [Backend::Interp, Backend::Jit] {
        let mut sim = m.simulation().backend(backend).build().unwrap();
        sim.silence("In", &[2, 5]).unwrap();
        sim.silence("Out", &[7]).unwrap();
        assert_eq!(sim.silenced("In").unwrap(), &[2, 5]);
        sim.run_for("400 ms").unwrap();
        let (spikes_in, spikes_out, got, _) = outcome(&sim);
        assert!(spikes_in.len() > 100, "{} source spikes", spikes_in.len());
        assert!(spikes_in.iter().all(|&(_, i)| i != 2 && i != 5));
        assert!(spikes_out.iter().all(|&(_, i)| i != 2 && i != 5 && i != 7));
        let got: Vec<f64> = got.into_iter().map(f64::from_bits).collect();
        assert_eq!((got[2], got[5]), (0.0, 0.0), "{got:?}");
        assert!(got
            .iter()
            .enumerate()
            .all(|(k, &g)| k == 2 || k == 5 || g > 5.0));
        // Out[7] still receives (its source is not silenced) but its spikes are removed.
        assert!(got[7] > 5.0);
        // Counts agree with the records.
        assert_eq!(sim.spike_count("In").unwrap(), spikes_in.len() as u64);
        assert_eq!(sim.spike_count("Out").unwrap(), spikes_out.len() as u64);
        if backend == Backend::Jit {
            assert!(sim.raw().fused_calls > 0, "the JIT's fused kernels ran");
        }
        results.push(outcome(&sim));
    }
    assert!(
        results[0] == results[1],
        "interp and jit differ with silencing"
    );
    // Silencing nothing is the plain run; silencing changes it.
    let mut plain = m.simulation().build().unwrap();
    plain.run_for("400 ms").unwrap();
    let (pin, _, got, _) = outcome(&plain);
    assert!(pin.iter().any(|&(_, i)| i == 2));
    assert!(f64::from_bits(got[2]) > 5.0);
    // Out of range is an error naming the population.
    let mut sim = m.simulation().build().unwrap();
    let e = sim.silence("In", &[10]).unwrap_err().to_string();
    assert!(e.contains("`In`") && e.contains("10 elements"), "{e}");
    assert!(sim.silence("Nope", &[0]).is_err());
    sim.silence("In", &[1]).unwrap();
    sim.clear_silenced();
    assert!(sim.silenced("In").unwrap().is_empty());
}

#[test]
fn checkpoints_carry_the_silenced_set() {
    let dir = common::temp_dir("groups", "checkpoint");
    let m = model(&dir, "silence", ONE_TO_ONE);
    for backend in [Backend::Interp, Backend::Jit] {
        let mut whole = m.simulation().backend(backend).build().unwrap();
        whole.silence("In", &[0, 9]).unwrap();
        whole.run_for("400 ms").unwrap();
        let mut first = m.simulation().backend(backend).build().unwrap();
        first.silence("In", &[0, 9]).unwrap();
        first.run_for("150 ms").unwrap();
        let bytes = first.snapshot();
        let mut resumed = neurograph::Simulation::restore(&m, &bytes).unwrap();
        assert_eq!(resumed.silenced("In").unwrap(), &[0, 9]);
        resumed.run_for("250 ms").unwrap();
        assert!(outcome(&whole) == outcome(&resumed), "{backend:?}");
    }
}

/// 40 Bernoulli sources onto two LIF targets: In[0..3] strongly onto Out[0], In[3..6]
/// strongly onto Out[1], every other synapse weak (the README's example).
const DEMO: &str = include_str!("../docs/groups_demo.ng");

fn run_spec(dir: &Path, name: &str, text: &str) -> (PathBuf, PathBuf) {
    common::run_spec_text(dir, name, text, &[])
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_pass_finds_the_driving_sources_their_two_groups_and_draws_the_circuit() {
    let dir = common::temp_dir("groups", "demo");
    let (_, trace) = run_spec(&dir, "demo", DEMO);
    let json = dir.join("groups.json");
    let dot = dir.join("groups.dot");
    let out = common::neurograph_ok(&[
        "analyze",
        trace.to_str().unwrap(),
        "groups",
        "--target",
        "Out[0..2]",
        "--candidates",
        "10",
        "--random-sets",
        "6",
        "--json",
        json.to_str().unwrap(),
        "--dot",
        dot.to_str().unwrap(),
    ]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("core set: the top 6"), "{table}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ablation 16:"),
        "progress per re-run: {stderr}"
    );
    let doc = common::read_json(&json);
    assert_eq!(doc["format"], "neurograph-analysis-groups");
    let mut core = names(&doc["hops"][0]["core"]);
    core.sort();
    assert_eq!(core, ["In[0]", "In[1]", "In[2]", "In[3]", "In[4]", "In[5]"]);
    // The ranking: the six strong sources first.
    let ranked: Vec<String> = doc["hops"][0]["candidates"].as_array().unwrap()[..6]
        .iter()
        .map(|c| c["neuron"].as_str().unwrap().to_string())
        .collect();
    assert!(ranked.iter().all(|n| core.contains(n)));
    // Cumulative masking: the change grows with each strong source and is total at 6.
    let masking = doc["hops"][0]["masking"].as_array().unwrap();
    let changes: Vec<f64> = masking
        .iter()
        .map(|m| m["change"].as_f64().unwrap())
        .collect();
    assert!(changes[..6].windows(2).all(|w| w[1] < w[0]), "{changes:?}");
    assert_eq!(changes[5], -1.0);
    assert!(changes[4] > -0.95, "{changes:?}");
    // Two groups: the sources of Out[0] and those of Out[1].
    assert_eq!(doc["hops"][0]["clustering"]["k"], 2);
    let mut groups: Vec<Vec<String>> = doc["hops"][0]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let mut m = names(&g["members"]);
            m.sort();
            m
        })
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        [["In[0]", "In[1]", "In[2]"], ["In[3]", "In[4]", "In[5]"]]
    );
    // Fidelity: the core set against random sets of six.
    let f = &doc["hops"][0]["fidelity"];
    assert_eq!(f["core_change"].as_f64().unwrap(), -1.0);
    assert_eq!(f["random_sets"], 6);
    let mean = f["random_change_mean"].as_f64().unwrap();
    let sd = f["random_change_sd"].as_f64().unwrap();
    assert!(mean.abs() + 2.0 * sd < 0.6, "random sets: {mean} ± {sd}");
    assert!(f["ratio"].as_f64().unwrap() > 3.0);
    // The circuit: 6 core nodes + 2 targets; normalised weights onto each target sum to 1.
    let nodes = doc["circuit"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 8);
    let edges = doc["circuit"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 12);
    for t in ["Out[0]", "Out[1]"] {
        let s: f64 = edges
            .iter()
            .filter(|e| e["to"] == t)
            .map(|e| e["weight"].as_f64().unwrap().abs())
            .sum();
        assert!((s - 1.0).abs() < 1e-12, "{t}: {s}");
    }
    let dot = std::fs::read_to_string(&dot).unwrap();
    assert!(dot.starts_with("digraph circuit {"));
    assert_eq!(dot.matches(" -> ").count(), 12);
    assert_eq!(dot.matches("subgraph cluster_hop1_group").count(), 2);

    // The plot of that circuit.
    let svg = plot_circuit(&trace, &json, &dir.join("circuit.svg"));
    let texts = common::texts(&check_svg(&svg, 8, 12));
    for label in ["group 0", "group 1", "Out[0]", "In[4]"] {
        assert!(
            texts.iter().any(|t| t == label),
            "no text {label:?} in {texts:?}"
        );
    }
}

/// The `<circle class="node">` and `<path class="edge">` elements: counts, sign colours, and
/// widths growing with |weight|; well-formed, one `<svg>`. Returns the parsed document.
fn check_svg(svg: &str, nodes: usize, edges: usize) -> common::Document<'_> {
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    let doc = common::parse_svg(svg);
    assert_eq!(common::elements(&doc, "svg").len(), 1);
    let of = |name: &str, class: &str| {
        common::elements(&doc, name)
            .into_iter()
            .filter(|n| n.attribute("class") == Some(class))
            .collect::<Vec<_>>()
    };
    assert_eq!(of("circle", "node").len(), nodes);
    let mut seen = Vec::new();
    for edge in of("path", "edge") {
        let w: f64 = common::attr(edge, "data-weight").parse().unwrap();
        let width: f64 = common::attr(edge, "stroke-width").parse().unwrap();
        let colour = common::attr(edge, "stroke");
        assert_eq!(
            colour,
            if w >= 0.0 { "#c0392b" } else { "#2c6fbb" },
            "{edge:?}"
        );
        seen.push((w.abs(), width));
    }
    assert_eq!(seen.len(), edges);
    seen.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(seen.windows(2).all(|p| p[1].1 >= p[0].1), "{seen:?}");
    doc
}

#[test]
fn the_circuit_plot_draws_signs_and_refuses_bad_input() {
    let dir = common::temp_dir("groups", "plot");
    let trace = dir.join("trace");
    std::fs::create_dir_all(&trace).unwrap();
    common::write_spike_trace(&trace, "m", 0.1, &[("A", 4, vec![(0.01, 0)])]);
    let doc = serde_json::json!({
        "format": "neurograph-analysis-groups", "format_version": 1,
        "target": {"text": "B[0]"},
        "circuit": {
            "nodes": [
                {"id": "A[0]", "role": "core", "group": 0},
                {"id": "A[1]", "role": "core", "group": 1},
                {"id": "A[2]", "role": "core", "group": 1},
                {"id": "B[0]", "role": "target", "group": null}
            ],
            "edges": [
                {"from": "A[0]", "to": "B[0]", "weight": 0.6},
                {"from": "A[1]", "to": "B[0]", "weight": -0.3},
                {"from": "A[2]", "to": "B[0]", "weight": 0.1}
            ]
        }
    });
    let json = dir.join("c.json");
    std::fs::write(&json, doc.to_string()).unwrap();
    let svg = dir.join("c.svg");
    let args = |j: &Path| {
        vec![
            "plot".to_string(),
            trace.display().to_string(),
            "circuit".into(),
            "--circuit".into(),
            j.display().to_string(),
            "-o".into(),
            svg.display().to_string(),
        ]
    };
    let a = args(&json);
    common::neurograph_ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let text = std::fs::read_to_string(&svg).unwrap();
    let drawn = check_svg(&text, 4, 3);
    assert!(
        common::by_class(&drawn, "edge")
            .iter()
            .any(|e| e.attribute("stroke") == Some("#2c6fbb")),
        "the negative edge is blue"
    );
    // Without --circuit, with a file of another kind, with an edge to nowhere.
    common::expect_error(
        &[
            "plot",
            trace.to_str().unwrap(),
            "circuit",
            "-o",
            svg.to_str().unwrap(),
        ],
        "--circuit FILE",
    );
    let other = dir.join("other.json");
    std::fs::write(&other, r#"{"format": "neurograph-analysis-spikes"}"#).unwrap();
    let bad_edge = dir.join("bad.json");
    let mut d = doc.clone();
    d["circuit"]["edges"][0]["to"] = "C[9]".into();
    std::fs::write(&bad_edge, d.to_string()).unwrap();
    for (file, says) in [
        (other, "neurograph-analysis-groups"),
        (bad_edge, "C[9]"),
        (dir.join("missing.json"), "missing.json"),
    ] {
        let a = args(&file);
        common::expect_error(&a.iter().map(String::as_str).collect::<Vec<_>>(), says);
    }
}

/// `analyze TRACE groups EXTRA...` fails with `error: ...` (after the re-run's progress lines,
/// if it got that far); returns stderr.
fn groups_err(trace: &Path, extra: &[&str]) -> String {
    common::expect_error_after_progress(
        &common::analyze_args(trace, "groups", extra),
        "groups: ",
        "",
    )
}

#[test]
fn bad_targets_missing_records_and_changed_specs_are_clear_errors() {
    let dir = common::temp_dir("groups", "errors");
    let (spec, trace) = run_spec(&dir, "demo", DEMO);
    let small = ["--candidates", "3", "--random-sets", "1"];
    let with = |t: &str| -> Vec<String> {
        let mut v = vec!["--target".to_string(), t.to_string()];
        v.extend(small.iter().map(|s| s.to_string()));
        v
    };
    let err = |t: &str| {
        let a = with(t);
        groups_err(&trace, &a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let e = err("Nope[0]");
    assert!(
        e.contains("`Nope`") && e.contains("recorded of: In, Out"),
        "{e}"
    );
    let e = err("Out[5]");
    assert!(e.contains("has 2 neurons") && e.contains("5"), "{e}");
    let e = err("Out");
    assert!(e.contains("POP[i] or POP[a..b]"), "{e}");
    let e = groups_err(&trace, &["--target", "Out[0]", "--tolerance=-1"]);
    assert!(e.contains("--tolerance"), "{e}");
    let e = groups_err(&trace, &["--target", "Out[0]", "--weight", "W"]);
    assert!(e.contains("--weight W"), "{e}");
    let e = groups_err(&trace, &["--target", "Out[0]", "--weight", "V=1mV"]);
    assert!(e.contains("projection `V`"), "{e}");

    // Without `record W.edges`: the error says what to add.
    let (_, no_edges) = run_spec(
        &dir,
        "no_edges",
        &DEMO.replace("W.edges, W.w at end", "W.w at end"),
    );
    let e = groups_err(&no_edges, &["--target", "Out[0]"]);
    assert!(e.contains("record W.edges"), "{e}");
    // Without a weight record: the error names it and the --weight flag; with the flag (a
    // manifest parameter: every synapse counts alike, so the ranking is by activity alone and
    // needs every candidate to reach the strong sources) the pass runs.
    let (_, no_w) = run_spec(
        &dir,
        "no_w",
        &DEMO.replace("W.edges, W.w at end", "W.edges"),
    );
    let e = groups_err(&no_w, &["--target", "Out[0]"]);
    assert!(e.contains("W.w") && e.contains("--weight W="), "{e}");
    let json = dir.join("no_w.json");
    common::neurograph_ok(&[
        "analyze",
        no_w.to_str().unwrap(),
        "groups",
        "--target",
        "Out[0]",
        "--weight",
        "W=weak",
        "--candidates",
        "40",
        "--random-sets",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    let doc = common::read_json(&json);
    let source = doc["hops"][0]["weights"][0]["source"].as_str().unwrap();
    assert!(
        source.starts_with("0.0003") && source.ends_with(" V per synapse"),
        "{source}"
    );

    // A trace whose run cannot be reproduced: another seed in its manifest.
    let mut m = common::manifest(&trace);
    m["seed"] = 2.into();
    let moved = dir.join("reseeded");
    std::fs::create_dir_all(&moved).unwrap();
    for f in std::fs::read_dir(&trace).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, moved.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(moved.join("manifest.json"), m.to_string()).unwrap();
    let a = with("Out[0..2]");
    let e = groups_err(&moved, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("does not reproduce the trace's spikes"), "{e}");

    // The spec changed since the trace was written.
    std::fs::write(&spec, DEMO.replace("weak = 0.3 mV", "weak = 0.4 mV")).unwrap();
    let e = err("Out[0..2]");
    assert!(
        e.contains("the spec changed since the trace was written"),
        "{e}"
    );
}

/// Three layers: A (30 Bernoulli sources) -> B (10 LIF) -> C (1 LIF). A[k] drives B[k]
/// strongly (k < 10), B[0] and B[1] drive C[0] strongly; every other synapse is weak.
const CHAIN: &str = r#"
model chain
neuron Source {
  param rate = 20 Hz
  spike with probability rate * dt
}
neuron LIF {
  param taum = 10 ms, Vt = -50 mV, Vr = -65 mV, El = -65 mV
  state v: volt = -65 mV
  dv/dt = (El - v) / taum
  method exact
  spike when v > Vt { v = Vr }
  refractory 2 ms
}
param strong = 20 mV
param weak = 0.3 mV
synapse ToB {
  state w: volt = if(i == j, strong, weak)
  on pre { post.v += w }
}
synapse ToC {
  state w: volt = if(i < 2, strong, weak)
  on pre { post.v += w }
}
population A = Source[30]
population B = LIF[10]
population C = LIF[1]
project AB: A -> B via ToB { connect all_to_all }
project BC: B -> C via ToC { connect all_to_all }
record A.spikes, B.spikes, C.spikes, AB.edges, AB.w at end, BC.edges, BC.w at end
run { dt = 1 ms; duration = 2 s; seed = 2 }
"#;

#[test]
fn hops_go_back_layer_by_layer_until_no_input_is_recorded() {
    let dir = common::temp_dir("groups", "chain");
    let (_, trace) = run_spec(&dir, "chain", CHAIN);
    let json = dir.join("chain.json");
    let out = common::neurograph_ok(&[
        "analyze",
        trace.to_str().unwrap(),
        "groups",
        "--target",
        "C[0]",
        "--hops",
        "3",
        "--candidates",
        "5",
        "--random-sets",
        "3",
        "--json",
        json.to_str().unwrap(),
    ]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("stopped after 2 of 3 hops"), "{table}");
    let doc = common::read_json(&json);
    let hops = doc["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 2);
    let sorted = |v: &serde_json::Value| {
        let mut n = names(v);
        n.sort();
        n
    };
    assert_eq!(sorted(&hops[0]["core"]), ["B[0]", "B[1]"]);
    assert_eq!(sorted(&hops[1]["targets"]), ["B[0]", "B[1]"]);
    assert_eq!(sorted(&hops[1]["core"]), ["A[0]", "A[1]"]);
    // Hop 2 leaves out the neurons already in the circuit: no B among its candidates.
    assert!(hops[1]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["population"] == "A"));
    assert!(doc["stopped"]
        .as_str()
        .unwrap()
        .contains("hop 3: no recorded projection"));
    for h in hops {
        let f = &h["fidelity"];
        assert!(f["core_change"].as_f64().unwrap() < -0.9, "{f}");
        assert!(f["random_change_mean"].as_f64().unwrap().abs() < 0.5, "{f}");
    }
    // The circuit: C[0] at layer 0, B[0], B[1] at 1, A[0], A[1] at 2; 2 + 4 edges.
    let layer_of = |id: &str| {
        doc["circuit"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .map(|n| n["layer"].as_u64().unwrap())
    };
    assert_eq!(layer_of("C[0]"), Some(0));
    assert_eq!(layer_of("B[1]"), Some(1));
    assert_eq!(layer_of("A[0]"), Some(2));
    assert_eq!(doc["circuit"]["edges"].as_array().unwrap().len(), 6);
    let text = plot_circuit(&trace, &json, &dir.join("chain.svg"));
    let doc = check_svg(&text, 5, 6);
    assert!(common::texts(&doc).iter().any(|t| t == "hop 2 group 0"));
    // Columns: A left of B left of C.
    let cx = |id: &str| -> f64 {
        common::attr(common::find(&doc, "data-id", id), "cx")
            .parse()
            .unwrap()
    };
    assert!(cx("A[0]") < cx("B[0]") && cx("B[0]") < cx("C[0]"));
}

#[test]
fn the_re_run_takes_the_parameter_values_of_the_manifest() {
    // With a weaker strong weight and another threshold on one population the target fires
    // differently; the re-run must apply both (`--set` values in the manifest) to reproduce it.
    let dir = common::temp_dir("groups", "set");
    let spec = dir.join("demo.ng");
    std::fs::write(&spec, DEMO).unwrap();
    let run = |out: &Path, sets: &[&str]| {
        let mut args = vec![
            "run",
            spec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ];
        for s in sets {
            args.extend(["--set", s]);
        }
        common::neurograph_ok(&args);
    };
    let (plain, set) = (dir.join("plain"), dir.join("set"));
    run(&plain, &[]);
    run(&set, &["strong=9mV", "Out.Vt=-56mV"]);
    let count = |t: &Path| {
        neurograph_analysis::trace::Trace::open(t)
            .unwrap()
            .spikes("Out")
            .unwrap()
            .times
            .len()
    };
    assert_ne!(count(&plain), count(&set));
    let json = dir.join("set.json");
    common::neurograph_ok(&[
        "analyze",
        set.to_str().unwrap(),
        "groups",
        "--target",
        "Out[0..2]",
        "--candidates",
        "6",
        "--random-sets",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    let doc = common::read_json(&json);
    assert_eq!(
        doc["hops"][0]["target_spikes"].as_u64().unwrap() as usize,
        count(&set)
    );
}

/// `neurograph plot TRACE circuit --circuit JSON -o SVG`; the SVG written.
fn plot_circuit(trace: &Path, json: &Path, svg: &Path) -> String {
    common::neurograph_ok(&[
        "plot",
        trace.to_str().unwrap(),
        "circuit",
        "--circuit",
        json.to_str().unwrap(),
        "-o",
        svg.to_str().unwrap(),
    ]);
    std::fs::read_to_string(svg).unwrap()
}
