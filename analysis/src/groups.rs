//! Neuron groups and circuits of a target neuron or group, after NeurFlow (Cao et al., ICLR
//! 2025, "Interpreting Neural Networks through Neuron Groups and Functional Interactions"),
//! adapted from a feed-forward image classifier to a simulated spiking network:
//!
//! 1. **Attribution** of a presynaptic neuron v to the target set T: activity × coupling,
//!    `a(v → u) = spikes(v) · Σ_{synapses v→u} w` for each target neuron u (signed; NeurFlow
//!    uses integrated gradients, whose analogue for a synapse that adds `w` per spike is this
//!    product), `a(v) = Σ_u a(v → u)`. Candidates are ranked by `|a(v)|`.
//! 2. **Core set by cumulative ablation**: silence the top-1, top-2, … top-N candidates
//!    (re-running the simulation each time, through the caller's `ablate`) and measure the
//!    target's spike count `c_i`. NeurFlow's score is the overlap of the target's top-K inputs
//!    after masking (1 = unchanged); here it is `1 - change_i` with `change_i = |c_i - c_0| /
//!    c_0`, the relative change of the target's activity. NeurFlow keeps the smallest prefix
//!    with `score_i < min(score) + tolerance`, i.e. here the smallest i with
//!    `change_i > max(change) - tolerance`.
//! 3. **Groups**: the core neurons are clustered by their interaction profile (the vector of
//!    their attributions onto each target neuron) with agglomerative Ward clustering; the
//!    number of groups k in 2..=5 is the one with the best mean silhouette (as NeurFlow).
//! 4. **Interaction weights and circuit**: `weight(v → u) = a(v → u) / Σ_{v' core} |a(v' → u)|`
//!    (NeurFlow rescales by the sum of |weights| of the core neurons); nodes are the core
//!    neurons (with their group) and the target neurons, as JSON and Graphviz DOT.
//! 5. **Fidelity**: the target's change with the core set silenced against the change with
//!    `--random-sets` equal-size random sets of the candidates' populations silenced (seeded;
//!    the target and earlier hops' core sets left out, this hop's core may be drawn), mean and
//!    SD (NeurFlow's `exps/fidelity_of_neuron` compares with random neurons of the layer too).
//! 6. **Hops**: with `hops > 1` the core set of hop h is the target (as a group) of hop h + 1,
//!    neurons already in the circuit left out — NeurFlow's layer-by-layer descent, for a
//!    recurrent network where layers are not given; it stops early, saying why, when a hop
//!    finds no recorded input that matters.
//!
//! Everything here reads a trace; the re-runs are the caller's `ablate` function (the
//! `neurograph` crate rebuilds the simulation from the manifest and silences neurons).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::rng::Rng;
use crate::trace::{Edges, Trace, TraceError};

/// One neuron: population and element index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Neuron {
    pub population: String,
    pub index: u32,
}

impl std::fmt::Display for Neuron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.population, self.index)
    }
}

/// The target: elements of one population.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub population: String,
    pub indices: Vec<u32>,
    /// As written (`E[3]`, `E[0..4]`).
    pub text: String,
}

impl Target {
    /// `POP[i]` or `POP[a..b]` (elements a..b-1); the population's size is checked later.
    pub fn parse(text: &str) -> Result<Target, TraceError> {
        let bad = || {
            TraceError::Option(format!(
                "--target: `{text}` is not POP[i] or POP[a..b] (e.g. `E[3]`, `E[0..10]`)"
            ))
        };
        let (pop, rest) = text.split_once('[').ok_or_else(bad)?;
        let inner = rest.strip_suffix(']').ok_or_else(bad)?;
        let pop = pop.trim();
        if pop.is_empty() {
            return Err(bad());
        }
        let num = |s: &str| s.trim().parse::<u32>().map_err(|_| bad());
        let indices: Vec<u32> = match inner.split_once("..") {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a >= b {
                    return Err(TraceError::Option(format!(
                        "--target: `{text}` is an empty range"
                    )));
                }
                (a..b).collect()
            }
            None => vec![num(inner)?],
        };
        Ok(Target {
            population: pop.to_string(),
            indices,
            text: text.to_string(),
        })
    }

    pub fn neurons(&self) -> Vec<Neuron> {
        self.indices
            .iter()
            .map(|&index| Neuron {
                population: self.population.clone(),
                index,
            })
            .collect()
    }
}

/// Where the weights of a projection's synapses come from.
#[derive(Debug, Clone, PartialEq)]
pub enum WeightSource {
    /// A synapse state record (`record W.w at end`): its last sample, one value per synapse.
    Record(String),
    /// Every synapse has this weight (a constant added per spike, e.g. CUBA's `we`), with its
    /// unit as text.
    Value(f64, String),
}

/// Options of the pass.
#[derive(Debug, Clone)]
pub struct GroupsOptions {
    /// Weights per projection; a projection not named uses the state record `PROJ.w`.
    pub weights: Vec<(String, WeightSource)>,
    /// Candidates ranked by attribution that the cumulative ablation tries (the top N).
    pub candidates: usize,
    /// NeurFlow's acceptable error range.
    pub tolerance: f64,
    /// Random sets of the core set's size for the fidelity comparison.
    pub random_sets: usize,
    pub seed: u64,
    /// Hops back from the target (1: its direct inputs).
    pub hops: usize,
}

impl Default for GroupsOptions {
    fn default() -> Self {
        GroupsOptions {
            weights: Vec::new(),
            candidates: 20,
            tolerance: 0.05,
            random_sets: 10,
            seed: 1,
            hops: 1,
        }
    }
}

/// A presynaptic neuron of the target with its attribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub neuron: Neuron,
    pub spikes: u64,
    /// Attribution onto each target neuron, in the target's order (weight unit × spikes).
    pub per_target: Vec<f64>,
    /// Their sum.
    pub attribution: f64,
}

/// The attribution of every presynaptic neuron of the target, ranked by |attribution|
/// (ties: population, index), and the weight unit (when every projection agrees on one).
pub struct Attribution {
    pub candidates: Vec<Candidate>,
    pub weight_unit: String,
    /// Projections that have synapses onto the target, with their weight source as text.
    pub projections: Vec<(String, String)>,
}

/// A number to 6 significant digits, printed as briefly as it reads back (`-0.009`).
fn short(v: f64) -> String {
    format!("{v:.5e}")
        .parse::<f64>()
        .map_or(v.to_string(), |x| x.to_string())
}

/// The value of a manifest parameter (`we`, `LIF.taum`) in SI units, with its unit.
pub fn manifest_parameter(trace: &Trace, name: &str) -> Option<(f64, String)> {
    trace
        .manifest
        .get("parameters")?
        .as_array()?
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|p| {
            Some((
                p.get("value")?.as_f64()?,
                p.get("unit")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            ))
        })
}

/// Check the target against the trace: its population's spike record and size.
pub fn check_target(trace: &Trace, target: &Target) -> Result<(), TraceError> {
    let recorded = trace.spike_populations();
    if !recorded.contains(&target.population) {
        return Err(TraceError::Option(format!(
            "--target {}: the trace has no spike record of `{}` (spikes are recorded of: {}); if it is a population of the model, add `record {}.spikes` and run again",
            target.text,
            target.population,
            if recorded.is_empty() { "none".to_string() } else { recorded.join(", ") },
            target.population
        )));
    }
    let target_spikes = trace.spikes(&target.population)?;
    if let Some(&i) = target
        .indices
        .iter()
        .find(|&&i| i as usize >= target_spikes.size)
    {
        return Err(TraceError::Option(format!(
            "--target {}: `{}` has {} neurons, so element {i} does not exist",
            target.text, target.population, target_spikes.size
        )));
    }
    Ok(())
}

/// The weights of a projection's synapses.
enum Weights {
    /// One value per synapse (a weight record's last sample).
    Each(Vec<f64>),
    /// The same value for every synapse.
    All(f64),
}

impl Weights {
    fn of(&self, synapse: usize) -> f64 {
        match self {
            Weights::Each(w) => w[synapse],
            Weights::All(v) => *v,
        }
    }
}

/// A projection's weights with their unit and how they were found (as text).
struct ProjectionWeights {
    weights: Weights,
    unit: String,
    source: String,
}

/// The records the attribution reads, each read once for every hop: the synapses of every
/// projection (when opened), and each projection's weights and each population's spike counts
/// when a hop first needs them.
pub struct Recorded<'t> {
    trace: &'t Trace,
    /// Every projection with a connectivity record, in manifest order, with its synapses.
    edges: Vec<(String, Edges)>,
    /// Per projection (as `edges`), its weights once a hop reached its synapses.
    weights: Vec<Option<ProjectionWeights>>,
    /// Spikes per neuron of each population read so far.
    counts: BTreeMap<String, Vec<u64>>,
}

impl<'t> Recorded<'t> {
    /// Read the synapses of every projection with a connectivity record, and check the
    /// projections `opts.weights` names against them.
    pub fn open(trace: &'t Trace, opts: &GroupsOptions) -> Result<Recorded<'t>, TraceError> {
        let projections = trace.edge_projections();
        if projections.is_empty() {
            return Err(TraceError::Option(
                "the trace records no synapses; add `record W.edges` (and `record W.w at end`) for the projections onto the target (name them: `project W: A -> B ...`)".into(),
            ));
        }
        for (p, _) in &opts.weights {
            if !projections.contains(p) {
                return Err(TraceError::Option(format!(
                    "--weight {p}=...: the trace has no connectivity record of projection `{p}` (recorded: {})",
                    projections.join(", ")
                )));
            }
        }
        let edges = projections
            .into_iter()
            .map(|p| {
                let e = trace.edges(&p)?;
                Ok((p, e))
            })
            .collect::<Result<Vec<_>, TraceError>>()?;
        Ok(Recorded {
            trace,
            weights: edges.iter().map(|_| None).collect(),
            edges,
            counts: BTreeMap::new(),
        })
    }

    /// Spikes per neuron of `population`.
    fn counts(&mut self, population: &str) -> Result<&[u64], TraceError> {
        population_counts(self.trace, &mut self.counts, population)
    }

    /// Spikes of `neurons` in the trace.
    fn spikes_of(&mut self, neurons: &[Neuron]) -> Result<u64, TraceError> {
        let unique: BTreeSet<&Neuron> = neurons.iter().collect();
        let mut total = 0;
        for n in unique {
            total += self
                .counts(&n.population)?
                .get(n.index as usize)
                .copied()
                .unwrap_or(0);
        }
        Ok(total)
    }
}

/// Spikes per neuron of `population`, read into `counts` the first time.
fn population_counts<'c>(
    trace: &Trace,
    counts: &'c mut BTreeMap<String, Vec<u64>>,
    population: &str,
) -> Result<&'c [u64], TraceError> {
    if !counts.contains_key(population) {
        let ev = trace.spikes(population)?;
        let mut c = vec![0u64; ev.size];
        for &i in &ev.indices {
            c[i as usize] += 1;
        }
        counts.insert(population.to_string(), c);
    }
    Ok(&counts[population])
}

/// The weights of projection `proj` (synapses `edges`) as `opts` gives them, or its record
/// `PROJ.w`; `label` names the targets its synapses reach, in errors.
fn projection_weights(
    trace: &Trace,
    proj: &str,
    edges: &Edges,
    label: &str,
    opts: &GroupsOptions,
) -> Result<ProjectionWeights, TraceError> {
    let source = opts
        .weights
        .iter()
        .find(|(p, _)| p == proj)
        .map(|(_, s)| s.clone())
        .unwrap_or_else(|| WeightSource::Record(format!("{proj}.w")));
    match source {
        WeightSource::Value(v, unit) => Ok(ProjectionWeights {
            weights: Weights::All(v),
            source: format!("{} {unit} per synapse", short(v)),
            unit,
        }),
        WeightSource::Record(name) => {
            if !trace.has_state(&name) {
                return Err(TraceError::Option(format!(
                    "projection `{proj}` has synapses onto {label} but the trace has no weight record `{name}`; add `record {name} at end`, or give the weight: --weight {proj}=VALUE (a number with its unit, or a parameter of the manifest such as `we`)"
                )));
            }
            let s = trace.synapse_weights(&name, edges)?;
            Ok(ProjectionWeights {
                weights: Weights::Each(s.values[(s.rows - 1) * s.width..].to_vec()),
                unit: s.unit,
                source: format!("record {name} (last sample)"),
            })
        }
    }
}

/// Step 1: attribution of the presynaptic neurons of `targets` (every projection with a
/// `record W.edges` whose post end holds target neurons), leaving out `exclude` (the target
/// and the neurons already in the circuit). `label` names the targets in errors. No
/// candidates (and no projections) when no recorded projection reaches the targets.
pub fn attribution(
    rec: &mut Recorded,
    targets: &[Neuron],
    label: &str,
    exclude: &BTreeSet<Neuron>,
    opts: &GroupsOptions,
) -> Result<Attribution, TraceError> {
    let slot: BTreeMap<(&str, u32), usize> = targets
        .iter()
        .enumerate()
        .map(|(k, n)| ((n.population.as_str(), n.index), k))
        .collect();
    // Attribution per (population, index).
    let mut per: BTreeMap<Neuron, Vec<f64>> = BTreeMap::new();
    let mut units: Vec<String> = Vec::new();
    let mut used = Vec::new();
    for (p, (proj, edges)) in rec.edges.iter().enumerate() {
        // Synapses onto target neurons, with the target slot.
        let onto: Vec<(usize, usize)> = (0..edges.post.len())
            .filter_map(|k| {
                let (node, e) = Edges::locate(&edges.post_parts, edges.post[k] as usize)?;
                slot.get(&(node, e as u32)).map(|&s| (k, s))
            })
            .collect();
        if onto.is_empty() {
            continue;
        }
        if rec.weights[p].is_none() {
            rec.weights[p] = Some(projection_weights(rec.trace, proj, edges, label, opts)?);
        }
        let w = rec.weights[p].as_ref().expect("read above");
        units.push(w.unit.clone());
        used.push((proj.clone(), w.source.clone()));
        for (k, s) in onto {
            let Some((node, e)) = Edges::locate(&edges.pre_parts, edges.pre[k] as usize) else {
                continue;
            };
            let n = Neuron {
                population: node.to_string(),
                index: e as u32,
            };
            if exclude.contains(&n) {
                continue;
            }
            population_counts(rec.trace, &mut rec.counts, node)?;
            let a = per.entry(n).or_insert_with(|| vec![0.0; targets.len()]);
            a[s] += w.weights.of(k);
        }
    }
    let mut candidates: Vec<Candidate> = per
        .into_iter()
        .map(|(neuron, w)| {
            let spikes = rec.counts[&neuron.population]
                .get(neuron.index as usize)
                .copied()
                .unwrap_or(0);
            let per_target: Vec<f64> = w.iter().map(|w| w * spikes as f64).collect();
            Candidate {
                attribution: per_target.iter().sum(),
                neuron,
                spikes,
                per_target,
            }
        })
        .collect();
    candidates.sort_by(|a, b| {
        b.attribution
            .abs()
            .total_cmp(&a.attribution.abs())
            .then_with(|| a.neuron.cmp(&b.neuron))
    });
    units.dedup();
    Ok(Attribution {
        candidates,
        weight_unit: if units.len() == 1 {
            units.remove(0)
        } else {
            "mixed".into()
        },
        projections: used,
    })
}

/// Relative change of the target's spike count: `(c - c0) / c0`.
pub fn relative_change(c: u64, c0: u64) -> f64 {
    (c as f64 - c0 as f64) / c0 as f64
}

/// Step 2: the core set's size from the changes after masking the top-1, top-2, …
/// candidates: the smallest i with `|change_i| > max |change| - tolerance` (NeurFlow's
/// `score_i < min(score) + tolerance` with `score = 1 - |change|`). 0 when nothing changes.
pub fn core_size(changes: &[f64], tolerance: f64) -> usize {
    let abs: Vec<f64> = changes.iter().map(|c| c.abs()).collect();
    let max = abs.iter().copied().fold(0.0, f64::max);
    if max == 0.0 {
        return 0;
    }
    abs.iter()
        .position(|&c| c > max - tolerance)
        .map_or(0, |i| i + 1)
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Agglomerative Ward clustering of `points` (Euclidean) into `k` clusters: start from
/// singletons, repeatedly merge the pair whose merge increases the within-cluster sum of
/// squares least (Lance–Williams update of the squared Ward distance), until k remain.
/// Labels are 0..k in order of first appearance. Ties merge the lowest indices first.
pub fn ward(points: &[Vec<f64>], k: usize) -> Vec<usize> {
    let n = points.len();
    let k = k.clamp(1, n.max(1));
    // d[i][j]: Ward distance squared, 2 n_i n_j / (n_i + n_j) |c_i - c_j|^2; for singletons
    // |x_i - x_j|^2 (scipy's convention: the merge height is its square root).
    let mut d: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| dist2(&points[i], &points[j])).collect())
        .collect();
    let mut size = vec![1usize; n];
    let mut alive: Vec<bool> = vec![true; n];
    let mut label: Vec<usize> = (0..n).collect();
    let mut clusters = n;
    while clusters > k {
        let mut best = (f64::INFINITY, 0, 0);
        for i in 0..n {
            if !alive[i] {
                continue;
            }
            for j in i + 1..n {
                if alive[j] && d[i][j] < best.0 {
                    best = (d[i][j], i, j);
                }
            }
        }
        let (dij, i, j) = best;
        for m in 0..n {
            if !alive[m] || m == i || m == j {
                continue;
            }
            let (ni, nj, nm) = (size[i] as f64, size[j] as f64, size[m] as f64);
            let t = ni + nj + nm;
            let v = ((ni + nm) * d[i][m] + (nj + nm) * d[j][m] - nm * dij) / t;
            d[i][m] = v;
            d[m][i] = v;
        }
        size[i] += size[j];
        alive[j] = false;
        for l in label.iter_mut() {
            if *l == j {
                *l = i;
            }
        }
        clusters -= 1;
    }
    let mut order: Vec<usize> = Vec::new();
    label
        .iter()
        .map(|l| match order.iter().position(|o| o == l) {
            Some(p) => p,
            None => {
                order.push(*l);
                order.len() - 1
            }
        })
        .collect()
}

/// Mean silhouette of a labelling (Euclidean): per point `(b - a) / max(a, b)` with `a` the
/// mean distance to the other points of its cluster and `b` the smallest mean distance to
/// another cluster; 0 for a point alone in its cluster (as scikit-learn). `None` unless
/// 2 <= clusters <= n - 1.
pub fn silhouette(points: &[Vec<f64>], labels: &[usize]) -> Option<f64> {
    let n = points.len();
    let k = labels.iter().max().map_or(0, |m| m + 1);
    if k < 2 || k >= n {
        return None;
    }
    let mut total = 0.0;
    for i in 0..n {
        let mut sum = vec![0.0; k];
        let mut cnt = vec![0usize; k];
        for j in 0..n {
            if j != i {
                sum[labels[j]] += dist2(&points[i], &points[j]).sqrt();
                cnt[labels[j]] += 1;
            }
        }
        let own = labels[i];
        if cnt[own] == 0 {
            continue;
        }
        let a = sum[own] / cnt[own] as f64;
        let b = (0..k)
            .filter(|&c| c != own && cnt[c] > 0)
            .map(|c| sum[c] / cnt[c] as f64)
            .fold(f64::INFINITY, f64::min);
        let m = a.max(b);
        total += if m > 0.0 { (b - a) / m } else { 0.0 };
    }
    Some(total / n as f64)
}

/// Groups of the core neurons.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// Group of each point, 0..k.
    pub labels: Vec<usize>,
    pub k: usize,
    /// Silhouette of the chosen k (`None` when k = 1).
    pub silhouette: Option<f64>,
    /// (k, silhouette) for every k tried.
    pub scores: Vec<(usize, f64)>,
}

/// Step 3: Ward clustering with the number of groups in 2..=5 (at most n - 1) chosen by the
/// best mean silhouette (the smallest k among equals). Fewer than 3 points, or points that
/// do not differ, make one group.
pub fn cluster(points: &[Vec<f64>]) -> Clustering {
    let n = points.len();
    let distinct = points.iter().any(|p| p != &points[0]);
    let mut scores = Vec::new();
    let mut best: Option<(f64, usize, Vec<usize>)> = None;
    if n >= 3 && distinct {
        for k in 2..=5.min(n - 1) {
            let labels = ward(points, k);
            if let Some(s) = silhouette(points, &labels) {
                scores.push((k, s));
                if best.as_ref().is_none_or(|(b, _, _)| s > *b) {
                    best = Some((s, k, labels));
                }
            }
        }
    }
    match best {
        Some((s, k, labels)) => Clustering {
            labels,
            k,
            silhouette: Some(s),
            scores,
        },
        None => Clustering {
            labels: vec![0; n],
            k: usize::from(n > 0),
            silhouette: None,
            scores,
        },
    }
}

/// `sets` random sets of `size` distinct neurons from `pool` (the first `size` of a seeded
/// shuffle, sorted).
pub fn random_sets(pool: &[Neuron], size: usize, sets: usize, seed: u64) -> Vec<Vec<Neuron>> {
    let mut rng = Rng(seed ^ 0x6E65_7572_6F67_7270);
    (0..sets)
        .map(|_| {
            let mut p: Vec<Neuron> = pool.to_vec();
            rng.shuffle(&mut p);
            p.truncate(size);
            p.sort();
            p
        })
        .collect()
}

/// One step of the cumulative ablation.
#[derive(Debug, Clone, PartialEq)]
pub struct Masking {
    /// Top-i candidates silenced.
    pub silenced: usize,
    pub target_spikes: u64,
    pub change: f64,
}

/// The fidelity comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Fidelity {
    pub core_spikes: u64,
    pub core_change: f64,
    pub random_spikes: Vec<u64>,
    pub random_changes: Vec<f64>,
    pub random_change_mean: f64,
    pub random_change_sd: f64,
    /// |core change| over mean |random change| (`None` when the latter is 0).
    pub ratio: Option<f64>,
    /// Neurons the random sets were drawn from.
    pub random_pool: usize,
}

/// One hop back from the target: hop 1's targets are the target, hop h's the core set of
/// hop h - 1 (NeurFlow goes layer by layer back from the output neuron the same way).
#[derive(Debug, Clone)]
pub struct Hop {
    pub level: usize,
    pub targets: Vec<Neuron>,
    /// The targets' spikes in the trace (= the un-ablated re-run).
    pub target_spikes: u64,
    pub weight_unit: String,
    pub projections: Vec<(String, String)>,
    /// Presynaptic neurons of the targets in all (not yet in the circuit).
    pub presynaptic: usize,
    /// The top candidates tried, ranked.
    pub candidates: Vec<Candidate>,
    pub masking: Vec<Masking>,
    /// The core set: the first `core` candidates.
    pub core: usize,
    /// Groups of the core neurons (labels in the candidates' order).
    pub groups: Clustering,
    pub fidelity: Fidelity,
}

impl Hop {
    pub fn core_neurons(&self) -> Vec<Neuron> {
        self.candidates[..self.core]
            .iter()
            .map(|c| c.neuron.clone())
            .collect()
    }

    /// The members of group `g`.
    pub fn members(&self, g: usize) -> Vec<Neuron> {
        self.candidates[..self.core]
            .iter()
            .zip(&self.groups.labels)
            .filter(|(_, &l)| l == g)
            .map(|(c, _)| c.neuron.clone())
            .collect()
    }
}

/// A node of the circuit: a target neuron (layer 0) or a core neuron of hop `layer`, with
/// its group (numbered within its hop).
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitNode {
    pub id: String,
    pub neuron: Neuron,
    pub role: &'static str,
    pub layer: usize,
    pub group: Option<usize>,
}

/// An edge of the circuit: interaction weight from a core neuron of hop h to a target of
/// hop h.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitEdge {
    pub from: String,
    pub to: String,
    /// `a(v → u) / Σ_{core of the hop} |a(· → u)|`: signed, |weights| onto one node sum to 1.
    pub weight: f64,
    /// The attribution `a(v → u)` itself.
    pub attribution: f64,
}

/// Everything the pass found.
#[derive(Debug, Clone)]
pub struct GroupsResult {
    pub target: Target,
    pub duration_s: f64,
    pub tolerance: f64,
    pub seed: u64,
    pub hops_asked: usize,
    pub hops: Vec<Hop>,
    /// Why fewer hops than asked were found.
    pub stopped: Option<String>,
    pub nodes: Vec<CircuitNode>,
    pub edges: Vec<CircuitEdge>,
}

/// Re-run with the neurons `silenced` silenced and count the spikes of the neurons
/// `measured` (`what` describes the set, for progress); or say why not.
pub type Ablate<'a> = dyn FnMut(&[Neuron], &[Neuron], &str) -> Result<u64, String> + 'a;

fn label_of(neurons: &[Neuron]) -> String {
    let names: Vec<String> = neurons.iter().map(Neuron::to_string).collect();
    if names.len() <= 4 {
        names.join(", ")
    } else {
        format!("{}, … ({} neurons)", names[..3].join(", "), names.len())
    }
}

/// The whole pass: `opts.hops` hops back from the target (fewer when a hop finds no
/// presynaptic neuron that matters; `stopped` says why). `ablate` is called once per
/// cumulative mask and once per fidelity set of each hop (the caller reports progress).
pub fn analyze_trace(
    trace: &Trace,
    target: &Target,
    opts: &GroupsOptions,
    ablate: &mut Ablate,
) -> Result<GroupsResult, TraceError> {
    if !(opts.tolerance >= 0.0 && opts.tolerance.is_finite()) {
        return Err(TraceError::Option(format!(
            "--tolerance {}: must be a non-negative number",
            opts.tolerance
        )));
    }
    if opts.candidates == 0 {
        return Err(TraceError::Option("--candidates must be at least 1".into()));
    }
    if opts.hops == 0 {
        return Err(TraceError::Option("--hops must be at least 1".into()));
    }
    check_target(trace, target)?;
    let mut rec = Recorded::open(trace, opts)?;
    let fail = TraceError::Option;
    let mut targets = target.neurons();
    let mut in_circuit: BTreeSet<Neuron> = targets.iter().cloned().collect();
    let mut hops: Vec<Hop> = Vec::new();
    let mut stopped = None;
    for level in 1..=opts.hops {
        let label = if level == 1 {
            target.text.clone()
        } else {
            format!("the core set of hop {} ({})", level - 1, label_of(&targets))
        };
        // A later hop that finds nothing ends the circuit there; the first one is an error.
        let mut end = |why: String| -> Result<(), TraceError> {
            if level == 1 {
                Err(TraceError::Option(why))
            } else {
                stopped = Some(format!("hop {level}: {why}"));
                Ok(())
            }
        };
        let att = attribution(&mut rec, &targets, &label, &in_circuit, opts)?;
        let c0 = rec.spikes_of(&targets)?;
        let presynaptic = att.candidates.len();
        let mut candidates = att.candidates;
        candidates.retain(|c| c.attribution != 0.0);
        candidates.truncate(opts.candidates);
        if att.projections.is_empty() {
            end(format!(
                "no recorded projection (`record W.edges`) has synapses onto {label} (recorded: {})",
                trace.edge_projections().join(", ")
            ))?;
            break;
        }
        if candidates.is_empty() {
            end(format!(
                "no presynaptic neuron of {label} has a non-zero attribution (none fired, or every weight is 0)"
            ))?;
            break;
        }
        if c0 == 0 {
            end(format!(
                "{label} fired no spike in the trace: its change under ablation is not defined; choose neurons that fire"
            ))?;
            break;
        }
        // Step 2: cumulative masking.
        let mut masking = Vec::new();
        for i in 1..=candidates.len() {
            let set: Vec<Neuron> = candidates[..i].iter().map(|c| c.neuron.clone()).collect();
            let what = format!("hop {level}: top {i} of {}", candidates.len());
            let c = ablate(&set, &targets, &what).map_err(fail)?;
            masking.push(Masking {
                silenced: i,
                target_spikes: c,
                change: relative_change(c, c0),
            });
        }
        let changes: Vec<f64> = masking.iter().map(|m| m.change).collect();
        let core = core_size(&changes, opts.tolerance);
        if core == 0 {
            end(format!(
                "silencing the top {} candidates does not change the spike count of {label}: no core set (try more --candidates)",
                candidates.len()
            ))?;
            break;
        }
        // Step 3: groups by interaction profile.
        let profiles: Vec<Vec<f64>> = candidates[..core]
            .iter()
            .map(|c| c.per_target.clone())
            .collect();
        let groups = cluster(&profiles);
        // Step 5: fidelity against random sets of the candidates' populations.
        let mut pops: Vec<String> = candidates
            .iter()
            .map(|c| c.neuron.population.clone())
            .collect();
        pops.sort();
        pops.dedup();
        let mut pool = Vec::new();
        for p in &pops {
            let size = rec.counts(p)?.len() as u32;
            for index in 0..size {
                let n = Neuron {
                    population: p.clone(),
                    index,
                };
                if !in_circuit.contains(&n) {
                    pool.push(n);
                }
            }
        }
        let core_spikes = masking[core - 1].target_spikes;
        let mut random_spikes = Vec::new();
        let seed = opts.seed.wrapping_add(level as u64 - 1);
        for (k, set) in random_sets(&pool, core, opts.random_sets, seed)
            .iter()
            .enumerate()
        {
            let what = format!("hop {level}: random set {} of {}", k + 1, opts.random_sets);
            random_spikes.push(ablate(set, &targets, &what).map_err(fail)?);
        }
        let random_changes: Vec<f64> = random_spikes
            .iter()
            .map(|&c| relative_change(c, c0))
            .collect();
        let n = random_changes.len().max(1) as f64;
        let mean = random_changes.iter().sum::<f64>() / n;
        let sd = (random_changes
            .iter()
            .map(|c| (c - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        let mean_abs = random_changes.iter().map(|c| c.abs()).sum::<f64>() / n;
        let core_change = relative_change(core_spikes, c0);
        let hop = Hop {
            level,
            targets: targets.clone(),
            target_spikes: c0,
            weight_unit: att.weight_unit,
            projections: att.projections,
            presynaptic,
            candidates,
            masking,
            core,
            groups,
            fidelity: Fidelity {
                core_spikes,
                core_change,
                random_spikes,
                random_changes,
                random_change_mean: mean,
                random_change_sd: sd,
                ratio: (mean_abs > 0.0).then(|| core_change.abs() / mean_abs),
                random_pool: pool.len(),
            },
        };
        targets = hop.core_neurons();
        in_circuit.extend(targets.iter().cloned());
        hops.push(hop);
    }
    // Step 4: the circuit, with interaction weights per hop.
    let mut nodes: Vec<CircuitNode> = target
        .neurons()
        .into_iter()
        .map(|u| CircuitNode {
            id: u.to_string(),
            neuron: u,
            role: "target",
            layer: 0,
            group: None,
        })
        .collect();
    let mut edges = Vec::new();
    for hop in &hops {
        let core = &hop.candidates[..hop.core];
        for (c, &g) in core.iter().zip(&hop.groups.labels) {
            nodes.push(CircuitNode {
                id: c.neuron.to_string(),
                neuron: c.neuron.clone(),
                role: "core",
                layer: hop.level,
                group: Some(g),
            });
        }
        for (s, u) in hop.targets.iter().enumerate() {
            let norm: f64 = core.iter().map(|c| c.per_target[s].abs()).sum();
            for c in core {
                let a = c.per_target[s];
                if a != 0.0 {
                    edges.push(CircuitEdge {
                        from: c.neuron.to_string(),
                        to: u.to_string(),
                        weight: a / norm,
                        attribution: a,
                    });
                }
            }
        }
    }
    Ok(GroupsResult {
        target: target.clone(),
        duration_s: trace.duration_s,
        tolerance: opts.tolerance,
        seed: opts.seed,
        hops_asked: opts.hops,
        hops,
        stopped,
        nodes,
        edges,
    })
}

fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

fn names(neurons: &[Neuron]) -> Vec<String> {
    neurons.iter().map(Neuron::to_string).collect()
}

fn hop_json(h: &Hop, seed: u64) -> Value {
    let groups: Vec<Value> = (0..h.groups.k)
        .map(|g| {
            let members = names(&h.members(g));
            let to_targets: Vec<f64> = (0..h.targets.len())
                .map(|s| {
                    let norm: f64 = h.candidates[..h.core]
                        .iter()
                        .map(|c| c.per_target[s].abs())
                        .sum();
                    h.candidates[..h.core]
                        .iter()
                        .zip(&h.groups.labels)
                        .filter(|(_, &l)| l == g)
                        .map(|(c, _)| c.per_target[s] / norm)
                        .filter(|w| w.is_finite())
                        .sum()
                })
                .collect();
            json!({"group": g, "members": members, "weight_to_targets": to_targets})
        })
        .collect();
    let f = &h.fidelity;
    json!({
        "level": h.level,
        "targets": names(&h.targets),
        "target_spikes": h.target_spikes,
        "weights": h.projections.iter().map(|(p, s)| json!({"projection": p, "source": s})).collect::<Vec<_>>(),
        "weight_unit": h.weight_unit,
        "presynaptic": h.presynaptic,
        "candidates": h.candidates.iter().map(|c| json!({
            "neuron": c.neuron.to_string(),
            "population": c.neuron.population,
            "index": c.neuron.index,
            "spikes": c.spikes,
            "attribution": num(c.attribution),
            "per_target": c.per_target.iter().map(|&a| num(a)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "masking": h.masking.iter().map(|m| json!({
            "silenced": m.silenced,
            "target_spikes": m.target_spikes,
            "change": num(m.change),
        })).collect::<Vec<_>>(),
        "core": names(&h.core_neurons()),
        "groups": groups,
        "clustering": {
            "k": h.groups.k,
            "silhouette": h.groups.silhouette.map_or(Value::Null, num),
            "scores": h.groups.scores.iter().map(|(k, s)| json!({"k": k, "silhouette": num(*s)})).collect::<Vec<_>>(),
        },
        "fidelity": {
            "core_spikes": f.core_spikes,
            "core_change": num(f.core_change),
            "random_sets": f.random_spikes.len(),
            "random_pool": f.random_pool,
            "random_seed": seed.wrapping_add(h.level as u64 - 1),
            "random_spikes": f.random_spikes,
            "random_change_mean": num(f.random_change_mean),
            "random_change_sd": num(f.random_change_sd),
            "ratio": f.ratio.map_or(Value::Null, num),
        },
    })
}

/// The JSON document of the pass (schema in README, "neurograph analyze").
pub fn to_json(trace: &Trace, r: &GroupsResult) -> Value {
    trace.analysis_json(
        "groups",
        json!({
            "duration_s": r.duration_s,
            "target": {
                "text": r.target.text,
                "population": r.target.population,
                "indices": r.target.indices,
            },
            "tolerance": r.tolerance,
            "hops_asked": r.hops_asked,
            "hops": r.hops.iter().map(|h| hop_json(h, r.seed)).collect::<Vec<_>>(),
            "stopped": r.stopped,
            "circuit": {
                "nodes": r.nodes.iter().map(|n| json!({
                    "id": n.id,
                    "population": n.neuron.population,
                    "index": n.neuron.index,
                    "role": n.role,
                    "layer": n.layer,
                    "group": n.group,
                })).collect::<Vec<_>>(),
                "edges": r.edges.iter().map(|e| json!({
                    "from": e.from,
                    "to": e.to,
                    "weight": num(e.weight),
                    "attribution": num(e.attribution),
                })).collect::<Vec<_>>(),
            },
        }),
    )
}

/// Colours of the groups (shared by the DOT output and the `circuit` plot).
pub const GROUP_COLOURS: &[&str] = &[
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
];

/// The circuit as Graphviz DOT: core neurons in one cluster per hop and group (coloured),
/// the target on the right, edges with width by |weight|, red for positive, blue for
/// negative.
pub fn to_dot(r: &GroupsResult) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph circuit {{");
    let _ = writeln!(s, "  rankdir=LR;");
    let _ = writeln!(
        s,
        "  node [shape=circle, style=filled, fontname=\"Helvetica\"];"
    );
    let mut colour_index = 0;
    for h in &r.hops {
        for g in 0..h.groups.k {
            let colour = GROUP_COLOURS[colour_index % GROUP_COLOURS.len()];
            colour_index += 1;
            let _ = writeln!(s, "  subgraph cluster_hop{}_group{g} {{", h.level);
            let _ = writeln!(
                s,
                "    label=\"hop {} group {g}\"; color=\"{colour}\";",
                h.level
            );
            for n in h.members(g) {
                let _ = writeln!(s, "    \"{n}\" [fillcolor=\"{colour}\", fontcolor=white];");
            }
            let _ = writeln!(s, "  }}");
        }
    }
    let _ = writeln!(s, "  subgraph cluster_target {{");
    let _ = writeln!(
        s,
        "    label=\"target {}\"; color=black;",
        r.target.text.replace('"', "'")
    );
    for n in r.nodes.iter().filter(|n| n.role == "target") {
        let _ = writeln!(
            s,
            "    \"{}\" [shape=doublecircle, fillcolor=\"#dddddd\"];",
            n.id
        );
    }
    let _ = writeln!(s, "  }}");
    for e in &r.edges {
        let colour = if e.weight >= 0.0 {
            "#c0392b"
        } else {
            "#2c6fbb"
        };
        let _ = writeln!(
            s,
            "  \"{}\" -> \"{}\" [penwidth={:.2}, color=\"{colour}\", label=\"{:.3}\"];",
            e.from,
            e.to,
            0.5 + 6.0 * e.weight.abs(),
            e.weight
        );
    }
    let _ = writeln!(s, "}}");
    s
}

/// The table `neurograph analyze … groups` prints.
pub fn table_text(r: &GroupsResult) -> String {
    let mut s = String::new();
    for h in &r.hops {
        let label = if h.level == 1 {
            r.target.text.clone()
        } else {
            format!("core of hop {} ({})", h.level - 1, label_of(&h.targets))
        };
        let _ = writeln!(
            s,
            "hop {}: target {label}: {} spikes in {} s; {} presynaptic neurons, top {} by |attribution| (weights: {})",
            h.level,
            h.target_spikes,
            r.duration_s,
            h.presynaptic,
            h.candidates.len(),
            h.projections
                .iter()
                .map(|(p, w)| format!("{p}: {w}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
        let _ = writeln!(
            s,
            "{:<4} {:<12} {:>7} {:>13}   {:>8} {:>9}   (attribution in {} x spikes; target: its spikes with ranks 1..k silenced, change relative)",
            "rank", "neuron", "spikes", "attribution", "target", "change", h.weight_unit
        );
        for (k, (c, m)) in h.candidates.iter().zip(&h.masking).enumerate() {
            let mark = if k < h.core { "*" } else { " " };
            let _ = writeln!(
                s,
                "{:<4} {:<12} {:>7} {:>13.5e} {} {:>8} {:>+9.3}",
                k + 1,
                c.neuron.to_string(),
                c.spikes,
                c.attribution,
                mark,
                m.target_spikes,
                m.change
            );
        }
        let _ = writeln!(
            s,
            "core set: the top {} (*: smallest prefix with |change| > max - {})",
            h.core, r.tolerance
        );
        for g in 0..h.groups.k {
            let _ = writeln!(s, "group {g}: {}", names(&h.members(g)).join(" "));
        }
        let _ = writeln!(
            s,
            "groups: k = {} (Ward; silhouette {})",
            h.groups.k,
            h.groups
                .silhouette
                .map_or("undefined".to_string(), |x| format!("{x:.3}"))
        );
        let f = &h.fidelity;
        let _ = writeln!(
            s,
            "fidelity: silencing the core set changes the target by {:+.3} ({} -> {} spikes); {} random sets of {}: {:+.3} ± {:.3} (mean ± SD){}",
            f.core_change,
            h.target_spikes,
            f.core_spikes,
            f.random_spikes.len(),
            h.core,
            f.random_change_mean,
            f.random_change_sd,
            f.ratio
                .map_or(String::new(), |x| format!("; |core| / mean |random| = {x:.2}"))
        );
    }
    if let Some(why) = &r.stopped {
        let _ = writeln!(
            s,
            "stopped after {} of {} hops: {why}",
            r.hops.len(),
            r.hops_asked
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t = Target::parse("E[3]").unwrap();
        assert_eq!((t.population.as_str(), t.indices), ("E", vec![3]));
        assert_eq!(Target::parse("Out[2..5]").unwrap().indices, vec![2, 3, 4]);
        for bad in ["E", "E[", "[3]", "E[a]", "E[5..5]", "E[1..x]"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn core_size_is_the_smallest_prefix_within_tolerance_of_the_largest_change() {
        assert_eq!(core_size(&[-0.2, -0.5, -0.8, -0.82, -0.81], 0.05), 3);
        assert_eq!(core_size(&[-0.2, -0.5, -0.8, -0.9], 0.05), 4);
        assert_eq!(core_size(&[0.0, 0.0], 0.05), 0);
        // A rise counts as a change too (an inhibitory input silenced).
        assert_eq!(core_size(&[0.4, 0.1, 0.1], 0.05), 1);
    }

    #[test]
    fn ward_and_silhouette_find_two_clear_groups() {
        // Two blobs in 2-D, interleaved in the input order.
        let mut pts = Vec::new();
        for k in 0..6 {
            let j = k as f64 * 0.01;
            pts.push(vec![1.0 + j, 0.0 - j]);
            pts.push(vec![0.0 + j, 1.0 + j]);
        }
        let c = cluster(&pts);
        assert_eq!(c.k, 2, "{:?}", c.scores);
        for (i, &l) in c.labels.iter().enumerate() {
            assert_eq!(l, i % 2, "{:?}", c.labels);
        }
        assert!(c.silhouette.unwrap() > 0.9);
        // Three blobs on a line: k = 3.
        let pts: Vec<Vec<f64>> = (0..9)
            .map(|i| vec![(i / 3) as f64 * 10.0 + (i % 3) as f64 * 0.1])
            .collect();
        let c = cluster(&pts);
        assert_eq!(c.k, 3);
        assert_eq!(c.labels, vec![0, 0, 0, 1, 1, 1, 2, 2, 2]);
    }

    #[test]
    fn silhouette_of_known_labelling() {
        // Points 0, 1 | 10, 11: a = 1, b = 10 (mean of 10, 9 for point 1 is 9.5...).
        let pts = vec![vec![0.0], vec![1.0], vec![10.0], vec![11.0]];
        let s = silhouette(&pts, &[0, 0, 1, 1]).unwrap();
        // Point 0: a = 1, b = (10 + 11) / 2 = 10.5 -> 0.90476; point 1: a = 1, b = 9.5 -> 0.89474.
        let expect = (2.0 * (1.0 - 1.0 / 10.5) + 2.0 * (1.0 - 1.0 / 9.5)) / 4.0;
        assert!((s - expect).abs() < 1e-12, "{s} {expect}");
        assert_eq!(silhouette(&pts, &[0, 0, 0, 0]), None);
    }

    #[test]
    fn ward_merges_by_the_increase_of_the_sum_of_squares() {
        // 0, 1, 3: Ward merges {0, 1} first; then {0,1} vs 3 would be the only merge left.
        let pts = vec![vec![0.0], vec![1.0], vec![3.0], vec![10.0]];
        assert_eq!(ward(&pts, 3), vec![0, 0, 1, 2]);
        // Ward distance of {0,1} to {3}: 2·2·1/3 · (0.5 - 3)^2 = 8.33 < to {10}: merges 3 in.
        assert_eq!(ward(&pts, 2), vec![0, 0, 0, 1]);
    }

    #[test]
    fn random_sets_are_distinct_seeded_and_of_the_asked_size() {
        let pool: Vec<Neuron> = (0..50)
            .map(|index| Neuron {
                population: "A".into(),
                index,
            })
            .collect();
        let a = random_sets(&pool, 7, 4, 3);
        assert_eq!(a, random_sets(&pool, 7, 4, 3));
        assert_ne!(a, random_sets(&pool, 7, 4, 4));
        for s in &a {
            assert_eq!(s.len(), 7);
            let mut d = s.clone();
            d.dedup();
            assert_eq!(d.len(), 7);
        }
    }
}
