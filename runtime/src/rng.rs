//! Counter-based random numbers: Philox4x32-10 (Salmon et al., SC 2011). A draw is a pure
//! function of (seed, stream, element, step, draw number), so results do not depend on thread
//! count, partitioning or backend, and any draw can be recomputed on its own.

use neurograph_compiler::math::{POISSON_INVERSION_MAX_MEAN, POISSON_INVERSION_MAX_STEPS};

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox4x32 with 10 rounds: 128-bit counter, 64-bit key, 128-bit output.
pub fn philox4x32(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    philox4x32_n([counter], key)[0]
}

/// `philox4x32` of two counters under one key, their rounds interleaved so that the two
/// chains of dependent multiplications overlap; each result is exactly `philox4x32`'s.
pub fn philox4x32_2(counters: [[u32; 4]; 2], key: [u32; 2]) -> [[u32; 4]; 2] {
    philox4x32_n(counters, key)
}

/// Philox4x32-10 of `N` counters under one key, round by round for all of them.
#[inline(always)]
fn philox4x32_n<const N: usize>(counters: [[u32; 4]; N], key: [u32; 2]) -> [[u32; 4]; N] {
    let mut c = counters;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        for x in c.iter_mut() {
            let p0 = (M0 as u64) * (x[0] as u64);
            let p1 = (M1 as u64) * (x[2] as u64);
            *x = [
                ((p1 >> 32) as u32) ^ x[1] ^ k[0],
                p1 as u32,
                ((p0 >> 32) as u32) ^ x[3] ^ k[1],
                p0 as u32,
            ];
        }
    }
    c
}

/// Identifies one source of randomness in a model (an expression, a connect rule, a regime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stream {
    pub seed: u64,
    pub stream: u32,
}

impl Stream {
    pub fn new(seed: u64, stream: u32) -> Stream {
        Stream { seed, stream }
    }

    fn counter(self, element: u64, step: u64, draw: u32) -> [u32; 4] {
        [
            element as u32,
            (element >> 32) as u32 ^ ((self.seed >> 32) as u32).rotate_left(16),
            step as u32,
            ((step >> 32) as u32 & 0xFFFF) | (draw << 16),
        ]
    }

    fn key(self) -> [u32; 2] {
        [self.seed as u32, self.stream]
    }

    /// 128 random bits for (element, step, draw).
    pub fn bits(self, element: u64, step: u64, draw: u32) -> [u32; 4] {
        philox4x32(self.counter(element, step, draw), self.key())
    }

    /// `bits` of draw `draw` at two (element, step) coordinates, computed together
    /// (`philox4x32_2`).
    pub fn bits2(self, a: (u64, u64), b: (u64, u64), draw: u32) -> [[u32; 4]; 2] {
        philox4x32_2(
            [self.counter(a.0, a.1, draw), self.counter(b.0, b.1, draw)],
            self.key(),
        )
    }

    /// The uniform of `uniform` from a draw's bits.
    pub fn uniform_of(bits: [u32; 4]) -> f64 {
        to_open01(bits[0], bits[1])
    }

    /// The two uniforms of `uniform2` from a draw's bits.
    pub fn uniform2_of(bits: [u32; 4]) -> (f64, f64) {
        (to_open01(bits[0], bits[1]), to_open01(bits[2], bits[3]))
    }

    /// The deviate of `normal` from a draw's bits (of this stream: rejections continue under
    /// its key).
    pub fn normal_of(self, bits: [u32; 4]) -> f64 {
        ziggurat_normal(bits, self.key())
    }

    /// Two independent uniforms in (0, 1) (never exactly 0 or 1), 53 bits each.
    pub fn uniform2(self, element: u64, step: u64, draw: u32) -> (f64, f64) {
        Stream::uniform2_of(self.bits(element, step, draw))
    }

    pub fn uniform(self, element: u64, step: u64, draw: u32) -> f64 {
        self.uniform2(element, step, draw).0
    }

    /// A standard normal deviate: the ziggurat method (Marsaglia & Tsang 2000, with
    /// Doornik's 2005 choice of independent bits for the layer and the abscissa) on the 128
    /// bits of one draw; the ~1 % of draws that fall in a wedge or the tail and are rejected
    /// continue with Philox applied again to the draw's bits (`RETRY_KEY`), so a deviate is
    /// still a function of (element, step, draw) alone. Plain IEEE operations and
    /// neurograph's own `exp` and logarithm only: the same deviate on every machine.
    #[inline]
    pub fn normal(self, element: u64, step: u64, draw: u32) -> f64 {
        self.normal_of(self.bits(element, step, draw))
    }

    /// A Poisson count with mean `lambda`: inversion of the distribution function with one
    /// uniform for means up to 30 (one counter-based draw whatever the count), Knuth's product
    /// of uniforms up to 500, a rounded normal approximation with continuity correction above.
    pub fn poisson(self, element: u64, step: u64, lambda: f64) -> f64 {
        if lambda.is_nan() || lambda <= 0.0 {
            return 0.0;
        }
        if lambda > 500.0 {
            let z = self.normal(element, step, 0);
            return (lambda + lambda.sqrt() * z + 0.5).floor().max(0.0);
        }
        let limit = exp_neg(lambda);
        if lambda <= POISSON_INVERSION_MAX_MEAN {
            let u = self.uniform(element, step, 0);
            let (mut k, mut p, mut cdf) = (0usize, limit, limit);
            // The bound only stops a sum that rounding keeps below a `u` within 1e-16 of 1.
            while u > cdf && (k as u64) < POISSON_INVERSION_MAX_STEPS {
                k += 1;
                p *= lambda * INVERSES.get(k).copied().unwrap_or(1.0 / k as f64);
                cdf += p;
            }
            return k as f64;
        }
        let mut product = 1.0;
        let mut k = 0u32;
        loop {
            let (a, b) = self.uniform2(element, step, k / 2);
            product *= if k.is_multiple_of(2) { a } else { b };
            if product <= limit {
                return k as f64;
            }
            k += 1;
        }
    }
}

impl Stream {
    /// A binomial count of `n` trials of probability `p` (`p` in [0, 1]): exact inversion of
    /// the distribution function with one uniform while the mean of the rarer outcome is at most
    /// 30, else a rounded normal approximation (continuity correction) clipped to [0, n].
    pub fn binomial(self, element: u64, step: u64, n: u64, p: f64) -> f64 {
        if p.is_nan() || p <= 0.0 || n == 0 {
            return 0.0;
        }
        if p >= 1.0 {
            return n as f64;
        }
        let (p, flip) = if p > 0.5 { (1.0 - p, true) } else { (p, false) };
        let nf = n as f64;
        let k = if nf * p <= 30.0 {
            let q = 1.0 - p;
            let u = self.uniform(element, step, 0);
            let mut pr = q.powf(nf);
            let mut cdf = pr;
            let mut k = 0u64;
            while u > cdf && k < n {
                pr *= (nf - k as f64) / (k as f64 + 1.0) * (p / q);
                k += 1;
                cdf += pr;
            }
            k as f64
        } else {
            let z = self.normal(element, step, 0);
            (nf * p + (nf * p * (1.0 - p)).sqrt() * z + 0.5)
                .floor()
                .clamp(0.0, nf)
        };
        if flip {
            nf - k
        } else {
            k
        }
    }
}

/// 1 / k for the Poisson sampler's steps (a product instead of a division per step).
const INVERSES: [f64; 64] = {
    let mut t = [0.0; 64];
    let mut k = 1;
    while k < 64 {
        t[k] = 1.0 / k as f64;
        k += 1;
    }
    t
};

thread_local! {
    /// The last mean the Poisson sampler saw on this thread and exp(-mean): one population's
    /// draws share their mean, so the exponential is computed once per run of equal means.
    static LAST_EXP_NEG: std::cell::Cell<(f64, f64)> = const { std::cell::Cell::new((f64::NAN, f64::NAN)) };
}

/// exp(-lambda), remembered for the last `lambda` of this thread.
fn exp_neg(lambda: f64) -> f64 {
    LAST_EXP_NEG.with(|c| {
        let (l, v) = c.get();
        if l == lambda {
            return v;
        }
        let v = neurograph_compiler::math::exp(-lambda);
        c.set((lambda, v));
        v
    })
}

/// ln 2 split so that `e * LN2_HI` is exact for every binary exponent `e` of an f64.
const LN2_HI: f64 = 0.693_147_180_369_123_8;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;

/// The natural logarithm of `x` in (0, 1] (a normal number: uniforms are at least 2^-54, the
/// ziggurat's table arguments above 1e-3), for the ziggurat's table and tail. `x = 2^e m`
/// with `m` in [sqrt(1/2), sqrt(2)), `f = m - 1` (exact), and ln(1 + f) = 2 atanh(s),
/// s = f / (2 + f), |s| < 0.1716, from its Taylor series 2s + 2s^3/3 + ... + 2s^23/23 (the
/// next term is below 2^-56 of the sum), arranged as f - s (f - R) with
/// R = s^2 (2/3 + 2s^2/5 + ...) so that the leading terms are exact. At most 1 ulp from the
/// C library's `log` over a million uniforms (`tests::own_ln`).
#[inline]
fn ln_unit(x: f64) -> f64 {
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7FF) as i64 - 1023;
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let mut p = 2.0 / 23.0;
    for k in (1..=10).rev() {
        p = p * z + 2.0 / (2 * k + 1) as f64;
    }
    let r = z * p;
    let e = e as f64;
    e * LN2_HI + ((f - s * (f - r)) + e * LN2_LO)
}

/// Layers of the ziggurat, and the start of its base layer's tail and the area of each layer
/// under exp(-x^2 / 2), x >= 0 (solved to 120 bits with mpmath so that the top layer's area
/// equals the others').
const ZIG_LAYERS: usize = 256;
const ZIG_R: f64 = 3.654_152_885_361_009;
const ZIG_V: f64 = 0.004_928_673_233_974_655;

/// The key a rejected draw's bits are encrypted with again for the next try: the stream's
/// key with its top bit flipped. The counter is the previous try's 128 output bits, so the
/// tries do not repeat another stream's draws even where a key coincides.
const RETRY_KEY: u32 = 0x8000_0000;

struct Ziggurat {
    /// Right edge of layer i (x[0] = V / f(R), the base layer as a rectangle; x[1] = R;
    /// x[256] = 0).
    x: [f64; ZIG_LAYERS + 1],
    /// x[i + 1] / x[i]: below it a point is under the curve whatever its height.
    inner: [f64; ZIG_LAYERS],
    /// exp(-x[i]^2 / 2).
    f: [f64; ZIG_LAYERS + 1],
}

/// The ziggurat's table, computed once from R and V by the recursion
/// x[i + 1] = sqrt(-2 ln(f(x[i]) + V / x[i])) with neurograph's own functions.
fn ziggurat() -> &'static Ziggurat {
    static TABLE: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let f = |x: f64| neurograph_compiler::math::exp(-0.5 * x * x);
        let mut x = [0.0; ZIG_LAYERS + 1];
        x[0] = ZIG_V / f(ZIG_R);
        x[1] = ZIG_R;
        for i in 1..ZIG_LAYERS - 1 {
            x[i + 1] = (-2.0 * ln_unit(f(x[i]) + ZIG_V / x[i])).sqrt();
        }
        x[ZIG_LAYERS] = 0.0;
        let inner = std::array::from_fn(|i| x[i + 1] / x[i]);
        let fx = std::array::from_fn(|i| f(x[i]));
        Ziggurat { x, inner, f: fx }
    })
}

/// A standard normal deviate from 128 random bits (`Stream::normal`). Bits 0-7 of word 0 pick
/// the layer, bit 8 the sign, words 1-2 the abscissa (53 bits) and word 3 with bits 9-31 of
/// word 0 the ordinate of a wedge test.
fn ziggurat_normal(mut b: [u32; 4], key: [u32; 2]) -> f64 {
    let z = ziggurat();
    let retry_key = [key[0], key[1] ^ RETRY_KEY];
    loop {
        let i = (b[0] & 0xFF) as usize;
        let sign = ((b[0] >> 8) & 1) as u64;
        let u = (((b[1] as u64) << 21) ^ (b[2] as u64 >> 11)) as f64 * (1.0 / (1u64 << 53) as f64);
        let x = u * z.x[i];
        if u < z.inner[i] {
            return f64::from_bits(x.to_bits() ^ (sign << 63));
        }
        if i == 0 {
            // The tail beyond R (Marsaglia 1964): x = -ln(u1) / R, accepted when
            // -2 ln(u2) > x^2, gives R + x the normal law conditioned on exceeding R. Its
            // rejections retry within the tail (the try landed there with the tail's
            // probability; starting over would give the tail too little mass).
            loop {
                b = philox4x32(b, retry_key);
                let (u1, u2) = (to_open01(b[0], b[1]), to_open01(b[2], b[3]));
                let t = -ln_unit(u1) / ZIG_R;
                if -2.0 * ln_unit(u2) > t * t {
                    return f64::from_bits((ZIG_R + t).to_bits() ^ (sign << 63));
                }
            }
        } else {
            let y = to_open01(b[3], b[0] & !0x1FF);
            let fx = neurograph_compiler::math::exp(-0.5 * x * x);
            if z.f[i] + y * (z.f[i + 1] - z.f[i]) < fx {
                return f64::from_bits(x.to_bits() ^ (sign << 63));
            }
        }
        b = philox4x32(b, retry_key);
    }
}

fn to_open01(hi: u32, lo: u32) -> f64 {
    let x = ((hi as u64) << 21) ^ (lo as u64 >> 11); // 53 bits
    (x as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors of the Random123 distribution (kat_vectors, philox4x32 10 rounds).
    #[test]
    fn philox_known_answers() {
        assert_eq!(
            philox4x32([0, 0, 0, 0], [0, 0]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    /// `ln_unit` against std's `ln` (itself within an ulp of the exact value) over a million
    /// uniforms and the special points: measured here 1 ulp at most (printed); the bound
    /// allows one more.
    #[test]
    fn own_ln() {
        let s = Stream::new(11, 2);
        let ulp = |x: f64| f64::from_bits(x.abs().to_bits() + 1) - x.abs();
        let mut worst = 0.0f64;
        let points = [
            2f64.powi(-54),
            2f64.powi(-53),
            1e-3,
            0.5,
            std::f64::consts::FRAC_1_SQRT_2,
            1.0 - f64::EPSILON,
        ];
        for u in (0..1_000_000u64).map(|e| s.uniform(e, 0, 0)).chain(points) {
            worst = worst.max((ln_unit(u) - u.ln()).abs() / ulp(u.ln()));
        }
        eprintln!("ln_unit: {worst} ulp");
        assert!(worst <= 2.0, "ln: {worst} ulp");
        assert_eq!(ln_unit(1.0), 0.0);
    }

    /// The ziggurat's table: 256 layers of equal area under exp(-x^2 / 2) (the top one
    /// included, so the recursion closed), decreasing edges.
    #[test]
    fn ziggurat_layers_have_equal_areas() {
        let z = ziggurat();
        assert!(z.x.windows(2).skip(1).all(|w| w[1] < w[0]));
        let top = z.x[ZIG_LAYERS - 1] * (1.0 - z.f[ZIG_LAYERS - 1]);
        assert!(
            (top / ZIG_V - 1.0).abs() < 1e-9,
            "top layer {top} vs {ZIG_V}"
        );
        for i in 1..ZIG_LAYERS {
            let area = z.x[i] * (z.f[i + 1] - z.f[i]);
            assert!((area / ZIG_V - 1.0).abs() < 1e-9, "layer {i}: {area}");
        }
    }

    /// The normal deviates against the normal law: the Kolmogorov–Smirnov distance of 2·10^6
    /// deviates from the distribution function (computed by integrating the density with
    /// Simpson's rule), the fraction beyond the ziggurat's R (the tail path) and the fourth
    /// moment.
    #[test]
    fn normal_deviates_follow_the_normal_law() {
        let s = Stream::new(5, 77);
        let n = 2_000_000usize;
        let mut z: Vec<f64> = (0..n as u64).map(|e| s.normal(e, 3, 1)).collect();
        z.sort_by(f64::total_cmp);
        // Phi(x) for x on a grid of 1/1024 over [-8, 8], by Simpson's rule on the density.
        let h = 1.0 / 1024.0;
        let density = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let grid = (16.0 / h) as usize;
        let mut cdf = vec![0.0; grid + 1];
        for k in 0..grid {
            let a = -8.0 + k as f64 * h;
            cdf[k + 1] =
                cdf[k] + h / 6.0 * (density(a) + 4.0 * density(a + h / 2.0) + density(a + h));
        }
        let phi = |x: f64| {
            let k = (((x + 8.0) / h) as usize).min(grid - 1);
            let a = -8.0 + k as f64 * h;
            // Within one grid cell: the trapezoid of the density is enough (error < 1e-9).
            cdf[k] + (x - a) * 0.5 * (density(a) + density(x))
        };
        let d = z
            .iter()
            .enumerate()
            .map(|(k, &x)| {
                let p = phi(x);
                (p - k as f64 / n as f64)
                    .abs()
                    .max(((k + 1) as f64 / n as f64 - p).abs())
            })
            .fold(0.0, f64::max);
        // The critical distance at a 1e-6 level is sqrt(-ln(5e-7) / 2 / n) = 0.0019.
        assert!(
            d < (-(5e-7f64).ln() / 2.0 / n as f64).sqrt(),
            "KS distance {d}"
        );
        // Beyond R: 2 (1 - Phi(R)) = 2.58e-4 of the deviates, 516 expected, sd ~ 23.
        let beyond = z.iter().filter(|x| x.abs() > ZIG_R).count() as f64;
        assert!((beyond - 516.3).abs() < 5.0 * 22.7, "{beyond} beyond R");
        let m4 = z.iter().map(|x| x.powi(4)).sum::<f64>() / n as f64;
        assert!((m4 - 3.0).abs() < 0.03, "fourth moment {m4}");
    }

    /// The tail's mass: of 6.4·10^7 deviates, the fraction beyond the ziggurat's R is
    /// erfc(R / sqrt 2) = 2.5803e-4 (mpmath), 16,514 expected with a standard deviation of
    /// 128; five of them allow 3.9 %. (A tail whose rejections started over, instead of
    /// retrying within the tail, kept 6.2 % too little: this test fails it.)
    #[test]
    fn the_tail_beyond_r_has_its_mass() {
        let s = Stream::new(9, 1234);
        let n = 64_000_000u64;
        let beyond = (0..n).filter(|&e| s.normal(e, 7, 0).abs() > ZIG_R).count() as f64;
        let expected = 2.580_324_876_539_01e-4 * n as f64;
        let sd = (expected * (1.0 - 2.58e-4)).sqrt();
        assert!(
            (beyond - expected).abs() < 5.0 * sd,
            "{beyond} beyond R, {expected:.0} expected ({:.1} sd)",
            (beyond - expected) / sd
        );
    }

    #[test]
    fn paired_draws_equal_single_draws() {
        let s = Stream::new(0x1234_5678_9abc, 17);
        for e in 0..1000u64 {
            let (a, b) = ((e, e * 7), (e << 33 | 5, 3 + (e << 32)));
            assert_eq!(s.bits2(a, b, 2), [s.bits(a.0, a.1, 2), s.bits(b.0, b.1, 2)]);
            let [x, y] = s.bits2(a, b, 0);
            assert_eq!(s.normal_of(x).to_bits(), s.normal(a.0, a.1, 0).to_bits());
            assert_eq!(Stream::uniform_of(y), s.uniform(b.0, b.1, 0));
        }
    }

    #[test]
    fn uniforms_are_uniform_and_normals_normal() {
        let s = Stream::new(7, 3);
        let n = 200_000;
        let (mut sum, mut sum2, mut nsum, mut nsum2) = (0.0, 0.0, 0.0, 0.0);
        for e in 0..n {
            let u = s.uniform(e, 0, 0);
            assert!(u > 0.0 && u < 1.0);
            sum += u;
            sum2 += u * u;
            let z = s.normal(e, 1, 0);
            nsum += z;
            nsum2 += z * z;
        }
        let nf = n as f64;
        assert!((sum / nf - 0.5).abs() < 0.005);
        assert!((sum2 / nf - sum * sum / nf / nf - 1.0 / 12.0).abs() < 0.002);
        assert!((nsum / nf).abs() < 0.01);
        assert!((nsum2 / nf - 1.0).abs() < 0.02);
    }

    #[test]
    fn poisson_mean_and_variance() {
        let s = Stream::new(1, 9);
        // Cover the inversion, product and normal paths of the sampler.
        for lambda in [0.3, 4.0, 30.0, 45.0, 800.0] {
            let n = 50_000;
            let nf = n as f64;
            let xs: Vec<f64> = (0..n).map(|e| s.poisson(e, 0, lambda)).collect();
            assert!(xs.iter().all(|&x| x >= 0.0 && x == x.trunc()), "{lambda}");
            let mean = xs.iter().sum::<f64>() / nf;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (nf - 1.0);
            // Standard errors from the sample size: the mean of n Poisson(lambda) draws has
            // variance lambda / n; the sample variance has variance (mu4 - sigma^4) / n with
            // mu4 = lambda (1 + 3 lambda) and sigma^2 = lambda, i.e. (lambda + 2 lambda^2) / n.
            // Five standard errors: a correct sampler fails with probability ~6e-7 per check.
            let se_mean = (lambda / nf).sqrt();
            let se_var = ((lambda + 2.0 * lambda * lambda) / nf).sqrt();
            assert!(
                (mean - lambda).abs() < 5.0 * se_mean,
                "{lambda}: mean {mean}, {:.2} standard errors off",
                (mean - lambda) / se_mean
            );
            assert!(
                (var - lambda).abs() < 5.0 * se_var,
                "{lambda}: variance {var}, {:.2} standard errors off",
                (var - lambda) / se_var
            );
        }
    }

    #[test]
    fn draws_depend_only_on_their_coordinates() {
        let s = Stream::new(42, 1);
        let a = s.uniform(5, 10, 0);
        let _ = s.uniform(6, 10, 0);
        assert_eq!(a, s.uniform(5, 10, 0));
        assert_ne!(a, s.uniform(5, 11, 0));
        assert_ne!(a, Stream::new(43, 1).uniform(5, 10, 0));
        assert_ne!(a, Stream::new(42, 2).uniform(5, 10, 0));
    }
}
