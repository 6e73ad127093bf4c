//! Spike-train statistics as defined for the Brian2 reference measurements (`tests/data/README.md`): mean rate, rate spread
//! across neurons, ISI coefficient of variation, silent fraction, population Fano factor.

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
        let b = ((t / fano_bin_s + 1e-9).floor() as usize).min(n_bins - 1);
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
