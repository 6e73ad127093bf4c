//! Parse + check never panic, and every diagnostic points inside the input, for mutated
//! versions of the bundled specs and for random token soup. Bounded so it stays a few seconds;
//! `fuzz/` runs the same property without bounds under cargo-fuzz.

use std::path::Path;

use proptest::prelude::*;

use neurograph::compiler::{compile_str, FsLoader};

fn spec_texts() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    neurograph::spec_files(&dir)
        .unwrap()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    ".",
    "..",
    "=",
    "+=",
    "<-",
    "->",
    "+",
    "-",
    "*",
    "/",
    "^",
    ">",
    "==",
    " and ",
    " not ",
    "\n",
    " ",
    "\"",
    "//",
    "/*",
    "0",
    "1.5e3",
    "20 ms",
    "-60 mV",
    "mV",
    "v",
    "dv/dt",
    "neuron ",
    "synapse ",
    "population ",
    "project ",
    "param ",
    "state ",
    "const ",
    "spike when ",
    "on pre ",
    "post.",
    "pre.",
    "via ",
    "connect ",
    "bernoulli(",
    "record ",
    "run ",
    "switch ",
    "input ",
    "refractory ",
    "method exact",
    "unless refractory",
    "sum(",
    "load(\"x.npy\")",
    "µM",
    "é",
    "\t",
    "[[0.5, 0.5]]",
    "E[0..10]",
];

/// The property: no panic (proptest reports one as a failure) and spans inside the input.
fn check_text(text: &str) {
    let loader = FsLoader {
        base: Path::new(env!("CARGO_MANIFEST_DIR")).join("specs"),
    };
    let (sources, out) = compile_str("input.ng", text, &loader);
    for d in &out.diagnostics {
        for s in std::iter::once(d.span).chain(d.secondary.iter().map(|x| x.0)) {
            assert!(s.start <= s.end, "inverted span {s:?} for {:?}", d.message);
            let file = sources.lookup(s.start).map(|id| sources.file(id));
            let file =
                file.unwrap_or_else(|| panic!("span {s:?} outside every file: {:?}", d.message));
            assert!(
                s.end <= file.base + file.text.len() as u32 + 1,
                "span {s:?} past the end: {:?}",
                d.message
            );
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, usize),
    Truncate(usize),
    SwapLines(usize, usize),
}

fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut s = text.to_string();
    for m in muts {
        let at = |k: usize, s: &str| {
            let mut i = if s.is_empty() { 0 } else { k % (s.len() + 1) };
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        match m {
            Mutation::Delete(a, len) => {
                let i = at(*a, &s);
                let j = at(i + len % 40, &s).max(i);
                s.replace_range(i..j, "");
            }
            Mutation::Insert(a, tok) => {
                let i = at(*a, &s);
                s.insert_str(i, TOKENS[tok % TOKENS.len()]);
            }
            Mutation::Truncate(a) => {
                let i = at(*a, &s);
                s.truncate(i);
            }
            Mutation::SwapLines(a, b) => {
                let mut lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let (x, y) = (a % lines.len(), b % lines.len());
                    lines.swap(x, y);
                }
                s = lines.join("\n");
            }
        }
    }
    s
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Delete(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Insert(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_specs_never_panic(which in any::<usize>(), muts in prop::collection::vec(mutation(), 1..6)) {
        let texts = spec_texts();
        let text = apply(&texts[which % texts.len()], &muts);
        check_text(&text);
    }

    #[test]
    fn token_soup_never_panics(toks in prop::collection::vec(0usize..TOKENS.len(), 0..80)) {
        let text: String = toks.iter().map(|&k| TOKENS[k]).collect();
        check_text(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check_text(&text);
    }
}

#[test]
fn every_prefix_of_cuba_is_handled() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/cuba.ng"))
        .unwrap();
    let mut k = 0;
    while k <= text.len() {
        if text.is_char_boundary(k) {
            check_text(&text[..k]);
        }
        k += 7;
    }
}

/// Nested brackets and named-argument calls once made the parser backtrack exponentially
/// (found by cargo-fuzz: 24 s for 235 bytes). With depth 60 an exponential parser would never
/// finish; a linear one answers at once.
#[test]
fn deeply_nested_input_is_parsed_without_backtracking_blowup() {
    let brackets = format!("record x{}", "[a".repeat(60));
    let calls = format!("param p = {}", "f(a = ".repeat(60));
    let found = "recordJ/0*n0r/011*n-0r/01dJ/1*n-0r/01dJ/0and[0r[r/01dJ/0[[dJ/0[J/0*n0r/011*n-0r/01dJ/0and[0r[r/01dJ[[[0r[r/01dJ/0[[[[[[dJ/0*[[[[dJ/0*n020and[0r[r/01dJ/0[[dJ/0[J/0*n0r/011*n-0r/01dJ/0and[0r[r/01dJ[[[0r[r/01dJ/0[[[[[[dJ/0*[[[[dJ/0*n02[[P";
    for text in [brackets.as_str(), calls.as_str(), found] {
        let (_, diags) = neurograph::grammar::parse(text);
        assert!(!diags.is_empty(), "{text}");
        check_text(text);
    }
}
