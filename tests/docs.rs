//! Every example of the language reference (`docs/language.md`) and of README.md is checked:
//! each ```` ```ng ```` block is a whole spec that must compile, build and run 10 steps; each
//! ```` ```ng-error ```` block must fail with the message its first line names
//! (`// error: MESSAGE`); each ```` ```ng-library PATH ```` block is a file the others may
//! import, written under PATH next to every example. ```` ```ng-fragment ```` blocks (parts of
//! a spec) are not run; there are few of them. Blocks are named by file and line in failure
//! messages.
//!
//! The examples may use these data files, which the test writes next to each example (the
//! reference says so too): `train.npy` (spike trains of 3 sources), `text.txt` (tokens),
//! `gains.npy` (10 values) and `pairs.npy` (3 (pre, post) pairs).

use std::path::{Path, PathBuf};

use neurograph::{Backend, Model};
use neurograph_runtime::npy::{self, Dtype};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Run,
    Fragment,
    Error,
    /// ```` ```ng-library lib/x.ng ````: a file other examples import; written next to every
    /// example under that path, and checked as a spec of its own.
    Library,
}

struct Block {
    file: &'static str,
    /// Line of the block's first line of code (1-based).
    line: usize,
    kind: Kind,
    /// Where a library block is written, relative to the examples.
    path: Option<String>,
    text: String,
}

impl Block {
    fn name(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// The fenced blocks of a Markdown file whose info string is `ng`, `ng-fragment` or
/// `ng-error`. Any other fence starting with `ng` is an error (a misspelt kind would silently
/// skip its example).
fn blocks(file: &'static str) -> Vec<Block> {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let info = info.trim();
        let (info, path) = match info.split_once(' ') {
            Some((kind, path)) => (kind, Some(path.trim().to_string())),
            None => (info, None),
        };
        let kind = match info {
            "ng" => Some(Kind::Run),
            "ng-fragment" => Some(Kind::Fragment),
            "ng-error" => Some(Kind::Error),
            "ng-library" => Some(Kind::Library),
            other if other.starts_with("ng") => {
                panic!("{file}:{}: unknown example kind ```{other}", n + 1)
            }
            _ => None,
        };
        let mut body = String::new();
        let mut closed = false;
        for (_, l) in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                closed = true;
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        assert!(closed, "{file}:{}: unclosed code block", n + 1);
        if let Some(kind) = kind {
            assert_eq!(
                path.is_some(),
                kind == Kind::Library,
                "{file}:{}: a library block names its path (```ng-library lib/x.ng), no other block does",
                n + 1
            );
            out.push(Block {
                file,
                line: n + 2,
                kind,
                path,
                text: body,
            });
        }
    }
    out
}

fn all_blocks() -> Vec<Block> {
    let mut b = blocks("docs/language.md");
    b.extend(blocks("README.md"));
    b
}

/// A fresh directory holding the data files the examples may name.
fn example_dir(name: &str) -> PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("docs-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    // Spike trains: (time in s, source index) rows, 3 sources.
    let train = [0.001, 0.0, 0.0015, 2.0, 0.002, 1.0, 0.0031, 0.0];
    npy::write(&d.join("train.npy"), &train, &[4, 2], Dtype::F64).unwrap();
    std::fs::write(d.join("text.txt"), "hello, world\n").unwrap();
    let gains: Vec<f64> = (0..10).map(|k| 1.0 + 0.1 * k as f64).collect();
    npy::write(&d.join("gains.npy"), &gains, &[10], Dtype::F64).unwrap();
    let pairs = [0.0, 1.0, 1.0, 2.0, 2.0, 0.0];
    npy::write(&d.join("pairs.npy"), &pairs, &[3, 2], Dtype::F64).unwrap();
    for lib in all_blocks().iter().filter(|b| b.kind == Kind::Library) {
        let path = d.join(lib.path.as_deref().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &lib.text).unwrap();
    }
    d
}

/// Compile, build and run 10 steps; the error text if any stage fails.
fn run(block: &Block) -> Result<(), String> {
    let dir = example_dir(&format!("{}", block.line));
    let path = dir.join("example.ng");
    std::fs::write(&path, &block.text).unwrap();
    let result = (|| {
        let model = Model::compile_file(&path)?;
        // Both backends: the reference interpreter and the generated code.
        for backend in [Backend::Interp, Backend::Jit] {
            let mut sim = model.simulation().backend(backend).build()?;
            sim.step(10)?;
            sim.check_finite()?;
        }
        Ok::<(), neurograph::Error>(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result.map_err(|e| e.to_string())
}

#[test]
fn every_example_runs() {
    let mut failures = Vec::new();
    let mut count = 0;
    for b in all_blocks().iter().filter(|b| b.kind == Kind::Run) {
        count += 1;
        if let Err(e) = run(b) {
            failures.push(format!("{}: example fails:\n{}\n{e}", b.name(), b.text));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} examples fail:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(count >= 20, "only {count} runnable examples found");
}

/// A library alone is a spec without errors (it may define types nothing uses).
#[test]
fn every_library_checks() {
    let mut count = 0;
    for b in all_blocks().iter().filter(|b| b.kind == Kind::Library) {
        count += 1;
        if let Err(e) = Model::compile_str(&b.text) {
            panic!("{}: library does not check:\n{e}", b.name());
        }
    }
    assert!(
        count >= 1,
        "no ng-library block (the import example needs one)"
    );
}

#[test]
fn every_error_example_fails_with_its_message() {
    let mut failures = Vec::new();
    let mut count = 0;
    for b in all_blocks().iter().filter(|b| b.kind == Kind::Error) {
        count += 1;
        let first = b.text.lines().next().unwrap_or("");
        let Some(expected) = first.trim().strip_prefix("// error:").map(str::trim) else {
            failures.push(format!(
                "{}: an ng-error block starts with `// error: MESSAGE`, found `{first}`",
                b.name()
            ));
            continue;
        };
        match run(b) {
            Ok(()) => failures.push(format!(
                "{}: expected the error `{expected}`, but the example runs",
                b.name()
            )),
            Err(e) if !e.contains(expected) => failures.push(format!(
                "{}: expected the error `{expected}`, found:\n{e}",
                b.name()
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(count >= 5, "only {count} error examples found");
}

#[test]
fn fragments_are_few() {
    let all = all_blocks();
    let fragments: Vec<String> = all
        .iter()
        .filter(|b| b.kind == Kind::Fragment)
        .map(Block::name)
        .collect();
    let whole = all.iter().filter(|b| b.kind != Kind::Fragment).count();
    assert!(
        fragments.len() * 10 <= whole,
        "{} fragments against {whole} whole examples: {fragments:?}",
        fragments.len()
    );
}

/// The function table names every function the compiler knows, each with a unit column.
#[test]
fn the_function_table_lists_every_function() {
    let doc = std::fs::read_to_string(root().join("docs/language.md")).unwrap();
    let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `")).collect();
    let mut missing = Vec::new();
    for f in neurograph::compiler::funcs::FUNCS
        .iter()
        .map(|f| f.name)
        .chain(neurograph::compiler::funcs::SPECIAL_CALLS.iter().copied())
    {
        let call = format!("`{f}(");
        let bare = format!("`{f}`");
        if !rows.iter().any(|r| r.contains(&call) || r.contains(&bare)) {
            missing.push(f);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/language.md has no table row for {missing:?}"
    );
}

/// The data files the examples use are described in the reference, so a reader can make them.
#[test]
fn the_reference_names_the_example_data_files() {
    let doc = std::fs::read_to_string(root().join("docs/language.md")).unwrap();
    for f in ["train.npy", "text.txt", "gains.npy", "pairs.npy"] {
        assert!(doc.contains(f), "docs/language.md does not mention {f}");
    }
}

/// The extractor itself: line numbers, kinds, and a misspelt kind is refused.
#[test]
fn blocks_are_found_with_their_line_numbers() {
    let dir = example_dir("extract");
    let md = "# t\n\n```ng\nmodel a\n```\n\ntext\n```ng-error\n// error: x\n```\n```rust\nfn f() {}\n```\n```ng-library lib/a.ng\nconst k = 1\n```\n";
    let path = dir.join("t.md");
    std::fs::write(&path, md).unwrap();
    // `blocks` reads relative to the crate root: give it an absolute path through a leak.
    let rel: &'static str = Box::leak(path.to_string_lossy().into_owned().into_boxed_str());
    let b = blocks(rel);
    assert_eq!(b.len(), 3);
    assert_eq!((b[2].line, b[2].kind), (15, Kind::Library));
    assert_eq!(b[2].path.as_deref(), Some("lib/a.ng"));
    assert_eq!((b[0].line, b[0].kind), (4, Kind::Run));
    assert_eq!(b[0].text, "model a\n");
    assert_eq!((b[1].line, b[1].kind), (9, Kind::Error));
    std::fs::write(&path, "```ng-eror\nmodel a\n```\n").unwrap();
    let bad = std::panic::catch_unwind(|| blocks(rel));
    assert!(bad.is_err(), "a misspelt kind must be refused");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The experiment file of the reference runs the reference's first model: one trace per seed,
/// each with the extra record the file asks for.
#[test]
fn the_experiment_example_runs() {
    let doc = std::fs::read_to_string(root().join("docs/language.md")).unwrap();
    let yaml = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/language.md has a ```yaml experiment example");
    let first = all_blocks()
        .into_iter()
        .find(|b| b.kind == Kind::Run)
        .expect("a first model");
    let dir = example_dir("experiment");
    std::fs::write(dir.join("model.ng"), &first.text).unwrap();
    std::fs::write(dir.join("sweep.yaml"), yaml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_neurograph"))
        .args(["run", "sweep.yaml", "--quiet"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for seed in [1, 2] {
        let trace = dir.join(format!("traces/sweep/seed-{seed}"));
        let manifest = std::fs::read_to_string(trace.join("manifest.json")).unwrap();
        assert!(manifest.contains("E.v"), "seed {seed}: {manifest}");
        // The file's `set` and `duration` are the values the run used.
        let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        let value = |name: &str| {
            m["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .and_then(|p| p["value"].as_f64())
                .unwrap_or_else(|| panic!("seed {seed}: no parameter {name}: {manifest}"))
        };
        assert!((value("LIF.tau") - 0.018).abs() < 1e-15, "seed {seed}");
        assert!((value("Exc.w") - 0.6e-3).abs() < 1e-15, "seed {seed}");
        assert!((m["duration_s"].as_f64().unwrap() - 0.02).abs() < 1e-12);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `inspect` output the reference shows for the inputs example is what `inspect` prints.
#[test]
fn the_inspect_output_shown_is_real() {
    let doc = std::fs::read_to_string(root().join("docs/language.md")).unwrap();
    let (before, after) = doc
        .split_once("```text\ninputs:\n")
        .expect("docs/language.md shows `inspect` output for inputs");
    let shown = after.split("```").next().unwrap();
    let line_of_block = before.lines().count() + 1;
    let example = all_blocks()
        .into_iter()
        .find(|b| b.file == "docs/language.md" && b.kind == Kind::Run && b.line > line_of_block)
        .expect("an example after the inspect output");
    let dir = example_dir("inspect");
    let path = dir.join("example.ng");
    std::fs::write(&path, &example.text).unwrap();
    let model = Model::compile_file(&path).unwrap();
    let text = neurograph::inspect::describe(model.compiled());
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !shown.trim().is_empty(),
        "the shown inspect output is empty"
    );
    for line in shown.lines() {
        assert!(
            text.contains(&format!("{line}\n")),
            "{}: `{line}` is not in the output of inspect:\n{text}",
            example.name()
        );
    }
}
