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
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let p0 = (M0 as u64) * (c[0] as u64);
        let p1 = (M1 as u64) * (c[2] as u64);
        c = [
            ((p1 >> 32) as u32) ^ c[1] ^ k[0],
            p1 as u32,
            ((p0 >> 32) as u32) ^ c[3] ^ k[1],
            p0 as u32,
        ];
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

    /// 128 random bits for (element, step, draw).
    pub fn bits(self, element: u64, step: u64, draw: u32) -> [u32; 4] {
        let counter = [
            element as u32,
            (element >> 32) as u32 ^ ((self.seed >> 32) as u32).rotate_left(16),
            step as u32,
            ((step >> 32) as u32 & 0xFFFF) | (draw << 16),
        ];
        philox4x32(counter, [self.seed as u32, self.stream])
    }

    /// Two independent uniforms in (0, 1) (never exactly 0 or 1), 53 bits each.
    pub fn uniform2(self, element: u64, step: u64, draw: u32) -> (f64, f64) {
        let b = self.bits(element, step, draw);
        (to_open01(b[0], b[1]), to_open01(b[2], b[3]))
    }

    pub fn uniform(self, element: u64, step: u64, draw: u32) -> f64 {
        self.uniform2(element, step, draw).0
    }

    /// A standard normal deviate (Box–Muller on the two uniforms of one draw).
    pub fn normal(self, element: u64, step: u64, draw: u32) -> f64 {
        let (u1, u2) = self.uniform2(element, step, draw);
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
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
