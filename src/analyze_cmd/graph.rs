//! `neurograph analyze TRACE graph`.

use std::path::{Path, PathBuf};

use clap::Args;
use neurograph_analysis::graph;

use super::{open_trace, write_json, Common};

#[derive(Args)]
pub struct GraphArgs {
    /// A projection with a connectivity record (`record W.edges`); repeatable, the graph is
    /// their union. Default: the projections of --weights, else every recorded projection.
    #[arg(long = "projection", value_name = "W")]
    projections: Vec<String>,
    /// A synapse state record of a projection (`record W.w at end`, BDH's `Mem.S at end`)
    /// giving the edge weights; repeatable (one per projection). Without it, edges weigh 1.
    #[arg(long = "weights", value_name = "W.VAR")]
    weights: Vec<String>,
    /// Row of a weight record with several: a regime state (`w[brain]`, one row per state) or
    /// a sample (default: the last sample).
    #[arg(long, value_name = "K")]
    row: Option<usize>,
    /// Keep synapses whose weight passes the threshold: `|w| > x` (`--sign abs`), `w > x`
    /// (`positive`) or `w < -x` (`negative`).
    #[arg(long, default_value_t = 0.0, value_name = "x")]
    threshold: f64,
    /// Which weights become edges: `abs`, `positive` or `negative` (edge weight |w|).
    #[arg(long, default_value = "abs", value_parser = ["abs", "positive", "negative"])]
    sign: String,
    /// Degrees of the directed graph: in, out and total (the default).
    #[arg(long, conflicts_with = "undirected")]
    directed: bool,
    /// Degrees of the undirected symmetrised graph.
    #[arg(long)]
    undirected: bool,
    /// Degree-preserving randomisations for the modularity's null model (0: none).
    #[arg(long, default_value_t = 20)]
    null_samples: usize,
    /// The null model's randomisations keep each node's in- and out-degree (`directed`:
    /// swaps of directed edges' targets, then symmetrised) or its undirected degree
    /// (`undirected`: double-edge swaps of the symmetrised graph).
    #[arg(long = "null", default_value = "directed", value_parser = ["directed", "undirected"])]
    null_model: String,
    /// Attempted swaps per edge in each randomisation.
    #[arg(long, default_value_t = 10)]
    swaps_per_edge: usize,
    /// Seed of Louvain's node order and of the randomisations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the graph to FILE.graphml (GraphML) or FILE.tsv (edge list).
    #[arg(long, value_name = "FILE")]
    export: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

pub fn run(trace: &Path, a: GraphArgs) -> Result<(), String> {
    let export_kind = match &a.export {
        None => None,
        Some(p) => match p.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("graphml") => Some(true),
            Some(e) if e.eq_ignore_ascii_case("tsv") => Some(false),
            _ => {
                return Err(format!(
                    "--export {}: the file must end in .graphml (GraphML) or .tsv (edge list)",
                    p.display()
                ))
            }
        },
    };
    let opts = graph::GraphOptions {
        projections: (!a.projections.is_empty()).then_some(a.projections),
        weights: a.weights,
        row: a.row,
        sign: match a.sign.as_str() {
            "positive" => graph::Sign::Positive,
            "negative" => graph::Sign::Negative,
            _ => graph::Sign::Abs,
        },
        threshold: a.threshold,
        directed: !a.undirected,
        null_samples: a.null_samples,
        null_model: if a.null_model == "undirected" {
            graph::NullModel::Undirected
        } else {
            graph::NullModel::Directed
        },
        swaps_per_edge: a.swaps_per_edge,
        seed: a.seed,
    };
    let trace = open_trace(trace)?;
    let report = graph::analyze_trace(&trace, &opts).map_err(|e| e.to_string())?;
    super::print_out(&graph::table_text(&report))?;
    if let (Some(path), Some(is_graphml)) = (&a.export, export_kind) {
        let text = if is_graphml {
            graph::graphml(
                &report.network,
                report.directed,
                Some(&report.modularity.membership),
            )
        } else {
            graph::edge_list_tsv(&report.network, report.directed)
        };
        std::fs::write(path, text).map_err(|e| format!("--export {}: {e}", path.display()))?;
    }
    if let Some(path) = a.common.json.as_deref() {
        let export = a.export.as_ref().map(|p| p.display().to_string());
        write_json(path, &graph::to_json(&trace, &report, export.as_deref()))?;
    }
    Ok(())
}
