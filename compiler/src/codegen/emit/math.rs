//! `exp`, `expm1` and `tanh` inline, on one `f64` or on `f64x2` lanes: the operations of
//! `crate::math`'s main paths, in its order, so the results are its results bit for bit.
//!
//! An argument outside the main path (|x| >= 512 or tiny for `exp`, |x| > 56 ln 2 or tiny for
//! `expm1`, infinities and NaN) sends the value (both lanes) to the direct helper instead, which
//! is the same function. Without FMA instructions (`--target baseline`) every call goes to the
//! helper: an emulated fused multiply-add would cost more than the call.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, FuncRef, GlobalValue, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

use crate::math::{
    EXPM1_INV_LN2, EXPM1_LN2_HI, EXPM1_LN2_LO, EXPM1_Q, EXP_C, EXP_INV_LN2_N, EXP_NEG_LN2_HI_N,
    EXP_NEG_LN2_LO_N, EXP_SHIFT, LANE_CONSTANTS,
};

/// What inline code needs: the table's address and the helpers for the other arguments.
#[derive(Clone, Copy)]
pub(super) struct MathRefs {
    /// `ng_math_data` (`crate::math::MATH_DATA`); `None` when the target has no FMA.
    pub data: Option<GlobalValue>,
    pub exp: FuncRef,
    pub expm1: FuncRef,
    pub tanh: FuncRef,
}

/// Scalar (`F64`) or lane-pair (`F64X2`) emission helpers.
struct Ops<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    ty: Type,
    /// The address of `ng_math_data`.
    data: Value,
}

impl Ops<'_, '_> {
    fn vector(&self) -> bool {
        self.ty == types::F64X2
    }
    fn ity(&self) -> Type {
        if self.vector() {
            types::I64X2
        } else {
            types::I64
        }
    }
    fn c(&mut self, v: f64) -> Value {
        if self.vector() {
            self.lane_const(types::F64X2, v.to_bits())
        } else {
            self.b.ins().f64const(v)
        }
    }
    fn ic(&mut self, v: i64) -> Value {
        if self.vector() {
            self.lane_const(types::I64X2, v as u64)
        } else {
            self.b.ins().iconst(types::I64, v)
        }
    }
    /// A lane pair of `LANE_CONSTANTS`, loaded where it is used: the load folds into the
    /// instruction that reads it, where a constant would be hoisted out of the loop and kept in
    /// a register (with dozens of them, spilled and reloaded).
    fn lane_const(&mut self, ty: Type, bits: u64) -> Value {
        let k = LANE_CONSTANTS
            .iter()
            .position(|c| c.to_bits() == bits)
            .expect("every inline constant is in LANE_CONSTANTS");
        let off = (256 + 2 * k) * 8;
        // Not `readonly`: that would make the load free to move, and it would be scheduled
        // early, away from its use.
        let flags = MemFlagsData::trusted();
        self.b.ins().load(ty, flags, self.data, off as i32)
    }
    fn fma(&mut self, x: Value, y: Value, z: Value) -> Value {
        self.b.ins().fma(x, y, z)
    }
    fn fmac(&mut self, x: Value, y: f64, z: f64) -> Value {
        let (y, z) = (self.c(y), self.c(z));
        self.b.ins().fma(x, y, z)
    }
    fn neg(&mut self, x: Value) -> Value {
        if self.vector() {
            let sign = self.c(-0.0);
            self.b.ins().bxor(x, sign)
        } else {
            self.b.ins().fneg(x)
        }
    }
    fn as_bits(&mut self, x: Value) -> Value {
        let ity = self.ity();
        self.b.ins().bitcast(ity, MemFlagsData::new(), x)
    }
    fn as_float(&mut self, x: Value) -> Value {
        let ty = self.ty;
        self.b.ins().bitcast(ty, MemFlagsData::new(), x)
    }
    /// |x| in [lo, hi) (false for NaN): a boolean, or an `i64x2` lane mask.
    fn abs_in(&mut self, x: Value, lo: f64, hi: f64) -> Value {
        let a = if self.vector() {
            let mask = self.c(f64::from_bits(0x7fff_ffff_ffff_ffff));
            self.b.ins().band(x, mask)
        } else {
            self.b.ins().fabs(x)
        };
        let hi = self.c(hi);
        let below = self.b.ins().fcmp(FloatCC::LessThan, a, hi);
        if lo == 0.0 {
            return below;
        }
        let lo = self.c(lo);
        let above = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, a, lo);
        self.b.ins().band(above, below)
    }
    /// `cond ? x : y` for a comparison result `cond` (boolean, or lane mask).
    fn select(&mut self, cond: Value, x: Value, y: Value) -> Value {
        if self.vector() {
            let mask = self.as_float(cond);
            self.b.ins().bitselect(mask, x, y)
        } else {
            self.b.ins().select(cond, x, y)
        }
    }
    fn cmp(&mut self, cc: FloatCC, x: Value, y: f64) -> Value {
        let y = self.c(y);
        self.b.ins().fcmp(cc, x, y)
    }
    /// `y` times 2^k, with `k52` = k << 52 (wrapping): k added to the exponent field.
    fn add_exponent(&mut self, y: Value, k52: Value) -> Value {
        let bits = self.as_bits(y);
        let bits = self.b.ins().iadd(bits, k52);
        self.as_float(bits)
    }
}

/// e^x.
pub(super) fn exp(b: &mut FunctionBuilder, refs: &MathRefs, x: Value, ty: Type) -> Value {
    let Some(data) = refs.data else {
        return by_helper(b, refs.exp, x, ty);
    };
    // Tiny arguments need no check: the main path computes 1 + x for them, as the scalar code.
    guarded(b, refs.exp, data, x, ty, (0.0, 512.0), exp_main)
}

/// e^x - 1.
pub(super) fn expm1(b: &mut FunctionBuilder, refs: &MathRefs, x: Value, ty: Type) -> Value {
    let Some(data) = refs.data else {
        return by_helper(b, refs.expm1, x, ty);
    };
    // |x| <= 56 ln 2: the high word at most 0x40436879.
    let limit = f64::from_bits(0x4043_687a_0000_0000);
    guarded(
        b,
        refs.expm1,
        data,
        x,
        ty,
        (2f64.powi(-54), limit),
        expm1_main,
    )
}

/// tanh x: `crate::math::tanh` on lanes, with one `expm1` (of 2|x| where |x| >= 1, else of
/// -2|x|) and the special cases selected.
pub(super) fn tanh(b: &mut FunctionBuilder, refs: &MathRefs, x: Value, ty: Type) -> Value {
    let Some(data) = refs.data else {
        return by_helper(b, refs.tanh, x, ty);
    };
    let data_v = b.ins().symbol_value(types::I64, data);
    let mut ops = Ops {
        b,
        ty,
        data: data_v,
    };
    let a = if ops.vector() {
        let mask = ops.c(f64::from_bits(0x7fff_ffff_ffff_ffff));
        ops.b.ins().band(x, mask)
    } else {
        ops.b.ins().fabs(x)
    };
    let big = ops.cmp(FloatCC::GreaterThanOrEqual, a, 1.0);
    let twice = ops.b.ins().fadd(a, a);
    let m2 = ops.c(-2.0);
    let minus_twice = ops.b.ins().fmul(m2, a);
    let arg = ops.select(big, twice, minus_twice);
    let t = expm1(ops.b, refs, arg, ty);
    let mut ops = Ops {
        b: ops.b,
        ty,
        data: data_v,
    };
    let two = ops.c(2.0);
    let tp2 = ops.b.ins().fadd(t, two);
    let q = ops.b.ins().fdiv(two, tp2);
    let one = ops.c(1.0);
    let z_big = ops.b.ins().fsub(one, q);
    let nt = ops.neg(t);
    let z_small = ops.b.ins().fdiv(nt, tp2);
    let z = ops.select(big, z_big, z_small);
    // |x| >= 22 (infinities too): 1. Then x's sign.
    let saturated = ops.cmp(FloatCC::GreaterThanOrEqual, a, 22.0);
    let z = ops.select(saturated, one, z);
    let sign = ops.c(-0.0);
    let s = ops.b.ins().band(x, sign);
    let signed = ops.b.ins().bxor(z, s);
    // |x| < 2^-55 (zeros too): x (1 + x). NaN: NaN.
    let onex = ops.b.ins().fadd(one, x);
    let small = ops.b.ins().fmul(x, onex);
    let tiny = ops.abs_in(x, 0.0, f64::from_bits(0x3c80_0000_0000_0000));
    let r = ops.select(tiny, small, signed);
    let nan = ops.b.ins().fcmp(FloatCC::Unordered, x, x);
    let nan_result = ops.b.ins().fadd(x, x);
    ops.select(nan, nan_result, r)
}

/// `main` on `x` when every lane's |x| is in `[lo, hi)`, else the helper lane by lane.
fn guarded(
    b: &mut FunctionBuilder,
    helper: FuncRef,
    data: GlobalValue,
    x: Value,
    ty: Type,
    (lo, hi): (f64, f64),
    main: impl FnOnce(&mut Ops, Value) -> Value,
) -> Value {
    let data = b.ins().symbol_value(types::I64, data);
    let mut ops = Ops { b, ty, data };
    let ok = ops.abs_in(x, lo, hi);
    let all = if ops.vector() {
        // Both lanes' sign bits (one movmskpd), rather than `vall_true`'s compare and test.
        let bits = ops.b.ins().vhigh_bits(types::I8, ok);
        ops.b.ins().icmp_imm_u(IntCC::Equal, bits, 3)
    } else {
        ok
    };
    let (fast, slow, done) = (
        ops.b.create_block(),
        ops.b.create_block(),
        ops.b.create_block(),
    );
    ops.b.append_block_param(done, ty);
    ops.b.set_cold_block(slow);
    ops.b.ins().brif(all, fast, &[], slow, &[]);
    ops.b.switch_to_block(fast);
    let y = main(&mut ops, x);
    ops.b.ins().jump(done, &[y.into()]);
    ops.b.switch_to_block(slow);
    let y = by_helper(ops.b, helper, x, ty);
    ops.b.ins().jump(done, &[y.into()]);
    ops.b.switch_to_block(done);
    ops.b.block_params(done)[0]
}

/// The helper on `x`, lane by lane for `F64X2`.
fn by_helper(b: &mut FunctionBuilder, helper: FuncRef, x: Value, ty: Type) -> Value {
    let one = |b: &mut FunctionBuilder, v: Value| {
        let call = b.ins().call(helper, &[v]);
        b.inst_results(call)[0]
    };
    if ty == types::F64 {
        return one(b, x);
    }
    let x0 = b.ins().extractlane(x, 0);
    let x1 = b.ins().extractlane(x, 1);
    let (y0, y1) = (one(b, x0), one(b, x1));
    let y = b.ins().scalar_to_vector(types::F64X2, y0);
    b.ins().insertlane(y, y1, 1)
}

/// `crate::math::exp`'s main path.
fn exp_main(ops: &mut Ops, x: Value) -> Value {
    let inv = ops.c(EXP_INV_LN2_N);
    let shift = ops.c(EXP_SHIFT);
    let kd = ops.fma(inv, x, shift);
    let ki = ops.as_bits(kd);
    let kd = ops.b.ins().fsub(kd, shift);
    let (hi, lo) = (ops.c(EXP_NEG_LN2_HI_N), ops.c(EXP_NEG_LN2_LO_N));
    let r = ops.fma(kd, hi, x);
    let r = ops.fma(kd, lo, r);
    // The table row of i = k mod 128: (tail, bits of 2^(i/128) minus i << 45).
    let mask = ops.ic(127);
    let i = ops.b.ins().band(ki, mask);
    let base = ops.data;
    let flags = MemFlagsData::trusted().with_readonly();
    let row = |b: &mut FunctionBuilder, i: Value| {
        let off = b.ins().ishl_imm_u(i, 4);
        let addr = b.ins().iadd(base, off);
        let tail = b.ins().load(types::F64, flags, addr, 0);
        let bits = b.ins().load(types::I64, flags, addr, 8);
        (tail, bits)
    };
    let (tail, tbits) = if ops.vector() {
        let i0 = ops.b.ins().extractlane(i, 0);
        let i1 = ops.b.ins().extractlane(i, 1);
        let (t0, s0) = row(ops.b, i0);
        let (t1, s1) = row(ops.b, i1);
        let t = ops.b.ins().scalar_to_vector(types::F64X2, t0);
        let t = ops.b.ins().insertlane(t, t1, 1);
        let s = ops.b.ins().scalar_to_vector(types::I64X2, s0);
        let s = ops.b.ins().insertlane(s, s1, 1);
        (t, s)
    } else {
        row(ops.b, i)
    };
    let top = ops.b.ins().ishl_imm_u(ki, 45);
    let sbits = ops.b.ins().iadd(tbits, top);
    let r2 = ops.b.ins().fmul(r, r);
    let [c2, c3, c4, c5] = EXP_C;
    let p45 = ops.fmac(r, c5, c4);
    let p23 = ops.fmac(r, c3, c2);
    let tr = ops.b.ins().fadd(tail, r);
    let q = ops.fma(r2, p23, tr);
    let r4 = ops.b.ins().fmul(r2, r2);
    let tmp = ops.fma(r4, p45, q);
    let scale = ops.as_float(sbits);
    ops.fma(scale, tmp, scale)
}

/// `crate::math::expm1`'s main path (2^-54 <= |x| <= 56 ln 2): every reconstruction computed
/// and the one for this k selected.
fn expm1_main(ops: &mut Ops, x0: Value) -> Value {
    // Reduction (`expm1_reduce`): t = k, 0 for |x| <= ln 2 / 2.
    let sign = ops.c(-0.0);
    let half = ops.c(0.5);
    let s = ops.b.ins().band(x0, sign);
    let half = ops.b.ins().bor(s, half);
    let inv = ops.c(EXPM1_INV_LN2);
    let xi = ops.b.ins().fmul(x0, inv);
    let t = ops.b.ins().fadd(xi, half);
    let t = ops.b.ins().trunc(t);
    let small = ops.abs_in(x0, 0.0, f64::from_bits(0x3fd6_2e43_0000_0000));
    let zero = ops.c(0.0);
    let t = ops.select(small, zero, t);
    let nt = ops.neg(t);
    let ln2_hi = ops.c(EXPM1_LN2_HI);
    let hi = ops.fma(nt, ln2_hi, x0);
    let ln2_lo = ops.c(EXPM1_LN2_LO);
    let lo = ops.b.ins().fmul(t, ln2_lo);
    let x = ops.b.ins().fsub(hi, lo);
    let c = ops.b.ins().fsub(hi, x);
    let c = ops.b.ins().fsub(c, lo);
    // `expm1_reconstruct`.
    let [q1, q2, q3, q4, q5] = EXPM1_Q;
    let h = ops.c(0.5);
    let hfx = ops.b.ins().fmul(h, x);
    let hxs = ops.b.ins().fmul(x, hfx);
    let h2 = ops.b.ins().fmul(hxs, hxs);
    let h4 = ops.b.ins().fmul(h2, h2);
    let p45 = ops.fmac(hxs, q5, q4);
    let p23 = ops.fmac(hxs, q3, q2);
    let p1 = ops.fmac(hxs, q1, 1.0);
    let inner = ops.fma(h2, p23, p1);
    let r1 = ops.fma(h4, p45, inner);
    let nr1 = ops.neg(r1);
    let three = ops.c(3.0);
    let t2 = ops.fma(nr1, hfx, three);
    let num = ops.b.ins().fsub(r1, t2);
    let nx = ops.neg(x);
    let six = ops.c(6.0);
    let den = ops.fma(nx, t2, six);
    let quot = ops.b.ins().fdiv(num, den);
    let e = ops.b.ins().fmul(hxs, quot);
    // k = 0: x - (x e - hxs).
    let nhxs = ops.neg(hxs);
    let xe = ops.fma(x, e, nhxs);
    let r_0 = ops.b.ins().fsub(x, xe);
    // Otherwise e = (x (e - c) - c) - hxs.
    let ec = ops.b.ins().fsub(e, c);
    let nc = ops.neg(c);
    let e = ops.fma(x, ec, nc);
    let e = ops.b.ins().fsub(e, hxs);
    let xme = ops.b.ins().fsub(x, e);
    // k = -1: (x - e) / 2 - 1/2.
    let r_m1 = ops.fmac(xme, 0.5, -0.5);
    // k = 1: -2 (e - (x + 1/2)) below x = -1/4, else 1 + 2 (x - e).
    let xh = ops.b.ins().fadd(x, h);
    let exh = ops.b.ins().fsub(e, xh);
    let m2 = ops.c(-2.0);
    let r_1lo = ops.b.ins().fmul(m2, exh);
    let r_1hi = ops.fmac(xme, 2.0, 1.0);
    let below = ops.cmp(FloatCC::LessThan, x, -0.25);
    let r_1 = ops.select(below, r_1lo, r_1hi);
    // k << 52 and 2^-k from k's low bits (k + 1.5 * 2^52 holds k in its mantissa).
    let shift = ops.c(EXP_SHIFT);
    let kf = ops.b.ins().fadd(t, shift);
    let kb = ops.as_bits(kf);
    let k52 = ops.b.ins().ishl_imm_u(kb, 52);
    let one_bits = ops.ic(0x3ff << 52);
    let p2 = ops.b.ins().isub(one_bits, k52);
    let pow2_neg_k = ops.as_float(p2);
    let one = ops.c(1.0);
    let emx = ops.b.ins().fsub(e, x);
    // k <= -2: 2^k (1 - (e - x)) - 1.
    let y = ops.b.ins().fsub(one, emx);
    let y = ops.add_exponent(y, k52);
    let r_neg = ops.b.ins().fsub(y, one);
    // 2 <= k < 20: 2^k ((1 - 2^-k) - (e - x)).
    let tk = ops.b.ins().fsub(one, pow2_neg_k);
    let y = ops.b.ins().fsub(tk, emx);
    let r_mid = ops.add_exponent(y, k52);
    // k >= 20: 2^k ((x - (e + 2^-k)) + 1).
    let ep = ops.b.ins().fadd(e, pow2_neg_k);
    let y = ops.b.ins().fsub(x, ep);
    let y = ops.b.ins().fadd(y, one);
    let r_high = ops.add_exponent(y, k52);
    let high = ops.cmp(FloatCC::GreaterThanOrEqual, t, 20.0);
    let r = ops.select(high, r_high, r_mid);
    let neg = ops.cmp(FloatCC::LessThanOrEqual, t, -2.0);
    let r = ops.select(neg, r_neg, r);
    let is1 = ops.cmp(FloatCC::Equal, t, 1.0);
    let r = ops.select(is1, r_1, r);
    let ism1 = ops.cmp(FloatCC::Equal, t, -1.0);
    let r = ops.select(ism1, r_m1, r);
    let is0 = ops.cmp(FloatCC::Equal, t, 0.0);
    ops.select(is0, r_0, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codegen::{ng_exp, ng_expm1, ng_math_data, ng_tanh};
    use cranelift_codegen::ir::{AbiParam, UserFuncName};
    use cranelift_frontend::FunctionBuilderContext;
    use cranelift_jit::{JITBuilder, JITModule};
    use cranelift_module::{default_libcall_names, Linkage, Module};

    type PairFn = unsafe extern "C" fn(*const f64, *mut f64);

    /// A function computing `f` (0: exp, 1: expm1, 2: tanh) on the pair (or the one value) at its first
    /// argument, stored at its second: the inline code and its fallback, as kernels emit them.
    fn compile(f: usize, ty: Type) -> Option<(JITModule, PairFn)> {
        let isa = super::super::isa(false, crate::codegen::CpuFeatures::Native).unwrap();
        let has_fma = isa
            .isa_flags()
            .iter()
            .find(|v| v.name == "has_fma")
            .is_none_or(|v| v.as_bool() == Some(true));
        if !has_fma {
            return None;
        }
        let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
        builder.symbol("ng_exp", ng_exp as *const u8);
        builder.symbol("ng_expm1", ng_expm1 as *const u8);
        builder.symbol("ng_tanh", ng_tanh as *const u8);
        builder.symbol("ng_math_data", ng_math_data.0.as_ptr() as *const u8);
        let mut module = JITModule::new(builder);
        let mut unary = module.make_signature();
        unary.params.push(AbiParam::new(types::F64));
        unary.returns.push(AbiParam::new(types::F64));
        let exp_id = module
            .declare_function("ng_exp", Linkage::Import, &unary)
            .unwrap();
        let expm1_id = module
            .declare_function("ng_expm1", Linkage::Import, &unary)
            .unwrap();
        let tanh_id = module
            .declare_function("ng_tanh", Linkage::Import, &unary)
            .unwrap();
        let table_id = module
            .declare_data("ng_math_data", Linkage::Import, false, false)
            .unwrap();
        let mut ctx = module.make_context();
        let config = module.target_config();
        let ptr = config.pointer_type();
        ctx.func.signature.params.push(AbiParam::new(ptr));
        ctx.func.signature.params.push(AbiParam::new(ptr));
        ctx.func.name = UserFuncName::user(0, 0);
        let refs = MathRefs {
            data: Some(module.declare_data_in_func(table_id, &mut ctx.func)),
            exp: module.declare_func_in_func(exp_id, &mut ctx.func),
            expm1: module.declare_func_in_func(expm1_id, &mut ctx.func),
            tanh: module.declare_func_in_func(tanh_id, &mut ctx.func),
        };
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let (src, dst) = (b.block_params(entry)[0], b.block_params(entry)[1]);
        let flags = MemFlagsData::trusted();
        let x = b.ins().load(ty, flags, src, 0);
        let y = match f {
            0 => exp(&mut b, &refs, x, ty),
            1 => expm1(&mut b, &refs, x, ty),
            _ => tanh(&mut b, &refs, x, ty),
        };
        b.ins().store(flags, y, dst, 0);
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize(config);
        let id = module
            .declare_function("pair", Linkage::Local, &ctx.func.signature)
            .unwrap();
        module.define_function(id, &mut ctx).unwrap();
        module.finalize_definitions().unwrap();
        let code = module.get_finalized_function(id);
        // SAFETY: the function just compiled has this signature.
        Some((module, unsafe {
            std::mem::transmute::<*const u8, PairFn>(code)
        }))
    }

    /// Arguments in and out of the inline paths: special values, both ends of the main ranges
    /// and a spread of magnitudes of both signs.
    fn arguments() -> Vec<f64> {
        let mut xs = vec![
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            5e-324,
            2f64.powi(-54),
            -2f64.powi(-54),
            511.9999,
            512.0,
            -512.0,
            -745.0,
            709.7,
            38.8,
            -38.8,
            38.9,
            0.3465735902799726,
            0.34657359028,
            1.0397207708399179,
            -1.0397207708399179,
            -0.25,
            1e-20,
            -3e-17,
            1e-310,
            -1e-310,
            2.2250738585072014e-308,
        ];
        let mut s = 0x2545_f491_4f6c_dd1du64;
        for i in 0..60_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            xs.push(u * [2.0, 80.0, 1100.0, 1e-6][i % 4]);
        }
        xs
    }

    /// Inline `exp`, `expm1` and `tanh`, scalar and on lanes (every pair of neighbouring arguments, so
    /// that pairs mix the main path and the fallback), equal `crate::math`'s bit for bit.
    #[test]
    fn inline_exponentials_are_the_interpreters() {
        let xs = arguments();
        let functions = [
            (0, crate::math::exp as fn(f64) -> f64),
            (1, crate::math::expm1),
            (2, crate::math::tanh),
        ];
        for (f, want) in functions {
            for ty in [types::F64, types::F64X2] {
                let Some((_module, func)) = compile(f, ty) else {
                    eprintln!("skipped: no FMA, the helpers are called instead");
                    return;
                };
                for pair in xs.windows(2) {
                    let mut out = [0.0f64; 2];
                    // SAFETY: reads one or two f64 from `pair`, writes as many to `out`.
                    unsafe { func(pair.as_ptr(), out.as_mut_ptr()) };
                    let lanes = if ty == types::F64 { 1 } else { 2 };
                    for k in 0..lanes {
                        let (got, want) = (out[k], want(pair[k]));
                        assert!(
                            got.to_bits() == want.to_bits() || got.is_nan() && want.is_nan(),
                            "function {f} ({ty}) of {:e}: {got:e} vs {want:e}",
                            pair[k]
                        );
                    }
                }
            }
        }
    }
}
