//! Helpers shared by the integration tests: compile a bundled spec and run it in-process, run
//! the binary and check its errors, write trace directories, generate test data, read JSON and
//! query XML (SVG plots, GraphML).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use neurograph::compiler::Compiled;
use neurograph_runtime::{RunConfig, Sim};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compile a spec file (panicking with the rendered diagnostics if it does not compile).
pub fn compile(path: &Path) -> Arc<Compiled> {
    let c = neurograph::compile_file(path).unwrap();
    if c.output.has_errors() {
        panic!(
            "{}",
            neurograph::diagnostics::render_plain(&c.sources, &c.output.diagnostics)
        );
    }
    Arc::new(c.output.compiled.unwrap())
}

/// Compile spec text (relative paths start at `specs/`).
pub fn compile_text(text: &str) -> Arc<Compiled> {
    let c = neurograph::compile_text(&root().join("specs/inline.ng"), text.to_string());
    if c.output.has_errors() {
        panic!(
            "{}",
            neurograph::diagnostics::render_plain(&c.sources, &c.output.diagnostics)
        );
    }
    Arc::new(c.output.compiled.unwrap())
}

/// Run the `neurograph` binary in the repository root.
pub fn neurograph(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_neurograph"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

/// Run the `neurograph` binary and require exit status 0 (the failure shows its stderr).
pub fn neurograph_ok(args: &[&str]) -> Output {
    let out = neurograph(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "neurograph {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Start the binary with `args`, send it `signal` (`INT`, `TERM`) after 1.5 s of running, and
/// wait for it to end.
pub fn run_and_signal(args: &[&str], signal: &str) -> Output {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_neurograph"))
        .args(args)
        .current_dir(root())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} failed");
    child.wait_with_output().unwrap()
}

/// An empty directory of its own for one test (`prefix`: the test file, `name`: the test).
pub fn temp_dir(prefix: &str, name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{prefix}-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Write `text` as `dir/NAME.ng` and run it quietly (plus `extra` flags) into `dir/NAME-trace`;
/// returns (spec, trace directory).
pub fn run_spec_text(dir: &Path, name: &str, text: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let spec = dir.join(format!("{name}.ng"));
    std::fs::write(&spec, text).unwrap();
    let out = dir.join(format!("{name}-trace"));
    let mut args = vec![
        "run",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend(extra);
    neurograph_ok(&args);
    (spec, out)
}

/// The arguments of `neurograph analyze TRACE PASS ARGS...`.
pub fn analyze_args<'a>(trace: &'a Path, pass: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["analyze", trace.to_str().unwrap(), pass];
    a.extend_from_slice(args);
    a
}

/// Run `neurograph analyze TRACE PASS ARGS...`.
pub fn analyze(trace: &Path, pass: &str, args: &[&str]) -> Output {
    neurograph(&analyze_args(trace, pass, args))
}

/// Run `neurograph analyze TRACE PASS ARGS...` and require exit status 0.
pub fn analyze_ok(trace: &Path, pass: &str, args: &[&str]) -> Output {
    neurograph_ok(&analyze_args(trace, pass, args))
}

/// Run the binary and require a handled error: exit status `code`, stderr (after any lines
/// starting with `progress`) starting with `error: ` and containing `want`, no panic. Returns
/// stderr.
fn expect_exit(args: &[&str], code: i32, progress: Option<&str>, want: &str) -> String {
    let out = neurograph(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    let mut rest = err.as_str();
    if let Some(p) = progress {
        while rest.starts_with(p) {
            rest = rest.split_once('\n').map_or("", |(_, r)| r);
        }
    }
    assert!(
        rest.starts_with("error: ") && err.contains(want),
        "{args:?}: want `error: ...{want}...`, got: {err}"
    );
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    err
}

/// Run the binary and require an error (exit status 1, stderr `error: ...` containing `want`,
/// no panic); returns stderr.
pub fn expect_error(args: &[&str], want: &str) -> String {
    expect_exit(args, 1, None, want)
}

/// [`expect_error`] for a command that may report progress first: lines of stderr starting with
/// `progress` (as `groups: `) may come before the `error: ...`.
pub fn expect_error_after_progress(args: &[&str], progress: &str, want: &str) -> String {
    expect_exit(args, 1, Some(progress), want)
}

/// Run the binary and require a usage error from the flag parser (exit status 2, stderr
/// `error: ...` containing `want`, no panic); returns stderr.
pub fn expect_usage_error(args: &[&str], want: &str) -> String {
    expect_exit(args, 2, None, want)
}

/// A JSON file (a pass's `--json` output, a manifest, reference data).
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A trace directory's manifest.
pub fn manifest(dir: &Path) -> serde_json::Value {
    read_json(&dir.join("manifest.json"))
}

pub fn config(seed: u64) -> RunConfig {
    RunConfig {
        seed,
        backend: neurograph_runtime::Backend::Interp,
        base_dir: root().join("specs"),
        overrides: Vec::new(),
    }
}

/// The times and values of each recording of a simulation, as bits (for bit-for-bit
/// comparisons between backends, threads and layouts).
pub type TraceBits = Vec<(Vec<u64>, Vec<u64>)>;

pub fn trace_bits(sim: &Sim) -> TraceBits {
    sim.recordings
        .iter()
        .map(|r| {
            (
                r.times.iter().map(|x| x.to_bits()).collect(),
                r.values.iter().map(|x| x.to_bits()).collect(),
            )
        })
        .collect()
}

/// Run `steps` steps and return the simulation (recordings inside).
pub fn simulate(c: &Arc<Compiled>, seed: u64, steps: u64) -> Sim {
    simulate_with(c, seed, steps, neurograph_runtime::Backend::Interp)
}

/// `simulate` with another backend.
pub fn simulate_with(
    c: &Arc<Compiled>,
    seed: u64,
    steps: u64,
    backend: neurograph_runtime::Backend,
) -> Sim {
    let mut cfg = config(seed);
    cfg.backend = backend;
    let mut sim = Sim::new(Arc::clone(c), &cfg).unwrap();
    sim.run(steps, &AtomicBool::new(false), 0, &mut |_| {});
    sim.finish_records();
    sim
}

/// (times, indices) of the record with index `k` (an events record).
pub fn events(sim: &Sim, k: usize) -> (Vec<f64>, Vec<u32>) {
    let r = &sim.recordings[k];
    (
        r.times.clone(),
        r.values.iter().map(|&v| v as u32).collect(),
    )
}

/// The block `<keyword> <name> { ... }` of a spec text, braces balanced.
pub fn block(text: &str, header: &str) -> String {
    let start = text.find(header).unwrap_or_else(|| panic!("no `{header}`"));
    let mut depth = 0;
    for (k, ch) in text[start..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return text[start..start + k + 1].to_string();
                }
            }
            _ => {}
        }
    }
    panic!("unclosed `{header}`");
}

/// SplitMix64: the tests' own seeded generator (uniforms in (0, 1), normals by Box–Muller).
pub struct Rng(pub u64);

impl Rng {
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Write one population's spike arrays (times in s, indices; in time order) into a trace
/// directory `dir` as a run does, and return the manifest's record for them.
pub fn write_spike_record(
    dir: &Path,
    population: &str,
    size: usize,
    times: &[f64],
    indices: &[f64],
) -> serde_json::Value {
    use neurograph_runtime::npy::{self, Dtype};
    let base = format!("{population}.spikes");
    npy::write(
        &dir.join(format!("{base}.t.npy")),
        times,
        &[times.len()],
        Dtype::F64,
    )
    .unwrap();
    npy::write(
        &dir.join(format!("{base}.i.npy")),
        indices,
        &[indices.len()],
        Dtype::U32,
    )
    .unwrap();
    serde_json::json!({
        "kind": "events", "name": base, "population": population, "event": "spike",
        "count": times.len(), "size": size,
        "times": {"file": format!("{base}.t.npy"), "unit": "s", "shape": [times.len()], "dtype": "float64"},
        "indices": {"file": format!("{base}.i.npy"), "shape": [indices.len()], "dtype": "uint32"},
    })
}

/// Write a trace directory's manifest around `records`, as a complete run of `duration` s.
pub fn write_manifest(dir: &Path, model: &str, duration: f64, records: Vec<serde_json::Value>) {
    let manifest = serde_json::json!({
        "format": "neurograph-trace", "format_version": 1, "model": model, "seed": 1,
        "dt_s": 1e-4, "duration_s": duration, "status": "complete", "records": records,
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
}

/// One population's spikes for [`write_spike_trace`]: name, size, and (time in s, index) in
/// any order.
pub type SpikeRecord<'a> = (&'a str, usize, Vec<(f64, u32)>);

/// The (time, index) spikes of per-neuron trains (neuron `k` fires `trains[k]`), neuron by
/// neuron.
pub fn train_spikes(trains: &[Vec<f64>]) -> Vec<(f64, u32)> {
    trains
        .iter()
        .enumerate()
        .flat_map(|(k, train)| train.iter().map(move |&t| (t, k as u32)))
        .collect()
}

/// Write a trace directory `dir` of a complete run of `model` over `duration` s with one spike
/// record per population, its spikes put in time order as a run records them (a stable sort:
/// spikes at one time keep their order).
pub fn write_spike_trace(dir: &Path, model: &str, duration: f64, pops: &[SpikeRecord]) {
    let records = pops
        .iter()
        .map(|(pop, size, spikes)| {
            let mut spikes = spikes.clone();
            spikes.sort_by(|a, b| a.0.total_cmp(&b.0));
            let t: Vec<f64> = spikes.iter().map(|s| s.0).collect();
            let i: Vec<f64> = spikes.iter().map(|s| f64::from(s.1)).collect();
            write_spike_record(dir, pop, *size, &t, &i)
        })
        .collect();
    write_manifest(dir, model, duration, records);
}

/// Poisson spike times at `rate` Hz on [0, duration), in order (one uniform per interval).
pub fn poisson_train(rng: &mut Rng, rate: f64, duration: f64) -> Vec<f64> {
    let mut t = 0.0;
    let mut out = Vec::new();
    loop {
        t += -rng.uniform().ln() / rate;
        if t >= duration {
            return out;
        }
        out.push(t);
    }
}

/// A draw from the discrete power law `P(x) = x^-α / ζ(α, x_min)`, by inverting the
/// complementary CDF `ζ(α, x) / ζ(α, x_min)` (doubling, then bisection).
pub fn power_law_draw(rng: &mut Rng, alpha: f64, x_min: usize) -> usize {
    use neurograph_analysis::graph::hurwitz_zeta;
    let u = rng.uniform();
    let z = hurwitz_zeta(alpha, x_min as f64);
    let ccdf = |x: usize| hurwitz_zeta(alpha, x as f64) / z; // P(X >= x)
                                                             // The largest x with P(X >= x) >= u.
    let (mut lo, mut hi) = (x_min, x_min * 2);
    while ccdf(hi) >= u {
        lo = hi;
        hi *= 2;
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if ccdf(mid) >= u {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

pub use roxmltree::{Document, Node};

/// Parse XML with a real parser (panicking with its message if the text is malformed).
pub fn parse_xml(text: &str) -> Document<'_> {
    Document::parse(text).unwrap_or_else(|e| {
        let start: String = text.chars().take(300).collect();
        panic!("malformed XML: {e}\n{start}...")
    })
}

/// Parse an SVG document: well-formed XML whose one root is `<svg>`.
pub fn parse_svg(text: &str) -> Document<'_> {
    let doc = parse_xml(text);
    assert_eq!(doc.root_element().tag_name().name(), "svg", "the root");
    doc
}

/// The elements named `name` (local name), in document order.
pub fn elements<'a, 'i>(doc: &'a Document<'i>, name: &str) -> Vec<Node<'a, 'i>> {
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == name)
        .collect()
}

/// The elements with `class="class"`, in document order.
pub fn by_class<'a, 'i>(doc: &'a Document<'i>, class: &str) -> Vec<Node<'a, 'i>> {
    doc.descendants()
        .filter(|n| n.attribute("class") == Some(class))
        .collect()
}

/// The first element with `attr="value"` (panics if there is none).
pub fn find<'a, 'i>(doc: &'a Document<'i>, attr: &str, value: &str) -> Node<'a, 'i> {
    doc.descendants()
        .find(|n| n.attribute(attr) == Some(value))
        .unwrap_or_else(|| panic!("no element with {attr}=\"{value}\""))
}

/// Attribute `name` of an element (panics if it has none).
pub fn attr<'a>(node: Node<'a, '_>, name: &str) -> &'a str {
    node.attribute(name)
        .unwrap_or_else(|| panic!("<{}> has no attribute `{name}`", node.tag_name().name()))
}

/// The value of `attr` of every element with `class="class"` that has it.
pub fn class_attrs(doc: &Document, class: &str, attr: &str) -> Vec<String> {
    by_class(doc, class)
        .iter()
        .filter_map(|n| n.attribute(attr))
        .map(String::from)
        .collect()
}

/// The text content of an element (its text descendants joined, entities decoded).
pub fn text_of(node: Node) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

/// The contents of every `<text>` element, in document order.
pub fn texts(doc: &Document) -> Vec<String> {
    elements(doc, "text").into_iter().map(text_of).collect()
}

/// The bundled specs as the tests that run every spec run them: `microcircuit.ng` (77,169
/// neurons and 3·10^8 synapses at its full scale: 7 GiB and a minute of set-up) as a copy at
/// 1% of its neurons, written once per test process.
pub fn runnable_specs() -> Vec<PathBuf> {
    static SCALED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let specs = neurograph::spec_files(&root().join("specs")).unwrap();
    specs
        .into_iter()
        .map(|p| {
            if p.file_stem().is_some_and(|s| s == "microcircuit") {
                SCALED
                    .get_or_init(|| {
                        let text = std::fs::read_to_string(&p).unwrap();
                        assert!(text.contains("\nconst scale = 1\n"), "{}", p.display());
                        let dir = temp_dir("scaled-specs", &std::process::id().to_string());
                        let out = dir.join("microcircuit.ng");
                        std::fs::write(
                            &out,
                            text.replace("\nconst scale = 1\n", "\nconst scale = 0.01\n"),
                        )
                        .unwrap();
                        out
                    })
                    .clone()
            } else {
                p
            }
        })
        .collect()
}
