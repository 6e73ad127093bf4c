//! Autocorrelation of sampled activity and the timescale of its decay (MODELS §6.3).

/// Autocorrelation of `x` for lags `0..=max_lag`, mean-subtracted and normalised so that
/// lag 0 is 1 (unbiased: each lag divided by its number of products).
pub fn autocorrelation(x: &[f64], max_lag: usize) -> Vec<f64> {
    let n = x.len();
    let m = x.iter().sum::<f64>() / n.max(1) as f64;
    let d: Vec<f64> = x.iter().map(|v| v - m).collect();
    let mut ac = Vec::with_capacity(max_lag + 1);
    for lag in 0..=max_lag.min(n.saturating_sub(1)) {
        let s: f64 = d[..n - lag].iter().zip(&d[lag..]).map(|(a, b)| a * b).sum();
        ac.push(s / (n - lag) as f64);
    }
    let a0 = ac.first().copied().unwrap_or(1.0);
    ac.iter().map(|v| v / a0).collect()
}

/// Timescale (in samples) of `ac[lag] ~ exp(-lag / tau)` by least squares on log(ac) over
/// lags `1..=fit_lags` with positive values, through the origin.
pub fn exp_timescale(ac: &[f64], fit_lags: usize) -> f64 {
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (lag, &v) in ac.iter().enumerate().take(fit_lags + 1).skip(1) {
        if v <= 0.0 {
            break;
        }
        let x = lag as f64;
        sxy += x * v.ln();
        sxx += x * x;
    }
    if sxy >= 0.0 {
        f64::INFINITY
    } else {
        -sxx / sxy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ar1_process_has_the_expected_timescale() {
        // x_t = a x_{t-1} + e_t has AC a^lag, timescale -1/ln(a).
        let a: f64 = 0.9;
        let mut x = vec![0.0; 200_000];
        let mut state: u64 = 12345;
        for t in 1..x.len() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            x[t] = a * x[t - 1] + u;
        }
        let ac = autocorrelation(&x, 30);
        let tau = exp_timescale(&ac, 10);
        let want = -1.0 / a.ln();
        assert!((tau - want).abs() / want < 0.05, "{tau} vs {want}");
    }
}
