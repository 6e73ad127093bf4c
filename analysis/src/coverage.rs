//! Neuron coverage as FakeSpotter measures it (Wang, Juefei-Xu, Ma et al., IJCAI 2020: a
//! layer-wise threshold from a reference set, then per input the neurons above it), with
//! populations as the layers and runs as the inputs:
//! - the activity `φ(x, n)` of neuron `n` in run `x` is its spike rate (spikes / duration, Hz)
//!   for `POP.spikes`, or the time-mean of a recorded state variable `POP.VAR` (over the
//!   record's samples);
//! - the threshold of a population (one record) is the mean activity over its neurons and the
//!   reference runs: `T_l = (1 / (|N_l| |T|)) Σ_t Σ_n φ(t, n)`;
//! - neuron `n` is activated by input `x` when `φ(x, n) > T_l`; the coverage is the fraction
//!   activated, `MNC_l(x)`;
//! - the feature vector of an input is the activated indicators (1 or 0) of every population,
//!   concatenated in the order of the records; the activities themselves come with it.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::trace::{Trace, TraceError};

/// The activity per neuron of `variable` in `trace`: `POP.spikes` → spike rate (Hz) per
/// neuron; otherwise a state record `POP.VAR` → its time-mean per element. Returns the values
/// and their unit.
pub fn activity(trace: &Trace, variable: &str) -> Result<(Vec<f64>, String), TraceError> {
    if let Some(pop) = variable.strip_suffix(".spikes") {
        let ev = trace.spikes(pop)?;
        if trace.duration_s <= 0.0 {
            return Err(TraceError::Option(format!(
                "{}: the run lasted 0 s; it has no spike rate",
                trace.dir.display()
            )));
        }
        let mut counts = vec![0.0; ev.size];
        for &i in &ev.indices {
            counts[i as usize] += 1.0;
        }
        Ok((
            counts.into_iter().map(|c| c / trace.duration_s).collect(),
            "Hz".into(),
        ))
    } else {
        let st = trace.state(variable)?;
        if st.rows == 0 {
            return Err(TraceError::Option(format!(
                "{}: `{variable}` has no samples",
                trace.dir.display()
            )));
        }
        let mut mean = vec![0.0; st.width];
        for r in 0..st.rows {
            for (m, v) in mean
                .iter_mut()
                .zip(&st.values[r * st.width..(r + 1) * st.width])
            {
                *m += v;
            }
        }
        for m in &mut mean {
            *m /= st.rows as f64;
        }
        if let Some(k) = mean.iter().position(|m| !m.is_finite()) {
            return Err(TraceError::Option(format!(
                "{}: `{variable}` element {k} is not finite",
                trace.dir.display()
            )));
        }
        Ok((mean, st.unit))
    }
}

/// A population's (record's) threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// `POP.spikes` or `POP.VAR`.
    pub variable: String,
    pub unit: String,
    pub neurons: usize,
    /// Mean activity over the neurons and the reference runs.
    pub threshold: f64,
    /// Offset of this population's neurons in the feature vector.
    pub offset: usize,
}

/// One input run's coverage.
#[derive(Debug, Clone, PartialEq)]
pub struct InputCoverage {
    pub trace: PathBuf,
    pub seed: Value,
    /// `MNC_l(x)` per layer, in layer order.
    pub coverage: Vec<f64>,
    /// Activated (1) or not (0) per neuron, layers concatenated: the feature vector.
    pub vector: Vec<u8>,
    /// The activity per neuron, layers concatenated.
    pub activity: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CoverageReport {
    pub references: Vec<PathBuf>,
    pub layers: Vec<Layer>,
    pub inputs: Vec<InputCoverage>,
}

/// `T_l`: the mean of every value of every reference run's activity.
pub fn threshold(reference: &[Vec<f64>]) -> f64 {
    let n: usize = reference.iter().map(Vec::len).sum();
    reference.iter().flatten().sum::<f64>() / n as f64
}

/// `MNC_l(x)` and the indicators: the fraction of `activity` above `threshold`.
pub fn coverage(activity: &[f64], threshold: f64) -> (f64, Vec<u8>) {
    let ind: Vec<u8> = activity.iter().map(|&a| u8::from(a > threshold)).collect();
    let on = ind.iter().filter(|&&b| b == 1).count();
    (on as f64 / activity.len().max(1) as f64, ind)
}

/// The variables of a trace the pass uses by default: every population with a spike record.
fn default_variables(trace: &Trace) -> Vec<String> {
    trace
        .spike_populations()
        .into_iter()
        .map(|p| format!("{p}.spikes"))
        .collect()
}

/// The activities of `variables` in `trace`, checked against the sizes `sizes` (when given).
fn activities(
    trace: &Trace,
    variables: &[String],
    sizes: Option<&[usize]>,
) -> Result<Vec<(Vec<f64>, String)>, TraceError> {
    let mut out = Vec::new();
    for (k, v) in variables.iter().enumerate() {
        let a = activity(trace, v)?;
        if let Some(s) = sizes {
            if a.0.len() != s[k] {
                return Err(TraceError::Option(format!(
                    "{}: `{v}` has {} neurons, the first reference trace {}; inputs and references must be runs of the same network",
                    trace.dir.display(),
                    a.0.len(),
                    s[k]
                )));
            }
        }
        out.push(a);
    }
    Ok(out)
}

/// The `coverage` pass: thresholds from `references`, coverage of each of `inputs`, over
/// `variables` (default: every population with a spike record in the first reference).
pub fn analyze(
    inputs: &[Trace],
    references: &[Trace],
    variables: Option<&[String]>,
) -> Result<CoverageReport, TraceError> {
    let Some(first) = references.first() else {
        return Err(TraceError::Option(
            "no reference trace: give the reference runs with --reference DIR".into(),
        ));
    };
    let variables: Vec<String> = match variables {
        Some(v) if !v.is_empty() => v.to_vec(),
        _ => default_variables(first),
    };
    if variables.is_empty() {
        return Err(TraceError::NoSpikeRecords);
    }
    let ref_acts = activities(first, &variables, None)?;
    let sizes: Vec<usize> = ref_acts.iter().map(|a| a.0.len()).collect();
    let mut per_layer: Vec<Vec<Vec<f64>>> = ref_acts.iter().map(|a| vec![a.0.clone()]).collect();
    for r in &references[1..] {
        for (k, a) in activities(r, &variables, Some(&sizes))?
            .into_iter()
            .enumerate()
        {
            per_layer[k].push(a.0);
        }
    }
    let mut offset = 0;
    let layers: Vec<Layer> = variables
        .iter()
        .enumerate()
        .map(|(k, v)| {
            let l = Layer {
                variable: v.clone(),
                unit: ref_acts[k].1.clone(),
                neurons: sizes[k],
                threshold: threshold(&per_layer[k]),
                offset,
            };
            offset += sizes[k];
            l
        })
        .collect();
    let mut out = Vec::new();
    for t in inputs {
        let acts = activities(t, &variables, Some(&sizes))?;
        let mut c = InputCoverage {
            trace: t.dir.clone(),
            seed: t.manifest.get("seed").cloned().unwrap_or(Value::Null),
            coverage: Vec::new(),
            vector: Vec::new(),
            activity: Vec::new(),
        };
        for (l, (a, _)) in layers.iter().zip(acts) {
            let (frac, ind) = coverage(&a, l.threshold);
            c.coverage.push(frac);
            c.vector.extend(ind);
            c.activity.extend(a);
        }
        out.push(c);
    }
    Ok(CoverageReport {
        references: references.iter().map(|r| r.dir.clone()).collect(),
        layers,
        inputs: out,
    })
}

/// The JSON document of `neurograph analyze TRACE coverage --json` (schema in README).
pub fn to_json(r: &CoverageReport) -> Value {
    json!({
        "format": "neurograph-analysis-coverage",
        "format_version": 1,
        "references": r.references.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "layers": r.layers.iter().map(|l| json!({
            "variable": l.variable,
            "unit": l.unit,
            "neurons": l.neurons,
            "threshold": l.threshold,
            "offset": l.offset,
        })).collect::<Vec<_>>(),
        "inputs": r.inputs.iter().map(|c| json!({
            "trace": c.trace.display().to_string(),
            "seed": c.seed,
            "coverage": c.coverage,
            "mean_coverage": c.coverage.iter().sum::<f64>() / c.coverage.len().max(1) as f64,
            "vector": c.vector,
            "activity": c.activity,
        })).collect::<Vec<_>>(),
    })
}

/// The table `neurograph analyze TRACE coverage` prints: thresholds, then one line per input.
pub fn table_text(r: &CoverageReport) -> String {
    let mut s = format!(
        "thresholds (mean activity over the neurons and {} reference trace{}):\n",
        r.references.len(),
        if r.references.len() == 1 { "" } else { "s" }
    );
    for l in &r.layers {
        s += &format!(
            "  {:<16} {:>6} neurons  T = {:.6} {}\n",
            l.variable, l.neurons, l.threshold, l.unit
        );
    }
    let width = r
        .inputs
        .iter()
        .map(|c| c.trace.display().to_string().len())
        .max()
        .unwrap_or(5)
        .max(5);
    s += &format!("{:<width$}", "input");
    for l in &r.layers {
        s += &format!(" {:>14}", l.variable);
    }
    s += &format!(" {:>8}\n", "mean");
    for c in &r.inputs {
        s += &format!("{:<width$}", c.trace.display().to_string());
        for v in &c.coverage {
            s += &format!(" {v:>14.4}");
        }
        s += &format!(
            " {:>8.4}\n",
            c.coverage.iter().sum::<f64>() / c.coverage.len().max(1) as f64
        );
    }
    s += "coverage: fraction of a population's neurons whose activity exceeds its threshold\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_and_coverage_by_hand() {
        // Two reference runs of a 4-neuron layer: mean 2.5.
        let t = threshold(&[vec![1.0, 2.0, 3.0, 4.0], vec![0.0, 2.0, 4.0, 4.0]]);
        assert_eq!(t, 2.5);
        let (f, ind) = coverage(&[3.0, 2.5, 0.0, 10.0], t);
        assert_eq!(ind, vec![1, 0, 0, 1]);
        assert_eq!(f, 0.5);
    }
}
