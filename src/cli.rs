//! The `neurograph` command line (`main`), and the command line of a native runner
//! (`runner_main`), which is `neurograph run` of one embedded spec.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use neurograph::diagnostics::{emit_stderr, one_line};
use neurograph::experiment::Experiment;
use neurograph::run::{resume_run, run_model, summary_text, RunOptions, RunSummary};
use neurograph::{compile_file, compile_text, Checked};

#[path = "analyze_cmd/mod.rs"]
mod analyze_cmd;

#[derive(Parser)]
#[command(
    name = "neurograph",
    version,
    about = "Compile and run neuron-particle network specs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check spec files; report every error with its location.
    Check {
        /// Spec files (`*.ng`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One line per diagnostic (`file:line:col: error: message`) instead of source excerpts.
        #[arg(long)]
        short: bool,
    },
    /// Simulate a spec (or every seed of an experiment file) and write a trace directory.
    Run {
        /// A spec (`*.ng`) or an experiment file (`*.yaml`).
        file: PathBuf,
        #[command(flatten)]
        flags: RunFlags,
    },
    /// Continue a run from a checkpoint (`run --checkpoint FILE`) and write the trace of the
    /// whole run. The spec is the one the checkpoint was written from; its imports must not
    /// have changed.
    Resume {
        /// The checkpoint file.
        file: PathBuf,
        /// Simulate this much more (default: up to the duration the run was asked for).
        #[arg(long)]
        duration: Option<String>,
        /// Trace directory (default `traces/<model>`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress bar and no summary.
        #[arg(long)]
        quiet: bool,
        /// Write the checkpoint here again at the end (default: the file resumed from).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// Also write it every so much simulated time, e.g. `10s`.
        #[arg(long, value_name = "DURATION")]
        checkpoint_every: Option<String>,
        /// Threads for the population updates (default: every core); traces do not depend on
        /// it.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
        threads: Option<u64>,
    },
    /// Compile a spec into a native runner: one executable that runs it as `neurograph run
    /// SPEC` does (same flags, same trace), with its kernels compiled ahead of time. Needs a C
    /// compiler (`cc`, or `$CC`) to link.
    Build {
        /// The spec (`*.ng`).
        spec: PathBuf,
        /// The executable to write.
        #[arg(short, long, value_name = "RUNNER")]
        output: PathBuf,
        /// The runner library to link (default: `libneurograph_runner.a` beside this
        /// executable, or `$NEUROGRAPH_RUNNER_LIB`; built with cargo when missing and the
        /// source tree is at hand).
        #[arg(long, value_name = "FILE")]
        runtime_lib: Option<PathBuf>,
        /// The CPU features the kernels may use: `native` (this machine's, the fastest) or
        /// `baseline` (the architecture's baseline, x86-64 SSE2: the runner then runs on any
        /// machine of the architecture).
        #[arg(long, value_enum, default_value_t = Target::Native)]
        target: Target,
    },
    /// Describe a compiled model: populations, projections, update order, parameters.
    Inspect {
        file: PathBuf,
        /// Print the model graph as Graphviz DOT instead.
        #[arg(long, conflicts_with = "ir")]
        dot: bool,
        /// Print the lowered IR as text instead.
        #[arg(long, conflicts_with = "clif")]
        ir: bool,
        /// Print the Cranelift IR of every compiled kernel instead (fused population updates,
        /// synaptic event code, expression kernels).
        #[arg(long)]
        clif: bool,
        /// With --clif: also print each kernel's machine code for this machine.
        #[arg(long, requires = "clif")]
        asm: bool,
    },
    /// Run an analysis pass over a trace directory written by `neurograph run`: a table on
    /// stdout, JSON with `--json FILE` (`neurograph analyze TRACE PASS --help` for its flags).
    Analyze {
        /// The trace directory.
        trace: PathBuf,
        #[command(subcommand)]
        pass: analyze_cmd::Pass,
    },
    /// Write in a community format: a trace directory as `--nwb FILE.nwb` (Neurodata
    /// Without Borders 2, HDF5: spike trains as the Units table, sampled state variables as
    /// TimeSeries, the spec text and the run's parameters, seed and version in `general`), or
    /// a spec as `--nir FILE.nir` (the Neuromorphic Intermediate Representation: LIF, CubaLIF,
    /// IF, LI, CubaLI and I neurons, Linear / Affine weights, Delay).
    #[command(group(clap::ArgGroup::new("format").required(true).args(["nwb", "nir"])))]
    Export {
        /// The trace directory (`--nwb`) or spec (`--nir`).
        input: PathBuf,
        /// Write an NWB file of the trace here.
        #[arg(long, value_name = "FILE.nwb")]
        nwb: Option<PathBuf>,
        /// Write a NIR graph of the spec here.
        #[arg(long, value_name = "FILE.nir")]
        nir: Option<PathBuf>,
        /// Replace the output file if it exists (by default an existing file is left alone).
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        meta: NwbFlags,
    },
    /// Continue a prompt with a language-model spec (one step per token, as `specs/bdh_gpu.ng`):
    /// the prompt's tokens are fed to its token input, then each next token is chosen from the
    /// logits and fed back; text is printed as it is generated.
    Generate {
        /// The spec.
        spec: PathBuf,
        /// The prompt as text (its bytes are the tokens of a byte-level vocabulary).
        #[arg(
            long,
            conflicts_with = "prompt_ids",
            required_unless_present = "prompt_ids"
        )]
        prompt: Option<String>,
        /// The prompt as token ids, e.g. `464,3290,318`.
        #[arg(long, value_delimiter = ',')]
        prompt_ids: Vec<u32>,
        /// How many tokens to generate.
        #[arg(long, default_value_t = 100)]
        tokens: u64,
        /// Sampling temperature; 0 (the default) is greedy decoding.
        #[arg(long, default_value_t = 0.0)]
        temperature: f64,
        /// Sample among the K most likely tokens only.
        #[arg(long, value_name = "K")]
        top_k: Option<usize>,
        /// Random seed of the model's draws and of the sampling (default: the spec's).
        #[arg(long)]
        seed: Option<u64>,
        /// The token input to feed (default: the spec's only `tokens` input).
        #[arg(long, value_name = "NAME")]
        input: Option<String>,
        /// The logits (default: the only population with a state `logit`).
        #[arg(long, value_name = "POP.VAR")]
        logits: Option<String>,
        /// Print token ids, one line, instead of the generated bytes (always for a vocabulary
        /// of more than 256 tokens).
        #[arg(long)]
        ids: bool,
        /// Threads (default: every core); the tokens do not depend on it.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
        threads: Option<u64>,
    },
    /// Write a NIR graph (`.nir`, from snnTorch, Norse, Lava, Sinabs, ... or `export --nir`)
    /// as a spec that runs like any other: one population per neuron node, one projection per
    /// weight node, parameters and weights in `.npy` files beside the spec.
    Import {
        /// The NIR file.
        file: PathBuf,
        /// The spec to write (data files go beside it, named after it).
        #[arg(short, long, value_name = "SPEC.ng")]
        out: PathBuf,
        /// The time step, e.g. `1ms` (default: the file's `metadata/dt`, which neurograph
        /// writes; files from other tools do not carry one).
        #[arg(long)]
        dt: Option<String>,
        /// The spec's simulated time (default `1s`).
        #[arg(long, default_value = "1s")]
        duration: String,
        /// Replace the spec and its data files if they exist (by default an existing file
        /// is an error and nothing is written).
        #[arg(long)]
        overwrite: bool,
    },
    /// Plot a trace directory as SVG: `raster` (spike times against neuron index), `rate`
    /// (population rate over time) or `isi` (inter-spike interval histogram).
    Plot(analyze_cmd::PlotArgs),
}

/// What an NWB file says about its "subject" and session beyond what the trace knows.
#[derive(Args)]
struct NwbFlags {
    /// The modelled species, as a Latin binomial (e.g. `Rattus norvegicus`).
    #[arg(long, conflicts_with = "nir")]
    species: Option<String>,
    /// The subject's age, an ISO 8601 duration such as `P90D` (default `P0D/`: unknown).
    #[arg(long, conflicts_with = "nir")]
    age: Option<String>,
    /// The subject's sex: `M`, `F`, `O` (other) or `U` (unknown, the default).
    #[arg(long, conflicts_with = "nir")]
    sex: Option<String>,
    /// Who ran the simulation (repeat for several), e.g. `Last, First`.
    #[arg(long, conflicts_with = "nir")]
    experimenter: Vec<String>,
    /// The institution.
    #[arg(long, conflicts_with = "nir")]
    institution: Option<String>,
    /// The session description (default: the model, spec, seed and simulated time).
    #[arg(long, conflicts_with = "nir")]
    description: Option<String>,
}

fn export(input: &Path, nwb: &Path, f: NwbFlags, overwrite: bool) -> Result<(), CliError> {
    let options = neurograph_interchange::nwb::NwbOptions {
        species: f.species,
        age: f.age,
        sex: f.sex,
        experimenter: f.experimenter,
        institution: f.institution,
        description: f.description,
        overwrite,
    };
    let s = neurograph_interchange::nwb::export_trace(input, nwb, &options)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    println!(
        "wrote {}: {} units ({} spikes), {} time series, {} tables",
        s.path.display(),
        s.units,
        s.spikes,
        s.time_series.len(),
        s.tables.len()
    );
    for skipped in &s.skipped {
        println!("  not in the file: {skipped}");
    }
    Ok(())
}

/// `neurograph generate`: prints the generated text (or ids) as it comes, the speed after.
fn generate(
    spec: &Path,
    seed: Option<u64>,
    threads: usize,
    options: &neurograph::generate::GenerateOptions,
    ids: bool,
) -> Result<(), CliError> {
    use std::io::Write;
    let model = read_model(spec)?;
    // Tokens that are not bytes are printed as ids (the input `generate` feeds; if there is
    // none, `generate` says so).
    let vocab = neurograph::generate::token_input_name(&model, options.input.as_deref())
        .ok()
        .and_then(|name| model.token_input(&name).map(|(_, v)| v))
        .unwrap_or(0);
    let ids = ids || vocab > 256;
    let mut out = std::io::stdout().lock();
    let mut first = true;
    let mut emit = |t: u32| {
        if ids {
            let _ = write!(out, "{}{t}", if first { "" } else { " " });
        } else {
            let _ = out.write_all(&[t.min(255) as u8]);
        }
        first = false;
        let _ = out.flush();
    };
    let s = neurograph::generate::run(&model, seed, threads, options, &mut emit)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    println!();
    let n = s.generated.len() as f64;
    eprintln!(
        "prompt: {} tokens in {:.3} s; generated {} tokens in {:.3} s ({:.1} tokens/s)",
        options.prompt.len(),
        s.prompt_seconds,
        s.generated.len(),
        s.generate_seconds,
        if s.generate_seconds > 0.0 {
            n / s.generate_seconds
        } else {
            0.0
        }
    );
    Ok(())
}

/// `neurograph export SPEC --nir FILE`.
fn export_nir(spec: &Path, out: &Path, overwrite: bool) -> Result<(), CliError> {
    if out.exists() && !overwrite {
        return Err(CliError::Failed(format!(
            "{} exists; pass --overwrite to replace it",
            out.display()
        )));
    }
    let model = read_model(spec)?;
    let graph =
        neurograph::nir_export::export(&model).map_err(|e| CliError::Failed(e.to_string()))?;
    neurograph_interchange::nir::write(out, &graph).map_err(|e| CliError::Failed(e.to_string()))?;
    let kinds: Vec<String> = graph
        .nodes
        .iter()
        .map(|(n, node)| format!("{n} ({})", node.kind))
        .collect();
    println!(
        "wrote {}: {} nodes, {} edges: {}",
        out.display(),
        graph.nodes.len(),
        graph.edges.len(),
        kinds.join(", ")
    );
    Ok(())
}

/// `neurograph import FILE.nir -o SPEC`.
fn import_nir(
    file: &Path,
    out: &Path,
    dt: Option<&str>,
    duration: &str,
    overwrite: bool,
) -> Result<(), CliError> {
    let seconds = |what: &str, s: &str| -> Result<f64, CliError> {
        neurograph_compiler::quantity::parse_quantity(s)
            .ok()
            .filter(|(_, dim)| *dim == neurograph_compiler::units::Dim::TIME)
            .map(|(v, _)| v)
            .ok_or_else(|| CliError::Failed(format!("--{what} {s}: a time such as 1ms")))
    };
    let graph =
        neurograph_interchange::nir::read(file).map_err(|e| CliError::Failed(e.to_string()))?;
    let dt = match dt {
        Some(s) => seconds("dt", s)?,
        None => graph
            .metadata
            .iter()
            .find(|(k, _)| k == "dt")
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                CliError::Failed(format!(
                    "{} does not say its time step (NIR files from other tools do not): pass --dt, e.g. --dt 1ms",
                    file.display()
                ))
            })?,
    };
    let duration = seconds("duration", duration)?;
    let s = neurograph_interchange::nir::to_spec(&graph, out, dt, duration, overwrite)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    println!(
        "wrote {} ({} populations, {} projections) and {} data files",
        s.spec.display(),
        s.populations.len(),
        s.projections,
        s.files.len()
    );
    for (name, node, kind, n) in &s.populations {
        println!("  {name}: NIR node `{node}` ({kind}, {n})");
    }
    Ok(())
}

/// The flags of `neurograph run`, which a native runner takes too.
#[derive(Args)]
struct RunFlags {
    /// Simulated time, e.g. `2s` or `500 ms` (default: the spec's `run` block).
    #[arg(long)]
    duration: Option<String>,
    /// Random seed (default: the spec's `run` block, or the experiment's seeds).
    #[arg(long)]
    seed: Option<u64>,
    /// Change a parameter without recompiling: `name=value`, `Type.name=value`; repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    sets: Vec<String>,
    /// Trace directory (default `traces/<model>`; for experiments, `seed-N` inside it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Simulation backend (a runner's `jit` is its built kernels).
    #[arg(long, value_enum, default_value_t = Backend::Jit)]
    backend: Backend,
    /// No progress bar and no summary.
    #[arg(long)]
    quiet: bool,
    /// Refuse to start when the estimated memory exceeds this size, e.g. `8GiB`, `500MB`
    /// (default: the memory available on this machine).
    #[arg(long, value_name = "SIZE")]
    max_memory: Option<String>,
    /// Write a checkpoint to FILE at the end of the run, also when it is interrupted
    /// (`neurograph resume FILE` continues it bit-identically).
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// With --checkpoint: also write it every so much simulated time, e.g. `10s`.
    #[arg(long, value_name = "DURATION", requires = "checkpoint")]
    checkpoint_every: Option<String>,
    /// Threads for the population updates (default: every core); traces do not depend on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,
}

impl RunFlags {
    /// The run of `file` (or of `text` as if read from it, with a runner's `kernels`).
    fn into_args(
        self,
        file: PathBuf,
        text: Option<String>,
        kernels: Option<RunnerKernels>,
    ) -> Result<RunArgs, CliError> {
        let max_memory = self
            .max_memory
            .as_deref()
            .map(neurograph::memory::parse_bytes)
            .transpose()
            .map_err(|e| format!("--max-memory: {e}"))?;
        Ok(RunArgs {
            file,
            text,
            kernels,
            backend: match self.backend {
                Backend::Interp => neurograph_runtime::Backend::Interp,
                Backend::Jit => neurograph_runtime::Backend::Jit,
            },
            duration: self.duration,
            seed: self.seed,
            sets: self.sets,
            out: self.out,
            quiet: self.quiet,
            max_memory,
            checkpoint: self.checkpoint,
            checkpoint_every: self.checkpoint_every,
            threads: self.threads.map(|n| n as usize),
        })
    }
}

/// `neurograph build --target`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    Native,
    Baseline,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// The reference interpreter.
    Interp,
    /// Cranelift-compiled expression kernels; what they do not cover runs interpreted.
    Jit,
}

/// Compile one file, printing its diagnostics; `None` on any error.
fn compile_reporting(path: &Path, short: bool) -> Option<Checked> {
    let checked = match compile_file(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return None;
        }
    };
    report(checked, short)
}

fn report(checked: Checked, short: bool) -> Option<Checked> {
    if short {
        for d in &checked.output.diagnostics {
            eprintln!("{}", one_line(&checked.sources, d));
        }
    } else {
        emit_stderr(&checked.sources, &checked.output.diagnostics);
    }
    (!checked.output.has_errors()).then_some(checked)
}

/// Why `run` or `resume` did not finish normally.
enum CliError {
    /// Stopped by Ctrl-C, SIGTERM or SIGHUP; the trace of what was simulated was written.
    Interrupted,
    /// A message for stderr (empty when the diagnostics were printed already).
    Failed(String),
}

impl From<String> for CliError {
    fn from(message: String) -> CliError {
        CliError::Failed(message)
    }
}

impl From<neurograph::Error> for CliError {
    fn from(e: neurograph::Error) -> CliError {
        CliError::Failed(e.to_string())
    }
}

struct RunArgs {
    file: PathBuf,
    /// The spec text (a runner's embedded spec) instead of reading `file`.
    text: Option<String>,
    /// A runner's kernels.
    kernels: Option<RunnerKernels>,
    backend: neurograph_runtime::Backend,
    duration: Option<String>,
    seed: Option<u64>,
    sets: Vec<String>,
    out: Option<PathBuf>,
    quiet: bool,
    max_memory: Option<f64>,
    checkpoint: Option<PathBuf>,
    checkpoint_every: Option<String>,
    threads: Option<usize>,
}

/// Read and compile the spec file `spec` (`compile_model`).
fn read_model(spec: &Path) -> Result<neurograph::Model, CliError> {
    let text = std::fs::read_to_string(spec)
        .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", spec.display())))?;
    compile_model(spec, &text)
}

/// Compile spec text as if read from `spec`, its diagnostics printed; the model.
fn compile_model(spec: &Path, text: &str) -> Result<neurograph::Model, CliError> {
    let Checked { sources, output } =
        report(compile_text(spec, text.to_string()), false).ok_or_else(String::new)?;
    let compiled = output.compiled.expect("no errors means a model");
    Ok(neurograph::Model::from_parts(
        Arc::new(compiled),
        sources,
        spec,
        text,
    ))
}

/// `neurograph run`: one run of a spec, or one run per seed of an experiment.
fn run(args: RunArgs) -> Result<(), CliError> {
    let stop = stop_on_signals();
    let is_experiment = args
        .file
        .extension()
        .is_some_and(|e| e == "yaml" || e == "yml");
    let (spec, mut opts, seeds, records) = if is_experiment {
        let exp = Experiment::load(&args.file)?;
        let mut sets = exp.sets()?;
        sets.extend(args.sets.iter().cloned());
        let opts = RunOptions {
            duration: args.duration.clone().or(exp.duration.clone()),
            seed: None,
            sets,
            out: args.out.clone().or(exp.out.clone()),
            backend: args.backend,
            max_memory: args.max_memory,
            checkpoint: args.checkpoint.clone(),
            checkpoint_every: args.checkpoint_every.clone(),
            threads: args.threads,
        };
        let seeds: Vec<Option<u64>> = match args.seed {
            Some(s) => vec![Some(s)],
            None if exp.seeds.is_empty() => vec![None],
            None => exp.seeds.iter().map(|s| Some(*s)).collect(),
        };
        (exp.spec.clone(), opts, seeds, exp.record.clone())
    } else {
        let opts = RunOptions {
            duration: args.duration.clone(),
            seed: args.seed,
            sets: args.sets.clone(),
            out: args.out.clone(),
            backend: args.backend,
            max_memory: args.max_memory,
            checkpoint: args.checkpoint.clone(),
            checkpoint_every: args.checkpoint_every.clone(),
            threads: args.threads,
        };
        (args.file.clone(), opts, vec![args.seed], Vec::new())
    };
    let mut text = match &args.text {
        Some(t) => t.clone(),
        None => std::fs::read_to_string(&spec)
            .map_err(|e| format!("cannot read {}: {e}", spec.display()))?,
    };
    for r in &records {
        text.push_str(&format!("\nrecord {r}\n"));
    }
    let model = compile_model(&spec, &text)?;
    if let Some(runner) = &args.kernels {
        runner.attach(&model, &spec)?;
    }
    let compiled = Arc::clone(model.compiled());
    let base_out = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("traces").join(&compiled.model.name));
    if seeds.len() > 1 && opts.checkpoint.is_some() {
        return Err(CliError::Failed(
            "--checkpoint with an experiment of several seeds would overwrite one file per seed; run each seed with its own --seed and --checkpoint".to_string(),
        ));
    }
    for seed in seeds {
        opts.seed = seed;
        if is_experiment {
            let s = seed.unwrap_or(compiled.model.run.seed);
            opts.out = Some(base_out.join(format!("seed-{s}")));
        }
        let dt = compiled.model.run.dt;
        report_run(args.quiet, dt, &mut |progress| {
            run_model(&model, &opts, Arc::clone(&stop), progress)
        })?;
    }
    Ok(())
}

/// A run given a progress callback `(steps done, steps in all)`.
type Simulate<'a> =
    dyn FnMut(&mut dyn FnMut(u64, u64)) -> Result<RunSummary, neurograph::Error> + 'a;

/// Run `simulate` with a progress bar (after the first second, unless `quiet`), print the
/// summary, and turn a failed or interrupted run into the error `main` reports.
fn report_run(quiet: bool, dt: f64, simulate: &mut Simulate) -> Result<(), CliError> {
    let started = Instant::now();
    let mut bar: Option<ProgressBar> = None;
    let mut progress = |done: u64, total: u64| {
        if quiet || started.elapsed().as_secs_f64() < 1.0 {
            return;
        }
        let b = bar.get_or_insert_with(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} steps  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        });
        b.set_position(done);
        let simulated = done as f64 * dt;
        b.set_message(format!(
            "t = {simulated:.3} s, real-time factor {:.2}",
            started.elapsed().as_secs_f64() / simulated.max(1e-300)
        ));
    };
    let summary = simulate(&mut progress);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let summary = summary?;
    if !quiet {
        analyze_cmd::print_out(&summary_text(&summary))?;
    }
    if let Some(failure) = summary.failure {
        return Err(CliError::Failed(failure));
    }
    if summary.interrupted {
        return Err(CliError::Interrupted);
    }
    Ok(())
}

/// Ctrl-C, SIGTERM and SIGHUP set the returned flag (the run stops at the end of the current
/// step and still writes its trace); SIGXFSZ is ignored so that a file-size limit is an error.
fn stop_on_signals() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second signal while the trace is being written would lose it: keep ignoring.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to "ignore" installs no handler code; a write
    // past the file-size limit then fails with EFBIG, which the trace writer reports.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    stop
}

/// Exit status of a run: 0, 130 when interrupted, 1 with the error printed.
fn exit_code(result: Result<(), CliError>) -> ExitCode {
    ExitCode::from(exit_status(result))
}

/// The process status of a command's result (errors printed): 0, 130 when interrupted, 1.
fn exit_status(result: Result<(), CliError>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(CliError::Interrupted) => {
            eprintln!("interrupted (Ctrl-C or SIGTERM)");
            130
        }
        Err(CliError::Failed(msg)) => {
            if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            1
        }
    }
}

/// `neurograph resume`: continue a checkpointed run and write the whole run's trace.
fn resume(
    file: &Path,
    duration: Option<String>,
    out: Option<PathBuf>,
    quiet: bool,
    checkpoint: Option<PathBuf>,
    checkpoint_every: Option<String>,
    threads: Option<usize>,
) -> Result<(), CliError> {
    let stop = stop_on_signals();
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let header = neurograph::simulation::CheckpointHeader::read(&bytes)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let spec = PathBuf::from(&header.spec_path);
    let model = compile_model(&spec, &header.spec_text)?;
    let compiled = Arc::clone(model.compiled());
    if !header.matches(&model) {
        return Err(CliError::Failed(format!(
            "{}: a spec imported by {} changed since the checkpoint was written; it can only be resumed with the files it was written from",
            file.display(),
            spec.display()
        )));
    }
    let sim = header
        .resume(&model)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let n_steps = match &duration {
        Some(_) => neurograph::run::steps_for(&compiled.model, duration.as_deref())?.0,
        None => sim.requested_steps().saturating_sub(sim.steps()),
    };
    let mut sim = sim;
    if duration.is_some() {
        sim.reset_requested_steps();
    }
    sim.set_stop_flag(stop);
    let opts = RunOptions {
        out,
        checkpoint: Some(checkpoint.unwrap_or_else(|| file.to_path_buf())),
        checkpoint_every,
        threads,
        ..RunOptions::default()
    };
    let dt = compiled.model.run.dt;
    let mut sim = Some(sim);
    report_run(quiet, dt, &mut |progress| {
        let sim = sim
            .take()
            .ok_or_else(|| neurograph::Error::Run("resumed twice".to_string()))?;
        resume_run(sim, n_steps, &opts, progress)
    })
}

/// `neurograph`: parse the command line and run the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Plot(a) => match analyze_cmd::plot(a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        Command::Export {
            input,
            nwb,
            nir,
            overwrite,
            meta,
        } => exit_code(match (nwb, nir) {
            (Some(nwb), _) => export(&input, &nwb, meta, overwrite),
            (None, Some(nir)) => export_nir(&input, &nir, overwrite),
            (None, None) => unreachable!("clap requires --nwb or --nir"),
        }),
        Command::Generate {
            spec,
            prompt,
            prompt_ids,
            tokens,
            temperature,
            top_k,
            seed,
            input,
            logits,
            ids,
            threads,
        } => {
            let prompt = match prompt {
                Some(text) => text.bytes().map(u32::from).collect(),
                None => prompt_ids,
            };
            let options = neurograph::generate::GenerateOptions {
                prompt,
                tokens,
                temperature,
                top_k,
                input,
                logits,
            };
            let threads = threads.map_or_else(neurograph::run::available_threads, |n| n as usize);
            exit_code(generate(&spec, seed, threads, &options, ids))
        }
        Command::Import {
            file,
            out,
            dt,
            duration,
            overwrite,
        } => exit_code(import_nir(&file, &out, dt.as_deref(), &duration, overwrite)),
        Command::Analyze { trace, pass } => match analyze_cmd::analyze(&trace, pass) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        Command::Run { file, flags } => exit_code(flags.into_args(file, None, None).and_then(run)),
        Command::Resume {
            file,
            duration,
            out,
            quiet,
            checkpoint,
            checkpoint_every,
            threads,
        } => exit_code(resume(
            &file,
            duration,
            out,
            quiet,
            checkpoint,
            checkpoint_every,
            threads.map(|n| n as usize),
        )),
        Command::Build {
            spec,
            output,
            runtime_lib,
            target,
        } => exit_code(build(&spec, &output, runtime_lib.as_deref(), target)),
        Command::Check { files, short } => {
            let mut failed = 0;
            for f in &files {
                if compile_reporting(f, short).is_none() {
                    failed += 1;
                }
            }
            if failed > 0 {
                eprintln!("{failed} of {} file(s) have errors", files.len());
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Inspect {
            file,
            dot,
            ir,
            clif,
            asm,
        } => {
            let Some(Checked { sources, output }) = compile_reporting(&file, false) else {
                return ExitCode::from(1);
            };
            let c = output.compiled.expect("no errors means a model");
            let text = if clif {
                // The root file is the first one (`compile_text`).
                let spec_text = sources.files()[0].text.clone();
                let model = neurograph::Model::from_parts(Arc::new(c), sources, &file, &spec_text);
                match neurograph::inspect::clif_text(&model, asm) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else if dot {
                c.info.graph.to_dot(&c.model)
            } else if ir {
                neurograph_compiler::print::print_model(&c.model, &c.info)
            } else {
                let mut text = neurograph::inspect::describe(&c);
                // The root file is the first one (`compile_text`).
                let spec_text = sources.files()[0].text.clone();
                let model = neurograph::Model::from_parts(Arc::new(c), sources, &file, &spec_text);
                text.push_str(&kernel_report(&model));
                text
            };
            match analyze_cmd::print_out(&text) {
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
                Ok(()) => ExitCode::SUCCESS,
            }
        }
    }
}

/// `neurograph build`.
fn build(
    spec: &Path,
    output: &Path,
    runtime_lib: Option<&Path>,
    target: Target,
) -> Result<(), CliError> {
    let text = std::fs::read_to_string(spec)
        .map_err(|e| format!("cannot read {}: {e}", spec.display()))?;
    let model = compile_model(spec, &text)?;
    let cpu = match target {
        Target::Native => neurograph::native::CpuFeatures::Native,
        Target::Baseline => neurograph::native::CpuFeatures::Baseline,
    };
    let built = neurograph::native::build(&model, spec, &text, output, runtime_lib, cpu)?;
    eprintln!(
        "wrote {} ({} kernels; runtime {})",
        output.display(),
        built.kernels,
        built.library.display()
    );
    for (what, why) in &built.interpreted {
        eprintln!("  interpreted: {what}: {why}");
    }
    Ok(())
}

/// The command line of a native runner: `neurograph run`'s flags, without the spec.
#[derive(Parser)]
#[command(
    about = "A neurograph native runner: simulates its embedded spec and writes a trace directory (the flags of `neurograph run`)"
)]
struct RunnerCli {
    /// Print the model, the neurograph version and the spec's hash, and exit.
    #[arg(long)]
    info: bool,
    /// Print which kernel calls of a step run generated code (from this runner's table) and
    /// which run interpreted, as `neurograph inspect` does, and exit.
    #[arg(long)]
    kernels: bool,
    #[command(flatten)]
    flags: RunFlags,
}

/// What a runner's object file embeds (`native`).
pub struct Embedded<'a> {
    pub spec: &'a str,
    pub spec_path: &'a str,
    pub info: &'a str,
    pub kernels: Arc<neurograph_compiler::codegen::KernelTable>,
    /// `Model::fingerprint` of the sources the kernels were built from.
    pub fingerprint: u64,
}

/// A runner's kernels and the fingerprint of the model they were built for.
struct RunnerKernels {
    table: Arc<neurograph_compiler::codegen::KernelTable>,
    fingerprint: u64,
}

impl RunnerKernels {
    /// Make the table `model`'s kernel source. The table is keyed by IR positions: valid only
    /// for the very sources it was built from (the runner compiles its embedded text again,
    /// and imports come from disk).
    fn attach(&self, model: &neurograph::Model, spec: &Path) -> Result<(), CliError> {
        if model.fingerprint() != self.fingerprint {
            return Err(CliError::Failed(format!(
                "a file imported by {} changed since this runner was built; rebuild it with `neurograph build`",
                spec.display()
            )));
        }
        let _ = model
            .compiled()
            .kernels
            .set(neurograph_compiler::codegen::KernelSource::Table(
                self.table.clone(),
            ));
        Ok(())
    }
}

/// `main` of a native runner: its process status.
pub fn runner_main(embedded: Embedded) -> u8 {
    let cli = RunnerCli::parse();
    if cli.info {
        return exit_status(analyze_cmd::print_out(embedded.info).map_err(CliError::from));
    }
    let file = PathBuf::from(embedded.spec_path);
    let text = Some(embedded.spec.to_string());
    let kernels = RunnerKernels {
        table: embedded.kernels,
        fingerprint: embedded.fingerprint,
    };
    if cli.kernels {
        // As a run sets them up, with the spec's defaults.
        return exit_status(compile_model(&file, embedded.spec).and_then(|model| {
            kernels.attach(&model, &file)?;
            analyze_cmd::print_out(&kernel_report(&model))?;
            Ok(())
        }));
    }
    exit_status(cli.flags.into_args(file, text, Some(kernels)).and_then(run))
}

/// `inspect`'s list of the kernel calls of a step: generated code or interpreted, and why (a
/// JIT simulation set up with the spec's defaults).
fn kernel_report(model: &neurograph::Model) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("\nkernels (JIT, set up with the spec's defaults):\n");
    // Set up only what fits (the memory estimate is printed above).
    let sim = neurograph::memory::check_machine(&model.compiled().model, 0, None)
        .and_then(|()| model.simulation().build());
    match sim {
        Ok(mut sim) => {
            let decisions = sim.kernel_decisions();
            if decisions.is_empty() {
                out.push_str("  (no kernel calls)\n");
            }
            for d in decisions {
                let _ = match d.generated {
                    Ok(()) => writeln!(out, "  generated    {}", d.what),
                    Err(why) => writeln!(out, "  interpreted  {}: {why}", d.what),
                };
            }
            let ir = &model.compiled().model;
            for (h, p) in ir.populations.iter() {
                if sim.raw().poisson[h.index()].is_some() {
                    let _ = writeln!(
                        out,
                        "  event-driven {}: Poisson sources, one draw per spike (no kernel)",
                        p.name
                    );
                }
            }
        }
        Err(e) => {
            let _ = writeln!(out, "  not set up: {e}");
        }
    }
    out
}
