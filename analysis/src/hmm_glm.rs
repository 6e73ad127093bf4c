//! HMM-GLM: a hidden Markov model whose states are Poisson generalised linear models of spike
//! counts (Li, Kim, Rodgers, Choi & Wu, "One-hot Generalized Linear Model for Switching Brain
//! State Discovery", ICLR 2024), fitted by expectation–maximisation with three priors on the
//! per-state coupling weights: naive (free), Gaussian (`W_s ~ N(W_0, σ0²)`) and one-hot
//! (each edge of each state is inhibitory, absent or excitatory, with a type prior shared by
//! the states).
//!
//! The model, for units `n`, hidden state `z_t` and counts `x_{t,n}` (one row per bin):
//! `f_{t,n} = (1 - ε) σ(b_n + Σ_{n'≠n} W_{z_t}(n ← n') h_{t,n'}) + ε`, `x_{t,n} ~ Poisson(f_{t,n})`,
//! with `ε = 1e-8` (the reference's lower bound), the bias `b_n` shared by the states, and the
//! covariate `h_{t,n'} = Σ_{k≥1} φ_k x_{t-k,n'}`, `φ_k = φ_1 e^{-(k-1)}`,
//! `φ_1 = (1 - e^{-1}) / (1 - e^{-5})`: the exponential basis of the paper (decay 1, K = 5
//! bins, normalised over the 5 bins) continued as an infinite decaying trace, which is the
//! covariate `specs/hmm_glm.ng` generates with (the 5-bin window differs from it by 0.7 % of
//! the weight). Self-couplings are not part of the model (the reference excludes them).
//!
//! E-step: scaled forward–backward per sequence → posteriors γ_t(s) and Σ_t ξ_t(s, s').
//! M-step: `Π` = row-normalised Σξ floored at e⁻⁸ (the reference's
//! `softmax(clamp(log Π, min = -8))`), the initial distribution from γ_1 likewise, and per unit
//! the γ-weighted Poisson log-likelihood of (b_n, W_1(n, ·), …, W_S(n, ·)) raised by Fisher
//! scoring steps (Newton with the expected information, which is positive definite for this
//! link, where the observed Hessian is not) with a backtracking line search, so every M-step
//! increases the objective.
//!
//! Priors:
//! - **naive**: no prior (a 1e-6 relative damping of the Newton system only).
//! - **Gaussian**: `Σ_s log N(W_s; W_0, σ0²)` added to the objective; after each M-step
//!   `W_0` = the mean of the `W_s` and `σ0` = their root-mean-square deviation from it (MAP of
//!   both; σ0 starts at 1/3 and is kept ≥ 0.01 so that the prior cannot collapse onto W_0).
//! - **one-hot**: `W_s(n ← n') = a · strength`, type `a ∈ {-1, 0, +1}` with a prior
//!   `p(n, n')` over the three types shared by all states, strengths exponential with mean
//!   `m` (learned). The M-step is coordinate ascent on the Fisher-scoring quadratic model of
//!   the objective: for each edge, given the others, the evidence of each type integrates the
//!   strength out in closed form (a Gaussian in the weight times the exponential prior; "none"
//!   is the point mass at 0), the type posterior is `q(k) ∝ p_k(n, n') · evidence_k`, the edge
//!   takes its most probable type (hard assignment, as the paper's evaluation does) and the
//!   most probable strength given that type (none when that is 0). The step is accepted when
//!   it raises the objective `Q + Σ log p(type) + Σ_present [log p(strength) + ½ log(2π/λ)]`
//!   (the MAP objective with the Laplace factor of integrating each present strength out, λ
//!   the information of that weight, fixed within the M-step: it ranks types as the evidence
//!   does); line search, and when the proposed types lower it the sweeps are redone with the
//!   types frozen, so the M-step is a generalised EM step of that objective. The shared prior is the mean of `q`
//!   over the states with a Dirichlet(1.1, 1.1, 1.1) hyper-prior
//!   (`(Σ_s q + 0.1) / (S + 0.3)`); `m` is the mean strength of the present edges.
//!
//! Initialisation (deterministic for a seed): k-means (k-means++ seeding, best of 10) of the
//! units' counts averaged over a ±10-bin window, every 5th bin of the training sequences; the
//! clusters are the first posteriors, `Π` starts at 0.98 on the diagonal as in the paper.
//!
//! Metrics: states of the fit are matched to the true states by the permutation (all S!)
//! with the most agreement between the posterior argmax and the true state on the training
//! sequences; state accuracy is measured with that matching on the test sequences; the weight
//! MSE is over all states and ordered pairs n ≠ n'; edge types are `sign(w)` for the one-hot
//! prior and, for naive and Gaussian weights (never exactly zero), "none" when `|w|` is below
//! two standard errors (a Wald test at about 5 %, the errors from the Fisher information of the
//! fit) — a rule fixed in advance, not tuned on the truth; F1 is the macro mean over the three
//! classes. The held-out log-likelihood is the forward algorithm's `log p(x)` of the test
//! sequences divided by their number of bins (nats per bin, summed over units, including
//! `-log x!`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use crate::numeric::{chol_solve, cholesky, dot, forward, log_erfc_nonneg, log_factorial, par_map};
use crate::rng::Rng;
use crate::trace::{find_traces, Trace, TraceError};

/// The reference's lower bound of the rate.
pub const EPS: f64 = 1e-8;
/// Per-bin decay of the covariate trace (exponential basis with decay 1).
pub const DECAY: f64 = 0.367_879_441_171_442_33; // e^-1
/// The first basis weight, `(1 - e^-1) / (1 - e^-5)`.
pub const PHI1: f64 = 0.636_408_646_558_830_8;
/// Posteriors below this are treated as 0 in the M-step's sums.
const GAMMA_MIN: f64 = 1e-6;
/// Floor of transition probabilities (the reference clamps log Π at -8).
const LOG_FLOOR: f64 = -8.0;

/// The prior on the coupling weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prior {
    Naive,
    Gaussian,
    OneHot,
}

impl Prior {
    pub const ALL: [Prior; 3] = [Prior::Naive, Prior::Gaussian, Prior::OneHot];

    pub fn name(self) -> &'static str {
        match self {
            Prior::Naive => "naive",
            Prior::Gaussian => "gaussian",
            Prior::OneHot => "onehot",
        }
    }
}

/// One sequence: counts and covariates, `bins × units` row-major, and the true states if known.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub bins: usize,
    pub counts: Vec<f64>,
    /// `h_t`: the decaying trace of the counts up to bin `t - 1`.
    pub cov: Vec<f64>,
    pub states: Option<Vec<usize>>,
}

/// The covariate of a whole recording (`bins × units` counts): row `t` is
/// `Σ_{k≥1} φ_k x_{t-k}` (zero in the first row).
pub fn covariates(counts: &[f64], units: usize) -> Vec<f64> {
    let mut cov = vec![0.0; counts.len()];
    let mut trace = vec![0.0; units];
    for (row, out) in counts.chunks(units).zip(cov.chunks_mut(units)) {
        out.copy_from_slice(&trace);
        for (tr, &x) in trace.iter_mut().zip(row) {
            *tr = DECAY * *tr + PHI1 * x;
        }
    }
    cov
}

/// Model parameters. Weights are `states × units × units`, `w[(s * N + n) * N + n']` =
/// `W_s(n ← n')`, diagonal 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub states: usize,
    pub units: usize,
    pub initial: Vec<f64>,
    /// `states × states`, rows sum to 1.
    pub transition: Vec<f64>,
    pub bias: Vec<f64>,
    pub weights: Vec<f64>,
}

impl Params {
    /// Uniform initial distribution, 0.98 on the diagonal of Π, biases and weights zero.
    pub fn new(states: usize, units: usize) -> Params {
        let off = if states > 1 {
            0.02 / (states - 1) as f64
        } else {
            0.0
        };
        let mut transition = vec![off; states * states];
        for s in 0..states {
            transition[s * states + s] = if states > 1 { 0.98 } else { 1.0 };
        }
        Params {
            states,
            units,
            initial: vec![1.0 / states as f64; states],
            transition,
            bias: vec![0.0; units],
            weights: vec![0.0; states * units * units],
        }
    }

    pub fn w(&self, s: usize, n: usize, pre: usize) -> f64 {
        self.weights[(s * self.units + n) * self.units + pre]
    }
}

fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        let e = u.exp();
        e / (1.0 + e)
    }
}

/// `log p(x_t | z_t = s)` for every bin and state: `bins × states`.
pub fn emission_loglik(p: &Params, seq: &Sequence) -> Vec<f64> {
    emission_loglik_with(p, seq, &log_factorials(seq, p.units))
}

/// `Σ_n log x_{t,n}!` of every bin `t` (the likelihood's constant).
fn log_factorials(seq: &Sequence, units: usize) -> Vec<f64> {
    seq.counts
        .chunks(units)
        .map(|row| row.iter().map(|&x| log_factorial(x)).sum())
        .collect()
}

/// [`emission_loglik`] with the sequence's [`log_factorials`].
fn emission_loglik_with(p: &Params, seq: &Sequence, lf: &[f64]) -> Vec<f64> {
    let (n_units, states) = (p.units, p.states);
    let mut out = vec![0.0; seq.bins * states];
    for t in 0..seq.bins {
        let x = &seq.counts[t * n_units..(t + 1) * n_units];
        let h = &seq.cov[t * n_units..(t + 1) * n_units];
        for s in 0..states {
            let mut total = 0.0;
            let rows =
                p.weights[s * n_units * n_units..(s + 1) * n_units * n_units].chunks(n_units);
            for ((row, &b), &x) in rows.zip(&p.bias).zip(x) {
                let u = b + row.iter().zip(h).map(|(w, h)| w * h).sum::<f64>();
                let f = (1.0 - EPS) * sigmoid(u) + EPS;
                total += x * f.ln() - f;
            }
            out[t * states + s] = total - lf[t];
        }
    }
    out
}

/// Posteriors of one sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Posterior {
    /// `bins × states`.
    pub gamma: Vec<f64>,
    /// `Σ_t ξ_t(s, s')`, `states × states`.
    pub xi: Vec<f64>,
    /// `log p(x_{1:T})`.
    pub loglik: f64,
}

/// Scaled forward–backward: `initial` (S), `transition` (S × S), `logb` (T × S) emission
/// log-likelihoods.
pub fn forward_backward(initial: &[f64], transition: &[f64], logb: &[f64]) -> Posterior {
    let s_n = initial.len();
    let t_n = logb.len() / s_n;
    let mut b = vec![0.0; t_n * s_n];
    let mut shift = vec![0.0; t_n];
    for t in 0..t_n {
        let row = &logb[t * s_n..(t + 1) * s_n];
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        shift[t] = m;
        for s in 0..s_n {
            b[t * s_n + s] = (row[s] - m).exp();
        }
    }
    let mut alpha = vec![0.0; t_n * s_n];
    let mut c = vec![0.0; t_n];
    let mut loglik = 0.0;
    for t in 0..t_n {
        for j in 0..s_n {
            let prior = if t == 0 {
                initial[j]
            } else {
                (0..s_n)
                    .map(|i| alpha[(t - 1) * s_n + i] * transition[i * s_n + j])
                    .sum()
            };
            alpha[t * s_n + j] = prior * b[t * s_n + j];
        }
        let sum: f64 = alpha[t * s_n..(t + 1) * s_n].iter().sum();
        let sum = sum.max(f64::MIN_POSITIVE);
        c[t] = sum;
        for a in &mut alpha[t * s_n..(t + 1) * s_n] {
            *a /= sum;
        }
        loglik += sum.ln() + shift[t];
    }
    let mut beta = vec![1.0; t_n * s_n];
    let mut xi = vec![0.0; s_n * s_n];
    for t in (0..t_n.saturating_sub(1)).rev() {
        for i in 0..s_n {
            let mut v = 0.0;
            for j in 0..s_n {
                v += transition[i * s_n + j] * b[(t + 1) * s_n + j] * beta[(t + 1) * s_n + j];
            }
            beta[t * s_n + i] = v / c[t + 1];
        }
        for i in 0..s_n {
            for j in 0..s_n {
                xi[i * s_n + j] += alpha[t * s_n + i]
                    * transition[i * s_n + j]
                    * b[(t + 1) * s_n + j]
                    * beta[(t + 1) * s_n + j]
                    / c[t + 1];
            }
        }
    }
    let mut gamma = vec![0.0; t_n * s_n];
    for t in 0..t_n {
        let row = &mut gamma[t * s_n..(t + 1) * s_n];
        let mut sum = 0.0;
        for s in 0..s_n {
            row[s] = alpha[t * s_n + s] * beta[t * s_n + s];
            sum += row[s];
        }
        for g in row.iter_mut() {
            *g /= sum.max(f64::MIN_POSITIVE);
        }
    }
    Posterior { gamma, xi, loglik }
}

/// Row-normalise non-negative `counts` (rows of `width`), flooring each probability at e⁻⁸
/// and normalising again.
fn normalise_floored(counts: &mut [f64], width: usize) {
    let floor = LOG_FLOOR.exp();
    for row in counts.chunks_mut(width) {
        let sum: f64 = row.iter().sum();
        for v in row.iter_mut() {
            *v = if sum > 0.0 {
                *v / sum
            } else {
                1.0 / width as f64
            };
            *v = v.max(floor);
        }
        let sum: f64 = row.iter().sum();
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
}

/// State of the prior across EM iterations.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorState {
    pub prior: Prior,
    /// Gaussian: `W_0` (units × units) and σ0.
    pub w0: Vec<f64>,
    pub sigma0: f64,
    /// One-hot: `p(n ← n')` over (inhibitory, none, excitatory), units × units.
    pub type_prior: Vec<[f64; 3]>,
    /// One-hot: mean strength of the exponential strength prior.
    pub strength_mean: f64,
}

impl PriorState {
    pub fn new(prior: Prior, units: usize) -> PriorState {
        PriorState {
            prior,
            w0: vec![0.0; units * units],
            sigma0: 1.0 / 3.0,
            type_prior: vec![[1.0 / 3.0; 3]; units * units],
            strength_mean: 1.0,
        }
    }
}

/// Sufficient pieces of one unit's γ-weighted GLM: for each (sequence, bin) the counts,
/// covariates and weights are read from the data directly.
struct RowProblem<'a> {
    n: usize,
    units: usize,
    states: usize,
    seqs: &'a [&'a Sequence],
    gammas: &'a [Vec<f64>],
}

impl RowProblem<'_> {
    fn dim(&self) -> usize {
        1 + self.states * (self.units - 1)
    }

    /// Index in θ of `W_s(n ← pre)`.
    fn idx(&self, s: usize, pre: usize) -> usize {
        1 + s * (self.units - 1) + if pre < self.n { pre } else { pre - 1 }
    }

    fn theta(&self, p: &Params) -> Vec<f64> {
        let mut th = vec![0.0; self.dim()];
        th[0] = p.bias[self.n];
        for s in 0..self.states {
            for pre in (0..self.units).filter(|&j| j != self.n) {
                th[self.idx(s, pre)] = p.w(s, self.n, pre);
            }
        }
        th
    }

    fn store(&self, th: &[f64], p: &mut Params) {
        p.bias[self.n] = th[0];
        let u = self.units;
        for s in 0..self.states {
            for pre in (0..u).filter(|&j| j != self.n) {
                p.weights[(s * u + self.n) * u + pre] = th[self.idx(s, pre)];
            }
        }
    }

    /// The γ-weighted expected log-likelihood (without `log x!`); with `level` ≥ 1 also its
    /// gradient, with 2 also the expected information (upper triangle filled, then mirrored).
    fn evaluate(&self, th: &[f64], level: u8) -> (f64, Vec<f64>, Vec<f64>) {
        let d = self.dim();
        let (u_n, n) = (self.units, self.n);
        let (gradient, fisher) = (level >= 1, level >= 2);
        let mut obj = 0.0;
        let mut grad = if gradient { vec![0.0; d] } else { Vec::new() };
        let mut info = if fisher { vec![0.0; d * d] } else { Vec::new() };
        let mut hrow = vec![0.0; u_n - 1];
        for (seq, gamma) in self.seqs.iter().zip(self.gammas) {
            for t in 0..seq.bins {
                let h = &seq.cov[t * u_n..(t + 1) * u_n];
                hrow[..n].copy_from_slice(&h[..n]);
                hrow[n..].copy_from_slice(&h[n + 1..]);
                let x = seq.counts[t * u_n + n];
                for s in 0..self.states {
                    let g = gamma[t * self.states + s];
                    if g < GAMMA_MIN {
                        continue;
                    }
                    let off = 1 + s * (u_n - 1);
                    let w = &th[off..off + u_n - 1];
                    let u = th[0] + w.iter().zip(&hrow).map(|(a, b)| a * b).sum::<f64>();
                    let sg = sigmoid(u);
                    let f = (1.0 - EPS) * sg + EPS;
                    obj += g * (x * f.ln() - f);
                    if gradient {
                        let df = (1.0 - EPS) * sg * (1.0 - sg);
                        let r = g * (x / f - 1.0) * df;
                        grad[0] += r;
                        if !fisher {
                            for (gr, &hk) in grad[off..off + u_n - 1].iter_mut().zip(&hrow) {
                                *gr += r * hk;
                            }
                            continue;
                        }
                        let fw = g * df * df / f;
                        info[0] += fw;
                        let m = hrow.len();
                        for (k, &hk) in hrow.iter().enumerate() {
                            grad[off + k] += r * hk;
                            let a = fw * hk;
                            info[off + k] += a;
                            let base = (off + k) * d + off;
                            for (dst, &hl) in info[base + k..base + m].iter_mut().zip(&hrow[k..]) {
                                *dst += a * hl;
                            }
                        }
                    }
                }
            }
        }
        if fisher {
            for i in 0..d {
                for j in 0..i {
                    info[i * d + j] = info[j * d + i];
                }
            }
        }
        (obj, grad, info)
    }

    /// The log-prior of θ for this unit (up to constants).
    /// One-hot: with `occam` (the information of each θ coordinate, fixed within an M-step)
    /// each present edge also pays `½ log(2π / λ)`, the Laplace approximation of integrating
    /// its strength out, so that the objective ranks types as their evidence does.
    fn log_prior(&self, th: &[f64], ps: &PriorState, occam: Option<&[f64]>) -> f64 {
        let u = self.units;
        let mut lp = 0.0;
        for s in 0..self.states {
            for pre in (0..u).filter(|&j| j != self.n) {
                let w = th[self.idx(s, pre)];
                match ps.prior {
                    Prior::Naive => {}
                    Prior::Gaussian => {
                        let d = w - ps.w0[self.n * u + pre];
                        lp -= d * d / (2.0 * ps.sigma0 * ps.sigma0);
                    }
                    Prior::OneHot => {
                        let p = ps.type_prior[self.n * u + pre];
                        let beta = 1.0 / ps.strength_mean;
                        let lam = occam.map_or(0.0, |o| o[self.idx(s, pre)]);
                        let laplace = if lam > 1e-12 {
                            0.5 * (std::f64::consts::TAU / lam).ln()
                        } else {
                            0.0
                        };
                        lp += if w > 0.0 {
                            p[2].ln() + beta.ln() - beta * w + laplace
                        } else if w < 0.0 {
                            p[0].ln() + beta.ln() + beta * w + laplace
                        } else {
                            p[1].ln()
                        };
                    }
                }
            }
        }
        lp
    }
}

/// Solve `(info + damping) x = g`, raising the damping until the matrix factors.
fn damped_solve(info: &[f64], extra_diag: &[f64], g: &[f64]) -> Vec<f64> {
    let d = g.len();
    let scale = (0..d).map(|i| info[i * d + i]).sum::<f64>() / d as f64;
    let mut lambda = 1e-6 * scale.max(1e-12);
    let mut a = vec![0.0; d * d];
    loop {
        a.copy_from_slice(info);
        for i in 0..d {
            a[i * d + i] += extra_diag[i] + lambda;
        }
        if cholesky(&mut a, d) {
            let mut x = g.to_vec();
            chol_solve(&a, d, &mut x);
            return x;
        }
        lambda *= 100.0;
        if lambda > 1e12 {
            return vec![0.0; d];
        }
    }
}

/// `log Φ(z)`, the standard normal CDF, accurate in the far left tail.
fn log_norm_cdf(z: f64) -> f64 {
    let x = -z / std::f64::consts::SQRT_2; // Φ(z) = erfc(x) / 2
    if x >= 0.0 {
        log_erfc_nonneg(x) - std::f64::consts::LN_2
    } else {
        // erfc(x) = 2 - erfc(-x).
        (1.0 - 0.5 * log_erfc_nonneg(-x).exp()).ln()
    }
}

/// One edge's type choice on the quadratic model `-λ/2 (w - μ)²` with the exponential
/// strength prior (rate β) and type prior `p`: the posterior over (inh, none, exc) and the
/// weight (0, or the most probable strength given the chosen type, signed).
pub fn edge_type_posterior(mu: f64, lambda: f64, beta: f64, p: [f64; 3]) -> ([f64; 3], f64) {
    if lambda.is_nan() || lambda <= 1e-12 {
        // No information about this weight (its state is never visited): absent.
        return (p, 0.0);
    }
    let sq = lambda.sqrt();
    let common =
        beta.ln() + beta * beta / (2.0 * lambda) + 0.5 * (std::f64::consts::TAU / lambda).ln();
    let m_exc = mu - beta / lambda;
    let m_inh = -mu - beta / lambda;
    let l_exc = common - beta * mu + log_norm_cdf(m_exc * sq);
    let l_inh = common + beta * mu + log_norm_cdf(m_inh * sq);
    let l_none = -0.5 * lambda * mu * mu;
    let logs = [p[0].ln() + l_inh, p[1].ln() + l_none, p[2].ln() + l_exc];
    let m = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut q = logs.map(|l| (l - m).exp());
    let sum: f64 = q.iter().sum();
    for v in &mut q {
        *v /= sum;
    }
    let k = (0..3).max_by(|&a, &b| q[a].total_cmp(&q[b])).unwrap_or(1);
    // The most probable strength given the type (the mode of N(m, 1/λ) on w > 0: the maximum
    // of the MAP objective's quadratic model); 0 when the mode is at the boundary.
    let w = match k {
        0 => -m_inh.max(0.0),
        2 => m_exc.max(0.0),
        _ => 0.0,
    };
    (q, w)
}

/// Options of a fit.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    pub states: usize,
    /// Largest number of EM iterations.
    pub iterations: usize,
    /// Fisher-scoring steps per M-step.
    pub newton_steps: usize,
    /// Stop when the training log-likelihood rises by less than this per bin.
    pub tolerance: f64,
    pub seed: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            states: 5,
            iterations: 50,
            newton_steps: 2,
            tolerance: 1e-6,
            seed: 1,
        }
    }
}

/// A fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub prior: Prior,
    pub params: Params,
    pub prior_state: PriorState,
    /// Standard errors of the weights (same layout as `params.weights`; 0 on the diagonal).
    pub weight_se: Vec<f64>,
    /// Training log-likelihood after each EM iteration (nats, all training bins).
    pub loglik_trace: Vec<f64>,
    pub iterations: usize,
    pub seconds_per_iteration: f64,
}

/// M-step of one unit: Fisher-scoring steps (naive, Gaussian) or coordinate ascent with type
/// choice (one-hot), each with a backtracking line search. Returns the one-hot type
/// posteriors of this unit's edges (`states × units`, unused otherwise).
fn mstep_unit(
    rp: &RowProblem,
    p: &Params,
    ps: &PriorState,
    steps: usize,
) -> (Vec<f64>, Vec<[f64; 3]>) {
    let d = rp.dim();
    let u = rp.units;
    let mut th = rp.theta(p);
    let mut qs = vec![[0.0, 1.0, 0.0]; rp.states * u];
    // The expected information of the first step serves all steps of this M-step (its cost
    // dominates; the gradient is fresh each step and the line search keeps every step uphill).
    let mut info = Vec::new();
    for _ in 0..steps {
        let (obj, grad, new_info) = rp.evaluate(&th, if info.is_empty() { 2 } else { 1 });
        if info.is_empty() {
            info = new_info;
        }
        let occam: Vec<f64> = (0..d).map(|i| info[i * d + i]).collect();
        let occam = (ps.prior == Prior::OneHot).then_some(&occam[..]);
        let cur = obj + rp.log_prior(&th, ps, occam);
        let mut extra = vec![0.0; d];
        let mut g = grad.clone();
        let target: Vec<f64> = match ps.prior {
            Prior::Naive | Prior::Gaussian => {
                if ps.prior == Prior::Gaussian {
                    let prec = 1.0 / (ps.sigma0 * ps.sigma0);
                    for s in 0..rp.states {
                        for pre in (0..u).filter(|&j| j != rp.n) {
                            let i = rp.idx(s, pre);
                            extra[i] = prec;
                            g[i] -= prec * (th[i] - ps.w0[rp.n * u + pre]);
                        }
                    }
                }
                let step = damped_solve(&info, &extra, &g);
                th.iter().zip(&step).map(|(a, b)| a + b).collect()
            }
            Prior::OneHot => onehot_sweeps(rp, &th, &grad, &info, ps, false, &mut qs),
        };
        // Backtracking along the segment th → target. One-hot: the types are proposed by
        // their evidence and the step must still raise the MAP objective (generalised EM);
        // when it does not within 8 halvings, the sweeps are redone with the types frozen
        // (a coordinate ascent of the quadratic model on their support, an ascent direction).
        let mut candidates = vec![(target, 20)];
        if ps.prior == Prior::OneHot {
            candidates[0].1 = 8;
            let mut unused = qs.clone();
            let frozen = onehot_sweeps(rp, &th, &grad, &info, ps, true, &mut unused);
            candidates.push((frozen, 20));
        }
        let mut accepted = false;
        'search: for (target, halvings) in candidates {
            let mut alpha = 1.0;
            for _ in 0..halvings {
                let cand: Vec<f64> = th
                    .iter()
                    .zip(&target)
                    .map(|(a, b)| a + alpha * (b - a))
                    .collect();
                let (o, _, _) = rp.evaluate(&cand, 0);
                let val = o + rp.log_prior(&cand, ps, occam);
                if val.is_finite() && val >= cur {
                    th = cand;
                    accepted = true;
                    break 'search;
                }
                alpha *= 0.5;
            }
        }
        if !accepted {
            break;
        }
    }
    (th, qs)
}

/// One-hot M-step proposal: three sweeps of coordinate ascent on the quadratic model
/// `g·(θ - th) - ½ (θ - th)ᵀ F (θ - th)` plus the prior; each edge takes its most probable
/// type and strength (`edge_type_posterior`, the type posteriors into `qs`), or with `frozen`
/// keeps its type (absent edges stay 0, present ones keep their sign, strength ≥ 1e-6).
fn onehot_sweeps(
    rp: &RowProblem,
    th: &[f64],
    grad: &[f64],
    info: &[f64],
    ps: &PriorState,
    frozen: bool,
    qs: &mut [[f64; 3]],
) -> Vec<f64> {
    let (d, u) = (rp.dim(), rp.units);
    let beta = 1.0 / ps.strength_mean;
    let mut new = th.to_vec();
    // r = gradient of the quadratic model at `new`.
    let mut r = grad.to_vec();
    for _sweep in 0..3 {
        for i in 0..d {
            let lam = info[i * d + i];
            let mu = if lam > 1e-12 {
                new[i] + r[i] / lam
            } else {
                new[i]
            };
            let v = if i == 0 {
                mu
            } else if frozen {
                let b = if lam > 1e-12 { beta / lam } else { 0.0 };
                if th[i] > 0.0 {
                    (mu - b).max(1e-6)
                } else if th[i] < 0.0 {
                    (mu + b).min(-1e-6)
                } else {
                    0.0
                }
            } else {
                let k = i - 1;
                let (s, j) = (k / (u - 1), k % (u - 1));
                let pre = if j < rp.n { j } else { j + 1 };
                let (q, w) = edge_type_posterior(mu, lam, beta, ps.type_prior[rp.n * u + pre]);
                qs[s * u + pre] = q;
                w
            };
            let delta = v - new[i];
            if delta != 0.0 {
                new[i] = v;
                for (rr, row) in r.iter_mut().zip(info.chunks(d)) {
                    *rr -= row[i] * delta;
                }
            }
        }
    }
    new
}

/// Standard errors of one unit's weights from the Fisher information (plus the Gaussian
/// prior's precision) at the fit.
fn unit_standard_errors(rp: &RowProblem, p: &Params, ps: &PriorState) -> Vec<f64> {
    let d = rp.dim();
    let th = rp.theta(p);
    let (_, _, mut info) = rp.evaluate(&th, 2);
    let scale = (0..d).map(|i| info[i * d + i]).sum::<f64>() / d as f64;
    for i in 0..d {
        info[i * d + i] += 1e-9 * scale.max(1e-12);
        if i > 0 && ps.prior == Prior::Gaussian {
            info[i * d + i] += 1.0 / (ps.sigma0 * ps.sigma0);
        }
    }
    let mut out = vec![f64::INFINITY; d];
    if cholesky(&mut info, d) {
        // (F⁻¹)_ii = |L⁻¹ e_i|².
        let mut e = vec![0.0; d];
        for (i, o) in out.iter_mut().enumerate() {
            e.fill(0.0);
            e[i] = 1.0;
            forward(&info, d, &mut e, i);
            *o = dot(&e[i..], &e[i..]).sqrt();
        }
    }
    out
}

/// Initial posteriors: k-means of windowed mean counts (see the module documentation).
pub fn kmeans_init(seqs: &[&Sequence], units: usize, states: usize, seed: u64) -> Vec<Vec<f64>> {
    const HALF: usize = 10;
    const STRIDE: usize = 5;
    let features = |seq: &Sequence| -> Vec<Vec<f64>> {
        let mut prefix = vec![0.0; (seq.bins + 1) * units];
        for t in 0..seq.bins {
            for n in 0..units {
                prefix[(t + 1) * units + n] = prefix[t * units + n] + seq.counts[t * units + n];
            }
        }
        (0..seq.bins)
            .map(|t| {
                let (a, b) = (t.saturating_sub(HALF), (t + HALF + 1).min(seq.bins));
                (0..units)
                    .map(|n| (prefix[b * units + n] - prefix[a * units + n]) / (b - a) as f64)
                    .collect()
            })
            .collect()
    };
    let all: Vec<Vec<Vec<f64>>> = seqs.iter().map(|s| features(s)).collect();
    let sample: Vec<&Vec<f64>> = all.iter().flat_map(|f| f.iter().step_by(STRIDE)).collect();
    let dist = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>();
    let mut rng = Rng(seed ^ 0x6B6D_6561_6E73);
    let mut best: Option<(f64, Vec<Vec<f64>>)> = None;
    for _ in 0..10 {
        if sample.is_empty() {
            break;
        }
        // k-means++ seeding.
        let mut centres: Vec<Vec<f64>> =
            vec![sample[(rng.uniform() * sample.len() as f64) as usize % sample.len()].clone()];
        let mut d2: Vec<f64> = sample.iter().map(|x| dist(x, &centres[0])).collect();
        while centres.len() < states {
            let total: f64 = d2.iter().sum();
            let mut pick = rng.uniform() * total;
            let mut chosen = sample.len() - 1;
            for (i, &v) in d2.iter().enumerate() {
                if pick < v {
                    chosen = i;
                    break;
                }
                pick -= v;
            }
            centres.push(sample[chosen].clone());
            for (dd, x) in d2.iter_mut().zip(&sample) {
                *dd = dd.min(dist(x, centres.last().unwrap()));
            }
        }
        let mut inertia = 0.0;
        for _ in 0..50 {
            let mut sums = vec![vec![0.0; units]; states];
            let mut counts = vec![0usize; states];
            inertia = 0.0;
            for x in &sample {
                let (k, dk) = centres
                    .iter()
                    .map(|c| dist(x, c))
                    .enumerate()
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap();
                inertia += dk;
                counts[k] += 1;
                for (s, v) in sums[k].iter_mut().zip(x.iter()) {
                    *s += v;
                }
            }
            let mut moved = false;
            for k in 0..states {
                if counts[k] > 0 {
                    let c: Vec<f64> = sums[k].iter().map(|s| s / counts[k] as f64).collect();
                    if c != centres[k] {
                        moved = true;
                    }
                    centres[k] = c;
                }
            }
            if !moved {
                break;
            }
        }
        if best.as_ref().is_none_or(|(b, _)| inertia < *b) {
            best = Some((inertia, centres));
        }
    }
    let centres = best
        .map(|b| b.1)
        .unwrap_or_else(|| vec![vec![0.0; units]; states]);
    all.iter()
        .map(|f| {
            let mut g = vec![0.0; f.len() * states];
            for (t, x) in f.iter().enumerate() {
                let k = centres
                    .iter()
                    .map(|c| dist(x, c))
                    .enumerate()
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .map_or(0, |m| m.0);
                g[t * states + k] = 1.0;
            }
            g
        })
        .collect()
}

/// Fit the HMM-GLM with `prior` to the training sequences. `progress` receives one line per
/// EM iteration.
pub fn fit(
    train: &[&Sequence],
    units: usize,
    prior: Prior,
    opts: &FitOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Fit, TraceError> {
    if opts.states == 0 {
        return Err(TraceError::Option("--states must be at least 1".into()));
    }
    if units < 2 {
        return Err(TraceError::Option(format!(
            "the counts have {units} unit(s); a coupling model needs at least 2"
        )));
    }
    if train.is_empty() {
        return Err(TraceError::Option("no training sequences".into()));
    }
    let s_n = opts.states;
    let mut p = Params::new(s_n, units);
    let mut ps = PriorState::new(prior, units);
    // Bias from the mean count.
    let total_bins: usize = train.iter().map(|s| s.bins).sum();
    for n in 0..units {
        let m: f64 = train
            .iter()
            .map(|s| (0..s.bins).map(|t| s.counts[t * units + n]).sum::<f64>())
            .sum::<f64>()
            / total_bins.max(1) as f64;
        let m = m.clamp(1e-4, 1.0 - 1e-4);
        p.bias[n] = (m / (1.0 - m)).ln();
    }
    let mut gammas = kmeans_init(train, units, s_n, opts.seed);
    // First M-step from the clusters: more scoring steps (the weights start at 0).
    mstep(train, &gammas, None, &mut p, &mut ps, 3 * opts.newton_steps);
    let mut loglik_trace = Vec::new();
    let lfs: Vec<Vec<f64>> = train.iter().map(|s| log_factorials(s, units)).collect();
    let start = Instant::now();
    let mut iterations = 0;
    for it in 0..opts.iterations {
        let mut ll = 0.0;
        let mut xi_total = vec![0.0; s_n * s_n];
        let mut first = vec![0.0; s_n];
        let posts = par_map(train.len(), 0, |k| {
            let logb = emission_loglik_with(&p, train[k], &lfs[k]);
            forward_backward(&p.initial, &p.transition, &logb)
        });
        for (k, post) in posts.into_iter().enumerate() {
            ll += post.loglik;
            for (a, b) in xi_total.iter_mut().zip(&post.xi) {
                *a += b;
            }
            for (a, b) in first.iter_mut().zip(&post.gamma[..s_n]) {
                *a += b;
            }
            gammas[k] = post.gamma;
        }
        mstep(
            train,
            &gammas,
            Some((&xi_total, &first)),
            &mut p,
            &mut ps,
            opts.newton_steps,
        );
        iterations = it + 1;
        progress(&format!(
            "hmm-glm {}: iteration {} log-likelihood {:.4} per bin",
            prior.name(),
            it + 1,
            ll / total_bins as f64
        ));
        let done = loglik_trace
            .last()
            .is_some_and(|&prev: &f64| (ll - prev).abs() / (total_bins as f64) < opts.tolerance);
        loglik_trace.push(ll);
        if done {
            break;
        }
    }
    let seconds_per_iteration = start.elapsed().as_secs_f64() / iterations.max(1) as f64;
    // Standard errors at the fit, with the last posteriors.
    let mut weight_se = vec![0.0; s_n * units * units];
    let ses = par_map(units, 0, |n| {
        let rp = RowProblem {
            n,
            units,
            states: s_n,
            seqs: train,
            gammas: &gammas,
        };
        unit_standard_errors(&rp, &p, &ps)
    });
    for (n, se) in ses.into_iter().enumerate() {
        let rp = RowProblem {
            n,
            units,
            states: s_n,
            seqs: train,
            gammas: &gammas,
        };
        for s in 0..s_n {
            for pre in (0..units).filter(|&j| j != n) {
                weight_se[(s * units + n) * units + pre] = se[rp.idx(s, pre)];
            }
        }
    }
    Ok(Fit {
        prior,
        params: p,
        prior_state: ps,
        weight_se,
        loglik_trace,
        iterations,
        seconds_per_iteration,
    })
}

/// The M-step: transitions and initial distribution (when `xi` is given), then each unit's
/// GLM, then the prior's own parameters.
fn mstep(
    train: &[&Sequence],
    gammas: &[Vec<f64>],
    xi: Option<(&[f64], &[f64])>,
    p: &mut Params,
    ps: &mut PriorState,
    steps: usize,
) {
    let (s_n, units) = (p.states, p.units);
    if let Some((xi, first)) = xi {
        let mut t = xi.to_vec();
        normalise_floored(&mut t, s_n);
        p.transition = t;
        let mut f = first.to_vec();
        normalise_floored(&mut f, s_n);
        p.initial = f;
    }
    let mut q_all = vec![[0.0; 3]; s_n * units * units];
    let snapshot = p.clone();
    let rows = par_map(units, 0, |n| {
        let rp = RowProblem {
            n,
            units,
            states: s_n,
            seqs: train,
            gammas,
        };
        mstep_unit(&rp, &snapshot, ps, steps)
    });
    for (n, (th, qs)) in rows.into_iter().enumerate() {
        let rp = RowProblem {
            n,
            units,
            states: s_n,
            seqs: train,
            gammas,
        };
        rp.store(&th, p);
        for s in 0..s_n {
            for pre in 0..units {
                q_all[(s * units + n) * units + pre] = qs[s * units + pre];
            }
        }
    }
    match ps.prior {
        Prior::Naive => {}
        Prior::Gaussian => {
            let mut ss = 0.0;
            let mut count = 0usize;
            for n in 0..units {
                for pre in (0..units).filter(|&j| j != n) {
                    let mean = (0..s_n).map(|s| p.w(s, n, pre)).sum::<f64>() / s_n as f64;
                    ps.w0[n * units + pre] = mean;
                    for s in 0..s_n {
                        let d = p.w(s, n, pre) - mean;
                        ss += d * d;
                        count += 1;
                    }
                }
            }
            ps.sigma0 = (ss / count.max(1) as f64).sqrt().max(0.01);
        }
        Prior::OneHot => {
            for n in 0..units {
                for pre in (0..units).filter(|&j| j != n) {
                    let mut c = [0.1; 3];
                    for s in 0..s_n {
                        let q = q_all[(s * units + n) * units + pre];
                        for k in 0..3 {
                            c[k] += q[k];
                        }
                    }
                    let sum: f64 = c.iter().sum();
                    ps.type_prior[n * units + pre] = c.map(|v| v / sum);
                }
            }
            let strengths: Vec<f64> = p
                .weights
                .iter()
                .filter(|w| **w != 0.0)
                .map(|w| w.abs())
                .collect();
            if !strengths.is_empty() {
                ps.strength_mean =
                    (strengths.iter().sum::<f64>() / strengths.len() as f64).clamp(1e-3, 1e3);
            }
        }
    }
}

/// Posterior argmax states and `log p(x)` of one sequence under `p`.
pub fn decode(p: &Params, seq: &Sequence) -> (Vec<usize>, f64) {
    let logb = emission_loglik(p, seq);
    let post = forward_backward(&p.initial, &p.transition, &logb);
    let s_n = p.states;
    let states = post
        .gamma
        .chunks(s_n)
        .map(|g| (0..s_n).max_by(|&a, &b| g[a].total_cmp(&g[b])).unwrap_or(0))
        .collect();
    (states, post.loglik)
}

/// All permutations of `0..n` (n ≤ 8).
fn permutations(n: usize) -> Vec<Vec<usize>> {
    fn rec(cur: &mut Vec<usize>, used: &mut [bool], out: &mut Vec<Vec<usize>>) {
        if cur.len() == used.len() {
            out.push(cur.clone());
            return;
        }
        for k in 0..used.len() {
            if !used[k] {
                used[k] = true;
                cur.push(k);
                rec(cur, used, out);
                cur.pop();
                used[k] = false;
            }
        }
    }
    let mut out = Vec::new();
    rec(&mut Vec::new(), &mut vec![false; n], &mut out);
    out
}

/// The permutation `perm[learned] = true` maximising the agreement of `confusion`
/// (`confusion[true * S + learned]`).
pub fn best_permutation(confusion: &[usize], s_n: usize) -> Vec<usize> {
    permutations(s_n)
        .into_iter()
        .max_by_key(|perm| {
            perm.iter()
                .enumerate()
                .map(|(l, &t)| confusion[t * s_n + l])
                .sum::<usize>()
        })
        .unwrap_or_default()
}

/// Macro F1 over the classes present in truth or prediction (labels 0..classes).
pub fn macro_f1(truth: &[usize], pred: &[usize], classes: usize) -> f64 {
    let mut f1s = Vec::new();
    for c in 0..classes {
        let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
        for (&t, &p) in truth.iter().zip(pred) {
            match (t == c, p == c) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fn_ += 1,
                _ => {}
            }
        }
        if tp + fp + fn_ > 0 {
            f1s.push(2.0 * tp as f64 / (2 * tp + fp + fn_) as f64);
        }
    }
    if f1s.is_empty() {
        f64::NAN
    } else {
        f1s.iter().sum::<f64>() / f1s.len() as f64
    }
}

/// Metrics of one fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Held-out log-likelihood per bin (nats), NaN without test sequences.
    pub test_loglik_per_bin: f64,
    pub train_loglik_per_bin: f64,
    /// `perm[learned state] = true state`, when the truth is known and has as many states.
    pub permutation: Option<Vec<usize>>,
    pub train_state_accuracy: Option<f64>,
    pub test_state_accuracy: Option<f64>,
    pub weight_mse: Option<f64>,
    pub edge_f1: Option<f64>,
    /// Edge-type counts of the fit: (inhibitory, none, excitatory).
    pub edge_counts: [usize; 3],
}

/// The learned edge type of `W_s(n ← pre)`: 0 inhibitory, 1 none, 2 excitatory.
pub fn learned_type(fit: &Fit, s: usize, n: usize, pre: usize) -> usize {
    let u = fit.params.units;
    let w = fit.params.w(s, n, pre);
    let zero = match fit.prior {
        Prior::OneHot => w == 0.0,
        _ => w.abs() < 2.0 * fit.weight_se[(s * u + n) * u + pre],
    };
    if zero {
        1
    } else if w > 0.0 {
        2
    } else {
        0
    }
}

fn true_type(w: f64) -> usize {
    if w > 0.0 {
        2
    } else if w < 0.0 {
        0
    } else {
        1
    }
}

/// Evaluate a fit on the training and test sequences against the truth (`true_weights`:
/// `true_states × units × units`, when known).
pub fn evaluate(
    fit: &Fit,
    train: &[&Sequence],
    test: &[&Sequence],
    true_weights: Option<&[f64]>,
    true_states: Option<usize>,
) -> Metrics {
    let p = &fit.params;
    let (s_n, u) = (p.states, p.units);
    let mut confusion = vec![0usize; s_n * s_n];
    let mut train_ll = 0.0;
    let mut train_bins = 0;
    let matchable = true_states == Some(s_n) && s_n <= 8;
    let mut train_decoded = Vec::new();
    for seq in train {
        let (z, ll) = decode(p, seq);
        train_ll += ll;
        train_bins += seq.bins;
        if let (true, Some(truth)) = (matchable, &seq.states) {
            for (&l, &t) in z.iter().zip(truth) {
                if t < s_n {
                    confusion[t * s_n + l] += 1;
                }
            }
        }
        train_decoded.push(z);
    }
    let has_truth = matchable && train.iter().all(|s| s.states.is_some());
    let permutation = has_truth.then(|| best_permutation(&confusion, s_n));
    let accuracy = |seqs: &[&Sequence], decoded: &[Vec<usize>], perm: &[usize]| -> Option<f64> {
        let (mut ok, mut all) = (0usize, 0usize);
        for (seq, z) in seqs.iter().zip(decoded) {
            let truth = seq.states.as_ref()?;
            for (&l, &t) in z.iter().zip(truth) {
                ok += usize::from(perm[l] == t);
                all += 1;
            }
        }
        (all > 0).then(|| ok as f64 / all as f64)
    };
    let mut test_ll = 0.0;
    let mut test_bins = 0;
    let mut test_decoded = Vec::new();
    for seq in test {
        let (z, ll) = decode(p, seq);
        test_ll += ll;
        test_bins += seq.bins;
        test_decoded.push(z);
    }
    let train_state_accuracy = permutation
        .as_ref()
        .and_then(|perm| accuracy(train, &train_decoded, perm));
    let test_state_accuracy = permutation
        .as_ref()
        .and_then(|perm| accuracy(test, &test_decoded, perm));
    let mut edge_counts = [0usize; 3];
    for s in 0..s_n {
        for n in 0..u {
            for pre in (0..u).filter(|&j| j != n) {
                edge_counts[learned_type(fit, s, n, pre)] += 1;
            }
        }
    }
    let (weight_mse, edge_f1) = match (&permutation, true_weights) {
        (Some(perm), Some(tw)) if tw.len() == s_n * u * u => {
            let (mut se, mut count) = (0.0, 0usize);
            let (mut truth, mut pred) = (Vec::new(), Vec::new());
            for (l, &t) in perm.iter().enumerate() {
                for n in 0..u {
                    for pre in (0..u).filter(|&j| j != n) {
                        let wt = tw[(t * u + n) * u + pre];
                        let d = p.w(l, n, pre) - wt;
                        se += d * d;
                        count += 1;
                        truth.push(true_type(wt));
                        pred.push(learned_type(fit, l, n, pre));
                    }
                }
            }
            (Some(se / count as f64), Some(macro_f1(&truth, &pred, 3)))
        }
        _ => (None, None),
    };
    Metrics {
        test_loglik_per_bin: if test_bins > 0 {
            test_ll / test_bins as f64
        } else {
            f64::NAN
        },
        train_loglik_per_bin: train_ll / train_bins.max(1) as f64,
        permutation,
        train_state_accuracy,
        test_state_accuracy,
        weight_mse,
        edge_f1,
        edge_counts,
    }
}

/// Which records hold the data and the truth, and how the recordings become sequences.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// State record of the per-bin counts (one row per bin, one column per unit).
    pub counts: String,
    /// Regime of the true hidden state (optional in the trace).
    pub regime: String,
    /// State record of the true weights, one row per regime state (optional).
    pub weights: String,
    /// Projection whose `edges` record says which weight is which pair (optional).
    pub projection: String,
    /// Bins per sequence (0: each trace is one sequence).
    pub length: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            counts: "Units.x".into(),
            regime: "brain".into(),
            weights: "W.w".into(),
            projection: "W".into(),
            length: 2000,
        }
    }
}

/// Sequences and the ground truth read from a trace or a directory of traces (an experiment's
/// `seed-N/`, [`find_traces`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub traces: Vec<PathBuf>,
    pub units: usize,
    pub sequences: Vec<Sequence>,
    /// `true_states × units × units`, `W_s(post ← pre)`, when the trace records it.
    pub true_weights: Option<Vec<f64>>,
    pub true_states: Option<usize>,
    pub state_names: Vec<String>,
}

/// Read the true weights `states × units × units` of one trace, when both records exist.
fn read_true_weights(
    trace: &Trace,
    o: &LoadOptions,
    units: usize,
) -> Result<Option<Vec<f64>>, TraceError> {
    if !trace.has_state(&o.weights) || !trace.edge_projections().contains(&o.projection) {
        return Ok(None);
    }
    let edges = trace.edges(&o.projection)?;
    let where_ = trace.dir.display();
    if edges.n_pre != units || edges.n_post != units {
        return Err(TraceError::Option(format!(
            "{where_}: projection `{}` connects {} to {} units, the counts `{}` have {units}",
            o.projection, edges.n_pre, edges.n_post, o.counts
        )));
    }
    let w = trace
        .synapse_weights(&o.weights, &edges)
        .map_err(|e| match e {
            TraceError::Option(m) => TraceError::Option(format!("{where_}: {m}")),
            e => e,
        })?;
    let mut out = vec![0.0; w.rows * units * units];
    for s in 0..w.rows {
        for (k, (&pre, &post)) in edges.pre.iter().zip(&edges.post).enumerate() {
            if pre != post {
                out[(s * units + post as usize) * units + pre as usize] +=
                    w.values[s * w.width + k];
            }
        }
    }
    Ok(Some(out))
}

/// Read the sequences (see [`LoadOptions`]).
pub fn load(path: &Path, o: &LoadOptions) -> Result<Dataset, TraceError> {
    let dirs = find_traces(path)?;
    let mut sequences = Vec::new();
    let mut units = None;
    let mut true_weights: Option<Vec<f64>> = None;
    let mut first_truth_dir = PathBuf::new();
    let mut state_names = Vec::new();
    let mut true_states = None;
    for dir in &dirs {
        let trace = Trace::open(dir)?;
        let where_ = dir.display();
        let c = trace.state(&o.counts)?;
        if c.width < 2 {
            return Err(TraceError::Option(format!(
                "{where_}: record `{}` has {} unit(s); a coupling model needs at least 2",
                o.counts, c.width
            )));
        }
        if let Some(u) = units {
            if u != c.width {
                return Err(TraceError::Option(format!(
                    "{where_}: record `{}` has {} units, the first trace {u}",
                    o.counts, c.width
                )));
            }
        }
        units = Some(c.width);
        if let Some((k, v)) = c
            .values
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v >= 0.0 && v.fract() == 0.0))
        {
            return Err(TraceError::Option(format!(
                "{where_}: record `{}`: value {v} (row {}, unit {}) is not a count",
                o.counts,
                k / c.width,
                k % c.width
            )));
        }
        let states = if trace.regimes().contains(&o.regime) {
            let r = trace.regime(&o.regime)?;
            if r.values.len() != c.rows {
                return Err(TraceError::Option(format!(
                    "{where_}: regime `{}` has {} rows, the counts `{}` {}",
                    o.regime,
                    r.values.len(),
                    o.counts,
                    c.rows
                )));
            }
            match true_states {
                None => {
                    true_states = Some(r.states.len());
                    state_names = r.states.clone();
                }
                Some(k) if k != r.states.len() => {
                    return Err(TraceError::Option(format!(
                        "{where_}: regime `{}` has {} states, the first trace {k}",
                        o.regime,
                        r.states.len()
                    )))
                }
                _ => {}
            }
            Some(r.values)
        } else {
            None
        };
        if let Some(w) = read_true_weights(&trace, o, c.width)? {
            match &true_weights {
                None => {
                    true_weights = Some(w);
                    first_truth_dir = dir.clone();
                }
                Some(prev) if *prev != w => {
                    return Err(TraceError::Option(format!(
                        "{where_}: the true weights `{}` differ from those of {}: these recordings do not share one model (every seed of hmm_glm.ng draws its own connectome); record one long run and cut it into sequences with --length",
                        o.weights,
                        first_truth_dir.display()
                    )))
                }
                _ => {}
            }
        }
        let cov = covariates(&c.values, c.width);
        let len = if o.length == 0 { c.rows } else { o.length };
        let pieces = c.rows / len.max(1);
        for k in 0..pieces {
            let (a, b) = (k * len * c.width, (k + 1) * len * c.width);
            sequences.push(Sequence {
                bins: len,
                counts: c.values[a..b].to_vec(),
                cov: cov[a..b].to_vec(),
                states: states.as_ref().map(|s| s[k * len..(k + 1) * len].to_vec()),
            });
        }
    }
    Ok(Dataset {
        traces: dirs,
        units: units.unwrap_or(0),
        sequences,
        true_weights,
        true_states,
        state_names,
    })
}

/// One prior's fit and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorResult {
    pub fit: Fit,
    pub metrics: Metrics,
}

/// The whole pass.
#[derive(Debug, Clone, PartialEq)]
pub struct HmmGlmResult {
    pub path: PathBuf,
    pub traces: usize,
    pub units: usize,
    pub train: usize,
    pub test: usize,
    pub bins_per_sequence: Vec<usize>,
    pub options: FitOptions,
    pub results: Vec<PriorResult>,
}

/// Load `path`, take the first `train` sequences for training and the next `test` for
/// testing, and fit each prior.
pub fn analyze(
    path: &Path,
    load_opts: &LoadOptions,
    priors: &[Prior],
    train: usize,
    test: usize,
    opts: &FitOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<HmmGlmResult, TraceError> {
    if train == 0 {
        return Err(TraceError::Option("--train must be at least 1".into()));
    }
    if opts.states == 0 {
        return Err(TraceError::Option("--states must be at least 1".into()));
    }
    let data = load(path, load_opts)?;
    if data.sequences.len() < train + test {
        return Err(TraceError::Option(format!(
            "{}: {} sequence(s) of {} bins in {} trace(s), fewer than --train {train} + --test {test}",
            path.display(),
            data.sequences.len(),
            load_opts.length,
            data.traces.len()
        )));
    }
    let train_seqs: Vec<&Sequence> = data.sequences[..train].iter().collect();
    let test_seqs: Vec<&Sequence> = data.sequences[train..train + test].iter().collect();
    let mut results = Vec::new();
    for &prior in priors {
        let fit = fit(&train_seqs, data.units, prior, opts, progress)?;
        let metrics = evaluate(
            &fit,
            &train_seqs,
            &test_seqs,
            data.true_weights.as_deref(),
            data.true_states,
        );
        results.push(PriorResult { fit, metrics });
    }
    Ok(HmmGlmResult {
        path: path.to_path_buf(),
        traces: data.traces.len(),
        units: data.units,
        train,
        test,
        bins_per_sequence: data.sequences[..train + test]
            .iter()
            .map(|s| s.bins)
            .collect(),
        options: opts.clone(),
        results,
    })
}

fn opt_num(v: Option<f64>) -> Value {
    match v {
        Some(x) if x.is_finite() => json!(x),
        _ => Value::Null,
    }
}

/// The JSON document of the pass (schema in the README, "neurograph analyze").
pub fn to_json(r: &HmmGlmResult) -> Value {
    json!({
        "format": "neurograph-analysis-hmm-glm",
        "format_version": 1,
        "path": r.path.display().to_string(),
        "traces": r.traces,
        "units": r.units,
        "states": r.options.states,
        "train_sequences": r.train,
        "test_sequences": r.test,
        "bins": r.bins_per_sequence.iter().sum::<usize>(),
        "priors": r.results.iter().map(|p| {
            let m = &p.metrics;
            let f = &p.fit;
            json!({
                "prior": f.prior.name(),
                "iterations": f.iterations,
                "seconds_per_iteration": f.seconds_per_iteration,
                "train_loglik_per_bin": opt_num(Some(m.train_loglik_per_bin)),
                "test_loglik_per_bin": opt_num(Some(m.test_loglik_per_bin)),
                "train_state_accuracy": opt_num(m.train_state_accuracy),
                "test_state_accuracy": opt_num(m.test_state_accuracy),
                "weight_mse": opt_num(m.weight_mse),
                "edge_f1": opt_num(m.edge_f1),
                "permutation": m.permutation,
                "edge_counts": {"inhibitory": m.edge_counts[0], "none": m.edge_counts[1], "excitatory": m.edge_counts[2]},
                "initial": f.params.initial,
                "transition": f.params.transition.chunks(f.params.states).collect::<Vec<_>>(),
                "bias": f.params.bias,
                "weights": f.params.weights.chunks(f.params.units * f.params.units)
                    .map(|w| w.chunks(f.params.units).collect::<Vec<_>>()).collect::<Vec<_>>(),
                "loglik_trace": f.loglik_trace,
            })
        }).collect::<Vec<_>>(),
    })
}

/// One line per prior: the four metrics and the time per EM iteration.
pub fn table_text(r: &HmmGlmResult) -> String {
    let mut s = format!(
        "{} trace(s), {} units, {} states, {} training + {} test sequences ({} bins)\n",
        r.traces,
        r.units,
        r.options.states,
        r.train,
        r.test,
        r.bins_per_sequence.iter().sum::<usize>()
    );
    s += &format!(
        "{:<9} {:>6} {:>10} {:>10} {:>8} {:>14} {:>14} {:>9}\n",
        "prior",
        "iters",
        "state acc",
        "weight MSE",
        "edge F1",
        "test LL/bin",
        "train LL/bin",
        "s/iter"
    );
    let f = |v: Option<f64>, d: usize| match v {
        Some(x) if x.is_finite() => format!("{x:.d$}"),
        _ => "-".into(),
    };
    for p in &r.results {
        let m = &p.metrics;
        s += &format!(
            "{:<9} {:>6} {:>10} {:>10} {:>8} {:>14} {:>14} {:>9}\n",
            p.fit.prior.name(),
            p.fit.iterations,
            f(m.test_state_accuracy, 4),
            f(m.weight_mse, 4),
            f(m.edge_f1, 4),
            f(Some(m.test_loglik_per_bin), 4),
            f(Some(m.train_loglik_per_bin), 4),
            f(Some(p.fit.seconds_per_iteration), 3)
        );
    }
    s += "state accuracy on the test sequences after matching states on the training ones; MSE and F1 over all states and pairs; LL in nats per bin\n";
    s
}

/// Draw sequences from an HMM-GLM (the generative model above, the true states recorded):
/// `lengths[k]` bins each, deterministic for `seed`. For tests and benchmarks.
pub fn simulate(p: &Params, lengths: &[usize], seed: u64) -> Vec<Sequence> {
    let mut rng = Rng(seed);
    let u = p.units;
    let draw = |rng: &mut Rng, probs: &[f64]| {
        let mut x = rng.uniform();
        for (k, &q) in probs.iter().enumerate() {
            if x < q {
                return k;
            }
            x -= q;
        }
        probs.len() - 1
    };
    lengths
        .iter()
        .map(|&bins| {
            let mut counts = vec![0.0; bins * u];
            let mut states = Vec::with_capacity(bins);
            let mut trace = vec![0.0; u];
            let mut z = draw(&mut rng, &p.initial);
            for t in 0..bins {
                if t > 0 {
                    z = draw(&mut rng, &p.transition[z * p.states..(z + 1) * p.states]);
                }
                states.push(z);
                for n in 0..u {
                    let row = &p.weights[(z * u + n) * u..(z * u + n + 1) * u];
                    let drive: f64 = row.iter().zip(&trace).map(|(a, b)| a * b).sum();
                    let f = (1.0 - EPS) * sigmoid(p.bias[n] + drive) + EPS;
                    // Poisson by inversion (f ≤ 1).
                    let (mut k, mut pk, mut cdf) = (0.0, (-f).exp(), (-f).exp());
                    let v = rng.uniform();
                    while v > cdf && k < 50.0 {
                        k += 1.0;
                        pk *= f / k;
                        cdf += pk;
                    }
                    counts[t * u + n] = k;
                }
                for n in 0..u {
                    trace[n] = DECAY * trace[n] + PHI1 * counts[t * u + n];
                }
            }
            let cov = covariates(&counts, u);
            Sequence {
                bins,
                counts,
                cov,
                states: Some(states),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_backward_matches_enumeration() {
        let (s_n, t_n) = (3usize, 5usize);
        let initial = [0.5, 0.3, 0.2];
        let tr = [0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.25, 0.25, 0.5];
        let logb: Vec<f64> = (0..t_n * s_n)
            .map(|k| -((k * 7 % 11) as f64) * 0.37 - 3.0)
            .collect();
        let post = forward_backward(&initial, &tr, &logb);
        let mut total = 0.0;
        let mut gamma = vec![0.0; t_n * s_n];
        let mut xi = vec![0.0; s_n * s_n];
        for code in 0..s_n.pow(t_n as u32) {
            let path: Vec<usize> = (0..t_n).map(|t| code / s_n.pow(t as u32) % s_n).collect();
            let mut lp = initial[path[0]].ln() + logb[path[0]];
            for t in 1..t_n {
                lp += tr[path[t - 1] * s_n + path[t]].ln() + logb[t * s_n + path[t]];
            }
            let pr = lp.exp();
            total += pr;
            for t in 0..t_n {
                gamma[t * s_n + path[t]] += pr;
                if t + 1 < t_n {
                    xi[path[t] * s_n + path[t + 1]] += pr;
                }
            }
        }
        assert!(
            (post.loglik - total.ln()).abs() < 1e-10,
            "{} vs {}",
            post.loglik,
            total.ln()
        );
        for (a, b) in post.gamma.iter().zip(&gamma) {
            assert!((a - b / total).abs() < 1e-12);
        }
        for (a, b) in post.xi.iter().zip(&xi) {
            assert!((a - b / total).abs() < 1e-12);
        }
    }

    #[test]
    fn covariate_is_the_decaying_trace_of_earlier_bins() {
        let counts = [1.0, 0.0, 0.0, 2.0, 0.0, 0.0];
        let h = covariates(&counts, 2);
        assert_eq!(&h[..2], &[0.0, 0.0]);
        assert!((h[2] - PHI1).abs() < 1e-15 && h[3] == 0.0);
        assert!((h[4] - PHI1 * DECAY).abs() < 1e-15 && (h[5] - 2.0 * PHI1).abs() < 1e-15);
        // φ_1..φ_5 sum to 1 over the paper's 5-bin window.
        let s: f64 = (0..5).map(|k| PHI1 * DECAY.powi(k)).sum();
        assert!((s - 1.0).abs() < 1e-12);
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn glm_mstep_recovers_known_weights() {
        // One state, all posteriors 1: the M-step is a Poisson GLM fit.
        let (u, s_n) = (4, 1);
        let mut truth = Params::new(s_n, u);
        truth.initial = vec![1.0];
        truth.transition = vec![1.0];
        truth.bias = vec![-0.3, 0.1, 0.0, 0.2];
        let w = [
            [0.0, 1.2, 0.0, -1.0],
            [0.8, 0.0, -0.6, 0.0],
            [0.0, 0.0, 0.0, 1.0],
            [-1.1, 0.5, 0.0, 0.0],
        ];
        for n in 0..u {
            for pre in 0..u {
                truth.weights[n * u + pre] = w[n][pre];
            }
        }
        let seqs = simulate(&truth, &[40_000], 5);
        let refs: Vec<&Sequence> = seqs.iter().collect();
        let gammas = vec![vec![1.0; seqs[0].bins]];
        let mut p = Params::new(s_n, u);
        let mut ps = PriorState::new(Prior::Naive, u);
        mstep(&refs, &gammas, None, &mut p, &mut ps, 8);
        for n in 0..u {
            assert!(
                (p.bias[n] - truth.bias[n]).abs() < 0.08,
                "bias {n}: {}",
                p.bias[n]
            );
            for pre in (0..u).filter(|&j| j != n) {
                let (a, b) = (p.w(0, n, pre), w[n][pre]);
                assert!((a - b).abs() < 0.12, "w({n} <- {pre}) = {a}, true {b}");
            }
        }
    }

    /// Two states, posteriors given (the true states): the one-hot M-step finds every edge's
    /// type, learns a shared prior that favours the type both states share, and the Gaussian
    /// M-step's W_0 is the mean of the state weights and σ0 their RMS deviation from it.
    #[test]
    fn prior_msteps_learn_types_and_shared_parameters() {
        let (u, s_n) = (4, 2);
        let mut truth = Params::new(s_n, u);
        truth.initial = vec![0.5, 0.5];
        truth.transition = vec![0.99, 0.01, 0.01, 0.99];
        // (post, pre, weight in state 0, weight in state 1)
        let edges = [
            (0, 1, 1.2, 1.0),   // excitatory in both
            (1, 2, -1.1, -0.9), // inhibitory in both
            (2, 3, 1.0, 0.0),   // only in state 0
            (3, 0, 0.0, -1.2),  // only in state 1
        ];
        for &(n, pre, w0, w1) in &edges {
            truth.weights[n * u + pre] = w0;
            truth.weights[(u + n) * u + pre] = w1;
        }
        let seqs = simulate(&truth, &[100_000], 9);
        let refs: Vec<&Sequence> = seqs.iter().collect();
        let z = seqs[0].states.as_ref().unwrap();
        let gamma: Vec<f64> = z
            .iter()
            .flat_map(|&s| (0..s_n).map(move |k| f64::from(u8::from(k == s))))
            .collect();
        let gammas = vec![gamma];
        let mut p = Params::new(s_n, u);
        let mut ps = PriorState::new(Prior::OneHot, u);
        for _ in 0..6 {
            mstep(&refs, &gammas, None, &mut p, &mut ps, 2);
        }
        // Every true edge is found with its sign and strength; absent ones are absent but for
        // a few weak ones the finite sample supports (the evidence has a false-positive rate).
        let mut spurious = 0;
        for s in 0..s_n {
            for n in 0..u {
                for pre in (0..u).filter(|&j| j != n) {
                    let (t, w) = (truth.w(s, n, pre), p.w(s, n, pre));
                    if t != 0.0 {
                        assert!(
                            t * w > 0.0 && (w - t).abs() < 0.2,
                            "state {s}, {n} <- {pre}: {w} vs {t}"
                        );
                    } else if w != 0.0 {
                        spurious += 1;
                        assert!(w.abs() < 0.1, "state {s}, {n} <- {pre}: {w} vs 0");
                    }
                }
            }
        }
        assert!(spurious <= 2, "{spurious} spurious edges of 16 absent ones");
        let prior = |n: usize, pre: usize| ps.type_prior[n * u + pre];
        assert!(prior(0, 1)[2] > 0.6, "{:?}", prior(0, 1));
        assert!(prior(1, 2)[0] > 0.6, "{:?}", prior(1, 2));
        assert!(prior(0, 2)[1] > 0.6, "{:?}", prior(0, 2));
        let mixed = prior(2, 3);
        assert!(mixed[1] > 0.2 && mixed[2] > 0.2, "{mixed:?}");
        assert!(
            ps.strength_mean > 0.7 && ps.strength_mean < 1.4,
            "{}",
            ps.strength_mean
        );

        let mut p = Params::new(s_n, u);
        let mut ps = PriorState::new(Prior::Gaussian, u);
        for _ in 0..4 {
            mstep(&refs, &gammas, None, &mut p, &mut ps, 2);
        }
        let mut ss = 0.0;
        for n in 0..u {
            for pre in (0..u).filter(|&j| j != n) {
                let mean = (p.w(0, n, pre) + p.w(1, n, pre)) / 2.0;
                assert!((ps.w0[n * u + pre] - mean).abs() < 1e-12);
                ss += (p.w(0, n, pre) - mean).powi(2) + (p.w(1, n, pre) - mean).powi(2);
            }
        }
        let rms = (ss / (2 * u * (u - 1)) as f64).sqrt();
        assert!(
            (ps.sigma0 - rms).abs() < 1e-12 && rms > 0.1,
            "{} vs {rms}",
            ps.sigma0
        );
        // The pair shared by both states is estimated close to the truth.
        assert!((p.w(0, 0, 1) - 1.2).abs() < 0.25 && (p.w(1, 1, 2) + 0.9).abs() < 0.25);
    }

    #[test]
    fn edge_types_follow_the_evidence() {
        let p = [1.0 / 3.0; 3];
        // A precise weight far from 0 is excitatory / inhibitory, one at 0 is none.
        let (q, w) = edge_type_posterior(1.0, 400.0, 1.0, p);
        assert!(q[2] > 0.99 && (w - 1.0).abs() < 0.01, "{q:?} {w}");
        let (q, w) = edge_type_posterior(-0.8, 400.0, 1.0, p);
        assert!(q[0] > 0.99 && (w + 0.8).abs() < 0.01, "{q:?} {w}");
        let (q, w) = edge_type_posterior(0.01, 400.0, 1.0, p);
        assert!(q[1] > 0.8 && w == 0.0, "{q:?} {w}");
        // The shared prior tips a weak case.
        let (q, _) = edge_type_posterior(0.15, 100.0, 1.0, [0.05, 0.05, 0.9]);
        assert!(q[2] > q[1], "{q:?}");
        assert!((log_norm_cdf(0.0) - 0.5f64.ln()).abs() < 1e-6);
        assert!((log_norm_cdf(-10.0) - (-53.231_285)).abs() < 1e-3);
        assert!(log_norm_cdf(8.0).abs() < 1e-12);
    }

    #[test]
    fn permutation_and_f1() {
        let confusion = [0, 9, 1, 8, 0, 0, 1, 0, 7];
        assert_eq!(best_permutation(&confusion, 3), vec![1, 0, 2]);
        assert_eq!(macro_f1(&[0, 1, 2, 1], &[0, 1, 2, 1], 3), 1.0);
        let f = macro_f1(&[0, 1, 1, 2], &[0, 1, 2, 2], 3);
        assert!((f - (1.0 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
    }
}
