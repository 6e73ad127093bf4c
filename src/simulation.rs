//! The embedding API: compile a spec into a [`Model`], make [`Simulation`]s of it, step them,
//! read and write state and parameters by name, and write traces. A `Simulation` owns what it
//! needs (an `Arc` of the compiled model), is `Send`, and is the same machinery
//! `neurograph run` uses.
//!
//! ```no_run
//! use neurograph::{Backend, Model};
//! let model = Model::compile_file("specs/cuba.ng".as_ref())?;
//! let mut sim = model.simulation().seed(1).set("we", "1.7 mV").build()?;
//! sim.run_for("200 ms")?;
//! let (t, i) = sim.spikes("E")?;
//! let v = sim.state("E", "v")?;
//! sim.set_param("LIF.taum", "18 ms")?;
//! sim.run_for("200 ms")?;
//! sim.write_trace("traces/cuba".as_ref())?;
//! # Ok::<(), neurograph::Error>(())
//! ```

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use neurograph_compiler::ir::*;
use neurograph_compiler::quantity::parse_quantity;
use neurograph_compiler::units::Dim;
use neurograph_compiler::{Compiled, FsLoader};
use neurograph_grammar::{Diagnostic, SourceMap};
use neurograph_runtime::checkpoint::{Reader, Writer};
use neurograph_runtime::trace::{fnv1a64, write_trace, TraceMeta};
use neurograph_runtime::{params, NonFinite, Override, RunConfig, Sim, SimError};

pub use neurograph_runtime::trace::RunStatus;
pub use neurograph_runtime::Backend;

/// Everything that can go wrong when embedding neurograph. Each variant's text is complete and
/// says where (file:line:col with the source excerpt, for spec errors).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec has errors; the text renders every diagnostic as the CLI does.
    #[error("{rendered}")]
    Compile {
        rendered: String,
        /// One `file:line:col: severity: message` line per diagnostic.
        lines: Vec<String>,
        diagnostics: Vec<Diagnostic>,
    },
    /// Setting up or running the simulation failed (a data file, a bad value).
    #[error("{0}")]
    Run(String),
    /// A name that the model does not have (population, variable, parameter).
    #[error("{0}")]
    Name(String),
    /// A value that does not fit (unit, length, range).
    #[error("{0}")]
    Value(String),
    /// A state value became inf or NaN; the simulation stopped after that step.
    #[error("the simulation diverged: {}.{}[{}] became {} after {} steps", .0.node, .0.variable, .0.element, .0.value, .0.steps)]
    Diverged(NonFinite),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A compiled spec. Cheap to clone; every simulation made from it shares the compiled model.
#[derive(Clone)]
pub struct Model {
    program: Arc<Compiled>,
    sources: Arc<SourceMap>,
    spec_path: PathBuf,
    spec_text: Arc<str>,
}

impl Model {
    /// Read and compile a spec file; data paths in it are relative to its directory.
    pub fn compile_file(path: &Path) -> Result<Model, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Run(format!("cannot read {}: {e}", path.display())))?;
        Model::compile_text(path, text)
    }

    /// Compile spec text; data paths in it are relative to the current directory.
    pub fn compile_str(text: &str) -> Result<Model, Error> {
        Model::compile_text(Path::new("<string>"), text.to_string())
    }

    /// Compile spec text as if it were the file `path` (data paths relative to its directory).
    pub fn compile_text(path: &Path, text: String) -> Result<Model, Error> {
        let mut sources = SourceMap::new();
        let root = sources.add(path.display().to_string(), text.clone());
        let loader = FsLoader::for_spec(path);
        let output = neurograph_compiler::compile(&mut sources, root, &loader);
        if output.has_errors() {
            return Err(Error::Compile {
                rendered: crate::diagnostics::render_plain(&sources, &output.diagnostics),
                lines: output
                    .diagnostics
                    .iter()
                    .map(|d| crate::diagnostics::one_line(&sources, d))
                    .collect(),
                diagnostics: output.diagnostics,
            });
        }
        let compiled = output.compiled.expect("no errors means a model");
        Ok(Model {
            program: Arc::new(compiled),
            sources: Arc::new(sources),
            spec_path: path.to_path_buf(),
            spec_text: text.into(),
        })
    }

    /// A hash of every source file of the model (the spec and its imports) and of its name:
    /// what a checkpoint checks before it is resumed.
    pub fn fingerprint(&self) -> u64 {
        let mut text = self.program.model.name.clone();
        for f in self.sources.files() {
            text.push('\u{0}');
            text.push_str(&f.text);
        }
        neurograph_runtime::trace::fnv1a64_u64(&text)
    }

    /// The names of the model's token inputs (`input T = tokens(...)`), in spec order.
    pub fn token_inputs(&self) -> Vec<&str> {
        self.token_input_list().map(|(name, ..)| name).collect()
    }

    /// Token input `name`: its token file and vocabulary size.
    pub fn token_input(&self, name: &str) -> Option<(&str, u32)> {
        self.token_input_list()
            .find(|(n, ..)| *n == name)
            .map(|(_, path, vocab)| (path, vocab))
    }

    /// (name, token file, vocabulary size) of each token input, in spec order.
    fn token_input_list(&self) -> impl Iterator<Item = (&str, &str, u32)> {
        let m = &self.program.model;
        m.inputs.iter().filter_map(|(_, i)| match &i.kind {
            InputKind::Tokens { population, path } => Some((
                i.name.as_str(),
                path.as_str(),
                m.populations[*population].size,
            )),
            _ => None,
        })
    }

    /// The model's name (`model NAME` in the spec).
    pub fn name(&self) -> &str {
        &self.program.model.name
    }

    /// The compiled model and its side tables.
    pub fn compiled(&self) -> &Arc<Compiled> {
        &self.program
    }

    /// The sources, for rendering diagnostics.
    pub fn sources(&self) -> &SourceMap {
        &self.sources
    }

    /// Every parameter that can change without recompiling, as `set` spells it.
    pub fn parameters(&self) -> Vec<String> {
        params::all_params(&self.program.model)
    }

    /// Start describing a simulation of this model (seed, backend, parameter values).
    pub fn simulation(&self) -> SimulationBuilder {
        SimulationBuilder {
            model: self.clone(),
            seed: None,
            backend: Backend::Jit,
            sets: Vec::new(),
            si: Vec::new(),
            stop: None,
            threads: 1,
        }
    }

    /// A model from the parts the CLI already has (the compiled model and its sources).
    pub fn from_parts(
        program: Arc<Compiled>,
        sources: SourceMap,
        spec_path: &Path,
        spec_text: &str,
    ) -> Model {
        Model {
            program,
            sources: Arc::new(sources),
            spec_path: spec_path.to_path_buf(),
            spec_text: spec_text.into(),
        }
    }

    /// Settings of a simulation of this model: data paths start at the spec's directory.
    fn config(&self, seed: u64, backend: Backend, overrides: Vec<Override>) -> RunConfig {
        RunConfig {
            seed,
            backend,
            base_dir: self
                .spec_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            overrides,
        }
    }

    /// A run-time error as text, with the source excerpt when it has a place in the spec.
    fn sim_error(&self, e: SimError) -> Error {
        Error::Run(sim_error_text(&self.sources, e))
    }
}

/// A run-time error as text: with the source excerpt when it has a place in the spec.
pub(crate) fn sim_error_text(sources: &SourceMap, e: SimError) -> String {
    match e.span {
        Some(span) => {
            let text =
                crate::diagnostics::render_plain(sources, &[Diagnostic::error(span, e.message)]);
            text.strip_prefix("error: ")
                .unwrap_or(&text)
                .trim_end()
                .to_string()
        }
        None => e.message,
    }
}

/// Settings of a simulation before it is built.
pub struct SimulationBuilder {
    model: Model,
    seed: Option<u64>,
    backend: Backend,
    sets: Vec<(String, String)>,
    /// Values already resolved, in SI units (applied before `sets`).
    si: Vec<Override>,
    stop: Option<Arc<AtomicBool>>,
    threads: usize,
}

impl SimulationBuilder {
    /// Random seed (default: the spec's `run` block).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Which code simulates: `Backend::Jit` (default) or `Backend::Interp`.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// A parameter value, as `--set` takes it: `set("LIF.taum", "18 ms")`.
    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.sets.push((name.to_string(), value.to_string()));
        self
    }

    /// A parameter value as `--set` spells it: `"LIF.taum=18 ms"`.
    pub fn assignment(mut self, text: &str) -> Self {
        match text.split_once('=') {
            Some((name, value)) => self.sets.push((name.to_string(), value.to_string())),
            None => self.sets.push((text.to_string(), String::new())),
        }
        self
    }

    /// A parameter value in SI units, by name as `set` spells it (used to rebuild the
    /// simulation of a trace from its manifest's values).
    pub(crate) fn set_si(mut self, name: &str, value: f64) -> Result<Self, Error> {
        let (var, node) =
            params::parameter(&self.model.program.model, name).map_err(Error::Name)?;
        self.si.push(Override { var, node, value });
        Ok(self)
    }

    /// Threads for the fused population updates (default 1; `Simulation::set_threads`).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Use this flag to stop running calls (e.g. one a Ctrl-C handler sets).
    pub fn stop_flag(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// The parameter values given so far, resolved and checked.
    fn overrides(&self) -> Result<Vec<Override>, Error> {
        let m = &self.model.program.model;
        let mut overrides = self.si.clone();
        for (name, value) in &self.sets {
            let text = if value.is_empty() && !name.contains('=') {
                name.clone()
            } else {
                format!("{name}={value}")
            };
            overrides.push(params::resolve(m, &text).map_err(|e| self.model.sim_error(e))?);
        }
        params::check_overrides(m, &overrides).map_err(|e| self.model.sim_error(e))?;
        Ok(overrides)
    }

    /// Check the parameter values without setting anything up.
    pub fn check(&self) -> Result<(), Error> {
        self.overrides().map(|_| ())
    }

    /// Set up the simulation: initial values, connectivity, loaded data.
    pub fn build(self) -> Result<Simulation, Error> {
        // `overrides` has checked them.
        let overrides = self.overrides()?;
        let model = self.model;
        let m = &model.program.model;
        let config = model.config(self.seed.unwrap_or(m.run.seed), self.backend, overrides);
        let mut sim =
            Sim::new(Arc::clone(&model.program), &config).map_err(|e| model.sim_error(e))?;
        sim.set_threads(self.threads);
        Ok(Simulation {
            model,
            sim,
            config,
            stop: self.stop.unwrap_or_default(),
            requested_steps: 0,
            changed_mid_run: false,
            started: std::time::SystemTime::now(),
        })
    }
}

/// How a call that simulates ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every requested step was simulated.
    Done,
    /// The stop flag was set (another thread, a signal handler); the current step completed.
    Interrupted,
}

/// One running simulation of a [`Model`].
pub struct Simulation {
    model: Model,
    sim: Sim,
    config: RunConfig,
    stop: Arc<AtomicBool>,
    /// Steps asked for so far (the trace's requested duration).
    requested_steps: u64,
    /// Whether parameters or state were changed between steps (a run from the start with the
    /// same settings would then not repeat this one).
    changed_mid_run: bool,
    /// When this simulation was created (the trace's `started_utc`).
    started: std::time::SystemTime,
}

impl Simulation {
    /// Run the fused population updates on `threads` threads (1: the calling thread only).
    /// Each thread updates a range of the elements of a population with at least 1024 per
    /// thread; traces are the same for any number (every value and random draw is computed
    /// per element as on one thread).
    pub fn set_threads(&mut self, threads: usize) {
        self.sim.set_threads(threads);
    }

    /// Threads the fused population updates run on.
    pub fn threads(&self) -> usize {
        self.sim.threads()
    }

    /// Whether each kernel call of the step runs generated code, and if not, why (the kernel
    /// set is made before the first step; this makes it now if no step ran yet). Empty for
    /// the interpreter backend.
    pub fn kernel_decisions(&mut self) -> Vec<neurograph_runtime::jit::KernelDecision> {
        self.sim.kernel_decisions().to_vec()
    }

    /// The model this simulation runs.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Steps simulated so far.
    pub fn steps(&self) -> u64 {
        self.sim.step
    }

    /// Simulated time so far, seconds.
    pub fn time(&self) -> f64 {
        self.sim.step as f64 * self.sim.dt
    }

    /// The step size, seconds.
    pub fn dt(&self) -> f64 {
        self.sim.dt
    }

    /// The seed this simulation draws from.
    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    /// Set this flag (from any thread) to stop a running `step`/`run_for` at the end of the
    /// current step, or the next one before its first step. A run it stops clears it.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Use this flag to stop running calls from now on (e.g. one a signal handler sets).
    pub fn set_stop_flag(&mut self, stop: Arc<AtomicBool>) {
        self.stop = stop;
    }

    /// Simulate `n` steps.
    pub fn step(&mut self, n: u64) -> Result<Stopped, Error> {
        self.step_with_progress(n, &mut |_, _| {})
    }

    /// Simulate for a duration written with its unit (`"200 ms"`).
    pub fn run_for(&mut self, duration: &str) -> Result<Stopped, Error> {
        let (seconds, dim) = parse_quantity(duration).map_err(|e| Error::Value(e.to_string()))?;
        if dim != Dim::TIME || !(seconds >= 0.0 && seconds.is_finite()) {
            return Err(Error::Value(format!(
                "`{duration}` is not a non-negative time; write e.g. \"200 ms\""
            )));
        }
        self.step((seconds / self.sim.dt).round() as u64)
    }

    /// Simulate `n` steps, calling `progress(done, n)` about 200 times along the way.
    pub fn step_with_progress(
        &mut self,
        n: u64,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Stopped, Error> {
        self.requested_steps += n;
        let report_every = (n / 200).max(1);
        let done = self
            .sim
            .run(n, &self.stop, report_every, &mut |d| progress(d, n));
        self.outcome(done, n)
    }

    /// Simulate `n` steps, calling `on_step(simulation)` after each, which may read state and
    /// spikes (`fired`) or change parameters between steps.
    pub fn step_each(
        &mut self,
        n: u64,
        on_step: &mut dyn FnMut(&mut Simulation) -> Result<(), Error>,
    ) -> Result<Stopped, Error> {
        for k in 0..n {
            match self.step(1)? {
                Stopped::Done => on_step(self)?,
                Stopped::Interrupted => {
                    self.requested_steps += n - k - 1;
                    return Ok(Stopped::Interrupted);
                }
            }
        }
        Ok(Stopped::Done)
    }

    /// Scan every state value now (runs check every `FINITE_CHECK_EVERY` steps; this is the
    /// check at the end of a run): `Error::Diverged` when one is inf or NaN.
    pub fn check_finite(&mut self) -> Result<(), Error> {
        if self.sim.check_finite() {
            Ok(())
        } else {
            Err(Error::Diverged(
                self.sim.non_finite.clone().expect("set when a check fails"),
            ))
        }
    }

    fn outcome(&mut self, done: u64, asked: u64) -> Result<Stopped, Error> {
        if let Some(e) = self.sim.take_data_fault() {
            return Err(self.model.sim_error(e));
        }
        if let Some(nf) = &self.sim.non_finite {
            return Err(Error::Diverged(nf.clone()));
        }
        Ok(if done < asked {
            // The stop request is answered: the next run goes on (a request made before a run
            // starts stops it at once).
            self.stop.store(false, std::sync::atomic::Ordering::SeqCst);
            Stopped::Interrupted
        } else {
            Stopped::Done
        })
    }

    fn population(&self, name: &str) -> Result<Handle<Population>, Error> {
        match self.node(name)? {
            Node::Population(p) => Ok(p),
            Node::Projection(_) => Err(Error::Name(format!("`{name}` is not a population"))),
        }
    }

    fn node(&self, name: &str) -> Result<Node, Error> {
        let m = &self.model.program.model;
        if let Some((h, _)) = m.populations.iter().find(|(_, p)| p.name == name) {
            return Ok(Node::Population(h));
        }
        if let Some((h, _)) = m.projections.iter().find(|(_, p)| p.name == name) {
            return Ok(Node::Projection(h));
        }
        let names: Vec<&str> = m
            .populations
            .iter()
            .map(|(_, p)| p.name.as_str())
            .chain(m.projections.iter().map(|(_, p)| p.name.as_str()))
            .collect();
        Err(Error::Name(format!(
            "no population or projection `{name}`; there are {}",
            names.join(", ")
        )))
    }

    fn variable(&self, node: Node, name: &str) -> Result<Handle<Variable>, Error> {
        let m = &self.model.program.model;
        let nd = self.sim.node_index(node);
        let mut found = self.sim.nodes[nd]
            .vars
            .keys()
            .copied()
            .filter(|&v| m.variables[v].name == name);
        found.next().ok_or_else(|| {
            let mut names: Vec<&str> = self.sim.nodes[nd]
                .vars
                .keys()
                .map(|&v| m.variables[v].name.as_str())
                .collect();
            names.sort_unstable();
            Error::Name(format!(
                "`{}` has no variable `{name}`; it has {}",
                m.node_name(node),
                names.join(", ")
            ))
        })
    }

    /// The values of a variable (state or parameter) of a population or projection, one per
    /// element, in SI units. Borrowed when stored per element.
    pub fn state(&self, node: &str, var: &str) -> Result<Cow<'_, [f64]>, Error> {
        let n = self.node(node)?;
        let v = self.variable(n, var)?;
        let nd = self.sim.node_index(n);
        let size = self.sim.nodes[nd].size;
        // An event-driven synaptic variable: its values advanced to now.
        if let Some(values) = self.sim.current_values_if_lazy(n, v) {
            return Ok(Cow::Owned(values));
        }
        Ok(match &self.sim.nodes[nd].vars[&v] {
            neurograph_runtime::state::Store::Elements(xs) => Cow::Borrowed(xs),
            other => Cow::Owned(
                (0..size)
                    .map(|e| {
                        let rs = self.model.program.model.variables[v]
                            .regime
                            .map_or(0, |r| self.sim.regime_state[r.index()] as usize);
                        other.get(e, rs)
                    })
                    .collect(),
            ),
        })
    }

    /// Replace a variable's values (SI units), one per element, between steps.
    pub fn set_state(&mut self, node: &str, var: &str, values: &[f64]) -> Result<(), Error> {
        let n = self.node(node)?;
        let v = self.variable(n, var)?;
        self.sim
            .set_values(n, v, values)
            .map_err(|e| Error::Value(e.message))?;
        self.changed_mid_run = true;
        Ok(())
    }

    /// A parameter's current value in SI units: `"we"`, `"LIF.taum"` (the type's value where
    /// it is the same on every population) or `"E.taum"` (that population's).
    pub fn param(&self, name: &str) -> Result<f64, Error> {
        let m = &self.model.program.model;
        let (var, node) = params::parameter(m, name).map_err(Error::Name)?;
        let nodes: Vec<Option<Node>> = match (node, m.variables[var].scope) {
            (Some(n), _) => vec![Some(n)],
            (None, Scope::Global) => vec![None],
            (None, Scope::Cell(ct)) => m
                .populations
                .iter()
                .filter(|(_, p)| p.cell_type == ct)
                .map(|(h, _)| Some(Node::Population(h)))
                .collect(),
            (None, Scope::Synapse(st)) => m
                .projections
                .iter()
                .filter(|(_, p)| p.synapse == st)
                .map(|(h, _)| Some(Node::Projection(h)))
                .collect(),
        };
        let values: Vec<Option<f64>> = nodes
            .iter()
            .map(|&n| self.sim.param_value(var, n))
            .collect();
        match values.first() {
            Some(Some(x)) if values.iter().all(|v| *v == Some(*x)) => Ok(*x),
            None => Err(Error::Name(format!(
                "`{name}` is not used by any population or projection"
            ))),
            _ => Err(Error::Value(format!(
                "`{name}` differs between elements or populations; read it per population (`Population.{}`) or with `state`",
                m.variables[var].name
            ))),
        }
    }

    /// Change a parameter between steps, with its unit: `set_param("LIF.taum", "18 ms")`.
    /// `Type.p` changes it on every population or projection of that type, `Population.p` on
    /// that one only. Both backends go on bit-identically after the change.
    pub fn set_param(&mut self, name: &str, value: &str) -> Result<(), Error> {
        let m = &self.model.program.model;
        let (var, node) = params::parameter(m, name).map_err(Error::Name)?;
        let x =
            params::value_of(m, var, value).map_err(|e| Error::Value(format!("{name}: {e}")))?;
        self.set_param_si(var, node, x)
    }

    fn set_param_si(
        &mut self,
        var: Handle<Variable>,
        node: Option<Node>,
        value: f64,
    ) -> Result<(), Error> {
        let o = Override { var, node, value };
        self.sim.set_param(o).map_err(|e| self.model.sim_error(e))?;
        self.config.overrides.push(o);
        // Even at step 0: initial values were computed with the old value, which a run from
        // the start with the new one would not repeat.
        self.changed_mid_run = true;
        Ok(())
    }

    /// Silence elements of a population (local indices; added to those already silenced):
    /// from the next step on their spikes are neither delivered nor recorded nor counted, and
    /// no reset follows them (the cells' own equations go on). Both backends do exactly the
    /// same; checkpoints carry the silenced set. An ablation tool: `neurograph analyze TRACE
    /// groups` re-runs a trace's simulation with candidate neurons silenced.
    pub fn silence(&mut self, population: &str, elements: &[u32]) -> Result<(), Error> {
        let p = self.population(population)?;
        self.sim
            .silence(p, elements)
            .map_err(|e| Error::Value(e.message))?;
        if self.sim.step > 0 && !elements.is_empty() {
            self.changed_mid_run = true;
        }
        Ok(())
    }

    /// The silenced elements of a population, ascending.
    pub fn silenced(&self, population: &str) -> Result<&[u32], Error> {
        let p = self.population(population)?;
        Ok(&self.sim.silenced[p.index()])
    }

    /// Silence no element any more.
    pub fn clear_silenced(&mut self) {
        if self.sim.silenced.iter().any(|l| !l.is_empty()) && self.sim.step > 0 {
            self.changed_mid_run = true;
        }
        self.sim.clear_silenced();
    }

    /// The elements of a population that fired in the last step (spike event).
    pub fn fired(&self, population: &str) -> Result<&[u32], Error> {
        let p = self.population(population)?;
        Ok(self
            .sim
            .spike_event(p)
            .and_then(|k| self.sim.spikes[p.index()].get(k))
            .map_or(&[][..], Vec::as_slice))
    }

    /// The spikes recorded for a population (`record P.spikes` in the spec) so far: times in
    /// seconds and element indices.
    pub fn spikes(&self, population: &str) -> Result<(Vec<f64>, Vec<u32>), Error> {
        let p = self.population(population)?;
        let m = &self.model.program.model;
        let k = m.records.iter().position(|r| {
            matches!(&r.what, RecordWhat::Events { population, event } if *population == p && event == "spike")
        });
        let Some(k) = k else {
            return Err(Error::Name(format!(
                "the spikes of `{population}` are not recorded; add `record {population}.spikes` to the spec"
            )));
        };
        let rec = &self.sim.recordings[k];
        Ok((
            rec.times.clone(),
            rec.values.iter().map(|&i| i as u32).collect(),
        ))
    }

    /// Spikes per population since the start.
    pub fn spike_count(&self, population: &str) -> Result<u64, Error> {
        let p = self.population(population)?;
        Ok(self.sim.spike_counts[p.index()])
    }

    /// After `Error::Diverged`: find the exact step in which the first value became
    /// non-finite by simulating again from the start (runs are deterministic) up to the last
    /// check that passed, then step by step. This simulation then holds the state and records
    /// up to and including that step. When parameters or state were changed between steps,
    /// a run from the start would not repeat this one: the value found by the check is kept.
    pub fn locate_divergence(&mut self) -> Result<NonFinite, Error> {
        let found = self
            .sim
            .non_finite
            .clone()
            .ok_or_else(|| Error::Run("the simulation has not diverged".into()))?;
        if self.changed_mid_run {
            return Ok(found);
        }
        let mut again = Sim::new(Arc::clone(&self.model.program), &self.config)
            .map_err(|e| self.model.sim_error(e))?;
        again.silenced = self.sim.silenced.clone();
        again.run(
            self.sim.last_finite_check,
            &AtomicBool::new(false),
            0,
            &mut |_| {},
        );
        match again.locate_non_finite(found.steps) {
            Some(nf) => {
                self.sim = again;
                Ok(nf)
            }
            None => Ok(found),
        }
    }

    /// Feed token `token` to the token input `input` (`input T = tokens(...)`) from the next
    /// step on, in place of the file's tokens (`neurograph generate` drives a language model
    /// so); `None` returns to the file.
    pub fn set_token(&mut self, input: &str, token: Option<u32>) -> Result<(), Error> {
        let found = self
            .model
            .token_input(input)
            .map(|(path, vocab)| (path.to_string(), vocab));
        let Some((path, vocab)) = found else {
            let names = self.model.token_inputs();
            return Err(Error::Name(format!(
                "no token input `{input}`; the model's: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )));
        };
        match token {
            Some(t) if t >= vocab => Err(Error::Value(format!(
                "token {t} is not below the vocabulary size {vocab} of `{input}`"
            ))),
            Some(t) => {
                self.sim.token_override.insert(path, t);
                self.changed_mid_run = true;
                Ok(())
            }
            None => {
                self.sim.token_override.remove(&path);
                Ok(())
            }
        }
    }

    /// The runtime simulation (for the NIR export's probes of the built network).
    pub(crate) fn runtime(&self) -> &Sim {
        &self.sim
    }

    /// Write a trace directory of what was recorded so far (the same format as
    /// `neurograph run`; an earlier trace there is replaced only when neurograph wrote it).
    pub fn write_trace(&mut self, dir: &Path) -> Result<PathBuf, Error> {
        let status = if self.sim.step < self.requested_steps {
            RunStatus::Interrupted
        } else {
            RunStatus::Complete
        };
        self.write_trace_as(dir, status)
    }

    /// Write what was recorded so far as an NWB 2 file (`neurograph export --nwb` of the
    /// trace `write_trace` would write; the trace goes to a temporary directory beside
    /// `path` and is removed afterwards).
    pub fn write_nwb(
        &mut self,
        path: &Path,
        options: &neurograph_interchange::nwb::NwbOptions,
    ) -> Result<neurograph_interchange::nwb::NwbSummary, Error> {
        if path.exists() && !options.overwrite {
            return Err(Error::Value(format!(
                "{} exists; pass overwrite to replace it",
                path.display()
            )));
        }
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map_or("out".into(), |n| n.to_string_lossy().into_owned());
        let tmp = parent.join(format!(".{name}.trace-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let result = self.write_trace(&tmp).and_then(|_| {
            neurograph_interchange::nwb::export_trace(&tmp, path, options)
                .map_err(|e| Error::Run(e.to_string()))
        });
        let _ = std::fs::remove_dir_all(&tmp);
        result
    }

    /// `write_trace` with the status the manifest gives (`failed` with its reason, for a run
    /// stopped by an error).
    pub fn write_trace_as(&mut self, dir: &Path, status: RunStatus) -> Result<PathBuf, Error> {
        self.sim.finish_records();
        let m = &self.model.program.model;
        let meta = TraceMeta {
            spec_path: self.model.spec_path.display().to_string(),
            spec_hash: fnv1a64(&self.model.spec_text),
            seed: self.config.seed,
            simulated_s: self.time(),
            requested_s: self.requested_steps as f64 * m.run.dt,
            status,
            parameters: crate::run::parameter_values(m, &self.config.overrides),
            spec_text: self.model.spec_text.to_string(),
            started: self.started,
        };
        write_trace(dir, &self.sim, &meta)?;
        Ok(dir.to_path_buf())
    }

    /// The complete state of this simulation as bytes: resuming from them (`restore`), in
    /// this process or another, continues the run bit-identically. Holds the settings
    /// (seed, backend, parameter values), the spec's fingerprint and neurograph's version, so
    /// a checkpoint is refused by another model or version.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes.extend_from_slice(CHECKPOINT_MAGIC);
        w.str(env!("CARGO_PKG_VERSION"));
        w.u64(self.model.fingerprint());
        w.str(&self.model.spec_path.display().to_string());
        w.str(&self.model.spec_text);
        w.u64(self.config.seed);
        w.u8(match self.config.backend {
            Backend::Interp => 0,
            Backend::Jit => 1,
            Backend::JitScalar => 2,
        });
        w.u64(self.config.overrides.len() as u64);
        for o in &self.config.overrides {
            w.u64(o.var.index() as u64);
            match o.node {
                None => w.u8(0),
                Some(Node::Population(h)) => {
                    w.u8(1);
                    w.u64(h.index() as u64);
                }
                Some(Node::Projection(h)) => {
                    w.u8(2);
                    w.u64(h.index() as u64);
                }
            }
            w.f64(o.value);
        }
        w.u64(self.requested_steps);
        w.u8(self.changed_mid_run as u8);
        self.sim.write_state(&mut w);
        w.bytes
    }

    /// Write `snapshot()` to a file, atomically (a temporary sibling renamed into place), so
    /// an interruption never leaves a half-written checkpoint where a good one was.
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), Error> {
        let bytes = self.snapshot();
        let name = path
            .file_name()
            .map_or("checkpoint".into(), |n| n.to_string_lossy().into_owned());
        let tmp = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        let written = std::fs::write(&tmp, &bytes).and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Run(format!(
                "cannot write the checkpoint {}: {e}",
                path.display()
            )));
        }
        Ok(())
    }

    /// Continue from a checkpoint of a simulation of `model` (see `snapshot`).
    pub fn restore(model: &Model, bytes: &[u8]) -> Result<Simulation, Error> {
        let header = CheckpointHeader::read(bytes)?;
        if header.fingerprint != model.fingerprint() {
            return Err(Error::Value(format!(
                "this checkpoint was written by a simulation of another model (or of {} before it changed); resume it with the spec it was written from",
                header.spec_path
            )));
        }
        header.resume(model)
    }

    /// `restore` from a file.
    pub fn load_checkpoint(model: &Model, path: &Path) -> Result<Simulation, Error> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Run(format!("cannot read {}: {e}", path.display())))?;
        Simulation::restore(model, &bytes)
    }

    /// Count what was asked for so far as done: the next calls' steps are all that is
    /// requested (a resumed run given a new duration).
    pub fn reset_requested_steps(&mut self) {
        self.requested_steps = self.sim.step;
    }

    /// Steps this simulation was asked to run so far (all calls together).
    pub fn requested_steps(&self) -> u64 {
        self.requested_steps
    }

    /// The simulation underneath, for what this API does not cover yet.
    pub fn raw(&self) -> &Sim {
        &self.sim
    }
}

/// The first bytes of every checkpoint file.
const CHECKPOINT_MAGIC: &[u8; 8] = b"NGCKPT\x00\x01";

/// What a checkpoint says about where it came from, read before any state.
pub struct CheckpointHeader<'a> {
    /// Path of the spec the checkpointed simulation was compiled from.
    pub spec_path: String,
    /// That spec's text (imports are read again from disk and must not have changed).
    pub spec_text: String,
    fingerprint: u64,
    seed: u64,
    backend: Backend,
    overrides: Vec<(u64, u8, u64, f64)>,
    requested_steps: u64,
    changed_mid_run: bool,
    rest: Reader<'a>,
}

impl<'a> CheckpointHeader<'a> {
    /// Read the header, refusing files that are not neurograph checkpoints or come from
    /// another version.
    pub fn read(bytes: &'a [u8]) -> Result<CheckpointHeader<'a>, Error> {
        if bytes.len() < 8 || &bytes[..8] != CHECKPOINT_MAGIC {
            return Err(Error::Value("not a neurograph checkpoint".into()));
        }
        let mut r = Reader::new(&bytes[8..]);
        let e = |e: SimError| Error::Value(e.message);
        let version = r.str("the version").map_err(e)?;
        if version != env!("CARGO_PKG_VERSION") {
            return Err(Error::Value(format!(
                "this checkpoint was written by neurograph {version}; this is {}, whose state layout may differ: resume it with neurograph {version}",
                env!("CARGO_PKG_VERSION")
            )));
        }
        let fingerprint = r.u64("the model fingerprint").map_err(e)?;
        let spec_path = r.str("the spec path").map_err(e)?;
        let spec_text = r.str("the spec").map_err(e)?;
        let seed = r.u64("the seed").map_err(e)?;
        let backend = match r.u8("the backend").map_err(e)? {
            0 => Backend::Interp,
            1 => Backend::Jit,
            _ => Backend::JitScalar,
        };
        let n = r.u64("parameter values").map_err(e)?;
        let mut overrides = Vec::new();
        for _ in 0..n.min(1 << 20) {
            let var = r.u64("a parameter value").map_err(e)?;
            let tag = r.u8("a parameter value").map_err(e)?;
            let node = if tag == 0 {
                0
            } else {
                r.u64("a parameter value").map_err(e)?
            };
            overrides.push((var, tag, node, r.f64("a parameter value").map_err(e)?));
        }
        let requested_steps = r.u64("the requested steps").map_err(e)?;
        let changed_mid_run = r.u8("the run's changes").map_err(e)? != 0;
        Ok(CheckpointHeader {
            spec_path,
            spec_text,
            fingerprint,
            seed,
            backend,
            overrides,
            requested_steps,
            changed_mid_run,
            rest: r,
        })
    }

    /// Build a simulation of `model` with the checkpoint's settings and load its state.
    pub fn resume(mut self, model: &Model) -> Result<Simulation, Error> {
        let m = &model.program.model;
        let bad = || Error::Value("the checkpoint does not fit this model".to_string());
        let mut overrides = Vec::new();
        for &(var, tag, node, value) in &self.overrides {
            let var = var as usize;
            if var >= m.variables.len() {
                return Err(bad());
            }
            let node = match tag {
                0 => None,
                1 if (node as usize) < m.populations.len() => {
                    Some(Node::Population(Handle::new(node as usize)))
                }
                2 if (node as usize) < m.projections.len() => {
                    Some(Node::Projection(Handle::new(node as usize)))
                }
                _ => return Err(bad()),
            };
            overrides.push(Override {
                var: Handle::new(var),
                node,
                value,
            });
        }
        let config = model.config(self.seed, self.backend, overrides);
        let mut sim =
            Sim::new(Arc::clone(&model.program), &config).map_err(|e| model.sim_error(e))?;
        sim.read_state(&mut self.rest)
            .map_err(|e| Error::Value(e.message))?;
        if !self.rest.at_end() {
            return Err(bad());
        }
        Ok(Simulation {
            model: model.clone(),
            sim,
            config,
            stop: Arc::new(AtomicBool::new(false)),
            requested_steps: self.requested_steps,
            changed_mid_run: self.changed_mid_run,
            // The resumed part's start: a checkpoint does not keep wall-clock times.
            started: std::time::SystemTime::now(),
        })
    }

    /// The checkpoint's fingerprint matches `model`.
    pub fn matches(&self, model: &Model) -> bool {
        self.fingerprint == model.fingerprint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulations_and_models_move_between_threads() {
        fn is_send<T: Send>() {}
        is_send::<Simulation>();
        is_send::<Model>();
    }
}
