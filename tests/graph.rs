//! `neurograph analyze TRACE graph` and `analysis::graph`, with known answers: a planted
//! partition (4 groups of 50, p_in 0.3, p_out 0.01) whose planted partition Louvain finds, with
//! Q equal to the planted partition's modularity computed here from the definition; star,
//! complete and empty graphs; degrees drawn from a discrete power law (α = 2.5) and from a
//! geometric distribution, told apart by the Clauset–Shalizi–Newman comparison; double-edge
//! swaps that keep every degree; well-formed GraphML; a spec with a planted partition run and
//! analysed from the command line; bad input an error naming the record, file or flag.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;

use neurograph_analysis::graph::{
    self, compare_tails, compare_whole, louvain, modularity, ungraph,
};
use neurograph_analysis::trace::Trace;
use serde_json::Value;

use common::{power_law_draw, Rng};

/// Modularity from its definition, `Q = (1/2m) Σ_ij (A_ij - k_i k_j / 2m) δ(c_i, c_j)`, on a
/// dense matrix built from undirected edges (a self-loop adds 2 w to A_uu).
fn q_by_definition(n: usize, edges: &[(usize, usize, f64)], c: &[usize]) -> f64 {
    let mut a = vec![vec![0.0; n]; n];
    for &(u, v, w) in edges {
        a[u][v] += w;
        a[v][u] += w;
    }
    let k: Vec<f64> = a.iter().map(|r| r.iter().sum()).collect();
    let two_m: f64 = k.iter().sum();
    let mut q = 0.0;
    for i in 0..n {
        for j in 0..n {
            if c[i] == c[j] {
                q += a[i][j] - k[i] * k[j] / two_m;
            }
        }
    }
    q / two_m
}

/// Whether two partitions are the same up to the names of the communities.
fn same_partition(a: &[usize], b: &[usize]) -> bool {
    let pairs: HashSet<(usize, usize)> = a.iter().copied().zip(b.iter().copied()).collect();
    let na: HashSet<usize> = a.iter().copied().collect();
    let nb: HashSet<usize> = b.iter().copied().collect();
    pairs.len() == na.len() && pairs.len() == nb.len()
}

/// An undirected planted-partition graph: `groups` groups of `size`, each pair linked with
/// probability `p_in` inside a group, `p_out` across.
fn planted(
    rng: &mut Rng,
    groups: usize,
    size: usize,
    p_in: f64,
    p_out: f64,
) -> Vec<(usize, usize, f64)> {
    let n = groups * size;
    let mut e = Vec::new();
    for u in 0..n {
        for v in u + 1..n {
            let p = if u / size == v / size { p_in } else { p_out };
            if rng.uniform() < p {
                e.push((u, v, 1.0));
            }
        }
    }
    e
}

#[test]
fn louvain_finds_a_planted_partition_and_its_modularity() {
    let mut rng = Rng(2024);
    let edges = planted(&mut rng, 4, 50, 0.3, 0.01);
    let g = ungraph(200, &edges);
    let truth: Vec<usize> = (0..200).map(|u| u / 50).collect();
    let want = q_by_definition(200, &edges, &truth);
    for seed in [1, 2, 3] {
        let m = louvain(&g, seed);
        assert!(same_partition(&m, &truth), "seed {seed}: {m:?}");
        let q = modularity(&g, &m);
        assert!(
            (q - want).abs() < 1e-9,
            "seed {seed}: Q {q} vs planted {want}"
        );
    }
    // Deterministic for a seed.
    assert_eq!(louvain(&g, 5), louvain(&g, 5));
    // Against the degree-preserving null the planted structure stands out.
    let r = graph::modularity_with_null(&g, 1, 5, 10);
    assert!((r.q - want).abs() < 1e-9);
    assert_eq!(r.null_q.len(), 5);
    assert!(
        r.null_mean() < 0.4 * want,
        "null {} vs {want}",
        r.null_mean()
    );
    assert!(r.z() > 10.0, "z = {}", r.z());
    // A weighted graph: the same edges with weights; Q by definition again.
    let weighted: Vec<(usize, usize, f64)> = edges
        .iter()
        .map(|&(u, v, _)| (u, v, 0.5 + rng.uniform()))
        .collect();
    let gw = ungraph(200, &weighted);
    let m = louvain(&gw, 1);
    assert!(same_partition(&m, &truth));
    let qw = modularity(&gw, &m);
    assert!((qw - q_by_definition(200, &weighted, &truth)).abs() < 1e-9);
}

#[test]
fn star_complete_and_empty_graphs() {
    // A star: every partition but one community has Q < 0; Louvain puts all together, Q = 0.
    let star: Vec<(usize, usize, f64)> = (1..20).map(|v| (0, v, 1.0)).collect();
    let g = ungraph(20, &star);
    let m = louvain(&g, 1);
    assert!(m.iter().all(|&c| c == 0), "{m:?}");
    assert!(modularity(&g, &m).abs() < 1e-12);
    // Centre alone, each leaf alone: Q = -Σ (k/2m)² = -(19² + 19) / 38².
    let single: Vec<usize> = (0..20).collect();
    let want = -(19.0 * 19.0 + 19.0) / (38.0 * 38.0);
    assert!((modularity(&g, &single) - want).abs() < 1e-12);
    assert!((q_by_definition(20, &star, &single) - want).abs() < 1e-12);
    // A complete graph: one community, Q = 0.
    let mut k10 = Vec::new();
    for u in 0..10 {
        for v in u + 1..10 {
            k10.push((u, v, 1.0));
        }
    }
    let g = ungraph(10, &k10);
    let m = louvain(&g, 3);
    assert!(m.iter().all(|&c| c == 0), "{m:?}");
    assert!(modularity(&g, &m).abs() < 1e-12);
    // No edges: Q undefined, every node its own community, the null model runs.
    let g = ungraph(5, &[]);
    assert_eq!(louvain(&g, 1), vec![0, 1, 2, 3, 4]);
    assert!(modularity(&g, &[0, 1, 2, 3, 4]).is_nan());
    let r = graph::modularity_with_null(&g, 1, 3, 10);
    assert!(r.q.is_nan());
    assert_eq!(r.null_swaps_done, 0);
    // Self-loops count twice in A_uu, as networkx: two nodes, a loop on each and no edge
    // between: two communities, Q = 2 (1/2 - 1/4) = 1/2.
    let g = ungraph(2, &[(0, 0, 1.0), (1, 1, 1.0)]);
    let m = louvain(&g, 1);
    assert_eq!(m, vec![0, 1]);
    assert!((modularity(&g, &m) - 0.5).abs() < 1e-15);
    assert!((q_by_definition(2, &[(0, 0, 1.0), (1, 1, 1.0)], &m) - 0.5).abs() < 1e-15);
}

#[test]
fn power_law_degrees_prefer_the_power_law() {
    let mut rng = Rng(7);
    let sample: Vec<usize> = (0..4000)
        .map(|_| power_law_draw(&mut rng, 2.5, 1))
        .collect();
    let f = compare_tails(&sample).unwrap();
    assert_eq!(f.preferred(), "power_law", "{f:?}");
    assert!((f.alpha - 2.5).abs() < 0.1, "{f:?}");
    assert!(f.log_likelihood_ratio > 0.0 && f.p_value < 1e-3, "{f:?}");
    assert!(f.n_tail >= 400, "{f:?}");
    // Sampled from x_min = 1: over the whole range too.
    let w = compare_whole(&sample).unwrap();
    assert_eq!((w.x_min, w.n_tail), (1, 4000));
    assert_eq!(w.preferred(), "power_law", "{w:?}");
    assert!((w.alpha - 2.5).abs() < 0.05, "{w:?}");
    // Zeros (isolated nodes) are in the sample, not in any tail.
    let mut with_zeros = sample.clone();
    with_zeros.extend([0; 100]);
    let g = compare_tails(&with_zeros).unwrap();
    assert_eq!((g.n, g.n_tail, g.x_min), (4100, f.n_tail, f.x_min));
}

#[test]
fn geometric_degrees_prefer_the_exponential() {
    let mut rng = Rng(11);
    // Geometric on 1, 2, ... with mean 20: P(x) ∝ (1 - p)^x, an exact discrete exponential
    // with λ = -ln(1 - p).
    let p: f64 = 0.05;
    let sample: Vec<usize> = (0..4000)
        .map(|_| 1 + (rng.uniform().ln() / (1.0 - p).ln()).floor() as usize)
        .collect();
    // Over the whole range the exponential wins, with the rate of the geometric.
    let f = compare_whole(&sample).unwrap();
    assert_eq!(f.preferred(), "exponential", "{f:?}");
    assert!(f.normalized_ratio < -10.0, "{f:?}");
    let lambda = -(1.0 - p).ln();
    assert!((f.lambda - lambda).abs() < 0.05 * lambda, "{f:?}");
    // Above the x_min of least KS distance the power law is never preferred: the KS search
    // finds the far tail, where a steep power law and the exponential are close (Clauset et
    // al.'s method conditions on x_min; this sample gives x_min = 63, 165 values, p = 0.22).
    let t = compare_tails(&sample).unwrap();
    assert_ne!(t.preferred(), "power_law", "{t:?}");
    assert!(t.log_likelihood_ratio < 0.0, "{t:?}");
    assert!(t.x_min > 20, "{t:?}");
    // Too little data: no fit.
    assert!(compare_tails(&[3, 4, 5]).is_none());
    assert!(compare_tails(&[4; 50]).is_none());
}

#[test]
fn double_edge_swaps_keep_every_degree() {
    let mut rng = Rng(3);
    // Every edge its own weight, so that weights lost, duplicated or made up would show.
    let mut with_loop: Vec<(usize, usize, f64)> = planted(&mut rng, 4, 50, 0.3, 0.01)
        .into_iter()
        .enumerate()
        .map(|(k, (u, v, _))| (u, v, 1.0 + k as f64))
        .collect();
    with_loop.push((7, 7, 0.5));
    let g = ungraph(200, &with_loop);
    let mut r = graph::Rng(99);
    let (h, done) = graph::double_edge_swaps(&g, 10 * g.edge_count(), &mut r);
    assert!(
        done > 5 * g.edge_count(),
        "{done} swaps of {}",
        10 * g.edge_count()
    );
    assert_eq!(graph::undirected_degrees(&g), graph::undirected_degrees(&h));
    assert_eq!(h.edge_count(), g.edge_count());
    // Still simple: no new self-loop, no repeated pair; the loop stayed.
    let after = graph::edge_list(&h);
    let pairs: HashSet<(usize, usize)> = after
        .iter()
        .map(|&(u, v, _)| (u.min(v), u.max(v)))
        .collect();
    assert_eq!(pairs.len(), after.len());
    assert_eq!(after.iter().filter(|e| e.0 == e.1).count(), 1);
    assert!(pairs.contains(&(7, 7)));
    // And rewired: most planted edges are gone, so most edges now cross groups (3/4 of random
    // pairs do).
    let crossing = after.iter().filter(|e| e.0 / 50 != e.1 / 50).count();
    assert!(
        crossing as f64 > 0.6 * after.len() as f64,
        "{crossing} of {}",
        after.len()
    );
    // Weights move with their edges: the multiset of weights is unchanged, and the loop
    // kept its own.
    let weights = |e: &[(usize, usize, f64)]| {
        let mut w: Vec<f64> = e.iter().map(|x| x.2).collect();
        w.sort_by(f64::total_cmp);
        w
    };
    assert_eq!(weights(&after), weights(&with_loop));
    assert!(after.iter().any(|e| (e.0, e.1, e.2) == (7, 7, 0.5)));
}

#[test]
fn directed_swaps_keep_in_and_out_degrees_and_bipartiteness() {
    // A random bipartite directed graph 0..60 -> 60..100 with two planted blocks, as a
    // `Network` graph.
    let mut rng = Rng(8);
    let mut edges = Vec::new();
    for u in 0..60usize {
        for v in 60..100usize {
            let p = if (u < 30) == (v < 80) { 0.4 } else { 0.02 };
            if rng.uniform() < p {
                edges.push((u, v, 1.0 + rng.uniform()));
            }
        }
    }
    let e = neurograph_analysis::trace::Edges {
        projection: "W".into(),
        n_pre: 100,
        n_post: 100,
        pre_parts: vec![part()],
        post_parts: vec![part()],
        pre: edges.iter().map(|e| e.0 as u32).collect(),
        post: edges.iter().map(|e| e.1 as u32).collect(),
    };
    let weights: Vec<f64> = edges.iter().map(|e| e.2).collect();
    let input = graph::ProjectionInput {
        edges: e,
        weights: Some(weights.clone()),
        weight_record: Some("W.w".into()),
        row: Some(0),
    };
    let net = graph::build_network(&[input], graph::Sign::Abs, 0.0);
    assert_eq!(net.graph.edge_count(), edges.len());
    let degrees = |g: &graph::petgraph::graph::DiGraph<usize, f64>| {
        let (mut din, mut dout) = (vec![0; 100], vec![0; 100]);
        for e in g.raw_edges() {
            dout[e.source().index()] += 1;
            din[e.target().index()] += 1;
        }
        (din, dout)
    };
    let mut r = graph::Rng(1);
    let (h, done) = graph::directed_edge_swaps(&net.graph, 10 * edges.len(), &mut r);
    assert!(done > 3 * edges.len(), "{done}");
    assert_eq!(degrees(&h), degrees(&net.graph));
    // Still bipartite 0..60 -> 60..100, no repeated pair, the weights moved with the edges.
    let mut seen = HashSet::new();
    for e in h.raw_edges() {
        let (u, v) = (e.source().index(), e.target().index());
        assert!(u < 60 && v >= 60, "{u} -> {v}");
        assert!(seen.insert((u, v)));
    }
    let total: f64 = h.raw_edges().iter().map(|e| e.weight).sum();
    assert!((total - weights.iter().sum::<f64>()).abs() < 1e-9);
    // The blocks stand out against this null (which keeps the bipartition), while the
    // undirected null (which does not) is no fair comparison for a bipartite projection.
    let m = graph::modularity_with_directed_null(&net.graph, 1, 10, 10);
    assert!(m.z() > 5.0, "z = {}", m.z());
    assert_eq!(m.communities, 2);
}

fn part() -> neurograph_analysis::trace::EndpointPart {
    neurograph_analysis::trace::EndpointPart {
        node: "A".into(),
        start: 0,
        offset: 0,
        size: 100,
    }
}

/// A spec whose projection `P: A -> A` has a planted partition of 4 groups of 50, with a
/// synapse state `w = 1 + (i + j) mod 3` (1, 2 or 3), and `B`, a second population reached by
/// `Q` (unnamed synapse weights).
const SPEC: &str = r#"
model planted
neuron N {
  state v: 1 = 0
  dv/dt = -v / (10 ms)
  spike when v > 1 { v = 0 }
}
synapse S {
  state w: 1 = 1 + (i + j) - 3 * floor((i + j) / 3)
  on pre { post.v += w }
}
population A = N[200]
population B = N[10]
project P: A -> A via S { connect bernoulli(if(floor(i / 50) == floor(j / 50), 0.3, 0.01)) }
project Q: A[0..10] -> B via S { connect one_to_one }
record P.edges, P.w at end, Q.edges, A.v at end
run { dt = 1 ms; duration = 5 ms; seed = 4 }
"#;

fn run_spec(name: &str) -> (PathBuf, PathBuf) {
    let dir = common::temp_dir("graph", name);
    let (_, out) = common::run_spec_text(&dir, "planted", SPEC, &[]);
    (dir, out)
}

#[test]
fn cli_on_a_planted_partition_spec() {
    let (dir, out) = run_spec("cli");
    let t = Trace::open(&out).unwrap();
    let e = t.edges("P").unwrap();
    let w = t.state("P.w").unwrap();
    // The planted answer, from the recorded synapses: the symmetrised graph counts both
    // directions (A_uv = number of synapses u->v and v->u), autapses twice on the diagonal.
    let und: Vec<(usize, usize, f64)> = e
        .pre
        .iter()
        .zip(&e.post)
        .map(|(&u, &v)| (u as usize, v as usize, 1.0))
        .collect();
    let truth: Vec<usize> = (0..200).map(|u| u / 50).collect();
    let want = q_by_definition(200, &und, &truth);
    assert!(want > 0.6, "{want}");

    let js = dir.join("g.json");
    let gml = dir.join("g.graphml");
    let o = common::analyze_ok(
        &out,
        "graph",
        &[
            "--projection",
            "P",
            "--null-samples",
            "5",
            "--json",
            js.to_str().unwrap(),
            "--export",
            gml.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("modularity (Louvain"), "{stdout}");
    let d = common::read_json(&js);
    assert_eq!(d["format"], "neurograph-analysis-graph");
    assert_eq!(d["format_version"], 1);
    assert_eq!(d["nodes"], 200);
    assert_eq!(d["synapses"].as_u64().unwrap() as usize, e.pre.len());
    let q = d["modularity"]["q"].as_f64().unwrap();
    assert!((q - want).abs() < 1e-9, "Q {q} vs planted {want}");
    let membership: Vec<usize> = d["modularity"]["membership"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    // Node k is A[k]: nodes are numbered in endpoint order.
    assert_eq!(d["node_list"].as_array().unwrap().len(), 200);
    for (k, n) in d["node_list"].as_array().unwrap().iter().enumerate() {
        assert_eq!(n, &serde_json::json!(["A", k]));
    }
    assert!(same_partition(&membership, &truth));
    assert_eq!(d["modularity"]["communities"], 4);
    assert!(d["modularity"]["null"]["z"].as_f64().unwrap() > 10.0);
    assert_eq!(d["modularity"]["null"]["model"], "directed");
    assert_eq!(d["modularity"]["null"]["samples"], 5);
    // Directed degrees: in + out = total for every node, and the in-degrees are the synapse
    // counts per target (no repeated pairs under bernoulli).
    let dist = d["distributions"].as_array().unwrap();
    assert_eq!(dist.len(), 3);
    let hist = |k: usize| -> Vec<u64> {
        dist[k]["histogram"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    let mut indeg = vec![0usize; 200];
    for &v in &e.post {
        indeg[v as usize] += 1;
    }
    let mut want_hist = vec![0u64; indeg.iter().max().unwrap() + 1];
    for &k in &indeg {
        want_hist[k] += 1;
    }
    assert_eq!(hist(0), want_hist);
    let mean_in = dist[0]["mean"].as_f64().unwrap();
    assert!((mean_in - e.pre.len() as f64 / 200.0).abs() < 1e-12);
    assert!((dist[2]["mean"].as_f64().unwrap() - 2.0 * mean_in).abs() < 1e-12);
    // GraphML: well-formed, 200 nodes with population and index, one edge per synapse pair.
    let text = std::fs::read_to_string(&gml).unwrap();
    let xml = common::parse_xml(&text);
    assert_eq!(xml.root_element().tag_name().name(), "graphml");
    assert_eq!(common::elements(&xml, "node").len(), 200);
    assert_eq!(common::elements(&xml, "edge").len(), e.pre.len());
    // Node 49's first two children: its population and its index.
    let n49 = common::find(&xml, "id", "n49");
    assert_eq!(n49.tag_name().name(), "node");
    let data: Vec<(&str, String)> = n49
        .children()
        .filter(|c| c.is_element())
        .take(2)
        .map(|c| {
            assert_eq!(c.tag_name().name(), "data");
            (common::attr(c, "key"), common::text_of(c))
        })
        .collect();
    assert_eq!(
        data,
        [("population", "A".to_string()), ("index", "49".to_string())]
    );
    let graph = common::elements(&xml, "graph");
    assert_eq!(graph.len(), 1);
    assert_eq!(common::attr(graph[0], "edgedefault"), "directed");

    // Weighted by P.w, keeping w > 1.5 (w is 2 or 3): the kept synapses and the strengths
    // follow the recorded weights; a TSV export of the undirected graph.
    let js2 = dir.join("w.json");
    let tsv = dir.join("g.tsv");
    common::analyze_ok(
        &out,
        "graph",
        &[
            "--weights",
            "P.w",
            "--sign",
            "positive",
            "--threshold",
            "1.5",
            "--undirected",
            "--null-samples",
            "0",
            "--json",
            js2.to_str().unwrap(),
            "--export",
            tsv.to_str().unwrap(),
        ],
    );
    let d = common::read_json(&js2);
    let kept: Vec<usize> = (0..w.width).filter(|&k| w.values[k] > 1.5).collect();
    assert_eq!(d["synapses_kept"].as_u64().unwrap() as usize, kept.len());
    assert_eq!(d["projections"][0]["weights"], "P.w");
    assert_eq!(d["modularity"]["null"], Value::Null);
    let total: f64 = kept.iter().map(|&k| w.values[k]).sum();
    let strength = d["distributions"][0]["strength"]["mean"].as_f64().unwrap();
    assert!((strength - 2.0 * total / 200.0).abs() < 1e-9, "{strength}");
    let sym: Vec<(usize, usize, f64)> = kept
        .iter()
        .map(|&k| (e.pre[k] as usize, e.post[k] as usize, w.values[k]))
        .collect();
    let membership: Vec<usize> = d["modularity"]["membership"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let q = d["modularity"]["q"].as_f64().unwrap();
    assert!((q - q_by_definition(200, &sym, &membership)).abs() < 1e-9);
    let lines: Vec<String> = std::fs::read_to_string(&tsv)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert!(lines[0].starts_with("source\tsource_population\tsource_index\ttarget"));
    assert_eq!(
        lines.len() - 1,
        d["undirected_edges"].as_u64().unwrap() as usize
    );
    let tsv_total: f64 = lines[1..]
        .iter()
        .map(|l| l.rsplit('\t').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!((tsv_total - total).abs() < 1e-9);

    // Two projections: A and B's nodes, B's ten joined one to one.
    common::analyze_ok(
        &out,
        "graph",
        &[
            "--projection",
            "P",
            "--projection",
            "Q",
            "--null-samples",
            "0",
            "--json",
            js.to_str().unwrap(),
        ],
    );
    let d = common::read_json(&js);
    assert_eq!(d["nodes"], 210);
    assert_eq!(d["node_list"][200], serde_json::json!(["B", 0]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let (dir, out) = run_spec("errors");
    let err = |args: &[&str], want: &str| {
        common::expect_error(&common::analyze_args(&out, "graph", args), want);
    };
    err(
        &["--projection", "Z"],
        "no connectivity record of projection `Z`; add `record Z.edges`",
    );
    err(
        &["--weights", "P.x"],
        "--weights P.x: the trace has no state record `P.x`",
    );
    err(
        &["--weights", "A.v"],
        "--weights A.v: `A` is not a projection",
    );
    err(
        &["--weights", "P.w", "--row", "3"],
        "--row 3: `P.w` has 1 row (0..0)",
    );
    err(&["--threshold=-1"], "--threshold -1");
    err(&["--null-samples", "1"], "--null-samples 1");
    err(&["--row", "0"], "--row picks a row of a weight record");
    err(
        &["--export", "/tmp/x.png"],
        "--export /tmp/x.png: the file must end in .graphml",
    );
    // Flags clap refuses: a usage error (exit status 2) naming the flag.
    for (args, want) in [
        (
            &["--sign", "both"][..],
            "invalid value 'both' for '--sign <SIGN>'",
        ),
        (
            &["--directed", "--undirected"][..],
            "'--directed' cannot be used with '--undirected'",
        ),
        (
            &["--null-samples", "x"][..],
            "invalid value 'x' for '--null-samples",
        ),
    ] {
        common::expect_usage_error(&common::analyze_args(&out, "graph", args), want);
    }
    // A corrupt edges file is named.
    std::fs::write(out.join("P.edges.pre.npy"), b"garbage").unwrap();
    err(&["--projection", "P"], "P.edges.pre.npy");
    // A trace without any edges record.
    let plain = dir.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    common::write_spike_trace(&plain, "plain", 1.0, &[("E", 3, vec![(0.1, 1)])]);
    common::expect_error(
        &common::analyze_args(&plain, "graph", &[]),
        "the trace has no connectivity record; add `record W.edges`",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// BDH's attention state `S` (specs/bdh_gpu.ng, `Mem2h0`: 64 x-neurons by 32 dimensions, all to
/// all) recorded with its edges is a weighted bipartite graph: the kept synapses, strengths and
/// node populations follow the recorded `S`.
#[test]
fn bdh_attention_state_as_a_weighted_graph() {
    let dir = common::temp_dir("graph", "bdh");
    let text = std::fs::read_to_string(common::root().join("specs/bdh_gpu.ng")).unwrap();
    let tiny = common::root().join("specs/data/tiny.txt");
    let text = text
        .replace("\"data/tiny.txt\"", &format!("{:?}", tiny.to_str().unwrap()))
        .replace(
            "record Out.logit, X1h0.xs, Y1h0.xy, X2h0.xs, Y2h0.xy, Mem2h0.S at end, Mem2h1.S at end",
            "record Mem2h0.S at end, Mem2h0.edges",
        );
    assert!(text.contains("record Mem2h0.S at end, Mem2h0.edges"));
    let spec = dir.join("bdh.ng");
    std::fs::write(&spec, text).unwrap();
    let out = dir.join("trace");
    common::neurograph_ok(&[
        "run",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--duration",
        "40ms",
    ]);
    let s = Trace::open(&out).unwrap().state("Mem2h0.S").unwrap();
    assert_eq!((s.rows, s.width), (1, 64 * 32));
    let js = dir.join("bdh.json");
    common::analyze_ok(
        &out,
        "graph",
        &[
            "--weights",
            "Mem2h0.S",
            "--sign",
            "positive",
            "--undirected",
            "--null-samples",
            "3",
            "--json",
            js.to_str().unwrap(),
        ],
    );
    let d = common::read_json(&js);
    assert_eq!(d["nodes"], 96);
    assert_eq!(d["synapses"], 2048);
    let positive: Vec<f64> = s.values.iter().copied().filter(|&v| v > 0.0).collect();
    assert!(!positive.is_empty() && positive.len() < 2048);
    assert_eq!(
        d["synapses_kept"].as_u64().unwrap() as usize,
        positive.len()
    );
    let strength = d["distributions"][0]["strength"]["mean"].as_f64().unwrap();
    let want = 2.0 * positive.iter().sum::<f64>() / 96.0;
    assert!(
        (strength - want).abs() < 1e-9 * want,
        "{strength} vs {want}"
    );
    let nodes = d["node_list"].as_array().unwrap();
    assert_eq!(nodes[0], serde_json::json!(["X2h0", 0]));
    assert_eq!(nodes[64], serde_json::json!(["A2h0", 0]));
    // The modularity and its directed null (which keeps the graph bipartite) are computed.
    assert!(d["modularity"]["q"].as_f64().unwrap() > 0.0);
    assert_eq!(d["modularity"]["null"]["model"], "directed");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A per-regime synapse state (`w[brain]` of specs/hmm_glm.ng: one row per hidden state) needs
/// `--row`; each row is that state's coupling, zero weights being "no connection".
#[test]
fn regime_weights_need_a_row() {
    let dir = common::temp_dir("graph", "regime");
    let out = dir.join("trace");
    common::neurograph_ok(&[
        "run",
        "specs/hmm_glm.ng",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--duration",
        "20ms",
    ]);
    common::expect_error(
        &common::analyze_args(&out, "graph", &["--weights", "W.w"]),
        "`W.w` has one row per regime state (5 rows): choose one with --row 0..4",
    );
    let w = Trace::open(&out).unwrap().state("W.w").unwrap();
    assert_eq!((w.rows, w.width), (5, 380));
    let js = dir.join("w.json");
    for row in [0usize, 3] {
        common::analyze_ok(
            &out,
            "graph",
            &[
                "--weights",
                "W.w",
                "--row",
                &row.to_string(),
                "--null-samples",
                "0",
                "--json",
                js.to_str().unwrap(),
            ],
        );
        let d = common::read_json(&js);
        let values = &w.values[row * 380..(row + 1) * 380];
        let nonzero = values.iter().filter(|v| **v != 0.0).count();
        assert_eq!(
            d["synapses_kept"].as_u64().unwrap() as usize,
            nonzero,
            "row {row}"
        );
        assert_eq!(d["projections"][0]["row"], row);
        let total: f64 = values.iter().map(|v| v.abs()).sum();
        let strength = d["distributions"][2]["strength"]["mean"].as_f64().unwrap();
        assert!((strength - 2.0 * total / 20.0).abs() < 1e-9, "row {row}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
