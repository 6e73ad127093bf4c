//! The `correlations` pass: cross-correlograms of spike-train pairs and groups with a
//! correction for slow co-modulation (interval jitter or a shift predictor), the corrected
//! correlogram, its peak and a significance per lag.
//!
//! Definitions (bins of width `bin`, spike counts `a[t]`, `b[t]`, lags `τ = -L..=L` bins):
//! - raw correlogram `C[τ] = Σ_t a[t] b[t + τ]`: the number of spike pairs with the spike of `b`
//!   `τ` bins after the spike of `a` (positive lag: `b` follows `a`), no border correction,
//!   as Elephant's `cross_correlation_histogram` counts binned coincidences;
//! - rate form `C[τ] / (N_a · bin)` (Hz): the cross-intensity of Perkel, Gerstein & Moore (1967),
//!   the rate of `b` at lag `τ` from a spike of `a` (its baseline is `b`'s mean rate);
//! - interval jitter (Date, Bienenstock & Geman 1998; Amarasingham et al. 2012, J Neurophysiol
//!   107:517): time is cut into windows of `jitter` from 0, and each spike of `b` is re-drawn
//!   uniformly over the bins of its window (`a` is kept). The predictor is the exact expectation
//!   of `C[τ]` under that resampling, `E[C[τ]] = Σ_W n_b(W) · mean_{u∈W} a[u - τ]`, and its
//!   variance is exact too, `Σ_W n_b(W) · var_{u∈W} a[u - τ]` (spikes re-drawn independently);
//!   with `surrogates > 0` both come instead from that many seeded jittered copies of `b`;
//! - shift predictor ("shuffle"): the run is cut into segments of `segment`; segment k of `a`
//!   is correlated with segment k + s of `b` for shifts s = 1..=S, i.e. `C` at lag
//!   `τ + s·segment`, scaled by the overlap `(T - |τ|) / (T - |τ + s·segment|)` and averaged
//!   over the shifts; its variance is taken as Poisson, `P (1 + 1/S)`;
//! - corrected `C - P`, z-score `(C - P) / sd`; the peak is the lag of the largest corrected
//!   count.

use serde_json::{json, Value};

use crate::rng::{sample_pairs, splitmix, Pairs};
use crate::spikes::{bin_of, bin_train, merge_bins, trains, Binned};
use crate::trace::{Trace, TraceError};

/// Neurons of one population: all, one element, or `start..end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub population: String,
    pub start: Option<usize>,
    pub end: Option<usize>,
}

impl Selection {
    /// The element range `[a, b)` inside a population of `size`, checked.
    pub fn range(&self, size: usize) -> Result<(usize, usize), TraceError> {
        let a = self.start.unwrap_or(0);
        let b = self.end.unwrap_or(size);
        if a >= b || b > size {
            return Err(TraceError::Option(format!(
                "`{}`: population `{}` has {size} neurons, so the range must lie in 0..{size}",
                self.label(),
                self.population
            )));
        }
        Ok((a, b))
    }

    /// `POP`, `POP:i` or `POP:a..b`.
    pub fn label(&self) -> String {
        match (self.start, self.end) {
            (None, None) => self.population.clone(),
            (Some(a), Some(b)) if b == a + 1 => format!("{}:{a}", self.population),
            (a, b) => format!(
                "{}:{}..{}",
                self.population,
                a.unwrap_or(0),
                b.map_or(String::new(), |b| b.to_string())
            ),
        }
    }

    /// One neuron.
    pub fn is_single(&self) -> bool {
        matches!((self.start, self.end), (Some(a), Some(b)) if b == a + 1)
    }
}

/// Parse `POP`, `POP:i` or `POP:a..b` (the flag names the error).
pub fn parse_selection(flag: &str, text: &str) -> Result<Selection, TraceError> {
    let bad = || {
        TraceError::Option(format!(
            "{flag}: `{text}` is not POP, POP:INDEX or POP:START..END"
        ))
    };
    let text = text.trim();
    let (pop, rest) = match text.split_once(':') {
        Some((p, r)) => (p.trim(), Some(r.trim())),
        None => (text, None),
    };
    if pop.is_empty() || pop.contains(char::is_whitespace) {
        return Err(bad());
    }
    let (start, end) = match rest {
        None => (None, None),
        Some(r) => match r.split_once("..") {
            Some((a, b)) => {
                let a: usize = a.trim().parse().map_err(|_| bad())?;
                let b: usize = b.trim().parse().map_err(|_| bad())?;
                if b <= a {
                    return Err(TraceError::Option(format!(
                        "{flag}: `{text}` is an empty range"
                    )));
                }
                (Some(a), Some(b))
            }
            None => {
                let i: usize = r.parse().map_err(|_| bad())?;
                (Some(i), Some(i + 1))
            }
        },
    };
    Ok(Selection {
        population: pop.to_string(),
        start,
        end,
    })
}

/// Parse `X,Y` (two selections).
pub fn parse_pair(flag: &str, text: &str) -> Result<(Selection, Selection), TraceError> {
    match text.split_once(',') {
        Some((a, b)) if !b.contains(',') => {
            Ok((parse_selection(flag, a)?, parse_selection(flag, b)?))
        }
        _ => Err(TraceError::Option(format!(
            "{flag}: `{text}` is not two selections separated by a comma, e.g. E:0,E:1"
        ))),
    }
}

/// The correction for slow co-modulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Correction {
    Jitter,
    Shuffle,
    None,
}

impl Correction {
    pub fn name(self) -> &'static str {
        match self {
            Correction::Jitter => "jitter",
            Correction::Shuffle => "shuffle",
            Correction::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<Correction> {
        match text {
            "jitter" => Some(Correction::Jitter),
            "shuffle" => Some(Correction::Shuffle),
            "none" => Some(Correction::None),
            _ => None,
        }
    }
}

/// Options of the `correlations` pass.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationOptions {
    /// Bin width (s).
    pub bin_s: f64,
    /// Largest lag (s), both sides.
    pub max_lag_s: f64,
    pub correction: Correction,
    /// Jitter window (s), a whole number of bins.
    pub jitter_s: f64,
    /// Shift predictor: segment ("trial") length (s), a whole number of bins.
    pub segment_s: f64,
    /// Jitter: 0 for the exact expectation and variance, else this many seeded surrogates.
    /// Shuffle: the number of shifts S averaged (0 counts as 1).
    pub surrogates: usize,
    /// Seed of the surrogates and of the pair sample.
    pub seed: u64,
    /// With no pairs or groups given: neuron pairs sampled per population pair.
    pub sample_pairs: usize,
}

impl Default for CorrelationOptions {
    fn default() -> Self {
        CorrelationOptions {
            bin_s: 0.001,
            max_lag_s: 0.05,
            correction: Correction::Jitter,
            jitter_s: 0.025,
            segment_s: 1.0,
            surrogates: 0,
            seed: 1,
            sample_pairs: 50,
        }
    }
}

/// Sum of several binned trains.
pub fn sum_trains(trains: &[&Binned]) -> Binned {
    let mut all: Vec<(u32, f64)> = trains.iter().flat_map(|t| t.iter().copied()).collect();
    all.sort_by_key(|x| x.0);
    merge_bins(all)
}

/// `C[τ] = Σ_t a[t] b[t + offset + τ]` for `τ = -max_lag..=max_lag` (index `τ + max_lag`).
pub fn cch_offset(a: &Binned, b: &Binned, offset: i64, max_lag: usize) -> Vec<f64> {
    let l = max_lag as i64;
    let mut out = vec![0.0; 2 * max_lag + 1];
    let mut start = 0usize;
    for &(t, ca) in a {
        let lo = t as i64 + offset - l;
        while start < b.len() && (b[start].0 as i64) < lo {
            start += 1;
        }
        let mut k = start;
        while k < b.len() && (b[k].0 as i64) <= lo + 2 * l {
            out[(b[k].0 as i64 - lo) as usize] += ca * b[k].1;
            k += 1;
        }
    }
    out
}

/// The raw correlogram `C[τ] = Σ_t a[t] b[t + τ]`.
pub fn cch(a: &Binned, b: &Binned, max_lag: usize) -> Vec<f64> {
    cch_offset(a, b, 0, max_lag)
}

/// Exact mean and variance of `C[τ]` when every spike of `b` is re-drawn uniformly over the
/// bins of its jitter window (`window` bins, windows from bin 0; the last may be shorter).
pub fn jitter_moments(
    a: &Binned,
    b: &Binned,
    max_lag: usize,
    window: usize,
    n_bins: usize,
) -> (Vec<f64>, Vec<f64>) {
    // Prefix sums of a and a² over the bins.
    let mut p1 = vec![0.0; n_bins + 1];
    let mut p2 = vec![0.0; n_bins + 1];
    let mut dense = vec![0.0; n_bins];
    for &(t, c) in a {
        dense[t as usize] = c;
    }
    for t in 0..n_bins {
        p1[t + 1] = p1[t] + dense[t];
        p2[t + 1] = p2[t] + dense[t] * dense[t];
    }
    // Sum over bins u in [lo, hi) of a[u] (out-of-range bins count 0).
    let range = |p: &[f64], lo: i64, hi: i64| -> f64 {
        let lo = lo.clamp(0, n_bins as i64) as usize;
        let hi = hi.clamp(0, n_bins as i64) as usize;
        if hi > lo {
            p[hi] - p[lo]
        } else {
            0.0
        }
    };
    let mut mean = vec![0.0; 2 * max_lag + 1];
    let mut var = vec![0.0; 2 * max_lag + 1];
    let mut k = 0;
    while k < b.len() {
        let w = b[k].0 as usize / window;
        let mut nb = 0.0;
        while k < b.len() && b[k].0 as usize / window == w {
            nb += b[k].1;
            k += 1;
        }
        let (ws, we) = ((w * window) as i64, ((w + 1) * window).min(n_bins) as i64);
        let m = (we - ws) as f64;
        for (li, (mu, v)) in mean.iter_mut().zip(var.iter_mut()).enumerate() {
            let tau = li as i64 - max_lag as i64;
            // C[τ] = Σ_spikes of b a[u - τ], u uniform over the window.
            let s1 = range(&p1, ws - tau, we - tau) / m;
            let s2 = range(&p2, ws - tau, we - tau) / m;
            *mu += nb * s1;
            *v += nb * (s2 - s1 * s1).max(0.0);
        }
    }
    (mean, var)
}

/// Mean and variance (ddof 1) over `n` seeded jittered copies of `b` of `C[τ]`.
pub fn jitter_surrogates(
    a: &Binned,
    b: &Binned,
    max_lag: usize,
    window: usize,
    n_bins: usize,
    n: usize,
    seed: u64,
) -> (Vec<f64>, Vec<f64>) {
    let len = 2 * max_lag + 1;
    let (mut s1, mut s2) = (vec![0.0; len], vec![0.0; len]);
    let mut state = seed ^ 0x6A09_E667_F3BC_C909;
    let mut spikes: Vec<u32> = Vec::new();
    for _ in 0..n {
        spikes.clear();
        for &(t, c) in b {
            let w = t as usize / window;
            let (ws, we) = (w * window, ((w + 1) * window).min(n_bins));
            for _ in 0..c as usize {
                let u = ws + (splitmix(&mut state) % (we - ws) as u64) as usize;
                spikes.push(u as u32);
            }
        }
        spikes.sort_unstable();
        let jb = merge_bins(spikes.iter().map(|&t| (t, 1.0)));
        let c = cch(a, &jb, max_lag);
        for (i, v) in c.iter().enumerate() {
            s1[i] += v;
            s2[i] += v * v;
        }
    }
    let nf = n as f64;
    let mean: Vec<f64> = s1.iter().map(|s| s / nf).collect();
    let var: Vec<f64> = s2
        .iter()
        .zip(&mean)
        .map(|(s, m)| {
            if n > 1 {
                ((s - nf * m * m) / (nf - 1.0)).max(0.0)
            } else {
                f64::NAN
            }
        })
        .collect();
    (mean, var)
}

/// Shift predictor: mean over shifts s = 1..=shifts of `C` at lag `τ + s·segment`, scaled by
/// the overlap ratio; and its Poisson variance `P (1 + 1/S)`.
pub fn shift_predictor(
    a: &Binned,
    b: &Binned,
    max_lag: usize,
    segment: usize,
    shifts: usize,
    n_bins: usize,
) -> (Vec<f64>, Vec<f64>) {
    let len = 2 * max_lag + 1;
    let mut mean = vec![0.0; len];
    for s in 1..=shifts {
        let off = (s * segment) as i64;
        let c = cch_offset(a, b, off, max_lag);
        for (i, v) in c.iter().enumerate() {
            let tau = i as i64 - max_lag as i64;
            let scale =
                (n_bins as f64 - tau.abs() as f64) / (n_bins as f64 - (tau + off).abs() as f64);
            mean[i] += v * scale / shifts as f64;
        }
    }
    let var = mean
        .iter()
        .map(|p| p * (1.0 + 1.0 / shifts as f64))
        .collect();
    (mean, var)
}

/// Sums over the pairs of one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlogram {
    /// First train: `POP`, `POP:i`, `POP:a..b`, or for a sample `POP` (neurons of it).
    pub a: String,
    pub b: String,
    /// `pair` (two neurons), `group` (summed trains) or `sample` (mean over sampled pairs).
    pub kind: &'static str,
    /// Neuron pairs summed (1 for a pair or group).
    pub pairs: usize,
    /// Spikes of the first and second train (summed over the pairs).
    pub spikes_a: f64,
    pub spikes_b: f64,
    /// Per lag, summed over the pairs: raw counts, predictor, its variance.
    pub raw: Vec<f64>,
    pub predictor: Option<Vec<f64>>,
    pub variance: Option<Vec<f64>>,
}

impl Correlogram {
    /// `raw - predictor` (raw without a correction).
    pub fn corrected(&self) -> Vec<f64> {
        match &self.predictor {
            Some(p) => self.raw.iter().zip(p).map(|(r, p)| r - p).collect(),
            None => self.raw.clone(),
        }
    }

    /// z per lag; NaN without a correction or where the variance is 0.
    pub fn z(&self) -> Vec<f64> {
        match &self.variance {
            Some(v) => self
                .corrected()
                .iter()
                .zip(v)
                .map(|(c, v)| if *v > 0.0 { c / v.sqrt() } else { f64::NAN })
                .collect(),
            None => vec![f64::NAN; self.raw.len()],
        }
    }

    /// Index of the largest corrected count (the first of ties).
    pub fn peak(&self) -> usize {
        let c = self.corrected();
        let mut best = 0;
        for (i, v) in c.iter().enumerate() {
            if *v > c[best] {
                best = i;
            }
        }
        best
    }
}

/// The `correlations` pass over a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationResult {
    pub opts: CorrelationOptions,
    pub max_lag_bins: usize,
    pub n_bins: usize,
    pub entries: Vec<Correlogram>,
}

impl CorrelationResult {
    /// Lag of index `i` (s).
    pub fn lag_s(&self, i: usize) -> f64 {
        (i as f64 - self.max_lag_bins as f64) * self.opts.bin_s
    }
}

/// A whole number of bins in `s` seconds, or an error naming the flag.
fn bins_of(flag: &str, s: f64, bin_s: f64) -> Result<usize, TraceError> {
    let k = s / bin_s;
    if !(s.is_finite() && s > 0.0) || (k - k.round()).abs() > 1e-6 * k.max(1.0) || k.round() < 1.0 {
        return Err(TraceError::Option(format!(
            "{flag}: {} ms is not a positive whole number of {} ms bins",
            s * 1e3,
            bin_s * 1e3
        )));
    }
    Ok(k.round() as usize)
}

/// The predictor and its variance of one pair of trains under `opts`.
#[allow(clippy::type_complexity)]
fn predict(
    a: &Binned,
    b: &Binned,
    max_lag: usize,
    n_bins: usize,
    opts: &CorrelationOptions,
    params: (usize, usize),
    seed: u64,
) -> Option<(Vec<f64>, Vec<f64>)> {
    match opts.correction {
        Correction::None => None,
        Correction::Jitter if opts.surrogates == 0 => {
            Some(jitter_moments(a, b, max_lag, params.0, n_bins))
        }
        Correction::Jitter => Some(jitter_surrogates(
            a,
            b,
            max_lag,
            params.0,
            n_bins,
            opts.surrogates,
            seed,
        )),
        Correction::Shuffle => Some(shift_predictor(
            a,
            b,
            max_lag,
            params.1,
            opts.surrogates.max(1),
            n_bins,
        )),
    }
}

fn add(into: &mut Option<Vec<f64>>, v: &[f64]) {
    match into {
        Some(x) => x.iter_mut().zip(v).for_each(|(x, v)| *x += v),
        None => *into = Some(v.to_vec()),
    }
}

/// The `correlations` pass: `pairs` and `groups` are `(X, Y)` selections (a pair must name
/// single neurons); with neither, a seeded sample of `opts.sample_pairs` neuron pairs for each
/// unordered pair of populations with a spike record (a population with itself included).
pub fn analyze_trace(
    trace: &Trace,
    pairs: &[(Selection, Selection)],
    groups: &[(Selection, Selection)],
    opts: &CorrelationOptions,
) -> Result<CorrelationResult, TraceError> {
    let bad = |m: String| TraceError::Option(m);
    if !(opts.bin_s.is_finite() && opts.bin_s > 0.0) {
        return Err(bad(format!(
            "--bin: the bin width must be positive, not {} s",
            opts.bin_s
        )));
    }
    let max_lag = bins_of("--max-lag", opts.max_lag_s, opts.bin_s)?;
    let n_bins = bin_of(trace.duration_s, opts.bin_s) as usize;
    if n_bins <= max_lag {
        return Err(bad(format!(
            "--max-lag {} ms: the trace is only {} s long",
            opts.max_lag_s * 1e3,
            trace.duration_s
        )));
    }
    let jitter = match opts.correction {
        Correction::Jitter => bins_of("--jitter", opts.jitter_s, opts.bin_s)?,
        _ => 1,
    };
    let segment = match opts.correction {
        Correction::Shuffle => {
            let seg = bins_of("--segment", opts.segment_s, opts.bin_s)?;
            let shifts = opts.surrogates.max(1);
            if seg < 2 * max_lag + 1 || (shifts + 1) * seg > n_bins {
                return Err(bad(format!(
                    "--segment {} s: the shift predictor needs segments longer than twice --max-lag and {} of them in the trace ({} s)",
                    opts.segment_s,
                    shifts + 1,
                    trace.duration_s
                )));
            }
            seg
        }
        _ => 1,
    };
    for p in pairs {
        if !p.0.is_single() || !p.1.is_single() {
            return Err(bad(format!(
                "--pairs: `{},{}` is not two single neurons (POP:INDEX); use --groups for ranges",
                p.0.label(),
                p.1.label()
            )));
        }
    }
    // Binned trains per population, read once.
    let mut cache: Vec<(String, Vec<Binned>)> = Vec::new();
    let load = |cache: &mut Vec<(String, Vec<Binned>)>, pop: &str| -> Result<usize, TraceError> {
        if let Some(k) = cache.iter().position(|c| c.0 == pop) {
            return Ok(k);
        }
        let ev = trace.spikes(pop)?;
        let binned = trains(&ev.times, &ev.indices, ev.size)
            .iter()
            .map(|t| bin_train(t, opts.bin_s, n_bins))
            .collect();
        cache.push((pop.to_string(), binned));
        Ok(cache.len() - 1)
    };
    let mut entries = Vec::new();
    let mut seed = opts.seed;
    let params = (jitter, segment);
    let explicit: Vec<(&(Selection, Selection), &'static str)> = pairs
        .iter()
        .map(|p| (p, "pair"))
        .chain(groups.iter().map(|g| (g, "group")))
        .collect();
    for ((x, y), kind) in explicit {
        let (kx, ky) = (
            load(&mut cache, &x.population)?,
            load(&mut cache, &y.population)?,
        );
        let (xa, xb) = x.range(cache[kx].1.len())?;
        let (ya, yb) = y.range(cache[ky].1.len())?;
        let a = sum_trains(&cache[kx].1[xa..xb].iter().collect::<Vec<_>>());
        let b = sum_trains(&cache[ky].1[ya..yb].iter().collect::<Vec<_>>());
        let pred = predict(&a, &b, max_lag, n_bins, opts, params, splitmix(&mut seed));
        entries.push(Correlogram {
            a: x.label(),
            b: y.label(),
            kind,
            pairs: 1,
            spikes_a: a.iter().map(|c| c.1).sum(),
            spikes_b: b.iter().map(|c| c.1).sum(),
            raw: cch(&a, &b, max_lag),
            predictor: pred.as_ref().map(|p| p.0.clone()),
            variance: pred.map(|p| p.1),
        });
    }
    if pairs.is_empty() && groups.is_empty() {
        let pops = trace.spike_populations();
        if pops.is_empty() {
            return Err(TraceError::NoSpikeRecords);
        }
        if opts.sample_pairs == 0 {
            return Err(bad("--sample: at least one pair per population pair".into()));
        }
        for (ia, pa) in pops.iter().enumerate() {
            for pb in &pops[ia..] {
                let (ka, kb) = (load(&mut cache, pa)?, load(&mut cache, pb)?);
                let (na, nb) = (cache[ka].1.len(), cache[kb].1.len());
                let kind = Pairs::Between {
                    na,
                    nb,
                    distinct: pa == pb,
                };
                if kind.count() == 0 {
                    continue;
                }
                let chosen = sample_pairs(kind, opts.sample_pairs, &mut seed);
                let mut e = Correlogram {
                    a: pa.clone(),
                    b: pb.clone(),
                    kind: "sample",
                    pairs: chosen.len(),
                    spikes_a: 0.0,
                    spikes_b: 0.0,
                    raw: vec![0.0; 2 * max_lag + 1],
                    predictor: None,
                    variance: None,
                };
                for &(i, j) in &chosen {
                    let (a, b) = (&cache[ka].1[i], &cache[kb].1[j]);
                    e.spikes_a += a.iter().map(|c| c.1).sum::<f64>();
                    e.spikes_b += b.iter().map(|c| c.1).sum::<f64>();
                    for (r, v) in e.raw.iter_mut().zip(cch(a, b, max_lag)) {
                        *r += v;
                    }
                    if let Some((p, v)) =
                        predict(a, b, max_lag, n_bins, opts, params, splitmix(&mut seed))
                    {
                        add(&mut e.predictor, &p);
                        add(&mut e.variance, &v);
                    }
                }
                entries.push(e);
            }
        }
    }
    Ok(CorrelationResult {
        opts: opts.clone(),
        max_lag_bins: max_lag,
        n_bins,
        entries,
    })
}

fn num(x: f64) -> Value {
    Value::from(x)
}

fn nums(v: &[f64]) -> Value {
    Value::from(v.iter().map(|&x| num(x)).collect::<Vec<_>>())
}

/// The JSON document of `neurograph analyze TRACE correlations --json` (schema in README).
pub fn to_json(trace: &Trace, r: &CorrelationResult) -> Value {
    let bin = r.opts.bin_s;
    let entries: Vec<Value> = r
        .entries
        .iter()
        .map(|e| {
            let corrected = e.corrected();
            let rate = |v: &[f64]| -> Vec<f64> {
                v.iter().map(|c| c / (e.spikes_a.max(1.0) * bin)).collect()
            };
            let z = e.z();
            let peak = e.peak();
            json!({
                "a": e.a,
                "b": e.b,
                "kind": e.kind,
                "pairs": e.pairs,
                "spikes_a": e.spikes_a,
                "spikes_b": e.spikes_b,
                "raw": nums(&e.raw),
                "predictor": e.predictor.as_deref().map(nums),
                "sd": e.variance.as_ref().map(|v| nums(&v.iter().map(|x| x.sqrt()).collect::<Vec<_>>())),
                "corrected": nums(&corrected),
                "raw_rate_hz": nums(&rate(&e.raw)),
                "corrected_rate_hz": nums(&rate(&corrected)),
                "z": nums(&z),
                "peak_lag_s": r.lag_s(peak),
                "peak_corrected": num(corrected[peak]),
                "peak_z": num(z[peak]),
            })
        })
        .collect();
    trace.analysis_json(
        "correlations",
        json!({
            "duration_s": trace.duration_s,
            "bin_s": bin,
            "max_lag_s": r.max_lag_bins as f64 * bin,
            "correction": r.opts.correction.name(),
            "jitter_s": (r.opts.correction == Correction::Jitter).then_some(r.opts.jitter_s),
            "segment_s": (r.opts.correction == Correction::Shuffle).then_some(r.opts.segment_s),
            "surrogates": r.opts.surrogates,
            "lags_s": (0..2 * r.max_lag_bins + 1).map(|i| r.lag_s(i)).collect::<Vec<_>>(),
            "entries": entries,
        }),
    )
}

/// The table `neurograph analyze TRACE correlations` prints.
pub fn table_text(r: &CorrelationResult) -> String {
    let f = |x: f64, p: usize| {
        if x.is_finite() {
            format!("{x:.p$}")
        } else {
            "-".to_string()
        }
    };
    let mut out = format!(
        "{:<14} {:<14} {:>6} {:>6} {:>9} {:>9} {:>9} {:>10} {:>9} {:>7}\n",
        "a", "b", "kind", "pairs", "spikes a", "spikes b", "peak ms", "corrected", "pred", "z"
    );
    for e in &r.entries {
        let peak = e.peak();
        let c = e.corrected();
        out += &format!(
            "{:<14} {:<14} {:>6} {:>6} {:>9} {:>9} {:>9} {:>10} {:>9} {:>7}\n",
            e.a,
            e.b,
            e.kind,
            e.pairs,
            e.spikes_a,
            e.spikes_b,
            f(r.lag_s(peak) * 1e3, 1),
            f(c[peak], 1),
            e.predictor.as_ref().map_or("-".into(), |p| f(p[peak], 1)),
            f(e.z()[peak], 1)
        );
    }
    let how = match r.opts.correction {
        Correction::Jitter if r.opts.surrogates == 0 => format!(
            "interval jitter of b in {} ms windows, exact expectation and variance",
            r.opts.jitter_s * 1e3
        ),
        Correction::Jitter => format!(
            "interval jitter of b in {} ms windows, {} surrogates",
            r.opts.jitter_s * 1e3,
            r.opts.surrogates
        ),
        Correction::Shuffle => format!(
            "shift predictor, segments of {} s, {} shift(s)",
            r.opts.segment_s,
            r.opts.surrogates.max(1)
        ),
        Correction::None => "no correction".into(),
    };
    out += &format!(
        "coincidence counts in {} ms bins, lags ±{} ms (positive: b after a), summed over the pairs; {how}; peak = largest corrected count\n",
        r.opts.bin_s * 1e3,
        r.max_lag_bins as f64 * r.opts.bin_s * 1e3
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cch_counts_pairs_by_lag() {
        let a: Binned = vec![(10, 1.0), (20, 2.0)];
        let b: Binned = vec![(12, 1.0), (19, 1.0)];
        let c = cch(&a, &b, 3);
        // Lags: 12-10 = +2 (1), 19-20 = -1 (2), 19-10 = 9 and 12-20 = -8 out of range.
        assert_eq!(c, vec![0.0, 0.0, 2.0, 0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn jitter_moments_match_enumeration() {
        // a and b in 12 bins, windows of 4: enumerate every placement of b's two spikes.
        let a: Binned = vec![(1, 1.0), (2, 1.0), (6, 2.0), (9, 1.0)];
        let b: Binned = vec![(3, 1.0), (5, 1.0)];
        let (mean, var) = jitter_moments(&a, &b, 2, 4, 12);
        let (mut s1, mut s2) = (vec![0.0; 5], vec![0.0; 5]);
        for u in 0..4u32 {
            for v in 4..8u32 {
                let jb: Binned = vec![(u, 1.0), (v, 1.0)];
                let c = cch(&a, &jb, 2);
                for i in 0..5 {
                    s1[i] += c[i] / 16.0;
                    s2[i] += c[i] * c[i] / 16.0;
                }
            }
        }
        for i in 0..5 {
            assert!((mean[i] - s1[i]).abs() < 1e-12, "{i}: {mean:?} {s1:?}");
            assert!((var[i] - (s2[i] - s1[i] * s1[i])).abs() < 1e-12, "{i}");
        }
    }

    #[test]
    fn selections_parse() {
        let s = parse_selection("--groups", "E:3..10").unwrap();
        assert_eq!((s.start, s.end), (Some(3), Some(10)));
        assert_eq!(s.label(), "E:3..10");
        assert!(parse_selection("--pairs", "E:7").unwrap().is_single());
        assert!(parse_selection("--pairs", "E:x").is_err());
        assert!(parse_selection("--pairs", "E:5..5").is_err());
        assert!(parse_pair("--pairs", "E:1").is_err());
    }
}
