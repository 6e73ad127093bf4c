//! Numerical building blocks the passes share: dense Cholesky solves, the complementary error
//! function, golden-section search, `ln x!`, and a parallel map over independent items.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `Σ a[k] b[k]` with eight independent accumulators (so that it vectorises).
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut s = [0.0; 8];
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            s[k] += x[k] * y[k];
        }
    }
    let mut t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (x, y) in ra.iter().zip(rb) {
        t += x * y;
    }
    t
}

/// In-place Cholesky factorisation `A = L Lᵀ` of the symmetric `n × n` matrix `a` (row-major,
/// lower triangle used and overwritten by L); false when it is not positive definite.
pub fn cholesky(a: &mut [f64], n: usize) -> bool {
    let mut rj = Vec::with_capacity(n);
    for j in 0..n {
        rj.clear();
        rj.extend_from_slice(&a[j * n..j * n + j]);
        let d = a[j * n + j] - dot(&rj, &rj);
        if !(d > 0.0 && d.is_finite()) {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let s = a[i * n + j] - dot(&a[i * n..i * n + j], &rj);
            a[i * n + j] = s / d;
        }
    }
    true
}

/// Solve `L y = b` in place (forward substitution) with the factor of [`cholesky`], for a `b`
/// that is zero before index `first`.
pub fn forward(l: &[f64], n: usize, b: &mut [f64], first: usize) {
    for i in first..n {
        let s = b[i] - dot(&l[i * n + first..i * n + i], &b[first..i]);
        b[i] = s / l[i * n + i];
    }
}

/// Solve `L Lᵀ x = b` in place with the factor of [`cholesky`].
pub fn chol_solve(l: &[f64], n: usize, b: &mut [f64]) {
    forward(l, n, b, 0);
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// Coefficients of Numerical Recipes' Chebyshev fit of erfc (§6.2): `erfc(x) = t exp(-x² +
/// P(t))`, `t = 1 / (1 + x/2)`, `P(t) = Σ C[k] t^k`, fractional error below 1.2e-7.
const ERFC_C: [f64; 10] = [
    -1.265_512_23,
    1.000_023_68,
    0.374_091_96,
    0.096_784_18,
    -0.186_288_06,
    0.278_868_07,
    -1.135_203_98,
    1.488_515_87,
    -0.822_152_23,
    0.170_872_77,
];

/// `t` and `-x² + P(t)` of the fit for `x ≥ 0`.
fn erfc_parts(x: f64) -> (f64, f64) {
    let t = 1.0 / (1.0 + 0.5 * x);
    let q = ERFC_C[1..].iter().rev().fold(0.0, |acc, c| acc * t + c);
    (t, -x * x + ERFC_C[0] + t * q)
}

/// Complementary error function (fractional error below 1.2e-7 everywhere).
pub fn erfc(x: f64) -> f64 {
    let (t, e) = erfc_parts(x.abs());
    let r = t * e.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// `ln erfc(x)` for `x ≥ 0`, without underflow in the tail.
pub fn log_erfc_nonneg(x: f64) -> f64 {
    let (t, e) = erfc_parts(x);
    t.ln() + e
}

/// Golden-section search for the minimum of a unimodal `f` on `[lo, hi]`: at most `max_iter`
/// steps, stopping early once the bracket is no wider than `tol · (1 + |lo|)`; its midpoint.
pub fn golden_min(
    f: impl Fn(f64) -> f64,
    mut lo: f64,
    mut hi: f64,
    tol: f64,
    max_iter: usize,
) -> f64 {
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = hi - g * (hi - lo);
    let mut d = lo + g * (hi - lo);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..max_iter {
        let open = (hi - lo).abs() > tol * (1.0 + lo.abs());
        if !open {
            break;
        }
        if fc < fd {
            hi = d;
            (d, fd) = (c, fc);
            c = hi - g * (hi - lo);
            fc = f(c);
        } else {
            lo = c;
            (c, fc) = (d, fd);
            d = lo + g * (hi - lo);
            fd = f(d);
        }
    }
    (lo + hi) / 2.0
}

/// `ln x!` of a non-negative whole count.
pub fn log_factorial(x: f64) -> f64 {
    (2..=x as u64).map(|k| (k as f64).ln()).sum()
}

/// `f(k)` for `k in 0..count` on `threads` workers (0: as many as the machine has), in order.
/// Workers take the next item from a shared counter; each item is independent, so the result
/// does not depend on the thread count.
pub fn par_map<T: Send>(count: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    }
    .clamp(1, count.max(1));
    if threads == 1 {
        return (0..count).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let (f, next) = (&f, &next);
    let mut out: Vec<Option<T>> = (0..count).map(|_| None).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= count {
                            break done;
                        }
                        done.push((k, f(k)));
                    }
                })
            })
            .collect();
        for w in workers {
            for (k, v) in w.join().expect("a worker thread panicked") {
                out[k] = Some(v);
            }
        }
    });
    out.into_iter()
        .map(|v| v.expect("every item computed"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves() {
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        assert!(cholesky(&mut a, 2));
        let mut b = vec![2.0, 1.0];
        chol_solve(&a, 2, &mut b);
        // [[4,2],[2,3]] x = [2,1] → x = [0.5, 0].
        assert!((b[0] - 0.5).abs() < 1e-12 && b[1].abs() < 1e-12);
        let mut bad = vec![1.0, 2.0, 2.0, 1.0];
        assert!(!cholesky(&mut bad, 2));
    }

    #[test]
    fn erfc_known_values() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(1.0) - 0.157_299_207_050_285_1).abs() < 1e-7);
        assert!((erfc(-1.0) - 1.842_700_792_949_715).abs() < 1e-7);
        assert!((erfc(3.0) - 2.209_049_699_858_544e-5).abs() < 1e-11);
        assert!((log_erfc_nonneg(3.0) - erfc(3.0).ln()).abs() < 1e-12);
        // Far in the tail erfc underflows, its logarithm does not.
        assert!(log_erfc_nonneg(40.0).is_finite() && erfc(40.0) == 0.0);
    }

    #[test]
    fn golden_section_finds_the_minimum() {
        let x = golden_min(|x| (x - 1.5) * (x - 1.5), 0.0, 4.0, 1e-12, 200);
        assert!((x - 1.5).abs() < 1e-6);
        assert_eq!(log_factorial(0.0), 0.0);
        assert!((log_factorial(5.0) - 120f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn par_map_keeps_the_order() {
        for threads in [0, 1, 3] {
            let v = par_map(100, threads, |k| k * k);
            assert_eq!(v, (0..100).map(|k| k * k).collect::<Vec<_>>());
        }
        assert!(par_map(0, 4, |k| k).is_empty());
    }
}
