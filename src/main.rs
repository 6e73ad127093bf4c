//! The `neurograph` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use neurograph::diagnostics::{emit_stderr, one_line};
use neurograph::experiment::Experiment;
use neurograph::run::{run_model, summary_text, RunOptions};
use neurograph::{compile_file, compile_text, Checked};

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
        /// Simulation backend.
        #[arg(long, value_enum, default_value_t = Backend::Jit)]
        backend: Backend,
        /// No progress bar and no summary.
        #[arg(long)]
        quiet: bool,
        /// Refuse to start when the estimated memory exceeds this size, e.g. `8GiB`, `500MB`
        /// (default: the memory available on this machine).
        #[arg(long, value_name = "SIZE")]
        max_memory: Option<String>,
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

const INTERRUPTED: &str = "interrupted (Ctrl-C or SIGTERM)";

struct RunArgs {
    file: PathBuf,
    backend: neurograph_runtime::Backend,
    duration: Option<String>,
    seed: Option<u64>,
    sets: Vec<String>,
    out: Option<PathBuf>,
    quiet: bool,
    max_memory: Option<f64>,
}

/// `neurograph run`: one run of a spec, or one run per seed of an experiment.
fn run(args: RunArgs) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Ctrl-C, SIGTERM and SIGHUP stop at the end of the current step; a second signal
        // while the trace is being written would lose it: keep ignoring.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to "ignore" installs no handler code; a write
    // past the file-size limit then fails with EFBIG, which the trace writer reports.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
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
        };
        (args.file.clone(), opts, vec![args.seed], Vec::new())
    };
    let mut text = std::fs::read_to_string(&spec)
        .map_err(|e| format!("cannot read {}: {e}", spec.display()))?;
    for r in &records {
        text.push_str(&format!("\nrecord {r}\n"));
    }
    let checked = report(compile_text(&spec, text.clone()), false).ok_or_else(String::new)?;
    let Checked { sources, output } = checked;
    let compiled = Arc::new(output.compiled.expect("no errors means a model"));
    let model = neurograph::Model::from_parts(Arc::clone(&compiled), sources, &spec, &text);
    let base_out = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("traces").join(&compiled.model.name));
    for seed in seeds {
        opts.seed = seed;
        if is_experiment {
            let s = seed.unwrap_or(compiled.model.run.seed);
            opts.out = Some(base_out.join(format!("seed-{s}")));
        }
        let started = Instant::now();
        let mut bar: Option<ProgressBar> = None;
        let dt = compiled.model.run.dt;
        let quiet = args.quiet;
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
        let summary = run_model(&model, &opts, Arc::clone(&stop), &mut progress);
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let summary = summary?;
        if !args.quiet {
            print!("{}", summary_text(&summary));
        }
        if let Some(failure) = summary.failure {
            return Err(failure);
        }
        if summary.interrupted {
            return Err(INTERRUPTED.to_string());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            file,
            duration,
            seed,
            sets,
            out,
            backend,
            quiet,
            max_memory,
        } => {
            let max_memory = match max_memory.as_deref().map(neurograph::memory::parse_bytes) {
                None => None,
                Some(Ok(b)) => Some(b),
                Some(Err(e)) => {
                    eprintln!("error: --max-memory: {e}");
                    return ExitCode::from(1);
                }
            };
            let backend = match backend {
                Backend::Interp => neurograph_runtime::Backend::Interp,
                Backend::Jit => neurograph_runtime::Backend::Jit,
            };
            match run(RunArgs {
                file,
                backend,
                duration,
                seed,
                sets,
                out,
                quiet,
                max_memory,
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(msg) if msg == INTERRUPTED => {
                    eprintln!("{msg}");
                    ExitCode::from(130)
                }
                Err(msg) => {
                    if !msg.is_empty() {
                        eprintln!("error: {msg}");
                    }
                    ExitCode::from(1)
                }
            }
        }
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
            let Some(checked) = compile_reporting(&file, false) else {
                return ExitCode::from(1);
            };
            let c = checked
                .output
                .compiled
                .as_ref()
                .expect("no errors means a model");
            let text = if clif {
                match neurograph::inspect::clif_text(c, asm) {
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
                neurograph::inspect::describe(c)
            };
            print!("{text}");
            ExitCode::SUCCESS
        }
    }
}
