//! `neurograph generate`: the prompt and the generated tokens go through the token input one
//! per step, and what cannot be generated from is refused with the reason.

mod common;

use neurograph::generate::{generate, GenerateOptions};
use neurograph::Model;

fn options(prompt: &[u32], tokens: u64) -> GenerateOptions {
    GenerateOptions {
        prompt: prompt.to_vec(),
        tokens,
        temperature: 0.0,
        top_k: None,
        input: None,
        logits: None,
    }
}

#[test]
fn each_generated_token_is_fed_back_and_read_from_the_logits() {
    // A "model" whose logit of token k is its one-hot input shifted by one: it continues
    // 3 with 4, 5, 6, ... (mod 8).
    let dir = common::temp_dir("generate", "shift");
    std::fs::write(dir.join("t.txt"), [0u8]).unwrap();
    std::fs::write(
        dir.join("m.ng"),
        "model shift\ninput T = tokens(\"t.txt\", vocab = 8)\nunit Logit { state logit: 1 = 0 }\n\
         population Out = Logit[8]\nsynapse W { param w = if(j == (i + 1) % 8, 1, 0) }\n\
         project T -> Out via W { connect all_to_all; post.logit = sum(w * pre.x) }\n\
         run { dt = 1 ms; duration = 1 ms }\n",
    )
    .unwrap();
    let model = Model::compile_file(&dir.join("m.ng")).unwrap();
    let mut sim = model.simulation().build().unwrap();
    let mut seen = Vec::new();
    let s = generate(&mut sim, &options(&[1, 3], 6), &mut |t| seen.push(t)).unwrap();
    assert_eq!(s.generated, [4, 5, 6, 7, 0, 1]);
    assert_eq!(seen, s.generated);
    // Two prompt steps and five steps for the tokens after the first.
    assert_eq!(sim.steps(), 7);
    // Out-of-vocabulary and empty prompts are refused.
    let mut sim = model.simulation().build().unwrap();
    let e = generate(&mut sim, &options(&[9], 1), &mut |_| {}).unwrap_err();
    assert!(
        e.to_string().contains("not below the vocabulary size 8"),
        "{e}"
    );
    let e = generate(&mut sim, &options(&[], 1), &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("prompt is empty"), "{e}");
    let mut o = options(&[1], 1);
    o.logits = Some("Out".into());
    let e = generate(&mut sim, &o, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("POPULATION.VARIABLE"), "{e}");
}

#[test]
fn a_model_without_a_token_input_or_logits_is_refused() {
    let cuba = Model::compile_file(&common::root().join("specs/cuba.ng")).unwrap();
    let mut sim = cuba.simulation().build().unwrap();
    let e = generate(&mut sim, &options(&[1], 1), &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("no token input"), "{e}");
}

/// A spec feeding the tokens of `source` to a one-hot input of 8, recording it every step.
fn token_spec(dir: &std::path::Path, source: &str, steps: u32) -> Model {
    std::fs::write(
        dir.join("m.ng"),
        format!(
            "model toks\ninput T = {source}\nrecord T.x\nrun {{ dt = 1 ms; duration = {steps} ms }}\n"
        ),
    )
    .unwrap();
    Model::compile_file(&dir.join("m.ng")).unwrap()
}

fn fed(sim: &neurograph::Simulation) -> Vec<usize> {
    // The one-hot state after the last step: the index of its 1.
    let x = sim.state("T", "x").unwrap();
    x.iter().position(|&v| v == 1.0).into_iter().collect()
}

#[test]
fn token_ids_come_from_npy_files_and_a_file_ends_unless_it_cycles() {
    let dir = common::temp_dir("generate", "ids");
    neurograph_runtime::npy::write(
        &dir.join("ids.npy"),
        &[5.0, 2.0, 7.0],
        &[3],
        neurograph_runtime::npy::Dtype::I64,
    )
    .unwrap();
    let model = token_spec(&dir, "tokens(\"ids.npy\", vocab = 8)", 3);
    let mut sim = model.simulation().build().unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        sim.step(1).unwrap();
        seen.extend(fed(&sim));
    }
    assert_eq!(seen, [5, 2, 7]);
    // A fourth step reads past the end: an error naming the file and its length.
    let e = sim.step(1).unwrap_err().to_string();
    assert!(
        e.contains("`ids.npy` has 3 tokens") && e.contains("cycle = true"),
        "{e}"
    );
    // With `cycle = true` the file starts again.
    let model = token_spec(&dir, "tokens(\"ids.npy\", vocab = 8, cycle = true)", 5);
    let mut sim = model.simulation().build().unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        sim.step(1).unwrap();
        seen.extend(fed(&sim));
    }
    assert_eq!(seen, [5, 2, 7, 5, 2]);
    // Ids must be whole numbers of the vocabulary.
    neurograph_runtime::npy::write(
        &dir.join("bad.npy"),
        &[1.0, 8.0],
        &[2],
        neurograph_runtime::npy::Dtype::I64,
    )
    .unwrap();
    let model = token_spec(&dir, "tokens(\"bad.npy\", vocab = 8)", 2);
    let e = model.simulation().build().err().unwrap().to_string();
    assert!(
        e.contains("has 8 at index 1, not a token id of the vocabulary of 8"),
        "{e}"
    );
}

/// Logits of `specs/bdh_gpu.ng` (in f64) fed the token ids `ids`, after each step.
fn bdh_logits(dir: &std::path::Path, name: &str, ids: &[u32]) -> Vec<Vec<u64>> {
    let spec = std::fs::read_to_string(common::root().join("specs/bdh_gpu.ng")).unwrap();
    let spec = spec
        .replace(
            "input Tok = tokens(\"data/tiny.txt\", vocab = n_vocab, cycle = true)",
            &format!("input Tok = tokens(\"{name}.npy\", vocab = n_vocab, document = 0)"),
        )
        .replace("precision = f32", "precision = f64");
    assert!(spec.contains("document = 0"));
    let values: Vec<f64> = ids.iter().map(|&t| f64::from(t)).collect();
    neurograph_runtime::npy::write(
        &dir.join(format!("{name}.npy")),
        &values,
        &[ids.len()],
        neurograph_runtime::npy::Dtype::I64,
    )
    .unwrap();
    std::fs::write(dir.join(format!("{name}.ng")), spec).unwrap();
    let model = Model::compile_file(&dir.join(format!("{name}.ng"))).unwrap();
    let mut sim = model.simulation().build().unwrap();
    (0..ids.len())
        .map(|_| {
            sim.step(1).unwrap();
            sim.state("Out", "logit")
                .unwrap()
                .iter()
                .map(|x| x.to_bits())
                .collect()
        })
        .collect()
}

#[test]
fn a_document_token_starts_the_model_afresh() {
    let dir = common::temp_dir("generate", "documents");
    let first: Vec<u32> = b"\0The first story."
        .iter()
        .map(|&b| u32::from(b))
        .collect();
    let second: Vec<u32> = b"\0Another one, longer."
        .iter()
        .map(|&b| u32::from(b))
        .collect();
    let both: Vec<u32> = first.iter().chain(&second).copied().collect();
    let together = bdh_logits(&dir, "both", &both);
    let alone = bdh_logits(&dir, "second", &second);
    // The second document's logits are those of a run that saw only it, bit for bit: the
    // attention state S, every activation and RoPE's positions start again.
    assert_eq!(&together[first.len()..], &alone[..]);
    // Without the reset they would differ (the first story is in S).
    let plain = {
        let no_doc: Vec<u32> = both.iter().map(|&t| if t == 0 { 1 } else { t }).collect();
        bdh_logits(&dir, "plain", &no_doc)
    };
    assert_ne!(&plain[first.len() + 1..], &alone[1..]);
}
