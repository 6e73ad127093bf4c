//! Autocorrelation of sampled activity and the timescales of its decay (the measurement of
//! Khajehabdollahi, Zeraati et al., ICLR 2024, `analysis/timescales` of their repository):
//! per unit, the autocorrelation by FFT (mean removed, zero-padded, unbiased, 1 at lag 0), a
//! single exponential `a·exp(-lag/tau)` and a double exponential
//! `a1·exp(-lag/tau1) + a2·exp(-lag/tau2)` fitted by least squares over lags `0..=max_lag`, the
//! model chosen by AIC (`n ln(RSS/n) + 2k`, k = 2 or 4); the population timescale is the same
//! fit of the mean autocorrelation of the units.
//!
//! The fits are a grid over the time constants (log-spaced, refined around the best point)
//! with the amplitudes solved linearly (non-negative) at each point: no starting values, no
//! divergence.

use serde_json::{json, Value};

use crate::numeric::golden_min;
use crate::spikes::{bin_index, bin_of, trains};
use crate::trace::{State, Trace, TraceError};

/// Autocorrelation of `x` for lags `0..=max_lag` (at most `x.len() - 1`), mean-subtracted and
/// normalised so that lag 0 is 1 (unbiased: each lag divided by its number of products).
/// Computed by FFT, zero-padded to at least twice the length so nothing wraps around. Empty
/// when `x` is empty; all zeros after lag 0 are `NaN` when `x` is constant.
pub fn autocorrelation(x: &[f64], max_lag: usize) -> Vec<f64> {
    let n = x.len();
    if n == 0 {
        return Vec::new();
    }
    let m = x.iter().sum::<f64>() / n as f64;
    let size = (2 * n).next_power_of_two();
    let mut re = vec![0.0; size];
    let mut im = vec![0.0; size];
    for (r, v) in re.iter_mut().zip(x) {
        *r = v - m;
    }
    fft(&mut re, &mut im, false);
    for (r, i) in re.iter_mut().zip(im.iter_mut()) {
        *r = *r * *r + *i * *i;
        *i = 0.0;
    }
    fft(&mut re, &mut im, true);
    let last = max_lag.min(n - 1);
    let a0 = re[0] / n as f64;
    (0..=last)
        .map(|lag| re[lag] / (n - lag) as f64 / a0)
        .collect()
}

/// In-place radix-2 FFT of `(re, im)` (length a power of two); `inverse` includes the 1/n.
fn fft(re: &mut [f64], im: &mut [f64], inverse: bool) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut len = 2;
    while len <= n {
        let ang = sign * 2.0 * std::f64::consts::PI / len as f64;
        let (wr, wi) = (ang.cos(), ang.sin());
        for start in (0..n).step_by(len) {
            let (mut cr, mut ci) = (1.0, 0.0);
            for k in 0..len / 2 {
                let (a, b) = (start + k, start + k + len / 2);
                let tr = re[b] * cr - im[b] * ci;
                let ti = re[b] * ci + im[b] * cr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
                let nc = cr * wr - ci * wi;
                ci = cr * wi + ci * wr;
                cr = nc;
            }
        }
        len <<= 1;
    }
    if inverse {
        for (r, i) in re.iter_mut().zip(im.iter_mut()) {
            *r /= n as f64;
            *i /= n as f64;
        }
    }
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

/// Which model AIC chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    Single,
    Double,
}

/// The fit of one autocorrelation; time constants in samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub model: Model,
    /// Single exponential: amplitude and time constant.
    pub a: f64,
    pub tau: f64,
    /// Double exponential: amplitudes and time constants, `tau1 <= tau2`.
    pub a1: f64,
    pub tau1: f64,
    pub a2: f64,
    pub tau2: f64,
    pub aic_single: f64,
    pub aic_double: f64,
}

impl Fit {
    /// The unit's one timescale (samples): `tau` of a single exponential; for a double, the
    /// amplitude-weighted mean `(a1 tau1 + a2 tau2) / (a1 + a2)` (the area under the fitted
    /// autocorrelation over its value at lag 0).
    pub fn timescale(&self) -> f64 {
        match self.model {
            Model::Single => self.tau,
            Model::Double => (self.a1 * self.tau1 + self.a2 * self.tau2) / (self.a1 + self.a2),
        }
    }
}

/// Smallest and largest time constant the grid considers, in samples.
const TAU_MIN: f64 = 0.05;
const GRID: usize = 48;
/// The most bins of spike counts per neuron the pass analyses (the FFT's buffers of a column
/// then stay within 2 GiB).
const MAX_BINS: usize = 1 << 26;

fn rss_single(y: &[f64], tau: f64) -> (f64, f64) {
    let q = (-1.0 / tau).exp();
    let (mut se, mut see, mut e) = (0.0, 0.0, 1.0);
    for &v in y {
        se += v * e;
        see += e * e;
        e *= q;
    }
    let a = (se / see).max(0.0);
    let mut rss = 0.0;
    let mut e = 1.0;
    for &v in y {
        let r = v - a * e;
        rss += r * r;
        e *= q;
    }
    (a, rss)
}

/// Non-negative least squares for `y ~ a1 e1 + a2 e2`: (a1, a2, rss).
fn rss_double(y: &[f64], tau1: f64, tau2: f64) -> (f64, f64, f64) {
    let (q1, q2) = ((-1.0 / tau1).exp(), (-1.0 / tau2).exp());
    let (mut s11, mut s12, mut s22, mut s1y, mut s2y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut e1, mut e2) = (1.0, 1.0);
    for &v in y {
        s11 += e1 * e1;
        s12 += e1 * e2;
        s22 += e2 * e2;
        s1y += e1 * v;
        s2y += e2 * v;
        e1 *= q1;
        e2 *= q2;
    }
    let det = s11 * s22 - s12 * s12;
    let (mut a1, mut a2) = if det > 1e-12 * s11 * s22 {
        ((s1y * s22 - s2y * s12) / det, (s2y * s11 - s1y * s12) / det)
    } else {
        (-1.0, -1.0)
    };
    if a1 < 0.0 || a2 < 0.0 {
        // The optimum is on a boundary: one component only.
        let c1 = (s1y / s11).max(0.0);
        let c2 = (s2y / s22).max(0.0);
        let r1 = -c1 * s1y; // rss - sum(y^2) for each single component
        let r2 = -c2 * s2y;
        (a1, a2) = if r1 <= r2 { (c1, 0.0) } else { (0.0, c2) };
    }
    let (mut e1, mut e2, mut rss) = (1.0, 1.0, 0.0);
    for &v in y {
        let r = v - a1 * e1 - a2 * e2;
        rss += r * r;
        e1 *= q1;
        e2 *= q2;
    }
    (a1, a2, rss)
}

fn aic(n: usize, rss: f64, k: usize) -> f64 {
    let n = n as f64;
    // A perfect fit would give -inf; a floor keeps the comparison finite.
    n * (rss / n).max(1e-300).ln() + 2.0 * k as f64
}

/// Fit `y[lag]` (lags `0..y.len()`) with a single and a double exponential and choose by AIC.
/// `None` when there are fewer than 5 points or a value is not finite.
pub fn fit(y: &[f64]) -> Option<Fit> {
    if y.len() < 5 || y.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let tau_max = 10.0 * y.len() as f64;
    let (lmin, lmax) = (TAU_MIN.ln(), tau_max.ln());
    let step = (lmax - lmin) / (GRID - 1) as f64;
    let grid: Vec<f64> = (0..GRID).map(|i| lmin + step * i as f64).collect();
    // Single: grid, then golden-section on ln tau around the best point.
    let cost1 = |l: f64| rss_single(y, l.exp()).1;
    let best = grid
        .iter()
        .copied()
        .min_by(|a, b| cost1(*a).total_cmp(&cost1(*b)))?;
    let l1 = golden_min(cost1, best - step, best + step, 0.0, 60);
    let tau = l1.exp();
    let (a, rss1) = rss_single(y, tau);
    // Double: grid over pairs, then shrinking local grids.
    let cost2 = |p: (f64, f64)| rss_double(y, p.0.exp(), p.1.exp()).2;
    let mut bp = (l1, l1);
    let mut bc = f64::INFINITY;
    for (i, &u) in grid.iter().enumerate() {
        for &v in &grid[i + 1..] {
            let c = cost2((u, v));
            if c < bc {
                (bc, bp) = (c, (u, v));
            }
        }
    }
    let mut h = step;
    for _ in 0..30 {
        let centre = bp;
        for du in [-1.0, -0.5, 0.0, 0.5, 1.0] {
            for dv in [-1.0, -0.5, 0.0, 0.5, 1.0] {
                let p = (
                    (centre.0 + du * h).clamp(lmin, lmax),
                    (centre.1 + dv * h).clamp(lmin, lmax),
                );
                let c = cost2(p);
                if c < bc {
                    (bc, bp) = (c, p);
                }
            }
        }
        if bp == centre {
            h *= 0.5;
        }
    }
    let (mut tau1, mut tau2) = (bp.0.exp(), bp.1.exp());
    let (mut a1, mut a2, rss2) = rss_double(y, tau1, tau2);
    if tau1 > tau2 {
        (tau1, tau2, a1, a2) = (tau2, tau1, a2, a1);
    }
    let (aic_single, aic_double) = (aic(y.len(), rss1, 2), aic(y.len(), rss2, 4));
    let model = if aic_double < aic_single && a1 > 0.0 && a2 > 0.0 {
        Model::Double
    } else {
        Model::Single
    };
    Some(Fit {
        model,
        a,
        tau,
        a1,
        tau1,
        a2,
        tau2,
        aic_single,
        aic_double,
    })
}

/// Options of the `timescales` pass.
#[derive(Debug, Clone, PartialEq)]
pub struct TimescaleOptions {
    /// Largest lag fitted (s); `None`: 30 samples, as the reference measurement.
    pub max_lag_s: Option<f64>,
    /// Bin width of spike counts (s), for `POP.spikes`.
    pub bin_s: f64,
    /// Samples before this time (s) are left out (burn-in; the reference drops 500 steps).
    pub from_s: f64,
}

impl Default for TimescaleOptions {
    fn default() -> Self {
        TimescaleOptions {
            max_lag_s: None,
            bin_s: 5e-3,
            from_s: 0.0,
        }
    }
}

/// The result for one analysed variable; times in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableTimescales {
    /// `POP.VAR` (a state record) or `POP.spikes` (binned spike counts).
    pub variable: String,
    /// Sample interval (s).
    pub sample_s: f64,
    pub samples: usize,
    /// Lags fitted: `0..=max_lag`.
    pub max_lag: usize,
    /// Per unit: the fit, `None` when the unit does not vary.
    pub units: Vec<Option<Fit>>,
    /// The fit of the mean autocorrelation over the units that vary.
    pub population: Option<Fit>,
    pub mean_autocorrelation: Vec<f64>,
}

/// Analyse `variables` (every state record sampled more than once when `None`).
pub fn analyze_trace(
    trace: &Trace,
    variables: Option<&[String]>,
    opts: &TimescaleOptions,
) -> Result<Vec<VariableTimescales>, TraceError> {
    if !(opts.from_s >= 0.0 && opts.from_s.is_finite()) {
        return Err(TraceError::Option(format!(
            "--from must be a non-negative time, not {} s",
            opts.from_s
        )));
    }
    if let Some(m) = opts.max_lag_s {
        if !(m > 0.0 && m.is_finite()) {
            return Err(TraceError::Option(format!(
                "--max-lag must be a positive time, not {m} s"
            )));
        }
    }
    let names: Vec<String> = match variables {
        Some(v) => v.to_vec(),
        None => {
            let v = trace.sampled_state_records();
            if v.is_empty() {
                return Err(TraceError::Option(
                    "the trace has no state record sampled over time; add e.g. `record POP.x every 1 ms`".into(),
                ));
            }
            v
        }
    };
    names
        .iter()
        .map(|n| analyze_variable(trace, n, opts))
        .collect()
}

/// The samples of one analysed variable, read one unit (column) at a time.
enum Samples {
    /// A state record, from sample `skip` on.
    State { state: State, skip: usize },
    /// Each neuron's spike times, counted in bins of `bin_s` from `from_s`.
    Spikes {
        trains: Vec<Vec<f64>>,
        from_s: f64,
        bin_s: f64,
    },
}

impl Samples {
    /// Unit `u`'s samples into `col` (one per row).
    fn column(&self, u: usize, col: &mut [f64]) {
        match self {
            Samples::State { state, skip } => {
                let w = state.width;
                for (r, c) in col.iter_mut().enumerate() {
                    *c = state.values[(skip + r) * w + u];
                }
            }
            Samples::Spikes {
                trains,
                from_s,
                bin_s,
            } => {
                col.fill(0.0);
                for &t in &trains[u] {
                    if let Some(b) = bin_index(t - from_s, *bin_s, col.len()) {
                        col[b] += 1.0;
                    }
                }
            }
        }
    }
}

fn analyze_variable(
    trace: &Trace,
    name: &str,
    opts: &TimescaleOptions,
) -> Result<VariableTimescales, TraceError> {
    // The samples, their number (rows) and units (width), and the sample interval.
    let (samples, rows, width, sample_s) = match name.strip_suffix(".spikes") {
        Some(pop) if !trace.has_state(name) => {
            if !(opts.bin_s > 0.0 && opts.bin_s.is_finite()) {
                return Err(TraceError::Option(
                    "--bin: bin width must be positive".into(),
                ));
            }
            let ev = trace.spikes(pop)?;
            let span = (trace.duration_s - opts.from_s).max(0.0);
            let rows = bin_of(span, opts.bin_s);
            if rows > MAX_BINS as f64 {
                return Err(TraceError::Option(format!(
                    "--bin: {rows} bins is more than {MAX_BINS}; use wider bins"
                )));
            }
            let samples = Samples::Spikes {
                trains: trains(&ev.times, &ev.indices, ev.size),
                from_s: opts.from_s,
                bin_s: opts.bin_s,
            };
            (samples, rows as usize, ev.size, opts.bin_s)
        }
        _ => {
            let s = trace.state(name).map_err(|e| match e {
                TraceError::MissingState { name } => TraceError::MissingSampledState { name },
                e => e,
            })?;
            let dt = if s.times.len() >= 2 {
                (s.times[s.times.len() - 1] - s.times[0]) / (s.times.len() - 1) as f64
            } else {
                0.0
            };
            let skip = s.times.iter().take_while(|&&t| t < opts.from_s).count();
            let (rows, width) = (s.rows - skip, s.width);
            (Samples::State { state: s, skip }, rows, width, dt)
        }
    };
    if rows < 8 || !(sample_s > 0.0 && sample_s.is_finite()) {
        return Err(TraceError::Option(format!(
            "`{name}` has {rows} samples; the timescales need at least 8 (add `record {name} every 1 ms`)"
        )));
    }
    let max_lag = match opts.max_lag_s {
        None => 30,
        Some(m) => bin_of(m, sample_s) as usize,
    }
    .min(rows - 1);
    if max_lag < 4 {
        return Err(TraceError::Option(format!(
            "--max-lag is {max_lag} samples of `{name}` ({sample_s} s each); fitting needs at least 4"
        )));
    }
    let mut units = Vec::with_capacity(width);
    let mut mean = vec![0.0; max_lag + 1];
    let mut counted = 0usize;
    let mut col = vec![0.0; rows];
    for u in 0..width {
        samples.column(u, &mut col);
        let ac = autocorrelation(&col, max_lag);
        if ac.iter().all(|v| v.is_finite()) {
            for (m, v) in mean.iter_mut().zip(&ac) {
                *m += v;
            }
            counted += 1;
            units.push(fit(&ac));
        } else {
            units.push(None);
        }
    }
    let (population, mean) = if counted > 0 {
        for m in &mut mean {
            *m /= counted as f64;
        }
        (fit(&mean), mean)
    } else {
        (None, Vec::new())
    };
    Ok(VariableTimescales {
        variable: name.into(),
        sample_s,
        samples: rows,
        max_lag,
        units,
        population,
        mean_autocorrelation: mean,
    })
}

fn fit_json(f: &Option<Fit>, sample_s: f64) -> Value {
    match f {
        None => Value::Null,
        Some(f) => {
            let (tau1, tau2, w1, w2) = match f.model {
                Model::Single => (Value::Null, Value::Null, Value::Null, Value::Null),
                Model::Double => {
                    let s = f.a1 + f.a2;
                    (
                        json!(f.tau1 * sample_s),
                        json!(f.tau2 * sample_s),
                        json!(f.a1 / s),
                        json!(f.a2 / s),
                    )
                }
            };
            json!({
                "model": match f.model { Model::Single => "single", Model::Double => "double" },
                "tau_s": f.timescale() * sample_s,
                "tau1_s": tau1, "tau2_s": tau2, "weight1": w1, "weight2": w2,
                "single": {"a": f.a, "tau_s": f.tau * sample_s},
                "double": {"a1": f.a1, "tau1_s": f.tau1 * sample_s, "a2": f.a2, "tau2_s": f.tau2 * sample_s},
                "aic_single": f.aic_single, "aic_double": f.aic_double,
            })
        }
    }
}

/// The JSON document of the pass (schema in the README, "neurograph analyze").
pub fn to_json(trace: &Trace, results: &[VariableTimescales]) -> Value {
    trace.analysis_json(
        "timescales",
        json!({
            "variables": results.iter().map(|r| json!({
                "variable": r.variable,
                "units": r.units.len(),
                "samples": r.samples,
                "sample_s": r.sample_s,
                "max_lag_s": r.max_lag as f64 * r.sample_s,
                "population": fit_json(&r.population, r.sample_s),
                "mean_autocorrelation": r.mean_autocorrelation,
                "per_unit": r.units.iter().map(|f| fit_json(f, r.sample_s)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    )
}

/// One line per variable: units, the population fit, the median unit timescale.
pub fn table_text(results: &[VariableTimescales]) -> String {
    let mut s = format!(
        "{:<14} {:>6} {:>8} {:>9} {:>7} {:>11} {:>11} {:>11} {:>7} {:>13}\n",
        "variable",
        "units",
        "samples",
        "lags",
        "model",
        "tau ms",
        "tau1 ms",
        "tau2 ms",
        "w1",
        "median tau ms"
    );
    let ms = |v: f64| format!("{:.3}", v * 1e3);
    for r in results {
        let (model, tau, t1, t2, w1) = match &r.population {
            None => ("-", "-".into(), "-".into(), "-".into(), "-".into()),
            Some(f) => match f.model {
                Model::Single => (
                    "single",
                    ms(f.tau * r.sample_s),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ),
                Model::Double => (
                    "double",
                    ms(f.timescale() * r.sample_s),
                    ms(f.tau1 * r.sample_s),
                    ms(f.tau2 * r.sample_s),
                    format!("{:.3}", f.a1 / (f.a1 + f.a2)),
                ),
            },
        };
        let mut taus: Vec<f64> = r.units.iter().flatten().map(Fit::timescale).collect();
        taus.sort_by(f64::total_cmp);
        let median = taus
            .get(taus.len() / 2)
            .map_or("-".into(), |t| ms(t * r.sample_s));
        s += &format!(
            "{:<14} {:>6} {:>8} {:>9} {:>7} {:>11} {:>11} {:>11} {:>7} {:>13}\n",
            r.variable,
            r.units.len(),
            r.samples,
            format!("0..{}", r.max_lag),
            model,
            tau,
            t1,
            t2,
            w1,
            median
        );
    }
    s += "autocorrelation by FFT per unit; single vs double exponential by AIC; population: fit of the mean autocorrelation\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ar1(a: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut x = vec![0.0; n];
        let mut state: u64 = seed;
        for t in 1..x.len() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            x[t] = a * x[t - 1] + u;
        }
        x
    }

    #[test]
    fn ar1_process_has_the_expected_timescale() {
        // x_t = a x_{t-1} + e_t has AC a^lag, timescale -1/ln(a).
        let a: f64 = 0.9;
        let x = ar1(a, 200_000, 12345);
        let ac = autocorrelation(&x, 30);
        let tau = exp_timescale(&ac, 10);
        let want = -1.0 / a.ln();
        assert!((tau - want).abs() / want < 0.05, "{tau} vs {want}");
        let f = fit(&ac).unwrap();
        assert_eq!(f.model, Model::Single, "{f:?}");
        assert!((f.tau - want).abs() / want < 0.05, "{f:?} vs {want}");
    }

    #[test]
    fn fft_autocorrelation_matches_the_direct_sum() {
        let x = ar1(0.7, 1000, 7);
        let ac = autocorrelation(&x, 50);
        let m = x.iter().sum::<f64>() / x.len() as f64;
        let d: Vec<f64> = x.iter().map(|v| v - m).collect();
        let c = |lag: usize| {
            d[..d.len() - lag]
                .iter()
                .zip(&d[lag..])
                .map(|(a, b)| a * b)
                .sum::<f64>()
                / (d.len() - lag) as f64
        };
        for (lag, v) in ac.iter().enumerate() {
            assert!((v - c(lag) / c(0)).abs() < 1e-9, "lag {lag}");
        }
        assert_eq!(ac.len(), 51);
        assert!(autocorrelation(&[], 5).is_empty());
        assert!(autocorrelation(&[1.0; 10], 3)[1].is_nan());
    }

    #[test]
    fn exact_double_exponential_is_recovered() {
        let y: Vec<f64> = (0..40)
            .map(|k| 0.6 * (-(k as f64) / 2.0).exp() + 0.4 * (-(k as f64) / 15.0).exp())
            .collect();
        let f = fit(&y).unwrap();
        assert_eq!(f.model, Model::Double);
        assert!(
            (f.tau1 - 2.0).abs() < 1e-3 && (f.tau2 - 15.0).abs() < 1e-2,
            "{f:?}"
        );
        assert!(fit(&[1.0, f64::NAN, 0.0, 0.0, 0.0]).is_none());
    }
}
