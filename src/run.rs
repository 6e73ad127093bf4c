//! Running a compiled spec: options, the output directory check, the simulation, the trace
//! and the summary. Used by `neurograph run` and by embedding users.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use neurograph_compiler::ir::*;
use neurograph_compiler::quantity::parse_quantity;
use neurograph_compiler::units::{pretty, Dim};
use neurograph_runtime::trace::{check_replaceable, RunStatus};

use crate::memory;
use crate::Error;

/// Options of one run; `None` keeps the spec's `run` settings.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Simulated duration, as written (`2 s`, `500ms`).
    pub duration: Option<String>,
    pub seed: Option<u64>,
    /// `name=value` parameter overrides.
    pub sets: Vec<String>,
    /// Trace directory; default `traces/<model>`.
    pub out: Option<PathBuf>,
    pub backend: neurograph_runtime::Backend,
    /// Refuse runs whose memory estimate exceeds this many bytes (default: the memory
    /// available on this machine).
    pub max_memory: Option<f64>,
    /// Write a checkpoint here at the end of the run (also when interrupted) and, with
    /// `checkpoint_every`, every so much simulated time.
    pub checkpoint: Option<PathBuf>,
    /// Simulated time between checkpoints, as written (`10 s`).
    pub checkpoint_every: Option<String>,
    /// Threads for the fused population updates (default: every core of this machine).
    /// Traces do not depend on it.
    pub threads: Option<usize>,
}

/// The cores of this machine (1 when unknown).
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Debug, Clone)]
pub struct PopulationSummary {
    pub name: String,
    pub size: usize,
    pub spikes: u64,
    pub rate_hz: f64,
    /// Whether its cells can spike at all (a spike event, or a spike-train input); rate units,
    /// GLM units and astrocytes without events cannot.
    pub spiking: bool,
}

#[derive(Debug, Clone)]
pub struct RunSummary {
    pub neurons: usize,
    pub synapses: usize,
    pub populations: Vec<PopulationSummary>,
    pub simulated_s: f64,
    pub steps: u64,
    pub setup_s: f64,
    pub wall_s: f64,
    pub interrupted: bool,
    /// Why the run stopped early with an error (a non-finite value, a data file that does not
    /// fit); the trace holds what was simulated up to it and its manifest says `failed`.
    pub failure: Option<String>,
    pub trace_dir: PathBuf,
    pub synaptic_events: u64,
    /// Histograms of the values recorded `at end`: (name, low, high, counts of 10 bins).
    pub final_histograms: Vec<(String, f64, f64, Vec<usize>)>,
}

/// Ten equal bins between the smallest and largest value.
pub fn histogram(values: &[f64]) -> (f64, f64, Vec<usize>) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut counts = vec![0; 10];
    if values.is_empty() {
        return (0.0, 0.0, counts);
    }
    let width = (hi - lo) / 10.0;
    for &v in values {
        let k = if width > 0.0 {
            (((v - lo) / width) as usize).min(9)
        } else {
            0
        };
        counts[k] += 1;
    }
    (lo, hi, counts)
}

impl RunSummary {
    pub fn real_time_factor(&self) -> f64 {
        self.wall_s / self.simulated_s.max(1e-300)
    }
}

/// Make sure the trace can be written before spending time on the simulation.
fn check_writable(dir: &Path) -> Result<(), Error> {
    check_replaceable(dir).map_err(|e| Error::Run(e.to_string()))?;
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| {
        Error::Run(format!(
            "cannot create output directory {}: {e}",
            parent.display()
        ))
    })?;
    let probe = parent.join(format!(".neurograph-probe-{}", std::process::id()));
    std::fs::create_dir(&probe).map_err(|e| {
        Error::Run(format!(
            "output directory {} is not writable: {e}",
            parent.display()
        ))
    })?;
    let _ = std::fs::remove_dir(&probe);
    Ok(())
}

/// Steps for a duration given as text, or the spec's duration.
pub fn steps_for(model: &Model, duration: Option<&str>) -> Result<(u64, f64), Error> {
    let seconds = match duration {
        None => model.run.duration,
        Some(text) => {
            let (v, d) =
                parse_quantity(text).map_err(|e| Error::Value(format!("--duration: {e}")))?;
            if d != Dim::TIME {
                return Err(Error::Value(format!(
                    "--duration: `{text}` is not a time (it is in {d}); write e.g. `--duration 2s`"
                )));
            }
            if !(v > 0.0 && v.is_finite()) {
                return Err(Error::Value(format!(
                    "--duration: `{text}` must be positive"
                )));
            }
            v
        }
    };
    let steps = (seconds / model.run.dt).round();
    if steps > 1e12 {
        return Err(Error::Value(format!(
            "--duration: {seconds} s is more than 1e12 steps of {} s",
            model.run.dt
        )));
    }
    Ok((steps.max(1.0) as u64, seconds))
}

/// Compile-independent part of a run: set up, simulate, write the trace. The CLI's run is an
/// embedding of [`Simulation`](crate::Simulation) like any other.
pub fn run_model(
    model: &crate::Model,
    opts: &RunOptions,
    stop: Arc<AtomicBool>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RunSummary, Error> {
    let compiled = model.compiled();
    let model_ir = &compiled.model;
    let (n_steps, _) = steps_for(model_ir, opts.duration.as_deref())?;
    let mut builder = model.simulation().backend(opts.backend).stop_flag(stop);
    if let Some(seed) = opts.seed {
        builder = builder.seed(seed);
    }
    for s in &opts.sets {
        builder = builder.assignment(s);
    }
    builder.check()?;
    let out = prepare(model_ir, n_steps, opts)?;
    let started = Instant::now();
    let sim = builder.build()?;
    finish_run(sim, n_steps, &out, opts, started, progress)
}

/// Continue a simulation restored from a checkpoint for `n_steps` more steps, then write
/// the trace (the whole run's records) as `run_model` does.
pub fn resume_run(
    sim: crate::Simulation,
    n_steps: u64,
    opts: &RunOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RunSummary, Error> {
    // The records of the whole run are held: the estimate covers the steps already done.
    let compiled = Arc::clone(sim.model().compiled());
    let out = prepare(&compiled.model, sim.steps() + n_steps, opts)?;
    finish_run(sim, n_steps, &out, opts, Instant::now(), progress)
}

/// Before anything is simulated: refuse a run whose estimated memory (`total_steps` of
/// records) does not fit, and an output directory neurograph may not replace; the directory.
fn prepare(model_ir: &Model, total_steps: u64, opts: &RunOptions) -> Result<PathBuf, Error> {
    memory::check_machine(model_ir, total_steps, opts.max_memory)?;
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("traces").join(&model_ir.name));
    check_writable(&out)?;
    Ok(out)
}

/// Simulate `n_steps` (in pieces between checkpoints), locate a divergence, write the
/// trace and the last checkpoint, and summarise.
fn finish_run(
    mut sim: crate::Simulation,
    n_steps: u64,
    out: &Path,
    opts: &RunOptions,
    started: Instant,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RunSummary, Error> {
    sim.set_threads(opts.threads.unwrap_or_else(available_threads));
    let compiled = Arc::clone(sim.model().compiled());
    let model_ir = &compiled.model;
    let setup_s = started.elapsed().as_secs_f64();
    let first_step = sim.steps();
    let chunk = match &opts.checkpoint_every {
        // The command line requires --checkpoint with it.
        Some(every) => {
            steps_for(model_ir, Some(every))
                .map_err(|e| {
                    Error::Value(e.to_string().replace("--duration", "--checkpoint-every"))
                })?
                .0
        }
        None => n_steps.max(1),
    };
    let mut outcome = Ok(crate::Stopped::Done);
    while sim.steps() - first_step < n_steps {
        let before = sim.steps() - first_step;
        let k = chunk.min(n_steps - before);
        outcome = sim.step_with_progress(k, &mut |d, _| progress(before + d, n_steps));
        if !matches!(outcome, Ok(crate::Stopped::Done)) {
            break;
        }
        if let Some(path) = &opts.checkpoint {
            sim.save_checkpoint(path)?;
        }
    }
    // The last check of the run (the step loop checks every FINITE_CHECK_EVERY steps).
    if matches!(outcome, Ok(crate::Stopped::Done)) {
        if let Err(e) = sim.check_finite() {
            outcome = Err(e);
        }
    }
    let failure = match outcome {
        Ok(crate::Stopped::Done) => None,
        Ok(crate::Stopped::Interrupted) => {
            if let Some(path) = &opts.checkpoint {
                sim.save_checkpoint(path)?;
            }
            None
        }
        Err(crate::Error::Diverged(_)) => {
            let exact = sim.locate_divergence()?;
            let step = exact.steps.saturating_sub(1);
            Some(format!(
                "the simulation diverged: {}.{}[{}] became {} in step {step} (t = {}); stopped there. Check the time constants and the integration method (a smaller dt, `method exact` or `rk4`)",
                exact.node,
                exact.variable,
                exact.element,
                exact.value,
                pretty(step as f64 * model_ir.run.dt, Dim::TIME),
            ))
        }
        Err(e) => Some(e.to_string()),
    };
    let done = sim.steps();
    let wall_s = started.elapsed().as_secs_f64() - setup_s;
    let simulated_s = done as f64 * model_ir.run.dt;
    let interrupted = done < sim.requested_steps() && failure.is_none();
    let status = match &failure {
        Some(f) => RunStatus::Failed(f.clone()),
        None if interrupted => RunStatus::Interrupted,
        None => RunStatus::Complete,
    };
    sim.write_trace_as(out, status)
        .map_err(|e| Error::Run(format!("cannot write the trace to {}: {e}", out.display())))?;
    let out = out.to_path_buf();
    let sim_raw = sim.raw();
    let model = model_ir;
    let populations = model
        .populations
        .iter()
        .map(|(h, p)| PopulationSummary {
            name: p.name.clone(),
            size: p.size as usize,
            spikes: sim_raw.spike_counts[h.index()],
            rate_hz: sim_raw.spike_counts[h.index()] as f64
                / (p.size as f64 * simulated_s.max(1e-300)),
            spiking: model.can_spike(p),
        })
        .collect();
    let final_histograms = model
        .records
        .iter()
        .enumerate()
        .filter_map(|(k, r)| match (&r.what, r.at_end) {
            (RecordWhat::State { node, var, .. }, true) => {
                let (lo, hi, counts) = histogram(&sim_raw.recordings[k].values);
                Some((
                    format!("{}.{}", model.node_name(*node), model.variables[*var].name),
                    lo,
                    hi,
                    counts,
                ))
            }
            _ => None,
        })
        .collect();
    Ok(RunSummary {
        final_histograms,
        neurons: sim_raw.n_neurons(),
        synapses: sim_raw.n_synapses(),
        populations,
        simulated_s,
        steps: done,
        setup_s,
        wall_s,
        interrupted,
        failure,
        trace_dir: out,
        synaptic_events: sim_raw.events_delivered,
    })
}

/// Parameter values of a run for the manifest: (name as `--set` spells it, value in SI units,
/// unit). Each parameter with its value everywhere; a value set for one population or
/// projection as `Population.p` too.
pub fn parameter_values(
    model: &Model,
    overrides: &[neurograph_runtime::Override],
) -> Vec<(String, f64, String)> {
    let mut parameters = Vec::new();
    for (h, v) in model.variables.iter() {
        if v.kind != VarKind::Param || v.regime.is_some() {
            continue;
        }
        let value = neurograph_runtime::override_for(overrides, h, None)
            .or_else(|| neurograph_compiler::const_eval(model, v.init));
        if let Some(value) = value {
            let owner = match v.scope {
                Scope::Global => String::new(),
                // An input's own cell type is spelt as the input (`Noise.rate`), as `--set` takes it.
                Scope::Cell(c) => {
                    format!("{}.", model.cell_types[c].name.trim_end_matches("$input"))
                }
                Scope::Synapse(s) => format!("{}.", model.synapse_types[s].name),
            };
            parameters.push((format!("{owner}{}", v.name), value, v.dim.to_string()));
        }
    }
    // Values a population or projection sets for itself in the spec (`population B = N[1]
    // { b = 3 }`, `project F: ... { w = 7 }`), unless a `--set` for that node replaces them.
    let own = model
        .populations
        .iter()
        .map(|(h, p)| (Node::Population(h), &p.overrides))
        .chain(
            model
                .projections
                .iter()
                .map(|(h, p)| (Node::Projection(h), &p.inits)),
        );
    for (node, values) in own {
        for &(var, expr) in values.iter() {
            let v = &model.variables[var];
            let replaced = overrides
                .iter()
                .any(|o| o.var == var && o.node == Some(node));
            if v.kind != VarKind::Param || v.regime.is_some() || replaced {
                continue;
            }
            if let Some(value) = neurograph_compiler::const_eval(model, expr) {
                parameters.push((
                    format!("{}.{}", model.node_name(node), v.name),
                    value,
                    v.dim.to_string(),
                ));
            }
        }
    }
    for o in overrides {
        if let Some(node) = o.node {
            let v = &model.variables[o.var];
            parameters.push((
                format!("{}.{}", model.node_name(node), v.name),
                o.value,
                v.dim.to_string(),
            ));
        }
    }
    parameters
}

/// The summary as printed by `neurograph run`.
pub fn summary_text(s: &RunSummary) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{} cells, {} synapses; simulated {} in {} steps\n",
        s.neurons,
        s.synapses,
        pretty(s.simulated_s, Dim::TIME),
        s.steps
    ));
    for p in &s.populations {
        if p.spiking {
            out.push_str(&format!(
                "  {:<12} {:>8} cells  {:>10} spikes  {:>9.3} Hz\n",
                p.name, p.size, p.spikes, p.rate_hz
            ));
        } else {
            out.push_str(&format!(
                "  {:<12} {:>8} cells  (no spike event: rate units)\n",
                p.name, p.size
            ));
        }
    }
    out.push_str(&format!(
        "setup {:.3} s, simulation {:.3} s wall, real-time factor {:.3}, {} synaptic events\n",
        s.setup_s,
        s.wall_s,
        s.real_time_factor(),
        s.synaptic_events
    ));
    for (name, lo, hi, counts) in &s.final_histograms {
        let bars: Vec<String> = counts.iter().map(|c| c.to_string()).collect();
        out.push_str(&format!(
            "final {name}: 10 bins from {lo:.4e} to {hi:.4e}: [{}]\n",
            bars.join(" ")
        ));
    }
    if s.interrupted {
        out.push_str(&format!(
            "interrupted: the trace holds the first {} that were simulated\n",
            pretty(s.simulated_s, Dim::TIME)
        ));
    }
    if s.failure.is_some() {
        out.push_str(&format!(
            "failed: the trace holds the first {} that were simulated\n",
            pretty(s.simulated_s, Dim::TIME)
        ));
    }
    out.push_str(&format!("trace written to {}\n", s.trace_dir.display()));
    out
}
