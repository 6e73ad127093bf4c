//! The matrix exponential of small dense matrices, for exact integration of linear ODE
//! systems: scaling and squaring with a Taylor series. Matrices are row-major `n x n`.

pub type Matrix = Vec<Vec<f64>>;

fn matmul(a: &Matrix, b: &Matrix) -> Matrix {
    let n = a.len();
    let mut c = vec![vec![0.0; n]; n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i][k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..n {
                c[i][j] += aik * b[k][j];
            }
        }
    }
    c
}

/// exp(a). Scales `a` by 2^-s until its 1-norm is below 1/2, sums 30 Taylor terms of
/// `exp(a) - I` (error far below rounding at that norm) and squares s times in the form
/// `X <- 2X + X X`, which keeps the small part apart from the identity (as `expm1` does) so the
/// result is accurate to about one unit in the last place.
pub fn expm(a: &Matrix) -> Matrix {
    let n = a.len();
    let norm = (0..n)
        .map(|j| (0..n).map(|i| a[i][j].abs()).sum::<f64>())
        .fold(0.0, f64::max);
    let mut s = 0;
    while norm / 2f64.powi(s) > 0.5 && s < 60 {
        s += 1;
    }
    let scale = 2f64.powi(-s);
    let scaled: Matrix = a
        .iter()
        .map(|r| r.iter().map(|x| x * scale).collect())
        .collect();
    // Horner form of X = A (I + A/2 (I + A/3 (...))).
    let mut x = vec![vec![0.0; n]; n];
    for k in (1..=30).rev() {
        // x <- (A / k) (I + x)
        let mut ix = x.clone();
        for (i, row) in ix.iter_mut().enumerate() {
            row[i] += 1.0;
        }
        x = matmul(&scaled, &ix);
        for row in x.iter_mut() {
            for v in row.iter_mut() {
                *v /= k as f64;
            }
        }
    }
    for _ in 0..s {
        let xx = matmul(&x, &x);
        for i in 0..n {
            for j in 0..n {
                x[i][j] = 2.0 * x[i][j] + xx[i][j];
            }
        }
    }
    for (i, row) in x.iter_mut().enumerate() {
        row[i] += 1.0;
    }
    x
}

/// The propagators of `dx/dt = m x + c` over `dt` with `c` constant during the step:
/// `x(t + dt) = phi x(t) + gamma c`, from the exponential of the augmented matrix
/// `[[m, I], [0, 0]] dt`.
pub fn propagators(m: &Matrix, dt: f64) -> (Matrix, Matrix) {
    let n = m.len();
    let mut aug = vec![vec![0.0; 2 * n]; 2 * n];
    for i in 0..n {
        for j in 0..n {
            aug[i][j] = m[i][j] * dt;
        }
        aug[i][n + i] = dt;
    }
    let e = expm(&aug);
    let phi = (0..n).map(|i| e[i][..n].to_vec()).collect();
    let gamma = (0..n).map(|i| e[i][n..].to_vec()).collect();
    (phi, gamma)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_decay() {
        let (phi, gamma) = propagators(&vec![vec![-1.0 / 0.02]], 1e-4);
        let a = (-1e-4f64 / 0.02).exp();
        assert!((phi[0][0] - a).abs() <= 1.2e-16, "{} {a}", phi[0][0]);
        // gamma = (1 - a) * tau
        assert!((gamma[0][0] - (1.0 - a) * 0.02).abs() < 1e-18);
    }

    #[test]
    #[allow(clippy::excessive_precision)] // the constants are quoted as published in limit.md
    fn cuba_propagator_matches_the_closed_form() {
        // v' = (ge + gi - (v - El)) / taum, ge' = -ge / taue, gi' = -gi / taui (limit.md).
        let (tm, te, ti) = (0.02, 0.005, 0.01);
        let m = vec![
            vec![-1.0 / tm, 1.0 / tm, 1.0 / tm],
            vec![0.0, -1.0 / te, 0.0],
            vec![0.0, 0.0, -1.0 / ti],
        ];
        let (phi, gamma) = propagators(&m, 1e-4);
        let want = [
            0.99501247919268232,
            0.0049379352953090039,
            0.0049626454435142599,
        ];
        for k in 0..3 {
            assert!((phi[0][k] - want[k]).abs() < 2e-16, "{k}: {}", phi[0][k]);
        }
        // Constant term: gamma_vv * El / taum = -0.24438851955856666 mV.
        let c = gamma[0][0] * (-0.049 / tm);
        assert!((c - -0.24438851955856666e-3).abs() < 1e-18, "{c}");
        assert!(
            (phi[1][1] - 0.98019867330675525).abs() <= 1.2e-16,
            "{}",
            phi[1][1]
        );
        assert!(
            (phi[2][2] - 0.99004983374916811).abs() <= 1.2e-16,
            "{}",
            phi[2][2]
        );
    }
}
