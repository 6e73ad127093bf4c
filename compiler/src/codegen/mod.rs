//! What generated code is and how it is found, without Cranelift: the keys of the three kinds
//! of generated function, their argument blocks (`abi`), the host functions they call, and
//! `KernelSource`, which hands out kernels either from the JIT (feature `cranelift`, module
//! `emit`) or from a native runner's table of code written ahead of time.
//!
//! The kinds of generated function:
//! - expression kernels (`KernelKey`): one expression over many elements, each input read as a
//!   shared scalar, a per-element column or a column gathered through an index array;
//! - fused updates (`FusedKey`) of a population or of a projection's synapse dynamics:
//!   integration (exact with a sparse propagator, forward Euler, exponential Euler, RK4),
//!   refractoriness, discrete updates and the spike condition or probability in one loop;
//! - event code (`DeliveryKey`): `on pre` / `on post` statements over the due synapses or the
//!   sources' rows, cell event bodies (resets) over the fired cells, coupling sums.
//!
//! Safety: generated code reads and writes at the indices it is given; the runtime's safe
//! wrappers check every length against the element count and every index array against the
//! columns it indexes before a call (see `runtime::jit`).

use std::collections::HashMap;

pub mod abi;
mod deliver;
#[cfg(feature = "cranelift")]
pub mod emit;

pub use abi::{
    ColumnArg, DeliveryArgs, DeliveryFn, FusedArgs, FusedFn, InputArg, KernelArgs, KernelFn, Pair,
    PartArg,
};
pub use deliver::{delivery_columns, ColumnMode, DeliveryKey, EventCode};
#[cfg(feature = "cranelift")]
pub use emit::{isa, object, Codegen, DeliveryKernel, FusedKernel, Jit, SharedJit};

use crate::funcs::{self, FuncClass};
use crate::ir::*;

/// The CPU features generated code may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CpuFeatures {
    /// Everything this machine has (the JIT always; a runner for this machine).
    #[default]
    Native,
    /// Only the architecture's baseline (x86-64: SSE2): a runner for any machine of the
    /// architecture, built on one with more.
    Baseline,
}

impl CpuFeatures {
    pub fn name(self) -> &'static str {
        match self {
            CpuFeatures::Native => "native",
            CpuFeatures::Baseline => "baseline",
        }
    }
}

/// How a compiled expression reads one of its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputMode {
    /// One value shared by all elements: `ptr[0]`.
    Scalar,
    /// One value per evaluated element: `ptr[e]`.
    Element,
    /// Through an index array: `ptr[index[e] + offset]`.
    Gather,
}

/// An input of a compiled expression: a variable read from a side.
pub type InputKey = (Handle<Variable>, Side);

/// What to compile: an expression, how each input is read, whether elements are a subset, and
/// whether it runs over synapses (so `i`, `j` are endpoint indices).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelKey {
    pub expr: Handle<Expr>,
    pub modes: Vec<InputMode>,
    pub subset: bool,
    pub synapses: bool,
}

/// A compiled expression.
pub struct Kernel {
    pub func: KernelFn,
    /// Inputs in slot order.
    pub inputs: Vec<InputKey>,
    /// What it was compiled for.
    pub key: KernelKey,
    /// Whether it reads the synapses' pre and post endpoint indices (`i`, `j`; a synapse
    /// kernel without them gets no index it does not read).
    pub reads_index: [bool; 2],
}

/// `Kernel::reads_index` of an expression.
pub fn reads_index(model: &Model, e: Handle<Expr>) -> [bool; 2] {
    [
        reads_builtin(model, e, &[Builtin::I]),
        reads_builtin(model, e, &[Builtin::J]),
    ]
}

/// Host functions the generated code calls. The runtime supplies the random-number one so that
/// both backends draw through the same Rust code.
pub struct Helpers {
    /// `fn(kind, seed, stream, element, step, a, b) -> f64`; kinds: 0 rand, 1 randn, 2 uniform(a, b),
    /// 3 normal(a, b), 4 poisson(a), 5 bernoulli(a). Generated code draws the others inline
    /// (`rng`) and calls this for normal deviates and Poisson counts.
    pub random: *const u8,
}

/// Exported under this name for native runners' generated code.
#[no_mangle]
pub extern "C" fn ng_pure(func: u32, nargs: u32, a: f64, b: f64, c: f64) -> f64 {
    let f = funcs::FUNCS[func as usize].func;
    let args = [a, b, c];
    crate::eval_pure(f, &args[..nargs as usize]).unwrap_or(f64::NAN)
}

/// Exported under this name for native runners' generated code.
#[no_mangle]
pub extern "C" fn ng_pow(x: f64, y: f64) -> f64 {
    crate::pow_f64(x, y)
}

/// Exported under this name for native runners' generated code.
#[no_mangle]
pub extern "C" fn ng_rem(x: f64, y: f64) -> f64 {
    x.rem_euclid(y)
}

/// `crate::math::MATH_DATA`, which inline `exp` and `expm1` read; exported under this name for
/// native runners' generated code.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static ng_math_data: MathData = MathData(crate::math::MATH_DATA);

/// `MATH_DATA` on a 16-byte boundary: generated code loads its lane pairs as aligned.
#[repr(C, align(16))]
pub struct MathData(pub [u64; crate::math::MATH_DATA.len()]);

/// Exported under this name for native runners' generated code.
#[no_mangle]
pub extern "C" fn ng_exp(x: f64) -> f64 {
    crate::math::exp(x)
}
/// Exported under this name for native runners' generated code.
#[no_mangle]
pub extern "C" fn ng_ln(x: f64) -> f64 {
    x.ln()
}
/// Exported under this name for native runners' generated code.
#[no_mangle]
pub extern "C" fn ng_expm1(x: f64) -> f64 {
    crate::math::expm1(x)
}
/// Exported under this name for native runners' generated code.
#[no_mangle]
pub extern "C" fn ng_sin(x: f64) -> f64 {
    x.sin()
}
/// Exported under this name for native runners' generated code.
#[no_mangle]
pub extern "C" fn ng_cos(x: f64) -> f64 {
    x.cos()
}
/// Exported under this name for native runners' generated code.
#[no_mangle]
pub extern "C" fn ng_tanh(x: f64) -> f64 {
    crate::math::tanh(x)
}

/// Exported under this name for native runners' generated code.
#[no_mangle]
pub extern "C" fn ng_exprel(x: f64) -> f64 {
    crate::lower::exprel(x)
}
/// Exported under this name for native runners' generated code.
#[no_mangle]
pub extern "C" fn ng_sigmoid(x: f64) -> f64 {
    crate::lower::sigmoid(x)
}

/// One-argument functions generated code calls directly, without `ng_pure`'s dispatch: each
/// is the interpreter's `eval_pure` formula for that function (checked bit for bit by a test).
const UNARY: [(Func, &str, extern "C" fn(f64) -> f64); 8] = [
    (Func::Exp, "ng_exp", ng_exp),
    (Func::Log, "ng_ln", ng_ln),
    (Func::Expm1, "ng_expm1", ng_expm1),
    (Func::Sin, "ng_sin", ng_sin),
    (Func::Cos, "ng_cos", ng_cos),
    (Func::Tanh, "ng_tanh", ng_tanh),
    (Func::Exprel, "ng_exprel", ng_exprel),
    (Func::Sigmoid, "ng_sigmoid", ng_sigmoid),
];

/// Whether an expression can be compiled (everything but population-wide functions, loaded
/// arrays, tokens, regime-indexed values and per-regime arrays).
pub fn jittable(model: &Model, e: Handle<Expr>) -> bool {
    match &model.exprs[e] {
        Expr::Const(_) | Expr::Bool(_) | Expr::Builtin(_) => true,
        Expr::Var { var, .. } => model.variables[*var].regime.is_none(),
        Expr::Unary(_, a) => jittable(model, *a),
        Expr::Binary(_, a, b) => jittable(model, *a) && jittable(model, *b),
        // A truncated normal loops over redraws: the interpreter's (set-up values, mostly).
        Expr::Call(Func::TruncNormal, _) => false,
        Expr::Call(f, args) => {
            let class = funcs::FUNCS.iter().find(|i| i.func == *f).map(|i| i.class);
            matches!(class, Some(FuncClass::Pure | FuncClass::Random))
                && args.iter().all(|a| jittable(model, *a))
        }
        Expr::RegimeState(_) | Expr::Load(_) | Expr::Token { .. } | Expr::Array(_) => false,
    }
}

/// Inputs of an expression in first-use order.
pub fn inputs_of(model: &Model, e: Handle<Expr>, out: &mut Vec<InputKey>) {
    match &model.exprs[e] {
        Expr::Var { var, side } if !out.contains(&(*var, *side)) => out.push((*var, *side)),
        Expr::Unary(_, a) => inputs_of(model, *a, out),
        Expr::Binary(_, a, b) => {
            inputs_of(model, *a, out);
            inputs_of(model, *b, out);
        }
        Expr::Call(_, args) | Expr::Array(args) => {
            for a in args {
                inputs_of(model, *a, out);
            }
        }
        _ => {}
    }
}

/// Why generated code could not be made: a machine Cranelift does not support, or an
/// expression form the translator does not take (callers fall back to the interpreter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodegenError(pub String);

impl From<String> for CodegenError {
    fn from(message: String) -> CodegenError {
        CodegenError(message)
    }
}

/// Where a model's generated code comes from: compiled on demand by its JIT, or looked up in
/// a native runner's table (code written ahead of time by `object::ObjectCodegen`).
#[derive(Clone)]
pub enum KernelSource {
    #[cfg(feature = "cranelift")]
    Jit(SharedJit),
    Table(std::sync::Arc<KernelTable>),
}

/// The kernels of a native runner, by `kernel_id`.
pub struct KernelTable {
    functions: HashMap<String, usize>,
    /// Expression kernels asked for so far (with their inputs), `None` for those the table
    /// lacks: the interpreter asks again at every evaluation.
    exprs: std::sync::Mutex<HashMap<KernelKey, Option<std::sync::Arc<Kernel>>>>,
}

impl KernelTable {
    /// # Safety
    /// Each address must be a function with the signature of its key's kind (`KernelFn`,
    /// `FusedFn`, `DeliveryFn` for `K`, `F`, `D` keys), written by `ObjectCodegen` for the
    /// model the table is used with, and stay valid while the table lives.
    pub unsafe fn new(entries: impl IntoIterator<Item = (String, *const u8)>) -> KernelTable {
        KernelTable {
            functions: entries.into_iter().map(|(k, f)| (k, f as usize)).collect(),
            exprs: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn len(&self) -> usize {
        self.functions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    fn find(&self, key: KernelRef) -> Result<*const u8, CodegenError> {
        self.functions
            .get(&kernel_id(&key))
            .map(|&f| f as *const u8)
            .ok_or_else(|| CodegenError("not built into this runner".to_string()))
    }
}

impl KernelSource {
    /// A new JIT; an error in a build without one (a native runner's library).
    pub fn new_jit(helpers: &Helpers) -> Result<KernelSource, CodegenError> {
        #[cfg(feature = "cranelift")]
        return Ok(KernelSource::Jit(std::sync::Arc::new(
            std::sync::Mutex::new(Jit::new(helpers)?),
        )));
        #[cfg(not(feature = "cranelift"))]
        {
            let _ = helpers;
            Err(CodegenError(
                "this build has no JIT: kernels come from a native runner's table".to_string(),
            ))
        }
    }

    #[cfg(feature = "cranelift")]
    fn lock(j: &SharedJit) -> std::sync::MutexGuard<'_, Jit> {
        // A panic elsewhere while it was held leaves it usable: compilation either finished
        // or left nothing behind.
        j.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The expression kernel of `key`.
    pub fn kernel(
        &self,
        model: &Model,
        key: &KernelKey,
    ) -> Result<std::sync::Arc<Kernel>, CodegenError> {
        match self {
            #[cfg(feature = "cranelift")]
            KernelSource::Jit(j) => Self::lock(j).compile(model, key),
            KernelSource::Table(t) => {
                let mut found = t.exprs.lock().unwrap_or_else(|e| e.into_inner());
                let kernel = found.entry(key.clone()).or_insert_with(|| {
                    let code = t.find(KernelRef::Expr(key)).ok()?;
                    let mut inputs = Vec::new();
                    inputs_of(model, key.expr, &mut inputs);
                    // SAFETY: a `K` entry is a `KernelFn` (`KernelTable::new`).
                    let func = unsafe { std::mem::transmute::<*const u8, KernelFn>(code) };
                    Some(std::sync::Arc::new(Kernel {
                        func,
                        inputs,
                        key: key.clone(),
                        reads_index: reads_index(model, key.expr),
                    }))
                });
                kernel
                    .clone()
                    .ok_or_else(|| CodegenError("not built into this runner".to_string()))
            }
        }
    }

    /// The fused kernel of `key`.
    #[cfg_attr(not(feature = "cranelift"), allow(unused_variables))]
    pub fn fused(&self, model: &Model, key: &FusedKey) -> Result<FusedFn, CodegenError> {
        match self {
            #[cfg(feature = "cranelift")]
            KernelSource::Jit(j) => Self::lock(j).compile_fused(model, key).map(|k| k.func),
            KernelSource::Table(t) => {
                let code = t.find(KernelRef::Fused(key))?;
                // SAFETY: an `F` entry is a `FusedFn` (`KernelTable::new`).
                Ok(unsafe { std::mem::transmute::<*const u8, FusedFn>(code) })
            }
        }
    }

    /// The event-code kernel of `key`.
    #[cfg_attr(not(feature = "cranelift"), allow(unused_variables))]
    pub fn delivery(&self, model: &Model, key: &DeliveryKey) -> Result<DeliveryFn, CodegenError> {
        match self {
            #[cfg(feature = "cranelift")]
            KernelSource::Jit(j) => Self::lock(j).compile_delivery(model, key).map(|k| k.func),
            KernelSource::Table(t) => {
                let code = t.find(KernelRef::Delivery(key))?;
                // SAFETY: a `D` entry is a `DeliveryFn` (`KernelTable::new`).
                Ok(unsafe { std::mem::transmute::<*const u8, DeliveryFn>(code) })
            }
        }
    }

    /// Functions compiled (JIT) or available (runner table).
    pub fn functions(&self) -> usize {
        match self {
            #[cfg(feature = "cranelift")]
            KernelSource::Jit(j) => Self::lock(j).compiled_functions(),
            KernelSource::Table(t) => t.len(),
        }
    }
}

/// The host functions generated code calls, by symbol name (the JIT binds them to these
/// addresses; a native runner's runtime library exports them under these names).
pub fn helper_symbols(helpers: &Helpers) -> Vec<(&'static str, *const u8)> {
    let mut out = vec![
        ("ng_pure", ng_pure as *const u8),
        ("ng_pow", ng_pow as *const u8),
        ("ng_rem", ng_rem as *const u8),
        ("ng_random", helpers.random),
    ];
    out.extend(UNARY.iter().map(|(_, name, f)| (*name, *f as *const u8)));
    out.push(("ng_math_data", ng_math_data.0.as_ptr() as *const u8));
    out
}

/// How an input is read at the start of a run: globals and parameters with one value for all
/// elements are scalars, other own variables columns, other sides gathered.
pub fn static_mode(model: &Model, var: Handle<Variable>, side: Side) -> InputMode {
    let v = &model.variables[var];
    let uniform_param = v.kind == VarKind::Param && crate::const_eval(model, v.init).is_some();
    if v.scope == Scope::Global || uniform_param {
        InputMode::Scalar
    } else if side == Side::Own {
        InputMode::Element
    } else {
        InputMode::Gather
    }
}

/// The fused-kernel key of a cell type integrated with `method`, when it qualifies (no
/// equations, or exact, Euler, exponential Euler or RK4; at most one event, `spike when` or
/// `spike with probability`; every expression compilable). `mode_of` says how each memory
/// input is read, or `None` to give up.
pub fn fused_key(
    model: &Model,
    ct: &CellType,
    method: Option<Method>,
    mode_of: impl Fn(InputKey) -> Option<InputMode>,
    simd: bool,
) -> Option<(FusedKey, Vec<InputKey>)> {
    fused_key_of(
        model,
        &ct.dynamics,
        (&ct.events, ct.refractory.as_ref(), &ct.name),
        method,
        mode_of,
        simd,
    )
}

/// The fused-kernel key of a projection's synapse dynamics (no events, no refractoriness).
pub fn fused_key_synapses(
    model: &Model,
    d: &Dynamics,
    method: Option<Method>,
    mode_of: impl Fn(InputKey) -> Option<InputMode>,
    simd: bool,
) -> Option<(FusedKey, Vec<InputKey>)> {
    // The fused loop numbers elements itself: `i` and `j` (endpoint indices of a synapse)
    // stay with the interpreter.
    let reads_endpoints = d
        .odes
        .iter()
        .map(|o| o.rhs)
        .chain(d.updates.iter().map(|u| u.value))
        .any(|e| reads_builtin(model, e, &[Builtin::I, Builtin::J]));
    if reads_endpoints {
        return None;
    }
    fused_key_of(model, d, (&[], None, ""), method, mode_of, simd)
}

/// Whether evaluating `e` draws random numbers (a call of `rand`, `normal`, ...): only then
/// does the evaluation depend on how draws are keyed (set-up draws, step draws).
pub fn draws(model: &Model, e: Handle<Expr>) -> bool {
    match &model.exprs[e] {
        Expr::Unary(_, a) => draws(model, *a),
        Expr::Binary(_, a, b) => draws(model, *a) || draws(model, *b),
        Expr::Call(f, args) => {
            funcs::FUNCS
                .iter()
                .any(|i| i.func == *f && i.class == FuncClass::Random)
                || args.iter().any(|a| draws(model, *a))
        }
        Expr::Array(args) => args.iter().any(|a| draws(model, *a)),
        _ => false,
    }
}

/// Whether an expression reads one of the builtins `which` (iterative: expressions may nest
/// deeper than the stack allows recursion).
pub fn reads_builtin(model: &Model, e: Handle<Expr>, which: &[Builtin]) -> bool {
    let mut pending = vec![e];
    while let Some(e) = pending.pop() {
        match &model.exprs[e] {
            Expr::Builtin(b) if which.contains(b) => return true,
            Expr::Unary(_, a) => pending.push(*a),
            Expr::Binary(_, a, b) => pending.extend([*a, *b]),
            Expr::Call(_, args) | Expr::Array(args) => pending.extend(args.iter().copied()),
            _ => {}
        }
    }
    false
}

/// Whether an expression's value can change during a run other than through the integrated
/// variables `vars`: it reads the time, the step, a random draw or a state variable.
fn varies_in_run(model: &Model, e: Handle<Expr>, vars: &[Handle<Variable>]) -> bool {
    match &model.exprs[e] {
        Expr::Builtin(b) => matches!(b, Builtin::T | Builtin::Step),
        Expr::Var { var, .. } => {
            model.variables[*var].kind == VarKind::State && !vars.contains(var)
        }
        Expr::Unary(_, a) => varies_in_run(model, *a, vars),
        Expr::Binary(_, a, b) => varies_in_run(model, *a, vars) || varies_in_run(model, *b, vars),
        Expr::Call(f, args) => {
            funcs::FUNCS
                .iter()
                .any(|i| i.func == *f && i.class == FuncClass::Random)
                || args.iter().any(|a| varies_in_run(model, *a, vars))
        }
        Expr::Array(args) => args.iter().any(|a| varies_in_run(model, *a, vars)),
        _ => false,
    }
}

fn fused_key_of(
    model: &Model,
    d: &Dynamics,
    (events, refractory, type_name): (&[Event], Option<&Refractory>, &str),
    method: Option<Method>,
    mode_of: impl Fn(InputKey) -> Option<InputMode>,
    simd: bool,
) -> Option<(FusedKey, Vec<InputKey>)> {
    let integrates = !d.odes.is_empty();
    let qualifies = (!integrates
        || matches!(
            method,
            Some(Method::Exact | Method::Euler | Method::ExponentialEuler | Method::Rk4)
        ))
        && (integrates || !d.updates.is_empty() || !events.is_empty())
        && events.len() <= 1
        && events.iter().all(|e| e.name == "spike")
        && d.updates.iter().all(|u| {
            model.variables[u.var].regime.is_none() && model.variables[u.var].kind == VarKind::State
        });
    if !qualifies {
        return None;
    }
    let (threshold, probability) = match events.first() {
        None => (None, None),
        Some(ev) => match &ev.trigger {
            Trigger::When(c) => (Some(*c), None),
            Trigger::Probability(p) => (None, Some((*p, crate::event_stream(type_name, &ev.name)))),
        },
    };
    let method = if integrates { method } else { None };
    let vars: Vec<Handle<Variable>> = d.odes.iter().map(|o| o.var).collect();
    let euler =
        (method != Some(Method::Exact)).then(|| d.odes.iter().map(|o| o.rhs).collect::<Vec<_>>());
    let mut key = FusedKey {
        frozen: d
            .odes
            .iter()
            .map(|o| o.unless_refractory && refractory.is_some())
            .collect(),
        vars,
        refractory: matches!(refractory, Some(Refractory::Duration(_))),
        refractory_when: match refractory {
            Some(Refractory::Condition(c)) => Some(*c),
            _ => None,
        },
        threshold,
        probability,
        updates: d.updates.iter().map(|u| (u.var, u.value)).collect(),
        euler,
        exponential: method == Some(Method::ExponentialEuler),
        rk4: method == Some(Method::Rk4),
        pattern: if method == Some(Method::Exact) {
            vec![true; d.odes.len() * (d.odes.len() + 1)]
        } else {
            Vec::new()
        },
        f32_state: model.run.precision == Precision::F32,
        simd,
        modes: Vec::new(),
    };
    if !key.exprs().iter().all(|x| jittable(model, *x)) {
        return None;
    }
    // Exact integration takes its constant input part once per run (`FusedSetup`): only when
    // the right sides at x = 0 cannot change during the run (the interpreter evaluates them
    // every step).
    if key.euler.is_none()
        && d.odes
            .iter()
            .any(|o| varies_in_run(model, o.rhs, &key.vars))
    {
        return None;
    }
    let inputs = fused_inputs(model, &key);
    key.modes = inputs
        .iter()
        .map(|k| mode_of(*k))
        .collect::<Option<Vec<_>>>()?;
    Some((key, inputs))
}

/// The kernels a model needs, with the input modes they have at the start of a run
/// (parameters with one value for all elements are scalars): what `inspect --clif` prints and
/// what the `compile/<spec>` benchmark compiles. Labels say where each expression comes from.
pub fn model_kernels(model: &Model) -> Vec<(String, KernelKey)> {
    let mut out = Vec::new();
    let mode_of = |var: Handle<Variable>, side: Side| static_mode(model, var, side);
    let mut push = |label: String, e: Handle<Expr>, subset: bool, synapses: bool| {
        if !jittable(model, e) {
            return;
        }
        let mut inputs = Vec::new();
        inputs_of(model, e, &mut inputs);
        let modes = inputs.iter().map(|&(v, s)| mode_of(v, s)).collect();
        out.push((
            label,
            KernelKey {
                expr: e,
                modes,
                subset,
                synapses,
            },
        ));
    };
    let dynamics = |d: &Dynamics,
                    owner: &str,
                    push: &mut dyn FnMut(String, Handle<Expr>, bool, bool),
                    synapses: bool| {
        for o in &d.odes {
            push(
                format!("{owner}: d{}/dt", model.variables[o.var].name),
                o.rhs,
                false,
                synapses,
            );
        }
        for u in &d.updates {
            push(
                format!("{owner}: {} <-", model.variables[u.var].name),
                u.value,
                false,
                synapses,
            );
        }
    };
    for (_, ct) in model.cell_types.iter() {
        dynamics(&ct.dynamics, &ct.name, &mut push, false);
        for ev in &ct.events {
            let t = match &ev.trigger {
                Trigger::When(c) | Trigger::Probability(c) => *c,
            };
            push(format!("{}: event {}", ct.name, ev.name), t, false, false);
            for st in &ev.body {
                push(
                    format!(
                        "{}: {} reset of {}",
                        ct.name, ev.name, model.variables[st.var].name
                    ),
                    st.value,
                    true,
                    false,
                );
            }
        }
    }
    for (_, p) in model.projections.iter() {
        dynamics(&p.code.dynamics, &p.name, &mut push, true);
        for (trigger, stmts, subset) in [
            ("on pre", &p.code.on_pre, true),
            ("on post", &p.code.on_post, true),
            ("on step", &p.code.on_step, false),
        ] {
            for st in stmts {
                push(
                    format!("{}: {trigger} {}", p.name, model.variables[st.var].name),
                    st.value,
                    subset,
                    true,
                );
            }
        }
        for c in &p.couplings {
            push(
                format!(
                    "{}: coupling onto {}",
                    p.name, model.variables[c.target].name
                ),
                c.value,
                false,
                true,
            );
        }
    }
    out
}

/// A population update fused into one generated loop: exact integration with one propagator
/// and constant inputs, `unless refractory` holds, refractoriness from a countdown, and the
/// spike condition on the updated state. Per element it performs the interpreter's operations
/// in the interpreter's order (see `runtime::kernels::exact` and `detect`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FusedKey {
    /// ODE variables in equation order.
    pub vars: Vec<Handle<Variable>>,
    /// Held while refractory.
    pub frozen: Vec<bool>,
    /// Refractoriness from the countdown (`ref_until`).
    pub refractory: bool,
    /// Refractoriness from a condition on the state before the update.
    pub refractory_when: Option<Handle<Expr>>,
    /// The spike condition, when the cell type has a `spike when` event.
    pub threshold: Option<Handle<Expr>>,
    /// The spike probability and the stream of its draw, for a `spike with probability`
    /// event (a uniform draw per cell and step below the probability fires).
    pub probability: Option<(Handle<Expr>, u32)>,
    /// Discrete updates `x <- value` after integration, in order.
    pub updates: Vec<(Handle<Variable>, Handle<Expr>)>,
    /// `None`: exact integration with the propagator passed at run time. `Some(rhs)`: forward
    /// Euler with these right-hand sides, `x <- x + dt * rhs(x)` (or the scheme `exponential`
    /// or `rk4` names).
    pub euler: Option<Vec<Handle<Expr>>>,
    /// With `euler`: exponential Euler instead (`dx/dt = A x + B`, A and B from the right side
    /// at x = 0 and x = 1, as the interpreter).
    pub exponential: bool,
    /// With `euler`: the classical fourth-order Runge–Kutta step instead.
    pub rk4: bool,
    /// Modes of `fused_inputs(..)`, the memory inputs of the kernel.
    pub modes: Vec<InputMode>,
    /// Exact integration: which propagator entries (row-major, `m x m`) and then which
    /// constant input parts (`m`) are non-zero; the kernel multiplies and adds only those, as
    /// the interpreter does (`runtime::kernels::sparse_dot`). All `true` when unknown.
    pub pattern: Vec<bool>,
    pub f32_state: bool,
    /// Exact, Euler and RK4 steps in `f64x2` lanes where every expression is plain arithmetic
    /// (the per-lane operations are those of the scalar loop, which handles the remainder).
    pub simd: bool,
}

impl FusedKey {
    /// The state columns the kernel reads and writes: the ODE variables, then the variables of
    /// discrete updates that are not ODE variables.
    pub fn state_vars(&self) -> Vec<Handle<Variable>> {
        let mut out = self.vars.clone();
        for (v, _) in &self.updates {
            if !out.contains(v) {
                out.push(*v);
            }
        }
        out
    }

    /// The right-hand sides (`euler`), or none.
    fn rhs(&self) -> &[Handle<Expr>] {
        self.euler.as_deref().unwrap_or(&[])
    }

    /// Every expression the kernel evaluates, in slot order: the spike condition, the right
    /// sides, the updates' values, the refractory condition.
    fn exprs(&self) -> Vec<Handle<Expr>> {
        self.threshold
            .iter()
            .chain(self.rhs())
            .chain(self.updates.iter().map(|(_, e)| e))
            .chain(&self.refractory_when)
            .chain(self.probability.iter().map(|(p, _)| p))
            .copied()
            .collect()
    }
}

/// The inputs a fused kernel reads from memory: those of its expressions (`FusedKey::exprs`)
/// without its own state columns.
pub fn fused_inputs(model: &Model, key: &FusedKey) -> Vec<InputKey> {
    let state = key.state_vars();
    let mut all = Vec::new();
    for e in key.exprs() {
        inputs_of(model, e, &mut all);
    }
    all.retain(|(v, s)| !(*s == Side::Own && state.contains(v)));
    all
}

/// Where the shared values of a fused kernel lie in its pair buffer (`FusedArgs::pairs`),
/// each stored twice (`Pair`): the propagator (exact; row-major `m x m`) and the constant
/// input parts `sum_j gamma_ij c_j` (exact), then the step (as an integer), then the
/// scalar-mode inputs in slot order. `fused_pairs` fills it, generated code reads it; both
/// take the positions from here.
#[derive(Debug, Clone, Copy)]
pub struct PairLayout {
    /// Entries before the step: `m * (m + 1)` for exact integration, else 0.
    exact: usize,
}

impl PairLayout {
    pub fn of(key: &FusedKey) -> PairLayout {
        let m = key.vars.len();
        PairLayout {
            exact: if key.euler.is_none() { m * (m + 1) } else { 0 },
        }
    }

    pub fn step(&self) -> usize {
        self.exact
    }

    /// Scalar-mode input number `s` (counting scalar-mode slots only).
    pub fn scalar(&self, s: usize) -> usize {
        self.exact + 1 + s
    }

    /// The byte offset of entry `k` from the buffer's start.
    pub fn offset(&self, k: usize) -> i32 {
        i32::try_from(k * std::mem::size_of::<Pair>()).expect("pair buffers are small")
    }
}

/// The shared values of a fused kernel in its `PairLayout` (`out` is cleared first).
pub fn fused_pairs(
    key: &FusedKey,
    phi: &[f64],
    k: &[f64],
    step: u64,
    scalars: &[f64],
    out: &mut Vec<Pair>,
) {
    let layout = PairLayout::of(key);
    out.clear();
    if layout.step() > 0 {
        out.extend(phi.iter().chain(k).map(|x| Pair::f64(*x)));
    }
    debug_assert_eq!(out.len(), layout.step(), "propagator and constant parts");
    out.push(Pair([step; 2]));
    out.extend(scalars.iter().map(|x| Pair::f64(*x)));
    debug_assert_eq!(out.len(), layout.scalar(scalars.len()));
}

/// The text a kernel is found by in a runner's table.
pub fn kernel_id(key: &KernelRef) -> String {
    match key {
        KernelRef::Expr(k) => format!("K{k:?}"),
        KernelRef::Fused(k) => format!("F{k:?}"),
        KernelRef::Delivery(k) => format!("D{k:?}"),
    }
}

/// A key of any kind of kernel.
#[derive(Debug, Clone, Copy)]
pub enum KernelRef<'a> {
    Expr(&'a KernelKey),
    Fused(&'a FusedKey),
    Delivery(&'a DeliveryKey),
}
