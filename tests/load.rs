//! `load(...)` of N-dimensional arrays: tensors of `.safetensors` files by name, and entries
//! of leading axes by constant indices (`load("m.safetensors", "encoder")[h]`), with located
//! errors naming the tensor, its shape and what reads it.

mod common;

use neurograph::{Error, Model};
use neurograph_runtime::npy::{self, Dtype};

/// A safetensors file of `tensors` (name, shape, f32 values).
fn safetensors(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        let start = data.len();
        data.extend(values.iter().flat_map(|x| x.to_le_bytes()));
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let text = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(data);
    out
}

fn setup(name: &str) -> std::path::PathBuf {
    let dir = common::temp_dir("load", name);
    // w3[h][i][j] = 100 h + 10 i + j: 2 heads of 3 x 4.
    let w3: Vec<f64> = (0..2)
        .flat_map(|h| {
            (0..3).flat_map(move |i| (0..4).map(move |j| f64::from(100 * h + 10 * i + j)))
        })
        .collect();
    npy::write(&dir.join("w3.npy"), &w3, &[2, 3, 4], Dtype::F64).unwrap();
    let w3f: Vec<f32> = w3.iter().map(|&x| x as f32 + 0.5).collect();
    let gains: Vec<f32> = vec![0.25, 0.5, 0.75];
    std::fs::write(
        dir.join("m.safetensors"),
        safetensors(&[("encoder", vec![2, 3, 4], w3f), ("gains", vec![3], gains)]),
    )
    .unwrap();
    dir
}

fn compile(dir: &std::path::Path, body: &str) -> Result<Model, Error> {
    let text = format!(
        "model m\nunit U {{\n  param g = 1\n  state x: 1 = 0\n}}\n{body}\nrun {{ dt = 1 ms; duration = 1 ms }}\n"
    );
    std::fs::write(dir.join("m.ng"), text).unwrap();
    Model::compile_file(&dir.join("m.ng"))
}

fn synapse_values(dir: &std::path::Path, source: &str) -> Vec<f64> {
    let body = format!(
        "synapse S {{ param w = {source} }}\npopulation A = U[3]\npopulation B = U[4]\n\
         project W: A -> B via S {{ connect all_to_all }}"
    );
    let model = compile(dir, &body).unwrap();
    let sim = model.simulation().build().unwrap();
    sim.state("W", "w").unwrap().into_owned()
}

#[test]
fn entries_of_npy_and_safetensors_arrays_become_weights_and_parameters() {
    let dir = setup("ok");
    // Synapses in (pre, post) order: weight (i, j) of head 1.
    let want: Vec<f64> = (0..3)
        .flat_map(|i| (0..4).map(move |j| f64::from(100 + 10 * i + j)))
        .collect();
    assert_eq!(synapse_values(&dir, "load(\"w3.npy\")[1]"), want);
    let want: Vec<f64> = want.iter().map(|x| x - 100.0 + 0.5).collect();
    assert_eq!(
        synapse_values(&dir, "load(\"m.safetensors\", \"encoder\")[0]"),
        want
    );
    let model = compile(
        &dir,
        "population P = U[3] { g = load(\"m.safetensors\", \"gains\") }\n\
         population Q = U[4] { g = load(\"w3.npy\")[1][2] }",
    )
    .unwrap();
    let sim = model.simulation().build().unwrap();
    assert_eq!(sim.state("P", "g").unwrap().as_ref(), [0.25, 0.5, 0.75]);
    assert_eq!(
        sim.state("Q", "g").unwrap().as_ref(),
        [120.0, 121.0, 122.0, 123.0]
    );
}

#[test]
fn a_wrong_tensor_index_or_shape_is_a_located_error() {
    let dir = setup("errors");
    let build_error = |body: &str| -> String {
        let model = compile(&dir, body).unwrap();
        match model.simulation().build() {
            Ok(_) => panic!("{body} built"),
            Err(e) => e.to_string(),
        }
    };
    let e = build_error("population P = U[3] { g = load(\"m.safetensors\", \"decoder\") }");
    assert!(
        e.contains("m.ng:") && e.contains("no tensor `decoder`"),
        "{e}"
    );
    assert!(
        e.contains("encoder (2, 3, 4)") && e.contains("gains (3)"),
        "{e}"
    );
    let e = build_error("population P = U[3] { g = load(\"m.safetensors\", \"encoder\")[2] }");
    assert!(
        e.contains("has shape (2, 3, 4)")
            && e.contains("index [2] is outside its axis of length 2"),
        "{e}"
    );
    let e = build_error("population P = U[3] { g = load(\"w3.npy\")[0][0][0][0] }");
    assert!(e.contains("past the array's dimensions"), "{e}");
    // Head 0 of the encoder is 3 x 4; a projection of 4 x 4 endpoints reads row 3.
    let model = compile(
        &dir,
        "synapse S { param w = load(\"m.safetensors\", \"encoder\")[0] }\npopulation A = U[4]\n\
         project W: A -> A via S { connect all_to_all }",
    )
    .unwrap();
    let e = match model.simulation().build() {
        Ok(mut sim) => sim.run_for("1 ms").err().map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    }
    .expect("a 3 x 4 matrix read by a 4 x 4 projection");
    assert!(
        e.contains("`load(\"m.safetensors\", \"encoder\")[0]` has shape (3, 4)")
            && e.contains("4 x 4 endpoints"),
        "{e}"
    );
    let compile_error = |body: &str| -> String {
        match compile(&dir, body) {
            Ok(_) => panic!("{body} compiled"),
            Err(e) => e.to_string(),
        }
    };
    let e = compile_error("population P = U[3] { g = load(\"m.safetensors\") }");
    assert!(e.contains("name the one to load"), "{e}");
    let e = compile_error("population P = U[3] { g = load(\"w3.npy\", \"w\") }");
    assert!(
        e.contains("only a .safetensors file has named tensors"),
        "{e}"
    );
    let e = compile_error("population P = U[3] { g = load(\"w3.npy\")[i] }");
    assert!(e.contains("must be a constant whole number"), "{e}");
}
