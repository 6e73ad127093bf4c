//! Every bundled spec checks cleanly, lowers to the IR text committed under `tests/out/`, and
//! can be inspected. Run with `UPDATE_EXPECT=1` to rewrite the committed IR after an intended
//! change, then review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

use neurograph::diagnostics::render_plain;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn specs() -> Vec<PathBuf> {
    neurograph::spec_files(&root().join("specs")).unwrap()
}

fn compile(path: &Path) -> neurograph::Checked {
    let c = neurograph::compile_file(path).unwrap();
    assert!(
        !c.output.has_errors(),
        "{} does not check:\n{}",
        path.display(),
        render_plain(&c.sources, &c.output.diagnostics)
    );
    c
}

#[test]
fn every_spec_lowers_to_its_committed_ir() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut mismatches = Vec::new();
    let all = specs();
    for required in [
        "cuba",
        "coba",
        "cobahh",
        "stdp",
        "astro_minimal",
        "astro_tripartite",
        "lr_astrocyte",
        "hmm_glm",
        "bdh_gpu",
        "rnn_timescales",
        "microcircuit",
    ] {
        assert!(
            all.iter().any(|p| p.file_stem().unwrap() == required),
            "specs/{required}.ng is missing"
        );
    }
    for path in all {
        let c = compile(&path);
        let compiled = c.output.compiled.as_ref().unwrap();
        let text = neurograph::compiler::print::print_model(&compiled.model, &compiled.info);
        let stem = path.file_stem().unwrap().to_string_lossy();
        let out = root().join("tests/out").join(format!("{stem}.ir"));
        if update {
            std::fs::write(&out, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&out) {
            Ok(expected) if expected == text => {}
            Ok(expected) => {
                let line = expected
                    .lines()
                    .zip(text.lines())
                    .position(|(a, b)| a != b)
                    .map_or(expected.lines().count().min(text.lines().count()), |k| k);
                mismatches.push(format!(
                    "{stem}: IR differs from {} at line {}:\n  committed: {:?}\n  now:       {:?}",
                    out.display(),
                    line + 1,
                    expected.lines().nth(line),
                    text.lines().nth(line)
                ));
            }
            Err(_) => mismatches.push(format!("{stem}: no committed IR at {}", out.display())),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{}\n(run with UPDATE_EXPECT=1 to accept the new IR)",
        mismatches.join("\n")
    );
}

#[test]
fn check_command_accepts_every_spec() {
    let out = Command::new(env!("CARGO_BIN_EXE_neurograph"))
        .arg("check")
        .args(specs())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn inspect_describes_every_spec() {
    for path in specs() {
        let c = compile(&path);
        let compiled = c.output.compiled.as_ref().unwrap();
        let text = neurograph::inspect::describe(compiled);
        let dot = compiled.info.graph.to_dot(&compiled.model);
        for (_, p) in compiled.model.populations.iter() {
            assert!(
                text.contains(&format!("  {} [{}]", p.name, p.size)),
                "{}: {text}",
                path.display()
            );
            assert!(
                dot.contains(&format!("label=\"{}\\n", p.name)),
                "{}: {dot}",
                path.display()
            );
        }
        assert!(text.contains("update order:"));
        assert!(dot.starts_with("digraph") && dot.trim_end().ends_with('}'));
    }
}

#[test]
fn cuba_has_the_benchmark_structure() {
    let c = compile(&root().join("specs/cuba.ng"));
    let m = &c.output.compiled.as_ref().unwrap().model;
    let sizes: Vec<u32> = m.populations.iter().map(|(_, p)| p.size).collect();
    assert_eq!(sizes, vec![3200, 800]);
    assert_eq!(m.projections.len(), 2);
    for (_, p) in m.projections.iter() {
        assert_eq!(p.post.size(), 4000);
        assert!(p.delay.is_none());
    }
    let info = &c.output.compiled.as_ref().unwrap().info;
    let ct = m.populations.iter().next().unwrap().1.cell_type;
    assert_eq!(
        info.cell_methods[&ct],
        neurograph::compiler::ir::Method::Exact
    );
    assert_eq!(m.run.dt, 1e-4);
}

/// `inspect` lists every input with its kind, size or target and rate, and says which
/// populations never spike instead of describing them as neurons.
#[test]
fn inspect_lists_inputs_and_populations_that_never_spike() {
    use neurograph_runtime::npy::{self, Dtype};
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("inspect-inputs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    npy::write(
        &dir.join("train.npy"),
        &[0.001, 0.0, 0.002, 2.0],
        &[2, 2],
        Dtype::F64,
    )
    .unwrap();
    std::fs::write(dir.join("text.txt"), "abc").unwrap();
    let spec = r#"
model inputs
neuron LIF {
  state v: volt = 0 mV
  state I_ext: amp = 0 pA
  dv/dt = (100 MOhm * I_ext - v) / (10 ms)
  spike when v > 10 mV { v = 0 mV }
}
unit Rate { state r: 1 = 0; r <- tanh(r + 1) }
astrocyte Quiet { state c: 1 = 0; dc/dt = -c / (1 s) }
population E = LIF[4]
population R = Rate[3]
population A = Quiet[2]
input Noise = poisson(20, rate = 30 Hz)
input Train = spikes("train.npy", 3)
input Text = tokens("text.txt", vocab = 128)
input Drive = current(150 pA) -> E.I_ext
run { dt = 0.1 ms; duration = 10 ms }
"#;
    let path = dir.join("inputs.ng");
    std::fs::write(&path, spec).unwrap();
    let c = compile(&path);
    let text = neurograph::inspect::describe(c.output.compiled.as_ref().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    for line in [
        "  E [4]: neuron LIF\n",
        "  R [3]: unit Rate (rate units: no spikes)\n",
        "  A [2]: astrocyte Quiet (astrocyte without events: no spikes)\n",
        "\ninputs:\n",
        "  Noise: poisson, 20 sources, rate 30 Hz each\n",
        "  Train: spikes from train.npy, 3 sources (replayed)\n",
        "  Text: tokens from text.txt, vocabulary 128 (one-hot, one token per step)\n",
        "  Drive: current -> E.I_ext, set every step to 150 pA\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // Input populations are described as inputs, not as cells without events.
    assert!(!text.contains("Noise [20]: unit"), "{text}");
    assert!(text.contains("  Noise [20]: Poisson input\n"), "{text}");
}
