//! Graph structure of recorded connectivity (BDH §1.4, NiNo's weights-as-graph): the synapses of
//! one or more projections (`record W.edges`) as a petgraph graph whose nodes are the
//! populations' elements, weighted by a synapse state record (`W.w at end`, BDH's `S`) or
//! unweighted.
//!
//! What the pass computes:
//! - in-, out- and total degree (directed) or degree (undirected) per node, and the weighted
//!   strengths;
//! - for each degree distribution, a discrete power law against a discrete exponential above
//!   the same `x_min` (Clauset, Shalizi & Newman 2009, SIAM Review 51:661): the power law's
//!   exponent by maximum likelihood with the Hurwitz zeta normalisation, `x_min` the value that
//!   minimises the Kolmogorov–Smirnov distance, the exponential's rate by its closed-form MLE,
//!   and Vuong's test: the log-likelihood ratio `R`, its normalised form `R / (σ √n)` and the
//!   two-sided p-value `erfc(|R| / (σ √(2n)))`; `p < 0.1` decides (their §5.1);
//! - Newman modularity `Q` of the best partition Louvain finds (Blondel et al. 2008, seeded,
//!   deterministic) on the undirected symmetrised graph (`A_uv = w_uv + w_vu`, a self-loop
//!   counted twice in `A_uu` as networkx does), and the same for degree-preserving
//!   randomisations (Maslov–Sneppen swaps, each edge's weight moving with it): by default of
//!   the directed graph's edge targets, so that every node keeps its in- and out-degree (and a
//!   projection between two populations stays bipartite), then symmetrised; or double-edge
//!   swaps of the undirected graph, keeping its degrees: null mean, SD and z-score;
//! - export as GraphML or a TSV edge list.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

pub use petgraph;
use petgraph::graph::{DiGraph, NodeIndex, UnGraph};
use petgraph::visit::EdgeRef;
use serde_json::{json, Value};

use crate::numeric::{erfc, golden_min};
use crate::trace::{Edges, Trace, TraceError};

pub use crate::rng::Rng;

// ------------------------------------------------------------------------------------------
// Special functions

/// Hurwitz zeta `ζ(s, q) = Σ_{k≥0} (q + k)^-s` for `s > 1`, `q > 0`: ten terms summed, the
/// rest by Euler–Maclaurin with six Bernoulli corrections (relative error below 1e-14 for
/// `q + 10 ≥ 10`).
pub fn hurwitz_zeta(s: f64, q: f64) -> f64 {
    const N: usize = 10;
    // B_2j / (2j)!
    const B: [f64; 6] = [
        1.0 / 12.0,
        -1.0 / 720.0,
        1.0 / 30240.0,
        -1.0 / 1_209_600.0,
        1.0 / 47_900_160.0,
        -691.0 / 1_307_674_368_000.0,
    ];
    let mut sum = 0.0;
    for k in 0..N {
        sum += (q + k as f64).powf(-s);
    }
    let a = q + N as f64;
    sum += a.powf(1.0 - s) / (s - 1.0) + 0.5 * a.powf(-s);
    // term_j = B_2j/(2j)! * s (s+1) ... (s+2j-2) * a^(-s-2j+1)
    let mut fact = s; // rising product s (s+1) ... (s+2j-2)
    let mut pow = a.powf(-s - 1.0);
    for (j, b) in B.iter().enumerate() {
        sum += b * fact * pow;
        let k = 2.0 * j as f64;
        fact *= (s + k + 1.0) * (s + k + 2.0);
        pow /= a * a;
    }
    sum
}

/// The exponent in `(1, 100]` that maximises the power law's log-likelihood `ll` (golden
/// section to 1e-9).
fn max_likelihood_alpha(ll: impl Fn(f64) -> f64) -> f64 {
    golden_min(|a| -ll(a), 1.0 + 1e-6, 100.0, 1e-9, 200)
}

// ------------------------------------------------------------------------------------------
// Power law against exponential

/// The smallest tail (values `≥ x_min`) a fit is made on.
pub const MIN_TAIL: usize = 10;
/// Vuong's test decides when its p-value is below this (Clauset et al. 2009, §5.1).
pub const P_DECIDE: f64 = 0.1;

/// A discrete power law and a discrete exponential fitted to the same tail, and Vuong's
/// comparison of the two.
#[derive(Debug, Clone, PartialEq)]
pub struct TailComparison {
    /// Smallest value of the tail (chosen by the power law's KS distance).
    pub x_min: usize,
    /// Values in the tail, and values in the sample (zeros included).
    pub n_tail: usize,
    pub n: usize,
    /// `p(x) = x^-α / ζ(α, x_min)`: the MLE of α, its standard error `(α - 1) / √n_tail`, KS
    /// distance.
    pub alpha: f64,
    pub alpha_se: f64,
    pub ks_power_law: f64,
    /// `p(x) = (1 - e^-λ) e^(-λ (x - x_min))`: the MLE of λ, KS distance.
    pub lambda: f64,
    pub ks_exponential: f64,
    /// `R = Σ ln p_pl(x) - ln p_exp(x)` over the tail, `R / (σ √n_tail)`, the p-value.
    pub log_likelihood_ratio: f64,
    pub normalized_ratio: f64,
    pub p_value: f64,
}

impl TailComparison {
    /// `"power_law"` or `"exponential"` when Vuong's p-value is below [`P_DECIDE`], else
    /// `"undecided"`.
    pub fn preferred(&self) -> &'static str {
        if self.p_value < P_DECIDE && self.log_likelihood_ratio > 0.0 {
            "power_law"
        } else if self.p_value < P_DECIDE && self.log_likelihood_ratio < 0.0 {
            "exponential"
        } else {
            "undecided"
        }
    }
}

/// Maximum-likelihood exponent of a discrete power law over `tail` (all `≥ x_min ≥ 1`).
pub fn power_law_alpha(tail: &[usize], x_min: usize) -> f64 {
    let n = tail.len() as f64;
    let sum_ln: f64 = tail.iter().map(|&x| (x as f64).ln()).sum();
    let ll = |a: f64| -n * hurwitz_zeta(a, x_min as f64).ln() - a * sum_ln;
    max_likelihood_alpha(ll)
}

/// Maximum-likelihood rate of a discrete exponential over `tail` (all `≥ x_min`):
/// `λ = ln(1 + 1 / (mean - x_min))`.
pub fn exponential_lambda(tail: &[usize], x_min: usize) -> f64 {
    let mean = tail.iter().map(|&x| x as f64).sum::<f64>() / tail.len() as f64;
    (1.0 + 1.0 / (mean - x_min as f64)).ln()
}

/// KS distance between the empirical CDF of sorted `tail` and a model CDF `cdf(x) = P(X ≤ x)`.
fn ks_distance(sorted: &[usize], cdf: impl Fn(usize) -> f64) -> f64 {
    let n = sorted.len() as f64;
    let mut d: f64 = 0.0;
    let mut k = 0;
    while k < sorted.len() {
        let x = sorted[k];
        let below = k as f64 / n; // empirical P(X < x)
        while k < sorted.len() && sorted[k] == x {
            k += 1;
        }
        let at = k as f64 / n; // empirical P(X <= x)
        let c = cdf(x);
        let c_below = if x == 0 { 0.0 } else { cdf(x - 1) };
        d = d.max((at - c).abs()).max((below - c_below).abs());
    }
    d
}

/// Compare a power law and an exponential on the degrees `sample` (zeros are not in any tail):
/// `x_min` minimises the power law's KS distance over the distinct values with at least
/// [`MIN_TAIL`] values at or above them and two distinct values among those. `None` when no
/// value qualifies.
pub fn compare_tails(sample: &[usize]) -> Option<TailComparison> {
    let mut sorted: Vec<usize> = sample.iter().copied().filter(|&x| x >= 1).collect();
    sorted.sort_unstable();
    // Distinct values, how many of each, and per distinct value the count and the sum of
    // ln x of the values at or above it: each candidate costs O(distinct values above it).
    let mut vals: Vec<usize> = Vec::new();
    let mut cnts: Vec<usize> = Vec::new();
    for &x in &sorted {
        if vals.last() == Some(&x) {
            *cnts.last_mut()? += 1;
        } else {
            vals.push(x);
            cnts.push(1);
        }
    }
    let d = vals.len();
    let (mut above, mut ln_above) = (vec![0usize; d + 1], vec![0.0f64; d + 1]);
    for k in (0..d).rev() {
        above[k] = above[k + 1] + cnts[k];
        ln_above[k] = ln_above[k + 1] + cnts[k] as f64 * (vals[k] as f64).ln();
    }
    let mut best: Option<(f64, usize)> = None; // (ks, index of x_min among the distinct)
    for k in 0..d.saturating_sub(1) {
        let (x_min, n) = (vals[k], above[k]);
        if n < MIN_TAIL {
            break;
        }
        let nf = n as f64;
        let ll = |a: f64| -nf * hurwitz_zeta(a, x_min as f64).ln() - a * ln_above[k];
        let alpha = max_likelihood_alpha(ll);
        let z = hurwitz_zeta(alpha, x_min as f64);
        // KS over the distinct tail values: the empirical CDF just below and at each value.
        let mut ks: f64 = 0.0;
        let mut below = 0usize;
        for j in k..d {
            let model_below = 1.0 - hurwitz_zeta(alpha, vals[j] as f64) / z;
            let model_at = 1.0 - hurwitz_zeta(alpha, vals[j] as f64 + 1.0) / z;
            let emp_below = below as f64 / nf;
            below += cnts[j];
            let emp_at = below as f64 / nf;
            ks = ks
                .max((emp_below - model_below).abs())
                .max((emp_at - model_at).abs());
        }
        if best.is_none_or(|b| ks < b.0) {
            best = Some((ks, k));
        }
    }
    let (_, k) = best?;
    let start = sorted.len() - above[k];
    Some(compare_on_tail(&sorted[start..], vals[k], sample.len()))
}

/// The same comparison with `x_min` fixed at the smallest positive value: over the whole
/// range of non-zero degrees. `None` with fewer than [`MIN_TAIL`] positive values or one
/// distinct value.
pub fn compare_whole(sample: &[usize]) -> Option<TailComparison> {
    let mut sorted: Vec<usize> = sample.iter().copied().filter(|&x| x >= 1).collect();
    sorted.sort_unstable();
    if sorted.len() < MIN_TAIL || sorted[0] == sorted[sorted.len() - 1] {
        return None;
    }
    Some(compare_on_tail(&sorted, sorted[0], sample.len()))
}

/// Both fits on the sorted `tail` (values `>= x_min`, two distinct at least) and Vuong's test.
fn compare_on_tail(tail: &[usize], x_min: usize, n_sample: usize) -> TailComparison {
    let alpha = power_law_alpha(tail, x_min);
    let z = hurwitz_zeta(alpha, x_min as f64);
    let ks_power_law = ks_distance(tail, |x| {
        if x < x_min {
            0.0
        } else {
            1.0 - hurwitz_zeta(alpha, x as f64 + 1.0) / z
        }
    });
    let n_tail = tail.len();
    let lambda = exponential_lambda(tail, x_min);
    let ks_exponential = ks_distance(tail, |x| {
        if x < x_min {
            0.0
        } else {
            1.0 - (-lambda * (x - x_min + 1) as f64).exp()
        }
    });
    let ln_z = z.ln();
    let ln_norm_exp = (1.0 - (-lambda).exp()).ln();
    let diffs: Vec<f64> = tail
        .iter()
        .map(|&x| {
            let lp = -alpha * (x as f64).ln() - ln_z;
            let le = ln_norm_exp - lambda * (x - x_min) as f64;
            lp - le
        })
        .collect();
    let n = n_tail as f64;
    let r: f64 = diffs.iter().sum();
    let mean = r / n;
    let sigma = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n).sqrt();
    let (normalized_ratio, p_value) = if sigma > 0.0 {
        (
            r / (sigma * n.sqrt()),
            erfc(r.abs() / (sigma * (2.0 * n).sqrt())),
        )
    } else {
        (f64::NAN, f64::NAN)
    };
    TailComparison {
        x_min,
        n_tail,
        n: n_sample,
        alpha,
        alpha_se: (alpha - 1.0) / n.sqrt(),
        ks_power_law,
        lambda,
        ks_exponential,
        log_likelihood_ratio: r,
        normalized_ratio,
        p_value,
    }
}

// ------------------------------------------------------------------------------------------
// Modularity and Louvain

/// A weighted undirected graph as adjacency lists: `adj[u]` holds `(v, A_uv)` for `v ≠ u`,
/// `loops[u]` is `A_uu` (twice the self-loop weight).
#[derive(Debug, Clone)]
struct Adjacency {
    adj: Vec<Vec<(usize, f64)>>,
    loops: Vec<f64>,
}

impl Adjacency {
    fn of(g: &UnGraph<usize, f64>) -> Adjacency {
        let n = g.node_count();
        let mut adj = vec![Vec::new(); n];
        let mut loops = vec![0.0; n];
        for e in g.edge_references() {
            let (u, v, w) = (e.source().index(), e.target().index(), *e.weight());
            if u == v {
                loops[u] += 2.0 * w;
            } else {
                adj[u].push((v, w));
                adj[v].push((u, w));
            }
        }
        Adjacency { adj, loops }
    }
    fn degree(&self, u: usize) -> f64 {
        self.loops[u] + self.adj[u].iter().map(|e| e.1).sum::<f64>()
    }
}

/// Newman modularity of `membership` (community per node index) on the undirected weighted
/// graph `g`: `Q = Σ_c [in_c / 2m - (tot_c / 2m)²]`, `in_c` the sum of `A_uv` over ordered
/// pairs inside `c`, `tot_c` the sum of the degrees. `NaN` when the graph has no edge weight.
pub fn modularity(g: &UnGraph<usize, f64>, membership: &[usize]) -> f64 {
    let a = Adjacency::of(g);
    modularity_adj(&a, membership)
}

fn modularity_adj(a: &Adjacency, membership: &[usize]) -> f64 {
    let n_c = membership.iter().max().map_or(0, |m| m + 1);
    let mut inside = vec![0.0; n_c];
    let mut tot = vec![0.0; n_c];
    let mut two_m = 0.0;
    for u in 0..a.adj.len() {
        let c = membership[u];
        inside[c] += a.loops[u];
        tot[c] += a.loops[u];
        two_m += a.loops[u];
        for &(v, w) in &a.adj[u] {
            tot[c] += w;
            two_m += w;
            if membership[v] == c {
                inside[c] += w;
            }
        }
    }
    if two_m <= 0.0 {
        return f64::NAN;
    }
    inside
        .iter()
        .zip(&tot)
        .map(|(i, t)| i / two_m - (t / two_m).powi(2))
        .sum()
}

/// Relabel communities `0, 1, …` in order of first appearance.
fn relabel(m: &mut [usize]) -> usize {
    let mut map: HashMap<usize, usize> = HashMap::new();
    for c in m.iter_mut() {
        let next = map.len();
        *c = *map.entry(*c).or_insert(next);
    }
    map.len()
}

/// One level of Louvain: local moves until no node moves. Returns the communities (relabelled)
/// and whether any node moved.
fn louvain_level(a: &Adjacency, rng: &mut Rng) -> (Vec<usize>, bool) {
    let n = a.adj.len();
    let k: Vec<f64> = (0..n).map(|u| a.degree(u)).collect();
    let two_m: f64 = k.iter().sum();
    let mut comm: Vec<usize> = (0..n).collect();
    let mut tot = k.clone();
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let mut weight_to = vec![0.0; n];
    let mut seen = vec![false; n];
    let mut touched: Vec<usize> = Vec::new();
    let mut moved_any = false;
    loop {
        let mut moved = 0usize;
        for &u in &order {
            let cu = comm[u];
            // Weights from u to each neighbouring community (u's own included, even if 0).
            touched.clear();
            touched.push(cu);
            seen[cu] = true;
            for &(v, w) in &a.adj[u] {
                let c = comm[v];
                if !seen[c] {
                    seen[c] = true;
                    touched.push(c);
                }
                weight_to[c] += w;
            }
            tot[cu] -= k[u];
            let gain = |c: usize, wt: f64| wt - tot[c] * k[u] / two_m;
            let mut best = cu;
            let mut best_gain = gain(cu, weight_to[cu]);
            for &c in &touched {
                let g = gain(c, weight_to[c]);
                if g > best_gain + 1e-12 * two_m.max(1.0) {
                    best = c;
                    best_gain = g;
                }
            }
            tot[best] += k[u];
            if best != cu {
                comm[u] = best;
                moved += 1;
            }
            for &c in &touched {
                weight_to[c] = 0.0;
                seen[c] = false;
            }
        }
        if moved == 0 {
            break;
        }
        moved_any = true;
    }
    relabel(&mut comm);
    (comm, moved_any)
}

/// The graph of communities: `A'_CD = Σ_{u∈C, v∈D} A_uv`.
fn aggregate(a: &Adjacency, comm: &[usize]) -> Adjacency {
    let n_c = comm.iter().max().map_or(0, |m| m + 1);
    let mut maps: Vec<HashMap<usize, f64>> = vec![HashMap::new(); n_c];
    let mut loops = vec![0.0; n_c];
    for u in 0..a.adj.len() {
        let cu = comm[u];
        loops[cu] += a.loops[u];
        for &(v, w) in &a.adj[u] {
            let cv = comm[v];
            if cu == cv {
                loops[cu] += w;
            } else {
                *maps[cu].entry(cv).or_insert(0.0) += w;
            }
        }
    }
    let adj = maps
        .into_iter()
        .map(|m| {
            let mut v: Vec<(usize, f64)> = m.into_iter().collect();
            v.sort_by_key(|e| e.0);
            v
        })
        .collect();
    Adjacency { adj, loops }
}

/// Louvain (Blondel, Guillaume, Lambiotte & Lefebvre 2008) on the weighted undirected `g`:
/// local moves in a seeded random order, then aggregation, until a level moves nothing. The
/// community of each node (numbered by first appearance); deterministic for a seed.
pub fn louvain(g: &UnGraph<usize, f64>, seed: u64) -> Vec<usize> {
    louvain_adj(&Adjacency::of(g), seed)
}

fn louvain_adj(a: &Adjacency, seed: u64) -> Vec<usize> {
    let mut rng = Rng(seed);
    let mut membership: Vec<usize> = (0..a.adj.len()).collect();
    let total: f64 = (0..a.adj.len()).map(|u| a.degree(u)).sum();
    if total <= 0.0 {
        return membership;
    }
    let mut level = a.clone();
    loop {
        let (comm, moved) = louvain_level(&level, &mut rng);
        if !moved {
            break;
        }
        for m in membership.iter_mut() {
            *m = comm[*m];
        }
        level = aggregate(&level, &comm);
    }
    relabel(&mut membership);
    membership
}

// ------------------------------------------------------------------------------------------
// Null model

/// A degree-preserving randomisation of the undirected `g` by `swaps` attempted double-edge
/// swaps (u–v, x–y → u–y, x–v), refused when one would create a self-loop or a second edge
/// between two nodes; self-loops stay where they are. Each edge's weight moves with it. Returns
/// the graph and the number of swaps made.
pub fn double_edge_swaps(
    g: &UnGraph<usize, f64>,
    swaps: usize,
    rng: &mut Rng,
) -> (UnGraph<usize, f64>, usize) {
    let edges = g
        .edge_references()
        .map(|e| (e.source().index(), e.target().index(), *e.weight()));
    let (edges, done) = swap_edges(edges, swaps, rng, false);
    let mut out = UnGraph::with_capacity(g.node_count(), edges.len());
    for n in g.node_indices() {
        out.add_node(g[n]);
    }
    for (u, v, w) in edges {
        out.add_edge(NodeIndex::new(u), NodeIndex::new(v), w);
    }
    (out, done)
}

/// The swap loop of both null models on an edge list: `swaps` attempts on two random edges
/// (`directed`: a→b, c→d → a→d, c→b; undirected: the second edge taken either way round
/// first), refused when one would make a self-loop or an edge that exists. Self-loops are
/// left out of the swaps and come back at the end; weights move with their edges. Returns the
/// edges and the number of swaps made.
fn swap_edges(
    all: impl Iterator<Item = (usize, usize, f64)>,
    swaps: usize,
    rng: &mut Rng,
    directed: bool,
) -> (Vec<(usize, usize, f64)>, usize) {
    let key = |u: usize, v: usize| -> u64 {
        let (a, b) = if directed || u < v { (u, v) } else { (v, u) };
        ((a as u64) << 32) | b as u64
    };
    let (mut edges, loops): (Vec<_>, Vec<_>) = all.partition(|&(u, v, _)| u != v);
    let mut set: HashSet<u64, FastHash> =
        HashSet::with_capacity_and_hasher(edges.len() * 2, FastHash);
    for &(u, v, _) in &edges {
        set.insert(key(u, v));
    }
    let mut done = 0;
    if edges.len() >= 2 {
        for _ in 0..swaps {
            let i = rng.below(edges.len());
            let j = rng.below(edges.len());
            if i == j {
                continue;
            }
            let (a, b, wa) = edges[i];
            let (mut c, mut d, wc) = edges[j];
            if !directed && rng.next_u64() & 1 == 1 {
                std::mem::swap(&mut c, &mut d);
            }
            // a-b, c-d -> a-d, c-b
            if a == d || c == b || set.contains(&key(a, d)) || set.contains(&key(c, b)) {
                continue;
            }
            set.remove(&key(a, b));
            set.remove(&key(c, d));
            set.insert(key(a, d));
            set.insert(key(c, b));
            edges[i] = (a, d, wa);
            edges[j] = (c, b, wc);
            done += 1;
        }
    }
    edges.extend(loops);
    (edges, done)
}

/// A multiplicative hash for the u64 edge keys of the swap loop (SipHash dominates it
/// otherwise).
#[derive(Clone, Copy, Default)]
struct FastHash;

struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
        }
    }
    fn write_u64(&mut self, x: u64) {
        let z = (x ^ (x >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        self.0 = z ^ (z >> 32);
    }
}

impl std::hash::BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}

// ------------------------------------------------------------------------------------------
// The network of a trace

/// A node: element `index` of population (or projection) `population`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    pub population: String,
    pub index: usize,
}

/// Which synapse weights become edges, and with which magnitude.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// `|w| > threshold`, weight `|w|`.
    Abs,
    /// `w > threshold`, weight `w`.
    Positive,
    /// `w < -threshold`, weight `|w|`.
    Negative,
}

impl Sign {
    pub fn name(self) -> &'static str {
        match self {
            Sign::Abs => "abs",
            Sign::Positive => "positive",
            Sign::Negative => "negative",
        }
    }
    /// The rule as text: `|w| > 0.1`.
    pub fn rule(self, threshold: f64) -> String {
        match self {
            Sign::Abs => format!("|w| > {threshold}"),
            Sign::Positive => format!("w > {threshold}"),
            Sign::Negative => format!("w < -{threshold}"),
        }
    }
    /// The edge weight of a synapse of weight `w`, or `None` when it is not kept.
    fn keep(self, w: f64, threshold: f64) -> Option<f64> {
        match self {
            Sign::Abs => (w.abs() > threshold).then_some(w.abs()),
            Sign::Positive => (w > threshold).then_some(w),
            Sign::Negative => (w < -threshold).then_some(-w),
        }
    }
}

/// One projection's synapses and, optionally, their weights.
#[derive(Debug, Clone)]
pub struct ProjectionInput {
    pub edges: Edges,
    /// One weight per synapse, in synapse order (`None`: every synapse weighs 1).
    pub weights: Option<Vec<f64>>,
    /// The weight record and the row used (for the report).
    pub weight_record: Option<String>,
    pub row: Option<usize>,
}

/// The directed network of synapses: one edge per ordered (pre, post) pair with at least one
/// kept synapse, weighted by the sum of their weights.
#[derive(Debug, Clone)]
pub struct Network {
    pub nodes: Vec<Node>,
    pub graph: DiGraph<usize, f64>,
    /// Synapses read, and kept (weight past the threshold).
    pub synapses: usize,
    pub kept: usize,
}

/// Build the network of `inputs`: nodes are the endpoint elements of every projection (each
/// population element once, isolated ones included), in order of first appearance.
pub fn build_network(inputs: &[ProjectionInput], sign: Sign, threshold: f64) -> Network {
    let mut nodes: Vec<Node> = Vec::new();
    let mut ids: HashMap<Node, usize> = HashMap::new();
    let mut id_of = |node: Node, nodes: &mut Vec<Node>| -> usize {
        *ids.entry(node.clone()).or_insert_with(|| {
            nodes.push(node);
            nodes.len() - 1
        })
    };
    let mut pair_weight: HashMap<(usize, usize), f64> = HashMap::new();
    let mut pair_order: Vec<(usize, usize)> = Vec::new();
    let (mut synapses, mut kept) = (0, 0);
    for p in inputs {
        let e = &p.edges;
        let map = |parts: &[crate::trace::EndpointPart],
                   n: usize,
                   nodes: &mut Vec<Node>,
                   id_of: &mut dyn FnMut(Node, &mut Vec<Node>) -> usize|
         -> Vec<usize> {
            (0..n)
                .map(|i| {
                    let (pop, idx) = Edges::locate(parts, i).unwrap_or(("?", i));
                    id_of(
                        Node {
                            population: pop.to_string(),
                            index: idx,
                        },
                        nodes,
                    )
                })
                .collect()
        };
        let pre_id = map(&e.pre_parts, e.n_pre, &mut nodes, &mut id_of);
        let post_id = map(&e.post_parts, e.n_post, &mut nodes, &mut id_of);
        for k in 0..e.pre.len() {
            synapses += 1;
            let w = p.weights.as_ref().map_or(1.0, |w| w[k]);
            let Some(w) = sign.keep(w, threshold) else {
                continue;
            };
            kept += 1;
            let key = (pre_id[e.pre[k] as usize], post_id[e.post[k] as usize]);
            match pair_weight.get_mut(&key) {
                Some(x) => *x += w,
                None => {
                    pair_weight.insert(key, w);
                    pair_order.push(key);
                }
            }
        }
    }
    let mut graph = DiGraph::with_capacity(nodes.len(), pair_order.len());
    for k in 0..nodes.len() {
        graph.add_node(k);
    }
    for key in pair_order {
        graph.add_edge(
            NodeIndex::new(key.0),
            NodeIndex::new(key.1),
            pair_weight[&key],
        );
    }
    Network {
        nodes,
        graph,
        synapses,
        kept,
    }
}

/// An undirected graph of `n` nodes (weights `0..n`) and the edges `(u, v, weight)`.
pub fn ungraph(n: usize, edges: &[(usize, usize, f64)]) -> UnGraph<usize, f64> {
    let mut g = UnGraph::with_capacity(n, edges.len());
    for k in 0..n {
        g.add_node(k);
    }
    for &(u, v, w) in edges {
        g.add_edge(NodeIndex::new(u), NodeIndex::new(v), w);
    }
    g
}

/// The edges of an undirected graph as `(u, v, weight)`.
pub fn edge_list(g: &UnGraph<usize, f64>) -> Vec<(usize, usize, f64)> {
    g.edge_references()
        .map(|e| (e.source().index(), e.target().index(), *e.weight()))
        .collect()
}

/// The undirected symmetrised graph: one edge per unordered pair, weight `w_uv + w_vu`; a
/// self-loop keeps its weight.
pub fn symmetrise(g: &DiGraph<usize, f64>) -> UnGraph<usize, f64> {
    let mut w: HashMap<(usize, usize), f64> = HashMap::new();
    let mut order = Vec::new();
    for e in g.edge_references() {
        let (u, v) = (e.source().index(), e.target().index());
        let key = (u.min(v), u.max(v));
        match w.get_mut(&key) {
            Some(x) => *x += *e.weight(),
            None => {
                w.insert(key, *e.weight());
                order.push(key);
            }
        }
    }
    let mut out = UnGraph::with_capacity(g.node_count(), order.len());
    for n in g.node_indices() {
        out.add_node(g[n]);
    }
    for key in order {
        out.add_edge(NodeIndex::new(key.0), NodeIndex::new(key.1), w[&key]);
    }
    out
}

/// In-, out- and total degrees of the directed `g`: the edges ending and starting at each node,
/// and their sum (a self-loop counts once in each, twice in the total).
pub fn directed_degrees(g: &DiGraph<usize, f64>) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let n = g.node_count();
    let (mut din, mut dout) = (vec![0usize; n], vec![0usize; n]);
    for e in g.edge_references() {
        dout[e.source().index()] += 1;
        din[e.target().index()] += 1;
    }
    let total = din.iter().zip(&dout).map(|(a, b)| a + b).collect();
    (din, dout, total)
}

/// Degrees of the undirected `g`: distinct neighbours, a self-loop counting 2 (so that the
/// degrees sum to twice the edges, and double-edge swaps preserve them).
pub fn undirected_degrees(g: &UnGraph<usize, f64>) -> Vec<usize> {
    let mut d = vec![0; g.node_count()];
    for e in g.edge_references() {
        d[e.source().index()] += 1;
        d[e.target().index()] += 1;
    }
    d
}

/// Weighted degree (strength) of each node of the undirected `g`, `Σ_v A_uv`.
pub fn undirected_strengths(g: &UnGraph<usize, f64>) -> Vec<f64> {
    let mut s = vec![0.0; g.node_count()];
    for e in g.edge_references() {
        let (u, v, w) = (e.source().index(), e.target().index(), *e.weight());
        s[u] += w;
        s[v] += w;
    }
    s
}

/// A degree (or strength) distribution.
#[derive(Debug, Clone)]
pub struct Distribution {
    /// `in`, `out`, `total` (directed) or `degree` (undirected).
    pub kind: String,
    pub degrees: Vec<usize>,
    pub strengths: Vec<f64>,
    /// Power law against exponential above the `x_min` of least KS distance (Clauset et al.).
    pub fit: Option<TailComparison>,
    /// The same over every non-zero degree (`x_min` = the smallest).
    pub fit_whole: Option<TailComparison>,
}

/// The modularity of the best partition found, and the null model's.
#[derive(Debug, Clone)]
pub struct ModularityResult {
    pub q: f64,
    pub membership: Vec<usize>,
    pub communities: usize,
    pub null_q: Vec<f64>,
    pub null_swaps_attempted: usize,
    pub null_swaps_done: usize,
}

impl ModularityResult {
    pub fn null_mean(&self) -> f64 {
        self.null_q.iter().sum::<f64>() / self.null_q.len() as f64
    }
    /// SD of the null modularities (ddof 1).
    pub fn null_sd(&self) -> f64 {
        let n = self.null_q.len() as f64;
        let m = self.null_mean();
        (self.null_q.iter().map(|q| (q - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    }
    pub fn z(&self) -> f64 {
        (self.q - self.null_mean()) / self.null_sd()
    }
}

/// Modularity of `g` by Louvain with `seed`, and of `samples` degree-preserving
/// randomisations, each with `swaps_per_edge × edges` attempted swaps and Louvain seeded
/// `seed + 1 + k`.
pub fn modularity_with_null(
    g: &UnGraph<usize, f64>,
    seed: u64,
    samples: usize,
    swaps_per_edge: usize,
) -> ModularityResult {
    let swaps = swaps_per_edge * g.edge_count();
    modularity_against(g, seed, samples, swaps, |rng| {
        double_edge_swaps(g, swaps, rng)
    })
}

/// The same with the directed null model: each randomisation rewires the directed graph `dg`
/// by [`directed_edge_swaps`] (every node keeps its in- and out-degree, so a projection
/// between two populations stays bipartite) and is then symmetrised; `swaps_per_edge ×
/// directed edges` attempts each.
pub fn modularity_with_directed_null(
    dg: &DiGraph<usize, f64>,
    seed: u64,
    samples: usize,
    swaps_per_edge: usize,
) -> ModularityResult {
    directed_null(dg, &symmetrise(dg), seed, samples, swaps_per_edge)
}

/// [`modularity_with_directed_null`] with `dg`'s symmetrised graph `und` already made.
fn directed_null(
    dg: &DiGraph<usize, f64>,
    und: &UnGraph<usize, f64>,
    seed: u64,
    samples: usize,
    swaps_per_edge: usize,
) -> ModularityResult {
    let swaps = swaps_per_edge * dg.edge_count();
    modularity_against(und, seed, samples, swaps, |rng| {
        let (r, d) = directed_edge_swaps(dg, swaps, rng);
        (symmetrise(&r), d)
    })
}

fn modularity_against(
    g: &UnGraph<usize, f64>,
    seed: u64,
    samples: usize,
    swaps: usize,
    mut randomise: impl FnMut(&mut Rng) -> (UnGraph<usize, f64>, usize),
) -> ModularityResult {
    let a = Adjacency::of(g);
    let membership = louvain_adj(&a, seed);
    let q = modularity_adj(&a, &membership);
    let communities = membership.iter().max().map_or(0, |m| m + 1);
    let mut rng = Rng(seed ^ 0x5DEE_CE66_D1CE_5EED);
    let mut null_q = Vec::with_capacity(samples);
    let mut done = 0;
    for k in 0..samples {
        let (r, d) = randomise(&mut rng);
        done += d;
        let ra = Adjacency::of(&r);
        let m = louvain_adj(&ra, seed.wrapping_add(1 + k as u64));
        null_q.push(modularity_adj(&ra, &m));
    }
    ModularityResult {
        q,
        membership,
        communities,
        null_q,
        null_swaps_attempted: swaps * samples,
        null_swaps_done: done,
    }
}

/// A randomisation of the directed `g` that keeps every node's in- and out-degree: `swaps`
/// attempted swaps of the targets of two edges (a→b, c→d → a→d, c→b), refused when one would
/// create a self-loop or an edge that exists; self-loops stay. Weights move with their
/// sources' edges. Returns the graph and the number of swaps made.
pub fn directed_edge_swaps(
    g: &DiGraph<usize, f64>,
    swaps: usize,
    rng: &mut Rng,
) -> (DiGraph<usize, f64>, usize) {
    let edges = g
        .edge_references()
        .map(|e| (e.source().index(), e.target().index(), *e.weight()));
    let (edges, done) = swap_edges(edges, swaps, rng, true);
    let mut out = DiGraph::with_capacity(g.node_count(), edges.len());
    for n in g.node_indices() {
        out.add_node(g[n]);
    }
    for (u, v, w) in edges {
        out.add_edge(NodeIndex::new(u), NodeIndex::new(v), w);
    }
    (out, done)
}

/// Which degrees the null model's randomisations keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullModel {
    /// In- and out-degree of the directed graph ([`directed_edge_swaps`]), then symmetrised.
    Directed,
    /// Degree of the undirected symmetrised graph ([`double_edge_swaps`]).
    Undirected,
}

impl NullModel {
    pub fn name(self) -> &'static str {
        match self {
            NullModel::Directed => "directed",
            NullModel::Undirected => "undirected",
        }
    }
}

// ------------------------------------------------------------------------------------------
// Export

fn xml_esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// GraphML of the network: nodes `n0, n1, …` with `population`, `index` and (when given)
/// `community`; edges with `weight`. Directed: one edge per ordered pair; undirected: the
/// symmetrised graph.
pub fn graphml(net: &Network, directed: bool, membership: Option<&[usize]>) -> String {
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str("<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n");
    s.push_str(
        "  <key id=\"population\" for=\"node\" attr.name=\"population\" attr.type=\"string\"/>\n",
    );
    s.push_str("  <key id=\"index\" for=\"node\" attr.name=\"index\" attr.type=\"long\"/>\n");
    if membership.is_some() {
        s.push_str(
            "  <key id=\"community\" for=\"node\" attr.name=\"community\" attr.type=\"long\"/>\n",
        );
    }
    s.push_str("  <key id=\"weight\" for=\"edge\" attr.name=\"weight\" attr.type=\"double\"/>\n");
    let _ = writeln!(
        s,
        "  <graph id=\"G\" edgedefault=\"{}\">",
        if directed { "directed" } else { "undirected" }
    );
    for (k, n) in net.nodes.iter().enumerate() {
        let _ = write!(
            s,
            "    <node id=\"n{k}\"><data key=\"population\">{}</data><data key=\"index\">{}</data>",
            xml_esc(&n.population),
            n.index
        );
        if let Some(m) = membership {
            let _ = write!(s, "<data key=\"community\">{}</data>", m[k]);
        }
        s.push_str("</node>\n");
    }
    let mut write_edge = |k: usize, u: usize, v: usize, w: f64| {
        let _ = writeln!(
            s,
            "    <edge id=\"e{k}\" source=\"n{u}\" target=\"n{v}\"><data key=\"weight\">{w:e}</data></edge>"
        );
    };
    if directed {
        for (k, e) in net.graph.edge_references().enumerate() {
            write_edge(k, e.source().index(), e.target().index(), *e.weight());
        }
    } else {
        let u = symmetrise(&net.graph);
        for (k, e) in u.edge_references().enumerate() {
            write_edge(k, e.source().index(), e.target().index(), *e.weight());
        }
    }
    s.push_str("  </graph>\n</graphml>\n");
    s
}

/// A TSV edge list with a header line: `source`, `source_population`, `source_index`,
/// `target`, `target_population`, `target_index`, `weight` (node numbers as in GraphML).
pub fn edge_list_tsv(net: &Network, directed: bool) -> String {
    let mut s = String::from(
        "source\tsource_population\tsource_index\ttarget\ttarget_population\ttarget_index\tweight\n",
    );
    let mut line = |u: usize, v: usize, w: f64| {
        let (a, b) = (&net.nodes[u], &net.nodes[v]);
        let _ = writeln!(
            s,
            "{u}\t{}\t{}\t{v}\t{}\t{}\t{w:e}",
            a.population, a.index, b.population, b.index
        );
    };
    if directed {
        for e in net.graph.edge_references() {
            line(e.source().index(), e.target().index(), *e.weight());
        }
    } else {
        for e in symmetrise(&net.graph).edge_references() {
            line(e.source().index(), e.target().index(), *e.weight());
        }
    }
    s
}

// ------------------------------------------------------------------------------------------
// The pass

/// Options of the `graph` pass.
#[derive(Debug, Clone)]
pub struct GraphOptions {
    /// Projections (default: every projection with an edges record, or those of `weights`).
    pub projections: Option<Vec<String>>,
    /// Synapse state records giving the weights (`W.w`), each of one of the projections.
    pub weights: Vec<String>,
    /// Row of a weight record with several (default: the only or the last sample; required
    /// for one row per regime state).
    pub row: Option<usize>,
    pub sign: Sign,
    pub threshold: f64,
    /// Degrees of the directed graph (in, out, total) or of the undirected one.
    pub directed: bool,
    pub null_samples: usize,
    pub null_model: NullModel,
    pub swaps_per_edge: usize,
    pub seed: u64,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            projections: None,
            weights: Vec::new(),
            row: None,
            sign: Sign::Abs,
            threshold: 0.0,
            directed: true,
            null_samples: 20,
            null_model: NullModel::Directed,
            swaps_per_edge: 10,
            seed: 1,
        }
    }
}

/// The result of the `graph` pass.
#[derive(Debug, Clone)]
pub struct GraphReport {
    pub inputs: Vec<ProjectionInput>,
    pub network: Network,
    pub directed: bool,
    pub sign: Sign,
    pub threshold: f64,
    /// Edges of the undirected graph.
    pub undirected_edges: usize,
    pub self_loops: usize,
    pub distributions: Vec<Distribution>,
    pub modularity: ModularityResult,
    pub swaps_per_edge: usize,
    pub null_model: NullModel,
    pub seed: u64,
}

/// Read the projections and weights `opts` names from `trace`.
pub fn read_inputs(trace: &Trace, opts: &GraphOptions) -> Result<Vec<ProjectionInput>, TraceError> {
    // Which projection each weight record belongs to.
    let mut weight_of: Vec<(String, String)> = Vec::new(); // (projection, record)
    for w in &opts.weights {
        if !trace.has_state(w) {
            return Err(TraceError::Option(format!(
                "--weights {w}: the trace has no state record `{w}`; add `record {w} at end` (a synapse state of the projection)"
            )));
        }
        let node = trace
            .record("state", &[("name", w)])
            .and_then(|r| r.get("node"))
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| w.split('.').next().map(String::from))
            .unwrap_or_default();
        let is_projection = trace
            .manifest
            .get("projections")
            .and_then(Value::as_array)
            .is_some_and(|ps| {
                ps.iter()
                    .any(|p| p.get("name").and_then(Value::as_str) == Some(node.as_str()))
            });
        if !is_projection {
            return Err(TraceError::Option(format!(
                "--weights {w}: `{node}` is not a projection; the weights are a synapse state `W.VAR` of a projection W"
            )));
        }
        if weight_of.iter().any(|(p, _)| *p == node) {
            return Err(TraceError::Option(format!(
                "--weights {w}: projection `{node}` already has a weight record"
            )));
        }
        weight_of.push((node, w.clone()));
    }
    let projections = match &opts.projections {
        Some(p) if !p.is_empty() => p.clone(),
        _ if !weight_of.is_empty() => weight_of.iter().map(|(p, _)| p.clone()).collect(),
        _ => trace.edge_projections(),
    };
    if projections.is_empty() {
        return Err(TraceError::Option(
            "the trace has no connectivity record; add `record W.edges` for a projection W".into(),
        ));
    }
    for (p, w) in &weight_of {
        if !projections.contains(p) {
            return Err(TraceError::Option(format!(
                "--weights {w} is a state of `{p}`, which is not among the projections analysed ({})",
                projections.join(", ")
            )));
        }
    }
    let mut out = Vec::new();
    for p in &projections {
        let edges = trace.edges(p)?;
        let mut input = ProjectionInput {
            edges,
            weights: None,
            weight_record: None,
            row: None,
        };
        if let Some((_, w)) = weight_of.iter().find(|(q, _)| q == p) {
            let st = trace.synapse_weights(w, &input.edges)?;
            let n = st.width;
            let per_state = trace
                .record("state", &[("name", w)])
                .and_then(|r| r.get("rows"))
                .and_then(Value::as_str)
                == Some("one per regime state");
            let row = match opts.row {
                Some(r) if r < st.rows => r,
                Some(r) => {
                    return Err(TraceError::Option(format!(
                        "--row {r}: `{w}` has {} row{} (0..{})",
                        st.rows,
                        if st.rows == 1 { "" } else { "s" },
                        st.rows.saturating_sub(1)
                    )))
                }
                None if per_state && st.rows > 1 => {
                    return Err(TraceError::Option(format!(
                        "`{w}` has one row per regime state ({} rows): choose one with --row 0..{} (the states in declaration order)",
                        st.rows,
                        st.rows - 1
                    )))
                }
                None => st.rows - 1,
            };
            input.weights = Some(st.values[row * n..(row + 1) * n].to_vec());
            input.weight_record = Some(w.clone());
            input.row = Some(row);
        }
        out.push(input);
    }
    Ok(out)
}

/// The `graph` pass over a trace.
pub fn analyze_trace(trace: &Trace, opts: &GraphOptions) -> Result<GraphReport, TraceError> {
    if !(opts.threshold.is_finite() && opts.threshold >= 0.0) {
        return Err(TraceError::Option(format!(
            "--threshold {}: must be a non-negative number",
            opts.threshold
        )));
    }
    if opts.row.is_some() && opts.weights.is_empty() {
        return Err(TraceError::Option(
            "--row picks a row of a weight record: give the record with --weights W.VAR".into(),
        ));
    }
    if opts.null_samples == 1 {
        return Err(TraceError::Option(
            "--null-samples 1: an SD needs at least 2 samples (0 turns the null model off)".into(),
        ));
    }
    let inputs = read_inputs(trace, opts)?;
    Ok(analyze_inputs(inputs, opts))
}

/// The `graph` pass over projections already read.
pub fn analyze_inputs(inputs: Vec<ProjectionInput>, opts: &GraphOptions) -> GraphReport {
    let network = build_network(&inputs, opts.sign, opts.threshold);
    let und = symmetrise(&network.graph);
    let n = network.nodes.len();
    let mut distributions = Vec::new();
    if opts.directed {
        let (din, dout, dtot) = directed_degrees(&network.graph);
        let (mut sin, mut sout) = (vec![0.0; n], vec![0.0; n]);
        for e in network.graph.edge_references() {
            let (u, v, w) = (e.source().index(), e.target().index(), *e.weight());
            sout[u] += w;
            sin[v] += w;
        }
        let stot: Vec<f64> = sin.iter().zip(&sout).map(|(a, b)| a + b).collect();
        for (kind, d, s) in [("in", din, sin), ("out", dout, sout), ("total", dtot, stot)] {
            distributions.push(Distribution {
                kind: kind.into(),
                fit: compare_tails(&d),
                fit_whole: compare_whole(&d),
                degrees: d,
                strengths: s,
            });
        }
    } else {
        let d = undirected_degrees(&und);
        distributions.push(Distribution {
            kind: "degree".into(),
            fit: compare_tails(&d),
            fit_whole: compare_whole(&d),
            degrees: d,
            strengths: undirected_strengths(&und),
        });
    }
    let modularity = match opts.null_model {
        NullModel::Directed => directed_null(
            &network.graph,
            &und,
            opts.seed,
            opts.null_samples,
            opts.swaps_per_edge,
        ),
        NullModel::Undirected => {
            modularity_with_null(&und, opts.seed, opts.null_samples, opts.swaps_per_edge)
        }
    };
    let self_loops = und
        .edge_references()
        .filter(|e| e.source() == e.target())
        .count();
    GraphReport {
        undirected_edges: und.edge_count(),
        self_loops,
        inputs,
        network,
        directed: opts.directed,
        sign: opts.sign,
        threshold: opts.threshold,
        distributions,
        modularity,
        swaps_per_edge: opts.swaps_per_edge,
        null_model: opts.null_model,
        seed: opts.seed,
    }
}

fn num(x: f64) -> Value {
    // NaN and infinities (undefined) become null.
    Value::from(x)
}

fn stats(v: impl Iterator<Item = f64> + Clone) -> (f64, f64, f64, f64) {
    let n = v.clone().count() as f64;
    let mean = v.clone().sum::<f64>() / n;
    let sd = (v.clone().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let min = v.clone().fold(f64::INFINITY, f64::min);
    let max = v.fold(f64::NEG_INFINITY, f64::max);
    (mean, sd, min, max)
}

/// The fit as JSON (`null` when no tail qualified).
pub fn fit_json(f: &Option<TailComparison>) -> Value {
    match f {
        None => Value::Null,
        Some(f) => json!({
            "x_min": f.x_min,
            "n_tail": f.n_tail,
            "power_law": {"alpha": num(f.alpha), "alpha_se": num(f.alpha_se), "ks": num(f.ks_power_law)},
            "exponential": {"lambda": num(f.lambda), "ks": num(f.ks_exponential)},
            "log_likelihood_ratio": num(f.log_likelihood_ratio),
            "normalized_ratio": num(f.normalized_ratio),
            "p_value": num(f.p_value),
            "preferred": f.preferred(),
        }),
    }
}

/// The JSON document of `neurograph analyze TRACE graph --json` (schema in README).
pub fn to_json(trace: &Trace, r: &GraphReport, export: Option<&str>) -> Value {
    let m = &r.modularity;
    let null_model = if m.null_q.is_empty() {
        Value::Null
    } else {
        json!({
            "model": r.null_model.name(),
            "samples": m.null_q.len(),
            "swaps_per_edge": r.swaps_per_edge,
            "swaps_attempted": m.null_swaps_attempted,
            "swaps_done": m.null_swaps_done,
            "q_mean": num(m.null_mean()),
            "q_sd": num(m.null_sd()),
            "z": num(m.z()),
            "q": m.null_q.iter().map(|&q| num(q)).collect::<Vec<_>>(),
        })
    };
    let mut sizes = vec![0usize; m.communities];
    for &c in &m.membership {
        sizes[c] += 1;
    }
    trace.analysis_json(
        "graph",
        json!({
        "projections": r.inputs.iter().map(|p| json!({
            "projection": p.edges.projection,
            "synapses": p.edges.pre.len(),
            "weights": p.weight_record,
            "row": p.row,
        })).collect::<Vec<_>>(),
        "sign": r.sign.name(),
        "threshold": r.threshold,
        "directed": r.directed,
        "nodes": r.network.nodes.len(),
        "synapses": r.network.synapses,
        "synapses_kept": r.network.kept,
        "edges": r.network.graph.edge_count(),
        "undirected_edges": r.undirected_edges,
        "self_loops": r.self_loops,
        "distributions": r.distributions.iter().map(|d| {
            let (mean, sd, min, max) = stats(d.degrees.iter().map(|&x| x as f64));
            let (smean, ssd, smin, smax) = stats(d.strengths.iter().copied());
            let mut hist = vec![0usize; d.degrees.iter().max().map_or(0, |m| m + 1)];
            for &x in &d.degrees {
                hist[x] += 1;
            }
            json!({
                "kind": d.kind,
                "mean": num(mean), "sd": num(sd), "min": num(min), "max": num(max),
                "histogram": hist,
                "strength": {"mean": num(smean), "sd": num(ssd), "min": num(smin), "max": num(smax)},
                "fit": fit_json(&d.fit),
                "fit_whole": fit_json(&d.fit_whole),
            })
        }).collect::<Vec<_>>(),
        "modularity": {
            "method": "louvain",
            "graph": "undirected, A_uv = w_uv + w_vu",
            "seed": r.seed,
            "q": num(m.q),
            "communities": m.communities,
            "sizes": sizes,
            "membership": m.membership,
            "null": null_model,
        },
        "node_list": r.network.nodes.iter().map(|n| json!([n.population, n.index])).collect::<Vec<_>>(),
        "export": export,
    }),
    )
}

/// The table `neurograph analyze TRACE graph` prints.
pub fn table_text(r: &GraphReport) -> String {
    let f = |x: f64, p: usize| {
        if x.is_finite() {
            format!("{x:.p$}")
        } else {
            "-".to_string()
        }
    };
    let names: Vec<String> = r
        .inputs
        .iter()
        .map(|p| match &p.weight_record {
            Some(w) => format!(
                "{} (weights {w}, row {})",
                p.edges.projection,
                p.row.unwrap_or(0)
            ),
            None => format!("{} (unweighted)", p.edges.projection),
        })
        .collect();
    let mut s = format!(
        "graph of {}: {} nodes, {} of {} synapses kept ({}), {} directed edges, {} undirected, {} self-loops\n",
        names.join(", "),
        r.network.nodes.len(),
        r.network.kept,
        r.network.synapses,
        r.sign.rule(r.threshold),
        r.network.graph.edge_count(),
        r.undirected_edges,
        r.self_loops
    );
    s += &format!(
        "{:<8} {:>9} {:>8} {:>6} {:>6} {:>12}\n",
        "degree", "mean", "sd", "min", "max", "strength"
    );
    for d in &r.distributions {
        let (mean, sd, min, max) = stats(d.degrees.iter().map(|&x| x as f64));
        let (smean, ..) = stats(d.strengths.iter().copied());
        s += &format!(
            "{:<8} {:>9} {:>8} {:>6} {:>6} {:>12}\n",
            d.kind,
            f(mean, 2),
            f(sd, 2),
            f(min, 0),
            f(max, 0),
            format!("{smean:.6}"),
        );
    }
    s += &format!(
        "{:<8} {:<9} {:>6} {:>7} {:>7} {:>9} {:>8} {:>9} {:>12}\n",
        "degree", "range", "x_min", "n_tail", "alpha", "lambda", "LR norm", "p", "preferred"
    );
    for d in &r.distributions {
        for (range, fit) in [("tail (KS)", &d.fit), ("all > 0", &d.fit_whole)] {
            s += &match fit {
                None => format!(
                    "{:<8} {:<9} no fit: fewer than {MIN_TAIL} values or one value\n",
                    d.kind, range
                ),
                Some(t) => format!(
                    "{:<8} {:<9} {:>6} {:>7} {:>7} {:>9} {:>8} {:>9} {:>12}\n",
                    d.kind,
                    range,
                    t.x_min,
                    t.n_tail,
                    f(t.alpha, 3),
                    f(t.lambda, 4),
                    f(t.normalized_ratio, 2),
                    format!("{:.2e}", t.p_value),
                    t.preferred()
                ),
            };
        }
    }
    let m = &r.modularity;
    s += &format!(
        "modularity (Louvain, seed {}, undirected w_uv + w_vu): Q = {} in {} communities",
        r.seed,
        f(m.q, 4),
        m.communities
    );
    if m.null_q.is_empty() {
        s += "\n";
    } else {
        s += &format!(
            "; null ({} {} degree-preserving samples, {} swaps/edge): {} ± {}, z = {}\n",
            m.null_q.len(),
            r.null_model.name(),
            r.swaps_per_edge,
            f(m.null_mean(), 4),
            f(m.null_sd(), 4),
            f(m.z(), 1)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hurwitz_zeta_known_values() {
        let pi2 = std::f64::consts::PI.powi(2);
        assert!((hurwitz_zeta(2.0, 1.0) - pi2 / 6.0).abs() < 1e-13);
        assert!((hurwitz_zeta(3.0, 1.0) - 1.202_056_903_159_594_3).abs() < 1e-13);
        assert!((hurwitz_zeta(4.0, 1.0) - pi2 * pi2 / 90.0).abs() < 1e-13);
        // ζ(2, 3) = π²/6 - 1 - 1/4
        assert!((hurwitz_zeta(2.0, 3.0) - (pi2 / 6.0 - 1.25)).abs() < 1e-13);
        // Near s = 1 it diverges like 1/(s-1).
        assert!((hurwitz_zeta(1.001, 1.0) - 1_000.577_2).abs() < 1e-3);
    }

    #[test]
    fn two_triangles_modularity_by_hand() {
        // Two triangles joined by one edge: m = 7, each half has 3 internal edges and degree
        // sum 7: Q = 2 (3/7 - (7/14)^2) = 5/14.
        let mut g = UnGraph::new_undirected();
        let n: Vec<_> = (0..6).map(|k| g.add_node(k)).collect();
        for (a, b) in [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)] {
            g.add_edge(n[a], n[b], 1.0);
        }
        let q = modularity(&g, &[0, 0, 0, 1, 1, 1]);
        assert!((q - 5.0 / 14.0).abs() < 1e-15, "{q}");
        let m = louvain(&g, 7);
        assert_eq!(m, vec![0, 0, 0, 1, 1, 1]);
        // One community: Q = 0; singletons: Q = -Σ (k/2m)².
        assert!(modularity(&g, &[0; 6]).abs() < 1e-15);
        let single = -(4.0 * 4.0 + 2.0 * 9.0) / 196.0;
        assert!((modularity(&g, &[0, 1, 2, 3, 4, 5]) - single).abs() < 1e-15);
    }
}
