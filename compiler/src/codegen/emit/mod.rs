//! Cranelift code generation (feature `cranelift`): the only module that knows Cranelift.
//!
//! A translator turns IR expressions into native code performing the reference interpreter's
//! operations in the interpreter's order (so results are bit-identical), into any Cranelift
//! module: the long-lived JIT (`Jit`) or an object file for native runners
//! (`object::ObjectCodegen`). Fused updates run four and two elements at a time in `f64x2`
//! lanes where it pays.
//!
//! Random draws run Philox4x32-10 inline (`rng`); exp, expm1 and tanh are inline (`math`: the
//! operations of `crate::math`, which the interpreter calls), as are exprel and sigmoid built
//! on them, sqrt, abs, floor, ceil and small constant integer powers; ln, sin and cos are
//! direct calls of the interpreter's formulas, other functions, general powers and the Poisson
//! sampler calls into the same Rust functions the interpreter uses.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, AbiParam, InstBuilder, MemFlagsData, Value};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};

mod deliver;
mod math;
pub mod object;
mod rng;

use super::abi::{FusedArgsValues, KernelArgsValues};
use super::*;
use crate::math::{POISSON_INVERSION_MAX_MEAN, POISSON_INVERSION_MAX_STEPS};
use crate::{BinOp, UnOp};
pub use deliver::DeliveryKernel;

/// Steps of the inline Poisson sampler written out with constant factors before its loop
/// (a mean of a few spikes per step rarely needs more).
const UNROLLED_POISSON_STEPS: u32 = 8;

/// The long-lived JIT module.
// SAFETY: a `Jit` owns its JIT module (executable memory it allocated, tables of declared
// functions) and compilation contexts; none of it is tied to the thread that created it (no
// thread-local state; the memory is ordinary mmap'ed pages). It is used from one thread at a
// time: shared, it sits behind a `Mutex` (`SharedJit`).
unsafe impl Send for Jit {}

impl Drop for Jit {
    fn drop(&mut self) {
        // SAFETY: the module is taken exactly once, here. Freeing its memory invalidates the
        // function pointers it handed out: every holder of those pointers (a simulation's
        // kernel set-ups) also holds the `Jit` (through its `SharedJit` or by owning it), so no
        // such pointer is called after this point.
        unsafe {
            let gen = std::mem::ManuallyDrop::take(&mut self.gen);
            gen.module.free_memory();
        }
    }
}

impl From<cranelift_module::ModuleError> for CodegenError {
    fn from(e: cranelift_module::ModuleError) -> CodegenError {
        CodegenError(e.to_string())
    }
}

/// A `Jit` shared by the simulations of one model.
pub type SharedJit = std::sync::Arc<std::sync::Mutex<Jit>>;

/// Code generation into any Cranelift module: the JIT (`Jit`, functions callable at once) or
/// an object file (`ObjectCodegen`, for native runners). The translators are the same for both.
pub struct Codegen<M: Module> {
    module: M,
    ctx: Context,
    fctx: FunctionBuilderContext,
    helper_ids: HelperIds,
    /// Linkage of defined functions (the JIT's are local; an object's are found through its
    /// kernel table).
    linkage: Linkage,
    /// Functions defined so far (names them uniquely).
    defined: usize,
    /// CLIF text of every compiled function, when asked for (`inspect --clif`).
    pub keep_clif: bool,
    /// With `keep_clif`: append the generated machine code to each text (`inspect --asm`).
    pub keep_asm: bool,
    pub clif: Vec<(String, String)>,
}

/// The long-lived JIT module and the functions compiled in it, by key.
pub struct Jit {
    /// Dropped by hand in `Drop`, which frees its executable memory.
    gen: std::mem::ManuallyDrop<Codegen<JITModule>>,
    /// Shared (`Arc`) so that a caller can run one without holding the JIT; a key that did not
    /// compile keeps its error (the interpreter asks at every evaluation).
    kernels: HashMap<KernelKey, Result<std::sync::Arc<Kernel>, CodegenError>>,
    fused: HashMap<FusedKey, FusedKernel>,
    delivery: HashMap<DeliveryKey, DeliveryKernel>,
}

fn sig<M: Module>(
    module: &M,
    params: &[types::Type],
    ret: Option<types::Type>,
) -> cranelift_codegen::ir::Signature {
    let mut s = module.make_signature();
    for p in params {
        s.params.push(AbiParam::new(*p));
    }
    if let Some(r) = ret {
        s.returns.push(AbiParam::new(r));
    }
    s
}

/// The code generator settings shared by the JIT and object files: optimised for speed, the
/// IR verifier in debug builds; `pic` for object files (linked into position-independent
/// executables); the host's CPU features, or only its architecture's baseline (`cpu`).
pub fn isa(
    pic: bool,
    cpu: CpuFeatures,
) -> Result<std::sync::Arc<dyn cranelift_codegen::isa::TargetIsa>, CodegenError> {
    let mut flags = settings::builder();
    let mut set = |k: &str, v: &str| flags.set(k, v).map_err(|e| CodegenError(e.to_string()));
    set("opt_level", "speed")?;
    set("use_colocated_libcalls", "false")?;
    set("is_pic", if pic { "true" } else { "false" })?;
    // The IR verifier checks this module's translation; release builds skip it.
    set(
        "enable_verifier",
        if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        },
    )?;
    cranelift_native::builder_with_options(cpu == CpuFeatures::Native)
        .map_err(|e| format!("this machine is not supported by Cranelift: {e}"))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| CodegenError(e.to_string()))
}

impl<M: Module> Codegen<M> {
    /// A code generator over `module`, with the host helpers declared as imports.
    pub fn with_module(mut module: M, linkage: Linkage) -> Result<Codegen<M>, CodegenError> {
        let (f64t, i32t, i64t) = (types::F64, types::I32, types::I64);
        let pure_sig = sig(&module, &[i32t, i32t, f64t, f64t, f64t], Some(f64t));
        let bin_sig = sig(&module, &[f64t, f64t], Some(f64t));
        let random_sig = sig(
            &module,
            &[i32t, i64t, i32t, i64t, i64t, f64t, f64t],
            Some(f64t),
        );
        let pure_id = module.declare_function("ng_pure", Linkage::Import, &pure_sig)?;
        let pow_id = module.declare_function("ng_pow", Linkage::Import, &bin_sig)?;
        let rem_id = module.declare_function("ng_rem", Linkage::Import, &bin_sig)?;
        let random_id = module.declare_function("ng_random", Linkage::Import, &random_sig)?;
        let unary_sig = sig(&module, &[f64t], Some(f64t));
        let mut unary = Vec::with_capacity(UNARY.len());
        for (f, name, _) in UNARY {
            unary.push((
                f,
                module.declare_function(name, Linkage::Import, &unary_sig)?,
            ));
        }
        // `exp` and `expm1` inline where fused multiply-adds are instructions.
        let fma = module
            .isa()
            .isa_flags()
            .iter()
            .find(|v| v.name == "has_fma")
            .is_none_or(|v| v.as_bool() == Some(true));
        let math_data = if fma {
            Some(module.declare_data("ng_math_data", Linkage::Import, false, false)?)
        } else {
            None
        };
        Ok(Codegen {
            ctx: module.make_context(),
            module,
            fctx: FunctionBuilderContext::new(),
            helper_ids: HelperIds {
                fixed: [pure_id, pow_id, rem_id, random_id],
                unary,
                math_data,
            },
            linkage,
            defined: 0,
            keep_clif: false,
            keep_asm: false,
            clif: Vec::new(),
        })
    }

    pub fn module_mut(&mut self) -> &mut M {
        &mut self.module
    }

    /// Take the module (to finish an object file).
    pub fn into_module(self) -> M {
        self.module
    }

    /// Start a function taking one pointer (its argument block) and returning `ret`: returns
    /// the pointer type and the frontend configuration to finalize it with.
    fn start_function(
        &mut self,
        ret: Option<types::Type>,
    ) -> (types::Type, cranelift_codegen::isa::TargetFrontendConfig) {
        let ptr = self.module.target_config().pointer_type();
        self.ctx.func.signature = sig(&self.module, &[ptr], ret);
        (ptr, self.module.target_config())
    }

    /// A fresh function name with this prefix.
    fn name(&mut self, prefix: &str) -> String {
        self.defined += 1;
        format!("ng_{prefix}{}", self.defined)
    }

    /// Define the function built in `self.ctx` under `name` (keeping its CLIF text when
    /// asked).
    fn define(&mut self, name: &str) -> Result<FuncId, CodegenError> {
        if self.keep_clif {
            self.clif
                .push((name.to_string(), self.ctx.func.display().to_string()));
        }
        let id = self
            .module
            .declare_function(name, self.linkage, &self.ctx.func.signature)?;
        self.ctx.set_disasm(self.keep_asm);
        self.module
            .define_function(id, &mut self.ctx)
            .map_err(|e| format!("{e:?}"))?;
        if let (true, Some(code), Some(last)) = (
            self.keep_asm,
            self.ctx.compiled_code(),
            self.clif.last_mut(),
        ) {
            last.1.push_str("\n; machine code\n");
            last.1.push_str(code.vcode.as_deref().unwrap_or(""));
        }
        self.module.clear_context(&mut self.ctx);
        Ok(id)
    }

    /// Run a translation; on failure leave no half-built function behind for the next one.
    fn attempt<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, CodegenError>,
    ) -> Result<T, CodegenError> {
        f(self).inspect_err(|_| self.module.clear_context(&mut self.ctx))
    }
}

impl Jit {
    pub fn new(helpers: &Helpers) -> Result<Jit, CodegenError> {
        let mut builder =
            JITBuilder::with_isa(isa(false, CpuFeatures::Native)?, default_libcall_names());
        for (name, address) in helper_symbols(helpers) {
            builder.symbol(name, address);
        }
        Ok(Jit {
            gen: std::mem::ManuallyDrop::new(Codegen::with_module(
                JITModule::new(builder),
                Linkage::Local,
            )?),
            kernels: HashMap::new(),
            fused: HashMap::new(),
            delivery: HashMap::new(),
        })
    }

    /// The code generator (its CLIF and assembly switches).
    pub fn codegen(&mut self) -> &mut Codegen<JITModule> {
        &mut self.gen
    }

    /// Make the function `id` callable and return its address.
    fn finalize(&mut self, id: FuncId) -> Result<*const u8, CodegenError> {
        self.gen.module.finalize_definitions()?;
        Ok(self.gen.module.get_finalized_function(id))
    }

    /// The keys compiled so far, by kind (what a native runner's object file repeats).
    pub fn kernel_keys(&self) -> impl Iterator<Item = &KernelKey> {
        self.kernels
            .iter()
            .filter(|(_, k)| k.is_ok())
            .map(|(key, _)| key)
    }

    pub fn fused_keys(&self) -> impl Iterator<Item = &FusedKey> {
        self.fused.keys()
    }

    pub fn delivery_keys(&self) -> impl Iterator<Item = &DeliveryKey> {
        self.delivery.keys()
    }

    /// Functions compiled so far (expression kernels, fused updates, event code).
    pub fn compiled_functions(&self) -> usize {
        self.kernels.len() + self.fused.len() + self.delivery.len()
    }

    /// Compile (once) the kernel for `key`.
    pub fn compile(
        &mut self,
        model: &Model,
        key: &KernelKey,
    ) -> Result<std::sync::Arc<Kernel>, CodegenError> {
        if !self.kernels.contains_key(key) {
            let kernel = self
                .gen
                .attempt(|g| g.translate(model, key))
                .and_then(|(id, inputs)| {
                    let code = self.finalize(id)?;
                    // SAFETY: `code` was just defined with the signature `fn(*const
                    // KernelArgs)` (one pointer argument, no return value), which is `KernelFn`.
                    let func = unsafe { std::mem::transmute::<*const u8, KernelFn>(code) };
                    Ok(std::sync::Arc::new(Kernel {
                        func,
                        inputs,
                        key: key.clone(),
                        reads_index: crate::codegen::reads_index(model, key.expr),
                    }))
                });
            self.kernels.insert(key.clone(), kernel);
        }
        self.kernels[key].clone()
    }

    /// Compile (once per key) a fused population update.
    pub fn compile_fused(
        &mut self,
        model: &Model,
        key: &FusedKey,
    ) -> Result<&FusedKernel, CodegenError> {
        if !self.fused.contains_key(key) {
            let id = self.gen.attempt(|g| g.translate_fused(model, key))?;
            let code = self.finalize(id)?;
            // SAFETY: `code` was just defined with the signature `fn(*const FusedArgs) -> u64`,
            // which is `FusedFn`.
            let func = unsafe { std::mem::transmute::<*const u8, FusedFn>(code) };
            self.fused.insert(key.clone(), FusedKernel { func });
        }
        Ok(&self.fused[key])
    }

    /// Compile (once per key) event code.
    pub fn compile_delivery(
        &mut self,
        model: &Model,
        key: &DeliveryKey,
    ) -> Result<&DeliveryKernel, CodegenError> {
        if !self.delivery.contains_key(key) {
            let id = self.gen.attempt(|g| g.translate_delivery(model, key))?;
            let code = self.finalize(id)?;
            // SAFETY: `code` was just defined with the signature `fn(*const DeliveryArgs)`,
            // which is `DeliveryFn`.
            let func = unsafe { std::mem::transmute::<*const u8, DeliveryFn>(code) };
            self.delivery.insert(key.clone(), DeliveryKernel { func });
        }
        Ok(&self.delivery[key])
    }
}

impl<M: Module> Codegen<M> {
    /// Translate an expression kernel; returns the function and its inputs in slot order.
    fn translate(
        &mut self,
        model: &Model,
        key: &KernelKey,
    ) -> Result<(FuncId, Vec<InputKey>), CodegenError> {
        let mut inputs = Vec::new();
        inputs_of(model, key.expr, &mut inputs);
        if inputs.len() != key.modes.len() {
            return Err(CodegenError(format!(
                "kernel key has {} modes for {} inputs",
                key.modes.len(),
                inputs.len()
            )));
        }
        let (ptr, frontend_config) = self.start_function(None);
        let name = self.name(&format!("e{}_", key.expr.index()));
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let refs = FuncRefs::declare(&mut self.module, &self.helper_ids, b.func);
            let ([header, body, exit], args) = open_kernel(&mut b);
            let flags = MemFlagsData::trusted();
            let KernelArgsValues {
                n,
                elems,
                out,
                inputs: inputs_ptr,
                pre_idx,
                post_idx,
                t,
                step,
                node_key,
                seed,
                size,
            } = KernelArgsValues::load(&mut b, args, ptr);
            let slots = load_slots(&mut b, inputs_ptr, &key.modes, ptr);
            let k = b.declare_var(types::I64);
            let zero = b.ins().iconst(types::I64, 0);
            b.def_var(k, zero);
            b.ins().jump(header, &[]);

            b.switch_to_block(header);
            let kv = b.use_var(k);
            let more = b.ins().icmp(IntCC::UnsignedLessThan, kv, n);
            b.ins().brif(more, body, &[], exit, &[]);

            b.switch_to_block(body);
            let kv = b.use_var(k);
            let e = if key.subset {
                let off = b.ins().ishl_imm_u(kv, 2);
                let addr = b.ins().iadd(elems, off);
                b.ins().uload32(flags, addr, 0)
            } else {
                kv
            };
            let mut tr = Translator {
                model,
                b: &mut b,
                refs: &refs,
                inputs: &inputs,
                slots: &slots,
                e,
                pre_idx,
                post_idx,
                pre_i: None,
                post_shift: None,
                synapses: key.synapses,
                t,
                step,
                node_key,
                seed,
                size,
                memo: HashMap::new(),
                vector: false,
            };
            let value = tr.expr(key.expr);
            let off = b.ins().ishl_imm_u(kv, 3);
            let addr = b.ins().iadd(out, off);
            b.ins().store(flags, value, addr, 0);
            let next = b.ins().iadd_imm_s(kv, 1);
            b.def_var(k, next);
            b.ins().jump(header, &[]);

            b.switch_to_block(exit);
            b.ins().return_(&[]);
            b.seal_all_blocks();
            b.finalize(frontend_config);
        }
        Ok((self.define(&name)?, inputs))
    }
}

/// Create the entry, loop header, loop body and exit blocks of a kernel; leaves the builder in
/// the entry and returns the blocks and the argument block's pointer (load its fields with the
/// block's `…Values::load`).
fn open_kernel(b: &mut FunctionBuilder) -> ([cranelift_codegen::ir::Block; 3], Value) {
    let entry = b.create_block();
    let blocks = [b.create_block(), b.create_block(), b.create_block()];
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    (blocks, b.block_params(entry)[0])
}

/// The input columns of a kernel: scalars loaded once, columns keep their base pointers,
/// gathers their index array and offset.
fn load_slots(
    b: &mut FunctionBuilder,
    inputs_ptr: Value,
    modes: &[InputMode],
    ptr: types::Type,
) -> Vec<Slot> {
    let flags = MemFlagsData::trusted();
    let at = InputArg::AT;
    modes
        .iter()
        .enumerate()
        .map(|(s, mode)| {
            let col = at.ptr.load_in(b, inputs_ptr, s, ptr);
            match mode {
                InputMode::Scalar => Slot::Scalar(b.ins().load(types::F64, flags, col, 0)),
                InputMode::Element => Slot::Element(col),
                InputMode::Gather => Slot::Gather(
                    col,
                    at.index.load_in(b, inputs_ptr, s, ptr),
                    at.offset.load_in(b, inputs_ptr, s, ptr),
                ),
            }
        })
        .collect()
}

#[derive(Clone)]
enum Slot {
    Scalar(Value),
    /// A value already in a register (fused kernels: the updated state).
    Reg(Value),
    Element(Value),
    /// An element column stored as f32 (`ColumnMode::Element32`).
    Element32(Value),
    Gather(Value, Value, Value),
    /// Through a synapse's endpoint index (`index[e]`) into one of several node columns
    /// (`deliver::Part`s).
    Parts(Value, Vec<deliver::Part>),
    /// A shared value stored twice (`Pair`) at this byte offset from the pointer: loaded as
    /// an `f64x2` where it is used, so that it folds into the arithmetic instead of occupying
    /// a register (vector mode).
    Pair(Value, i32),
}

/// The module's declarations of the host helpers.
struct HelperIds {
    /// `ng_pure`, `ng_pow`, `ng_rem`, `ng_random`.
    fixed: [FuncId; 4],
    /// The `UNARY` functions.
    unary: Vec<(Func, FuncId)>,
    /// `ng_math_data`, when `exp` and `expm1` are inlined (the target has FMA).
    math_data: Option<cranelift_module::DataId>,
}

struct FuncRefs {
    pure: cranelift_codegen::ir::FuncRef,
    pow: cranelift_codegen::ir::FuncRef,
    rem: cranelift_codegen::ir::FuncRef,
    random: cranelift_codegen::ir::FuncRef,
    unary: Vec<(Func, cranelift_codegen::ir::FuncRef)>,
    math: math::MathRefs,
}

impl FuncRefs {
    /// The host helpers as callees of `func`.
    fn declare<M: Module>(
        module: &mut M,
        ids: &HelperIds,
        func: &mut cranelift_codegen::ir::Function,
    ) -> FuncRefs {
        let [pure, pow, rem, random] = ids.fixed;
        let unary: Vec<_> = ids
            .unary
            .iter()
            .map(|(f, id)| (*f, module.declare_func_in_func(*id, func)))
            .collect();
        let helper = |f: Func| unary.iter().find(|(g, _)| *g == f).expect("a helper").1;
        let math = math::MathRefs {
            data: ids.math_data.map(|t| module.declare_data_in_func(t, func)),
            exp: helper(Func::Exp),
            expm1: helper(Func::Expm1),
            tanh: helper(Func::Tanh),
        };
        FuncRefs {
            pure: module.declare_func_in_func(pure, func),
            pow: module.declare_func_in_func(pow, func),
            rem: module.declare_func_in_func(rem, func),
            random: module.declare_func_in_func(random, func),
            unary,
            math,
        }
    }

    /// The direct helper of a one-argument function, if it has one.
    fn unary(&self, f: Func) -> Option<cranelift_codegen::ir::FuncRef> {
        self.unary.iter().find(|(g, _)| *g == f).map(|(_, r)| *r)
    }
}

/// What the expressions inside a fused kernel read, for one loop body.
#[derive(Clone, Copy)]
struct CellEnv<'a> {
    model: &'a Model,
    refs: &'a FuncRefs,
    inputs: &'a [InputKey],
    slots: &'a [Slot],
    /// The integrated variables, whose values come from registers.
    vars: &'a [Handle<Variable>],
    t: Value,
    step: Value,
    node_key: Value,
    seed: Value,
    n: Value,
    zero: Value,
    /// Slots for vector mode: shared values read as pre-splatted pairs (`Slot::Pair`).
    vector_slots: &'a [Slot],
}

impl CellEnv<'_> {
    /// Translate expressions for element `e`, the integrated variables taking `regs`; shared
    /// subexpressions are computed once.
    fn translate(
        &self,
        b: &mut FunctionBuilder,
        regs: &[Value],
        e: Value,
        exprs: &[Handle<Expr>],
    ) -> Vec<Value> {
        self.translate_with(b, regs, e, exprs, HashMap::new()).0
    }

    /// `translate` starting from already translated subexpressions; returns them all.
    fn translate_with(
        &self,
        b: &mut FunctionBuilder,
        regs: &[Value],
        e: Value,
        exprs: &[Handle<Expr>],
        memo: HashMap<Handle<Expr>, Value>,
    ) -> (Vec<Value>, HashMap<Handle<Expr>, Value>) {
        self.with_translator(b, regs, e, memo, false, |tr| {
            let values = exprs.iter().map(|x| tr.expr(*x)).collect();
            (values, std::mem::take(&mut tr.memo))
        })
    }

    /// Run `f` with a translator for element `e` (or, `vector`, elements `e` and `e + 1` in
    /// `f64x2` lanes) whose integrated variables take `regs`.
    fn with_translator<R>(
        &self,
        b: &mut FunctionBuilder,
        regs: &[Value],
        e: Value,
        memo: HashMap<Handle<Expr>, Value>,
        vector: bool,
        f: impl FnOnce(&mut Translator) -> R,
    ) -> R {
        let mut inputs: Vec<InputKey> = self.inputs.to_vec();
        let mut slots = if vector {
            self.vector_slots.to_vec()
        } else {
            self.slots.to_vec()
        };
        for (v, r) in self.vars.iter().zip(regs) {
            inputs.push((*v, Side::Own));
            slots.push(Slot::Reg(*r));
        }
        let mut tr = Translator {
            model: self.model,
            b,
            refs: self.refs,
            inputs: &inputs,
            slots: &slots,
            e,
            pre_idx: self.zero,
            post_idx: self.zero,
            pre_i: None,
            post_shift: None,
            synapses: false,
            t: self.t,
            step: self.step,
            node_key: self.node_key,
            seed: self.seed,
            size: self.n,
            memo,
            vector,
        };
        f(&mut tr)
    }

    /// One classical Runge–Kutta step from `xs` (scalars, or `f64x2` lanes with `vector`)
    /// with the interpreter's operations (`runtime::kernels::rk4`): stages at t, t + dt/2,
    /// t + dt/2 and t + dt from `x + h k`, then `x + dt/6 (((k1 + 2 k2) + 2 k3) + k4)`.
    /// `rest`: the values of the other state columns (discrete-update variables), unchanged
    /// through the stages.
    fn rk4_step(
        &self,
        b: &mut FunctionBuilder,
        xs: &[Value],
        rest: &[Value],
        e: Value,
        rhs: &[Handle<Expr>],
        vector: bool,
    ) -> Vec<Value> {
        let dt = self.model.run.dt;
        let c = |b: &mut FunctionBuilder, x: f64| {
            let v = b.ins().f64const(x);
            if vector {
                b.ins().splat(types::F64X2, v)
            } else {
                v
            }
        };
        let eval = |b: &mut FunctionBuilder, regs: &[Value], offset: f64| -> Vec<Value> {
            let mut env = *self;
            if offset != 0.0 {
                let o = b.ins().f64const(offset);
                env.t = b.ins().fadd(self.t, o);
            }
            let regs: Vec<Value> = regs.iter().chain(rest).copied().collect();
            env.with_translator(b, &regs, e, HashMap::new(), vector, |tr| {
                rhs.iter().map(|r| tr.expr(*r)).collect()
            })
        };
        let stage = |b: &mut FunctionBuilder, k: &[Value], h: f64| -> Vec<Value> {
            xs.iter()
                .zip(k)
                .map(|(x, k)| {
                    let hv = c(b, h);
                    let hk = b.ins().fmul(hv, *k);
                    b.ins().fadd(*x, hk)
                })
                .collect()
        };
        let k1 = eval(b, xs, 0.0);
        let x2 = stage(b, &k1, dt / 2.0);
        let k2 = eval(b, &x2, dt / 2.0);
        let x3 = stage(b, &k2, dt / 2.0);
        let k3 = eval(b, &x3, dt / 2.0);
        let x4 = stage(b, &k3, dt);
        let k4 = eval(b, &x4, dt);
        (0..xs.len())
            .map(|i| {
                let two = c(b, 2.0);
                let t2 = b.ins().fmul(two, k2[i]);
                let sum = b.ins().fadd(k1[i], t2);
                let two = c(b, 2.0);
                let t3 = b.ins().fmul(two, k3[i]);
                let sum = b.ins().fadd(sum, t3);
                let sum = b.ins().fadd(sum, k4[i]);
                let sixth = c(b, dt / 6.0);
                let inc = b.ins().fmul(sixth, sum);
                b.ins().fadd(xs[i], inc)
            })
            .collect()
    }

    /// Whether the condition `c` holds for element `e` (a boolean).
    fn cond(&self, b: &mut FunctionBuilder, regs: &[Value], e: Value, c: Handle<Expr>) -> Value {
        self.with_translator(b, regs, e, HashMap::new(), false, |tr| tr.cond(c))
    }

    /// The condition `c` on the `f64x2` lanes of elements `e`, `e + 1`: an `i64x2` mask.
    fn vector_cond(
        &self,
        b: &mut FunctionBuilder,
        regs: &[Value],
        e: Value,
        c: Handle<Expr>,
    ) -> Value {
        self.with_translator(b, regs, e, HashMap::new(), true, |tr| tr.cond(c))
    }

    /// Append `e` to the spike list when `cond` (a boolean) holds and the element is not
    /// refractory.
    fn record_spike(
        &self,
        b: &mut FunctionBuilder,
        cond: Value,
        refr: Option<Value>,
        e: Value,
        spikes: Value,
        count_var: cranelift_frontend::Variable,
    ) {
        let mut fired = cond;
        if let Some(r) = refr {
            let not_r = b.ins().bnot(r);
            fired = b.ins().band(fired, not_r);
        }
        self.append_spike(b, fired, e, spikes, count_var);
    }

    /// Append `e` to the spike list when `fired` (an integer 0 or 1) is 1, branch-free: the
    /// index is always written, the count grows by 0 or 1.
    fn append_spike(
        &self,
        b: &mut FunctionBuilder,
        fired: Value,
        e: Value,
        spikes: Value,
        count_var: cranelift_frontend::Variable,
    ) {
        let count = b.use_var(count_var);
        let off4 = b.ins().ishl_imm_u(count, 2);
        let addr = b.ins().iadd(spikes, off4);
        let e32 = b.ins().ireduce(types::I32, e);
        b.ins().store(MemFlagsData::trusted(), e32, addr, 0);
        let inc = if b.func.dfg.value_type(fired) == types::I64 {
            fired
        } else {
            b.ins().uextend(types::I64, fired)
        };
        let count = b.ins().iadd(count, inc);
        b.def_var(count_var, count);
    }
}

/// Translates one expression for the current element `e`; shared subexpressions are computed
/// once. Straight-line code, except the inline exponentials' rare-argument blocks (`math`),
/// each a diamond that rejoins before the next use.
struct Translator<'a, 'b> {
    model: &'a Model,
    b: &'a mut FunctionBuilder<'b>,
    refs: &'a FuncRefs,
    inputs: &'a [InputKey],
    slots: &'a [Slot],
    e: Value,
    pre_idx: Value,
    post_idx: Value,
    /// The presynaptic endpoint index of synapse `e` when the loop knows it (rows mode: the
    /// row's source), used instead of loading `pre_idx[e]`.
    pre_i: Option<Value>,
    /// Runs mode: the post endpoint index of synapse `e` is `e + post_shift` (the row's first
    /// post index minus its first synapse), used instead of loading `post_idx[e]`.
    post_shift: Option<Value>,
    synapses: bool,
    t: Value,
    step: Value,
    node_key: Value,
    seed: Value,
    size: Value,
    memo: HashMap<Handle<Expr>, Value>,
    /// Evaluate on two elements (`e`, `e + 1`) in `f64x2` lanes; only for expressions that
    /// pass `vectorizable`.
    vector: bool,
}

impl Translator<'_, '_> {
    fn f64c(&mut self, v: f64) -> Value {
        let c = self.b.ins().f64const(v);
        self.lanes(c)
    }

    /// A scalar as the translator's value type (splat in vector mode).
    fn lanes(&mut self, x: Value) -> Value {
        if self.vector {
            self.b.ins().splat(types::F64X2, x)
        } else {
            x
        }
    }

    /// `-x`.
    fn neg(&mut self, x: Value) -> Value {
        if self.vector {
            // The sign flip as a xor with the sign bit: the mask is a constant the loop keeps
            // (x86-64 lowers `fneg` on lanes by building the mask anew, three instructions, at
            // every use).
            let sign = self.f64c(-0.0);
            self.b.ins().bxor(x, sign)
        } else {
            self.b.ins().fneg(x)
        }
    }

    fn bool_to_f64(&mut self, c: Value) -> Value {
        let one = self.f64c(1.0);
        let zero = self.f64c(0.0);
        if self.vector {
            let mask = self.b.ins().bitcast(types::F64X2, MemFlagsData::new(), c);
            self.b.ins().bitselect(mask, one, zero)
        } else {
            self.b.ins().select(c, one, zero)
        }
    }

    /// `x^n` for a constant integer `|n| <= 16`: the multiplications of `pow_f64`'s `powi`
    /// (square-and-multiply from the lowest bit, then `1 / r` for negative `n`), in its order.
    fn powi(&mut self, x: Value, n: i32) -> Value {
        let mut bits = n.unsigned_abs();
        let (mut r, mut a) = (None, x);
        loop {
            if bits & 1 == 1 {
                // `1.0 * a` is `a`.
                r = Some(match r {
                    None => a,
                    Some(r) => self.b.ins().fmul(r, a),
                });
            }
            bits >>= 1;
            if bits == 0 {
                break;
            }
            a = self.b.ins().fmul(a, a);
        }
        let r = r.unwrap_or_else(|| self.f64c(1.0));
        if n < 0 {
            let one = self.f64c(1.0);
            self.b.ins().fdiv(one, r)
        } else {
            r
        }
    }

    /// `runtime::rng::Stream::poisson`: a mean in (0, 30] inverts the distribution function
    /// inline with the draw's first uniform (the same operations: `exp(-mean)`, then
    /// `p *= mean * (1 / k)`, `cdf += p` while `u > cdf`, at most 1000 steps); other means
    /// (zero, NaN, large) call the runtime's sampler. Values made inside the branches are not
    /// memoised: only the result, in the block that joins them, is used later.
    fn poisson(&mut self, stream: u32, element: Value, mean: Value, b: Value) -> Value {
        let (inline, slow, header, body, done) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        self.b.append_block_param(header, types::I64);
        self.b.append_block_param(header, types::F64);
        self.b.append_block_param(header, types::F64);
        self.b.append_block_param(done, types::F64);
        let zero = self.b.ins().f64const(0.0);
        let most = self.b.ins().f64const(POISSON_INVERSION_MAX_MEAN);
        let positive = self.b.ins().fcmp(FloatCC::GreaterThan, mean, zero);
        let small = self.b.ins().fcmp(FloatCC::LessThanOrEqual, mean, most);
        let both = self.b.ins().band(positive, small);
        self.b.ins().brif(both, inline, &[], slow, &[]);

        self.b.switch_to_block(slow);
        let kind = self.b.ins().iconst(types::I32, 4);
        let s = self.b.ins().iconst(types::I32, stream as i64);
        let call = self.b.ins().call(
            self.refs.random,
            &[kind, self.seed, s, element, self.step, mean, b],
        );
        let count = self.b.inst_results(call)[0];
        self.b.ins().jump(done, &[count.into()]);

        self.b.switch_to_block(inline);
        let w = rng::philox_bits(self.b, self.seed, stream, element, self.step);
        let u = rng::open01(self.b, w[0], w[1]);
        let negative = self.b.ins().fneg(mean);
        let refs = self.refs.math;
        let limit = math::exp(self.b, &refs, negative, types::F64);
        // The first steps unrolled with 1 / k as constants (the sampler's table holds the
        // same values), then a loop dividing.
        let (mut p, mut cdf) = (limit, limit);
        for k in 0..UNROLLED_POISSON_STEPS {
            let next = self.b.create_block();
            let below = self.b.ins().fcmp(FloatCC::GreaterThan, u, cdf);
            let kf = self.b.ins().f64const(k as f64);
            self.b.ins().brif(below, next, &[], done, &[kf.into()]);
            self.b.switch_to_block(next);
            let inverse = self.b.ins().f64const(1.0 / (k + 1) as f64);
            let step = self.b.ins().fmul(mean, inverse);
            p = self.b.ins().fmul(p, step);
            cdf = self.b.ins().fadd(cdf, p);
        }
        let k0 = self
            .b
            .ins()
            .iconst(types::I64, UNROLLED_POISSON_STEPS as i64);
        self.b
            .ins()
            .jump(header, &[k0.into(), p.into(), cdf.into()]);

        self.b.switch_to_block(header);
        let params = self.b.block_params(header).to_vec();
        let (k, p, cdf) = (params[0], params[1], params[2]);
        let below = self.b.ins().fcmp(FloatCC::GreaterThan, u, cdf);
        let room = self.b.ins().icmp_imm_u(
            IntCC::UnsignedLessThan,
            k,
            POISSON_INVERSION_MAX_STEPS as i64,
        );
        let go = self.b.ins().band(below, room);
        let kf = self.b.ins().fcvt_from_uint(types::F64, k);
        self.b.ins().brif(go, body, &[], done, &[kf.into()]);

        self.b.switch_to_block(body);
        let k1 = self.b.ins().iadd_imm_u(k, 1);
        let k1f = self.b.ins().fcvt_from_uint(types::F64, k1);
        let one = self.b.ins().f64const(1.0);
        let inverse = self.b.ins().fdiv(one, k1f);
        let step = self.b.ins().fmul(mean, inverse);
        let p1 = self.b.ins().fmul(p, step);
        let cdf1 = self.b.ins().fadd(cdf, p1);
        self.b
            .ins()
            .jump(header, &[k1.into(), p1.into(), cdf1.into()]);

        self.b.switch_to_block(done);
        self.b.block_params(done)[0]
    }

    /// A one-argument pure function through the interpreter's implementation (its direct
    /// helper where it has one).
    fn pure1(&mut self, f: Func, x: Value) -> Value {
        if let Some(r) = self.refs.unary(f) {
            let call = self.b.ins().call(r, &[x]);
            return self.b.inst_results(call)[0];
        }
        let id = funcs::FUNCS
            .iter()
            .position(|i| i.func == f)
            .expect("known function");
        let fid = self.b.ins().iconst(types::I32, id as i64);
        let nargs = self.b.ins().iconst(types::I32, 1);
        let z = self.b.ins().f64const(0.0);
        let call = self.b.ins().call(self.refs.pure, &[fid, nargs, x, z, z]);
        self.b.inst_results(call)[0]
    }

    /// Whether a condition holds: a boolean (vector mode: an all-ones/all-zeros lane mask),
    /// true exactly where the interpreter's value of `e` is non-zero.
    fn cond(&mut self, e: Handle<Expr>) -> Value {
        match self.model.exprs[e].clone() {
            Expr::Binary(op, a, bb) if float_cc(op).is_some() => {
                let (x, y) = (self.expr(a), self.expr(bb));
                let cc = float_cc(op).expect("a comparison");
                self.b.ins().fcmp(cc, x, y)
            }
            Expr::Binary(op @ (BinOp::And | BinOp::Or), a, bb) => {
                let (x, y) = (self.cond(a), self.cond(bb));
                if op == BinOp::And {
                    self.b.ins().band(x, y)
                } else {
                    self.b.ins().bor(x, y)
                }
            }
            Expr::Unary(UnOp::Not, a) => {
                let x = self.expr(a);
                let z = self.f64c(0.0);
                self.b.ins().fcmp(FloatCC::Equal, x, z)
            }
            _ => {
                let x = self.expr(e);
                let z = self.f64c(0.0);
                self.b.ins().fcmp(FloatCC::NotEqual, x, z)
            }
        }
    }

    fn load_u32_at(&mut self, base: Value, index: Value) -> Value {
        let off = self.b.ins().ishl_imm_u(index, 2);
        let addr = self.b.ins().iadd(base, off);
        self.b.ins().uload32(MemFlagsData::trusted(), addr, 0)
    }

    fn load_f64_at(&mut self, base: Value, index: Value) -> Value {
        let off = self.b.ins().ishl_imm_u(index, 3);
        let addr = self.b.ins().iadd(base, off);
        self.b
            .ins()
            .load(types::F64, MemFlagsData::trusted(), addr, 0)
    }

    fn expr(&mut self, e: Handle<Expr>) -> Value {
        if let Some(v) = self.memo.get(&e) {
            return *v;
        }
        let v = match self.model.exprs[e].clone() {
            Expr::Const(c) => self.f64c(c),
            Expr::Bool(x) => self.f64c(if x { 1.0 } else { 0.0 }),
            Expr::Var { var, side } => {
                let s = self
                    .inputs
                    .iter()
                    .position(|k| *k == (var, side))
                    .expect("input collected");
                match self.slots[s].clone() {
                    Slot::Scalar(v) => self.lanes(v),
                    Slot::Pair(p, off) => {
                        let ty = if self.vector {
                            types::F64X2
                        } else {
                            types::F64
                        };
                        // Read-only for the whole call: free to move out of the loop.
                        let flags = MemFlagsData::trusted().with_readonly().with_can_move();
                        self.b.ins().load(ty, flags, p, off)
                    }
                    Slot::Reg(v) => v,
                    Slot::Parts(index, parts) => {
                        let j = match self.pre_i {
                            Some(i) if index == self.pre_idx => i,
                            _ => self.load_u32_at(index, self.e),
                        };
                        let addr = deliver::part_address(self.b, &parts, j);
                        self.b
                            .ins()
                            .load(types::F64, MemFlagsData::trusted(), addr, 0)
                    }
                    Slot::Element(p) if self.vector => {
                        let off = self.b.ins().ishl_imm_u(self.e, 3);
                        let addr = self.b.ins().iadd(p, off);
                        let flags = MemFlagsData::new().with_notrap();
                        self.b.ins().load(types::F64X2, flags, addr, 0)
                    }
                    Slot::Element(p) => self.load_f64_at(p, self.e),
                    Slot::Element32(p) => load_f32_widened(self.b, p, self.e, self.vector),
                    Slot::Gather(p, index, offset) => {
                        let i = self.load_u32_at(index, self.e);
                        let i = self.b.ins().iadd(i, offset);
                        self.load_f64_at(p, i)
                    }
                }
            }
            Expr::Builtin(bi) => match bi {
                Builtin::T => self.lanes(self.t),
                Builtin::Dt => self.f64c(self.model.run.dt),
                Builtin::Step => {
                    let x = self.b.ins().fcvt_from_uint(types::F64, self.step);
                    self.lanes(x)
                }
                Builtin::N => {
                    let x = self.b.ins().fcvt_from_uint(types::F64, self.size);
                    self.lanes(x)
                }
                Builtin::I | Builtin::J => {
                    let idx = if !self.synapses {
                        self.e
                    } else if bi == Builtin::I {
                        match self.pre_i {
                            Some(i) => i,
                            None => self.load_u32_at(self.pre_idx, self.e),
                        }
                    } else if let Some(shift) = self.post_shift {
                        self.b.ins().iadd(self.e, shift)
                    } else {
                        self.load_u32_at(self.post_idx, self.e)
                    };
                    self.b.ins().fcvt_from_uint(types::F64, idx)
                }
            },
            Expr::Unary(UnOp::Neg, a) => {
                let a = self.expr(a);
                self.neg(a)
            }
            Expr::Unary(UnOp::Not, a) => {
                let a = self.expr(a);
                let z = self.f64c(0.0);
                let c = self.b.ins().fcmp(FloatCC::Equal, a, z);
                self.bool_to_f64(c)
            }
            Expr::Binary(BinOp::Pow, a, bb) if small_integer(&self.model.exprs[bb]).is_some() => {
                let n = small_integer(&self.model.exprs[bb]).expect("checked");
                let x = self.expr(a);
                self.powi(x, n)
            }
            Expr::Binary(op, a, bb) => {
                let (x, y) = (self.expr(a), self.expr(bb));
                let ins = self.b.ins();
                match op {
                    BinOp::Add => ins.fadd(x, y),
                    BinOp::Sub => ins.fsub(x, y),
                    BinOp::Mul => ins.fmul(x, y),
                    BinOp::Div => ins.fdiv(x, y),
                    BinOp::Pow => {
                        let call = ins.call(self.refs.pow, &[x, y]);
                        self.b.inst_results(call)[0]
                    }
                    BinOp::Mod => {
                        let call = ins.call(self.refs.rem, &[x, y]);
                        self.b.inst_results(call)[0]
                    }
                    BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                        let cc = float_cc(op).expect("a comparison");
                        let c = ins.fcmp(cc, x, y);
                        self.bool_to_f64(c)
                    }
                    BinOp::And | BinOp::Or => {
                        let z = self.f64c(0.0);
                        let cx = self.b.ins().fcmp(FloatCC::NotEqual, x, z);
                        let cy = self.b.ins().fcmp(FloatCC::NotEqual, y, z);
                        let c = if op == BinOp::And {
                            self.b.ins().band(cx, cy)
                        } else {
                            self.b.ins().bor(cx, cy)
                        };
                        self.bool_to_f64(c)
                    }
                }
            }
            Expr::Call(f, args) => self.call(e, f, &args),
            Expr::RegimeState(_) | Expr::Load(_) | Expr::Token { .. } | Expr::Array(_) => {
                unreachable!("not jittable; checked by `jittable`")
            }
        };
        self.memo.insert(e, v);
        v
    }

    fn call(&mut self, e: Handle<Expr>, f: Func, args: &[Handle<Expr>]) -> Value {
        let info = funcs::FUNCS
            .iter()
            .position(|i| i.func == f)
            .expect("known function");
        let vals: Vec<Value> = args.iter().map(|a| self.expr(*a)).collect();
        if funcs::FUNCS[info].class == FuncClass::Random {
            let kind = match f {
                Func::Rand => 0,
                Func::Randn => 1,
                Func::Uniform => 2,
                Func::Normal => 3,
                Func::Poisson => 4,
                _ => 5,
            };
            let stream = self
                .model
                .random_streams
                .get(&e)
                .copied()
                .unwrap_or(e.index() as u32);
            let element = self.b.ins().bor(self.node_key, self.e);
            let z = self.f64c(0.0);
            let a = vals.first().copied().unwrap_or(z);
            let bv = vals.get(1).copied().unwrap_or(z);
            if kind == 4 {
                return self.poisson(stream, element, a, bv);
            }
            if kind == 1 || kind == 3 {
                // Normal deviates through the runtime's sampler (`Stream::normal`: a
                // ziggurat, whose rare rejections loop).
                let k = self.b.ins().iconst(types::I32, kind);
                let s = self.b.ins().iconst(types::I32, stream as i64);
                let call = self.b.ins().call(
                    self.refs.random,
                    &[k, self.seed, s, element, self.step, a, bv],
                );
                return self.b.inst_results(call)[0];
            }
            let w = rng::philox_bits(self.b, self.seed, stream, element, self.step);
            let u = rng::open01(self.b, w[0], w[1]);
            return match kind {
                0 => u,
                2 => {
                    let span = self.b.ins().fsub(bv, a);
                    let x = self.b.ins().fmul(span, u);
                    self.b.ins().fadd(a, x)
                }
                _ => {
                    let c = self.b.ins().fcmp(FloatCC::LessThan, u, a);
                    self.bool_to_f64(c)
                }
            };
        }
        if let (Func::If, [c, a, b]) = (f, &vals[..]) {
            // `eval_pure`'s `if c != 0.0 { a } else { b }`: a select, exact in both.
            let z = self.f64c(0.0);
            let cond = self.b.ins().fcmp(FloatCC::NotEqual, *c, z);
            return self.b.ins().select(cond, *a, *b);
        }
        if let [x] = vals[..] {
            // The exponentials inline (`crate::math`'s operations), and the functions built
            // on them in the interpreter's order (`lower::exprel`, `lower::sigmoid`).
            let ty = if self.vector {
                types::F64X2
            } else {
                types::F64
            };
            let refs = self.refs.math;
            match f {
                Func::Exp => return math::exp(self.b, &refs, x, ty),
                Func::Expm1 => return math::expm1(self.b, &refs, x, ty),
                Func::Tanh => return math::tanh(self.b, &refs, x, ty),
                Func::Exprel => {
                    let em1 = math::expm1(self.b, &refs, x, ty);
                    let q = self.b.ins().fdiv(em1, x);
                    let z = self.f64c(0.0);
                    let one = self.f64c(1.0);
                    let is0 = self.b.ins().fcmp(FloatCC::Equal, x, z);
                    return if self.vector {
                        let mask = self.b.ins().bitcast(types::F64X2, MemFlagsData::new(), is0);
                        self.b.ins().bitselect(mask, one, q)
                    } else {
                        self.b.ins().select(is0, one, q)
                    };
                }
                Func::Sigmoid => {
                    let nx = self.neg(x);
                    let e = math::exp(self.b, &refs, nx, ty);
                    let one = self.f64c(1.0);
                    let s = self.b.ins().fadd(one, e);
                    return self.b.ins().fdiv(one, s);
                }
                _ => {}
            }
            // IEEE operations with one correct result: the same bits as Rust's `sqrt`, `abs`,
            // `floor`, `ceil`.
            match f {
                Func::Sqrt => return self.b.ins().sqrt(x),
                Func::Abs => return self.b.ins().fabs(x),
                Func::Floor => return self.b.ins().floor(x),
                Func::Ceil => return self.b.ins().ceil(x),
                _ => {}
            }
            if self.refs.unary(f).is_some() {
                return self.pure1(f, x);
            }
        }
        let z = self.f64c(0.0);
        let a = vals.first().copied().unwrap_or(z);
        let bv = vals.get(1).copied().unwrap_or(z);
        let c = vals.get(2).copied().unwrap_or(z);
        let fid = self.b.ins().iconst(types::I32, info as i64);
        let nargs = self.b.ins().iconst(types::I32, vals.len() as i64);
        let call = self.b.ins().call(self.refs.pure, &[fid, nargs, a, bv, c]);
        self.b.inst_results(call)[0]
    }
}

/// The exponent of `pow_f64`'s `powi` path when an expression is that constant (an integer of
/// magnitude at most 16).
fn small_integer(e: &Expr) -> Option<i32> {
    match e {
        Expr::Const(y) if *y == y.trunc() && y.abs() <= 16.0 => Some(*y as i32),
        _ => None,
    }
}

/// The float condition code of a comparison operator.
fn float_cc(op: BinOp) -> Option<FloatCC> {
    Some(match op {
        BinOp::Eq => FloatCC::Equal,
        BinOp::Ne => FloatCC::NotEqual,
        BinOp::Lt => FloatCC::LessThan,
        BinOp::Le => FloatCC::LessThanOrEqual,
        BinOp::Gt => FloatCC::GreaterThan,
        BinOp::Ge => FloatCC::GreaterThanOrEqual,
        _ => return None,
    })
}

pub struct FusedKernel {
    pub func: FusedFn,
}

impl<M: Module> Codegen<M> {
    fn translate_fused(&mut self, model: &Model, key: &FusedKey) -> Result<FuncId, CodegenError> {
        if !key.exprs().iter().all(|x| jittable(model, *x)) {
            return Err(CodegenError(
                "conditions, equations or updates are not compilable".to_string(),
            ));
        }
        if key.euler.is_some() && key.rhs().len() != key.vars.len() {
            return Err(CodegenError("one right-hand side per variable".to_string()));
        }
        let inputs = fused_inputs(model, key);
        let state_vars = key.state_vars();
        if inputs.len() != key.modes.len() || key.modes.contains(&InputMode::Gather) {
            return Err(CodegenError(
                "fused kernel inputs do not match their modes".to_string(),
            ));
        }
        let (ptr, frontend_config) = self.start_function(Some(types::I64));
        let name = self.name("fused");
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let refs = FuncRefs::declare(&mut self.module, &self.helper_ids, b.func);
            let ([start, _, exit], args_ptr) = open_kernel(&mut b);
            let args = FusedArgsValues::load(&mut b, args_ptr, ptr);
            let flags = MemFlagsData::trusted();
            // The state columns, ODE variables first, then the other updated variables.
            let state_stride = std::mem::size_of::<*mut f64>();
            let cols: Vec<Value> = (0..state_vars.len())
                .map(|i| {
                    b.ins()
                        .load(ptr, flags, args.state, (state_stride * i) as i32)
                })
                .collect();
            let slots = load_slots(&mut b, args.inputs, &key.modes, ptr);
            let layout = PairLayout::of(key);
            // Vector mode reads shared inputs from their pairs.
            let mut scalar = 0;
            let vector_slots: Vec<Slot> = slots
                .iter()
                .map(|sl| match sl {
                    Slot::Scalar(_) => {
                        scalar += 1;
                        Slot::Pair(args.pairs, layout.offset(layout.scalar(scalar - 1)))
                    }
                    other => other.clone(),
                })
                .collect();
            let kv_var = b.declare_var(types::I64);
            let count_var = b.declare_var(types::I64);
            let zero = b.ins().iconst(types::I64, 0);
            b.def_var(kv_var, args.first);
            b.def_var(count_var, zero);
            b.ins().jump(start, &[]);
            b.switch_to_block(start);
            let mut fused = FusedEmitter {
                model,
                key,
                env: CellEnv {
                    model,
                    refs: &refs,
                    inputs: &inputs,
                    slots: &slots,
                    vars: &state_vars,
                    t: args.t,
                    step: args.step,
                    node_key: args.node_key,
                    seed: args.seed,
                    n: args.n,
                    zero,
                    vector_slots: &vector_slots,
                },
                args,
                cols: &cols,
                layout,
                count_var,
                exp_consts: Vec::new(),
            };
            fused.exp_consts = fused.exponential_constants(&mut b);
            // Four elements per iteration (one spike test for all), then two, in f64x2 lanes
            // where the kernel vectorises; then one at a time for the rest (or all).
            if let Some(threshold) = fused.vector_threshold() {
                if vectorizable(model, threshold) {
                    emit_loop(&mut b, kv_var, args.end, 4, |b, e0| {
                        fused.vector_group(b, e0, 4, threshold)
                    });
                }
                emit_loop(&mut b, kv_var, args.end, 2, |b, e0| {
                    fused.vector_group(b, e0, 2, threshold)
                });
            }
            emit_loop(&mut b, kv_var, args.end, 1, |b, e| {
                fused.scalar_element(b, e)
            });
            b.ins().jump(exit, &[]);
            b.switch_to_block(exit);
            let count = b.use_var(count_var);
            b.ins().return_(&[count]);
            b.seal_all_blocks();
            b.finalize(frontend_config);
        }
        self.define(&name)
    }
}

/// A loop over elements `lanes` at a time, from the current value of `kv_var` while at least
/// `lanes` elements below `n` remain: `body` emits the work for the group starting at element
/// `e0` (it may add blocks; it ends in the block the loop continues from). Leaves the builder
/// in the block after the loop, with `kv_var` at the first element not done.
fn emit_loop(
    b: &mut FunctionBuilder,
    kv_var: cranelift_frontend::Variable,
    n: Value,
    lanes: i64,
    mut body: impl FnMut(&mut FunctionBuilder, Value),
) {
    let (header, group, done) = (b.create_block(), b.create_block(), b.create_block());
    b.ins().jump(header, &[]);
    b.switch_to_block(header);
    let kv = b.use_var(kv_var);
    let last = b.ins().iadd_imm_s(kv, lanes - 1);
    let fits = b.ins().icmp(IntCC::UnsignedLessThan, last, n);
    b.ins().brif(fits, group, &[], done, &[]);

    b.switch_to_block(group);
    let e0 = b.use_var(kv_var);
    body(b, e0);
    let next = b.ins().iadd_imm_s(e0, lanes);
    b.def_var(kv_var, next);
    // The latch tests for the next group itself (no jump back to the header).
    let last = b.ins().iadd_imm_s(e0, 2 * lanes - 1);
    let fits = b.ins().icmp(IntCC::UnsignedLessThan, last, n);
    b.ins().brif(fits, group, &[], done, &[]);
    b.switch_to_block(done);
}

/// What the loops of one fused kernel share.
struct FusedEmitter<'a> {
    model: &'a Model,
    key: &'a FusedKey,
    env: CellEnv<'a>,
    args: FusedArgsValues,
    /// State column base pointers (`FusedKey::state_vars` order).
    cols: &'a [Value],
    layout: PairLayout,
    count_var: cranelift_frontend::Variable,
    /// Exponential Euler: per ODE, its step's parts when they are the same for every element
    /// (computed once before the loops).
    exp_consts: Vec<Option<ExpConst>>,
}

/// The parts of an exponential-Euler step that do not depend on the element, for an equation
/// whose right side reads only its own variable, scalar inputs, constants and the time:
/// `B dt`, `B / A`, `-(B / A)`, `exp(A dt)` and whether `A = 0`.
#[derive(Clone, Copy)]
struct ExpConst {
    bdt: Value,
    r: Value,
    neg_r: Value,
    ex: Value,
    a_zero: Value,
}

impl FusedEmitter<'_> {
    /// Whether `e` has one value for all elements once `var` is fixed: it reads `var`, scalar
    /// inputs, constants and the time only (no other state, element index or random draw).
    fn invariant_but(&self, e: Handle<Expr>, var: Handle<Variable>) -> bool {
        funcs::pure_over(self.model, e, |leaf| match leaf {
            Expr::Const(_) | Expr::Bool(_) => true,
            Expr::Builtin(bi) => matches!(bi, Builtin::T | Builtin::Step),
            Expr::Var { var: v, side } => {
                let own = *v == var && *side == Side::Own;
                let scalar = self
                    .env
                    .inputs
                    .iter()
                    .position(|k| *k == (*v, *side))
                    .is_some_and(|k| self.key.modes.get(k) == Some(&InputMode::Scalar));
                own || scalar
            }
            _ => false,
        })
    }

    /// `ExpConst` of each ODE that qualifies, emitted where the builder is (before the loops).
    fn exponential_constants(&self, b: &mut FunctionBuilder) -> Vec<Option<ExpConst>> {
        let (key, env) = (self.key, &self.env);
        if !key.exponential {
            return Vec::new();
        }
        let rhs = key.rhs();
        (0..key.vars.len())
            .map(|i| {
                if !self.invariant_but(rhs[i], key.vars[i]) {
                    return None;
                }
                // The probes at x_i = 0 and 1 of `scalar_element`, once.
                let probe = |b: &mut FunctionBuilder, x: f64| {
                    let unused = b.ins().f64const(0.0);
                    let mut regs = vec![unused; env.vars.len()];
                    regs[i] = b.ins().f64const(x);
                    env.translate(b, &regs, env.zero, &rhs[i..=i])[0]
                };
                let bv = probe(b, 0.0);
                let f1 = probe(b, 1.0);
                let av = b.ins().fsub(f1, bv);
                let dt = b.ins().f64const(self.model.run.dt);
                let bdt = b.ins().fmul(bv, dt);
                let r = b.ins().fdiv(bv, av);
                let adt = b.ins().fmul(av, dt);
                let ex = math::exp(b, &env.refs.math, adt, types::F64);
                let neg_r = b.ins().fneg(r);
                let fz = b.ins().f64const(0.0);
                let a_zero = b.ins().fcmp(FloatCC::Equal, av, fz);
                Some(ExpConst {
                    bdt,
                    r,
                    neg_r,
                    ex,
                    a_zero,
                })
            })
            .collect()
    }

    /// The spike condition, when the kernel runs in `f64x2` lanes: exact propagation, or
    /// forward Euler with every right side evaluable on lanes; no discrete updates or
    /// refractory condition; a spike condition.
    fn vector_threshold(&self) -> Option<Handle<Expr>> {
        let key = self.key;
        let lanes = key.simd
            && key.updates.is_empty()
            && key.refractory_when.is_none()
            && match &key.euler {
                None => true,
                Some(rhs) => rhs.iter().all(|r| vectorizable(self.model, *r)),
            };
        key.threshold.filter(|_| lanes)
    }

    /// Shared value `k` of the pair buffer as a lane pair (or lane 0, `ty` scalar). Read-only
    /// for the whole call, so the load may move to where it folds into the arithmetic.
    fn pair(&self, b: &mut FunctionBuilder, k: usize, ty: types::Type) -> Value {
        let flags = MemFlagsData::trusted().with_readonly().with_can_move();
        b.ins()
            .load(ty, flags, self.args.pairs, self.layout.offset(k))
    }

    /// Update elements `e0`, `e0 + 1` in lanes: their new state (stored), and the lanes still
    /// refractory this step (all-ones where `step < ref_until`).
    fn pair_update(&self, b: &mut FunctionBuilder, e0: Value) -> (Vec<Value>, Option<Value>) {
        let (key, model, env) = (self.key, self.model, &self.env);
        let rhs = key.rhs();
        // Vector loads and stores need no 16-byte alignment.
        let vflags = MemFlagsData::new().with_notrap();
        let off8 = b.ins().ishl_imm_u(e0, 3);
        let refr = key.refractory.then(|| {
            let addr = b.ins().iadd(self.args.ref_until, off8);
            let until = b.ins().load(types::I64X2, vflags, addr, 0);
            let step_v = self.pair(b, self.layout.step(), types::I64X2);
            // Both below 2^63 (the runtime clamps), so a signed compare is exact and needs no
            // sign flips.
            b.ins().icmp(IntCC::SignedGreaterThan, until, step_v)
        });
        let addrs: Vec<Value> = self.cols.iter().map(|c| b.ins().iadd(*c, off8)).collect();
        let xv: Vec<Value> = addrs
            .iter()
            .map(|a| b.ins().load(types::F64X2, vflags, *a, 0))
            .collect();
        let zero_v = b.ins().f64const(0.0);
        let zero_v = b.ins().splat(types::F64X2, zero_v);
        // Exponential Euler: every right side on the old state, for the probes to share (as
        // `scalar_element`).
        let base_memo = if key.exponential {
            let per_element: Vec<Handle<Expr>> = (0..key.vars.len())
                .filter(|&i| self.exp_consts.get(i).is_none_or(|c| c.is_none()))
                .map(|i| rhs[i])
                .collect();
            env.with_translator(b, &xv, e0, HashMap::new(), true, |tr| {
                for x in &per_element {
                    tr.expr(*x);
                }
                std::mem::take(&mut tr.memo)
            })
        } else {
            HashMap::new()
        };
        // Forward Euler: the right sides on the old state, on both lanes; RK4: the whole step
        // on both lanes.
        let derivs: Vec<Value> = if key.rk4 {
            env.rk4_step(b, &xv, &[], e0, rhs, true)
        } else if key.euler.is_some() && !key.exponential {
            env.with_translator(b, &xv, e0, HashMap::new(), true, |tr| {
                rhs.iter().map(|r| tr.expr(*r)).collect()
            })
        } else {
            Vec::new()
        };
        let dt = b.ins().f64const(model.run.dt);
        let dt = b.ins().splat(types::F64X2, dt);
        let mut new = Vec::with_capacity(key.vars.len());
        for i in 0..key.vars.len() {
            let mut v = if key.rk4 {
                derivs[i]
            } else if let Some(c) = self.exp_consts.get(i).copied().flatten() {
                // `scalar_element`'s update with the constants from before the loops.
                let splat = |b: &mut FunctionBuilder, v: Value| b.ins().splat(types::F64X2, v);
                let (bdt, r, ex, neg_r) = (
                    splat(b, c.bdt),
                    splat(b, c.r),
                    splat(b, c.ex),
                    splat(b, c.neg_r),
                );
                let linear = b.ins().fadd(xv[i], bdt);
                let xr = b.ins().fadd(xv[i], r);
                let scaled = b.ins().fmul(xr, ex);
                let general = b.ins().fadd(neg_r, scaled);
                b.ins().select(c.a_zero, linear, general)
            } else if key.exponential {
                // `scalar_element`'s probes and update, on both lanes.
                let shared = memo_without(model, &base_memo, key.vars[i]);
                let probe = |b: &mut FunctionBuilder, x: f64| {
                    let mut regs = xv.clone();
                    let x = b.ins().f64const(x);
                    regs[i] = b.ins().splat(types::F64X2, x);
                    env.with_translator(b, &regs, e0, shared.clone(), true, |tr| tr.expr(rhs[i]))
                };
                let bv = probe(b, 0.0);
                let f1 = probe(b, 1.0);
                exponential_update(b, env.refs, xv[i], bv, f1, dt, types::F64X2)
            } else if key.euler.is_some() {
                // x + dt * k, as the interpreter's Euler step.
                let step_size = b.ins().fmul(dt, derivs[i]);
                b.ins().fadd(xv[i], step_size)
            } else {
                exact_row(b, &key.pattern, i, &xv, zero_v, |b, k| {
                    self.pair(b, k, types::F64X2)
                })
            };
            if key.f32_state {
                let narrow = b.ins().fvdemote(v);
                v = b.ins().fvpromote_low(narrow);
            }
            if let (Some(r), true) = (refr, key.frozen[i]) {
                // Selected as integer lanes, so that the comparison mask is used as it is (one
                // blend instruction where SSE4.1 has it).
                let f = MemFlagsData::new();
                let old_bits = b.ins().bitcast(types::I64X2, f, xv[i]);
                let new_bits = b.ins().bitcast(types::I64X2, f, v);
                let kept = b.ins().bitselect(r, old_bits, new_bits);
                v = b.ins().bitcast(types::F64X2, f, kept);
            }
            b.ins().store(vflags, v, addrs[i], 0);
            new.push(v);
        }
        (new, refr)
    }

    /// The lanes of a pair that spike: condition and not refractory (an i64x2 mask).
    fn fired_mask(
        &self,
        b: &mut FunctionBuilder,
        threshold: Handle<Expr>,
        new: &[Value],
        refr: Option<Value>,
        e0: Value,
    ) -> Value {
        let fired = self.env.vector_cond(b, new, e0, threshold);
        match refr {
            Some(r) => b.ins().band_not(fired, r),
            None => fired,
        }
    }

    /// Append the spiking lanes of the pair at `e0`, in order.
    fn append_lanes(&self, b: &mut FunctionBuilder, mask: Value, e0: Value) {
        let bits = b.ins().vhigh_bits(types::I64, mask);
        for lane in 0..2 {
            let e = b.ins().iadd_imm_s(e0, lane);
            let bit = b.ins().ushr_imm_u(bits, lane);
            let bit = b.ins().band_imm_u(bit, 1);
            self.env
                .append_spike(b, bit, e, self.args.spikes, self.count_var);
        }
    }

    /// `lanes` elements from `e0` (2 or 4: one or two lane pairs). With a condition evaluable
    /// on lanes, one test for a spike among them and the rare hits append their lanes in
    /// order; otherwise (2 lanes only) the condition lane by lane.
    fn vector_group(
        &self,
        b: &mut FunctionBuilder,
        e0: Value,
        lanes: i64,
        threshold: Handle<Expr>,
    ) {
        let on_lanes = vectorizable(self.model, threshold);
        let mut masks = Vec::new();
        for p in 0..lanes / 2 {
            let s = b.ins().iadd_imm_s(e0, 2 * p);
            let (new, refr) = self.pair_update(b, s);
            if on_lanes {
                masks.push((s, self.fired_mask(b, threshold, &new, refr, s)));
                continue;
            }
            for lane in 0..2u8 {
                let e = b.ins().iadd_imm_s(s, lane as i64);
                let regs: Vec<Value> = new.iter().map(|v| b.ins().extractlane(*v, lane)).collect();
                let refr_lane = refr.map(|r| {
                    let l = b.ins().extractlane(r, lane);
                    b.ins().icmp_imm_u(IntCC::NotEqual, l, 0)
                });
                let cond = self.env.cond(b, &regs, e, threshold);
                self.env
                    .record_spike(b, cond, refr_lane, e, self.args.spikes, self.count_var);
            }
        }
        let Some(any) = masks.iter().map(|m| m.1).reduce(|a, m| b.ins().bor(a, m)) else {
            return;
        };
        let bits = b.ins().vhigh_bits(types::I64, any);
        let (fire, cont) = (b.create_block(), b.create_block());
        b.ins().brif(bits, fire, &[], cont, &[]);
        b.switch_to_block(fire);
        for (s, mask) in masks {
            self.append_lanes(b, mask, s);
        }
        b.ins().jump(cont, &[]);
        b.switch_to_block(cont);
    }

    /// One element `e`: integration, refractoriness, discrete updates and the spike
    /// condition or probability (everything a fused kernel does).
    fn scalar_element(&self, b: &mut FunctionBuilder, e: Value) {
        let (key, model, env, args) = (self.key, self.model, &self.env, &self.args);
        let rhs = key.rhs();
        let m = key.vars.len();
        let flags = MemFlagsData::trusted();
        let off8 = b.ins().ishl_imm_u(e, 3);
        let addrs: Vec<Value> = self.cols.iter().map(|c| b.ins().iadd(*c, off8)).collect();
        // Every state column's old value (ODE variables first).
        let old: Vec<Value> = addrs
            .iter()
            .map(|a| b.ins().load(types::F64, flags, *a, 0))
            .collect();
        // Refractory this step: from the countdown, or from the condition on the state before
        // the update (as the interpreter decides it before integrating).
        let refr = if key.refractory {
            let addr = b.ins().iadd(args.ref_until, off8);
            let until = b.ins().load(types::I64, flags, addr, 0);
            Some(b.ins().icmp(IntCC::UnsignedLessThan, args.step, until))
        } else {
            key.refractory_when.map(|c| env.cond(b, &old, e, c))
        };
        // Euler: the right-hand sides on the old state (ODE variables from registers).
        // Exponential Euler: every right side on the old state, for the probes to share.
        let base_memo = if key.exponential {
            // Those computed before the loops excepted.
            let per_element: Vec<Handle<Expr>> = (0..m)
                .filter(|&i| self.exp_consts.get(i).is_none_or(|c| c.is_none()))
                .map(|i| rhs[i])
                .collect();
            env.translate_with(b, &old, e, &per_element, HashMap::new())
                .1
        } else {
            HashMap::new()
        };
        let derivs: Vec<Value> = if key.rk4 {
            env.rk4_step(b, &old[..m], &old[m..], e, rhs, false)
        } else if key.euler.is_some() && !key.exponential {
            env.translate(b, &old, e, rhs)
        } else {
            Vec::new()
        };
        let mut new = Vec::with_capacity(m);
        for i in 0..m {
            let mut v = if key.rk4 {
                derivs[i]
            } else if let Some(c) = self.exp_consts.get(i).copied().flatten() {
                // As below, with the element-independent parts from before the loops.
                let linear = b.ins().fadd(old[i], c.bdt);
                let xr = b.ins().fadd(old[i], c.r);
                let scaled = b.ins().fmul(xr, c.ex);
                let general = b.ins().fadd(c.neg_r, scaled);
                b.ins().select(c.a_zero, linear, general)
            } else if key.exponential {
                let dt = b.ins().f64const(model.run.dt);
                // Probes at x_i = 0 and 1 reuse every subexpression that does not read x_i
                // (the same values the interpreter computes again for each probe).
                let shared = memo_without(model, &base_memo, key.vars[i]);
                let probe = |b: &mut FunctionBuilder, x: f64| {
                    let mut regs = old.clone();
                    regs[i] = b.ins().f64const(x);
                    env.translate_with(b, &regs, e, &rhs[i..=i], shared.clone())
                        .0[0]
                };
                let bv = probe(b, 0.0);
                let f1 = probe(b, 1.0);
                exponential_update(b, env.refs, old[i], bv, f1, dt, types::F64)
            } else if key.euler.is_some() {
                // x + dt * k, as the interpreter's Euler step.
                let dt = b.ins().f64const(model.run.dt);
                let step_size = b.ins().fmul(dt, derivs[i]);
                b.ins().fadd(old[i], step_size)
            } else {
                let zero_f = b.ins().f64const(0.0);
                // Propagator entries from their pairs (lane 0), where they are used.
                exact_row(b, &key.pattern, i, &old[..m], zero_f, |b, k| {
                    self.pair(b, k, types::F64)
                })
            };
            if key.f32_state {
                let narrow = b.ins().fdemote(types::F32, v);
                v = b.ins().fpromote(types::F64, narrow);
            }
            if let (Some(r), true) = (refr, key.frozen[i]) {
                v = b.ins().select(r, old[i], v);
            }
            b.ins().store(flags, v, addrs[i], 0);
            new.push(v);
        }
        // Discrete updates in order, on the integrated state, each seeing the ones before.
        let mut regs: Vec<Value> = new.iter().chain(&old[m..]).copied().collect();
        let state_vars = env.vars;
        for (var, value) in &key.updates {
            let k = state_vars
                .iter()
                .position(|v| v == var)
                .expect("updated variables are state columns");
            let mut v = env.translate(b, &regs, e, &[*value])[0];
            if key.f32_state {
                let narrow = b.ins().fdemote(types::F32, v);
                v = b.ins().fpromote(types::F64, narrow);
            }
            b.ins().store(flags, v, addrs[k], 0);
            regs[k] = v;
        }
        // The spike condition on the updated state, from registers.
        if let Some(threshold) = key.threshold {
            let cond = env.cond(b, &regs, e, threshold);
            env.record_spike(b, cond, refr, e, args.spikes, self.count_var);
        }
        // Or a uniform draw of the event's own stream below the probability (as the
        // interpreter's `detect`).
        if let Some((p, stream)) = key.probability {
            let pv = env.translate(b, &regs, e, &[p])[0];
            let element = b.ins().bor(args.node_key, e);
            let w = rng::philox_bits(b, args.seed, stream, element, args.step);
            let u = rng::open01(b, w[0], w[1]);
            let cond = b.ins().fcmp(FloatCC::LessThan, u, pv);
            env.record_spike(b, cond, refr, e, args.spikes, self.count_var);
        }
    }
}

/// The translated subexpressions of `memo` that do not read `var`.
fn memo_without(
    model: &Model,
    memo: &HashMap<Handle<Expr>, Value>,
    var: Handle<Variable>,
) -> HashMap<Handle<Expr>, Value> {
    memo.iter()
        .filter(|(h, _)| !depends_on(model, **h, var))
        .map(|(h, v)| (*h, *v))
        .collect()
}

/// One exponential-Euler step of `x` from its right side's values at x = 0 (`bv`, B) and x = 1
/// (`f1`), A = F1 - B, as the interpreter: x + B dt where A = 0, else -B/A + (x + B/A) exp(A dt);
/// on one `f64` or on `f64x2` lanes (`ty`; `dt` of that type).
fn exponential_update(
    b: &mut FunctionBuilder,
    refs: &FuncRefs,
    x: Value,
    bv: Value,
    f1: Value,
    dt: Value,
    ty: types::Type,
) -> Value {
    let av = b.ins().fsub(f1, bv);
    let bdt = b.ins().fmul(bv, dt);
    let linear = b.ins().fadd(x, bdt);
    let r = b.ins().fdiv(bv, av);
    let adt = b.ins().fmul(av, dt);
    let ex = math::exp(b, &refs.math, adt, ty);
    let xr = b.ins().fadd(x, r);
    let scaled = b.ins().fmul(xr, ex);
    let zero = b.ins().f64const(0.0);
    if ty == types::F64X2 {
        // The sign flip as a xor (see `Translator::neg`).
        let sign = b.ins().f64const(-0.0);
        let sign = b.ins().splat(types::F64X2, sign);
        let neg_r = b.ins().bxor(r, sign);
        let general = b.ins().fadd(neg_r, scaled);
        let zero = b.ins().splat(types::F64X2, zero);
        let a_zero = b.ins().fcmp(FloatCC::Equal, av, zero);
        let mask = b.ins().bitcast(types::F64X2, MemFlagsData::new(), a_zero);
        b.ins().bitselect(mask, linear, general)
    } else {
        let neg_r = b.ins().fneg(r);
        let general = b.ins().fadd(neg_r, scaled);
        let a_zero = b.ins().fcmp(FloatCC::Equal, av, zero);
        b.ins().select(a_zero, linear, general)
    }
}

/// Row `i` of exact propagation, `sum_j phi_ij x_j (+ k_i)`, over the entries `pattern` marks
/// non-zero, starting from the first product (as `runtime::kernels::sparse_dot`); scalars or
/// `f64x2` vectors alike.
///
/// `constant(b, k)` gives the propagator entry `k` (row-major, `k < m * m`) or the constant
/// input part `k - m * m`.
fn exact_row(
    b: &mut FunctionBuilder,
    pattern: &[bool],
    i: usize,
    xs: &[Value],
    zero: Value,
    constant: impl Fn(&mut FunctionBuilder, usize) -> Value,
) -> Value {
    let m = xs.len();
    let mut acc: Option<Value> = None;
    for (j, &x) in xs.iter().enumerate() {
        if pattern.get(i * m + j).copied().unwrap_or(true) {
            let p = constant(b, i * m + j);
            let prod = b.ins().fmul(x, p);
            acc = Some(match acc {
                None => prod,
                Some(a) => b.ins().fadd(a, prod),
            });
        }
    }
    let v = acc.unwrap_or(zero);
    if pattern.get(m * m + i).copied().unwrap_or(true) {
        let k = constant(b, m * m + i);
        b.ins().fadd(v, k)
    } else {
        v
    }
}

/// Element `e` of an f32 column widened to f64 (`vector`: elements `e` and `e + 1` as
/// `f64x2` lanes, their 8 bytes loaded as one and converted together).
pub(super) fn load_f32_widened(b: &mut FunctionBuilder, p: Value, e: Value, vector: bool) -> Value {
    let off = b.ins().ishl_imm_u(e, 2);
    let addr = b.ins().iadd(p, off);
    if vector {
        let flags = MemFlagsData::new().with_notrap();
        let pair = b.ins().load(types::F64, flags, addr, 0);
        let wide = b.ins().scalar_to_vector(types::F64X2, pair);
        let lanes = b.ins().bitcast(types::F32X4, little_endian(), wide);
        b.ins().fvpromote_low(lanes)
    } else {
        let x = b.ins().load(types::F32, MemFlagsData::trusted(), addr, 0);
        b.ins().fpromote(types::F64, x)
    }
}

/// Store `v` (f64, or `f64x2` lanes with `vector`) into element `e` of an f32 column, narrowed
/// (round to nearest, as `as f32`).
pub(super) fn store_f32_narrowed(
    b: &mut FunctionBuilder,
    p: Value,
    e: Value,
    v: Value,
    vector: bool,
) {
    let off = b.ins().ishl_imm_u(e, 2);
    let addr = b.ins().iadd(p, off);
    if vector {
        let lanes = b.ins().fvdemote(v);
        let wide = b.ins().bitcast(types::F64X2, little_endian(), lanes);
        let pair = b.ins().extractlane(wide, 0);
        b.ins()
            .store(MemFlagsData::new().with_notrap(), pair, addr, 0);
    } else {
        let x = b.ins().fdemote(types::F32, v);
        b.ins().store(MemFlagsData::trusted(), x, addr, 0);
    }
}

/// Flags of a lane-reinterpreting `bitcast` (lane order as in memory on this target).
fn little_endian() -> MemFlagsData {
    MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little)
}

/// Whether an expression can be evaluated on `f64x2` lanes inside a fused kernel: arithmetic,
/// comparisons and logic on constants, variables and the time builtins, small constant integer
/// powers, and the functions with a lane form (`exp`, `expm1`, `exprel`, `sigmoid`, `tanh`,
/// `sqrt`, `abs`); no other calls or powers, no element indices.
fn vectorizable(model: &Model, e: Handle<Expr>) -> bool {
    on_lanes(model, e, false)
}

/// `vectorizable`, where `any_side` also lets variables of the synapse's endpoints through
/// (event code over runs, which reads them as one value per row or contiguously).
pub(super) fn on_lanes(model: &Model, e: Handle<Expr>, any_side: bool) -> bool {
    let lanes = |x: &Handle<Expr>| on_lanes(model, *x, any_side);
    match &model.exprs[e] {
        Expr::Const(_) | Expr::Bool(_) => true,
        Expr::Var { side, .. } => any_side || *side == Side::Own,
        Expr::Builtin(bi) => !matches!(bi, Builtin::I | Builtin::J),
        Expr::Unary(_, a) => lanes(a),
        Expr::Binary(BinOp::Pow, a, b) => small_integer(&model.exprs[*b]).is_some() && lanes(a),
        Expr::Binary(op, a, b) => *op != BinOp::Mod && lanes(a) && lanes(b),
        Expr::Call(f, args) => {
            matches!(
                f,
                Func::Exp
                    | Func::Expm1
                    | Func::Exprel
                    | Func::Sigmoid
                    | Func::Tanh
                    | Func::Sqrt
                    | Func::Abs
            ) && args.iter().all(lanes)
        }
        _ => false,
    }
}

/// Whether an expression reads a variable (on its own side).
fn depends_on(model: &Model, e: Handle<Expr>, var: Handle<Variable>) -> bool {
    match &model.exprs[e] {
        Expr::Var { var: v, side } => *v == var && *side == Side::Own,
        Expr::Unary(_, a) => depends_on(model, *a, var),
        Expr::Binary(_, a, b) => depends_on(model, *a, var) || depends_on(model, *b, var),
        Expr::Call(_, args) | Expr::Array(args) => args.iter().any(|a| depends_on(model, *a, var)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arguments the power test evaluates at: special values and a spread of magnitudes.
    fn test_arguments() -> Vec<f64> {
        let mut xs = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            1e-310,
            -1e-310,
            700.0,
            -745.5,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            std::f64::consts::PI,
        ];
        let mut x = 1.234_567e-6;
        while x < 1e6 {
            xs.push(x);
            xs.push(-x);
            x *= 1.37;
        }
        xs
    }

    extern "C" fn no_random(_: u32, _: u64, _: u64, _: u64, _: u64, _: f64, _: f64) -> f64 {
        unreachable!("the power kernels draw nothing")
    }

    struct NoFiles;
    impl crate::Loader for NoFiles {
        fn read(&self, path: &str) -> std::io::Result<String> {
            Err(std::io::Error::new(std::io::ErrorKind::NotFound, path))
        }
        fn exists(&self, _: &str) -> bool {
            false
        }
    }

    /// Every constant power `x^k` of a spec, compiled to an expression kernel and called on a
    /// column of arguments, gives the interpreter's result (`pow_f64`, what `runtime::eval`
    /// calls for `^`) bit for bit: the inline square-and-multiply for `|k| <= 16`, the call
    /// through `ng_pow` for the other exponents.
    #[test]
    fn generated_powers_are_the_interpreters_powers() {
        let mut exponents: Vec<f64> = (-16..=16).map(f64::from).collect();
        exponents.extend([17.0, -17.0, 0.5, -2.5, 31.0]);
        let mut text = String::from("model powers\nunit U {\n  state x: 1 = 0\n");
        for (k, y) in exponents.iter().enumerate() {
            text.push_str(&format!("  state y{k}: 1 = 0\n  y{k} <- x^({y})\n"));
        }
        text.push_str("}\npopulation P = U[1]\n");
        let mut sources = neurograph_grammar::SourceMap::new();
        let root = sources.add("powers.ng", text);
        let out = crate::compile(&mut sources, root, &NoFiles);
        assert!(!out.has_errors(), "{:?}", out.diagnostics);
        let model = out.compiled.expect("compiles").model;
        let helpers = Helpers {
            random: no_random as *const u8,
        };
        let mut jit = Jit::new(&helpers).unwrap();
        let xs = test_arguments();
        let mut inline = 0;
        let mut seen = Vec::new();
        for (h, e) in model.exprs.iter() {
            let Expr::Binary(BinOp::Pow, base, exponent) = e else {
                continue;
            };
            let Expr::Const(k) = model.exprs[*exponent] else {
                panic!("exponent {:?} is not a constant", model.exprs[*exponent]);
            };
            assert!(matches!(model.exprs[*base], Expr::Var { .. }));
            seen.push(k);
            if small_integer(&model.exprs[*exponent]).is_some() {
                inline += 1;
            }
            let key = KernelKey {
                expr: h,
                modes: vec![InputMode::Element],
                subset: false,
                synapses: false,
            };
            let kernel = jit.compile(&model, &key).unwrap();
            let input = InputArg {
                ptr: xs.as_ptr(),
                index: std::ptr::null(),
                offset: 0,
            };
            let mut out = vec![f64::from_bits(0x7ff8_dead_beef_0000); xs.len()];
            let args = KernelArgs {
                n: xs.len() as u64,
                elems: std::ptr::null(),
                out: out.as_mut_ptr(),
                inputs: &input,
                pre_idx: std::ptr::null(),
                post_idx: std::ptr::null(),
                t: 0.0,
                step: 0,
                node_key: 0,
                seed: 0,
                size: xs.len() as u64,
            };
            // SAFETY: one input read per element (`Element`), `n` elements of `xs` and `out`,
            // no indices, no synapses.
            unsafe { (kernel.func)(&args) };
            for (x, got) in xs.iter().zip(&out) {
                let want = crate::pow_f64(*x, k);
                assert_eq!(got.to_bits(), want.to_bits(), "{x}^{k}: {got} vs {want}");
            }
        }
        seen.sort_by(f64::total_cmp);
        exponents.sort_by(f64::total_cmp);
        assert_eq!(seen, exponents, "every power compiled once");
        assert_eq!(inline, 33, "-16..=16 take the inline path");
    }

    #[test]
    fn baseline_code_uses_no_cpu_extension() {
        // `neurograph build --target baseline`: kernels that run on any x86-64.
        let base = isa(true, CpuFeatures::Baseline).unwrap();
        let flags = base.isa_flags();
        let flag = |name: &str| {
            flags
                .iter()
                .find(|v| v.name == name)
                .and_then(|v| v.as_bool())
        };
        if cfg!(target_arch = "x86_64") {
            for ext in ["has_sse41", "has_avx", "has_avx2", "has_fma"] {
                assert_eq!(flag(ext), Some(false), "{ext} in baseline code");
            }
        }
    }

    #[test]
    fn direct_helpers_are_the_interpreters_functions() {
        let xs = test_arguments();
        for (f, name, helper) in UNARY {
            for &x in &xs {
                let want = crate::eval_pure(f, &[x]).unwrap();
                assert_eq!(helper(x).to_bits(), want.to_bits(), "{name}({x})");
            }
        }
    }
}
