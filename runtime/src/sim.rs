//! The simulation: set-up (initial values, connectivity), the step loop that calls the
//! kernels of `neurograph_compiler::abi::step_schedule` in order, and the monitors.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use neurograph_compiler::abi::{step_schedule, KernelCall};
use neurograph_compiler::ir::*;
use neurograph_compiler::{const_eval, Compiled, Info};

use crate::eval::{Col, Ctx};
use crate::npy::Array;
use crate::rng::Stream;
use crate::state::*;

/// A run-time problem: a missing or malformed file, a bad override. The message is complete;
/// `span` locates it in the spec when it comes from there.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SimError {
    pub message: String,
    pub span: Option<neurograph_compiler::Span>,
}

impl SimError {
    pub fn new(message: impl Into<String>) -> SimError {
        SimError {
            message: message.into(),
            span: None,
        }
    }

    pub(crate) fn at(span: neurograph_compiler::Span, message: impl Into<String>) -> SimError {
        SimError {
            message: message.into(),
            span: Some(span),
        }
    }
}

/// A state value that is not finite (inf or NaN): where it is and when it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct NonFinite {
    /// Population, projection or `model` (model-level state).
    pub node: String,
    pub variable: String,
    pub element: usize,
    pub value: f64,
    /// Steps simulated when it was found (it became non-finite in step `steps - 1`, whose time
    /// is `(steps - 1) * dt`, when found by `locate_non_finite`).
    pub steps: u64,
}

/// How often `Sim::run` looks for non-finite state, in steps: a scan of every state value,
/// rare enough to cost well under 1 % of a step loop.
pub const FINITE_CHECK_EVERY: u64 = 100;

/// An error, located when the place is known.
fn located(span: Option<neurograph_compiler::Span>, message: String) -> SimError {
    SimError { message, span }
}

/// An I/O error in words, naming a directory where a file was expected.
fn file_error(path: &std::path::Path, e: &std::io::Error) -> String {
    if path.is_dir() {
        "it is a directory, not a file".to_string()
    } else {
        e.to_string()
    }
}

/// Where `load(...)` expression `h` is used: the variable, population override or projection
/// whose value reads it.
fn load_site(model: &Model, h: Handle<Expr>) -> Option<neurograph_compiler::Span> {
    let reads = |root: Handle<Expr>| {
        let mut pending = vec![root];
        let mut seen = 0usize;
        while let Some(e) = pending.pop() {
            seen += 1;
            if e == h {
                return true;
            }
            if seen > 100_000 {
                return false;
            }
            match &model.exprs[e] {
                Expr::Unary(_, a) => pending.push(*a),
                Expr::Binary(_, a, b) => pending.extend([*a, *b]),
                Expr::Call(_, args) | Expr::Array(args) => pending.extend(args.iter().copied()),
                _ => {}
            }
        }
        false
    };
    if let Some((_, v)) = model.variables.iter().find(|(_, v)| reads(v.init)) {
        return Some(v.span);
    }
    if let Some((_, p)) = model
        .populations
        .iter()
        .find(|(_, p)| p.overrides.iter().any(|&(_, e)| reads(e)))
    {
        return Some(p.span);
    }
    model
        .projections
        .iter()
        .find(|(_, p)| p.inits.iter().any(|&(_, e)| reads(e)))
        .map(|(_, p)| p.span)
}

/// Whether every value is finite, in one pass that vectorises: `x - x` is 0 for a finite x and
/// NaN otherwise, summed in eight independent lanes.
#[allow(clippy::eq_op)] // `x - x` is the point: 0 for finite values, NaN for inf and NaN
fn all_finite(values: &[f64]) -> bool {
    let mut acc = [0.0f64; 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k] - c[k];
        }
    }
    let tail: f64 = rest.iter().map(|x| x - x).sum();
    acc.iter().sum::<f64>() + tail == 0.0
}

/// Which code evaluates the model's expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The reference interpreter.
    #[default]
    Interp,
    /// Cranelift-compiled expression kernels (falling back to the interpreter for what they do
    /// not cover), with SIMD where it pays.
    Jit,
    /// The JIT without SIMD (to check that both code paths agree).
    JitScalar,
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub seed: u64,
    pub backend: Backend,
    /// Directory that relative data paths in the spec start from.
    pub base_dir: PathBuf,
    /// Parameter values replacing the spec's defaults (SI units).
    pub overrides: Vec<Override>,
}

/// A parameter value replacing the spec's default (SI units): everywhere the parameter lives
/// (`node` is `None`: a model-level parameter, or a cell or synapse type's parameter on every
/// population or projection of that type), or on one population or projection only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Override {
    pub var: Handle<Variable>,
    pub node: Option<Node>,
    pub value: f64,
}

/// The value overriding `var` on `node` (`None`: model level): one given for that node wins
/// over one for every node; among equals, the last given.
pub fn override_for(
    overrides: &[Override],
    var: Handle<Variable>,
    node: Option<Node>,
) -> Option<f64> {
    let own = overrides
        .iter()
        .rev()
        .find(|o| o.var == var && o.node.is_some() && o.node == node);
    own.or_else(|| {
        overrides
            .iter()
            .rev()
            .find(|o| o.var == var && o.node.is_none())
    })
    .map(|o| o.value)
}

/// Recorded data of one `record` item.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub times: Vec<f64>,
    /// Event indices, or sampled values (rows of `width`).
    pub values: Vec<f64>,
    pub width: usize,
}

/// What a projection's delivery parts were chosen for: the threads, and whether sharing is
/// forced (`Sim::share_always`).
pub(crate) type SplitKey = (usize, bool);

pub struct Sim {
    /// The compiled model, shared with every other simulation of it.
    pub(crate) program: Arc<Compiled>,
    pub seed: u64,
    pub dt: f64,
    pub step: u64,
    pub f32_state: bool,
    pub n_pops: usize,
    /// Populations, then projections, then one element standing for model-level scope.
    pub nodes: Vec<NodeState>,
    pub globals: VarMap<Store>,
    pub conn: Vec<Connectivity>,
    pub pre_maps: Vec<EndpointMap>,
    pub post_maps: Vec<EndpointMap>,
    pub regime_state: Vec<u32>,
    /// Per population and event (in the cell type's order): local indices that fired this step.
    pub spikes: Vec<Vec<Vec<u32>>>,
    pub ref_until: Vec<Vec<u64>>,
    pub refractory_now: Vec<Vec<bool>>,
    pub queues: Vec<Option<DelayQueue>>,
    pub arrays: HashMap<String, Array>,
    /// The tokens of each token file: its bytes, or the ids of an `.npy` array.
    pub token_files: HashMap<String, Vec<u32>>,
    /// Tokens set from outside for the next steps (`neurograph generate`), by token file:
    /// they replace the file's token until changed or removed.
    pub token_override: HashMap<String, u32>,
    /// The step the current document started in (positions, as `rope`'s, count from it).
    pub position_origin: u64,
    /// The regime states a run starts in (a document starts in them again).
    initial_regimes: Vec<u32>,
    /// Token inputs that start documents: (token file, the starting token, cycled).
    document_tokens: Vec<(String, u32, bool)>,
    /// Spike trains from files per input population: (step, local index), sorted.
    pub spike_trains: HashMap<usize, Vec<(u64, u32)>>,
    pub schedule: Vec<KernelCall>,
    pub(crate) exact: HashMap<usize, crate::kernels::ExactPlan>,
    pub recordings: Vec<Recording>,
    /// Number of synaptic events delivered (on pre and on post), for reports.
    pub events_delivered: u64,
    /// Spikes per population since the start of the run.
    pub spike_counts: Vec<u64>,
    /// Per population: the silenced elements as sorted, distinct local indices (see
    /// [`Sim::silence`]); empty when none is.
    pub silenced: Vec<Vec<u32>>,
    /// Per population: which of its event lists holds its spikes (the `spike` event, or the
    /// list a spike file fills); `None` when it cannot spike. Derived from the model.
    pub(crate) spike_event: Vec<Option<usize>>,
    /// Per population: whether it is a Poisson input whose rate reads the time, checked every
    /// step. Derived from the model.
    pub(crate) time_varying_rate: Vec<bool>,
    /// Per population: its pending spikes when it is a population of event-driven Poisson
    /// sources (`poisson::is_event_driven`).
    pub poisson: Vec<Option<crate::poisson::PoissonSources>>,
    /// Per projection: the state of its event-driven variables (`lazy`), when it has some.
    /// Their stored values lag; read them through `current_values` or `Simulation::state`.
    pub lazy: Vec<Option<crate::lazy::LazyState>>,
    /// Per projection: the synapse variables nothing writes after they are built
    /// (`layout.constant`; a static weight). `check_finite` checks them once. The layout
    /// pass also says which columns and synapses an earlier projection shares.
    layout: neurograph_compiler::layout::Plan,
    /// Whether `check_finite` has checked the constant synapse variables.
    constant_vars_checked: bool,
    pub base_dir: PathBuf,
    /// Hash of each node's name: the high half of the element coordinate of random draws.
    pub node_keys: Vec<u64>,
    /// Compiled kernels, with the JIT backend.
    pub jit: Option<crate::jit::JitState>,
    /// Populations whose fused kernel already detected this step's spikes.
    pub(crate) fused_this_step: Vec<bool>,
    /// Per population, once known: its fused-kernel set-up, or `None` when it does not qualify.
    pub(crate) fused_setups: Vec<Option<Option<std::rc::Rc<crate::jit::FusedSetup>>>>,
    /// Per node, once known, the set-up of generated event code (projections: `on pre`, `on
    /// post`; populations: per cell event), or `None` when it does not qualify.
    pub(crate) event_setups: Vec<Vec<Option<Option<std::rc::Rc<crate::jit::DeliverySetup>>>>>,
    /// Scratch values of generated event code.
    pub(crate) scratch: Vec<f64>,
    /// Per post endpoint element: the sums of a coupling (generated code adds into it).
    pub(crate) coupling_acc: Vec<f64>,
    /// Calls of generated fused population updates and event code so far (what the JIT
    /// backend ran as whole kernels rather than expression by expression).
    pub fused_calls: u64,
    /// The kernel set, made before the first step (`kernel_decisions`).
    pub(crate) kernel_decisions: Option<Vec<crate::jit::KernelDecision>>,
    /// Worker threads for fused population updates (`set_threads`); `None`: one thread.
    pub(crate) pool: Option<crate::pool::Pool>,
    /// Share every fused update with at least this many elements per thread, without timing
    /// whether it pays (`share_always`); `None`: the timed choice, from 1024 per thread.
    pub(crate) share_always: Option<usize>,
    /// Fused-kernel calls shared between threads so far.
    pub shared_calls: u64,
    /// Deliveries of delayed events split by post element between threads so far.
    pub split_deliveries: u64,
    /// Per `EventCode::kind`: on pre, on post, cell events, couplings, on step.
    pub event_code_calls: [u64; 5],
    /// Spiking sources and due synapses of a projection, reused from step to step.
    pub(crate) buf_sources: Vec<u32>,
    /// Due synapses per part of a delivery (`Sim::delivery_parts`).
    pub(crate) buf_dues: Vec<Vec<u32>>,
    /// Per projection: the threads and forced sharing its delay ring's parts were chosen for
    /// (`Sim::delivery_parts`).
    pub(crate) split_keys: Vec<Option<SplitKey>>,
    /// Scratch per part of a delivery on several threads.
    pub(crate) scratch_parts: Vec<Vec<f64>>,
    /// The first non-finite state value `run` found; the run stops there.
    pub non_finite: Option<NonFinite>,
    /// Steps simulated at the last check that found every state value finite.
    pub last_finite_check: u64,
    /// A data file that does not fit where it is used (found while evaluating); set-up and
    /// `run` turn it into an error.
    pub(crate) data_fault: std::cell::RefCell<Option<SimError>>,
}

impl Sim {
    /// Run fused population updates on `threads` threads (1: this thread only): each thread
    /// updates a range of the elements of a population large enough to share. Traces do not
    /// depend on the number (every value and draw is computed per element as on one thread).
    pub fn set_threads(&mut self, threads: usize) {
        let current = self.pool.as_ref().map_or(1, crate::pool::Pool::threads);
        if threads.max(1) != current {
            self.pool = (threads > 1).then(|| crate::pool::Pool::new(threads));
        }
    }

    /// Share every fused update with at least `min_per_thread` elements per thread between
    /// the threads, without timing whether it pays (tests use it to check that traces do not
    /// depend on the threads).
    pub fn share_always(&mut self, min_per_thread: usize) {
        self.share_always = Some(min_per_thread.max(1));
    }

    /// Threads fused population updates run on.
    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, crate::pool::Pool::threads)
    }

    /// The compiled model this simulation runs.
    pub fn model(&self) -> &Model {
        &self.program.model
    }

    /// The validation side tables of the model.
    pub fn info(&self) -> &Info {
        &self.program.info
    }

    /// The compiled model, shared.
    pub fn program(&self) -> &Arc<Compiled> {
        &self.program
    }

    pub fn proj_of(&self, node: usize) -> usize {
        node - self.n_pops
    }

    pub fn global_node(&self) -> usize {
        self.nodes.len() - 1
    }

    /// Build the initial state: parameters, initial values, connectivity, synapse values.
    pub fn new(program: Arc<Compiled>, config: &RunConfig) -> Result<Sim, SimError> {
        let shared = Arc::clone(&program);
        let (model, info) = (&shared.model, &shared.info);
        let n_pops = model.populations.len();
        let mut sim = Sim {
            program,
            seed: config.seed,
            dt: model.run.dt,
            step: 0,
            f32_state: model.run.precision == Precision::F32,
            n_pops,
            nodes: vec![NodeState::default(); n_pops + model.projections.len() + 1],
            globals: VarMap::default(),
            conn: vec![Connectivity::default(); model.projections.len()],
            pre_maps: vec![EndpointMap::default(); model.projections.len()],
            post_maps: vec![EndpointMap::default(); model.projections.len()],
            regime_state: Vec::new(),
            spikes: Vec::new(),
            ref_until: Vec::new(),
            refractory_now: Vec::new(),
            queues: vec![None; model.projections.len()],
            arrays: HashMap::new(),
            token_files: HashMap::new(),
            token_override: HashMap::new(),
            position_origin: 0,
            initial_regimes: Vec::new(),
            document_tokens: Vec::new(),
            spike_trains: HashMap::new(),
            schedule: step_schedule(model, info),
            exact: HashMap::new(),
            recordings: vec![Recording::default(); model.records.len()],
            events_delivered: 0,
            spike_counts: vec![0; n_pops],
            silenced: vec![Vec::new(); n_pops],
            spike_event: model
                .populations
                .iter()
                .map(|(_, p)| model.spike_event(p))
                .collect(),
            time_varying_rate: model
                .populations
                .iter()
                .map(|(_, p)| {
                    p.input.is_some()
                        && model.cell_types[p.cell_type].events.iter().any(|e| {
                            matches!(e.trigger, Trigger::Probability(pr) if crate::kernels::reads_time(model, pr))
                        })
                })
                .collect(),
            base_dir: config.base_dir.clone(),
            node_keys: model
                .populations
                .iter()
                .map(|(_, p)| p.name.as_str())
                .chain(model.projections.iter().map(|(_, p)| p.stream_key.as_str()))
                .chain(std::iter::once("$global"))
                .map(|n| neurograph_compiler::stable_hash(n) as u64)
                .collect(),
            fused_this_step: vec![false; n_pops],
            poisson: vec![None; n_pops],
            lazy: vec![None; model.projections.len()],
            layout: neurograph_compiler::layout::plan(model),
            constant_vars_checked: false,
            fused_setups: vec![None; n_pops + model.projections.len() + 1],
            event_setups: vec![Vec::new(); n_pops + model.projections.len() + 1],
            scratch: Vec::new(),
            coupling_acc: Vec::new(),
            fused_calls: 0,
            kernel_decisions: None,
            pool: None,
            share_always: None,
            shared_calls: 0,
            split_deliveries: 0,
            event_code_calls: [0; 5],
            buf_sources: Vec::new(),
            buf_dues: Vec::new(),
            split_keys: vec![None; model.projections.len()],
            scratch_parts: Vec::new(),
            non_finite: None,
            last_finite_check: 0,
            data_fault: std::cell::RefCell::new(None),
            jit: match config.backend {
                Backend::Interp => None,
                // Without the JIT (a build without the `jit` feature) and without a runner's
                // table, the interpreter runs everything: same results, no generated code.
                Backend::Jit | Backend::JitScalar
                    if !cfg!(feature = "jit") && shared.kernels.get().is_none() =>
                {
                    None
                }
                Backend::Jit | Backend::JitScalar => Some(
                    crate::jit::JitState::new(&shared, config.backend == Backend::Jit)
                        .map_err(|e| SimError::new(e.to_string()))?,
                ),
            },
        };
        for (h, _) in model.populations.iter() {
            if crate::poisson::is_event_driven(model, h, sim.time_varying_rate[h.index()]) {
                sim.poisson[h.index()] = Some(Default::default());
            }
        }
        let g = sim.global_node();
        sim.nodes[g].size = 1;
        sim.load_files(config)?;
        for (h, r) in model.regimes.iter() {
            let init = match r.initial {
                Some(k) => k,
                None => {
                    let u = Stream::new(config.seed, neurograph_compiler::regime_stream(&r.name))
                        .uniform(0, u64::MAX, 0);
                    ((u * r.states.len() as f64) as u32).min(r.states.len() as u32 - 1)
                }
            };
            let _ = h;
            sim.regime_state.push(init);
        }
        sim.initial_regimes = sim.regime_state.clone();
        sim.document_tokens = model
            .exprs
            .iter()
            .filter_map(|(_, e)| match e {
                Expr::Token {
                    path,
                    document: Some(d),
                    cycle,
                    ..
                } => Some((path.clone(), *d, *cycle)),
                _ => None,
            })
            .collect();
        let overrides = &config.overrides;
        for &v in &model.globals {
            if model.variables[v].kind == VarKind::Const {
                continue;
            }
            let store = match override_for(overrides, v, None) {
                Some(x) => Store::Uniform(x),
                None => sim.init_store(v, g, 1, &[])?,
            };
            sim.globals.insert(v, store);
        }
        for (h, p) in model.populations.iter() {
            let node = h.index();
            sim.nodes[node].size = p.size as usize;
            let ct = &model.cell_types[p.cell_type];
            for &v in ct.params.iter().chain(&ct.states) {
                if model.variables[v].kind == VarKind::Const {
                    continue;
                }
                let store = match override_for(overrides, v, Some(Node::Population(h))) {
                    Some(x) if model.variables[v].kind == VarKind::Param => Store::Uniform(x),
                    _ => sim.init_store(v, node, p.size as usize, &p.overrides)?,
                };
                sim.nodes[node].vars.insert(v, store);
            }
            sim.spikes.push(vec![Vec::new(); ct.events.len()]);
            sim.ref_until.push(vec![0; p.size as usize]);
            sim.refractory_now.push(vec![false; p.size as usize]);
        }
        for p in sim.projection_build_order()? {
            sim.build_projection(p, overrides)?;
        }
        for (h, r) in model.records.iter().enumerate() {
            sim.recordings[h].width = match &r.what {
                RecordWhat::Let {
                    population, range, ..
                } => {
                    let n = model.populations[*population].size as usize;
                    match range {
                        Some((a, b)) => (*b as usize).min(n).saturating_sub((*a as usize).min(n)),
                        None => n,
                    }
                }
                RecordWhat::State { node, range, .. } => {
                    let n = sim.nodes[sim.node_index(*node)].size;
                    match range {
                        Some((a, b)) => (*b as usize).min(n).saturating_sub((*a as usize).min(n)),
                        None => n,
                    }
                }
                _ => 1,
            };
        }
        if let Some(e) = sim.data_fault.borrow_mut().take() {
            return Err(e);
        }
        for (h, p) in model.projections.iter() {
            if !p.code.event_driven.is_empty() {
                let n = sim.nodes[sim.n_pops + h.index()].size;
                sim.lazy[h.index()] =
                    Some(crate::lazy::LazyState::new(n, p.code.event_driven.len()));
            }
        }
        Ok(sim)
    }

    /// Silence elements of population `p` (local indices, added to those already silenced):
    /// from the next step on, their spike events are removed where spikes are detected
    /// (`KernelCall::Detect`, after the fused kernel or the interpreter found them, so both
    /// backends do the same): they are not delivered (`on pre`, `on post`), not recorded,
    /// not counted, and no reset or refractory period follows (the cell's state goes on by its
    /// own equations). Indices must be below the population's size.
    pub fn silence(&mut self, p: Handle<Population>, elements: &[u32]) -> Result<(), SimError> {
        let size = self.nodes[p.index()].size;
        if let Some(&e) = elements.iter().find(|&&e| e as usize >= size) {
            return Err(SimError::new(format!(
                "cannot silence element {e} of `{}`: it has {size} elements",
                self.program.model.populations[p].name
            )));
        }
        let list = &mut self.silenced[p.index()];
        list.extend_from_slice(elements);
        list.sort_unstable();
        list.dedup();
        Ok(())
    }

    /// Silence nothing any more (every population).
    pub fn clear_silenced(&mut self) {
        for list in &mut self.silenced {
            list.clear();
        }
    }

    /// Remove the silenced elements of population `node` from this step's spike list (the
    /// `spike` event, or the first event of a population fed by a spike file).
    pub(crate) fn filter_silenced(&mut self, node: usize) {
        if self.silenced[node].is_empty() {
            return;
        }
        let Some(k) = self.spike_event[node] else {
            return;
        };
        let silenced = &self.silenced[node];
        if let Some(list) = self.spikes[node].get_mut(k) {
            let before = list.len();
            list.retain(|e| silenced.binary_search(e).is_err());
            self.spike_counts[node] -= (before - list.len()) as u64;
        }
    }

    pub fn node_index(&self, n: Node) -> usize {
        match n {
            Node::Population(p) => p.index(),
            Node::Projection(p) => self.n_pops + p.index(),
        }
    }

    fn load_files(&mut self, config: &RunConfig) -> Result<(), SimError> {
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        // Each file's array (each safetensors tensor) is read once, whatever the number of
        // `[i]` slices taken from it.
        let mut files: HashMap<(&str, Option<&str>), crate::npy::Array> = HashMap::new();
        for (h, _) in model.exprs.iter() {
            match &model.exprs[h] {
                Expr::Load(src) if !self.arrays.contains_key(&src.key) => {
                    let full = config.base_dir.join(&src.path);
                    let file = (src.path.as_str(), src.tensor.as_deref());
                    let arr = match files.entry(file) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(slot) => {
                            let read = match &src.tensor {
                                Some(t) => crate::safetensors::read(&full, t),
                                None => crate::npy::read(&full),
                            };
                            slot.insert(read.map_err(|e| {
                                located(
                                    load_site(model, h),
                                    format!(
                                        "cannot load `{}`{}: {}",
                                        full.display(),
                                        src.tensor
                                            .as_ref()
                                            .map_or(String::new(), |t| format!(" tensor `{t}`")),
                                        file_error(&full, &e)
                                    ),
                                )
                            })?)
                        }
                    };
                    let arr = crate::safetensors::pick(arr, &src.index).map_err(|e| {
                        let dims: Vec<String> = arr.shape.iter().map(usize::to_string).collect();
                        located(
                            load_site(model, h),
                            format!(
                                "`{}`: the array has shape ({}): {e}",
                                src.key,
                                dims.join(", ")
                            ),
                        )
                    })?;
                    self.arrays.insert(src.key.clone(), arr);
                }
                Expr::Token { path, vocab, .. } if !self.token_files.contains_key(path) => {
                    let full = config.base_dir.join(path);
                    let span = model.inputs.iter().find_map(|(_, i)| match &i.kind {
                        InputKind::Tokens { path: p, .. } if p == path => Some(i.span),
                        _ => None,
                    });
                    let cannot = |e: &std::io::Error| {
                        located(
                            span,
                            format!(
                                "cannot read token file `{}`: {}",
                                full.display(),
                                file_error(&full, e)
                            ),
                        )
                    };
                    // An `.npy` file holds token ids (a 1-D array of whole numbers); any other
                    // file is text, one token per byte.
                    let ids = path.ends_with(".npy");
                    let tokens: Vec<u32> = if ids {
                        let arr = crate::npy::read(&full).map_err(|e| cannot(&e))?;
                        if arr.shape.len() != 1 {
                            return Err(located(
                                span,
                                format!(
                                    "token file `{}` has shape {:?}; token ids are a 1-D array",
                                    full.display(),
                                    arr.shape
                                ),
                            ));
                        }
                        let mut out = Vec::with_capacity(arr.data.len());
                        for (k, &x) in arr.data.iter().enumerate() {
                            if !(x >= 0.0 && x.fract() == 0.0 && x < f64::from(*vocab)) {
                                return Err(located(
                                    span,
                                    format!(
                                        "token file `{}` has {x} at index {k}, not a token id of the vocabulary of {vocab} (0 to {}); raise `vocab` or clean the file",
                                        full.display(),
                                        vocab - 1
                                    ),
                                ));
                            }
                            out.push(x as u32);
                        }
                        out
                    } else {
                        let bytes = std::fs::read(&full).map_err(|e| cannot(&e))?;
                        if let Some(k) = bytes.iter().position(|&b| b as u32 >= *vocab) {
                            return Err(located(
                                span,
                                format!(
                                    "token file `{}` has byte {} at offset {k}, outside the vocabulary of {vocab} tokens (bytes 0 to {}); raise `vocab` or clean the file",
                                    full.display(),
                                    bytes[k],
                                    vocab - 1
                                ),
                            ));
                        }
                        bytes.into_iter().map(u32::from).collect()
                    };
                    if tokens.is_empty() {
                        return Err(located(
                            span,
                            format!(
                                "token file `{}` is empty: it has no token to feed",
                                full.display()
                            ),
                        ));
                    }
                    self.token_files.insert(path.clone(), tokens);
                }
                _ => {}
            }
        }
        for (_, i) in model.inputs.iter() {
            if let InputKind::SpikeFile { population, path } = &i.kind {
                let full = config.base_dir.join(path);
                let arr = crate::npy::read(&full).map_err(|e| {
                    SimError::at(
                        i.span,
                        format!(
                            "cannot load spike trains `{}`: {}",
                            full.display(),
                            file_error(&full, &e)
                        ),
                    )
                })?;
                if arr.shape.len() != 2 || arr.shape[1] != 2 {
                    return Err(SimError::at(i.span, format!("spike file `{path}` must have shape (n, 2): time in seconds, source index")));
                }
                let size = model.populations[*population].size as f64;
                let mut train: Vec<(u64, u32)> = Vec::new();
                for (k, row) in arr.data.chunks_exact(2).enumerate() {
                    if !(row[0].is_finite() && row[0] >= 0.0) {
                        return Err(SimError::at(
                            i.span,
                            format!(
                                "spike file `{path}`, row {k}: the time {} is not a finite time of 0 s or later",
                                row[0]
                            ),
                        ));
                    }
                    if !(row[1] >= 0.0 && row[1] < size && row[1].fract() == 0.0) {
                        return Err(SimError::at(
                            i.span,
                            format!(
                                "spike file `{path}`, row {k}: source {} is not one of the {size} sources (0 to {})",
                                row[1],
                                size - 1.0
                            ),
                        ));
                    }
                    train.push(((row[0] / self.dt).round() as u64, row[1] as u32));
                }
                train.sort_unstable();
                if let Some(w) = train.windows(2).find(|w| w[0] == w[1]) {
                    return Err(SimError::at(
                        i.span,
                        format!(
                            "spike file `{path}`: source {} has two spikes in the step at {} s (dt = {} s); a source spikes at most once per step: remove one or use a smaller dt",
                            w[0].1,
                            w[0].0 as f64 * self.dt,
                            self.dt
                        ),
                    ));
                }
                self.spike_trains.insert(population.index(), train);
            }
        }
        Ok(())
    }

    /// Whether a token input with `document = K` is fed token K in this step.
    fn document_starts(&self) -> bool {
        self.document_tokens
            .iter()
            .any(|(path, document, cycle)| self.current_token(path, *cycle) == Some(*document))
    }

    /// The token the token file `path` feeds in this step: the one set from outside, else the
    /// file's (from its start again when `cycle`); `None` past the end of a file that does
    /// not cycle.
    pub(crate) fn current_token(&self, path: &str, cycle: bool) -> Option<u32> {
        if let Some(&t) = self.token_override.get(path) {
            return Some(t);
        }
        let tokens = self.token_files.get(path)?;
        let at = self.step as usize;
        if cycle && !tokens.is_empty() {
            Some(tokens[at % tokens.len()])
        } else {
            tokens.get(at).copied()
        }
    }

    /// A new document: every state variable (of the populations, the synapses and the
    /// model) back to its initial value, as at the start of the run; no spike in flight, no
    /// neuron refractory, regimes in their initial states; positions count from this step.
    /// Parameters keep their values, inputs and random streams go on.
    pub fn new_document(&mut self) {
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        let g = self.global_node();
        for &v in &model.globals {
            if model.variables[v].kind == VarKind::State {
                if let Ok(s) = self.init_store(v, g, 1, &[]) {
                    self.globals.insert(v, s);
                }
            }
        }
        for (h, p) in model.populations.iter() {
            let node = h.index();
            let ct = &model.cell_types[p.cell_type];
            for &v in &ct.states {
                if let Ok(s) = self.init_store(v, node, p.size as usize, &p.overrides) {
                    self.nodes[node].vars.insert(v, s);
                }
            }
            for list in &mut self.spikes[node] {
                list.clear();
            }
            self.ref_until[node].iter_mut().for_each(|r| *r = 0);
            self.refractory_now[node]
                .iter_mut()
                .for_each(|r| *r = false);
        }
        for (h, p) in model.projections.iter() {
            let node = self.n_pops + h.index();
            let n_syn = self.nodes[node].size;
            for &v in &model.synapse_types[p.synapse].states {
                // Constant states drawn alike are one column again, as after set-up.
                let store = match self.drawn_alike(h, v) {
                    Some(shared) => Ok(shared),
                    None => self.init_store(v, node, n_syn, &p.inits),
                };
                if let Ok(s) = store {
                    self.nodes[node].vars.insert(v, s);
                }
            }
            if let Some(q) = &mut self.queues[h.index()] {
                *q = DelayQueue::new(q.slot_count().saturating_sub(1));
                self.split_keys[h.index()] = None;
            }
            if let Some(l) = &mut self.lazy[h.index()] {
                *l = crate::lazy::LazyState::new(n_syn, p.code.event_driven.len());
            }
            self.narrow_projection(h);
        }
        self.regime_state.clone_from(&self.initial_regimes);
        self.position_origin = self.step;
    }

    /// Hold the per-synapse columns of an f32 model as f32 (`Store::Narrow`: half the memory
    /// and memory traffic) where generated event code is their only writer (`narrow_projection`),
    /// for every projection.
    pub fn narrow_synapse_columns(&mut self) {
        let program = std::sync::Arc::clone(&self.program);
        for (h, _) in program.model.projections.iter() {
            self.narrow_projection(h);
        }
    }

    /// `narrow_synapse_columns` for projection `h`, done as soon as its columns are made (so
    /// that one projection's columns at a time are held twice, and a later projection drawn
    /// alike takes the narrow column): run by the JIT (the interpreter would widen them at its
    /// first write), where `layout::narrow_columns` allows, columns whose values are all f32
    /// (every write of an f32 model rounds to f32, so nothing changes).
    fn narrow_projection(&mut self, h: Handle<Projection>) {
        if self.jit.is_none()
            || !neurograph_compiler::layout::narrow_columns(&self.program.model, h)
        {
            return;
        }
        for store in self.nodes[self.n_pops + h.index()].vars.values_mut() {
            if let Store::Elements(col) = store {
                if let Some(narrow) = Store::narrowed(col) {
                    *store = Store::Narrow(std::sync::Arc::new(narrow));
                }
            }
        }
    }

    /// Initial store of a variable on a node, honouring population overrides.
    fn init_store(
        &self,
        v: Handle<Variable>,
        node: usize,
        size: usize,
        pop_overrides: &[(Handle<Variable>, Handle<Expr>)],
    ) -> Result<Store, SimError> {
        let var = &self.program.model.variables[v];
        let expr = pop_overrides
            .iter()
            .find(|(x, _)| *x == v)
            .map_or(var.init, |(_, e)| *e);
        let state = var.kind == VarKind::State;
        match var.regime {
            None => {
                let ctx = Ctx {
                    init_draw: Some(0),
                    ..Ctx::all(node)
                };
                Ok(match self.eval(expr, &ctx) {
                    Col::S(x) if !state => Store::Uniform(self.round(x)),
                    c if self.f32_state => Store::column(
                        c.into_vec(size)
                            .into_iter()
                            .map(|x| self.round(x))
                            .collect(),
                    ),
                    c => Store::column(c.into_vec(size)),
                })
            }
            Some(r) => {
                let states = self.program.model.regimes[r].states.len();
                let mut data = Vec::with_capacity(states * size);
                for k in 0..states {
                    let ctx = Ctx {
                        init_draw: Some(k as u64),
                        regime_state: Some((r.index(), k)),
                        ..Ctx::all(node)
                    };
                    data.extend(
                        self.eval(expr, &ctx)
                            .into_vec(size)
                            .into_iter()
                            .map(|x| self.round(x)),
                    );
                }
                Ok(Store::Regime { n: size, data })
            }
        }
    }

    #[inline]
    pub fn round(&self, x: f64) -> f64 {
        if self.f32_state {
            x as f32 as f64
        } else {
            x
        }
    }

    /// Projections in an order where a projection used as an endpoint is built first.
    fn projection_build_order(&self) -> Result<Vec<Handle<Projection>>, SimError> {
        let mut done = vec![false; self.program.model.projections.len()];
        let mut order = Vec::new();
        while order.len() < done.len() {
            let before = order.len();
            for (h, p) in self.program.model.projections.iter() {
                if done[h.index()] {
                    continue;
                }
                let ready = p
                    .pre
                    .parts
                    .iter()
                    .chain(&p.post.parts)
                    .all(|part| match part.node {
                        Node::Projection(q) => done[q.index()] && q != h,
                        Node::Population(_) => true,
                    });
                if ready {
                    done[h.index()] = true;
                    order.push(h);
                }
            }
            if order.len() == before {
                return Err(SimError::new(
                    "projections use each other's synapses as endpoints in a cycle",
                ));
            }
        }
        Ok(order)
    }

    fn endpoint_map(&self, ep: &Endpoint) -> EndpointMap {
        let mut parts = Vec::new();
        let mut offset = 0;
        for part in &ep.parts {
            let node = self.node_index(part.node);
            let size = self.nodes[node].size;
            let (start, end) = (part.start as usize, (part.end as usize).min(size));
            parts.push((node, start, offset, end - start));
            offset += end - start;
        }
        EndpointMap { parts }
    }

    fn build_projection(
        &mut self,
        h: Handle<Projection>,
        overrides: &[Override],
    ) -> Result<(), SimError> {
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        let p = &model.projections[h];
        let node = self.n_pops + h.index();
        self.pre_maps[h.index()] = self.endpoint_map(&p.pre);
        self.post_maps[h.index()] = self.endpoint_map(&p.post);
        let (n_pre, n_post) = (
            self.pre_maps[h.index()].size(),
            self.post_maps[h.index()].size(),
        );
        // The layout pass knows when an earlier projection has the same synapses, pair for
        // pair (a deterministic rule over ends of the same sizes): take its index instead of
        // evaluating the rule again (BDH's block-diagonal rule over 3·10^7 pairs per layer).
        let same = self.layout.connectivity[h.index()].filter(|q| {
            self.conn[q.index()].n_pre == n_pre
                && self.conn[q.index()].n_post == n_post
                && self.conn[q.index()].n_synapses() > 0
        });
        self.conn[h.index()] = match same {
            Some(q) => self.conn[q.index()].same_synapses(),
            None => {
                let mut built = self.connect(h, n_pre, n_post)?;
                // Dense rows hold each row's first post instead of the post index once set
                // up (`release_post` below), unless the spec forces CSR or code reads it.
                if neurograph_compiler::layout::dense_rows_allowed(model, h) {
                    built.use_runs();
                }
                self.share_equal_index(h, &mut built);
                built
            }
        };
        if !p.code.on_post.is_empty() {
            self.conn[h.index()].index_by_post();
        }
        let n_syn = self.conn[h.index()].n_synapses();
        self.nodes[node].size = n_syn;
        let st = &model.synapse_types[p.synapse];
        for &v in st.params.iter().chain(&st.states) {
            if model.variables[v].kind == VarKind::Const {
                continue;
            }
            let store = match override_for(overrides, v, Some(Node::Projection(h))) {
                Some(x) if model.variables[v].kind == VarKind::Param => Store::Uniform(x),
                _ => match self.drawn_alike(h, v) {
                    Some(shared) => shared,
                    None => self.init_store(v, node, n_syn, &p.inits)?,
                },
            };
            self.nodes[node].vars.insert(v, store);
        }
        if let Some(d) = p.delay {
            let steps = self
                .eval(
                    d,
                    &Ctx {
                        init_draw: Some(0),
                        ..Ctx::all(node)
                    },
                )
                .into_vec(n_syn);
            let (delays, max) = Delays::from_seconds(&steps, self.dt).map_err(|s| {
                SimError::at(
                    p.span,
                    format!(
                        "projection `{}` has a delay of {s} s, outside 0 to 1e9 steps",
                        p.name
                    ),
                )
            })?;
            if !p.couplings.is_empty() && (0..n_syn).any(|s| delays.get(s) != 1) {
                return Err(SimError::at(
                    p.span,
                    format!(
                        "coupling projection `{}`: only `delay = dt` is supported for couplings",
                        p.name
                    ),
                ));
            }
            self.conn[h.index()].delay_steps = delays;
            if !p.code.on_pre.is_empty() {
                self.queues[h.index()] = Some(DelayQueue::new(max as usize));
            }
        }
        // Initial values and delays drawn: the pre indices (made for the draws' keys) go until
        // something reads them again.
        self.conn[h.index()].release_pre();
        self.conn[h.index()].release_post();
        self.narrow_projection(h);
        Ok(())
    }

    /// The column of `v` of an earlier projection that `h`'s would equal value for value, to
    /// share instead of drawing it: the layout pass found them drawn alike (`layout.columns`:
    /// nothing writes them after set-up; the synapse type's own initial value, reading only
    /// model-level names, keyed by (pre, post) pair and the expression's stream) and the two
    /// have the very same synapses (one post index). A `set_param` or `set_values` on one of
    /// them copies it first (`Store::column_mut`).
    fn drawn_alike(&self, h: Handle<Projection>, v: Handle<Variable>) -> Option<Store> {
        let (_, q) = self.layout.columns[h.index()]
            .iter()
            .find(|(x, _)| *x == v)?;
        let (mine, theirs) = (&self.conn[h.index()], &self.conn[q.index()]);
        if !mine.same_index(theirs) || mine.row_ptr != theirs.row_ptr {
            return None;
        }
        match self.nodes[self.n_pops + q.index()].vars.get(&v) {
            Some(Store::Narrow(col)) if col.len() == mine.n_synapses() => {
                Some(Store::Narrow(std::sync::Arc::clone(col)))
            }
            Some(Store::Elements(col)) if col.len() == mine.n_synapses() => {
                Some(Store::Elements(std::sync::Arc::clone(col)))
            }
            _ => None,
        }
    }

    /// Share the index of `built` (its post index, or its dense rows) with an earlier
    /// projection whose synapses turned out the same pair for pair, where the layout pass
    /// did not foresee it; projections with a forced layout keep their own.
    fn share_equal_index(&self, h: Handle<Projection>, built: &mut Connectivity) {
        if built.n_synapses() == 0 || self.program.model.projections[h].layout != Layout::Auto {
            return;
        }
        let equal = |c: &Connectivity| match (c.runs(), built.runs()) {
            (Some(a), Some(b)) => a == b,
            (None, None) => c.post() == built.post(),
            _ => false,
        };
        let found = self
            .program
            .model
            .projections
            .iter()
            .filter(|&(q, other)| q != h && other.layout == Layout::Auto)
            .map(|(q, _)| &self.conn[q.index()])
            .find(|c| {
                c.n_pre == built.n_pre
                    && c.n_post == built.n_post
                    && c.row_ptr == built.row_ptr
                    && equal(c)
            });
        if let Some(c) = found {
            built.share_index(c);
        }
    }

    /// Run the simulation for `n_steps` more steps, or until `stop` is set (the current step is
    /// completed). `progress` is called every `report_every` steps with the steps done so far.
    /// At every step that is a multiple of `FINITE_CHECK_EVERY`, every state value is checked
    /// (not at the end of each call: callers stepping one step at a time would scan every
    /// step; `check_finite` is there for a final check): the run
    /// stops at the first check that finds a non-finite one (`non_finite`). A data file that
    /// does not fit stops it too (`take_data_fault`). Returns the steps done.
    pub fn run(
        &mut self,
        n_steps: u64,
        stop: &AtomicBool,
        report_every: u64,
        progress: &mut dyn FnMut(u64),
    ) -> u64 {
        let mut done = 0;
        while done < n_steps {
            // Before each step: a stop requested before the run, or during the last step.
            if stop.load(Ordering::Relaxed) || self.data_fault.borrow().is_some() {
                break;
            }
            self.step_once();
            done += 1;
            if report_every > 0 && done % report_every == 0 {
                progress(done);
            }
            if self.step.is_multiple_of(FINITE_CHECK_EVERY) && !self.check_finite() {
                break;
            }
        }
        done
    }

    /// The data-file problem that stopped the run, if any (taken: asked once).
    pub fn take_data_fault(&mut self) -> Option<SimError> {
        self.data_fault.borrow_mut().take()
    }

    /// Scan every state value; record the first non-finite one in `non_finite`. Returns
    /// whether all were finite.
    pub fn check_finite(&mut self) -> bool {
        if self.non_finite.is_some() {
            return false;
        }
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        let global = self.global_node();
        for (nd, node) in self.nodes.iter().enumerate() {
            let stores: Box<dyn Iterator<Item = (&Handle<Variable>, &Store)>> = if nd == global {
                Box::new(self.globals.iter())
            } else {
                Box::new(node.vars.iter())
            };
            let mut found: Option<(Handle<Variable>, usize, f64)> = None;
            let constant: &[Handle<Variable>] = match nd.checked_sub(self.n_pops) {
                Some(p) if nd != global && self.constant_vars_checked => &self.layout.constant[p],
                _ => &[],
            };
            for (&v, store) in stores {
                if model.variables[v].kind != VarKind::State || constant.contains(&v) {
                    continue;
                }
                let wide;
                let values: &[f64] = match store {
                    Store::Uniform(x) => std::slice::from_ref(x),
                    Store::Elements(xs) => xs,
                    Store::Narrow(xs) if xs.iter().all(|x| x.is_finite()) => continue,
                    Store::Narrow(xs) => {
                        wide = xs.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
                        &wide
                    }
                    Store::Regime { data, .. } => data,
                };
                if all_finite(values) {
                    continue;
                }
                let k = values.iter().position(|x| !x.is_finite()).unwrap_or(0);
                let element = match store {
                    Store::Regime { n, .. } if *n > 0 => k % n,
                    _ => k,
                };
                // Handles are declaration order: report the first variable deterministically.
                if found.is_none_or(|(f, _, _)| v.index() < f.index()) {
                    found = Some((v, element, values[k]));
                }
            }
            // Event-driven variables lag in memory: check those that can grow as they are now.
            if let Some((p, lazy)) = nd
                .checked_sub(self.n_pops)
                .and_then(|p| Some((p, self.lazy.get(p)?.as_ref()?)))
            {
                let code = &model.projections[Handle::new(p)].code;
                for (k, o) in code.event_driven.iter().enumerate() {
                    if !lazy.may_grow(k) {
                        continue;
                    }
                    let node = Node::Projection(Handle::new(p));
                    let values = self
                        .lazy_current(node, o.var, self.step)
                        .unwrap_or_default();
                    if let Some(k) = values.iter().position(|x| !x.is_finite()) {
                        if found.is_none_or(|(f, _, _)| o.var.index() < f.index()) {
                            found = Some((o.var, k, values[k]));
                        }
                    }
                }
            }
            if let Some((v, element, value)) = found {
                let name = if nd == global {
                    "model".to_string()
                } else if nd < self.n_pops {
                    model
                        .populations
                        .iter()
                        .nth(nd)
                        .map_or(String::new(), |(_, p)| p.name.clone())
                } else {
                    model
                        .projections
                        .iter()
                        .nth(nd - self.n_pops)
                        .map_or(String::new(), |(_, p)| p.name.clone())
                };
                self.non_finite = Some(NonFinite {
                    node: name,
                    variable: model.variables[v].name.clone(),
                    element,
                    value,
                    steps: self.step,
                });
                return false;
            }
        }
        self.last_finite_check = self.step;
        self.constant_vars_checked = true;
        true
    }

    /// Step one step at a time, checking after each, until a non-finite value appears or
    /// `until` steps are done: finds the exact step a value became non-finite (a re-run from
    /// the last check that passed).
    pub fn locate_non_finite(&mut self, until: u64) -> Option<NonFinite> {
        while self.step < until {
            self.step_once();
            if !self.check_finite() {
                break;
            }
        }
        self.non_finite.clone()
    }

    /// One step: every kernel of the schedule in order, then the monitors.
    pub fn step_once(&mut self) {
        if self.step > self.position_origin && self.document_starts() {
            self.new_document();
        }
        self.kernel_decisions();
        let schedule = std::mem::take(&mut self.schedule);
        for call in &schedule {
            self.run_kernel(*call);
        }
        self.schedule = schedule;
        self.monitor();
        self.step += 1;
    }

    fn monitor(&mut self) {
        // Event-driven variables' propagators, computed once for the reads below.
        for pi in 0..self.lazy.len() {
            self.lazy_prepare(pi);
        }
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        for (k, r) in model.records.iter().enumerate() {
            match &r.what {
                RecordWhat::Events { population, event } => {
                    let ct = &model.cell_types[model.populations[*population].cell_type];
                    let idx = ct.events.iter().position(|e| &e.name == event).unwrap_or(0);
                    let t = self.step as f64 * self.dt;
                    let rec = &mut self.recordings[k];
                    for &i in self.spikes[population.index()]
                        .get(idx)
                        .into_iter()
                        .flatten()
                    {
                        rec.times.push(t);
                        rec.values.push(i as f64);
                    }
                }
                RecordWhat::Rate { population } => {
                    let n = model.populations[*population].size as f64;
                    let ct = &model.cell_types[model.populations[*population].cell_type];
                    let ev = ct
                        .events
                        .iter()
                        .position(|e| e.name == "spike")
                        .unwrap_or(0);
                    let count = self.spikes[population.index()].get(ev).map_or(0, Vec::len) as f64;
                    let every = r.every.map_or(1, |e| (e / self.dt).round().max(1.0) as u64);
                    let rec = &mut self.recordings[k];
                    if self.step.is_multiple_of(every) {
                        rec.times.push(self.step as f64 * self.dt);
                        rec.values.push(0.0);
                    }
                    if let Some(last) = rec.values.last_mut() {
                        *last += count / (n * self.dt * every as f64);
                    }
                }
                // Written from the connectivity with the trace.
                RecordWhat::Edges { .. } => {}
                RecordWhat::Regime(h) => {
                    let t = self.step as f64 * self.dt;
                    let s = self.regime_state[h.index()] as f64;
                    let rec = &mut self.recordings[k];
                    rec.times.push(t);
                    rec.values.push(s);
                }
                RecordWhat::State { node, var, range } => {
                    if r.at_end {
                        continue;
                    }
                    let every = r.every.map_or(1, |e| (e / self.dt).round().max(1.0) as u64);
                    if (self.step + 1).is_multiple_of(every) {
                        let values = self.current_values(*node, *var, *range, self.step + 1);
                        let rec = &mut self.recordings[k];
                        rec.times.push((self.step + 1) as f64 * self.dt);
                        rec.values.extend(values);
                    }
                }
                RecordWhat::Let {
                    population,
                    expr,
                    range,
                    ..
                } => {
                    let every = r.every.map_or(1, |e| (e / self.dt).round().max(1.0) as u64);
                    if (self.step + 1).is_multiple_of(every) {
                        let values = self.let_values(*population, *expr, *range);
                        let rec = &mut self.recordings[k];
                        rec.times.push((self.step + 1) as f64 * self.dt);
                        rec.values.extend(values);
                    }
                }
            }
        }
    }

    /// A let of a population's cell type on the current state, for an element range; the
    /// let's `t` reads the end of the step just taken, the time its sample is stamped with.
    pub fn let_values(
        &self,
        population: Handle<Population>,
        expr: Handle<Expr>,
        range: Option<(u32, u32)>,
    ) -> Vec<f64> {
        let nd = self.node_index(Node::Population(population));
        let size = self.nodes[nd].size;
        let (a, b) = range.map_or((0, size), |(a, b)| {
            ((a as usize).min(size), (b as usize).min(size))
        });
        let ctx = Ctx {
            time_offset: self.dt,
            ..Ctx::all(nd)
        };
        match self.eval(expr, &ctx) {
            Col::S(x) => vec![x; b.saturating_sub(a)],
            Col::V(v) => v[a.min(v.len())..b.min(v.len())].to_vec(),
        }
    }

    /// Current values of a variable on a node for an element range.
    pub fn state_values(
        &self,
        node: Node,
        var: Handle<Variable>,
        range: Option<(u32, u32)>,
    ) -> Vec<f64> {
        let nd = self.node_index(node);
        let size = self.nodes[nd].size;
        let (a, b) = range.map_or((0, size), |(a, b)| {
            (
                (a as usize).min(size),
                (b as usize).min(size).max((a as usize).min(size)),
            )
        });
        let rs = self.program.model.variables[var]
            .regime
            .map_or(0, |r| self.regime_state[r.index()] as usize);
        match self.nodes[nd].vars.get(&var) {
            Some(s) => (a..b).map(|e| s.get(e, rs)).collect(),
            None => vec![0.0; b - a],
        }
    }

    /// `state_values` as they are after `target` steps: event-driven values advanced (the
    /// stored ones lag), others as stored.
    pub fn current_values(
        &self,
        node: Node,
        var: Handle<Variable>,
        range: Option<(u32, u32)>,
        target: u64,
    ) -> Vec<f64> {
        match self.lazy_current(node, var, target) {
            Some(all) => {
                let n = all.len();
                let (a, b) = range.map_or((0, n), |(a, b)| {
                    (
                        (a as usize).min(n),
                        (b as usize).min(n).max((a as usize).min(n)),
                    )
                });
                all[a..b].to_vec()
            }
            None => self.state_values(node, var, range),
        }
    }

    /// Final values for `at end` records.
    pub fn finish_records(&mut self) {
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        for (k, r) in model.records.iter().enumerate() {
            if let (true, RecordWhat::State { node, var, range }) = (r.at_end, &r.what) {
                let t = self.step as f64 * self.dt;
                // A variable with one value per regime state: one row per state.
                let states = model.variables[*var]
                    .regime
                    .map_or(1, |h| model.regimes[h].states.len());
                let nd = self.node_index(*node);
                let size = self.nodes[nd].size;
                let (a, b) = range.map_or((0, size), |(a, b)| {
                    (
                        (a as usize).min(size),
                        (b as usize).min(size).max((a as usize).min(size)),
                    )
                });
                let mut values = Vec::with_capacity(states * (b - a));
                // Event-driven values as they are now, without changing the state (a trace
                // written mid-run leaves the run as it was).
                let lazy = self.lazy_current(*node, *var, self.step);
                if let Some(all) = &lazy {
                    values.extend_from_slice(&all[a..b]);
                }
                let stored_states = if lazy.is_some() { 0 } else { states };
                for st in 0..stored_states {
                    let rs = if states > 1 {
                        st
                    } else {
                        model.variables[*var]
                            .regime
                            .map_or(0, |h| self.regime_state[h.index()] as usize)
                    };
                    match self.nodes[nd].vars.get(var) {
                        Some(store) => values.extend((a..b).map(|e| store.get(e, rs))),
                        None => values.extend(std::iter::repeat_n(0.0, b - a)),
                    }
                }
                let rec = &mut self.recordings[k];
                rec.width = b - a;
                rec.times = vec![t; states];
                rec.values = values;
            }
        }
    }

    pub fn n_synapses(&self) -> usize {
        self.conn.iter().map(Connectivity::n_synapses).sum()
    }

    pub fn n_neurons(&self) -> usize {
        self.nodes[..self.n_pops].iter().map(|n| n.size).sum()
    }

    /// The value of a parameter on a node (`None`: model level) as the next step reads it;
    /// `None` when it differs between elements (set per element by the spec) or does not live
    /// there.
    pub fn param_value(&self, var: Handle<Variable>, node: Option<Node>) -> Option<f64> {
        let store = match node {
            None => self.globals.get(&var)?,
            Some(n) => self.nodes[self.node_index(n)].vars.get(&var)?,
        };
        match store {
            Store::Uniform(x) => Some(*x),
            _ => None,
        }
    }

    /// The parameters with one value now (globals, then per population and projection).
    fn parameter_values(&self) -> Vec<Override> {
        let model = &self.program.model;
        let uniform = |vars: &VarMap<Store>, node: Option<Node>| {
            vars.iter()
                .filter(|(v, _)| model.variables[**v].kind == VarKind::Param)
                .filter_map(move |(&var, s)| match s {
                    Store::Uniform(value) => Some(Override {
                        var,
                        value: *value,
                        node,
                    }),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        let mut out = uniform(&self.globals, None);
        for (h, _) in model.populations.iter() {
            out.extend(uniform(
                &self.nodes[h.index()].vars,
                Some(Node::Population(h)),
            ));
        }
        for (h, _) in model.projections.iter() {
            out.extend(uniform(
                &self.nodes[self.n_pops + h.index()].vars,
                Some(Node::Projection(h)),
            ));
        }
        out
    }

    /// The index of population `p`'s spike event among its cell type's events, if it has one.
    pub fn spike_event(&self, p: Handle<Population>) -> Option<usize> {
        self.spike_event[p.index()]
    }

    /// Change a parameter between steps: on every population or projection where it lives,
    /// or on `o.node` only. Derived data computed from parameter values (propagators, fused
    /// set-ups, the shared values copied into generated event code) is rebuilt on the next
    /// step, so both backends go on bit-identically. Refused: a parameter the network was
    /// built from (connection rules, delays), and values the checker would refuse.
    pub fn set_param(&mut self, o: Override) -> Result<(), SimError> {
        let program = Arc::clone(&self.program);
        let model = &program.model;
        let v = &model.variables[o.var];
        if v.kind != VarKind::Param || v.regime.is_some() {
            return Err(SimError::new(format!(
                "`{}` is not a parameter that can change during a run",
                v.name
            )));
        }
        for (_, p) in model.projections.iter() {
            let rule = match &p.connect.rule {
                ConnectRule::Bernoulli(e) => Some(*e),
                _ => None,
            };
            for (what, e) in [("connection rule", rule), ("delay", p.delay)] {
                if e.is_some_and(|e| crate::params::reads(model, e, o.var)) {
                    return Err(SimError::at(
                        p.span,
                        format!(
                            "`{}` is read by the {what} of projection `{}`, which built the network before the run; it cannot change during a run (set it before the run starts, e.g. with --set)",
                            v.name, p.name
                        ),
                    ));
                }
            }
        }
        // Checked with every other value as it is now (a probability or rate may read
        // several parameters, some of them set earlier).
        let mut values = vec![o];
        values.extend(
            self.parameter_values()
                .into_iter()
                .filter(|p| p.var != o.var),
        );
        crate::params::check_overrides(model, &values)?;
        // Event-driven values whose decay reads the parameter catch up under the old value
        // first (the others are not touched).
        for (h, p) in model.projections.iter() {
            if p.code
                .event_driven
                .iter()
                .any(|ode| crate::params::reads(model, ode.rhs, o.var))
            {
                self.lazy_advance_all(h.index(), self.step);
            }
        }
        let mut changed = false;
        match v.scope {
            Scope::Global => {
                self.globals.insert(o.var, Store::Uniform(o.value));
                changed = true;
            }
            Scope::Cell(ct) => {
                for (h, p) in model.populations.iter() {
                    if p.cell_type == ct && o.node.is_none_or(|n| n == Node::Population(h)) {
                        self.nodes[h.index()]
                            .vars
                            .insert(o.var, Store::Uniform(o.value));
                        changed = true;
                    }
                }
            }
            Scope::Synapse(st) => {
                for (h, p) in model.projections.iter() {
                    if p.synapse == st && o.node.is_none_or(|n| n == Node::Projection(h)) {
                        let node = self.n_pops + h.index();
                        self.nodes[node].vars.insert(o.var, Store::Uniform(o.value));
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            return Err(SimError::new(format!(
                "`{}` does not live on the population or projection named",
                v.name
            )));
        }
        self.invalidate_derived();
        Ok(())
    }

    /// Replace one variable's values on a node (a state, or a parameter per element) between
    /// steps; derived data is rebuilt as after `set_param`.
    pub fn set_values(
        &mut self,
        node: Node,
        var: Handle<Variable>,
        values: &[f64],
    ) -> Result<(), SimError> {
        let nd = self.node_index(node);
        let size = self.nodes[nd].size;
        let program = Arc::clone(&self.program);
        let name = &program.model.variables[var].name;
        if values.len() != size {
            return Err(SimError::new(format!(
                "`{name}` of `{}` has {size} values, {} given",
                self.program.model.node_name(node),
                values.len()
            )));
        }
        if let Some(k) = values.iter().position(|x| !x.is_finite()) {
            return Err(SimError::new(format!(
                "value {} for element {k} of `{name}` is not finite",
                values[k]
            )));
        }
        // Event-driven values first catch up (they share one count per synapse).
        if let Node::Projection(p) = node {
            self.lazy_advance_all(p.index(), self.step);
        }
        let rs = self.program.model.variables[var]
            .regime
            .map_or(0, |r| self.regime_state[r.index()] as usize);
        let f32_state = self.f32_state;
        let Some(store) = self.nodes[nd].vars.get_mut(&var) else {
            return Err(SimError::new(format!(
                "`{name}` does not live on `{}`",
                self.program.model.node_name(node)
            )));
        };
        for (e, &x) in values.iter().enumerate() {
            *store.slot(e, rs, size) = if f32_state { x as f32 as f64 } else { x };
        }
        // (`slot` widened a narrow column.)
        if let Node::Projection(p) = node {
            self.narrow_projection(p);
        }
        self.invalidate_derived();
        Ok(())
    }

    /// Forget what was computed from parameter values; it is rebuilt when next needed.
    pub(crate) fn invalidate_derived(&mut self) {
        self.exact.clear();
        for s in self.poisson.iter_mut().flatten() {
            s.stale = true;
        }
        for l in self.lazy.iter_mut().flatten() {
            l.invalidate();
        }
        for s in &mut self.fused_setups {
            *s = None;
        }
        for s in &mut self.event_setups {
            s.clear();
        }
    }

    /// Total events of the first event type (spikes) recorded for a population so far.
    pub fn constant_value(&self, e: Handle<Expr>) -> Option<f64> {
        const_eval(&self.program.model, e)
    }
}

// SAFETY: a `Sim` may move to another thread as a whole (a worker, a C handle, a Python
// object). What is not `Send` by itself stays inside it: the `Rc`s of the per-simulation JIT
// set-ups (`fused_setups`, `event_setups`, the expression facts of `JitState`) are never
// handed out: clones are made inside `&mut self` methods and dropped before they return, so
// at rest every clone is owned by this `Sim` and moves with it; the raw pointers cached in
// those set-ups point into buffers this `Sim` owns (heap allocations that do not move when
// the `Sim` does) and are only dereferenced by generated code called from `&mut self`
// methods. `Sim` is not `Sync`: it is never used from two threads at once.
unsafe impl Send for Sim {}

/// A simulation can move to another thread: checked at compile time.
#[allow(dead_code)]
fn assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Sim>();
    is_send::<Arc<Compiled>>();
}

#[cfg(test)]
mod tests {
    use super::all_finite;

    #[test]
    fn all_finite_finds_any_inf_or_nan_in_any_lane() {
        for n in [0, 1, 7, 8, 9, 17, 64, 100] {
            let mut v: Vec<f64> = (0..n).map(|k| k as f64 * 1e300).collect();
            assert!(all_finite(&v), "{n}");
            for k in 0..n {
                for bad in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
                    let keep = v[k];
                    v[k] = bad;
                    assert!(!all_finite(&v), "{n} {k} {bad}");
                    v[k] = keep;
                }
            }
        }
    }
}
