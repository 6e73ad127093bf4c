//! Language fixes: items in any order (constants in dependency order, cycles located), fast
//! "did you mean" on many errors, imports identified by canonical path, a byte-order mark,
//! `j` in synapse initial values, `if(c, a, b)` and `heaviside(c)` in both backends, and
//! projection names that do not change the network.

mod common;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use neurograph::compiler::{compile_str, Loader};
use neurograph::grammar::{FileId, SourceMap};
use neurograph_runtime::{Backend, Sim};

/// `line:col: message` of every error of spec text compiled without files.
fn errors(text: &str) -> Vec<String> {
    let (sources, out) = compile_str("inline.ng", text, &Mem(HashMap::new()));
    located(&sources, &out.diagnostics)
}

fn located(sources: &SourceMap, diags: &[neurograph::grammar::Diagnostic]) -> Vec<String> {
    diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let f = sources.file(sources.lookup(d.span.start).unwrap());
            let (l, c) = f.line_col(d.span.start);
            format!("{}:{l}:{c}: {}", f.name, d.message)
        })
        .collect()
}

/// An in-memory file system: path as given -> text.
struct Mem(HashMap<String, String>);

impl Loader for Mem {
    fn read(&self, path: &str) -> std::io::Result<String> {
        let key = neurograph::compiler::normalize(path);
        self.0
            .get(&key)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
    fn exists(&self, path: &str) -> bool {
        self.0.contains_key(&neurograph::compiler::normalize(path))
    }
}

fn global(c: &neurograph::compiler::Compiled, name: &str) -> f64 {
    let m = &c.model;
    let v = m
        .globals
        .iter()
        .find(|&&v| m.variables[v].name == name)
        .unwrap_or_else(|| panic!("no global {name}"));
    neurograph::compiler::const_eval(m, m.variables[*v].init).unwrap()
}

#[test]
fn constants_and_parameters_may_use_names_defined_later() {
    let c = common::compile_text(
        "model m\nconst a = b * 2\nparam p = q + 1 mV\nconst b = c + 1\nconst c = 3\n\
         param q = 2 mV * a\n",
    );
    assert_eq!(global(&c, "a"), 8.0);
    assert!((global(&c, "p") - 0.017).abs() < 1e-15);
}

#[test]
fn a_cycle_of_constants_is_one_located_error() {
    let errs = errors("model m\nconst a = b + 1\nconst b = a\nconst c = c * 2\nconst d = a\n");
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("inline.ng:2:7: `a` is defined in terms of itself, through `b`"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("inline.ng:4:7: `c` is defined in terms of itself"),
        "{errs:?}"
    );
}

#[test]
fn many_out_of_order_constants_check_and_many_unknown_names_are_reported() {
    // 20,000 constants, each using the next one (the "did you mean" search used to make this
    // quadratic).
    let mut s = String::from("model m\n");
    for k in 0..20_000 {
        s.push_str(&format!("const c{k} = c{} + 1\n", k + 1));
    }
    s.push_str("const c20000 = 0\n");
    assert!(errors(&s).is_empty());
    // 20,000 unknown names among 20,000 known ones: every one reported, located.
    let mut s = String::from("model m\n");
    for k in 0..20_000 {
        s.push_str(&format!("const k{k} = 1\nconst u{k} = x{k} + 1\n"));
    }
    let errs = errors(&s);
    assert_eq!(errs.len(), 20_000);
    assert!(
        errs[0].starts_with("inline.ng:3:12: unknown name `x0`"),
        "{}",
        errs[0]
    );
    // Suggestions still come for a misspelling.
    let (_, out) = compile_str(
        "inline.ng",
        "model m\nconst alpha = 1\nconst beta = alpa\n",
        &Mem(HashMap::new()),
    );
    assert_eq!(
        out.diagnostics[0].help.as_deref(),
        Some("did you mean `alpha`?")
    );
}

#[test]
fn one_file_imported_under_two_spellings_is_read_once() {
    let lib = "neuron A {\n  state v = 0\n  dv/dt = -v / (10 ms)\n}\nconst shared = 2\n";
    let main =
        "model m\nimport \"lib/a.ng\"\nimport \"./lib/../lib/a.ng\"\nimport \"lib//./a.ng\"\n\
                population P = A[shared]\n";
    // In memory (the loader's default canonical form)...
    let files = Mem(HashMap::from([("lib/a.ng".to_string(), lib.to_string())]));
    let (sources, out) = compile_str("inline.ng", main, &files);
    assert!(
        !out.has_errors(),
        "{:?}",
        located(&sources, &out.diagnostics)
    );
    // ... and on disk (canonical paths).
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("imports");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    std::fs::write(dir.join("lib/a.ng"), lib).unwrap();
    std::fs::write(dir.join("main.ng"), main).unwrap();
    let checked = neurograph::compile_file(&dir.join("main.ng")).unwrap();
    let errs = located(&checked.sources, &checked.output.diagnostics);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(errs.is_empty(), "{errs:?}");
    // Two different files defining one name still clash.
    let files = Mem(HashMap::from([
        ("lib/a.ng".to_string(), lib.to_string()),
        ("lib/b.ng".to_string(), lib.to_string()),
    ]));
    let (sources, out) = compile_str(
        "inline.ng",
        "model m\nimport \"lib/a.ng\"\nimport \"lib/b.ng\"\n",
        &files,
    );
    let errs = located(&sources, &out.diagnostics);
    assert!(
        errs.iter().any(|e| e.contains("`A` is defined twice")),
        "{errs:?}"
    );
}

#[test]
fn a_byte_order_mark_is_skipped_and_positions_stay_right() {
    assert!(errors("\u{feff}model m\nconst x = 1\n").is_empty());
    let errs = errors("\u{feff}model m const x = y\n");
    assert_eq!(errs, vec!["inline.ng:1:19: unknown name `y`".to_string()]);
    let errs = errors("\u{feff}model m\nconst x = (\n");
    assert!(
        errs[0].starts_with("inline.ng:2:11: syntax error"),
        "{errs:?}"
    );
    let errs = errors("\u{feff}const x = y\n");
    assert_eq!(errs, vec!["inline.ng:1:11: unknown name `y`".to_string()]);
    // The parser on its own, too.
    let (ast, diags) = neurograph::grammar::parse("\u{feff}const x = 1\n");
    assert!(diags.is_empty());
    assert_eq!(ast.items[0].span.start, 3);
    // Through a file on disk.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bom");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bom.ng"), "\u{feff}model m\nconst x = z\n").unwrap();
    let checked = neurograph::compile_file(&dir.join("bom.ng")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let errs = located(&checked.sources, &checked.output.diagnostics);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].ends_with(":2:11: unknown name `z`"), "{errs:?}");
    let _ = FileId(0);
}

fn run(c: &std::sync::Arc<neurograph::compiler::Compiled>, backend: Backend, steps: u64) -> Sim {
    let mut cfg = common::config(5);
    cfg.backend = backend;
    let mut sim = Sim::new(std::sync::Arc::clone(c), &cfg).unwrap();
    sim.run(steps, &AtomicBool::new(false), 0, &mut |_| {});
    sim.finish_records();
    sim
}

fn bits(sim: &Sim) -> common::TraceBits {
    common::trace_bits(sim)
}

#[test]
fn j_is_the_post_index_in_a_synapse_initial_value() {
    let text = "model m\nunit U { state v = 0 }\npopulation A = U[2]\npopulation B = U[3]\n\
                synapse W { state w = 10 * i + j }\n\
                project S: A -> B via W { connect all_to_all }\n\
                record S.w at end\nrun { dt = 0.1 ms; duration = 1 ms }\n";
    let c = common::compile_text(text);
    for backend in [Backend::Interp, Backend::Jit] {
        let sim = run(&c, backend, 3);
        assert_eq!(
            sim.recordings[0].values,
            vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0],
            "{backend:?}"
        );
    }
    // A cell's initial value has no `j`.
    let errs = errors("model m\nunit U { state v = j }\npopulation A = U[2]\n");
    assert!(
        errs.iter().any(|e| e.contains("`j` is not available")),
        "{errs:?}"
    );
}

const IF_NET: &str = "model cond
neuron N {
  param tau = 10 ms
  state v: volt = 0 mV
  state g: volt = 0 mV
  dv/dt = (g + if(i % 2 == 0, 20 mV, 12 mV) * heaviside(t > 2 ms) - v) / tau
  dg/dt = if(g > 1 mV, -g, -g / 2) / (5 ms)
  spike when v > if(i < 3, 8 mV, 9 mV) { v = if(g > 0.5 mV, -1 mV, 0 mV) }
}
synapse E { on pre { post.g += if(j == 1, 3 mV, 1.5 mV) * heaviside(i != j) } }
population P = N[6]
project P -> P via E { connect bernoulli(0.5); delay = 0.5 ms + if(j == 1, 2.5 ms, 0 ms) }
record P.spikes, P.v, P.g
run { dt = 0.1 ms; duration = 50 ms }
";

#[test]
fn if_and_heaviside_of_a_condition_agree_bit_for_bit_between_backends() {
    let c = common::compile_text(IF_NET);
    let a = run(&c, Backend::Interp, 500);
    let b = run(&c, Backend::Jit, 500);
    let spikes = a.recordings[0].values.len();
    assert!(spikes > 10, "only {spikes} spikes");
    assert_eq!(bits(&a), bits(&b));
    assert!(b.fused_calls > 0, "the fused kernel did not run");
    // The delays are what `if` chose: 3 ms onto element 1, 0.5 ms elsewhere.
    let conn = &a.conn[0];
    assert!(!conn.post().is_empty());
    let d = &conn.delay_steps;
    for (k, &post) in conn.post().iter().enumerate() {
        assert_eq!(d.get(k), if post == 1 { 30 } else { 5 }, "synapse {k}");
    }
}

#[test]
fn if_folds_constants_and_checks_units() {
    let c = common::compile_text(
        "model m\nconst a = if(2 > 1, 3 ms, 4 ms)\nconst b = heaviside(1 > 2) + if(false, 1, 2)\n",
    );
    assert_eq!(global(&c, "a"), 0.003);
    assert_eq!(global(&c, "b"), 2.0);
    let errs = errors("model m\nconst a = if(1 > 0, 3 ms, 4 mV)\n");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("inline.ng:2:27: unit mismatch")),
        "{errs:?}"
    );
    let errs = errors("model m\nconst a = if(1, 3, 4)\n");
    assert!(
        errs.iter().any(
            |e| e.starts_with("inline.ng:2:14: the first argument of `if` must be a condition")
        ),
        "{errs:?}"
    );
}

#[test]
fn a_condition_times_a_number_is_refused_with_a_suggestion() {
    let (_, out) = compile_str(
        "inline.ng",
        "model m\nunit U { state v = 0 }\npopulation P = U[3]\n\
         project P -> P { connect all_to_all; delay = 0.5 ms + (j == 1) * 2.5 ms }\n",
        &Mem(HashMap::new()),
    );
    let d = out
        .diagnostics
        .iter()
        .find(|d| d.message.contains("needs numbers, found a condition"))
        .expect("refused");
    assert!(d.help.as_deref().unwrap().contains("if(c, 1, 0)"));
}

/// A network whose connectivity, weights and synaptic noise are random.
fn random_net(name: &str) -> String {
    format!(
        "model rnd
neuron L {{
  state v: volt = uniform(0 mV, 10 mV)
  dv/dt = (12 mV - v) / (10 ms)
  spike when v > 10 mV {{ v = 0 mV }}
}}
synapse S {{ state w: volt = uniform(0 mV, 1 mV); on pre {{ post.v += w * rand() }} }}
population A = L[40]
population B = L[30]
project {name}A -> B via S {{ connect bernoulli(0.2); delay = uniform(1 ms, 2 ms) }}
project A -> B via S {{ connect fixed_indegree(3) }}
record A.spikes, B.spikes
run {{ dt = 0.1 ms; duration = 100 ms }}
"
    )
}

#[test]
fn naming_a_projection_does_not_change_the_network() {
    let plain = common::compile_text(&random_net(""));
    let named = common::compile_text(&random_net("Ab: "));
    for backend in [Backend::Interp, Backend::Jit] {
        let a = run(&plain, backend, 1000);
        let b = run(&named, backend, 1000);
        for k in 0..2 {
            assert_eq!(
                a.conn[k].pre(),
                b.conn[k].pre(),
                "{backend:?} projection {k}"
            );
            assert_eq!(
                a.conn[k].post(),
                b.conn[k].post(),
                "{backend:?} projection {k}"
            );
            assert_eq!(
                a.conn[k].delay_steps, b.conn[k].delay_steps,
                "{backend:?} projection {k}"
            );
        }
        assert!(a.recordings[1].values.len() > 10);
        assert_eq!(bits(&a), bits(&b), "{backend:?}: spikes differ");
    }
}

/// Population and projection bodies take `,` between items as parameter lists do; a unit
/// standing alone is that quantity (`/ms`); `Ohm` and its prefixes are units; single letters
/// stay names.
#[test]
fn commas_in_bodies_standalone_units_and_ohm() {
    let spec = r#"
model m
neuron N {
  param gL = 10 nS, tauw = 100 ms, R = 1 ohm
  state v: volt = 1 mV
  dv/dt = -v / tauw + R * gL * mV/ms
  spike when v > 1 V { v = 0 mV }
}
synapse S {
  param w = 1 mV
  on pre { post.v += w }
}
population P = N[2] { gL = 12 nS, tauw = 300 ms, R = 2 MOhm }
population Q = N[2]
project P -> Q via S { connect all_to_all, w = 2 mV }
run { dt = 1 ms; duration = 10 ms; seed = 1 }
"#;
    let c = common::compile_text(spec);
    let m = &c.model;
    let p = m.populations.iter().find(|(_, p)| p.name == "P").unwrap().1;
    let vals: Vec<(String, f64)> = p
        .overrides
        .iter()
        .map(|&(v, e)| {
            (
                m.variables[v].name.clone(),
                neurograph::compiler::const_eval(m, e).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        vals,
        vec![
            ("gL".to_string(), 12.0 * 1e-9),
            ("tauw".to_string(), 0.3),
            ("R".to_string(), 2e6)
        ]
    );
    // `/ms` is `/ (1 ms)`: the same model as the explicit form, bit for bit.
    let explicit = spec.replace("mV/ms", "(1 mV)/(1 ms)");
    let v = |text: &str| {
        let model = neurograph::Model::compile_str(text).unwrap();
        let mut sim = model.simulation().build().unwrap();
        sim.step(10).unwrap();
        sim.state("P", "v").unwrap().to_vec()
    };
    let (a, b) = (v(spec), v(&explicit));
    assert!(a[0] > 1.1e-3, "{a:?}: the drive of 2e6 x 12e-9 mV/ms acted");
    assert_eq!(a, b);
    // A single letter is not taken for a unit: `s` undeclared is an error with the hint.
    let e = errors(&spec.replace("mV/ms", "mV/s"));
    assert!(e.iter().any(|e| e.contains("unknown name `s`")), "{e:?}");
    // A declared name wins over a unit of the same spelling.
    let shadow = spec
        .replace("param w = 1 mV", "param w = 1 mV, ms = 2 ms")
        .replace("post.v += w", "post.v += w * ms / (1 ms)");
    assert!(errors(&shadow).is_empty(), "{:?}", errors(&shadow));
}

/// A spike file with two spikes of one source in one step is refused (one would be lost), and
/// a bad time or source index is named as such, with its row.
#[test]
fn spike_files_refuse_duplicates_and_name_bad_rows() {
    use neurograph_runtime::npy::{self, Dtype};
    let dir = common::temp_dir("language", "spikefile");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("s.ng");
    std::fs::write(
        &spec,
        "model s\ninput G = spikes(\"train.npy\", 7)\nrecord G.spikes\nrun { dt = 0.1 ms; duration = 10 ms; seed = 1 }\n",
    )
    .unwrap();
    let build = |rows: &[[f64; 2]]| {
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        npy::write(&dir.join("train.npy"), &flat, &[rows.len(), 2], Dtype::F64).unwrap();
        let model = neurograph::Model::compile_file(&spec).unwrap();
        model.simulation().build().map(|_| ())
    };
    assert!(build(&[[0.001, 3.0], [0.0012, 3.0], [0.001, 4.0]]).is_ok());
    let cases: [(&[[f64; 2]], &str); 4] = [
        (
            &[[0.001, 3.0], [0.00104, 3.0]],
            "source 3 has two spikes in the step at 0.001 s (dt = 0.0001 s)",
        ),
        (
            &[[0.001, 3.0], [-0.5, 1.0]],
            "row 1: the time -0.5 is not a finite time",
        ),
        (&[[f64::NAN, 1.0]], "row 0: the time NaN is not"),
        (
            &[[0.001, 7.0]],
            "row 0: source 7 is not one of the 7 sources (0 to 6)",
        ),
    ];
    for (rows, expect) in cases {
        let e = build(rows).unwrap_err().to_string();
        assert!(e.contains(expect), "{e}");
        assert!(e.contains("s.ng:2:"), "located at the input: {e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Poisson input whose rate × dt exceeds 1 is refused (it would be capped at 1/dt without a
/// word), also when the rate comes through a parameter or `--set`; the error underlines the
/// input's name only, not the rest of the line and the next one.
#[test]
fn a_poisson_rate_above_one_spike_per_step_is_refused() {
    let spec = |rate: &str| {
        format!(
            "model p\nparam r = 5 kHz\ninput P = poisson(3, rate = {rate})\nrecord P.spikes\nrun {{ dt = 0.1 ms; duration = 10 ms; seed = 1 }}\n"
        )
    };
    let build = |text: &str, set: Option<&str>| {
        let model = neurograph::Model::compile_str(text).map_err(|e| e.to_string())?;
        let mut b = model.simulation();
        if let Some(s) = set {
            b = b.assignment(s);
        }
        b.build().map(|_| ()).map_err(|e| e.to_string())
    };
    assert!(build(&spec("r"), None).is_ok());
    assert!(
        build(&spec("10 kHz"), None).is_ok(),
        "rate x dt = 1 exactly"
    );
    for (text, set) in [
        (spec("20 kHz"), None),
        (spec("4 * r"), None),
        (spec("r"), Some("r=20kHz")),
    ] {
        let e = build(&text, set).unwrap_err();
        assert!(
            e.contains("input `P`: rate × dt is 2") && e.contains("at most once per step"),
            "{e}"
        );
        assert!(e.contains(":3:7"), "{e}");
        assert!(!e.contains("4 │"), "the underline stays on line 3: {e}");
    }
}

/// Rates are checked with the values in place: the spec's default of a parameter replaced
/// when the simulation was built does not refuse a later change of another one, and a change
/// that pushes a rate past 1/dt is refused with the old value kept.
#[test]
fn poisson_rates_are_checked_with_the_values_in_place() {
    let text = "model p\nparam r = 20 kHz\nparam g = 1\ninput P = poisson(3, rate = r)\n\
                record P.spikes\nrun { dt = 0.1 ms; duration = 10 ms; seed = 1 }\n";
    let model = neurograph::Model::compile_str(text).unwrap();
    let mut sim = model.simulation().assignment("r=5kHz").build().unwrap();
    sim.set_param("g", "2").unwrap();
    sim.step(10).unwrap();
    // The input's own rate (initialised from `r` when the simulation was built).
    assert_eq!(sim.param("P.rate").unwrap(), 5000.0);
    let e = sim.set_param("P.rate", "20 kHz").unwrap_err().to_string();
    assert!(e.contains("becomes 2, outside [0, 1]"), "{e}");
    assert_eq!(sim.param("P.rate").unwrap(), 5000.0);
    sim.set_param("P.rate", "8 kHz").unwrap();
    assert_eq!(sim.param("P.rate").unwrap(), 8000.0);
    sim.step(10).unwrap();
    // A probability reading two parameters: `a` set at build time (0.1, default 0.9) counts
    // when `b` changes.
    let text = "model q\nneuron N {\n  param a = 0.9\n  param b = 1\n  state v = 0\n\
                spike with probability a * b { v = 0 }\n}\npopulation P = N[4]\n\
                run { dt = 0.1 ms; duration = 1 ms; seed = 1 }\n";
    let model = neurograph::Model::compile_str(text).unwrap();
    let mut sim = model.simulation().assignment("N.a=0.1").build().unwrap();
    sim.set_param("N.b", "5").unwrap();
    let e = sim.set_param("N.b", "20").unwrap_err().to_string();
    assert!(e.contains("outside [0, 1]"), "{e}");
    assert_eq!(sim.param("N.b").unwrap(), 5.0);
}

/// `record P.x` for a `let x` of P's cell type: the let evaluated on each sample's state (with
/// `t` the sample's time), the same in both backends; a let with a random draw is refused.
#[test]
fn lets_can_be_recorded() {
    let spec = r#"
model l
neuron N {
  param tau = 10 ms
  state v: volt = -70 mV + 1 mV * i
  let drive = (-50 mV - v) / tau
  let wave = v * sin(2 * pi * 50 Hz * t)
  dv/dt = drive
}
population P = N[6]
record P.v every 1 ms, P.drive[1..4] every 1 ms, P.wave every 1 ms
run { dt = 0.1 ms; duration = 20 ms; seed = 1 }
"#;
    let dir = common::temp_dir("language", "lets");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("l.ng");
    std::fs::write(&path, spec).unwrap();
    let mut traces = Vec::new();
    for backend in ["interp", "jit"] {
        let out = dir.join(backend);
        common::neurograph_ok(&[
            "run",
            path.to_str().unwrap(),
            "--backend",
            backend,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        let t = neurograph_analysis::trace::Trace::open(&out).unwrap();
        let v = t.state("P.v").unwrap();
        let drive = t.state("P.drive").unwrap();
        let wave = t.state("P.wave").unwrap();
        assert_eq!((drive.rows, drive.width), (20, 3));
        assert_eq!(drive.unit, "V/s");
        assert_eq!(t.first_element("P.drive"), Some(1));
        for r in 0..20 {
            for (c, e) in (1..4).enumerate() {
                let expect = (-50e-3 - v.values[r * 6 + e]) / 10e-3;
                assert_eq!(drive.values[r * 3 + c], expect, "sample {r} element {e}");
            }
            let time = v.times[r];
            assert_eq!(wave.times[r], time);
            let expect = v.values[r * 6] * (2.0 * std::f64::consts::PI * 50.0 * time).sin();
            assert!((wave.values[r * 6] - expect).abs() < 1e-15, "{r}");
        }
        traces.push((drive.values, wave.values));
    }
    assert_eq!(
        traces[0], traces[1],
        "interpreter and JIT agree bit for bit"
    );
    let random = spec.replace(
        "let wave = v * sin(2 * pi * 50 Hz * t)",
        "let wave = v * rand()",
    );
    let e = errors(&random);
    assert!(
        e.iter()
            .any(|e| e.contains("`wave` draws random numbers and has no single value to record")),
        "{e:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Errors that teach: the help line of each habit from another tool, and no second error
/// ("unknown cell type") caused by a syntax error inside the cell.
#[test]
fn habits_from_other_tools_get_a_hint_and_syntax_errors_do_not_cascade() {
    let cases = [
        ("habit_double_star", "help: powers are written `^`: `x^2`, not `x**2`"),
        (
            "habit_unit_annotation",
            "help: Brian2's `: unit` annotations are not written here",
        ),
        (
            "habit_v_post",
            "help: the post-synaptic cell's `v` is written `post.v` (Brian2's `v_post`)",
        ),
        (
            "unitless_time_constant",
            "help: `tau` has no unit, so dividing by it leaves V: give it a time unit, e.g. `tau = 10 ms`",
        ),
    ];
    for (name, help) in cases {
        let path = common::root().join(format!("tests/errors/{name}.ng"));
        let out = common::neurograph(&["check", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(help), "{name}: {err}");
        let errors = err.lines().filter(|l| l.starts_with("error:")).count();
        assert_eq!(errors, 1, "{name}: one error only: {err}");
    }
}

/// A Poisson input's rate may vary with `t` (evaluated every step): a sinusoidal rate gives the
/// expected counts per half period, the same in both backends; a step where rate × dt leaves
/// [0, 1] stops the run with the input and the time named.
#[test]
fn poisson_rates_may_vary_in_time() {
    let spec = |rate: &str| {
        format!(
            "model p\ninput P = poisson(2000, rate = {rate})\nrecord P.spikes\nrun {{ dt = 0.1 ms; duration = 200 ms; seed = 4 }}\n"
        )
    };
    let text = spec("20 Hz * (1 + sin(2 * pi * 5 Hz * t))");
    let model = neurograph::Model::compile_str(&text).unwrap();
    let mut counts = Vec::new();
    for backend in [neurograph::Backend::Interp, neurograph::Backend::Jit] {
        let mut sim = model.simulation().backend(backend).build().unwrap();
        sim.run_for("200 ms").unwrap();
        let (t, _) = sim.spikes("P").unwrap();
        let first = t.iter().filter(|&&x| x < 0.1).count() as f64;
        let second = t.len() as f64 - first;
        counts.push((first, second));
    }
    assert_eq!(counts[0], counts[1], "interpreter and JIT");
    // Expected: 2000 sources x 0.1 s x 20 Hz x (1 +- 2/pi).
    let (first, second) = counts[0];
    for (n, sign) in [(first, 1.0), (second, -1.0)] {
        let expect = 2000.0 * 0.1 * 20.0 * (1.0 + sign * 2.0 / std::f64::consts::PI);
        assert!((n - expect).abs() < 5.0 * expect.sqrt(), "{n} vs {expect}");
    }
    // Too high at the peak (8 kHz x 2 x 0.1 ms = 1.6): the run stops at the first such step.
    let model =
        neurograph::Model::compile_str(&spec("8 kHz * (1 + sin(2 * pi * 5 Hz * t))")).unwrap();
    let mut sim = model.simulation().build().unwrap();
    let e = sim.run_for("200 ms").unwrap_err().to_string();
    assert!(
        e.contains("input `P` at t = 0.0") && e.contains("outside [0, 1]"),
        "{e}"
    );
    // The unit is still checked.
    let e = errors(&spec("20 * (1 + sin(2 * pi * 5 Hz * t))"));
    assert!(
        e.iter()
            .any(|e| e.contains("unit mismatch: a Poisson rate must be in Hz, found 1")),
        "{e:?}"
    );
}

/// Items in any order, also an input into a population declared below it; the run block's
/// duration may use a constant (dt may not: constants are read after it, and may use it).
#[test]
fn inputs_before_their_population_and_constants_in_the_run_block() {
    let spec = "model o\ninput D = current(1 mV) -> E.v\nconst steps = 50\nconst half = dt / 2\nneuron N {\n  state v: volt = 0 mV\n}\npopulation E = N[2]\nrun { dt = 0.5 ms; duration = steps * dt + 0 * half }\n";
    assert!(errors(spec).is_empty(), "{:?}", errors(spec));
    let c = common::compile_text(spec);
    assert_eq!(c.model.run.duration, 50.0 * 0.5e-3);
    assert_eq!(
        global(&c, "half"),
        0.25e-3,
        "constants see the run block's dt"
    );
    let model = neurograph::Model::compile_str(spec).unwrap();
    let mut sim = model.simulation().build().unwrap();
    sim.step(2).unwrap();
    assert_eq!(sim.state("E", "v").unwrap().to_vec(), vec![1e-3, 1e-3]);
    let e = errors(&spec.replace("dt = 0.5 ms", "dt = steps * 0.01 ms"));
    assert!(
        e.iter().any(|e| e.contains("unknown name `steps`")),
        "{e:?}"
    );
}

/// `timed([v0, v1, …], T)`: a schedule of values, `v_k` from `k·T` (a step starting on a
/// boundary takes the new value), the last one after the end; the same in both backends, in an
/// input, an equation and a Poisson rate.
#[test]
fn timed_values_follow_their_schedule() {
    let spec = r#"
model timed
neuron N {
  state I: volt = 0 mV
  state v: volt = 0 mV
  dv/dt = (timed([0 mV, 10 mV, 0 mV], 3 ms) - v) / (5 ms)
}
population P = N[2]
input Step = current(timed([0 mV, 2 mV, 5 mV], 1 ms)) -> P.I
input Burst = poisson(200, rate = timed([0 Hz, 2 kHz, 0 Hz], 2 ms))
record P.I every 0.1 ms, P.v every 0.1 ms, Burst.spikes
run { dt = 0.1 ms; duration = 6 ms; seed = 1 }
"#;
    let model = neurograph::Model::compile_str(spec).unwrap();
    let mut results = Vec::new();
    for backend in [neurograph::Backend::Interp, neurograph::Backend::Jit] {
        let mut sim = model.simulation().backend(backend).build().unwrap();
        let mut i_values = Vec::new();
        let mut v_values = Vec::new();
        for _ in 0..60 {
            sim.step(1).unwrap();
            i_values.push(sim.state("P", "I").unwrap()[0]);
            v_values.push(sim.state("P", "v").unwrap()[0]);
        }
        let (times, _) = sim.spikes("Burst").unwrap();
        results.push((i_values, v_values, times));
    }
    assert_eq!(results[0], results[1], "interpreter and JIT");
    let (i_values, v_values, times) = &results[0];
    // Step k (0-based) starts at t = k * 0.1 ms: 0 mV for k < 10, 2 mV for 10 <= k < 20, then 5.
    for (k, &x) in i_values.iter().enumerate() {
        let expect = if k < 10 {
            0.0
        } else if k < 20 {
            2e-3
        } else {
            5e-3
        };
        assert_eq!(x, expect, "step {k}");
    }
    // v relaxes towards 10 mV during [3 ms, 6 ms) only.
    assert!(
        v_values[29].abs() < 1e-12 && v_values[30] > 0.0,
        "{v_values:?}"
    );
    // Poisson sources fire only in [2 ms, 4 ms).
    assert!(!times.is_empty());
    assert!(
        times
            .iter()
            .all(|&t| (0.002 - 1e-9..0.004 - 1e-9).contains(&t)),
        "{times:?}"
    );
    let bad = spec.replace(
        "timed([0 mV, 10 mV, 0 mV], 3 ms)",
        "timed([0 mV, 10 Hz], 3 ms)",
    );
    let e = errors(&bad);
    assert!(
        e.iter()
            .any(|e| e.contains("the values of `timed` are in V, this one in Hz")),
        "{e:?}"
    );
    let e = errors(&spec.replace(
        "state v: volt = 0 mV",
        "state v: volt = timed([0 mV], 1 ms)",
    ));
    assert!(
        e.iter().any(|e| e.contains("`timed` reads the time")),
        "{e:?}"
    );
}

/// `poisson_input(n, rate, weight) -> P.x`, Brian2's `PoissonInput`: each step every element
/// gets `weight × Binomial(n, rate·dt)`, delivered after spike detection; the counts have the
/// binomial mean and variance (exact inversion below a mean of 30, normal approximation above),
/// the same in both backends.
#[test]
fn poisson_input_adds_a_binomial_drive() {
    let spec = |n: u32| {
        format!(
            "model drive\nunit C {{\n  state x: volt = 0 mV\n}}\npopulation P = C[200]\ninput Ext = poisson_input({n}, rate = 10 Hz, weight = 0.1 mV) -> P.x\nrun {{ dt = 0.1 ms; duration = 100 ms; seed = 3 }}\n"
        )
    };
    for n in [1000u32, 400_000] {
        let model = neurograph::Model::compile_str(&spec(n)).unwrap();
        let mut finals = Vec::new();
        for backend in [neurograph::Backend::Interp, neurograph::Backend::Jit] {
            let mut sim = model.simulation().backend(backend).build().unwrap();
            sim.step(1000).unwrap();
            finals.push(sim.state("P", "x").unwrap().to_vec());
        }
        assert_eq!(finals[0], finals[1], "n = {n}: interpreter and JIT");
        // Counts over 1000 steps: Binomial(n, 1e-3) each step, summed.
        let counts: Vec<f64> = finals[0].iter().map(|x| (x / 1e-4).round()).collect();
        let p = 10.0 * 1e-4;
        let mean_expect = 1000.0 * n as f64 * p;
        let var_expect = 1000.0 * n as f64 * p * (1.0 - p);
        let m = counts.len() as f64;
        let mean = counts.iter().sum::<f64>() / m;
        let var = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (m - 1.0);
        assert!(
            (mean - mean_expect).abs() < 4.0 * (var_expect / m).sqrt(),
            "n = {n}: mean {mean} vs {mean_expect}"
        );
        // The sample variance of 200 values is within 30 % of the truth (about 4 SD).
        assert!(
            (var / var_expect - 1.0).abs() < 0.3,
            "n = {n}: var {var} vs {var_expect}"
        );
    }
    // Errors: a weight in the wrong unit, a missing target, a rate above one spike per step.
    let e = errors(&spec(10).replace("weight = 0.1 mV", "weight = 0.1 nS"));
    assert!(
        e.iter()
            .any(|e| e.contains("the weight added to `P.x` must be in V, found S")),
        "{e:?}"
    );
    let e = errors(&spec(10).replace(" -> P.x", ""));
    assert!(
        e.iter()
            .any(|e| e.contains("a Poisson input needs a target")),
        "{e:?}"
    );
    let model = neurograph::Model::compile_str(&spec(10).replace("10 Hz", "20 kHz")).unwrap();
    let mut sim = model.simulation().build().unwrap();
    let e = sim.step(5).unwrap_err().to_string();
    assert!(e.contains("input `Ext` at t = 0 s: rate × dt is 2"), "{e}");
}

/// `post.lastspike` and `pre.lastspike` in synapse code: the time of the cell's last spike,
/// set when it spikes (before delivery), so that input during the target's refractoriness can
/// be dropped as in Brunel's model; the same in both backends.
#[test]
fn synapses_see_the_last_spike_of_pre_and_post() {
    use neurograph_runtime::npy::{self, Dtype};
    let dir = common::temp_dir("language", "lastspike");
    std::fs::create_dir_all(&dir).unwrap();
    npy::write(
        &dir.join("train.npy"),
        &[0.001, 0.0, 0.005, 0.0, 0.006, 0.0, 0.009, 0.0],
        &[4, 2],
        Dtype::F64,
    )
    .unwrap();
    let spec = dir.join("l.ng");
    std::fs::write(
        &spec,
        r#"model lastspike
neuron N {
  state v: volt = 0 mV
  spike when v > 1 mV { v = 0 mV }
}
synapse Gated {
  state seen: second = 0 s
  on pre {
    post.v += if(t - post.lastspike > 3 ms, 2 mV, 0 mV)
    seen = pre.lastspike
  }
}
input Src = spikes("train.npy", 1)
population Dst = N[1]
project W: Src -> Dst via Gated { connect all_to_all }
record Dst.spikes, W.seen at end, Dst.lastspike every 1 ms
run { dt = 0.1 ms; duration = 12 ms; seed = 1 }
"#,
    )
    .unwrap();
    let model = neurograph::Model::compile_file(&spec).unwrap();
    let mut results = Vec::new();
    for backend in [neurograph::Backend::Interp, neurograph::Backend::Jit] {
        let mut sim = model.simulation().backend(backend).build().unwrap();
        sim.run_for("12 ms").unwrap();
        let (t, _) = sim.spikes("Dst").unwrap();
        let seen = sim.state("W", "seen").unwrap().to_vec();
        let last = sim.state("Dst", "lastspike").unwrap().to_vec();
        results.push((t, seen, last));
    }
    assert_eq!(results[0], results[1], "interpreter and JIT");
    let (t, seen, last) = &results[0];
    // The source's spike at 6 ms arrives 0.9 ms after Dst's spike at 5.1 ms: dropped.
    let ms: Vec<i64> = t.iter().map(|x| (x * 1e4).round() as i64).collect();
    assert_eq!(ms, vec![11, 51, 91], "Dst spikes (in 0.1 ms)");
    assert!((seen[0] - 0.009).abs() < 1e-12, "{seen:?}");
    assert!((last[0] - 0.0091).abs() < 1e-12, "{last:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A population whose only event is not `spike` can be silenced (nothing to filter, no count
/// to lower), and a `state lastspike` the spec declares is the spec's own: the runtime only
/// stamps the one it creates for `pre.lastspike` / `post.lastspike`.
#[test]
fn silencing_other_events_and_a_declared_lastspike() {
    let spec = r#"
model other
astrocyte A {
  state c: 1 = 0
  state lastspike: second = 7 s
  dc/dt = 1 / (10 ms)
  event glio when c > 0.5 { c = 0 }
}
population P = A[3]
record P.glio
run { dt = 1 ms; duration = 50 ms; seed = 1 }
"#;
    let model = neurograph::Model::compile_str(spec).unwrap();
    for backend in [neurograph::Backend::Interp, neurograph::Backend::Jit] {
        let mut sim = model.simulation().backend(backend).build().unwrap();
        sim.silence("P", &[0, 1]).unwrap();
        sim.run_for("50 ms").unwrap();
        assert_eq!(sim.state("P", "lastspike").unwrap().to_vec(), vec![7.0; 3]);
        assert_eq!(sim.spike_count("P").unwrap(), 0);
    }
}

/// Division by a parameter or constant in equations integrated step by step becomes a
/// multiplication by its reciprocal (one value for all elements); exact integration keeps its
/// division; both backends compute the rewritten form, bit for bit.
#[test]
fn divisions_by_run_constants_become_reciprocal_products() {
    let text = "model recip
neuron Stepped {
  param tau = 10 ms
  state v: volt = -60 mV + uniform(0 mV, 10 mV)
  state g: 1 = 1
  dv/dt = (-60 mV - v) / tau + g * mV / ms
  dg/dt = -g / (2 * tau)
  method euler
}
neuron Exact {
  param tau = 10 ms
  state v: volt = -60 mV + uniform(0 mV, 10 mV)
  dv/dt = (-60 mV - v) / tau
  method exact
}
population A = Stepped[50]
population B = Exact[50]
record A.v every 1 ms, B.v every 1 ms
run { dt = 0.1 ms; duration = 20 ms; seed = 3 }
";
    let c = common::compile_text(text);
    let ir = neurograph::compiler::print::print_model(&c.model, &c.info);
    assert!(ir.contains("dv/dt = ((-0.06) - v) * (1.0 / tau)"), "{ir}");
    // Not a leaf: `2 * tau` stays a division.
    assert!(ir.contains("dg/dt = -g / (2.0 * tau)"), "{ir}");
    let exact = ir.split("neuron Exact").nth(1).unwrap_or(&ir);
    assert!(exact.contains("dv/dt = ((-0.06) - v) / tau"), "{exact}");
    let steps = 200;
    let runs = [Backend::Interp, Backend::Jit].map(|backend| {
        common::simulate_with(&c, 3, steps, backend)
            .recordings
            .iter()
            .map(|r| r.values.clone())
            .collect::<Vec<_>>()
    });
    assert_eq!(runs[0], runs[1]);
}

/// The rewrite is copy on write: a `let` shared by an equation and a spike condition keeps its
/// division in the condition.
#[test]
fn the_reciprocal_rewrite_leaves_shared_expressions_elsewhere_as_written() {
    let c = common::compile_text(
        "model shared_let
neuron N {
  param tau = 10 ms
  state v: volt = -50 mV
  let leak = (-70 mV - v) / tau
  dv/dt = leak
  method euler
  spike when leak < -1 mV / ms { v = -50 mV }
}
population P = N[3]
run { dt = 0.1 ms; duration = 1 ms }
",
    );
    let ir = neurograph::compiler::print::print_model(&c.model, &c.info);
    assert!(
        ir.contains("ode dv/dt = ((-0.07) - v) * (1.0 / tau)"),
        "{ir}"
    );
    assert!(ir.contains("((-0.07) - v) / tau < "), "{ir}");
}

#[test]
fn fixed_total_draws_that_many_uniform_pairs_and_truncnormal_keeps_to_its_bounds() {
    let text = "model m\nunit U { state v = 0 }\npopulation A = U[40]\npopulation B = U[30]\n\
                synapse W { state w = truncnormal(1, 2, 0.5, 3) }\n\
                project S: A -> B via W { connect fixed_total(24000); delay = truncnormal(1 ms, 1 ms, dt / 2) }\n\
                project T: A -> A via W { connect fixed_total(5000, autapses = false) }\n\
                record S.w at end\nrun { dt = 0.1 ms; duration = 1 ms }\n";
    let c = common::compile_text(text);
    let sim = run(&c, Backend::Jit, 2);
    let (s, t) = (&sim.conn[0], &sim.conn[1]);
    assert_eq!((s.n_synapses(), t.n_synapses()), (24000, 5000));
    assert!(
        t.pre().iter().zip(t.post().iter()).all(|(i, j)| i != j),
        "an autapse"
    );
    // Sources and targets uniform: Pearson's chi-square over the counts (40 and 30 cells,
    // 39 and 29 degrees of freedom; the bounds are beyond the 0.9999 quantiles).
    let chi2 = |idx: &[u32], n: usize| {
        let mut counts = vec![0.0; n];
        for &k in idx {
            counts[k as usize] += 1.0;
        }
        let e = idx.len() as f64 / n as f64;
        counts.iter().map(|c| (c - e) * (c - e) / e).sum::<f64>()
    };
    assert!(chi2(s.pre(), 40) < 80.0 && chi2(s.post(), 30) < 66.0);
    assert!(chi2(s.pre(), 40) > 5.0, "row counts too even to be random");
    // Several synapses between one pair (20 per pair expected) and rows in CSR order.
    assert!(s.pre().windows(2).all(|w| w[0] <= w[1]));
    let pairs: std::collections::HashSet<_> = s.pre().iter().zip(s.post().iter()).collect();
    assert!(pairs.len() < 24000 && pairs.len() > 1100, "{}", pairs.len());
    // Delays redrawn below dt / 2: at least one step.
    assert_eq!(
        s.delay_steps.width(),
        1,
        "millisecond delays at dt = 0.1 ms fit a byte"
    );
    assert!((0..s.n_synapses()).all(|k| s.delay_steps.get(k) >= 1));
    // Weights: N(1, 2) truncated to [0.5, 3], mean 1.6576 and SD 0.6995.
    let w = &sim.recordings[0].values;
    assert_eq!(w.len(), 24000);
    assert!(w.iter().all(|x| (0.5..=3.0).contains(x)));
    let mean = w.iter().sum::<f64>() / w.len() as f64;
    assert!(
        (mean - 1.6576).abs() < 5.0 * 0.6995 / (24000f64).sqrt(),
        "{mean}"
    );
    // The same network and values with the interpreter, another network with another seed.
    let interp = run(&c, Backend::Interp, 2);
    assert_eq!(interp.conn[0].post(), s.post());
    assert_eq!(bits(&interp), bits(&sim));
    let mut cfg = common::config(6);
    cfg.backend = Backend::Jit;
    let other = Sim::new(std::sync::Arc::clone(&c), &cfg).unwrap();
    assert_ne!(other.conn[0].post(), s.post());
    // A bound below the other is refused where it is written.
    let errs = errors("model m\nunit U { state v = normal(0, 1) + truncnormal(0, 1, 2, 1) }\n");
    assert!(errs.iter().any(|e| e.contains("upper bound")), "{errs:?}");
}

/// Synapse storage is chosen per projection (delays in u8, u16 or u32 by the longest; the index
/// by post element only for `on post` code; the delay ring split by post element between
/// threads). Forcing the widest delays and the index on every projection, or a split on two
/// threads, changes nothing in the traces, in either backend: every bundled spec with delays
/// or `on post` code (the microcircuit at 1 %), 300 steps.
#[test]
fn every_synapse_layout_gives_the_same_traces() {
    use neurograph::runtime::state::Delays;
    let (mut tried, mut splits) = (0, 0);
    for path in common::runnable_specs() {
        let c = common::compile(&path);
        let m = &c.model;
        if !m
            .projections
            .iter()
            .any(|(_, p)| p.delay.is_some() || !p.code.on_post.is_empty())
        {
            continue;
        }
        tried += 1;
        for backend in [Backend::Interp, Backend::Jit] {
            let mut cfg = common::config(3);
            cfg.backend = backend;
            let run = |widen: bool, split: bool| {
                let mut sim = Sim::new(std::sync::Arc::clone(&c), &cfg).unwrap();
                if split {
                    sim.set_threads(2);
                    sim.share_always(2);
                }
                if widen {
                    for conn in &mut sim.conn {
                        conn.index_by_post();
                        if !conn.delay_steps.is_empty() {
                            let n = conn.n_synapses();
                            let wide = (0..n).map(|k| conn.delay_steps.get(k)).collect();
                            conn.delay_steps = Delays::U32(wide);
                        }
                    }
                }
                sim.run(300, &AtomicBool::new(false), 0, &mut |_| {});
                sim.finish_records();
                sim
            };
            let (narrow, wide, split) = (run(false, false), run(true, false), run(false, true));
            assert!(
                narrow.conn.iter().all(|k| k.delay_steps.width() <= 2),
                "{}: delays not narrowed",
                path.display()
            );
            assert_eq!(bits(&narrow), bits(&wide), "{} {backend:?}", path.display());
            assert_eq!(
                bits(&narrow),
                bits(&split),
                "{} {backend:?}",
                path.display()
            );
            splits += split.split_deliveries;
        }
    }
    assert!(tried >= 2, "only {tried} specs with delays or on post code");
    assert!(splits > 0, "no delivery was split");
}

/// Pre indices are made for the initial values' draws and dropped after set-up; only a
/// projection whose run reads them (`pre.x` in its code) holds them again: the interpreter's,
/// not generated code over rows (which reads presynaptic columns through each row's source);
/// both backends still agree bit for bit.
#[test]
fn only_projections_that_read_pre_indices_hold_them() {
    let text = "model m\nunit U { state v: V = 0 mV\n  dv/dt = -v / (10 ms)\n  \
                spike when v > 1 mV { v = 0 mV }\n}\n\
                input P = poisson(30, rate = 200 Hz)\npopulation A = U[20]\n\
                synapse W { param w: V = uniform(0.2 mV, 0.6 mV) }\n\
                project Plain: P -> A via W { connect fixed_total(300); delay = uniform(1 ms, 3 ms); on pre { post.v += w } }\n\
                project Reads: A -> A via W { connect bernoulli(0.3); on pre { post.v += w * (1 + pre.v / (1 V)) } }\n\
                record A.spikes\nrun { dt = 0.1 ms; duration = 50 ms }\n";
    let c = common::compile_text(text);
    let a = run(&c, Backend::Interp, 500);
    let b = run(&c, Backend::Jit, 500);
    assert!(a.recordings[0].values.len() > 10, "too few spikes");
    assert_eq!(bits(&a), bits(&b));
    assert!(b.event_code_calls[0] > 0, "no generated on-pre code ran");
    assert!(
        a.conn[1].holds_pre(),
        "the interpreter ran Reads without pre indices"
    );
    assert!(
        !b.conn[1].holds_pre(),
        "generated code over rows made Reads' pre indices"
    );
    for sim in [&a, &b] {
        assert!(!sim.conn[0].holds_pre(), "Plain keeps its pre indices");
        let expected: Vec<u32> = (0..sim.conn[0].row_ptr.len() - 1)
            .flat_map(|i| sim.conn[0].row(i).map(move |_| i as u32))
            .collect();
        assert_eq!(sim.conn[0].pre(), expected.as_slice());
    }
}
