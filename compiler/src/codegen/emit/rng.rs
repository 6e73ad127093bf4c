//! The counter-based random numbers of `runtime::rng`, inline in generated code: Philox4x32-10
//! on the counter (element, step, draw 0) and key (seed, stream), and the conversion of two
//! 32-bit words to a uniform in (0, 1). Every operation is the Rust implementation's, so draws
//! are bit-identical; normal deviates (a ziggurat with rejections) are the runtime's, called
//! through `ng_random`.

use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;

const M0: i64 = 0xD251_1F53;
const M1: i64 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// The 128 random bits of draw 0 for (`element`, `step`) of stream `stream` (all `i64`
/// except the constant stream number): four `i32` words.
pub(super) fn philox_bits(
    b: &mut FunctionBuilder,
    seed: Value,
    stream: u32,
    element: Value,
    step: Value,
) -> [Value; 4] {
    let i32t = types::I32;
    let low = |b: &mut FunctionBuilder, x: Value| b.ins().ireduce(i32t, x);
    let high = |b: &mut FunctionBuilder, x: Value| {
        let h = b.ins().ushr_imm_u(x, 32);
        b.ins().ireduce(i32t, h)
    };
    let c0 = low(b, element);
    let eh = high(b, element);
    let sh = high(b, seed);
    let sh = b.ins().rotl_imm_u(sh, 16);
    let c1 = b.ins().bxor(eh, sh);
    let c2 = low(b, step);
    let th = high(b, step);
    let c3 = b.ins().band_imm_u(th, 0xFFFF); // draw 0 in the upper half
    let k0 = low(b, seed);
    let mut c = [c0, c1, c2, c3];
    for round in 0..10u32 {
        let k0r = b.ins().iadd_imm_u(k0, round.wrapping_mul(W0) as i64);
        let k1r = b
            .ins()
            .iconst(i32t, stream.wrapping_add(round.wrapping_mul(W1)) as i64);
        // One 64-bit product per word gives both halves (as the Rust implementation).
        let wide = |b: &mut FunctionBuilder, m: i64, x: Value| {
            let x = b.ins().uextend(types::I64, x);
            let p = b.ins().imul_imm_s(x, m);
            let hi = b.ins().ushr_imm_u(p, 32);
            (b.ins().ireduce(i32t, hi), b.ins().ireduce(i32t, p))
        };
        let (hi0, lo0) = wide(b, M0, c[0]);
        let (hi1, lo1) = wide(b, M1, c[2]);
        let n0 = b.ins().bxor(hi1, c[1]);
        let n0 = b.ins().bxor(n0, k0r);
        let n2 = b.ins().bxor(hi0, c[3]);
        let n2 = b.ins().bxor(n2, k1r);
        c = [n0, lo1, n2, lo0];
    }
    c
}

/// A uniform in (0, 1) from two words: 53 bits, `(x + 0.5) / 2^53`.
pub(super) fn open01(b: &mut FunctionBuilder, hi: Value, lo: Value) -> Value {
    let hi = b.ins().uextend(types::I64, hi);
    let lo = b.ins().uextend(types::I64, lo);
    let hi = b.ins().ishl_imm_u(hi, 21);
    let lo = b.ins().ushr_imm_u(lo, 11);
    let x = b.ins().bxor(hi, lo);
    let f = b.ins().fcvt_from_uint(types::F64, x);
    let half = b.ins().f64const(0.5);
    let f = b.ins().fadd(f, half);
    let scale = b.ins().f64const(1.0 / (1u64 << 53) as f64);
    b.ins().fmul(f, scale)
}
