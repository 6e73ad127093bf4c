//! `neurograph analyze TRACE groups`: core neurons, groups and circuit of a target, with
//! ablation re-runs (`neurograph::groups::Rerun`).

use std::path::{Path, PathBuf};

use std::time::Instant;

use clap::Args;
use neurograph::analysis::groups::{self, GroupsOptions, Target, WeightSource};
use neurograph::groups::Rerun;

use super::{open_trace, write_json, Common};

#[derive(Args)]
pub struct GroupsArgs {
    /// The target neuron or neurons: `POP[i]` or `POP[a..b]` (elements a to b-1).
    #[arg(long, value_name = "POP[i]|POP[a..b]")]
    target: String,
    /// How many candidates, ranked by |attribution|, the cumulative ablation silences (one
    /// re-run each).
    #[arg(long, default_value_t = 20)]
    candidates: usize,
    /// NeurFlow's acceptable error range: the core set is the smallest prefix whose relative
    /// change of the target's spike count exceeds the largest change minus this.
    #[arg(long, default_value_t = 0.05)]
    tolerance: f64,
    /// Random sets of the core set's size silenced for the fidelity comparison (one re-run
    /// each).
    #[arg(long, default_value_t = 10)]
    random_sets: usize,
    /// Hops back from the target: 1 finds its direct inputs; each further hop finds the core
    /// set of the previous hop's core set (NeurFlow's layer by layer).
    #[arg(long, default_value_t = 1)]
    hops: usize,
    /// Seed of the random sets.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Weight of a projection's synapses, `PROJ=VALUE`: a synapse state record (`W.w`), a
    /// parameter of the manifest (`we`) or a number with its unit (`1.62mV`); repeatable.
    /// Default: the record `PROJ.w` (`record PROJ.w at end`).
    #[arg(long = "weight", value_name = "PROJ=VALUE")]
    weights: Vec<String>,
    /// The spec the trace was written from (default: the path in its manifest).
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
    /// Also write the circuit as Graphviz DOT to FILE.
    #[arg(long, value_name = "FILE")]
    dot: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

pub fn run(trace: &Path, a: GroupsArgs) -> Result<(), String> {
    let target = Target::parse(&a.target).map_err(|e| e.to_string())?;
    let trace = open_trace(trace)?;
    let mut weights = Vec::new();
    for w in &a.weights {
        let Some((proj, value)) = w.split_once('=') else {
            return Err(format!(
                "--weight {w}: write PROJ=VALUE (a record such as W.w, a parameter such as we, or a number with its unit)"
            ));
        };
        let (proj, value) = (proj.trim(), value.trim());
        let source = if trace.has_state(value) {
            WeightSource::Record(value.to_string())
        } else if let Some((v, unit)) = groups::manifest_parameter(&trace, value) {
            WeightSource::Value(v, unit)
        } else {
            match neurograph::compiler::quantity::parse_quantity(value) {
                Ok((v, d)) if v.is_finite() => WeightSource::Value(v, d.to_string()),
                _ => {
                    return Err(format!(
                        "--weight {w}: `{value}` is neither a state record of the trace, nor a parameter of its manifest, nor a number with a unit"
                    ))
                }
            }
        };
        weights.push((proj.to_string(), source));
    }
    let opts = GroupsOptions {
        weights,
        candidates: a.candidates,
        tolerance: a.tolerance,
        random_sets: a.random_sets,
        seed: a.seed,
        hops: a.hops,
    };
    // The simulation is rebuilt (and checked against the trace) at the first ablation, after
    // the checks of the target, the records and the weights.
    let mut rerun: Option<Rerun> = None;
    let start = Instant::now();
    let mut done = 0usize;
    let mut ablate = |set: &[groups::Neuron], measured: &[groups::Neuron], what: &str| {
        if rerun.is_none() {
            let r = Rerun::from_trace(&trace, a.spec.as_deref())?;
            eprintln!(
                "groups: re-running {} (seed {}, {} steps) to check it reproduces the trace",
                r.spec.display(),
                r.seed,
                r.steps
            );
            r.check_reproduces(&trace)?;
            rerun = Some(r);
        }
        let r = rerun.as_ref().expect("set above");
        done += 1;
        let c = r.spike_count(set, measured)?;
        eprintln!(
            "groups: ablation {done}: {what} silenced ({} neurons): {c} spikes [{:.1} s]",
            set.len(),
            start.elapsed().as_secs_f64()
        );
        Ok(c)
    };
    let r =
        groups::analyze_trace(&trace, &target, &opts, &mut ablate).map_err(|e| e.to_string())?;
    super::print_out(&groups::table_text(&r))?;
    if let Some(path) = a.common.json.as_deref() {
        write_json(path, &groups::to_json(&trace, &r))?;
    }
    if let Some(path) = a.dot.as_deref() {
        std::fs::write(path, groups::to_dot(&r))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}
