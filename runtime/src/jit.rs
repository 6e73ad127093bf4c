//! The JIT backend: expression kernels, fused updates and event code from
//! `neurograph_compiler::codegen`, with the checks that keep generated code inside its
//! buffers. What they do not cover (populations and synapse dynamics that do not qualify,
//! current inputs, spike lists and delay queues, monitors) is the interpreter's code, calling
//! expression kernels for values.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use neurograph_compiler::abi::KernelCall;
#[cfg(feature = "jit")]
use neurograph_compiler::codegen::Jit;
use neurograph_compiler::codegen::{
    self, FusedArgs, FusedKey, Helpers, InputArg, InputMode, KernelArgs, KernelKey,
};
use neurograph_compiler::ir::*;

use crate::eval::{Col, Ctx};
use crate::rng::Stream;
use crate::sim::{Sim, SimError};
use crate::state::Store;

/// The random draws of the generated code: the same formulas as the interpreter's `call`
/// (exported under this name for native runners' generated code).
#[no_mangle]
pub extern "C" fn ng_random(
    kind: u32,
    seed: u64,
    stream: u32,
    element: u64,
    step: u64,
    a: f64,
    b: f64,
) -> f64 {
    let s = Stream::new(seed, stream);
    match kind {
        0 => s.uniform(element, step, 0),
        1 => s.normal(element, step, 0),
        2 => a + (b - a) * s.uniform(element, step, 0),
        3 => a + b * s.normal(element, step, 0),
        4 => s.poisson(element, step, a),
        _ => crate::eval::b2f(s.uniform(element, step, 0) < a),
    }
}

/// A JIT of its own (`inspect --clif` compiles into one).
#[cfg(feature = "jit")]
pub fn new_jit() -> Result<Jit, codegen::CodegenError> {
    Jit::new(&helpers())
}

/// The host functions of generated code that live in the runtime.
pub fn helpers() -> Helpers {
    Helpers {
        random: ng_random as *const u8,
    }
}

/// JIT state of a simulation: the model's shared generated code, and per expression what the
/// simulation found out about it.
pub struct JitState {
    /// Shared by every simulation of the model (`Compiled::kernels`).
    source: codegen::KernelSource,
    /// Per expression, computed once: whether it compiles, its inputs, and whether it varies
    /// per element by itself.
    facts: RefCell<Vec<Option<std::rc::Rc<ExprFacts>>>>,
    /// Vectorise fused kernels.
    pub simd: bool,
}

struct ExprFacts {
    jittable: bool,
    inputs: Vec<codegen::InputKey>,
    uses_element: bool,
    /// Whether it draws random numbers (`codegen::draws`), whose keys differ at set-up.
    draws: bool,
}

impl JitState {
    /// Use the model's generated code, creating its JIT on first use (a native runner sets
    /// its table before).
    pub fn new(
        program: &neurograph_compiler::Compiled,
        simd: bool,
    ) -> Result<JitState, codegen::CodegenError> {
        let source = match program.kernels.get() {
            Some(j) => j.clone(),
            None => {
                let fresh = codegen::KernelSource::new_jit(&helpers())?;
                // Another simulation may have set it meanwhile: use whichever is in place.
                program.kernels.get_or_init(|| fresh).clone()
            }
        };
        Ok(JitState {
            source,
            facts: RefCell::new(vec![None; program.model.exprs.len()]),
            simd,
        })
    }

    /// Where the generated code comes from.
    pub fn source(&self) -> &codegen::KernelSource {
        &self.source
    }
}

/// One input column for a checked kernel call.
#[derive(Debug, Clone, Copy)]
pub enum Column<'a> {
    Scalar(f64),
    Element(&'a [f64]),
    Gather {
        values: &'a [f64],
        index: &'a [u32],
        offset: i64,
        /// Every entry of `index` is below this (a connectivity's endpoint indices are below
        /// the endpoint's size: `Connectivity::from_pairs` could not have built them
        /// otherwise), so the reads are checked in O(1) instead of over the whole index.
        bound: usize,
    },
}

/// Everything a compiled expression reads, as slices whose lengths are checked before the call.
pub struct CallArgs<'a> {
    pub n: usize,
    pub elems: Option<&'a [u32]>,
    pub columns: Vec<Column<'a>>,
    pub pre_idx: Option<&'a [u32]>,
    pub post_idx: Option<&'a [u32]>,
    pub t: f64,
    pub step: u64,
    pub node_key: u64,
    pub seed: u64,
    pub size: usize,
}

/// Call a compiled kernel after checking that every read stays inside its slice; an error
/// says which check failed, and nothing was called.
pub fn call_checked(
    kernel: &codegen::Kernel,
    key: &KernelKey,
    args: &CallArgs,
) -> Result<Vec<f64>, SimError> {
    call_checked_text(kernel, key, args).map_err(SimError::new)
}

fn call_checked_text(
    kernel: &codegen::Kernel,
    key: &KernelKey,
    args: &CallArgs,
) -> Result<Vec<f64>, String> {
    // The checks below are against `key`: it must be what the kernel was compiled for.
    if *key != kernel.key {
        return Err("kernel called with another key than it was compiled for".to_string());
    }
    if args.columns.len() != kernel.inputs.len() || key.modes.len() != kernel.inputs.len() {
        return Err(format!(
            "kernel takes {} inputs, {} given",
            kernel.inputs.len(),
            args.columns.len()
        ));
    }
    if key.subset != args.elems.is_some() {
        return Err("element subset does not match the compiled kernel".to_string());
    }
    // Largest element index the kernel will use.
    let max_e = match args.elems {
        Some(e) => {
            if e.len() != args.n {
                return Err(format!(
                    "{} element indices for {} elements",
                    e.len(),
                    args.n
                ));
            }
            e.iter().copied().max().map(|m| m as usize + 1).unwrap_or(0)
        }
        None => args.n,
    };
    for idx in [args.pre_idx, args.post_idx].into_iter().flatten() {
        if idx.len() < max_e {
            return Err(format!(
                "endpoint index array has {} entries, {max_e} needed",
                idx.len()
            ));
        }
    }
    let [pre, post] = kernel.reads_index;
    if key.synapses && ((pre && args.pre_idx.is_none()) || (post && args.post_idx.is_none())) {
        return Err("synapse kernel without the endpoint indices it reads".to_string());
    }
    let mut inputs = Vec::with_capacity(args.columns.len());
    for (k, (c, mode)) in args.columns.iter().zip(&key.modes).enumerate() {
        let arg = match (c, mode) {
            (Column::Scalar(v), InputMode::Scalar) => InputArg {
                ptr: v as *const f64,
                index: std::ptr::null(),
                offset: 0,
            },
            (Column::Element(v), InputMode::Element) => {
                if v.len() < max_e {
                    return Err(format!("input {k} has {} values, {max_e} needed", v.len()));
                }
                InputArg {
                    ptr: v.as_ptr(),
                    index: std::ptr::null(),
                    offset: 0,
                }
            }
            (
                Column::Gather {
                    values,
                    index,
                    offset,
                    bound,
                },
                InputMode::Gather,
            ) => {
                if index.len() < max_e {
                    return Err(format!(
                        "input {k}: index array has {} entries, {max_e} needed",
                        index.len()
                    ));
                }
                // Every index below `bound`: every read inside `values` when the whole range
                // is; else look at the indices used.
                let whole = *offset >= 0
                    && (*offset as u64).saturating_add(*bound as u64) <= values.len() as u64;
                let (lo, hi) = if whole {
                    (0, 0)
                } else {
                    index[..max_e]
                        .iter()
                        .map(|&i| i as i64 + offset)
                        .fold((i64::MAX, i64::MIN), |(lo, hi), g| (lo.min(g), hi.max(g)))
                };
                if !whole && max_e > 0 && (lo < 0 || hi >= values.len() as i64) {
                    return Err(format!(
                        "input {k}: gathered index {} outside {} values",
                        if lo < 0 { lo } else { hi },
                        values.len()
                    ));
                }
                InputArg {
                    ptr: values.as_ptr(),
                    index: index.as_ptr(),
                    offset: *offset,
                }
            }
            _ => {
                return Err(format!(
                    "input {k} does not have the compiled mode {mode:?}"
                ))
            }
        };
        inputs.push(arg);
    }
    let mut out = vec![0.0; args.n];
    let ka = KernelArgs {
        n: args.n as u64,
        elems: args.elems.map_or(std::ptr::null(), <[u32]>::as_ptr),
        out: out.as_mut_ptr(),
        inputs: inputs.as_ptr(),
        pre_idx: args.pre_idx.map_or(std::ptr::null(), <[u32]>::as_ptr),
        post_idx: args.post_idx.map_or(std::ptr::null(), <[u32]>::as_ptr),
        t: args.t,
        step: args.step,
        node_key: args.node_key,
        seed: args.seed,
        size: args.size as u64,
    };
    // SAFETY: every pointer in `ka` comes from a slice that outlives the call, `out` has `n`
    // entries, and the checks above bound every index the generated code computes (element
    // indices below `max_e`, gathered indices inside their columns).
    unsafe { (kernel.func)(&ka) };
    Ok(out)
}

impl Sim {
    fn facts(&self, js: &JitState, e: Handle<Expr>) -> std::rc::Rc<ExprFacts> {
        let mut cache = js.facts.borrow_mut();
        cache[e.index()]
            .get_or_insert_with(|| {
                let mut inputs = Vec::new();
                codegen::inputs_of(&self.program.model, e, &mut inputs);
                std::rc::Rc::new(ExprFacts {
                    jittable: codegen::jittable(&self.program.model, e),
                    inputs,
                    uses_element: uses_element(&self.program.model, e),
                    draws: codegen::draws(&self.program.model, e),
                })
            })
            .clone()
    }

    /// Evaluate `e` with compiled code, or `None` when the interpreter should (the expression
    /// is not compilable, does not vary per element, or reads through a multi-part endpoint).
    pub(crate) fn jit_eval(&self, e: Handle<Expr>, ctx: &Ctx) -> Option<Col> {
        let js = self.jit.as_ref()?;
        if ctx.regime_state.is_some() {
            return None;
        }
        let facts = self.facts(js, e);
        // Set-up draws are keyed apart from the step's (the interpreter's `init_draw`); an
        // expression without draws evaluates the same either way (a connect condition of
        // `i` and `j`, an initial value of `j`).
        if !facts.jittable || (ctx.init_draw.is_some() && facts.draws) {
            return None;
        }
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        let synapses = ctx.node >= self.n_pops && ctx.node < self.nodes.len() - 1;
        if ctx.node == self.nodes.len() - 1 || (ctx.overrides.is_some() && ctx.elems.is_some()) {
            return None;
        }
        let keys = &facts.inputs;
        let mut columns = Vec::with_capacity(keys.len());
        let mut modes = Vec::with_capacity(keys.len());
        let mut per_element = facts.uses_element;
        for &(var, side) in keys {
            let over = if side == Side::Own {
                ctx.overrides.and_then(|o| o.get(&var))
            } else {
                None
            };
            let column = if let Some(c) = over {
                match c {
                    Col::S(v) => Column::Scalar(*v),
                    Col::V(v) => Column::Element(v),
                }
            } else if model.variables[var].scope == Scope::Global {
                match self.globals.get(&var) {
                    Some(Store::Uniform(v)) => Column::Scalar(*v),
                    _ => return None,
                }
            } else {
                let (node, gather) = match side {
                    Side::Own => (ctx.node, None),
                    Side::Pre | Side::Post => {
                        if !synapses {
                            return None;
                        }
                        let p = self.proj_of(ctx.node);
                        let map = if side == Side::Pre {
                            &self.pre_maps[p]
                        } else {
                            &self.post_maps[p]
                        };
                        if map.parts.len() != 1 {
                            return None;
                        }
                        let (node, start, offset, _) = map.parts[0];
                        let (idx, bound) = if side == Side::Pre {
                            (self.conn[p].pre(), self.conn[p].n_pre)
                        } else {
                            (self.conn[p].post(), self.conn[p].n_post)
                        };
                        (node, Some((idx, start as i64 - offset as i64, bound)))
                    }
                };
                match (self.nodes[node].vars.get(&var), gather) {
                    (Some(Store::Uniform(v)), _) => Column::Scalar(*v),
                    (Some(Store::Elements(v)), None) => Column::Element(v),
                    (Some(Store::Elements(v)), Some((index, offset, bound))) => Column::Gather {
                        values: v,
                        index,
                        offset,
                        bound,
                    },
                    _ => return None,
                }
            };
            modes.push(match column {
                Column::Scalar(_) => InputMode::Scalar,
                Column::Element(_) => InputMode::Element,
                Column::Gather { .. } => InputMode::Gather,
            });
            per_element |= !matches!(column, Column::Scalar(_));
            columns.push(column);
        }
        if !per_element {
            return None; // the interpreter keeps element-independent values as one scalar
        }
        let key = KernelKey {
            expr: e,
            modes,
            subset: ctx.elems.is_some(),
            synapses,
        };
        // The model's JIT is shared by its simulations: hold it only to compile.
        let kernel = js.source.kernel(model, &key).ok()?;
        let conn = synapses.then(|| &self.conn[self.proj_of(ctx.node)]);

        let args = CallArgs {
            n: self.count(ctx),
            elems: ctx.elems,
            columns,
            // Only the indices it reads (`i`, `j`): made on first use, and for dense rows the
            // post index is not held otherwise.
            pre_idx: conn.filter(|_| kernel.reads_index[0]).map(|c| c.pre()),
            post_idx: conn.filter(|_| kernel.reads_index[1]).map(|c| c.post()),
            t: self.step as f64 * self.dt + ctx.time_offset,
            step: self.step,
            node_key: self.node_keys[ctx.node] << 32,
            seed: self.seed,
            size: self.nodes[ctx.node].size,
        };
        call_checked(&kernel, &key, &args).ok().map(Col::V)
    }
}

/// Whether an expression varies per element by itself (indices, random draws).
fn uses_element(model: &Model, e: Handle<Expr>) -> bool {
    match &model.exprs[e] {
        Expr::Builtin(Builtin::I | Builtin::J) => true,
        Expr::Call(f, args) => {
            matches!(
                f,
                Func::Rand
                    | Func::Randn
                    | Func::Uniform
                    | Func::Normal
                    | Func::TruncNormal
                    | Func::Poisson
                    | Func::Bernoulli
            ) || args.iter().any(|a| uses_element(model, *a))
        }
        Expr::Unary(_, a) => uses_element(model, *a),
        Expr::Binary(_, a, b) => uses_element(model, *a) || uses_element(model, *b),
        _ => false,
    }
}

/// What a population's fused kernel needs besides its state, found once per run.
pub(crate) struct FusedSetup {
    key: FusedKey,
    inputs: Vec<codegen::InputKey>,
    /// Exact integration: propagator (row-major) and constant input parts.
    phi: Vec<f64>,
    k: Vec<f64>,
    /// `key.state_vars()`: the columns the kernel updates.
    state_vars: Vec<Handle<Variable>>,
    /// The compiled kernel once asked for, or why it could not be made (kernels live as long
    /// as the JIT module or the runner).
    func: std::cell::OnceCell<Result<codegen::FusedFn, String>>,
    /// Argument buffers, reused from step to step.
    bufs: RefCell<FusedBufs>,
}

#[derive(Default)]
struct FusedBufs {
    columns: Vec<InputArg>,
    scalars: Vec<f64>,
    state: Vec<*mut f64>,
    pairs: Vec<codegen::Pair>,
    /// Spike lists of the threads' shares, their argument blocks and spike counts.
    shares: Vec<Vec<u32>>,
    blocks: Vec<SendArgs>,
    counts: Vec<AtomicU64>,
    /// Whether sharing the update between threads pays (`Sharing`).
    sharing: Sharing,
}

/// Whether a fused update runs faster on several threads: handing work over and moving the
/// state between cores' caches (the rest of the step reads and writes it on this thread)
/// costs microseconds per step, which a light update of a few thousand cells does not earn
/// back. The first `2 * TRIALS` steps alternate between one thread and all in blocks, each
/// timed from this call to the same call of the next step (so the rest of the step counts);
/// the faster wins for the rest of the run. The choice changes no result, only the time.
#[derive(Default)]
struct Sharing {
    calls: u32,
    one: f64,
    all: f64,
    decided: Option<bool>,
    /// When the previous call started, and whether it shared.
    last: Option<(std::time::Instant, bool)>,
}

/// Steps per side before `Sharing` decides, in blocks of `BLOCK` steps of one kind (one
/// thread, then all, then again), so that the cost of moving state between caches when the
/// kind changes is not charged to every step.
const TRIALS: u32 = 16;
const BLOCK: u32 = 8;

impl Sharing {
    /// Whether this call shares the update.
    fn share(&self) -> bool {
        // This call's index: the steps recorded, and the previous one, recorded by `start`.
        let index = self.calls + u32::from(self.last.is_some());
        self.decided.unwrap_or((index / BLOCK) % 2 == 1)
    }

    /// A call starts now, sharing or not: the previous call's step is timed.
    fn start(&mut self, shared: bool) {
        if self.decided.is_some() {
            return;
        }
        let now = std::time::Instant::now();
        if let Some((t, was_shared)) = self.last.replace((now, shared)) {
            self.record(was_shared, (now - t).as_secs_f64());
        }
    }

    /// Count a step that took `seconds` (shared or not).
    fn record(&mut self, shared: bool, seconds: f64) {
        // The first step of a block moves the state between caches: not counted.
        if !self.calls.is_multiple_of(BLOCK) {
            if shared {
                self.all += seconds;
            } else {
                self.one += seconds;
            }
        }
        self.calls += 1;
        if self.calls >= 2 * TRIALS {
            self.decided = Some(self.all < 0.9 * self.one);
        }
    }
}

/// A fused kernel call's arguments, sent to a worker thread.
struct SendArgs(FusedArgs);

// SAFETY: the pointers in the block are only used by the kernel during `Pool::run`, which
// returns after every call; each share writes its own elements and its own spike list.
unsafe impl Sync for SendArgs {}

/// Elements per thread below which a fused update runs on one thread (handing work over
/// costs about a microsecond).
const MIN_PER_THREAD: usize = 1024;

impl Sim {
    /// The key, inputs and constants of a population's (or a projection's synapse dynamics')
    /// fused kernel, or `None` when it does not qualify (see `codegen::fused_key`).
    fn fused_setup(&mut self, n: Node) -> Option<std::rc::Rc<FusedSetup>> {
        let node = self.node_index(n);
        if let Some(cached) = &self.fused_setups[node] {
            return cached.clone();
        }
        let setup = self.make_fused_setup(n).map(std::rc::Rc::new);
        self.fused_setups[node] = Some(setup.clone());
        setup
    }

    fn make_fused_setup(&mut self, n: Node) -> Option<FusedSetup> {
        let js = self.jit.as_ref()?;
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        let node = self.node_index(n);
        if self.spike_trains.contains_key(&node) && node < self.n_pops {
            return None;
        }
        let size = self.nodes[node].size;
        let mode_of = |(var, side): codegen::InputKey| {
            let store = if model.variables[var].scope == Scope::Global {
                self.globals.get(&var)
            } else {
                self.nodes[node].vars.get(&var)
            };
            match (side, store) {
                (Side::Own, Some(Store::Uniform(_))) => Some(InputMode::Scalar),
                (Side::Own, Some(Store::Elements(v))) if v.len() == size => {
                    Some(InputMode::Element)
                }
                _ => None,
            }
        };
        let (mut key, inputs, d) = match n {
            Node::Population(p) => {
                let ct = &model.cell_types[model.populations[p].cell_type];
                let method = self
                    .program
                    .info
                    .cell_methods
                    .get(&model.populations[p].cell_type);
                let (key, inputs) =
                    codegen::fused_key(model, ct, method.copied(), mode_of, js.simd)?;
                (key, inputs, &ct.dynamics)
            }
            Node::Projection(p) => {
                let d = &model.projections[p].code.dynamics;
                let method = self.program.info.projection_methods.get(&p).copied();
                let (key, inputs) =
                    codegen::fused_key_synapses(model, d, method, mode_of, js.simd)?;
                (key, inputs, d)
            }
        };
        // Exact: the propagator and the constant input part, as the interpreter computes them.
        let (phi, k) = if key.euler.is_some() {
            (Vec::new(), Vec::new())
        } else {
            if !self.exact.contains_key(&node) {
                let plan = self.exact_plan(node, d);
                self.exact.insert(node, plan);
            }
            self.exact_constants(node, d)?
        };
        if key.euler.is_none() {
            // Which products and constants the interpreter's `sparse_dot` performs.
            key.pattern = phi.iter().chain(&k).map(|x| *x != 0.0).collect();
        }
        Some(FusedSetup {
            state_vars: key.state_vars(),
            key,
            inputs,
            phi,
            k,
            func: std::cell::OnceCell::new(),
            bufs: RefCell::new(FusedBufs::default()),
        })
    }

    /// Whether population `p`'s fused kernel may run this step: it qualifies, and every column
    /// it reads or writes has the kind and length it was compiled for (fills the argument
    /// buffers on the way). `try_fused` runs the kernel only after this.
    /// Whether the fused kernel of `n` may run on this simulation's buffers (every length
    /// and index it trusts checked).
    pub fn fused_fits(&mut self, n: Node) -> Result<(), SimError> {
        self.fused_fits_text(n).map_err(SimError::new)
    }

    fn fused_fits_text(&mut self, n: Node) -> Result<(), String> {
        let setup = self
            .fused_setup(n)
            .ok_or_else(|| "the node does not qualify for a fused kernel".to_string())?;
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        let node = self.node_index(n);
        let size = self.nodes[node].size;
        let mut bufs = setup.bufs.borrow_mut();
        let FusedBufs {
            columns,
            scalars,
            state: state_ptrs,
            ..
        } = &mut *bufs;
        columns.clear();
        scalars.clear();
        state_ptrs.clear();
        let name = |v: Handle<Variable>| model.variables[v].name.as_str();
        // Input columns for this step; a store whose kind changed since set-up ends fusing.
        for (&(var, _), mode) in setup.inputs.iter().zip(&setup.key.modes) {
            let store = if model.variables[var].scope == Scope::Global {
                self.globals.get(&var)
            } else {
                self.nodes[node].vars.get(&var)
            };
            let ptr = match (store, mode) {
                (Some(Store::Uniform(v)), InputMode::Scalar) => {
                    scalars.push(*v);
                    v as *const f64
                }
                (Some(Store::Elements(v)), InputMode::Element) if v.len() == size => v.as_ptr(),
                _ => {
                    return Err(format!(
                        "input `{}` is not the {mode:?} of {size} values compiled for",
                        name(var)
                    ))
                }
            };
            columns.push(InputArg {
                ptr,
                index: std::ptr::null(),
                offset: 0,
            });
        }
        // Every state column and the countdown hold exactly `size` entries.
        for &v in &setup.state_vars {
            match self.nodes[node].vars.get_mut(&v) {
                Some(Store::Elements(col)) if col.len() == size => {
                    state_ptrs.push(Store::column_mut(col).as_mut_ptr())
                }
                Some(Store::Elements(col)) => {
                    return Err(format!(
                        "state column `{}` has {} values for {size} cells",
                        name(v),
                        col.len()
                    ))
                }
                _ => return Err(format!("state `{}` is not a column", name(v))),
            }
        }
        if setup.key.refractory && self.ref_until.get(node).is_none_or(|r| r.len() != size) {
            return Err("refractory countdown does not fit the population".to_string());
        }
        Ok(())
    }

    /// The fused update of a population when it qualifies: integration, refractoriness and
    /// spike detection in one generated loop. Returns false (nothing done) otherwise.
    pub(crate) fn try_fused(&mut self, n: Node) -> bool {
        if self.jit.is_none() || self.fused_fits(n).is_err() {
            return false;
        }
        let Some(setup) = self.fused_setup(n) else {
            return false;
        };
        let Some(js) = self.jit.as_ref() else {
            return false;
        };
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        let node = self.node_index(n);
        // Spike lists, countdowns and counts belong to populations.
        let population = matches!(n, Node::Population(_));
        let size = self.nodes[node].size;
        let (key, phi, k) = (&setup.key, &setup.phi, &setup.k);
        let mut bufs = setup.bufs.borrow_mut();
        let FusedBufs {
            columns,
            scalars,
            state: state_ptrs,
            pairs,
            shares,
            blocks,
            counts,
            sharing,
        } = &mut *bufs;
        let Ok(func) = *setup.func.get_or_init(|| fused_kernel(js, model, key)) else {
            return false;
        };
        // The spike list keeps its allocation from step to step (a cell type without a spike
        // event gets an empty list that stays empty).
        let mut spikes = match self.spikes.get_mut(node).and_then(|s| s.first_mut()) {
            Some(list) if population => std::mem::take(list),
            _ => Vec::new(),
        };
        spikes.clear();
        if key.threshold.is_some() || key.probability.is_some() {
            spikes.reserve(size);
        }
        codegen::fused_pairs(key, phi, k, self.step, scalars, pairs);
        let args = FusedArgs {
            n: size as u64,
            first: 0,
            end: size as u64,
            state: state_ptrs.as_ptr(),
            ref_until: match self.ref_until.get(node) {
                Some(r) if population => r.as_ptr(),
                _ => std::ptr::null(),
            },
            step: self.step,
            inputs: columns.as_ptr(),
            spikes: spikes.as_mut_ptr(),
            t: self.step as f64 * self.dt,
            node_key: self.node_keys[node] << 32,
            seed: self.seed,
            pairs: pairs.as_ptr(),
        };
        let min = self.share_always.unwrap_or(MIN_PER_THREAD);
        let parts = match &self.pool {
            Some(pool) => pool.threads().min(size / min).max(1),
            None => 1,
        };
        let shared = parts > 1 && (self.share_always.is_some() || sharing.share());
        if parts > 1 && self.share_always.is_none() {
            sharing.start(shared);
        }
        self.shared_calls += u64::from(shared);
        if !shared {
            // SAFETY: the state pointers come from distinct per-variable vectors of `size`
            // entries and the inputs are scalars or columns of `size` entries (`fused_fits`),
            // the countdown holds `size` entries where the key reads it (`fused_fits`), `pairs`
            // holds the layout of `fused_pairs` for this key, and `spikes` has room for `size`
            // indices whenever the key has a spike event (without one the kernel writes no
            // index); the kernel touches element indices below `size` only.
            let count = unsafe { func(&args) } as usize;
            // SAFETY: the kernel wrote indices `0..count` (count <= size <= capacity).
            unsafe { spikes.set_len(count.min(size).min(spikes.capacity())) };
        } else {
            // Threads update disjoint ranges of elements, each writing its own spike list;
            // the lists, ascending within and between ranges, are joined in order: the same
            // list, state and draws as one call (every draw is keyed by element and step).
            let ranges = crate::pool::split(size, parts);
            shares.resize_with(ranges.len(), Vec::new);
            counts.resize_with(ranges.len(), || AtomicU64::new(0));
            blocks.clear();
            for (share, r) in shares.iter_mut().zip(&ranges) {
                share.clear();
                share.reserve(r.len());
                blocks.push(SendArgs(FusedArgs {
                    first: r.start as u64,
                    end: r.end as u64,
                    spikes: share.as_mut_ptr(),
                    ..args
                }));
            }
            let (blocks, counts) = (&*blocks, &*counts);
            let pool = self.pool.as_mut().expect("parts > 1 needs the pool");
            pool.run(blocks.len(), &|k| {
                // SAFETY: as for one call above, for elements `first..end` only, whose
                // spikes go to this share's own list of `end - first` capacity; the ranges
                // are disjoint, so no element's state is touched by two threads.
                let c = unsafe { func(&blocks[k].0) };
                counts[k].store(c, Ordering::Relaxed);
            });
            for ((share, r), c) in shares.iter_mut().zip(&ranges).zip(counts) {
                let c = (c.load(Ordering::Relaxed) as usize).min(r.len());
                // SAFETY: the kernel wrote indices `0..c` of this share (c <= capacity).
                unsafe { share.set_len(c.min(share.capacity())) };
                spikes.extend_from_slice(share);
            }
        }

        if population {
            self.spike_counts[node] += spikes.len() as u64;
            if let Some(list) = self.spikes[node].first_mut() {
                *list = spikes;
            }
            self.fused_this_step[node] = true;
        }
        self.fused_calls += 1;
        true
    }
}

/// Whether one kernel call of the step runs generated code, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelDecision {
    /// The kernel call, in the spec's words (`E: fused update`, `EE: on pre`).
    pub what: String,
    /// `Err(reason)`: the interpreter runs it.
    pub generated: Result<(), String>,
}

impl Sim {
    /// The kernel set of this simulation, made before its first step: every fused update and
    /// every event-code kernel the step schedule calls, for the state as set up (parameters
    /// set, checkpoint restored). Kernels come from the model's JIT or a native runner's
    /// table; what cannot have generated code is reported with the reason, and the
    /// interpreter runs it. (Expression kernels, which the interpreter calls for single
    /// expressions, are still made when first evaluated.) Nothing runs and no state changes.
    pub fn prepare_kernels(&mut self) -> Vec<KernelDecision> {
        let mut out = Vec::new();
        if self.jit.is_none() {
            return out;
        }
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        let schedule = std::mem::take(&mut self.schedule);
        let dry = |sim: &mut Sim, what: String, code, node, rows| KernelDecision {
            what,
            generated: sim
                .event_code(code, node, &[], rows, None, true)
                .map_err(Cow::into_owned),
        };
        for &call in &schedule {
            match call {
                KernelCall::Integrate(n) => {
                    let d = crate::kernels::dynamics_of(model, n);
                    let (name, what, events) = match n {
                        // A population replaying a spike file, or of event-driven Poisson
                        // sources, has no update of its own.
                        Node::Population(p)
                            if self.spike_trains.contains_key(&p.index())
                                || self.poisson[p.index()].is_some() =>
                        {
                            continue
                        }
                        Node::Population(p) => {
                            let ct = &model.cell_types[model.populations[p].cell_type];
                            (
                                &model.populations[p].name,
                                "fused update",
                                !ct.events.is_empty(),
                            )
                        }
                        Node::Projection(p) => {
                            (&model.projections[p].name, "fused synapse dynamics", false)
                        }
                    };
                    if d.odes.is_empty() && d.updates.is_empty() && !events {
                        continue;
                    }
                    let generated = self.prepare_fused(n);
                    out.push(KernelDecision {
                        what: format!("{name}: {what}"),
                        generated,
                    });
                }
                KernelCall::DeliverPre(p) => {
                    let node = self.n_pops + p.index();
                    let code = codegen::EventCode::OnPre(p);
                    let what = format!("{}: on pre", model.projections[p].name);
                    // Without delays over the rows of the spiking sources, unless they do not
                    // qualify; else over the due synapses (as `deliver_pre` tries them).
                    let rows = self.conn[p.index()].delay_steps.is_empty()
                        && self
                            .event_code(code, node, &[], Some(0), None, true)
                            .is_ok();
                    out.push(dry(self, what, code, node, rows.then_some(0)));
                }
                KernelCall::OnStep(p) => {
                    let what = format!("{}: on step", model.projections[p].name);
                    let code = codegen::EventCode::OnStep(p);
                    out.push(dry(self, what, code, self.n_pops + p.index(), Some(0)));
                }
                KernelCall::DeliverPost(p) => {
                    let what = format!("{}: on post", model.projections[p].name);
                    let code = codegen::EventCode::OnPost(p);
                    out.push(dry(self, what, code, self.n_pops + p.index(), None));
                }
                KernelCall::Coupling(p) => {
                    for index in 0..model.projections[p].couplings.len() {
                        let what =
                            format!("{}: coupling sum {}", model.projections[p].name, index + 1);
                        let code = codegen::EventCode::Coupling {
                            projection: p,
                            index,
                        };
                        out.push(dry(self, what, code, self.n_pops + p.index(), Some(0)));
                    }
                }
                KernelCall::Reset(pop) => {
                    let cell = model.populations[pop].cell_type;
                    for (event, ev) in model.cell_types[cell].events.iter().enumerate() {
                        if ev.body.is_empty() {
                            continue;
                        }
                        let what = format!("{}: {} event", model.populations[pop].name, ev.name);
                        let code = codegen::EventCode::Cell { cell, event };
                        out.push(dry(self, what, code, pop.index(), None));
                    }
                }
                _ => {}
            }
        }
        self.schedule = schedule;
        out
    }

    /// Make sure the fused kernel of `n` exists (`prepare_kernels`).
    fn prepare_fused(&mut self, n: Node) -> Result<(), String> {
        let setup = self.fused_setup(n).ok_or_else(|| {
            "its integration method, events or updates do not qualify for a fused kernel"
                .to_string()
        })?;
        self.fused_fits_text(n)?;
        let program = std::sync::Arc::clone(&self.program);
        let js = self.jit.as_ref().ok_or("the interpreter was chosen")?;
        setup
            .func
            .get_or_init(|| fused_kernel(js, &program.model, &setup.key))
            .as_ref()
            .map(|_| ())
            .map_err(Clone::clone)
    }

    /// The kernel decisions, made before the first step (`prepare_kernels`) or now.
    pub fn kernel_decisions(&mut self) -> &[KernelDecision] {
        if self.kernel_decisions.is_none() {
            self.kernel_decisions = Some(self.prepare_kernels());
        }
        self.kernel_decisions.as_deref().unwrap_or_default()
    }
}

/// The fused kernel of `key` from the simulation's kernel source, or why there is none.
fn fused_kernel(js: &JitState, model: &Model, key: &FusedKey) -> Result<codegen::FusedFn, String> {
    js.source
        .fused(model, key)
        .map_err(|e| format!("no generated code: {e}"))
}

/// The event-code kernel for the column modes last seen (`None`: it could not be made).
type LastKernel = Option<(Vec<codegen::ColumnMode>, Option<codegen::DeliveryFn>)>;

/// What event code needs besides the state, found once per run.
pub(crate) struct DeliverySetup {
    columns: Vec<codegen::InputKey>,
    /// Whether the code reads the synapses' pre indices (a `pre.x` column or `i`); only then
    /// are they made (`Connectivity::pre`) and passed.
    reads_pre: bool,
    /// The kernels last used over a list and over rows, with the column modes they were
    /// compiled for (saves hashing the key every step).
    last: std::cell::RefCell<[LastKernel; 2]>,
    /// Each row's first post index when every row's posts are consecutive
    /// (`Sim::post_runs`): code over rows then runs over them (`DeliveryKey::runs`).
    runs: Option<std::sync::Arc<Vec<u32>>>,
    /// Whether code over runs may be split between threads by post element
    /// (`Sim::split_by_post_ok`).
    split_ok: bool,
    bufs: RefCell<DeliveryBufs>,
}

impl Sim {
    /// The set-up of event code on `node` (a projection's synapses or a population's cells),
    /// found once per run; `None` when it does not qualify.
    fn event_setup(
        &mut self,
        code: codegen::EventCode,
        node: usize,
    ) -> Option<std::rc::Rc<DeliverySetup>> {
        let k = match code {
            codegen::EventCode::OnPre(_) => 0,
            codegen::EventCode::OnPost(_) => 1,
            codegen::EventCode::Cell { event, .. } => event,
            codegen::EventCode::OnStep(_) => 2,
            codegen::EventCode::Coupling { index, .. } => 3 + index,
        };
        if let Some(Some(cached)) = self.event_setups[node].get(k) {
            return cached.clone();
        }
        let setup = self.make_event_setup(code).map(std::rc::Rc::new);
        let slots = &mut self.event_setups[node];
        if slots.len() <= k {
            slots.resize(k + 1, None);
        }
        slots[k] = Some(setup.clone());
        setup
    }

    /// The dense-rows layout of projection `p`: when every row's post elements are
    /// consecutive (all-to-all, one-to-one, block-diagonal connectivity) and the post index is
    /// not needed (`layout::dense_rows_allowed`), each row's first post index
    /// (`Connectivity::use_runs`); generated code over its rows then reads and writes the post
    /// side contiguously, on lanes, without the post index, and splits calls of at least
    /// `SPLIT_SYNAPSES` between threads by post element where `Sim::split_by_post_ok` allows.
    pub fn post_runs(&self, p: Handle<Projection>) -> Option<std::sync::Arc<Vec<u32>>> {
        self.conn[p.index()].runs().cloned()
    }

    /// Whether generated event code of projection `p` may run over `due`: every due synapse
    /// exists, and every endpoint index of the projection lies inside its endpoint (what the
    /// generated code trusts). `try_event_code` checks the second once per run (connectivity
    /// does not change during a run) and the first every call.
    pub fn delivery_fits(&self, p: Handle<Projection>, due: &[u32]) -> Result<(), SimError> {
        self.delivery_fits_text(p, due).map_err(SimError::new)
    }

    fn delivery_fits_text(&self, p: Handle<Projection>, due: &[u32]) -> Result<(), String> {
        let pi = p.index();
        let conn = &self.conn[pi];
        let n_syn = self.nodes[self.n_pops + pi].size;
        let rows_ok = conn.row_ptr.len() == self.pre_maps[pi].size() + 1
            && conn.row_ptr.windows(2).all(|w| w[0] <= w[1])
            && conn.row_ptr.last().is_some_and(|&e| e as usize == n_syn);
        if !rows_ok {
            return Err("row pointers do not describe the synapses".to_string());
        }
        // (Pre indices are the row pointers expanded: inside the pre endpoint by the check
        // above.)
        let size = self.post_maps[pi].size();
        if let Some(runs) = conn.runs() {
            // Dense rows: each row's posts run from its first for the row's length.
            if runs.len() + 1 != conn.row_ptr.len() {
                return Err(format!(
                    "{} dense rows for {} sources",
                    runs.len(),
                    conn.row_ptr.len() - 1
                ));
            }
            if let Some(i) = (0..runs.len()).find(|&i| runs[i] as usize + conn.row(i).len() > size)
            {
                return Err(format!(
                    "row {i}'s post elements run past the {size} endpoint elements"
                ));
            }
        } else {
            let post = conn.post();
            if post.len() != n_syn {
                return Err(format!("{} post indices for {n_syn} synapses", post.len()));
            }
            if let Some(j) = post.iter().find(|&&j| j as usize >= size) {
                return Err(format!(
                    "post index {j} outside the {size} endpoint elements"
                ));
            }
        }
        // Event code over rows splits each row at the post parts' boundaries: rows must be
        // sorted by post index (as `Connectivity::from_pairs` builds them).
        if !conn.rows_in_post_order() {
            return Err("a row's synapses are not in post order".to_string());
        }
        self.due_fits(p, due)
    }

    fn due_fits(&self, p: Handle<Projection>, due: &[u32]) -> Result<(), String> {
        let n_syn = self.nodes[self.n_pops + p.index()].size;
        match due.iter().find(|&&s| s as usize >= n_syn) {
            Some(s) => Err(format!("due synapse {s} of {n_syn}")),
            None => Ok(()),
        }
    }

    fn make_event_setup(&self, code: codegen::EventCode) -> Option<DeliverySetup> {
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        let columns = codegen::delivery_columns(model, &code.statements(model))?;
        match code {
            codegen::EventCode::OnPre(p)
            | codegen::EventCode::OnPost(p)
            | codegen::EventCode::OnStep(p) => self.delivery_fits(p, &[]).ok()?,
            // The accumulator stands in for the target: the value must not read the target.
            codegen::EventCode::Coupling { projection, index } => {
                self.delivery_fits(projection, &[]).ok()?;
                let c = &model.projections[projection].couplings[index];
                let mut reads = Vec::new();
                codegen::inputs_of(model, c.value, &mut reads);
                if reads.iter().any(|&(v, _)| v == c.target) {
                    return None;
                }
            }
            // Cell events read and write their own cells only.
            codegen::EventCode::Cell { .. } => {
                if columns.iter().any(|&(_, side)| side != Side::Own) {
                    return None;
                }
            }
        }
        let stmts = code.statements(model);
        let reads_pre = columns.iter().any(|&(_, side)| side == Side::Pre)
            || stmts
                .iter()
                .any(|st| codegen::reads_builtin(model, st.value, &[Builtin::I]));
        // (Code over rows: `on pre`, `on step`, couplings; `on post` goes through due lists.)
        let runs = code
            .projection()
            .filter(|_| !matches!(code, codegen::EventCode::OnPost(_)))
            .and_then(|p| self.post_runs(p));
        Some(DeliverySetup {
            columns,
            reads_pre,
            runs,
            split_ok: code
                .projection()
                .is_some_and(|p| self.split_by_post_ok(p.index(), &stmts)),
            last: std::cell::RefCell::new([None, None]),
            bufs: RefCell::new(DeliveryBufs::default()),
        })
    }

    /// Run event code with generated code over `due` (synapses of a projection, or the cells
    /// of a population that fired, `node` being the projection's or population's node).
    /// Returns false (nothing done) when it does not apply; the interpreter then runs it.
    ///
    /// `rows`: `Some(count)` when `due` holds the spiking sources of an `on pre` projection
    /// without delays, whose rows hold `count` synapses in all (the kernel runs over the CSR
    /// rows); `None` when `due` lists the elements.
    pub(crate) fn try_event_code(
        &mut self,
        code: codegen::EventCode,
        node: usize,
        due: &[u32],
        rows: Option<usize>,
    ) -> bool {
        self.event_code(code, node, due, rows, None, false).is_ok()
    }

    /// `try_event_code` over the due synapses of several parts whose writes are disjoint
    /// (`Sim::delivery_parts`: each part's post elements are its own), the parts on the
    /// pool's threads when `parallel`, else one after the other.
    pub(crate) fn try_event_code_parts(
        &mut self,
        code: codegen::EventCode,
        node: usize,
        parts: &[Vec<u32>],
        parallel: bool,
    ) -> bool {
        self.event_code(code, node, &[], None, Some((parts, parallel)), false)
            .is_ok()
    }

    /// `try_event_code`, or with `dry` only make sure its kernel exists, running nothing and
    /// changing no state. The error says why the interpreter runs it instead. (Written
    /// variables are states, which are columns from the set-up on; a shared value written
    /// would be refused by the code generator and interpreted.)
    fn event_code(
        &mut self,
        code: codegen::EventCode,
        node: usize,
        due: &[u32],
        rows: Option<usize>,
        split: Option<(&[Vec<u32>], bool)>,
        dry: bool,
    ) -> Result<(), Cow<'static, str>> {
        const MISFIT: &str = "the due elements or columns do not fit the compiled layout";
        let Some(js) = self.jit.as_ref() else {
            return Err("the interpreter was chosen".into());
        };
        let source = js.source.clone();
        let Some(setup) = self.event_setup(code, node) else {
            return Err(
                "its statements or the columns they touch do not qualify for generated code".into(),
            );
        };
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        // The element count, and for synapses the projection (whose maps `pre.x`, `post.x`
        // go through).
        let n_syn = self.nodes[node].size;
        let proj = match code {
            codegen::EventCode::OnPre(p)
            | codegen::EventCode::OnStep(p)
            | codegen::EventCode::Coupling { projection: p, .. }
                if rows.is_some() =>
            {
                // Sources inside the rows (the row pointers were checked at set-up).
                let n_pre = self.conn[p.index()].row_ptr.len().saturating_sub(1);
                if due.iter().any(|&i| i as usize >= n_pre) {
                    return Err(MISFIT.into());
                }
                Some(p.index())
            }
            codegen::EventCode::OnPre(p)
            | codegen::EventCode::OnPost(p)
            | codegen::EventCode::OnStep(p)
            | codegen::EventCode::Coupling { projection: p, .. } => {
                let fits = match split {
                    Some((lists, _)) => lists.iter().all(|d| self.due_fits(p, d).is_ok()),
                    None => self.due_fits(p, due).is_ok(),
                };
                if rows.is_some() || !fits {
                    return Err(MISFIT.into());
                }
                Some(p.index())
            }
            codegen::EventCode::Cell { .. } => {
                if split.is_some() || due.iter().any(|&e| e as usize >= n_syn) {
                    return Err(MISFIT.into());
                }
                None
            }
        };
        let pi = proj.unwrap_or(0);
        let stmts = code.statements(model);
        let coupling = matches!(code, codegen::EventCode::Coupling { .. });
        if coupling
            && !dry
            && proj.is_some_and(|pi| self.coupling_acc.len() != self.post_maps[pi].size())
        {
            return Err(MISFIT.into());
        }
        let mut bufs = setup.bufs.borrow_mut();
        let DeliveryBufs {
            scalars,
            modes,
            columns,
            parts,
            column_args,
            part_args,
        } = &mut *bufs;
        scalars.clear();
        modes.clear();
        columns.clear();
        parts.clear();
        // Shared values are copied into `scalars` (so that no pointer aliases a store
        // borrowed again below); columns are pointed at in place: for writing (copied first
        // if another projection shares them) where the code assigns the variable.
        let written = |var| stmts.iter().any(|st: &Statement| st.var == var);
        let column_ptr = |col: &mut std::sync::Arc<Vec<f64>>, var| writable(col, written(var));
        for &(var, side) in &setup.columns {
            let global = model.variables[var].scope == Scope::Global;
            if global || side == Side::Own {
                let store = if global {
                    self.globals.get_mut(&var)
                } else {
                    self.nodes[node].vars.get_mut(&var)
                };
                let (mode, src) = match store {
                    Some(Store::Uniform(v)) => {
                        scalars.push(*v);
                        (codegen::ColumnMode::Scalar, Src::Scalar(scalars.len() - 1))
                    }
                    Some(Store::Elements(col)) if !global && col.len() == n_syn => (
                        codegen::ColumnMode::Element,
                        Src::Column(column_ptr(col, var)),
                    ),
                    // An f32 column: the kernel reads and writes 4-byte values there.
                    Some(Store::Narrow(col)) if !global && col.len() == n_syn => (
                        codegen::ColumnMode::Element32,
                        Src::Column(writable(col, written(var)).cast()),
                    ),
                    _ => return Err("a column does not have the kind the code needs".into()),
                };
                modes.push(mode);
                columns.push((src, parts.len()));
                continue;
            }
            if proj.is_none() {
                return Err(MISFIT.into());
            }
            let map = if side == Side::Pre {
                &self.pre_maps[pi]
            } else {
                &self.post_maps[pi]
            };
            let first = parts.len();
            if coupling && side == Side::Post && stmts.iter().any(|st| st.var == var) {
                // The coupling's target: the accumulator, indexed by post endpoint index.
                let acc = self.coupling_acc.as_mut_ptr();
                for &(_, _, offset, count) in &map.parts {
                    parts.push((Src::Column(acc), 0, (offset + count) as u64));
                }
                modes.push(codegen::ColumnMode::Parts(map.parts.len() as u32));
                columns.push((Src::Column(std::ptr::null_mut()), first));
                continue;
            }
            for &(nd, start, offset, count) in &map.parts {
                let end = (offset + count) as u64;
                match self.nodes[nd].vars.get_mut(&var) {
                    Some(Store::Uniform(v)) => {
                        scalars.push(*v);
                        parts.push((Src::Scalar(scalars.len() - 1), 0, end));
                    }
                    Some(Store::Elements(col)) if start + count <= col.len() => {
                        let bias = start as i64 - offset as i64;
                        parts.push((Src::Column(column_ptr(col, var)), bias, end));
                    }
                    _ => {
                        return Err(
                            "an endpoint column does not have the kind the code needs".into()
                        )
                    }
                }
            }
            if parts.len() == first {
                return Err(MISFIT.into());
            }
            let count = (parts.len() - first) as u32;
            let shared = parts[first..]
                .iter()
                .any(|(src, ..)| matches!(src, Src::Scalar(_)));
            modes.push(if shared {
                codegen::ColumnMode::SharedParts(count)
            } else {
                codegen::ColumnMode::Parts(count)
            });
            columns.push((Src::Column(std::ptr::null_mut()), first));
        }
        // One base pointer for the shared values, taken after the last push; part tables are
        // filled before any pointer into them is taken.
        let scalar_base = scalars.as_mut_ptr();
        let resolve = |s: &Src| match s {
            Src::Scalar(k) => scalar_base.wrapping_add(*k),
            Src::Column(p) => *p,
        };
        part_args.clear();
        part_args.extend(parts.iter().map(|(src, bias, end)| codegen::PartArg {
            base: resolve(src),
            bias: *bias,
            stride: matches!(src, Src::Column(_)) as i64,
            end: *end,
        }));
        let part_base = part_args.as_ptr();
        column_args.clear();
        column_args.extend(columns.iter().map(|(src, first)| codegen::ColumnArg {
            ptr: resolve(src),
            parts: part_base.wrapping_add(*first),
        }));
        // The kernel for these modes, made (or found missing) once.
        let cached = match &setup.last.borrow()[rows.is_some() as usize] {
            Some((m, f)) if m == modes => Some(*f),
            _ => None,
        };
        let func = match cached {
            Some(f) => f,
            None => {
                let key = codegen::DeliveryKey::new(
                    model,
                    code,
                    modes.clone(),
                    rows.is_some(),
                    setup.runs.is_some(),
                );
                let func = source.delivery(model, &key);
                setup.last.borrow_mut()[rows.is_some() as usize] =
                    Some((key.modes, func.as_ref().ok().copied()));
                Some(func.map_err(|e| format!("no generated code: {e}"))?)
            }
        };
        let Some(func) = func else {
            return Err("no generated code for these columns".into());
        };
        if dry {
            return Ok(());
        }
        if let Some(split) = split {
            let reads_pre = setup.reads_pre;
            self.call_event_parts(func, &column_args[..], proj, node, split, reads_pre);
            self.event_code_calls[code.kind()] += 1;
            return Ok(());
        }
        // Room for one value per element, which the kernel writes before it reads them.
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.reserve(rows.unwrap_or(due.len()));
        let (pre_idx, post_idx) = match proj {
            Some(pi) => (
                // Rows mode reads presynaptic columns through each row's source: the pre
                // indices are not made for it.
                if setup.reads_pre && rows.is_none() {
                    self.conn[pi].pre().as_ptr()
                } else {
                    std::ptr::null()
                },
                // Code over dense rows computes the post indices.
                if rows.is_some() && setup.runs.is_some() {
                    std::ptr::null()
                } else {
                    self.conn[pi].post().as_ptr()
                },
            ),
            None => (std::ptr::null(), std::ptr::null()),
        };
        let args = codegen::DeliveryArgs {
            n: due.len() as u64,
            due: due.as_ptr(),
            columns: column_args.as_ptr(),
            pre_idx,
            post_idx,
            t: self.step as f64 * self.dt,
            step: self.step,
            node_key: self.node_keys[node] << 32,
            seed: self.seed,
            size: n_syn as u64,
            scratch: scratch.as_mut_ptr(),
            row_ptr: match (proj, rows) {
                (Some(pi), Some(_)) => self.conn[pi].row_ptr.as_ptr(),
                _ => std::ptr::null(),
            },
            row_first: setup
                .runs
                .as_ref()
                .filter(|_| rows.is_some())
                .map_or(std::ptr::null(), |r| r.as_ptr()),
            post_from: 0,
            post_to: ALL_POSTS,
        };
        // Over runs, with enough synapses, the pool's threads take one share of the post
        // elements each: every synapse and every post element is written by one thread, in
        // the order one call would write it.
        let windows = match (&self.pool, rows) {
            (Some(pool), Some(count))
                if setup.runs.is_some()
                    && setup.split_ok
                    && (count >= SPLIT_SYNAPSES || self.share_always.is_some()) =>
            {
                pool.threads()
            }
            _ => 1,
        };
        if windows > 1 {
            let n_post = self.post_maps[pi].size() as i64;
            let share = |w: usize| n_post * w as i64 / windows as i64;
            // SAFETY: as for one call below; each call writes only synapses whose post
            // element lies in its window, and those post elements (`split_ok`: nothing else,
            // and nothing another thread writes is read).
            unsafe {
                self.call_blocks(
                    func,
                    windows,
                    true,
                    |_| rows.unwrap_or(0),
                    |w, scratch| codegen::DeliveryArgs {
                        post_from: share(w),
                        post_to: share(w + 1),
                        scratch,
                        ..args
                    },
                );
            }
            self.scratch = scratch;
            self.event_code_calls[code.kind()] += 1;
            return Ok(());
        }
        // SAFETY: every due element is below the element count, or (rows) every source has a
        // row whose pointers lie inside the synapses (checked above and at set-up); per-element
        // columns hold one value per element; cell code reads no endpoint index (its columns
        // are all own, checked at set-up), and synapse endpoint indices are below their
        // endpoint's size (checked at set-up) and each part covers its endpoint range inside its column
        // (`start + count <= len`) or is a shared value (stride 0); shared values live in
        // `scalars` and part tables in `part_args`, neither resized after its pointers are
        // taken; `scratch` has capacity for `n` values (written before read); written variables are columns (converted above;
        // the kernel refuses to compile a written scalar).
        unsafe { func(&args) };
        self.scratch = scratch;
        self.event_code_calls[code.kind()] += 1;
        Ok(())
    }
}

impl Sim {
    /// Generated event code over the due synapses of several parts (`try_event_code_parts`),
    /// with the columns `event_code` set up: one call per part, each with its own scratch.
    fn call_event_parts(
        &mut self,
        func: codegen::DeliveryFn,
        columns: &[codegen::ColumnArg],
        proj: Option<usize>,
        node: usize,
        (parts, parallel): (&[Vec<u32>], bool),
        reads_pre: bool,
    ) {
        let pi = proj.expect("parts are delivered for a projection");
        let pre_idx = if reads_pre {
            self.conn[pi].pre().as_ptr()
        } else {
            std::ptr::null()
        };
        let base = codegen::DeliveryArgs {
            n: 0,
            due: std::ptr::null(),
            columns: columns.as_ptr(),
            pre_idx,
            post_idx: self.conn[pi].post().as_ptr(),
            t: self.step as f64 * self.dt,
            step: self.step,
            node_key: self.node_keys[node] << 32,
            seed: self.seed,
            size: self.nodes[node].size as u64,
            scratch: std::ptr::null_mut(),
            row_ptr: std::ptr::null(),
            row_first: std::ptr::null(),
            post_from: 0,
            post_to: ALL_POSTS,
        };
        // SAFETY: as for one call in `event_code` (every due synapse below the element count,
        // checked there; columns and parts set up there and not resized since). The parts'
        // writes are disjoint: each writes its own synapses' values and the post elements of
        // its own bounds (`delivery_parts` splits only code that writes nothing else, over a
        // post endpoint without repeated elements).
        unsafe {
            self.call_blocks(
                func,
                parts.len(),
                parallel,
                |k| parts[k].len(),
                |k, scratch| codegen::DeliveryArgs {
                    n: parts[k].len() as u64,
                    due: parts[k].as_ptr(),
                    scratch,
                    ..base
                },
            );
        }
    }

    /// `func` called on `count` argument blocks (`block(k, scratch)`), on the pool's threads
    /// when `parallel` (else one after the other), each with its own scratch of `room(k)`
    /// values, kept in `scratch_parts` from call to call.
    ///
    /// # Safety
    /// Each block must be valid for `func` given a scratch of `room(k)` values, and the
    /// blocks' calls must write disjoint memory and read nothing another one writes.
    unsafe fn call_blocks(
        &mut self,
        func: codegen::DeliveryFn,
        count: usize,
        parallel: bool,
        room: impl Fn(usize) -> usize,
        block: impl Fn(usize, *mut f64) -> codegen::DeliveryArgs,
    ) {
        let mut rooms = std::mem::take(&mut self.scratch_parts);
        rooms.resize_with(count, Vec::new);
        let calls: Vec<SendDelivery> = rooms
            .iter_mut()
            .take(count)
            .enumerate()
            .map(|(k, r)| {
                r.clear();
                r.reserve(room(k));
                SendDelivery(block(k, r.as_mut_ptr()))
            })
            .collect();
        // SAFETY: the caller's contract.
        let call = |k: usize| unsafe {
            func(&calls[k].0);
        };
        match &mut self.pool {
            Some(pool) if parallel && count > 1 => {
                let tasks = pool.threads().min(count);
                pool.run(tasks, &|t| (t..count).step_by(tasks).for_each(call));
            }
            _ => (0..count).for_each(call),
        }
        self.scratch_parts = rooms;
    }
}

/// A column's values in place: writable (copied first when another projection shares them)
/// where the code assigns the variable, else only read.
fn writable<T: Clone>(col: &mut std::sync::Arc<Vec<T>>, written: bool) -> *mut T {
    if written {
        std::sync::Arc::make_mut(col).as_mut_ptr()
    } else {
        col.as_ptr().cast_mut()
    }
}

/// A window end beyond every post index (`DeliveryArgs::post_to`; far from overflowing when
/// generated code subtracts a row's shift from it).
const ALL_POSTS: i64 = 1 << 40;

/// Synapses in the rows of one call from which code over runs is split between threads
/// (always with `Sim::share_always`).
const SPLIT_SYNAPSES: usize = 1 << 15;

/// Event code arguments sent to a worker thread (`Sim::call_event_parts`).
struct SendDelivery(codegen::DeliveryArgs);

// SAFETY: the pointers are only used by the kernel during `Pool::run`, which returns after
// every call; the parts write disjoint elements.
unsafe impl Sync for SendDelivery {}

/// Where a delivery column or part points: a copied shared value or a column in place.
enum Src {
    Scalar(usize),
    Column(*mut f64),
}

/// Argument buffers of generated event code, reused from step to step.
#[derive(Default)]
struct DeliveryBufs {
    scalars: Vec<f64>,
    modes: Vec<codegen::ColumnMode>,
    /// Per column: its source (plain columns) and its first entry in `parts`.
    columns: Vec<(Src, usize)>,
    /// Endpoint parts of every `Parts` column, back to back: source, bias, end.
    parts: Vec<(Src, i64, u64)>,
    column_args: Vec<codegen::ColumnArg>,
    part_args: Vec<codegen::PartArg>,
}
