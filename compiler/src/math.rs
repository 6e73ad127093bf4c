//! The exponential functions every backend calls: `exp`, `expm1` and `tanh`, one deterministic
//! implementation in Rust that the interpreter calls and that generated code inlines (scalar and
//! on `f64x2` lanes, `codegen::emit::math`), so that traces are bit-identical between backends
//! and between machines.
//!
//! The methods are published ones, chosen so that on x86-64 with FMA and glibc (the machines
//! Brian2 runs on here) every result equals the C library's bit for bit, which keeps
//! neurograph's spikes identical to Brian2's on networks that call `exp` and `expm1`:
//! - `exp`: the table method of ARM's optimized-routines (glibc's `exp` since 2.28):
//!   x = (k + i/128) ln 2 + r with |r| <= ln 2 / 256, 2^(i/128) from a 128-entry table of a
//!   double and a relative correction, exp(r) - 1 by a degree-5 polynomial, and the fused
//!   multiply-adds where glibc's FMA build has them. Maximum error 0.511 ulp (the method's
//!   documented bound; 0.507 measured by `exp_error_is_within_bound` on 500,000 arguments over
//!   the whole range against a double-double reference).
//! - `expm1`: Sun's fdlibm method (glibc's `expm1`): x = k ln 2 + r with |r| <= ln 2 / 2, a
//!   rational approximation of r / (exp(r) - 1) evaluated in Estrin form, the correction term
//!   c of the reduction and a reconstruction that depends on k; fused multiply-adds where
//!   glibc's FMA build has them. Error below 1 ulp (0.81 measured the same way).
//! - `tanh`: fdlibm's (glibc's), from `expm1` of 2|x| or -2|x|; error below 2.5 ulp.
//!
//! The fused multiply-adds are exact everywhere (the FMA instruction where the CPU has it,
//! else a correctly rounded software fma), so the results do not depend on the machine.

/// 2^(k/128) for k = 0..127 as (relative correction, bits of the nearest double minus k << 45)
/// pairs; printed by `tools/exp_table.py`.
const EXP_TABLE_ROWS: [u64; 256] = [
    0x0000000000000000,
    0x3ff0000000000000,
    0x3c9b3b4f1a88bf6e,
    0x3feff63da9fb3335,
    0xbc7160139cd8dc5d,
    0x3fefec9a3e778061,
    0xbc905e7a108766d1,
    0x3fefe315e86e7f85,
    0x3c8cd2523567f613,
    0x3fefd9b0d3158574,
    0xbc8bce8023f98efa,
    0x3fefd06b29ddf6de,
    0x3c60f74e61e6c861,
    0x3fefc74518759bc8,
    0x3c90a3e45b33d399,
    0x3fefbe3ecac6f383,
    0x3c979aa65d837b6d,
    0x3fefb5586cf9890f,
    0x3c8eb51a92fdeffc,
    0x3fefac922b7247f7,
    0x3c3ebe3d702f9cd1,
    0x3fefa3ec32d3d1a2,
    0xbc6a033489906e0b,
    0x3fef9b66affed31b,
    0xbc9556522a2fbd0e,
    0x3fef9301d0125b51,
    0xbc5080ef8c4eea55,
    0x3fef8abdc06c31cc,
    0xbc91c923b9d5f416,
    0x3fef829aaea92de0,
    0x3c80d3e3e95c55af,
    0x3fef7a98c8a58e51,
    0xbc801b15eaa59348,
    0x3fef72b83c7d517b,
    0xbc8f1ff055de323d,
    0x3fef6af9388c8dea,
    0x3c8b898c3f1353bf,
    0x3fef635beb6fcb75,
    0xbc96d99c7611eb26,
    0x3fef5be084045cd4,
    0x3c9aecf73e3a2f60,
    0x3fef54873168b9aa,
    0xbc8fe782cb86389d,
    0x3fef4d5022fcd91d,
    0x3c8a6f4144a6c38d,
    0x3fef463b88628cd6,
    0x3c807a05b0e4047d,
    0x3fef3f49917ddc96,
    0x3c968efde3a8a894,
    0x3fef387a6e756238,
    0x3c875e18f274487d,
    0x3fef31ce4fb2a63f,
    0x3c80472b981fe7f2,
    0x3fef2b4565e27cdd,
    0xbc96b87b3f71085e,
    0x3fef24dfe1f56381,
    0x3c82f7e16d09ab31,
    0x3fef1e9df51fdee1,
    0xbc3d219b1a6fbffa,
    0x3fef187fd0dad990,
    0x3c8b3782720c0ab4,
    0x3fef1285a6e4030b,
    0x3c6e149289cecb8f,
    0x3fef0cafa93e2f56,
    0x3c834d754db0abb6,
    0x3fef06fe0a31b715,
    0x3c864201e2ac744c,
    0x3fef0170fc4cd831,
    0x3c8fdd395dd3f84a,
    0x3feefc08b26416ff,
    0xbc86a3803b8e5b04,
    0x3feef6c55f929ff1,
    0xbc924aedcc4b5068,
    0x3feef1a7373aa9cb,
    0xbc9907f81b512d8e,
    0x3feeecae6d05d866,
    0xbc71d1e83e9436d2,
    0x3feee7db34e59ff7,
    0xbc991919b3ce1b15,
    0x3feee32dc313a8e5,
    0x3c859f48a72a4c6d,
    0x3feedea64c123422,
    0xbc9312607a28698a,
    0x3feeda4504ac801c,
    0xbc58a78f4817895b,
    0x3feed60a21f72e2a,
    0xbc7c2c9b67499a1b,
    0x3feed1f5d950a897,
    0x3c4363ed60c2ac11,
    0x3feece086061892d,
    0x3c9666093b0664ef,
    0x3feeca41ed1d0057,
    0x3c6ecce1daa10379,
    0x3feec6a2b5c13cd0,
    0x3c93ff8e3f0f1230,
    0x3feec32af0d7d3de,
    0x3c7690cebb7aafb0,
    0x3feebfdad5362a27,
    0x3c931dbdeb54e077,
    0x3feebcb299fddd0d,
    0xbc8f94340071a38e,
    0x3feeb9b2769d2ca7,
    0xbc87deccdc93a349,
    0x3feeb6daa2cf6642,
    0xbc78dec6bd0f385f,
    0x3feeb42b569d4f82,
    0xbc861246ec7b5cf6,
    0x3feeb1a4ca5d920f,
    0x3c93350518fdd78e,
    0x3feeaf4736b527da,
    0x3c7b98b72f8a9b05,
    0x3feead12d497c7fd,
    0x3c9063e1e21c5409,
    0x3feeab07dd485429,
    0x3c34c7855019c6ea,
    0x3feea9268a5946b7,
    0x3c9432e62b64c035,
    0x3feea76f15ad2148,
    0xbc8ce44a6199769f,
    0x3feea5e1b976dc09,
    0xbc8c33c53bef4da8,
    0x3feea47eb03a5585,
    0xbc845378892be9ae,
    0x3feea34634ccc320,
    0xbc93cedd78565858,
    0x3feea23882552225,
    0x3c5710aa807e1964,
    0x3feea155d44ca973,
    0xbc93b3efbf5e2228,
    0x3feea09e667f3bcd,
    0xbc6a12ad8734b982,
    0x3feea012750bdabf,
    0xbc6367efb86da9ee,
    0x3fee9fb23c651a2f,
    0xbc80dc3d54e08851,
    0x3fee9f7df9519484,
    0xbc781f647e5a3ecf,
    0x3fee9f75e8ec5f74,
    0xbc86ee4ac08b7db0,
    0x3fee9f9a48a58174,
    0xbc8619321e55e68a,
    0x3fee9feb564267c9,
    0x3c909ccb5e09d4d3,
    0x3feea0694fde5d3f,
    0xbc7b32dcb94da51d,
    0x3feea11473eb0187,
    0x3c94ecfd5467c06b,
    0x3feea1ed0130c132,
    0x3c65ebe1abd66c55,
    0x3feea2f336cf4e62,
    0xbc88a1c52fb3cf42,
    0x3feea427543e1a12,
    0xbc9369b6f13b3734,
    0x3feea589994cce13,
    0xbc805e843a19ff1e,
    0x3feea71a4623c7ad,
    0xbc94d450d872576e,
    0x3feea8d99b4492ed,
    0x3c90ad675b0e8a00,
    0x3feeaac7d98a6699,
    0x3c8db72fc1f0eab4,
    0x3feeace5422aa0db,
    0xbc65b6609cc5e7ff,
    0x3feeaf3216b5448c,
    0x3c7bf68359f35f44,
    0x3feeb1ae99157736,
    0xbc93091fa71e3d83,
    0x3feeb45b0b91ffc6,
    0xbc5da9b88b6c1e29,
    0x3feeb737b0cdc5e5,
    0xbc6c23f97c90b959,
    0x3feeba44cbc8520f,
    0xbc92434322f4f9aa,
    0x3feebd829fde4e50,
    0xbc85ca6cd7668e4b,
    0x3feec0f170ca07ba,
    0x3c71affc2b91ce27,
    0x3feec49182a3f090,
    0x3c6dd235e10a73bb,
    0x3feec86319e32323,
    0xbc87c50422622263,
    0x3feecc667b5de565,
    0x3c8b1c86e3e231d5,
    0x3feed09bec4a2d33,
    0xbc91bbd1d3bcbb15,
    0x3feed503b23e255d,
    0x3c90cc319cee31d2,
    0x3feed99e1330b358,
    0x3c8469846e735ab3,
    0x3feede6b5579fdbf,
    0xbc82dfcd978e9db4,
    0x3feee36bbfd3f37a,
    0x3c8c1a7792cb3387,
    0x3feee89f995ad3ad,
    0xbc907b8f4ad1d9fa,
    0x3feeee07298db666,
    0xbc55c3d956dcaeba,
    0x3feef3a2b84f15fb,
    0xbc90a40e3da6f640,
    0x3feef9728de5593a,
    0xbc68d6f438ad9334,
    0x3feeff76f2fb5e47,
    0xbc91eee26b588a35,
    0x3fef05b030a1064a,
    0x3c74ffd70a5fddcd,
    0x3fef0c1e904bc1d2,
    0xbc91bdfbfa9298ac,
    0x3fef12c25bd71e09,
    0x3c736eae30af0cb3,
    0x3fef199bdd85529c,
    0x3c8ee3325c9ffd94,
    0x3fef20ab5fffd07a,
    0x3c84e08fd10959ac,
    0x3fef27f12e57d14b,
    0x3c63cdaf384e1a67,
    0x3fef2f6d9406e7b5,
    0x3c676b2c6c921968,
    0x3fef3720dcef9069,
    0xbc808a1883ccb5d2,
    0x3fef3f0b555dc3fa,
    0xbc8fad5d3ffffa6f,
    0x3fef472d4a07897c,
    0xbc900dae3875a949,
    0x3fef4f87080d89f2,
    0x3c74a385a63d07a7,
    0x3fef5818dcfba487,
    0xbc82919e2040220f,
    0x3fef60e316c98398,
    0x3c8e5a50d5c192ac,
    0x3fef69e603db3285,
    0x3c843a59ac016b4b,
    0x3fef7321f301b460,
    0xbc82d52107b43e1f,
    0x3fef7c97337b9b5f,
    0xbc892ab93b470dc9,
    0x3fef864614f5a129,
    0x3c74b604603a88d3,
    0x3fef902ee78b3ff6,
    0x3c83c5ec519d7271,
    0x3fef9a51fbc74c83,
    0xbc8ff7128fd391f0,
    0x3fefa4afa2a490da,
    0xbc8dae98e223747d,
    0x3fefaf482d8e67f1,
    0x3c8ec3bc41aa2008,
    0x3fefba1bee615a27,
    0x3c842b94c3a9eb32,
    0x3fefc52b376bba97,
    0x3c8a64a931d185ee,
    0x3fefd0765b6e4540,
    0xbc8e37bae43be3ed,
    0x3fefdbfdad9cbe14,
    0x3c77893b4d91cd9d,
    0x3fefe7c1819e90d8,
    0x3c5305c14160cc89,
    0x3feff3c22b8f71f1,
];

/// Poisson counts (`runtime::rng::Stream::poisson`, and generated code inline): means up to
/// this invert the distribution function with one uniform, at most
/// `POISSON_INVERSION_MAX_STEPS` steps; larger means take another method.
pub const POISSON_INVERSION_MAX_MEAN: f64 = 30.0;
pub const POISSON_INVERSION_MAX_STEPS: u64 = 1000;

/// The constants inline code (`codegen::emit::math`) reads as lane pairs, by value; integer
/// constants as their bit patterns.
pub const LANE_CONSTANTS: [f64; 36] = [
    EXP_INV_LN2_N,
    EXP_NEG_LN2_HI_N,
    EXP_NEG_LN2_LO_N,
    EXP_SHIFT,
    EXP_C[0],
    EXP_C[1],
    EXP_C[2],
    EXP_C[3],
    EXPM1_INV_LN2,
    EXPM1_LN2_HI,
    EXPM1_LN2_LO,
    EXPM1_Q[0],
    EXPM1_Q[1],
    EXPM1_Q[2],
    EXPM1_Q[3],
    EXPM1_Q[4],
    // Range bounds: 2^-54, 512, 56 ln 2 rounded up, ln 2 / 2 rounded up.
    f64::from_bits(0x3c90_0000_0000_0000),
    512.0,
    f64::from_bits(0x4043_687a_0000_0000),
    f64::from_bits(0x3fd6_2e43_0000_0000),
    // The sign bit and the magnitude mask.
    -0.0,
    f64::from_bits(0x7fff_ffff_ffff_ffff),
    // The row mask of the table index.
    f64::from_bits(127),
    0.0,
    0.5,
    -0.5,
    1.0,
    -1.0,
    2.0,
    -2.0,
    3.0,
    6.0,
    20.0,
    -0.25,
    // tanh: 2^-55 and 22.
    f64::from_bits(0x3c80_0000_0000_0000),
    22.0,
];

/// What inline code reads: `EXP_TABLE`, then each of `LANE_CONSTANTS` twice (a lane pair).
pub const MATH_DATA: [u64; 256 + 2 * LANE_CONSTANTS.len()] = {
    let mut out = [0u64; 256 + 2 * LANE_CONSTANTS.len()];
    let mut i = 0;
    while i < 256 {
        out[i] = EXP_TABLE_ROWS[i];
        i += 1;
    }
    let mut k = 0;
    while k < LANE_CONSTANTS.len() {
        out[256 + 2 * k] = LANE_CONSTANTS[k].to_bits();
        out[257 + 2 * k] = LANE_CONSTANTS[k].to_bits();
        k += 1;
    }
    out
};

static EXP_TABLE: [u64; 256] = EXP_TABLE_ROWS;

/// 128 / ln 2.
pub const EXP_INV_LN2_N: f64 = f64::from_bits(0x40671547652b82fe);
/// -ln 2 / 128 in two parts (the first with trailing zeros, so that k times it is exact).
pub const EXP_NEG_LN2_HI_N: f64 = f64::from_bits(0xbf762e42fefa0000);
pub const EXP_NEG_LN2_LO_N: f64 = f64::from_bits(0xbd0cf79abc9e3b3a);
/// 1.5 * 2^52: adding it rounds to an integer held in the low bits of the mantissa.
pub const EXP_SHIFT: f64 = f64::from_bits(0x4338000000000000);
/// The polynomial's coefficients of r^2 .. r^5.
pub const EXP_C: [f64; 4] = [
    f64::from_bits(0x3fdffffffffffdbd),
    f64::from_bits(0x3fc555555555543c),
    f64::from_bits(0x3fa55555cf172b91),
    f64::from_bits(0x3f81111167a4d017),
];

/// 1 / ln 2.
pub const EXPM1_INV_LN2: f64 = f64::from_bits(0x3ff71547652b82fe);
/// ln 2 in two parts (the first with trailing zeros).
pub const EXPM1_LN2_HI: f64 = f64::from_bits(0x3fe62e42fee00000);
pub const EXPM1_LN2_LO: f64 = f64::from_bits(0x3dea39ef35793c76);
/// The rational approximation's coefficients Q1 .. Q5.
pub const EXPM1_Q: [f64; 5] = [
    f64::from_bits(0xbfa11111111110f4),
    f64::from_bits(0x3f5a01a019fe5585),
    f64::from_bits(0xbf14ce199eaadbb7),
    f64::from_bits(0x3ed0cfca86e65239),
    f64::from_bits(0xbe8afdb76e09c32d),
];
const EXPM1_OVERFLOW: f64 = f64::from_bits(0x40862e42fefa39ef);
const TINY: f64 = f64::from_bits(0x01a56e1fc2f8f359);

#[inline(always)]
fn fma(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

/// `y` times 2^k by adding k to its exponent field (no overflow or underflow check).
#[inline(always)]
fn add_exponent(y: f64, k: i64) -> f64 {
    f64::from_bits(y.to_bits().wrapping_add((k << 52) as u64))
}

/// Whether `exp`'s main path applies: 2^-54 <= |x| < 512 (false for NaN).
#[inline(always)]
pub fn exp_fast_path(x: f64) -> bool {
    let a = x.abs();
    (f64::from_bits(0x3c90000000000000)..512.0).contains(&a)
}

#[inline(always)]
fn exp_body(x: f64) -> f64 {
    let abstop = (x.to_bits() >> 52) & 0x7ff;
    let mut wide = false;
    if !exp_fast_path(x) {
        if abstop < 0x3c9 {
            // |x| < 2^-54: 1 + x rounds correctly.
            return 1.0 + x;
        }
        if abstop >= 0x409 {
            // |x| >= 1024, infinities and NaN.
            if x == f64::NEG_INFINITY {
                return 0.0;
            }
            if abstop == 0x7ff {
                return 1.0 + x;
            }
            return if x < 0.0 { 0.0 } else { f64::INFINITY };
        }
        // 512 <= |x| < 1024: the scale's exponent may leave the normal range.
        wide = true;
    }
    let kd = fma(EXP_INV_LN2_N, x, EXP_SHIFT);
    let ki = kd.to_bits();
    let kd = kd - EXP_SHIFT;
    let r = fma(kd, EXP_NEG_LN2_LO_N, fma(kd, EXP_NEG_LN2_HI_N, x));
    let i = 2 * (ki % 128) as usize;
    let tail = f64::from_bits(EXP_TABLE[i]);
    let sbits = EXP_TABLE[i + 1].wrapping_add(ki << 45);
    let r2 = r * r;
    let [c2, c3, c4, c5] = EXP_C;
    let tmp = fma(r2 * r2, fma(r, c5, c4), fma(r2, fma(r, c3, c2), tail + r));
    if wide {
        return exp_wide(tmp, sbits, ki);
    }
    let scale = f64::from_bits(sbits);
    fma(scale, tmp, scale)
}

/// `exp` for 512 <= |x| < 1024, where 2^k alone may overflow or be subnormal.
#[inline(always)]
fn exp_wide(tmp: f64, sbits: u64, ki: u64) -> f64 {
    if ki & 0x8000_0000 == 0 {
        // k > 0: scale by 2^1009 after the sum.
        let scale = f64::from_bits(sbits.wrapping_sub(1009 << 52));
        return fma(scale, tmp, scale) * f64::from_bits(0x7f00000000000000);
    }
    // k < 0: compute y = 2^1022 exp(x), then round once into the subnormal range.
    let scale = f64::from_bits(sbits.wrapping_add(1022 << 52));
    let st = scale * tmp;
    let mut y = scale + st;
    if y < 1.0 {
        let lo = scale - y + st;
        let hi = 1.0 + y;
        let lo = 1.0 - hi + y + lo;
        y = (lo + hi) - 1.0;
        if y == 0.0 {
            y = 0.0;
        }
    }
    y * f64::from_bits(0x0010000000000000)
}

/// Whether `expm1`'s vectorisable path applies: 2^-54 <= |x| <= 38.8 (false for NaN).
#[inline(always)]
pub fn expm1_fast_path(x: f64) -> bool {
    let hx = (x.to_bits() >> 32) as u32 & 0x7fff_ffff;
    (0x3c90_0000..=0x4043_6879).contains(&hx)
}

#[inline(always)]
fn expm1_body(x: f64) -> f64 {
    let hx = (x.to_bits() >> 32) as u32 & 0x7fff_ffff;
    let neg = x.is_sign_negative();
    if hx > 0x4043_6879 {
        // |x| > 56 ln 2 (and infinities, NaN).
        if hx > 0x4086_2e41 {
            if hx > 0x7fef_ffff {
                if x.is_nan() {
                    return x + x;
                }
                return if neg { -1.0 } else { x };
            }
            if x > EXPM1_OVERFLOW {
                return f64::INFINITY;
            }
        }
        if neg {
            return TINY - 1.0;
        }
    }
    if hx < 0x3c90_0000 {
        // |x| < 2^-54.
        return x;
    }
    let (k, x, c) = expm1_reduce(x, hx <= 0x3fd6_2e42);
    expm1_reconstruct(x, c, k)
}

/// The reduction x = k ln 2 + (x' + c): k = 0 when `small` (|x| <= ln 2 / 2), else x / ln 2
/// rounded half away from zero (truncating x / ln 2 + 1/2 with x's sign).
#[inline(always)]
pub fn expm1_reduce(x: f64, small: bool) -> (i64, f64, f64) {
    if small {
        return (0, x, 0.0);
    }
    let half = if x.is_sign_negative() { -0.5 } else { 0.5 };
    let t = (x * EXPM1_INV_LN2 + half).trunc();
    let hi = fma(-t, EXPM1_LN2_HI, x);
    let lo = t * EXPM1_LN2_LO;
    let xr = hi - lo;
    (t as i64, xr, (hi - xr) - lo)
}

#[inline(always)]
fn expm1_reconstruct(x: f64, c: f64, k: i64) -> f64 {
    let [q1, q2, q3, q4, q5] = EXPM1_Q;
    let hfx = 0.5 * x;
    let hxs = x * hfx;
    let h2 = hxs * hxs;
    let h4 = h2 * h2;
    let r1 = fma(
        h4,
        fma(hxs, q5, q4),
        fma(h2, fma(hxs, q3, q2), fma(hxs, q1, 1.0)),
    );
    let t = fma(-r1, hfx, 3.0);
    let e = hxs * ((r1 - t) / fma(-x, t, 6.0));
    if k == 0 {
        return x - fma(x, e, -hxs);
    }
    let e = fma(x, e - c, -c) - hxs;
    match k {
        -1 => fma(x - e, 0.5, -0.5),
        1 if x < -0.25 => -2.0 * (e - (x + 0.5)),
        1 => fma(x - e, 2.0, 1.0),
        _ if k <= -2 || k > 56 => add_exponent(1.0 - (e - x), k) - 1.0,
        // 1 - 2^-k.
        _ if k < 20 => add_exponent((1.0 - pow2(-k)) - (e - x), k),
        _ => add_exponent((x - (e + pow2(-k))) + 1.0, k),
    }
}

/// 2^k for a k in the normal exponent range.
#[inline(always)]
fn pow2(k: i64) -> f64 {
    f64::from_bits(((0x3ff + k) as u64) << 52)
}

/// fdlibm's `tanh` (glibc's): from `expm1` of 2|x| (|x| >= 1) or -2|x| (|x| < 1).
#[inline(always)]
fn tanh_body(x: f64, expm1: impl Fn(f64) -> f64) -> f64 {
    let ix = (x.to_bits() >> 32) as u32 & 0x7fff_ffff;
    let neg = x.is_sign_negative();
    if ix > 0x7fef_ffff {
        // +-1 for infinities, NaN for NaN.
        return if neg { 1.0 / x - 1.0 } else { 1.0 / x + 1.0 };
    }
    let z = if ix <= 0x4035_ffff {
        // |x| < 22.
        if x == 0.0 {
            return x;
        }
        if ix <= 0x3c7f_ffff {
            // |x| < 2^-55.
            return x * (1.0 + x);
        }
        let a = x.abs();
        if ix >= 0x3ff0_0000 {
            let t = expm1(a + a);
            1.0 - 2.0 / (t + 2.0)
        } else {
            let t = expm1(-2.0 * a);
            -t / (t + 2.0)
        }
    } else {
        // 1 - tiny rounds to 1.
        1.0
    };
    if neg {
        -z
    } else {
        z
    }
}

/// tanh x, fdlibm's method on `expm1` (glibc's `tanh`, which calls its `expm1`); the same bits
/// on every machine.
pub fn tanh(x: f64) -> f64 {
    tanh_body(x, expm1)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn exp_fma(x: f64) -> f64 {
    exp_body(x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn expm1_fma(x: f64) -> f64 {
    expm1_body(x)
}

/// e^x, within 0.511 ulp; the same bits on every machine.
pub fn exp(x: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the FMA instructions the function is compiled for.
        return unsafe { exp_fma(x) };
    }
    exp_body(x)
}

/// e^x - 1, within 1 ulp; the same bits on every machine.
pub fn expm1(x: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the FMA instructions the function is compiled for.
        return unsafe { expm1_fma(x) };
    }
    expm1_body(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A double-double number hi + lo.
    #[derive(Clone, Copy)]
    struct Dd(f64, f64);

    fn two_sum(a: f64, b: f64) -> Dd {
        let s = a + b;
        let bb = s - a;
        Dd(s, (a - (s - bb)) + (b - bb))
    }
    fn add(a: Dd, b: Dd) -> Dd {
        let s = two_sum(a.0, b.0);
        let t = two_sum(s.1, a.1 + b.1);
        let u = two_sum(s.0, t.0);
        two_sum(u.0, u.1 + t.1)
    }
    fn mul(a: Dd, b: Dd) -> Dd {
        let p = a.0 * b.0;
        let e = a.0.mul_add(b.0, -p);
        two_sum(p, e + (a.0 * b.1 + a.1 * b.0))
    }
    fn mul_f(a: Dd, b: f64) -> Dd {
        mul(a, Dd(b, 0.0))
    }

    fn div_f(a: Dd, n: f64) -> Dd {
        let q1 = a.0 / n;
        let p = q1 * n;
        let p_lo = q1.mul_add(n, -p);
        let rem = ((a.0 - p) - p_lo) + a.1;
        two_sum(q1, rem / n)
    }

    /// e^r - 1 by its Taylor series, r (1 + r/2 (1 + r/3 (...))), 30 terms (|r| <= 0.7).
    fn expm1_series(r: Dd) -> Dd {
        let mut s = Dd(1.0, 0.0);
        for n in (2..=30).rev() {
            s = add(Dd(1.0, 0.0), div_f(mul(r, s), n as f64));
        }
        mul(r, s)
    }

    /// ln 2 in three parts.
    const LN2: [f64; 3] = [
        f64::from_bits(0x3fe62e42fefa39ef),
        f64::from_bits(0x3c7abc9e3b39803f),
        f64::from_bits(0x3907b57a079a1934),
    ];

    /// e^x - 1 (`minus_one`) or e^x to about 100 bits: x = k ln 2 + r, the series of e^r - 1,
    /// scaled by 2^k.
    fn reference(x: f64, minus_one: bool) -> Dd {
        let k = (x / LN2[0]).round();
        let mut r = Dd(x, 0.0);
        for part in LN2 {
            r = add(r, mul_f(Dd(-k, 0.0), part));
        }
        let em1 = expm1_series(r);
        let scale = 2f64.powi(k as i32);
        if minus_one {
            // 2^k (em1 + 1) - 1.
            add(Dd(em1.0 * scale, em1.1 * scale), two_sum(scale, -1.0))
        } else {
            let e = add(em1, Dd(1.0, 0.0));
            Dd(e.0 * scale, e.1 * scale)
        }
    }

    fn ulp(y: f64) -> f64 {
        let y = y.abs();
        f64::from_bits(y.to_bits() + 1) - y
    }

    /// The error of `got` in units of its last place, against a reference.
    fn ulps(got: f64, want: Dd) -> f64 {
        ((got - want.0) - want.1).abs() / ulp(want.0)
    }

    fn randoms(n: usize, seed: u64) -> impl Iterator<Item = f64> {
        let mut s = seed;
        (0..n).map(move |_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        })
    }

    /// Arguments over the whole range: uniform in |x| < 800, < 20, < 1 and < 0.001, and
    /// arbitrary bit patterns.
    fn arguments() -> Vec<f64> {
        let mut xs: Vec<f64> = randoms(400_000, 7)
            .enumerate()
            .map(|(i, u)| (u - 0.5) * [1600.0, 40.0, 2.0, 2e-3][i % 4])
            .collect();
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            xs.push(f64::from_bits(s));
        }
        xs
    }

    #[test]
    fn exp_error_is_within_bound() {
        let mut worst = 0f64;
        for x in arguments() {
            let y = exp(x);
            // Normal, finite results only (the subnormal range is checked at its points below).
            if !(-708.0..709.0).contains(&x) {
                continue;
            }
            worst = worst.max(ulps(y, reference(x, false)));
        }
        assert!(worst < 0.511, "exp: {worst} ulp");
        assert!(worst > 0.45, "the reference is too kind: {worst} ulp");
    }

    #[test]
    fn expm1_error_is_within_bound() {
        let mut worst = 0f64;
        for x in arguments() {
            if !(-700.0..709.0).contains(&x) || x.abs() < 1e-300 {
                continue;
            }
            // Near 0 the reference's 2^k(em1 + 1) - 1 is exact for k = 0.
            worst = worst.max(ulps(expm1(x), reference(x, true)));
        }
        assert!(worst < 0.9, "expm1: {worst} ulp");
    }

    #[test]
    fn special_values() {
        let inf = f64::INFINITY;
        for (x, e, em1) in [
            (0.0, 1.0, 0.0),
            (-0.0, 1.0, -0.0),
            (inf, inf, inf),
            (-inf, 0.0, -1.0),
            (710.0, inf, inf),
            (1e300, inf, inf),
            (-1e300, 0.0, -1.0),
            (-746.0, 0.0, -1.0),
            (-40.0, 4.248354255291589e-18, -1.0),
            (1.0, std::f64::consts::E, 1.718281828459045),
            (1e-300, 1.0, 1e-300),
            (5e-324, 1.0, 5e-324),
        ] {
            assert_eq!(exp(x).to_bits(), f64::to_bits(e), "exp({x})");
            assert_eq!(expm1(x).to_bits(), f64::to_bits(em1), "expm1({x})");
        }
        assert!(exp(f64::NAN).is_nan() && expm1(f64::NAN).is_nan() && tanh(f64::NAN).is_nan());
        for (x, t) in [
            (0.0, 0.0),
            (-0.0, -0.0),
            (inf, 1.0),
            (-inf, -1.0),
            (30.0, 1.0),
            (-30.0, -1.0),
            (1e-300, 1e-300),
            (1.0, 0.7615941559557649),
            (-0.5, -0.46211715726000974),
        ] {
            assert_eq!(tanh(x).to_bits(), f64::to_bits(t), "tanh({x})");
        }
        // The largest finite result, the smallest normal one and a subnormal one.
        assert_eq!(exp(709.782712893384), 1.7976931348622732e308);
        assert_eq!(exp(-708.3964185322641), 2.2250738585072626e-308);
        assert_eq!(exp(-740.0), 4.2e-322);
        assert_eq!(exp(-745.1332191019411), 5e-324);
        assert_eq!(exp(-745.1332191019412), 0.0);
        assert_eq!(expm1(709.782712893384), 1.7976931348622732e308);
    }

    /// Both entries of every table row against `2^(k/128)` computed in double-double.
    #[test]
    fn table_holds_powers_of_two() {
        for k in 0..128u64 {
            let hi = f64::from_bits(EXP_TABLE[2 * k as usize + 1] + (k << 45));
            let tail = f64::from_bits(EXP_TABLE[2 * k as usize]);
            // 2^(k/128) = e^(k ln 2 / 128).
            let r = mul_f(Dd(LN2[0], LN2[1]), k as f64 / 128.0);
            let want = add(expm1_series(r), Dd(1.0, 0.0));
            assert!(ulps(hi, want) <= 0.5 + 1e-9, "row {k}");
            assert!(tail.abs() <= f64::EPSILON / 2.0, "row {k}");
        }
    }

    /// On x86-64 with FMA and glibc, the results are the C library's, bit for bit (what keeps
    /// spikes identical to Brian2's generated code, which calls it).
    #[test]
    #[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
    fn equal_to_glibc_with_fma() {
        if !std::is_x86_feature_detected!("fma") {
            eprintln!("skipped: this CPU has no FMA, so glibc takes its other path");
            return;
        }
        let mut xs = arguments();
        // Across the subnormal range and the overflow threshold.
        xs.extend((0..200_000).map(|i| -745.2 + i as f64 * 0.0073));
        for x in xs {
            assert_eq!(exp(x).to_bits(), x.exp().to_bits(), "exp({x:e})");
            let (a, b) = (tanh(x), x.tanh());
            assert!(
                a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan(),
                "tanh({x:e})"
            );
            let (a, b) = (expm1(x), x.exp_m1());
            assert!(
                a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan(),
                "expm1({x:e})"
            );
        }
    }
}
