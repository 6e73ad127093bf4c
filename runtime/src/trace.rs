//! The trace directory: `manifest.json` plus one `.npy` file per recorded array, written
//! atomically (into a temporary sibling directory that is renamed into place), so a reader
//! never sees a half-written trace, even when a run is interrupted.

use std::io;
use std::path::{Path, PathBuf};

use neurograph_compiler::ir::*;
use serde_json::{json, Value};

use crate::npy::{self, Dtype};
use crate::sim::Sim;

/// Facts about the run for the manifest.
pub struct TraceMeta {
    pub spec_path: String,
    /// Hash of the spec text (FNV-1a, 64 bit, hex).
    pub spec_hash: String,
    pub seed: u64,
    /// Simulated time actually covered, seconds.
    pub simulated_s: f64,
    pub requested_s: f64,
    pub interrupted: bool,
    /// Parameter values used: (name, value in SI units, unit).
    pub parameters: Vec<(String, f64, String)>,
}

pub fn fnv1a64(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn unique(name: String, used: &mut Vec<String>) -> String {
    let mut candidate = name.clone();
    let mut k = 2;
    while used.contains(&candidate) {
        candidate = format!("{name}_{k}");
        k += 1;
    }
    used.push(candidate.clone());
    candidate
}

/// Write the trace of `sim` into `dir` (replacing an earlier trace there). Returns the files.
pub fn write_trace(dir: &Path, sim: &Sim, meta: &TraceMeta) -> io::Result<Vec<PathBuf>> {
    if dir.exists() && !dir.join("manifest.json").is_file() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a neurograph trace; choose another --out",
                dir.display()
            ),
        ));
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let name = dir
        .file_name()
        .map_or("trace".into(), |n| n.to_string_lossy().into_owned());
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir(&tmp)?;
    let result = write_into(&tmp, sim, meta);
    let files = match result {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::rename(&tmp, dir)?;
    Ok(files.into_iter().map(|f| dir.join(f)).collect())
}

fn write_into(tmp: &Path, sim: &Sim, meta: &TraceMeta) -> io::Result<Vec<String>> {
    let model = sim.model;
    let float = if model.run.precision == Precision::F32 {
        Dtype::F32
    } else {
        Dtype::F64
    };
    let mut used = Vec::new();
    let mut files = Vec::new();
    let mut records = Vec::new();
    let mut put = |file: &str, values: &[f64], shape: &[usize], dtype: Dtype| -> io::Result<()> {
        npy::write(&tmp.join(file), values, shape, dtype)?;
        files.push(file.to_string());
        Ok(())
    };
    for (k, r) in model.records.iter().enumerate() {
        let rec = &sim.recordings[k];
        let n = rec.times.len();
        match &r.what {
            RecordWhat::Events { population, event } => {
                let base = unique(
                    format!(
                        "{}.{}",
                        model.populations[*population].name,
                        if event == "spike" { "spikes" } else { event }
                    ),
                    &mut used,
                );
                put(&format!("{base}.t.npy"), &rec.times, &[n], Dtype::F64)?;
                put(&format!("{base}.i.npy"), &rec.values, &[n], Dtype::U32)?;
                records.push(json!({
                    "kind": "events", "name": base, "population": model.populations[*population].name,
                    "event": event, "count": n,
                    "times": {"file": format!("{base}.t.npy"), "unit": "s", "shape": [n], "dtype": "float64"},
                    "indices": {"file": format!("{base}.i.npy"), "shape": [n], "dtype": "uint32"},
                }));
            }
            RecordWhat::State { node, var, range } => {
                let v = &model.variables[*var];
                let base = unique(format!("{}.{}", model.node_name(*node), v.name), &mut used);
                let width = rec.width;
                let rows = rec.values.len().checked_div(width).unwrap_or(0);
                put(&format!("{base}.npy"), &rec.values, &[rows, width], float)?;
                put(
                    &format!("{base}.t.npy"),
                    &rec.times,
                    &[rec.times.len()],
                    Dtype::F64,
                )?;
                let first = range.map_or(0, |(a, _)| a);
                records.push(json!({
                    "kind": "state", "name": base, "node": model.node_name(*node), "variable": v.name,
                    "unit": v.dim.to_string(), "elements": [first, first as usize + width],
                    "interval_s": r.every, "at_end": r.at_end,
                    "rows": if r.at_end && v.regime.is_some() { "one per regime state" } else { "one per sample" },
                    "values": {"file": format!("{base}.npy"), "shape": [rows, width], "dtype": if float == Dtype::F32 { "float32" } else { "float64" }},
                    "times": {"file": format!("{base}.t.npy"), "unit": "s", "shape": [rec.times.len()]},
                }));
            }
            RecordWhat::Rate { population } => {
                let base = unique(
                    format!("rate.{}", model.populations[*population].name),
                    &mut used,
                );
                put(&format!("{base}.npy"), &rec.values, &[n], Dtype::F64)?;
                put(&format!("{base}.t.npy"), &rec.times, &[n], Dtype::F64)?;
                records.push(json!({
                    "kind": "rate", "name": base, "population": model.populations[*population].name,
                    "unit": "Hz", "interval_s": r.every.unwrap_or(model.run.dt),
                    "values": {"file": format!("{base}.npy"), "shape": [n]},
                    "times": {"file": format!("{base}.t.npy"), "unit": "s", "shape": [n]},
                }));
            }
            RecordWhat::Regime(h) => {
                let reg = &model.regimes[*h];
                let base = unique(format!("regime.{}", reg.name), &mut used);
                put(&format!("{base}.npy"), &rec.values, &[n], Dtype::I64)?;
                put(&format!("{base}.t.npy"), &rec.times, &[n], Dtype::F64)?;
                records.push(json!({
                    "kind": "regime", "name": base, "regime": reg.name, "states": reg.states,
                    "values": {"file": format!("{base}.npy"), "shape": [n], "dtype": "int64"},
                    "times": {"file": format!("{base}.t.npy"), "unit": "s", "shape": [n]},
                }));
            }
        }
    }
    let params: Vec<Value> = meta
        .parameters
        .iter()
        .map(|(n, v, u)| json!({"name": n, "value": v, "unit": u}))
        .collect();
    let manifest = json!({
        "format": "neurograph-trace",
        "format_version": 1,
        "neurograph_version": env!("CARGO_PKG_VERSION"),
        "model": model.name,
        "spec": meta.spec_path,
        "spec_hash_fnv1a64": meta.spec_hash,
        "seed": meta.seed,
        "dt_s": model.run.dt,
        "duration_s": meta.simulated_s,
        "requested_duration_s": meta.requested_s,
        "steps": sim.step,
        "interrupted": meta.interrupted,
        "precision": if model.run.precision == Precision::F32 { "f32" } else { "f64" },
        "parameters": params,
        "records": records,
    });
    let text = serde_json::to_string_pretty(&manifest).map_err(io::Error::other)?;
    std::fs::write(tmp.join("manifest.json"), text + "\n")?;
    files.push("manifest.json".to_string());
    Ok(files)
}
