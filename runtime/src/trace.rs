//! The trace directory: `manifest.json` plus one `.npy` file per recorded array, written
//! atomically (into a temporary sibling directory that is renamed into place), so a reader
//! never sees a half-written trace, even when a run is interrupted.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use neurograph_compiler::ir::*;
use serde_json::{json, Value};

use crate::npy::{self, Dtype};
use crate::sim::Sim;

/// How a run ended, for the manifest's `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    /// Every requested step was simulated.
    Complete,
    /// Stopped early on request (Ctrl-C, SIGTERM, a stop flag).
    Interrupted,
    /// Stopped by an error (a non-finite value, a data file that does not fit); the trace
    /// holds what was simulated up to it.
    Failed(String),
}

/// Facts about the run for the manifest.
pub struct TraceMeta {
    pub spec_path: String,
    /// Hash of the spec text (FNV-1a, 64 bit, hex).
    pub spec_hash: String,
    pub seed: u64,
    /// Simulated time actually covered, seconds.
    pub simulated_s: f64,
    pub requested_s: f64,
    pub status: RunStatus,
    /// Parameter values used: (name, value in SI units, unit).
    pub parameters: Vec<(String, f64, String)>,
    /// The spec's text, copied into the trace as `spec.ng` (empty: no copy).
    pub spec_text: String,
    /// When the simulation was created (the manifest's `started_utc`).
    pub started: std::time::SystemTime,
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` of a time since the Unix epoch.
pub fn iso_utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// FNV-1a, 64 bit, of `text`.
pub fn fnv1a64_u64(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `fnv1a64_u64` as 16 hex digits (the manifest's spec hash).
pub fn fnv1a64(text: &str) -> String {
    format!("{:016x}", fnv1a64_u64(text))
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

/// The trace's copy of the spec text (the root file; its imports are not copied).
pub const SPEC_COPY: &str = "spec.ng";

/// The value of the manifest's `format` field: what marks a directory as neurograph's own.
pub const TRACE_FORMAT: &str = "neurograph-trace";

/// Whether `dir` may be replaced by a new trace: it does not exist, or it is a trace that
/// neurograph wrote (its `manifest.json` says `"format": "neurograph-trace"`) and holds no file
/// or directory that the manifest does not list. Anything else is refused with the reason, so
/// a user's own folder is never deleted.
pub fn check_replaceable(dir: &Path) -> io::Result<()> {
    let refuse = |why: String| {
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and {why}; neurograph only replaces a trace it wrote itself: choose another --out",
                dir.display()
            ),
        ))
    };
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return refuse("is not a directory".into());
    }
    let manifest = match std::fs::read_to_string(dir.join("manifest.json")) {
        Ok(text) => text,
        Err(_) => {
            return refuse("is not a neurograph trace (it has no readable manifest.json)".into())
        }
    };
    let value: Value = match serde_json::from_str(&manifest) {
        Ok(v) => v,
        Err(_) => return refuse("has a manifest.json that is not a neurograph manifest".into()),
    };
    if value.get("format").and_then(Value::as_str) != Some(TRACE_FORMAT) {
        return refuse(format!(
            "has a manifest.json without \"format\": \"{TRACE_FORMAT}\""
        ));
    }
    // The files a manifest names: its `files` list, and every record's `file` fields (traces
    // written before the list existed have only those).
    let mut listed = vec!["manifest.json".to_string()];
    if let Some(files) = value.get("files").and_then(Value::as_array) {
        listed.extend(files.iter().filter_map(Value::as_str).map(str::to_string));
    }
    let mut pending = vec![&value];
    while let Some(v) = pending.pop() {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(f)) = map.get("file") {
                    listed.push(f.clone());
                }
                pending.extend(map.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !listed.contains(&name) || !entry.file_type()?.is_file() {
            return refuse(format!("holds `{name}`, which its manifest does not list"));
        }
    }
    Ok(())
}

/// Process ids that leave `.NAME.partial-PID-…` / `.NAME.old-PID-…` siblings.
fn sibling_pid(file_name: &str, prefixes: &[String]) -> Option<u32> {
    let rest = prefixes
        .iter()
        .find_map(|p| file_name.strip_prefix(p.as_str()))?;
    rest.split('-').next()?.parse().ok()
}

/// Whether a process with this id is running (always "yes" where that cannot be known, so
/// nothing of a live run is removed).
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Remove the temporary siblings of `dir` that a killed run left behind (their process is gone).
fn remove_stale_siblings(parent: &Path, name: &str) {
    let prefixes = [format!(".{name}.partial-"), format!(".{name}.old-")];
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = sibling_pid(&file_name, &prefixes) {
            if !process_alive(pid) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A temporary directory removed when dropped unless `keep` was called: every error path of
/// the writer cleans up after itself.
struct TempDir(Option<PathBuf>);

impl TempDir {
    fn path(&self) -> &Path {
        self.0.as_deref().expect("present until kept")
    }

    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// A name no other writer uses at the same time: process id, a per-process counter and the
/// clock.
fn unique_suffix() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let k = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{k}-{nanos}", std::process::id())
}

/// Write the trace of `sim` into `dir`. An earlier trace there is replaced only when
/// neurograph wrote it (`check_replaceable`); the new trace is written into a temporary
/// sibling and renamed into place, so readers and concurrent runs into the same directory
/// see either a whole old trace or a whole new one (the last writer wins). Returns the files.
pub fn write_trace(dir: &Path, sim: &Sim, meta: &TraceMeta) -> io::Result<Vec<PathBuf>> {
    check_replaceable(dir)?;
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let name = dir
        .file_name()
        .map_or("trace".into(), |n| n.to_string_lossy().into_owned());
    remove_stale_siblings(parent, &name);
    let tmp = TempDir(Some(
        parent.join(format!(".{name}.partial-{}", unique_suffix())),
    ));
    std::fs::create_dir(tmp.path())?;
    let files = write_into(tmp.path(), sim, meta)?;
    // Move the old trace aside, then the new one in. Another run may do the same at the same
    // time: when the rename finds a directory in place again, go round once more.
    for _ in 0..64 {
        check_replaceable(dir)?;
        let old = parent.join(format!(".{name}.old-{}", unique_suffix()));
        match std::fs::rename(dir, &old) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let placed = std::fs::rename(tmp.path(), dir);
        let _ = std::fs::remove_dir_all(&old);
        match placed {
            Ok(()) => {
                tmp.keep();
                return Ok(files.into_iter().map(|f| dir.join(f)).collect());
            }
            Err(_) if dir.exists() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{} kept being replaced by other runs; the trace was not written",
        dir.display()
    )))
}

fn write_into(tmp: &Path, sim: &Sim, meta: &TraceMeta) -> io::Result<Vec<String>> {
    let model = sim.model();
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
                    "event": event, "count": n, "size": model.populations[*population].size,
                    "times": {"file": format!("{base}.t.npy"), "unit": "s", "shape": [n], "dtype": "float64"},
                    "indices": {"file": format!("{base}.i.npy"), "shape": [n], "dtype": "uint32"},
                }));
            }
            RecordWhat::State { .. } | RecordWhat::Let { .. } => {
                let Some(sampled) = Sampled::of(model, r) else {
                    continue;
                };
                let base = unique(format!("{}.{}", sampled.node, sampled.variable), &mut used);
                let width = rec.width;
                let rows = rec.values.len().checked_div(width).unwrap_or(0);
                put(&format!("{base}.npy"), &rec.values, &[rows, width], float)?;
                put(
                    &format!("{base}.t.npy"),
                    &rec.times,
                    &[rec.times.len()],
                    Dtype::F64,
                )?;
                let first = sampled.range.map_or(0, |(a, _)| a);
                let mut record = json!({
                    "kind": "state", "name": base, "node": sampled.node, "variable": sampled.variable,
                    "unit": sampled.dim.to_string(), "elements": [first, first as usize + width],
                    "interval_s": r.every, "at_end": r.at_end,
                    "rows": if sampled.per_regime { "one per regime state" } else { "one per sample" },
                    "values": {"file": format!("{base}.npy"), "shape": [rows, width], "dtype": if float == Dtype::F32 { "float32" } else { "float64" }},
                    "times": {"file": format!("{base}.t.npy"), "unit": "s", "shape": [rec.times.len()]},
                });
                if sampled.is_let {
                    record["let"] = json!(true);
                }
                records.push(record);
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
            RecordWhat::Edges { projection } => {
                let pr = &model.projections[*projection];
                let conn = &sim.conn[projection.index()];
                let base = unique(format!("{}.edges", pr.name), &mut used);
                let n = conn.n_synapses();
                let pre: Vec<f64> = conn.pre().iter().map(|&i| f64::from(i)).collect();
                put(&format!("{base}.pre.npy"), &pre, &[n], Dtype::U32)?;
                drop(pre);
                let post: Vec<f64> = conn.post().iter().map(|&j| f64::from(j)).collect();
                put(&format!("{base}.post.npy"), &post, &[n], Dtype::U32)?;
                let endpoint = |ep: &neurograph_compiler::ir::Endpoint| -> Vec<Value> {
                    let mut offset = 0u64;
                    ep.parts
                        .iter()
                        .map(|part| {
                            let size = sim_node_size(sim, part.node).min(part.end as usize)
                                - (part.start as usize).min(sim_node_size(sim, part.node));
                            let v = json!({
                                "node": model.node_name(part.node), "start": part.start,
                                "offset": offset, "size": size,
                            });
                            offset += size as u64;
                            v
                        })
                        .collect()
                };
                records.push(json!({
                    "kind": "edges", "name": base, "projection": pr.name, "synapses": n,
                    "pre_parts": endpoint(&pr.pre), "post_parts": endpoint(&pr.post),
                    "n_pre": conn.n_pre, "n_post": conn.n_post,
                    "pre": {"file": format!("{base}.pre.npy"), "shape": [n], "dtype": "uint32"},
                    "post": {"file": format!("{base}.post.npy"), "shape": [n], "dtype": "uint32"},
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
    let projections: Vec<Value> = model
        .projections
        .iter()
        .map(|(h, p)| {
            json!({
                "name": p.name,
                "synapse_type": model.synapse_types[p.synapse].name,
                "synapses": sim.conn[h.index()].n_synapses(),
            })
        })
        .collect();
    let spec_file = if meta.spec_text.is_empty() {
        Value::Null
    } else {
        std::fs::write(tmp.join(SPEC_COPY), &meta.spec_text)?;
        files.push(SPEC_COPY.to_string());
        Value::from(SPEC_COPY)
    };
    files.push("manifest.json".to_string());
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
        "spec_file": spec_file,
        "started_utc": iso_utc(meta.started),
        "seed": meta.seed,
        "dt_s": model.run.dt,
        "duration_s": meta.simulated_s,
        "requested_duration_s": meta.requested_s,
        "steps": sim.step,
        "interrupted": meta.status == RunStatus::Interrupted,
        "status": match &meta.status {
            RunStatus::Complete => "complete",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed(_) => "failed",
        },
        "error": match &meta.status {
            RunStatus::Failed(e) => Value::from(e.as_str()),
            _ => Value::Null,
        },
        "precision": if model.run.precision == Precision::F32 { "f32" } else { "f64" },
        "parameters": params,
        "projections": projections,
        "records": records,
        "files": files,
    });
    let text = serde_json::to_string_pretty(&manifest).map_err(io::Error::other)?;
    std::fs::write(tmp.join("manifest.json"), text + "\n")?;
    Ok(files)
}

/// The number of elements of a population or projection in a built simulation.
fn sim_node_size(sim: &Sim, node: Node) -> usize {
    sim.nodes[sim.node_index(node)].size
}

/// What the trace says of a sampled record: a state variable or a recorded `let`.
struct Sampled<'a> {
    node: &'a str,
    variable: &'a str,
    dim: neurograph_compiler::units::Dim,
    range: Option<(u32, u32)>,
    /// `at end` of a per-regime variable: one row per regime state.
    per_regime: bool,
    is_let: bool,
}

impl<'a> Sampled<'a> {
    fn of(model: &'a Model, r: &'a Record) -> Option<Sampled<'a>> {
        match &r.what {
            RecordWhat::State { node, var, range } => {
                let v = &model.variables[*var];
                Some(Sampled {
                    node: model.node_name(*node),
                    variable: &v.name,
                    dim: v.dim,
                    range: *range,
                    per_regime: r.at_end && v.regime.is_some(),
                    is_let: false,
                })
            }
            RecordWhat::Let {
                population,
                name,
                dim,
                range,
                ..
            } => Some(Sampled {
                node: &model.populations[*population].name,
                variable: name,
                dim: *dim,
                range: *range,
                per_regime: false,
                is_let: true,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod iso_tests {
    use super::*;

    #[test]
    fn iso_dates_are_civil_utc() {
        assert_eq!(iso_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000000+00:00");
        // 2026-12-02T11:37:40Z
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_796_211_460);
        assert_eq!(iso_utc(t), "2026-12-02T11:37:40.000000+00:00");
        // 2000-02-29 (a leap day of a century leap year)
        let t = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(iso_utc(t), "2000-02-29T00:00:00.000000+00:00");
    }
}
