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
