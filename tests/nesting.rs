//! Deep and long expressions: a located error beyond the nesting limit, through the library on
//! an ordinary test thread (2 MiB stack) and through the binary (no signal death); expressions
//! just under the limit compile and run alike in both backends; long specs stay linear.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use neurograph::grammar::MAX_NESTING;
use neurograph_runtime::{Backend, Sim};
use proptest::prelude::*;

/// The four inputs that used to overflow the stack, as (name, spec text).
fn deep_inputs() -> Vec<(&'static str, String)> {
    let sum = format!("model m\nconst x = 1{}\n", "+1".repeat(11_999));
    let parens = format!(
        "model m\nconst x = {}1{}\n",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let exps = format!(
        "model m\nconst x = {}0{}\n",
        "exp(".repeat(5_000),
        ")".repeat(5_000)
    );
    let minus = format!("model m\nconst x = {}1\n", "-".repeat(100_000));
    vec![
        ("sum", sum),
        ("parens", parens),
        ("exps", exps),
        ("minus", minus),
    ]
}

/// Compile through the library and return `line:col: message` of each error.
fn errors(text: &str) -> Vec<String> {
    let path = common::root().join("specs/inline.ng");
    let c = neurograph::compile_text(&path, text.to_string());
    let file = c.sources.file(neurograph::grammar::FileId(0));
    c.output
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let (l, col) = file.line_col(d.span.start);
            format!("{l}:{col}: {}", d.message)
        })
        .collect()
}

#[test]
fn deep_expressions_are_a_located_error_in_the_library() {
    for (name, text) in deep_inputs() {
        let errs = errors(&text);
        assert!(
            errs.iter()
                .any(|e| e.starts_with("2:") && e.contains("expression nested too deeply")),
            "{name}: {errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains(&format!("the limit is {MAX_NESTING}"))),
            "{name}: {errs:?}"
        );
    }
}

#[test]
fn deep_expressions_are_a_located_error_in_the_binary() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("nesting");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in deep_inputs() {
        let path = dir.join(format!("{name}.ng"));
        std::fs::write(&path, &text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_neurograph"))
            .args(["check", "--short"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: killed or wrong status {:?}\n{stderr}",
            out.status
        );
        let text = format!("{stdout}{stderr}");
        let located = format!("{}:2:", path.display());
        assert!(
            text.lines()
                .any(|l| l.starts_with(&located) && l.contains("expression nested too deeply")),
            "{name}: {text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_let_chain_deeper_than_the_limit_is_a_located_error() {
    // Each `let` is shallow; substituted into each other they nest 4 x 100 levels.
    let part = format!("{}x{}", "(1 + ".repeat(100), ")".repeat(100));
    let mut body = String::from("  state x = 0\n");
    body.push_str(&format!("  let a = {part}\n"));
    body.push_str(&format!("  let b = {}\n", part.replace('x', "a")));
    body.push_str(&format!("  let c = {}\n", part.replace('x', "b")));
    body.push_str(&format!("  let d = {}\n", part.replace('x', "c")));
    body.push_str("  x <- d\n");
    let text = format!("model m\nunit U {{\n{body}}}\npopulation P = U[2]\n");
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("6:") && e.contains("expression nested too deeply")),
        "{errs:?}"
    );
}

/// A spec whose update and ODE use an expression of `depth` levels in `i`, `t` and `v`.
fn deep_model(levels: usize) -> String {
    // Each `(... * 0.999 + c)` adds two levels (a product and a sum).
    let mut e = String::from("(v * 0.5 + i)");
    let mut depth = 3;
    let mut k = 0;
    while depth + 2 <= levels {
        e = format!("({e} * 0.999 + {}.{})", k % 7, k % 10);
        depth += 2;
        k += 1;
    }
    format!(
        "model deep\nunit U {{\n  method euler\n  state v = 0\n  state u = 0\n  dv/dt = ({e} - v) / (100 ms)\n  \
         u <- {e} + sin(t / (1 ms))\n}}\npopulation P = U[7]\nrecord P.v, P.u\nrun {{ dt = 0.1 ms; duration = 5 ms }}\n"
    )
}

#[test]
fn an_expression_just_under_the_limit_runs_alike_in_both_backends() {
    // The ODE's right side is `(deep - v) / (100 ms)`: two levels above the deep part, plus
    // the integrator's own arithmetic in the generated code.
    let text = deep_model(MAX_NESTING - 3);
    let c = common::compile_text(&text);
    let run = |backend| {
        let mut cfg = common::config(3);
        cfg.backend = backend;
        let mut sim = Sim::new(std::sync::Arc::clone(&c), &cfg).unwrap();
        sim.run(50, &AtomicBool::new(false), 0, &mut |_| {});
        sim.finish_records();
        let values = sim
            .recordings
            .iter()
            .map(|r| r.values.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
            .collect::<Vec<_>>();
        (values, sim.fused_calls)
    };
    let (a, _) = run(Backend::Interp);
    let (b, fused) = run(Backend::Jit);
    assert!(
        fused > 0,
        "the deep expressions did not run as generated code"
    );
    assert_eq!(a.len(), 2);
    assert!(a[0].iter().any(|&x| f64::from_bits(x) != 0.0));
    assert_eq!(a, b, "interp and jit differ");
}

#[test]
fn an_expression_just_over_the_limit_is_refused() {
    let errs = errors(&deep_model(MAX_NESTING + 2));
    assert!(
        errs.iter()
            .any(|e| e.contains("expression nested too deeply")),
        "{errs:?}"
    );
}

/// 100,000 lines: checks correctly (how fast is `benches/frontend.rs`'s `long_spec` case).
pub fn long_spec(n: usize) -> String {
    let mut s = String::from("model long\n");
    // Constants in reverse dependency order, so each refers to one defined further down.
    for k in 0..n {
        s.push_str(&format!("const c{k} = c{} + 1\n", k + 1));
    }
    s.push_str(&format!("const c{n} = 0\n"));
    s
}

#[test]
fn a_spec_of_a_hundred_thousand_lines_checks() {
    let text = long_spec(100_000);
    assert_eq!(text.lines().count(), 100_002);
    let path = common::root().join("specs/inline.ng");
    let c = neurograph::compile_text(&path, text);
    assert!(!c.output.has_errors(), "{:?}", &c.output.diagnostics[..1]);
    let m = &c.compiled_model();
    let c0 = m
        .globals
        .iter()
        .find(|&&v| m.variables[v].name == "c0")
        .unwrap();
    let value = neurograph::compiler::const_eval(m, m.variables[*c0].init);
    assert_eq!(value, Some(100_000.0));
}

#[test]
fn a_long_chain_of_parameters_checks_and_runs() {
    // Parameters are not folded: each refers to the next through the IR, and compile-time
    // evaluation (here: of the connection probability) used to follow the chain recursively.
    let n = 100_000;
    let mut s = String::from("model chain\n");
    for k in 0..n {
        s.push_str(&format!("param p{k} = p{} + 0\n", k + 1));
    }
    s.push_str(&format!(
        "param p{n} = 0.5\nunit U {{ state v = 0 }}\npopulation P = U[10]\n\
         project P -> P {{ connect bernoulli(p0) }}\nrun {{ dt = 0.1 ms; duration = 1 ms }}\n"
    ));
    let c = common::compile_text(&s);
    let sim = common::simulate(&c, 1, 2);
    let synapses = sim.conn[0].n_synapses();
    assert!((20..=80).contains(&synapses), "{synapses} synapses of 100");
}

trait CompiledModel {
    fn compiled_model(&self) -> &neurograph::compiler::ir::Model;
}

impl CompiledModel for neurograph::Checked {
    fn compiled_model(&self) -> &neurograph::compiler::ir::Model {
        &self.output.compiled.as_ref().unwrap().model
    }
}

fn nested(kind: u8, n: usize) -> String {
    match kind {
        0 => format!("{}1{}", "(".repeat(n), ")".repeat(n)),
        1 => format!("{}1{}", "exp(".repeat(n), ")".repeat(n)),
        2 => format!("{}1", "-".repeat(n)),
        3 => format!("1{}", " + 1".repeat(n)),
        4 => format!("{}1", "not ".repeat(n)),
        5 => format!("2{}", "^2".repeat(n)),
        6 => format!("{}1{}", "[".repeat(n), "]".repeat(n)),
        _ => format!("x{}", ".y".repeat(n)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Nesting of every kind, near and far beyond the limit, in every place an expression can
    /// stand: parse + check never panics and never overflows the stack, and either accepts the
    /// spec or reports an error inside the input.
    #[test]
    fn deep_nesting_never_crashes(kind in 0u8..8, n in prop_oneof![1usize..300, 300usize..5000],
                                  place in 0usize..4) {
        let e = nested(kind, n);
        let text = match place {
            0 => format!("model m\nconst x = {e}\n"),
            1 => format!("model m\nunit U {{\n  state v = 0\n  dv/dt = ({e}) / (1 s)\n}}\npopulation P = U[2]\n"),
            2 => format!("model m\nparam p = {e}\nrecord {e}\n"),
            _ => format!("model m\nunit U {{ state v = 0 }}\npopulation P = U[{e}]\n"),
        };
        let path = PathBuf::from("inline.ng");
        let c = neurograph::compile_text(&path, text.clone());
        for d in &c.output.diagnostics {
            prop_assert!(d.span.end as usize <= text.len(), "span outside: {:?}", d);
        }
    }
}
