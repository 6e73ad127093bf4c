//! Ablation re-runs for `neurograph analyze TRACE groups`: rebuild the simulation a trace was
//! written by (spec, seed, steps and parameter values from its manifest), check that it
//! reproduces the trace's spikes exactly, then run it again with chosen neurons silenced
//! (`Simulation::silence`). This is the one analysis that simulates, so it lives here and not
//! in `neurograph-analysis` (whose passes only read traces); the pass itself
//! (`neurograph_analysis::groups`) calls [`Rerun::spike_count`] for each ablation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use neurograph_analysis::groups::Neuron;
use neurograph_analysis::trace::Trace;
use neurograph_runtime::trace::fnv1a64;
use serde_json::Value;

use crate::{Backend, Model, Simulation};

/// What it takes to simulate a trace's run again.
pub struct Rerun {
    pub model: Model,
    pub spec: PathBuf,
    pub seed: u64,
    pub steps: u64,
    /// Parameter values of the manifest that differ from the spec's (name, SI value).
    pub sets: Vec<(String, f64)>,
    pub backend: Backend,
}

impl Rerun {
    /// Read the manifest of `trace`; `spec` replaces the spec path it names (relative to the
    /// directory `neurograph run` was started in). Refuses a spec whose text changed since the
    /// trace was written.
    pub fn from_trace(trace: &Trace, spec: Option<&Path>) -> Result<Rerun, String> {
        let m = &trace.manifest;
        let manifest = trace.dir.join("manifest.json");
        let field = |k: &str| {
            m.get(k).ok_or_else(|| {
                format!(
                    "{}: no `{k}`: cannot re-run the simulation",
                    manifest.display()
                )
            })
        };
        let spec = match spec {
            Some(s) => s.to_path_buf(),
            None => PathBuf::from(
                field("spec")?
                    .as_str()
                    .ok_or_else(|| format!("{}: `spec` is not a path", manifest.display()))?,
            ),
        };
        let text = std::fs::read_to_string(&spec).map_err(|e| {
            format!(
                "cannot read the spec {} the trace was written from: {e} (relative paths start where `neurograph run` was started; give it with --spec FILE)",
                spec.display()
            )
        })?;
        let hash = field("spec_hash_fnv1a64")?.as_str().unwrap_or_default();
        let now = fnv1a64(&text);
        if now != hash {
            return Err(format!(
                "{}: the spec changed since the trace was written (its hash is {now}, the trace's {hash}): the ablations would not simulate the network of the trace; run it again, or give the spec it was written from with --spec",
                spec.display(),
            ));
        }
        let model = Model::compile_text(&spec, text).map_err(|e| e.to_string())?;
        let seed = field("seed")?
            .as_u64()
            .ok_or_else(|| format!("{}: `seed` is not a number", manifest.display()))?;
        let steps = field("steps")?
            .as_u64()
            .ok_or_else(|| format!("{}: `steps` is not a number", manifest.display()))?;
        let defaults: BTreeMap<String, f64> =
            crate::run::parameter_values(&model.compiled().model, &[])
                .into_iter()
                .map(|(n, v, _)| (n, v))
                .collect();
        let mut sets = Vec::new();
        for p in field("parameters")?.as_array().into_iter().flatten() {
            let (Some(name), Some(value)) = (
                p.get("name").and_then(Value::as_str),
                p.get("value").and_then(Value::as_f64),
            ) else {
                return Err(format!(
                    "{}: an entry of `parameters` is not {{name, value}}",
                    manifest.display()
                ));
            };
            if defaults.get(name) != Some(&value) {
                sets.push((name.to_string(), value));
            }
        }
        Ok(Rerun {
            model,
            spec,
            seed,
            steps,
            sets,
            backend: Backend::Jit,
        })
    }

    /// A fresh simulation of the trace's run with `silenced` silenced, run to the end.
    pub fn run(&self, silenced: &[Neuron]) -> Result<Simulation, String> {
        let mut b = self
            .model
            .simulation()
            .seed(self.seed)
            .backend(self.backend);
        for (name, value) in &self.sets {
            b = b.set_si(name, *value).map_err(|e| e.to_string())?;
        }
        let mut sim = b.build().map_err(|e| e.to_string())?;
        let mut by_pop: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for n in silenced {
            by_pop.entry(&n.population).or_default().push(n.index);
        }
        for (pop, idx) in by_pop {
            sim.silence(pop, &idx).map_err(|e| e.to_string())?;
        }
        sim.step(self.steps).map_err(|e| e.to_string())?;
        Ok(sim)
    }

    /// Run without silencing and require the spikes of every population the trace records to
    /// be those of the trace, exactly.
    pub fn check_reproduces(&self, trace: &Trace) -> Result<(), String> {
        let sim = self.run(&[])?;
        for pop in trace.spike_populations() {
            let ev = trace.spikes(&pop).map_err(|e| e.to_string())?;
            let (t, i) = sim.spikes(&pop).map_err(|e| e.to_string())?;
            if t != ev.times || i != ev.indices {
                let first = t
                    .iter()
                    .zip(&i)
                    .zip(ev.times.iter().zip(&ev.indices))
                    .position(|(a, b)| a.0 != b.0 || a.1 != b.1)
                    .unwrap_or(t.len().min(ev.times.len()));
                return Err(format!(
                    "re-running {} (seed {}, {} steps, the manifest's parameter values) does not reproduce the trace's spikes of `{pop}` ({} spikes against the trace's {}; they differ from spike {first} on): the spec or a file it reads changed since the trace was written",
                    self.spec.display(),
                    self.seed,
                    self.steps,
                    t.len(),
                    ev.times.len()
                ));
            }
        }
        Ok(())
    }

    /// The spikes of the neurons `measured` with the neurons `silenced` silenced.
    pub fn spike_count(&self, silenced: &[Neuron], measured: &[Neuron]) -> Result<u64, String> {
        let sim = self.run(silenced)?;
        let mut by_pop: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for n in measured {
            by_pop.entry(&n.population).or_default().push(n.index);
        }
        let mut total = 0;
        for (pop, mut idx) in by_pop {
            idx.sort_unstable();
            let (_, i) = sim.spikes(pop).map_err(|e| e.to_string())?;
            total += i.iter().filter(|i| idx.binary_search(i).is_ok()).count() as u64;
        }
        Ok(total)
    }
}
