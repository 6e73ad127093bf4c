//! The `glm` pass: a Poisson generalised linear model of each neuron's binned spike counts on
//! the spike history of every analysed neuron (its own included), after Pillow et al. (2008,
//! Nature 454:995, "Spatio-temporal correlations and visual signalling in a complete neuronal
//! population"), fitted by Newton's method (IRLS) with an L2 (Gaussian) prior, and the recovered
//! coupling scored against the true connectivity of the trace (`record W.edges`) by ROC AUC.
//!
//! Model of target neuron i in bin t (counts `y_i[t]`, bins of `bin_s`):
//! `log λ_i[t] = b_i + Σ_j Σ_k w_ijk x_jk[t]`, `y_i[t] ~ Poisson(λ_i[t])`, where
//! `x_jk[t] = Σ_{d=1..L} φ_k[d] y_j[t-d]` is source j's spike count filtered by basis function
//! `φ_k` over the `L` bins of the window (strictly past bins: lag ≥ 1). Every `φ_k` sums to 1 over
//! the lags, so the coupling score of pair j → i, `Σ_k w_ijk`, is the integral of the coupling
//! filter over the window (log-rate units times bins: the gain in log rate a spike of j causes,
//! summed over the lags it acts on).
//!
//! The objective is the negative log-likelihood plus the prior,
//! `f = Σ_t (λ[t] - y[t] log λ[t]) + (l2 / 2) Σ w²` (the bias is not penalised), minimised by
//! Newton steps `H d = g` (Cholesky; Levenberg damping `H + μI` when H is not positive
//! definite) with a backtracking line search (Armijo), until the Newton decrement `gᵀd / 2`
//! falls below the tolerance. The design matrix is sparse (a source contributes only while a
//! spike of it is within the window) and is built once, shared by every target; targets are
//! fitted in parallel.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::correlations::{parse_selection, Selection};
use crate::numeric::{chol_solve, cholesky, dot, forward, log_factorial, par_map};
use crate::spikes::{bin_index, bin_of, merge_bins, trains, Binned};
use crate::trace::{Edges, Trace, TraceError};

/// The shape of the history basis functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasisKind {
    /// Raised cosines on a log-stretched time axis (Pillow et al. 2008): peaks evenly spaced
    /// in `log(d + c)`, each `(1 + cos(π (log(d + c) - centre) / (2 Δ))) / 2` within two
    /// spacings `Δ` of its centre.
    RaisedCosine,
    /// Decaying exponentials `exp(-d / τ_k)` cut at the window, `τ_k` log-spaced from one bin
    /// to a third of the window.
    Exponential,
}

impl BasisKind {
    pub fn name(self) -> &'static str {
        match self {
            BasisKind::RaisedCosine => "raised-cosine",
            BasisKind::Exponential => "exponential",
        }
    }
}

/// Options of the `glm` pass.
#[derive(Debug, Clone, PartialEq)]
pub struct GlmOptions {
    /// Bin width (s).
    pub bin_s: f64,
    /// History window (s): lags `1..=round(window / bin)` bins.
    pub window_s: f64,
    pub basis: BasisKind,
    /// Number of basis functions.
    pub n_basis: usize,
    /// L2 prior precision on the coupling weights (the bias is not penalised).
    pub l2: f64,
    /// Newton iterations at most.
    pub max_iter: usize,
    /// Convergence: Newton decrement `gᵀ H⁻¹ g / 2` below this (log-likelihood units).
    pub tol: f64,
    /// Worker threads (0: as many as the machine has).
    pub threads: usize,
}

impl Default for GlmOptions {
    fn default() -> Self {
        GlmOptions {
            bin_s: 0.001,
            window_s: 0.03,
            basis: BasisKind::RaisedCosine,
            n_basis: 3,
            l2: 1.0,
            max_iter: 50,
            tol: 1e-6,
            threads: 0,
        }
    }
}

/// The basis: `n_basis` rows of `window` values (lags 1..=window), each summing to 1.
pub fn basis(kind: BasisKind, n_basis: usize, window: usize) -> Vec<Vec<f64>> {
    let mut out: Vec<Vec<f64>> = match kind {
        BasisKind::RaisedCosine => {
            // Log-stretched axis x = ln(d + c); first peak at lag 1, the last function's
            // support ends just after lag `window` (at window + 1, where it is 0).
            let c = 1.0;
            let (x0, x1) = ((1.0f64 + c).ln(), (window as f64 + 1.0 + c).ln());
            let spacing = (x1 - x0) / (n_basis as f64 + 1.0);
            (0..n_basis)
                .map(|k| {
                    let centre = x0 + spacing * k as f64;
                    (1..=window)
                        .map(|d| {
                            let u = ((d as f64 + c).ln() - centre) * std::f64::consts::PI
                                / (2.0 * spacing);
                            if u.abs() >= std::f64::consts::PI {
                                0.0
                            } else {
                                0.5 * (1.0 + u.cos())
                            }
                        })
                        .collect()
                })
                .collect()
        }
        BasisKind::Exponential => {
            let (t0, t1) = (1.0f64, (window as f64 / 3.0).max(1.0));
            (0..n_basis)
                .map(|k| {
                    let f = if n_basis > 1 {
                        k as f64 / (n_basis - 1) as f64
                    } else {
                        0.0
                    };
                    let tau = (t0.ln() + f * (t1.ln() - t0.ln())).exp();
                    (1..=window).map(|d| (-(d as f64) / tau).exp()).collect()
                })
                .collect()
        }
    };
    for row in out.iter_mut() {
        let s: f64 = row.iter().sum();
        if s > 0.0 {
            row.iter_mut().for_each(|v| *v /= s);
        }
    }
    out
}

/// The covariates of every bin, a sparse matrix shared by all targets: row t holds, for each
/// source with a spike in the window before t, its `n_basis` filtered counts (columns
/// `source * n_basis + k`, ascending).
#[derive(Debug, Clone)]
pub struct Design {
    pub n_bins: usize,
    pub n_sources: usize,
    pub n_basis: usize,
    row_ptr: Vec<usize>,
    cols: Vec<u32>,
    vals: Vec<f64>,
}

impl Design {
    /// Build from each source's spike bins (ascending; repeats are counts) and the basis.
    pub fn build(spike_bins: &[Vec<u32>], n_bins: usize, basis: &[Vec<f64>]) -> Design {
        let n_basis = basis.len();
        let window = basis.first().map_or(0, Vec::len);
        let n_sources = spike_bins.len();
        // Every spike as (bin, source), in bin order.
        let mut spikes: Vec<(u32, u32)> = spike_bins
            .iter()
            .enumerate()
            .flat_map(|(j, b)| b.iter().map(move |&t| (t, j as u32)))
            .collect();
        spikes.sort_unstable();
        let mut row_ptr = Vec::with_capacity(n_bins + 1);
        row_ptr.push(0);
        let (mut cols, mut vals) = (Vec::new(), Vec::new());
        let mut scratch = vec![0.0; n_sources * n_basis];
        let mut touched: Vec<u32> = Vec::new();
        let mut is_touched = vec![false; n_sources];
        let (mut lo, mut hi) = (0usize, 0usize);
        for t in 0..n_bins {
            // Spikes in bins t - window ..= t - 1.
            while hi < spikes.len() && (spikes[hi].0 as usize) < t {
                hi += 1;
            }
            while lo < hi && (spikes[lo].0 as usize) + window < t {
                lo += 1;
            }
            for &(s, j) in &spikes[lo..hi] {
                let d = t - s as usize; // 1..=window
                let j = j as usize;
                if !is_touched[j] {
                    is_touched[j] = true;
                    touched.push(j as u32);
                }
                for (k, phi) in basis.iter().enumerate() {
                    scratch[j * n_basis + k] += phi[d - 1];
                }
            }
            touched.sort_unstable();
            for &j in &touched {
                let j = j as usize;
                for k in 0..n_basis {
                    let v = scratch[j * n_basis + k];
                    scratch[j * n_basis + k] = 0.0;
                    if v != 0.0 {
                        cols.push((j * n_basis + k) as u32);
                        vals.push(v);
                    }
                }
                is_touched[j] = false;
            }
            touched.clear();
            row_ptr.push(cols.len());
        }
        Design {
            n_bins,
            n_sources,
            n_basis,
            row_ptr,
            cols,
            vals,
        }
    }

    /// Coupling columns (sources × basis functions); the bias is separate.
    pub fn n_cols(&self) -> usize {
        self.n_sources * self.n_basis
    }

    /// Stored non-zero covariates.
    pub fn nnz(&self) -> usize {
        self.vals.len()
    }

    fn row(&self, t: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.row_ptr[t], self.row_ptr[t + 1]);
        (&self.cols[a..b], &self.vals[a..b])
    }
}

/// The fit of one target neuron.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetFit {
    /// Bias `b` (log of the expected count per bin with no history).
    pub bias: f64,
    /// Weights `w[j * n_basis + k]`.
    pub weights: Vec<f64>,
    /// Posterior standard deviation of each source's summed weight `Σ_k w_jk` (from the
    /// inverse Hessian at the optimum: Laplace approximation).
    pub score_sd: Vec<f64>,
    pub iterations: usize,
    pub converged: bool,
    /// The final Newton decrement.
    pub decrement: f64,
    /// Poisson log-likelihood at the optimum, `Σ y log λ - λ - log y!`.
    pub log_likelihood: f64,
    /// Spikes of the target.
    pub spikes: usize,
}

impl TargetFit {
    /// Summed weight of source `j`: the integral of its coupling filter.
    pub fn score(&self, j: usize, n_basis: usize) -> f64 {
        self.weights[j * n_basis..(j + 1) * n_basis].iter().sum()
    }
}

/// `h = Σ_t λ_t x̃_t x̃_tᵀ` (upper triangle, row-major `p × p`, `x̃ = [1, x]`) for weights
/// `lambda(t)`.
fn accumulate(design: &Design, lambda: impl Fn(usize) -> f64, h: &mut [f64]) {
    let p = design.n_cols() + 1;
    h.iter_mut().for_each(|v| *v = 0.0);
    for t in 0..design.n_bins {
        let lam = lambda(t);
        let (cols, vals) = design.row(t);
        h[0] += lam;
        for (a, (&ca, &va)) in cols.iter().zip(vals).enumerate() {
            let ia = ca as usize + 1;
            let lv = lam * va;
            h[ia] += lv; // row 0, column ia
            let row = &mut h[ia * p..(ia + 1) * p];
            for (&cb, &vb) in cols[a..].iter().zip(&vals[a..]) {
                row[cb as usize + 1] += lv * vb;
            }
        }
    }
}

/// Add the prior precision `l2` to the diagonal of the weights' block of the `p × p` Hessian
/// `h` (not the bias), and mirror its upper triangle to the lower one (for [`cholesky`]).
fn add_prior_and_mirror(h: &mut [f64], p: usize, l2: f64) {
    for i in 0..p {
        if i > 0 {
            h[i * p + i] += l2;
        }
        for j in 0..i {
            h[i * p + j] = h[j * p + i];
        }
    }
}

impl Design {
    /// The Gram matrix `Σ_t x̃_t x̃_tᵀ` (upper triangle), shared by every target's first
    /// Newton step.
    pub fn gram(&self) -> Vec<f64> {
        let p = self.n_cols() + 1;
        let mut h = vec![0.0; p * p];
        accumulate(self, |_| 1.0, &mut h);
        h
    }
}

/// Fit one target: `y` are its (bin, count) pairs, bins ascending. Parameters are
/// `[b, w...]`; the objective, gradient and Hessian are as in the module documentation.
pub fn fit_target(design: &Design, y: &[(u32, f64)], opts: &GlmOptions) -> TargetFit {
    fit_target_with(design, y, opts, None)
}

/// [`fit_target`] with the design's [`Design::gram`] matrix computed once for all targets.
pub fn fit_target_with(
    design: &Design,
    y: &[(u32, f64)],
    opts: &GlmOptions,
    gram: Option<&[f64]>,
) -> TargetFit {
    let p = design.n_cols() + 1;
    let n_bins = design.n_bins;
    let total: f64 = y.iter().map(|c| c.1).sum();
    // Data term Σ_t y_t x_t (fixed).
    let mut xty = vec![0.0; p];
    xty[0] = total;
    for &(t, c) in y {
        let (cols, vals) = design.row(t as usize);
        for (&col, &v) in cols.iter().zip(vals) {
            xty[col as usize + 1] += c * v;
        }
    }
    let mut theta = vec![0.0; p];
    theta[0] = (total.max(0.5) / n_bins.max(1) as f64).ln();
    // f(θ) = Σ λ - yᵀη + l2/2 |w|², with yᵀη = θ·xty.
    let objective = |theta: &[f64], eta: &mut [f64]| -> f64 {
        let mut s = 0.0;
        for (t, e) in eta.iter_mut().enumerate() {
            let (cols, vals) = design.row(t);
            let mut v = theta[0];
            for (&c, &x) in cols.iter().zip(vals) {
                v += theta[c as usize + 1] * x;
            }
            *e = v;
            s += v.exp();
        }
        let dot: f64 = theta.iter().zip(&xty).map(|(a, b)| a * b).sum();
        let pen: f64 = theta[1..].iter().map(|w| w * w).sum::<f64>() * opts.l2 / 2.0;
        s - dot + pen
    };
    let mut eta = vec![0.0; n_bins];
    let mut f = objective(&theta, &mut eta);
    let mut h = vec![0.0; p * p];
    // The damped Hessian and its factor.
    let mut hd = vec![0.0; p * p];
    let mut g = vec![0.0; p];
    let mut d = vec![0.0; p];
    let mut trial = vec![0.0; p];
    let mut eta_trial = vec![0.0; n_bins];
    let (mut iterations, mut converged, mut decrement) = (0, false, f64::INFINITY);
    let mut factor_ok;
    loop {
        // Gradient and Hessian (upper triangle, then mirrored to the lower for Cholesky). At the
        // start every λ is exp(b): the Hessian is exp(b) times the shared Gram matrix.
        match gram {
            Some(gram) if iterations == 0 => {
                let lam = theta[0].exp();
                for (hv, gv) in h.iter_mut().zip(gram) {
                    *hv = lam * gv;
                }
            }
            _ => accumulate(design, |t| eta[t].exp(), &mut h),
        }
        // Row 0 of the Hessian is Σ λ x̃: the likelihood part of the gradient.
        g.copy_from_slice(&h[..p]);
        for i in 0..p {
            g[i] -= xty[i];
            if i > 0 {
                g[i] += opts.l2 * theta[i];
            }
        }
        add_prior_and_mirror(&mut h, p, opts.l2);
        // Newton direction, with Levenberg damping if H is not positive definite.
        let mut mu = 0.0;
        let scale = (0..p)
            .map(|i| h[i * p + i])
            .fold(0.0f64, f64::max)
            .max(1e-12);
        factor_ok = false;
        for _ in 0..20 {
            hd.copy_from_slice(&h);
            for i in 0..p {
                hd[i * p + i] += mu;
            }
            if cholesky(&mut hd, p) {
                factor_ok = true;
                break;
            }
            mu = if mu == 0.0 { 1e-8 * scale } else { mu * 10.0 };
        }
        if !factor_ok {
            break;
        }
        d.copy_from_slice(&g);
        chol_solve(&hd, p, &mut d);
        decrement = g.iter().zip(&d).map(|(a, b)| a * b).sum::<f64>() / 2.0;
        if decrement < opts.tol {
            converged = true;
            // The factor of the undamped Hessian at the optimum, for the posterior SDs.
            if mu > 0.0 {
                factor_ok = false;
            }
            std::mem::swap(&mut h, &mut hd);
            break;
        }
        if iterations >= opts.max_iter {
            break;
        }
        iterations += 1;
        // Backtracking line search (Armijo with c = 1e-4).
        let mut step = 1.0;
        let mut accepted = false;
        for _ in 0..40 {
            for i in 0..p {
                trial[i] = theta[i] - step * d[i];
            }
            let ft = objective(&trial, &mut eta_trial);
            if ft.is_finite() && ft <= f - 1e-4 * step * 2.0 * decrement {
                theta.copy_from_slice(&trial);
                std::mem::swap(&mut eta, &mut eta_trial);
                f = ft;
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            // No decrease along the Newton direction: at the optimum to machine precision.
            converged = decrement < opts.tol * 1e3;
            factor_ok = false;
            break;
        }
    }
    // Posterior SD of each source's summed weight: sqrt(1ᵀ Σ_jj 1), Σ = H⁻¹ (the factor of
    // the Hessian at the optimum; recomputed if the loop ended without one).
    if !factor_ok {
        // Recompute the undamped Hessian's factor at θ.
        accumulate(design, |t| eta[t].exp(), &mut h);
        add_prior_and_mirror(&mut h, p, opts.l2);
        factor_ok = cholesky(&mut h, p);
    }
    let nb = design.n_basis;
    let score_sd: Vec<f64> = (0..design.n_sources)
        .map(|j| {
            if !factor_ok {
                return f64::NAN;
            }
            // var = e_Jᵀ H⁻¹ e_J = |L⁻¹ e_J|², e_J = 1 on source j's columns.
            let first = 1 + j * nb;
            let mut v = vec![0.0; p];
            for k in 0..nb {
                v[first + k] = 1.0;
            }
            forward(&h, p, &mut v, first);
            dot(&v[first..], &v[first..]).sqrt()
        })
        .collect();
    let pen: f64 = theta[1..].iter().map(|w| w * w).sum::<f64>() * opts.l2 / 2.0;
    TargetFit {
        bias: theta[0],
        weights: theta[1..].to_vec(),
        score_sd,
        iterations,
        converged,
        decrement,
        log_likelihood: -(f - pen) - y.iter().map(|&(_, c)| log_factorial(c)).sum::<f64>(),
        spikes: total as usize,
    }
}

/// ROC AUC of `positives` against `negatives` (the probability that a random positive scores
/// above a random negative, ties counting one half): the Mann–Whitney U statistic over
/// `P·N`, from mid-ranks. NaN when either set is empty or a score is NaN.
pub fn roc_auc(positives: &[f64], negatives: &[f64]) -> f64 {
    let (np, nn) = (positives.len(), negatives.len());
    if np == 0 || nn == 0 || positives.iter().chain(negatives).any(|s| s.is_nan()) {
        return f64::NAN;
    }
    let mut all: Vec<(f64, bool)> = positives
        .iter()
        .map(|&s| (s, true))
        .chain(negatives.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mid * all[i..=j].iter().filter(|a| a.1).count() as f64;
        i = j + 1;
    }
    (rank_sum - (np * (np + 1)) as f64 / 2.0) / (np as f64 * nn as f64)
}

/// One analysed neuron: its population and element.
#[derive(Debug, Clone, PartialEq)]
pub struct Neuron {
    pub population: String,
    pub index: usize,
}

/// The comparison with the true connectivity.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeRecovery {
    pub projections: Vec<String>,
    /// Where the true weights came from (`W.w`), if any.
    pub weights_record: Option<String>,
    /// Ordered pairs j → i (j ≠ i) with at least one synapse, and without.
    pub true_edges: usize,
    pub absent_edges: usize,
    /// AUC of |summed weight| for existing against absent pairs.
    pub auc: f64,
    /// AUC of |summed weight| / posterior SD (a Wald z) for the same split.
    pub auc_z: f64,
    /// Sign accuracy: true edges whose summed true weight is non-zero and whose recovered
    /// score has the same sign, over those edges; NaN without weights.
    pub sign_accuracy: f64,
    pub excitatory: usize,
    pub inhibitory: usize,
    /// AUC of the signed score for excitatory against inhibitory true edges.
    pub sign_auc: f64,
}

/// The `glm` pass over a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct GlmResult {
    pub neurons: Vec<Neuron>,
    pub opts: GlmOptions,
    pub n_bins: usize,
    pub window_bins: usize,
    pub basis: Vec<Vec<f64>>,
    pub design_nnz: usize,
    pub fits: Vec<TargetFit>,
    /// Coupling scores `scores[i][j]` of source j onto target i (summed weight).
    pub scores: Vec<Vec<f64>>,
    pub recovery: Option<EdgeRecovery>,
}

/// The analysed neurons of `selections` (default: every population with a spike record, all
/// neurons), with their spike bins.
fn gather(
    trace: &Trace,
    selections: &[Selection],
    bin_s: f64,
    n_bins: usize,
) -> Result<(Vec<Neuron>, Vec<Vec<u32>>), TraceError> {
    let mut neurons = Vec::new();
    let mut bins = Vec::new();
    for sel in selections {
        let ev = trace.spikes(&sel.population)?;
        let (a, b) = sel.range(ev.size)?;
        let tr = trains(&ev.times, &ev.indices, ev.size);
        for (i, train) in tr.iter().enumerate().take(b).skip(a) {
            neurons.push(Neuron {
                population: sel.population.clone(),
                index: i,
            });
            // Ascending, as the train is.
            bins.push(
                train
                    .iter()
                    .filter_map(|&t| bin_index(t, bin_s, n_bins))
                    .map(|k| k as u32)
                    .collect(),
            );
        }
    }
    Ok((neurons, bins))
}

/// The largest model the pass fits: parameters per target.
pub const MAX_PARAMETERS: usize = 4001;

/// The `glm` pass: `selections` are `POP` or `POP:a..b` (default every population with a spike
/// record); `projections` the edge records to score against (default every one whose both ends
/// lie in the analysed populations); `weights` the state record of the true weights (default
/// `PROJ.w` when recorded).
pub fn analyze_trace(
    trace: &Trace,
    selections: Option<&[String]>,
    projections: Option<&[String]>,
    opts: &GlmOptions,
) -> Result<GlmResult, TraceError> {
    let bad = |m: String| TraceError::Option(m);
    if !(opts.bin_s.is_finite() && opts.bin_s > 0.0) {
        return Err(bad(format!(
            "--bin: the bin width must be positive, not {} s",
            opts.bin_s
        )));
    }
    let window = (opts.window_s / opts.bin_s).round();
    if !(1.0..=10_000.0).contains(&window) {
        return Err(bad(format!(
            "--window: {} s is not between one bin ({} s) and 10,000 bins",
            opts.window_s, opts.bin_s
        )));
    }
    let window = window as usize;
    if opts.n_basis == 0 || opts.n_basis > window {
        return Err(bad(format!(
            "--basis-count: {} basis functions for a window of {window} bins; use 1 to {window}",
            opts.n_basis
        )));
    }
    if !(opts.l2.is_finite() && opts.l2 >= 0.0) {
        return Err(bad(format!(
            "--l2: the prior precision must be 0 or more, not {}",
            opts.l2
        )));
    }
    let n_bins = bin_of(trace.duration_s, opts.bin_s) as usize;
    if n_bins <= window {
        return Err(bad(format!(
            "the trace ({} s) is not longer than the history window ({} s)",
            trace.duration_s, opts.window_s
        )));
    }
    let sels: Vec<Selection> = match selections {
        Some(s) if !s.is_empty() => s
            .iter()
            .map(|s| parse_selection("--population", s))
            .collect::<Result<_, _>>()?,
        _ => trace
            .spike_populations()
            .into_iter()
            .map(|p| Selection {
                population: p,
                start: None,
                end: None,
            })
            .collect(),
    };
    if sels.is_empty() {
        return Err(TraceError::NoSpikeRecords);
    }
    let (neurons, bins) = gather(trace, &sels, opts.bin_s, n_bins)?;
    let n = neurons.len();
    if n == 0 {
        return Err(bad("no neuron selected (an empty range?)".into()));
    }
    if n * opts.n_basis + 1 > MAX_PARAMETERS {
        return Err(bad(format!(
            "{n} neurons × {} basis functions is {} parameters per target, more than {MAX_PARAMETERS}; select fewer neurons (--population POP:0..100)",
            opts.n_basis,
            n * opts.n_basis + 1
        )));
    }
    let b = basis(opts.basis, opts.n_basis, window);
    let design = Design::build(&bins, n_bins, &b);
    let counts: Vec<Binned> = bins
        .iter()
        .map(|bs| merge_bins(bs.iter().map(|&t| (t, 1.0))))
        .collect();
    let fits = fit_all(&design, &counts, opts);
    let scores: Vec<Vec<f64>> = fits
        .iter()
        .map(|f| (0..n).map(|j| f.score(j, opts.n_basis)).collect())
        .collect();
    let recovery = recovery(trace, &neurons, &fits, &scores, projections)?;
    Ok(GlmResult {
        neurons,
        opts: opts.clone(),
        n_bins,
        window_bins: window,
        basis: b,
        design_nnz: design.nnz(),
        fits,
        scores,
        recovery,
    })
}

/// Fit every target (in parallel over `opts.threads` workers).
pub fn fit_all(design: &Design, counts: &[Vec<(u32, f64)>], opts: &GlmOptions) -> Vec<TargetFit> {
    let gram = (counts.len() > 1).then(|| design.gram());
    par_map(counts.len(), opts.threads, |i| {
        fit_target_with(design, &counts[i], opts, gram.as_deref())
    })
}

/// Score the fits against the edge records.
fn recovery(
    trace: &Trace,
    neurons: &[Neuron],
    fits: &[TargetFit],
    scores: &[Vec<f64>],
    projections: Option<&[String]>,
) -> Result<Option<EdgeRecovery>, TraceError> {
    let index: HashMap<(&str, usize), usize> = neurons
        .iter()
        .enumerate()
        .map(|(g, nr)| ((nr.population.as_str(), nr.index), g))
        .collect();
    let pops: Vec<&str> = neurons.iter().map(|n| n.population.as_str()).collect();
    // Each edge record is read once: the given projections, or every one whose ends are all
    // among the analysed populations.
    let named: Vec<(String, Edges)> = match projections {
        Some(p) if !p.is_empty() => p
            .iter()
            .map(|name| Ok((name.clone(), trace.edges(name)?)))
            .collect::<Result<_, TraceError>>()?,
        _ => {
            let mut out = Vec::new();
            for p in trace.edge_projections() {
                let e = trace.edges(&p)?;
                let inside = e
                    .pre_parts
                    .iter()
                    .chain(&e.post_parts)
                    .all(|part| pops.contains(&part.node.as_str()));
                if inside {
                    out.push((p, e));
                }
            }
            out
        }
    };
    if named.is_empty() {
        return Ok(None);
    }
    let n = neurons.len();
    // True weight per ordered pair (j → i), summed over synapses; presence separately.
    let mut present = vec![false; n * n];
    let mut weight = vec![0.0; n * n];
    let mut weights_record = None;
    for (p, e) in &named {
        let wname = format!("{p}.w");
        let w = if trace.has_state(&wname) {
            let s = trace.synapse_weights(&wname, e)?;
            weights_record = Some(wname);
            Some(s.values[(s.rows - 1) * s.width..].to_vec())
        } else {
            None
        };
        for k in 0..e.pre.len() {
            let pre = Edges::locate(&e.pre_parts, e.pre[k] as usize);
            let post = Edges::locate(&e.post_parts, e.post[k] as usize);
            if let (Some(pre), Some(post)) = (pre, post) {
                if let (Some(&j), Some(&i)) = (index.get(&pre), index.get(&post)) {
                    present[i * n + j] = true;
                    if let Some(w) = &w {
                        weight[i * n + j] += w[k];
                    }
                }
            }
        }
    }
    let (mut pos, mut neg, mut pos_z, mut neg_z) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut exc, mut inh) = (Vec::new(), Vec::new());
    let mut sign_right = 0usize;
    for i in 0..n {
        for j in 0..n {
            if i == j {
                continue;
            }
            let s = scores[i][j];
            let z = s / fits[i].score_sd[j];
            if present[i * n + j] {
                pos.push(s.abs());
                pos_z.push(z.abs());
                let w = weight[i * n + j];
                if w > 0.0 {
                    exc.push(s);
                    sign_right += usize::from(s > 0.0);
                } else if w < 0.0 {
                    inh.push(s);
                    sign_right += usize::from(s < 0.0);
                }
            } else {
                neg.push(s.abs());
                neg_z.push(z.abs());
            }
        }
    }
    let signed = exc.len() + inh.len();
    Ok(Some(EdgeRecovery {
        projections: named.into_iter().map(|(p, _)| p).collect(),
        weights_record,
        true_edges: pos.len(),
        absent_edges: neg.len(),
        auc: roc_auc(&pos, &neg),
        auc_z: roc_auc(&pos_z, &neg_z),
        sign_accuracy: if signed > 0 {
            sign_right as f64 / signed as f64
        } else {
            f64::NAN
        },
        excitatory: exc.len(),
        inhibitory: inh.len(),
        sign_auc: roc_auc(&exc, &inh),
    }))
}

fn num(x: f64) -> Value {
    Value::from(x)
}

/// The JSON document of `neurograph analyze TRACE glm --json` (schema in README).
pub fn to_json(trace: &Trace, r: &GlmResult) -> Value {
    let nb = r.opts.n_basis;
    let targets: Vec<Value> = r
        .fits
        .iter()
        .zip(&r.neurons)
        .enumerate()
        .map(|(i, (f, nr))| {
            json!({
                "population": nr.population,
                "index": nr.index,
                "spikes": f.spikes,
                "bias": num(f.bias),
                "rate_hz": num(f.bias.exp() / r.opts.bin_s),
                "iterations": f.iterations,
                "converged": f.converged,
                "decrement": num(f.decrement),
                "log_likelihood": num(f.log_likelihood),
                "scores": r.scores[i].iter().map(|&s| num(s)).collect::<Vec<_>>(),
                "score_sd": f.score_sd.iter().map(|&s| num(s)).collect::<Vec<_>>(),
                "weights": (0..r.neurons.len())
                    .map(|j| f.weights[j * nb..(j + 1) * nb].iter().map(|&w| num(w)).collect::<Vec<_>>())
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let recovery = r.recovery.as_ref().map(|e| {
        json!({
            "projections": e.projections,
            "weights_record": e.weights_record,
            "true_edges": e.true_edges,
            "absent_edges": e.absent_edges,
            "auc": num(e.auc),
            "auc_z": num(e.auc_z),
            "sign_accuracy": num(e.sign_accuracy),
            "excitatory": e.excitatory,
            "inhibitory": e.inhibitory,
            "sign_auc": num(e.sign_auc),
        })
    });
    trace.analysis_json(
        "glm",
        json!({
        "duration_s": trace.duration_s,
        "bin_s": r.opts.bin_s,
        "bins": r.n_bins,
        "window_s": r.window_bins as f64 * r.opts.bin_s,
        "basis": {
            "kind": r.opts.basis.name(),
            "count": nb,
            "values": r.basis.iter().map(|row| row.iter().map(|&v| num(v)).collect::<Vec<_>>()).collect::<Vec<_>>(),
        },
        "l2": r.opts.l2,
        "neurons": r.neurons.iter().map(|n| json!({"population": n.population, "index": n.index})).collect::<Vec<_>>(),
        "targets": targets,
        "recovery": recovery,
    }),
    )
}

/// The summary `neurograph analyze TRACE glm` prints.
pub fn table_text(r: &GlmResult) -> String {
    let f = |x: f64, p: usize| {
        if x.is_finite() {
            format!("{x:.p$}")
        } else {
            "-".to_string()
        }
    };
    let n = r.neurons.len();
    let converged = r.fits.iter().filter(|f| f.converged).count();
    let iters: usize = r.fits.iter().map(|f| f.iterations).sum();
    let spikes: usize = r.fits.iter().map(|f| f.spikes).sum();
    let mut out = format!(
        "{n} neurons ({spikes} spikes), {} bins of {} ms; {} basis functions ({}) over {} ms; L2 {}\n",
        r.n_bins,
        r.opts.bin_s * 1e3,
        r.opts.n_basis,
        r.opts.basis.name(),
        r.window_bins as f64 * r.opts.bin_s * 1e3,
        r.opts.l2
    );
    out += &format!(
        "fits: {converged} of {n} converged, {:.1} Newton iterations on average; design {} non-zeros\n",
        iters as f64 / n.max(1) as f64,
        r.design_nnz
    );
    // Strongest couplings by |z|.
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for i in 0..n {
        for j in 0..n {
            if i != j {
                let z = r.scores[i][j] / r.fits[i].score_sd[j];
                if z.is_finite() {
                    pairs.push((z, i, j));
                }
            }
        }
    }
    pairs.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
    out += &format!(
        "{:<16} {:<16} {:>9} {:>8}\n",
        "source", "target", "weight", "z"
    );
    for &(z, i, j) in pairs.iter().take(10) {
        let name = |k: usize| format!("{}:{}", r.neurons[k].population, r.neurons[k].index);
        out += &format!(
            "{:<16} {:<16} {:>9} {:>8}\n",
            name(j),
            name(i),
            f(r.scores[i][j], 3),
            f(z, 1)
        );
    }
    match &r.recovery {
        Some(e) => {
            out += &format!(
                "true connectivity ({}): {} edges, {} absent pairs; ROC AUC {} (|weight|), {} (|z|)\n",
                e.projections.join(", "),
                e.true_edges,
                e.absent_edges,
                f(e.auc, 3),
                f(e.auc_z, 3)
            );
            if let Some(w) = &e.weights_record {
                out += &format!(
                    "sign from {w}: {} excitatory, {} inhibitory edges; sign accuracy {}, AUC exc vs inh {}\n",
                    e.excitatory,
                    e.inhibitory,
                    f(e.sign_accuracy, 3),
                    f(e.sign_auc, 3)
                );
            }
        }
        None => out += "no connectivity record of these neurons (`record W.edges`): no AUC\n",
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_hand_cases() {
        assert_eq!(roc_auc(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        assert_eq!(roc_auc(&[1.0, 2.0], &[3.0, 4.0]), 0.0);
        // All tied: one half.
        assert_eq!(roc_auc(&[1.0, 1.0], &[1.0, 1.0, 1.0]), 0.5);
        // P = {1, 3}, N = {2, 3}: pairs (1,2) 0, (1,3) 0, (3,2) 1, (3,3) 0.5 → 1.5 / 4.
        assert_eq!(roc_auc(&[1.0, 3.0], &[2.0, 3.0]), 0.375);
        assert!(roc_auc(&[], &[1.0]).is_nan());
    }

    #[test]
    fn basis_functions_sum_to_one_and_cover_the_window() {
        for kind in [BasisKind::RaisedCosine, BasisKind::Exponential] {
            let b = basis(kind, 4, 30);
            assert_eq!(b.len(), 4);
            for row in &b {
                assert_eq!(row.len(), 30);
                assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                assert!(row.iter().all(|v| *v >= 0.0));
            }
            // Every lag is covered by some function.
            for d in 0..30 {
                assert!(b.iter().any(|r| r[d] > 0.0), "{kind:?} lag {}", d + 1);
            }
        }
    }
}
