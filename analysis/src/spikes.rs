//! Spike-train statistics: `spike_stats`, as defined for the Brian2 reference measurements
//! (`tests/data/README.md`: mean rate, rate spread across neurons, ISI coefficient of
//! variation, silent fraction, population Fano factor), and the `spikes` pass of `neurograph
//! analyze` (`population_spikes`, `analyze_trace`), whose definitions follow Elephant's.

use crate::rng::{sample_pairs, Pairs};

/// Statistics of the spikes of `n` neurons over `duration_s` seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct SpikeStats {
    pub n: usize,
    pub spikes: usize,
    pub mean_rate_hz: f64,
    /// Standard deviation of the per-neuron rates (population SD).
    pub rate_sd_hz: f64,
    /// Mean over neurons with at least `min_spikes` spikes of std(ISI) / mean(ISI).
    pub isi_cv_mean: f64,
    pub isi_cv_neurons: usize,
    pub silent_fraction: f64,
    /// Variance over mean of population spike counts in bins of `fano_bin_s`.
    pub pop_fano: f64,
}

/// Per-neuron spike times (ascending) from parallel time and index arrays.
pub fn trains(times: &[f64], indices: &[u32], n: usize) -> Vec<Vec<f64>> {
    let mut out = vec![Vec::new(); n];
    for (&t, &i) in times.iter().zip(indices) {
        if (i as usize) < n {
            out[i as usize].push(t);
        }
    }
    for tr in out.iter_mut() {
        tr.sort_by(f64::total_cmp);
    }
    out
}

/// The bin of time `t` (s) in bins of `bin_s` from 0, `floor(t / bin_s + 1e-9)` (a spike on a
/// bin edge goes to the later bin despite rounding); also the number of whole bins in a span
/// of `t`.
pub fn bin_of(t: f64, bin_s: f64) -> f64 {
    (t / bin_s + 1e-9).floor()
}

/// The bin of time `t` among `n_bins` bins of `bin_s` from 0 ([`bin_of`]); `None` outside.
pub fn bin_index(t: f64, bin_s: f64, n_bins: usize) -> Option<usize> {
    let b = bin_of(t, bin_s);
    (b >= 0.0 && b < n_bins as f64).then_some(b as usize)
}

/// Sparse binned counts: (bin, count), bins ascending.
pub type Binned = Vec<(u32, f64)>;

/// `(bin, count)` pairs sorted by bin with the counts of equal bins summed.
pub fn merge_bins(sorted: impl IntoIterator<Item = (u32, f64)>) -> Binned {
    let mut out: Binned = Vec::new();
    for (b, c) in sorted {
        match out.last_mut() {
            Some((last, s)) if *last == b => *s += c,
            _ => out.push((b, c)),
        }
    }
    out
}

/// Bin spike times (s) into `n_bins` bins of `bin_s` from 0 ([`bin_index`]; spikes outside
/// are dropped).
pub fn bin_train(times: &[f64], bin_s: f64, n_bins: usize) -> Binned {
    let mut bins: Vec<u32> = times
        .iter()
        .filter_map(|&t| bin_index(t, bin_s, n_bins))
        .map(|b| b as u32)
        .collect();
    bins.sort_unstable();
    merge_bins(bins.into_iter().map(|b| (b, 1.0)))
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

/// Population standard deviation (numpy's default, ddof = 0).
fn sd(xs: &[f64]) -> f64 {
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len().max(1) as f64).sqrt()
}

/// The statistics, with the CV over neurons with at least `min_spikes` spikes.
pub fn spike_stats(
    times: &[f64],
    indices: &[u32],
    n: usize,
    duration_s: f64,
    min_spikes: usize,
    fano_bin_s: f64,
) -> SpikeStats {
    let tr = trains(times, indices, n);
    let rates: Vec<f64> = tr.iter().map(|t| t.len() as f64 / duration_s).collect();
    let mut cvs = Vec::new();
    for t in &tr {
        if t.len() >= min_spikes.max(2) {
            let isi: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
            let m = mean(&isi);
            if m > 0.0 {
                cvs.push(sd(&isi) / m);
            }
        }
    }
    let n_bins = ((duration_s / fano_bin_s).round() as usize).max(1);
    let mut counts = vec![0.0; n_bins];
    for &t in times {
        let b = (bin_of(t, fano_bin_s) as usize).min(n_bins - 1);
        counts[b] += 1.0;
    }
    let cm = mean(&counts);
    SpikeStats {
        n,
        spikes: times.len(),
        mean_rate_hz: times.len() as f64 / (n as f64 * duration_s),
        rate_sd_hz: sd(&rates),
        isi_cv_mean: mean(&cvs),
        isi_cv_neurons: cvs.len(),
        silent_fraction: tr.iter().filter(|t| t.is_empty()).count() as f64 / n.max(1) as f64,
        pop_fano: if cm > 0.0 {
            sd(&counts).powi(2) / cm
        } else {
            0.0
        },
    }
}

/// Options of the `spikes` pass.
#[derive(Debug, Clone, PartialEq)]
pub struct SpikeOptions {
    /// Bin width (s) of the population rate histogram, the pairwise correlations and the
    /// synchrony measure.
    pub bin_s: f64,
    /// How many neuron pairs (at most) the mean correlation coefficient samples.
    pub pairs: usize,
    /// Seed of the pair sample.
    pub seed: u64,
}

impl Default for SpikeOptions {
    fn default() -> Self {
        SpikeOptions {
            bin_s: 0.005,
            pairs: 1000,
            seed: 1,
        }
    }
}

/// A mean over the neurons for which a statistic is defined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeuronMean {
    /// Mean over the neurons that qualify; NaN when none does.
    pub mean: f64,
    /// Population standard deviation (ddof 0) over the same neurons; NaN when none does.
    pub sd: f64,
    /// How many neurons qualify.
    pub neurons: usize,
}

impl NeuronMean {
    fn of(xs: &[f64]) -> NeuronMean {
        if xs.is_empty() {
            return NeuronMean {
                mean: f64::NAN,
                sd: f64::NAN,
                neurons: 0,
            };
        }
        NeuronMean {
            mean: mean(xs),
            sd: sd(xs),
            neurons: xs.len(),
        }
    }
}

/// The `spikes` pass over one population.
#[derive(Debug, Clone, PartialEq)]
pub struct PopulationSpikes {
    pub population: String,
    /// Neurons in the population.
    pub n: usize,
    pub spikes: usize,
    /// Analysed time (s): the run's simulated duration.
    pub duration_s: f64,
    /// Spikes / (n * duration) (Hz); equals the mean of the per-neuron rates.
    pub mean_rate_hz: f64,
    /// Per-neuron rates `len(train) / duration` (elephant.statistics.mean_firing_rate): their
    /// population SD (Hz) over all n neurons, silent ones included.
    pub rate_sd_hz: f64,
    /// Fraction of the neurons without a spike.
    pub silent_fraction: f64,
    /// Coefficient of variation of each neuron's ISIs, std/mean with ddof 0
    /// (elephant.statistics.cv of elephant.statistics.isi), over neurons with at least 2
    /// spikes (one ISI gives CV 0, as in the Brian2 reference `isi_cv_mean`).
    pub cv_isi: NeuronMean,
    /// elephant.statistics.cv2: 2 mean(|I(i+1) - I(i)| / (I(i+1) + I(i))), over neurons with at
    /// least 3 spikes (2 ISIs).
    pub cv2: NeuronMean,
    /// elephant.statistics.lv: 3/(N-1) sum((I(i) - I(i+1)) / (I(i) + I(i+1)))^2 over the N ISIs,
    /// over neurons with at least 3 spikes.
    pub lv: NeuronMean,
    /// elephant.statistics.fanofactor over the neurons' spike counts in the whole run:
    /// var(counts) / mean(counts), ddof 0; NaN when no neuron fired.
    pub fano: f64,
    /// Variance over mean of the population's spike count per bin (the Brian2 reference
    /// `pop_fano_5ms` at 5 ms bins); NaN when no spike falls in a bin.
    pub population_fano: f64,
    /// Bin width (s) of `rate_hz`, the correlations and the synchrony.
    pub bin_s: f64,
    /// Population rate per bin (Hz per neuron): spikes in [k bin, (k+1) bin) / (n bin),
    /// elephant.statistics.time_histogram(output='rate') averaged over the neurons. Whole
    /// bins only: a last partial bin is left out.
    pub rate_hz: Vec<f64>,
    /// elephant.spike_train_correlation.correlation_coefficient (Pearson, of binned counts,
    /// not binary) over a seeded sample of distinct pairs (every pair when there are fewer
    /// than asked); pairs where a neuron's binned count is constant (e.g. silent) are left
    /// out, as Elephant returns NaN for them.
    pub correlation: NeuronMean,
    /// Pairs drawn (before leaving out undefined ones).
    pub pairs_sampled: usize,
    /// Golomb's synchrony measure chi (Golomb 2007, Scholarpedia "Neuronal synchrony
    /// measures") of the binned counts: sqrt(var_t(population mean count) / mean_i
    /// var_t(count_i)). About 1/sqrt(n) for independent neurons, 1 for identical trains; NaN
    /// when no neuron's count varies.
    pub synchrony_chi: f64,
}

/// Mean and variance (ddof 0) over `n_bins` bins of sparse counts.
fn sparse_moments(bins: &[(u32, f64)], n_bins: usize) -> (f64, f64) {
    let nb = n_bins as f64;
    let s: f64 = bins.iter().map(|b| b.1).sum();
    let s2: f64 = bins.iter().map(|b| b.1 * b.1).sum();
    let m = s / nb;
    (m, (s2 / nb - m * m).max(0.0))
}

/// Pearson correlation of two sparse binned count vectors.
fn sparse_corr(a: &[(u32, f64)], b: &[(u32, f64)], n_bins: usize) -> f64 {
    let (ma, va) = sparse_moments(a, n_bins);
    let (mb, vb) = sparse_moments(b, n_bins);
    if va <= 0.0 || vb <= 0.0 {
        return f64::NAN;
    }
    let (mut i, mut j, mut sab) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                sab += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    let cov = sab / n_bins as f64 - ma * mb;
    (cov / (va * vb).sqrt()).clamp(-1.0, 1.0)
}

/// The `spikes` pass over `n` neurons' spikes in [0, duration_s). Linear in the spikes, plus
/// the pair sample (linear in the two trains of each pair).
pub fn population_spikes(
    population: &str,
    times: &[f64],
    indices: &[u32],
    n: usize,
    duration_s: f64,
    opts: &SpikeOptions,
) -> Result<PopulationSpikes, String> {
    if !(opts.bin_s.is_finite() && opts.bin_s > 0.0) {
        return Err(format!(
            "the bin width must be positive, not {} s",
            opts.bin_s
        ));
    }
    if !(duration_s.is_finite() && duration_s > 0.0) {
        return Err(format!(
            "population `{population}`: the trace covers no time (duration {duration_s} s)"
        ));
    }
    let n_bins = bin_of(duration_s, opts.bin_s) as usize;
    if n_bins == 0 {
        return Err(format!(
            "the bin width {} s is longer than the trace ({duration_s} s)",
            opts.bin_s
        ));
    }
    let tr = trains(times, indices, n);
    let rates: Vec<f64> = tr.iter().map(|t| t.len() as f64 / duration_s).collect();
    let counts: Vec<f64> = tr.iter().map(|t| t.len() as f64).collect();
    let (mut cvs, mut cv2s, mut lvs) = (Vec::new(), Vec::new(), Vec::new());
    let mut isi = Vec::new();
    for t in &tr {
        if t.len() < 2 {
            continue;
        }
        isi.clear();
        isi.extend(t.windows(2).map(|w| w[1] - w[0]));
        let m = mean(&isi);
        if m > 0.0 {
            cvs.push(sd(&isi) / m);
        }
        if isi.len() >= 2 {
            let (mut c2, mut l, mut terms) = (0.0, 0.0, 0usize);
            for w in isi.windows(2) {
                let s = w[0] + w[1];
                if s > 0.0 {
                    let d = (w[1] - w[0]) / s;
                    c2 += d.abs();
                    l += d * d;
                    terms += 1;
                }
            }
            if terms > 0 {
                cv2s.push(2.0 * c2 / terms as f64);
                lvs.push(3.0 * l / terms as f64);
            }
        }
    }
    let cm = mean(&counts);
    let fano = if cm > 0.0 {
        sd(&counts).powi(2) / cm
    } else {
        f64::NAN
    };
    // Population histogram.
    let mut hist = vec![0.0; n_bins];
    for &t in times {
        if let Some(b) = bin_index(t, opts.bin_s, n_bins) {
            hist[b] += 1.0;
        }
    }
    let hm = mean(&hist);
    let population_fano = if hm > 0.0 {
        sd(&hist).powi(2) / hm
    } else {
        f64::NAN
    };
    let rate_hz: Vec<f64> = hist
        .iter()
        .map(|c| c / (n.max(1) as f64 * opts.bin_s))
        .collect();
    // Binned counts per neuron, sparse.
    let bins: Vec<Binned> = tr
        .iter()
        .map(|t| bin_train(t, opts.bin_s, n_bins))
        .collect();
    // Golomb chi: variance of the population-averaged count over the mean single variance.
    let single_var = mean(
        &bins
            .iter()
            .map(|b| sparse_moments(b, n_bins).1)
            .collect::<Vec<_>>(),
    );
    let avg: Vec<f64> = hist.iter().map(|c| c / n.max(1) as f64).collect();
    let pop_var = sd(&avg).powi(2);
    let synchrony_chi = if single_var > 0.0 {
        (pop_var / single_var).sqrt()
    } else {
        f64::NAN
    };
    // Pair sample.
    let mut state = opts.seed;
    let pairs = sample_pairs(Pairs::Within(n), opts.pairs, &mut state);
    let corrs: Vec<f64> = pairs
        .iter()
        .map(|&(a, b)| sparse_corr(&bins[a], &bins[b], n_bins))
        .filter(|c| c.is_finite())
        .collect();
    Ok(PopulationSpikes {
        population: population.into(),
        n,
        spikes: times.len(),
        duration_s,
        mean_rate_hz: times.len() as f64 / (n.max(1) as f64 * duration_s),
        rate_sd_hz: sd(&rates),
        silent_fraction: tr.iter().filter(|t| t.is_empty()).count() as f64 / n.max(1) as f64,
        cv_isi: NeuronMean::of(&cvs),
        cv2: NeuronMean::of(&cv2s),
        lv: NeuronMean::of(&lvs),
        fano,
        population_fano,
        bin_s: opts.bin_s,
        rate_hz,
        correlation: NeuronMean::of(&corrs),
        pairs_sampled: pairs.len(),
        synchrony_chi,
    })
}

/// The `spikes` pass over every population of a trace that has a spike record (or over
/// `populations` when given).
pub fn analyze_trace(
    trace: &crate::trace::Trace,
    populations: Option<&[String]>,
    opts: &SpikeOptions,
) -> Result<Vec<PopulationSpikes>, crate::trace::TraceError> {
    let names = match populations {
        Some(p) => p.to_vec(),
        None => trace.spike_populations(),
    };
    if names.is_empty() {
        return Err(crate::trace::TraceError::NoSpikeRecords);
    }
    names
        .iter()
        .map(|p| {
            let ev = trace.spikes(p)?;
            population_spikes(p, &ev.times, &ev.indices, ev.size, trace.duration_s, opts)
                .map_err(crate::trace::TraceError::Option)
        })
        .collect()
}

fn num(x: f64) -> serde_json::Value {
    // NaN (undefined) becomes null.
    serde_json::Value::from(x)
}

fn neuron_mean_json(m: &NeuronMean) -> serde_json::Value {
    serde_json::json!({"mean": num(m.mean), "sd": num(m.sd), "neurons": m.neurons})
}

/// The JSON document of `neurograph analyze TRACE spikes --json` (schema in README).
pub fn to_json(trace: &crate::trace::Trace, stats: &[PopulationSpikes]) -> serde_json::Value {
    let pops: Vec<serde_json::Value> = stats
        .iter()
        .map(|s| {
            serde_json::json!({
                "population": s.population,
                "n": s.n,
                "spikes": s.spikes,
                "duration_s": s.duration_s,
                "mean_rate_hz": num(s.mean_rate_hz),
                "rate_sd_hz": num(s.rate_sd_hz),
                "silent_fraction": num(s.silent_fraction),
                "cv_isi": neuron_mean_json(&s.cv_isi),
                "cv2": neuron_mean_json(&s.cv2),
                "lv": neuron_mean_json(&s.lv),
                "fano": num(s.fano),
                "population_fano": num(s.population_fano),
                "correlation": {
                    "mean": num(s.correlation.mean),
                    "sd": num(s.correlation.sd),
                    "pairs": s.correlation.neurons,
                    "pairs_sampled": s.pairs_sampled,
                },
                "synchrony_chi": num(s.synchrony_chi),
                "bin_s": s.bin_s,
                "rate_hz": s.rate_hz.iter().map(|&r| num(r)).collect::<Vec<_>>(),
            })
        })
        .collect();
    trace.analysis_json(
        "spikes",
        serde_json::json!({
            "duration_s": trace.duration_s,
            "populations": pops,
        }),
    )
}

/// The table `neurograph analyze TRACE spikes` prints.
pub fn table_text(stats: &[PopulationSpikes]) -> String {
    let f = |x: f64, p: usize| {
        if x.is_finite() {
            format!("{x:.p$}")
        } else {
            "-".to_string()
        }
    };
    let mut out = format!(
        "{:<12} {:>7} {:>9} {:>9} {:>8} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7}\n",
        "population", "n", "spikes", "rate Hz", "sd Hz", "CV", "CV2", "LV", "Fano", "corr", "chi"
    );
    for s in stats {
        out += &format!(
            "{:<12} {:>7} {:>9} {:>9} {:>8} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7}\n",
            s.population,
            s.n,
            s.spikes,
            f(s.mean_rate_hz, 3),
            f(s.rate_sd_hz, 3),
            f(s.cv_isi.mean, 3),
            f(s.cv2.mean, 3),
            f(s.lv.mean, 3),
            f(s.fano, 3),
            f(s.correlation.mean, 4),
            f(s.synchrony_chi, 4),
        );
    }
    if let Some(s) = stats.first() {
        out += &format!(
            "rates and Fano over {} s; CV over neurons with >= 2 spikes, CV2 and LV with >= 3; corr and chi of counts in {} ms bins\n",
            s.duration_s,
            s.bin_s * 1e3
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_trains_have_zero_cv_and_known_rate() {
        // Neuron 0 fires every 100 ms, neuron 1 never.
        let times: Vec<f64> = (0..10).map(|k| k as f64 * 0.1).collect();
        let idx = vec![0u32; 10];
        let s = spike_stats(&times, &idx, 2, 1.0, 2, 0.005);
        assert_eq!(s.spikes, 10);
        assert!((s.mean_rate_hz - 5.0).abs() < 1e-12);
        assert!((s.rate_sd_hz - 5.0).abs() < 1e-12);
        assert!(s.isi_cv_mean.abs() < 1e-12);
        assert_eq!(s.isi_cv_neurons, 1);
        assert_eq!(s.silent_fraction, 0.5);
    }

    #[test]
    fn poisson_trains_have_cv_near_one() {
        // Exponential ISIs from a deterministic low-discrepancy sequence of uniforms.
        let mut times = Vec::new();
        let mut idx = Vec::new();
        for neuron in 0..200u32 {
            let mut t = 0.0;
            let mut k = 1.0;
            loop {
                let u: f64 =
                    ((k * 0.618_033_988_749_895 + neuron as f64 * 0.414_213_562) % 1.0).max(1e-12);
                k += 1.0;
                t += -u.ln() / 50.0;
                if t >= 10.0 {
                    break;
                }
                times.push(t);
                idx.push(neuron);
            }
        }
        let s = spike_stats(&times, &idx, 200, 10.0, 3, 0.005);
        assert!((s.mean_rate_hz - 50.0).abs() < 2.5, "{}", s.mean_rate_hz);
        assert!((s.isi_cv_mean - 1.0).abs() < 0.1, "{}", s.isi_cv_mean);
    }
}
