//! Reading a trace directory (`manifest.json` plus one `.npy` file per array, as
//! `neurograph_runtime::trace` writes it). Every problem is a [`TraceError`] naming the file or
//! the record; nothing here panics on bad input.

use std::path::{Path, PathBuf};

use neurograph_runtime::npy;
use serde_json::Value;

/// The manifest's `format` value of a neurograph trace.
pub const FORMAT: &str = "neurograph-trace";
/// The manifest `format_version`s this reader understands.
pub const FORMAT_VERSIONS: &[u64] = &[1];

/// What can go wrong when reading a trace or running a pass over it.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a valid trace manifest: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    #[error("{}: \"format\" is {found}, not \"{FORMAT}\"; is this a neurograph trace?", path.display())]
    Format { path: PathBuf, found: String },
    #[error("{}: format_version {found} is not supported (this neurograph reads version 1)", path.display())]
    Version { path: PathBuf, found: String },
    #[error("{}: malformed .npy file: {message}", path.display())]
    Npy { path: PathBuf, message: String },
    #[error("the trace has no spike record of population `{population}`; add `record {population}.spikes`")]
    MissingSpikes { population: String },
    #[error("the trace has no `{event}` event record of population `{population}`; add `record {population}.{event}`")]
    MissingEvents { population: String, event: String },
    #[error("the trace has no state record `{name}`; add `record {name}`")]
    MissingState { name: String },
    #[error("the trace has no state record `{name}`; add `record {name} every 1 ms`")]
    MissingSampledState { name: String },
    #[error("the trace has no connectivity record of projection `{projection}`; add `record {projection}.edges`")]
    MissingEdges { projection: String },
    #[error("the trace has no record of regime `{regime}`; add `record {regime}`")]
    MissingRegime { regime: String },
    #[error("the trace records no spikes; add `record POPULATION.spikes` to the spec")]
    NoSpikeRecords,
    #[error("{0}")]
    Option(String),
}

/// Recorded events of one population: parallel arrays of times (s) and element indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Events {
    pub population: String,
    pub event: String,
    /// The population's size (the manifest's `size`; older traces lack it, then one more than
    /// the largest recorded index).
    pub size: usize,
    pub times: Vec<f64>,
    pub indices: Vec<u32>,
}

/// One part of a projection endpoint: elements `start..start + size` of population (or
/// projection) `node` are the endpoint's indices `offset..offset + size`.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointPart {
    pub node: String,
    pub start: usize,
    pub offset: usize,
    pub size: usize,
}

/// A projection's synapses (`record W.edges`): synapse `k` runs from endpoint index `pre[k]`
/// to endpoint index `post[k]`, in the order of the projection's synapse state arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct Edges {
    pub projection: String,
    pub n_pre: usize,
    pub n_post: usize,
    pub pre_parts: Vec<EndpointPart>,
    pub post_parts: Vec<EndpointPart>,
    pub pre: Vec<u32>,
    pub post: Vec<u32>,
}

impl Edges {
    /// The population and element of endpoint index `i` (`pre_parts` or `post_parts`).
    pub fn locate(parts: &[EndpointPart], i: usize) -> Option<(&str, usize)> {
        parts
            .iter()
            .find(|p| i >= p.offset && i < p.offset + p.size)
            .map(|p| (p.node.as_str(), p.start + i - p.offset))
    }
}

/// A recorded regime (hidden-state) sequence: the state index of each step and the state names.
#[derive(Debug, Clone, PartialEq)]
pub struct Regime {
    pub regime: String,
    pub states: Vec<String>,
    pub times: Vec<f64>,
    pub values: Vec<usize>,
}

/// A recorded state variable: `rows` samples of `width` elements, row-major, and the sample
/// times (s).
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub name: String,
    pub unit: String,
    pub rows: usize,
    pub width: usize,
    pub values: Vec<f64>,
    pub times: Vec<f64>,
}

/// An opened trace directory: its manifest, checked; arrays are read on demand.
#[derive(Debug, Clone)]
pub struct Trace {
    pub dir: PathBuf,
    pub manifest: Value,
    /// Simulated time of the run (s).
    pub duration_s: f64,
    /// The time step (s).
    pub dt_s: f64,
    records: Vec<Value>,
}

fn manifest_err(path: &Path, message: impl Into<String>) -> TraceError {
    TraceError::Manifest {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl Trace {
    /// Open `dir` and check its manifest: JSON, `"format": "neurograph-trace"`, a known
    /// `format_version`, a positive `duration_s`, a `records` list.
    pub fn open(dir: &Path) -> Result<Trace, TraceError> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|source| TraceError::Io {
            path: path.clone(),
            source,
        })?;
        let manifest: Value =
            serde_json::from_str(&text).map_err(|e| manifest_err(&path, e.to_string()))?;
        if !manifest.is_object() {
            return Err(manifest_err(&path, "it is not a JSON object"));
        }
        match manifest.get("format") {
            Some(Value::String(f)) if f == FORMAT => {}
            Some(other) => {
                return Err(TraceError::Format {
                    path,
                    found: other.to_string(),
                })
            }
            None => {
                return Err(TraceError::Format {
                    path,
                    found: "missing".into(),
                })
            }
        }
        match manifest.get("format_version") {
            Some(v) if v.as_u64().is_some_and(|v| FORMAT_VERSIONS.contains(&v)) => {}
            Some(v) => {
                return Err(TraceError::Version {
                    path,
                    found: v.to_string(),
                })
            }
            None => {
                return Err(TraceError::Version {
                    path,
                    found: "missing".into(),
                })
            }
        }
        let number = |key: &str| -> Result<f64, TraceError> {
            manifest
                .get(key)
                .and_then(Value::as_f64)
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| manifest_err(&path, format!("`{key}` is not a non-negative number")))
        };
        let duration_s = number("duration_s")?;
        let dt_s = number("dt_s")?;
        let records = manifest
            .get("records")
            .and_then(Value::as_array)
            .ok_or_else(|| manifest_err(&path, "`records` is not a list"))?
            .clone();
        Ok(Trace {
            dir: dir.to_path_buf(),
            manifest,
            duration_s,
            dt_s,
            records,
        })
    }

    /// The manifest entries of the records of `kind` (`state`, `events`, `edges`, `regime`),
    /// in manifest order.
    pub fn records_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.records
            .iter()
            .filter(move |r| r.get("kind").and_then(Value::as_str) == Some(kind))
    }

    /// The manifest entry of the first record of `kind` whose string fields `fields` have the
    /// given values (e.g. `("state", &[("name", "E.v")])`).
    pub fn record(&self, kind: &str, fields: &[(&str, &str)]) -> Option<&Value> {
        self.records.iter().find(|r| {
            r.get("kind").and_then(Value::as_str) == Some(kind)
                && fields
                    .iter()
                    .all(|(k, v)| r.get(*k).and_then(Value::as_str) == Some(*v))
        })
    }

    /// The values of string field `field` of the records of `kind`, in manifest order.
    fn names_of(&self, kind: &str, field: &str) -> Vec<String> {
        self.records_of(kind)
            .filter_map(|r| r.get(field).and_then(Value::as_str).map(String::from))
            .collect()
    }

    /// The JSON document of analysis pass `pass` over this trace: `format`
    /// (`neurograph-analysis-PASS`), `format_version` 1, the trace directory, the manifest's
    /// `model` and `seed`, then the object `fields`.
    pub fn analysis_json(&self, pass: &str, fields: Value) -> Value {
        let mut doc = serde_json::json!({
            "format": format!("neurograph-analysis-{pass}"),
            "format_version": 1,
            "trace": self.dir.display().to_string(),
            "model": self.manifest.get("model").cloned().unwrap_or(Value::Null),
            "seed": self.manifest.get("seed").cloned().unwrap_or(Value::Null),
        });
        if let (Value::Object(doc), Value::Object(fields)) = (&mut doc, fields) {
            doc.extend(fields);
        }
        doc
    }

    /// The populations with a spike record, in manifest order.
    pub fn spike_populations(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.records_of("events") {
            if r.get("event").and_then(Value::as_str) == Some("spike") {
                if let Some(p) = r.get("population").and_then(Value::as_str) {
                    if !out.iter().any(|q| q == p) {
                        out.push(p.to_string());
                    }
                }
            }
        }
        out
    }

    /// The state records sampled over time (not `at end`), in manifest order.
    pub fn sampled_state_records(&self) -> Vec<String> {
        self.records_of("state")
            .filter(|r| r.get("at_end").and_then(Value::as_bool) != Some(true))
            .filter_map(|r| r.get("name").and_then(Value::as_str).map(String::from))
            .collect()
    }

    /// The first element a state record covers (its manifest `elements: [first, end]`).
    pub fn first_element(&self, name: &str) -> Option<usize> {
        self.record("state", &[("name", name)])
            .and_then(|r| r.get("elements"))
            .and_then(|e| e.get(0))
            .and_then(Value::as_u64)
            .map(|v| v as usize)
    }

    /// Whether the trace has a state record named `name`.
    pub fn has_state(&self, name: &str) -> bool {
        self.record("state", &[("name", name)]).is_some()
    }

    /// The spikes of `population`.
    pub fn spikes(&self, population: &str) -> Result<Events, TraceError> {
        self.events(population, "spike")
    }

    /// The `event` records of `population` (`spike` for spikes).
    pub fn events(&self, population: &str, event: &str) -> Result<Events, TraceError> {
        let record = self
            .record("events", &[("population", population), ("event", event)])
            .ok_or_else(|| {
                if event == "spike" {
                    TraceError::MissingSpikes {
                        population: population.into(),
                    }
                } else {
                    TraceError::MissingEvents {
                        population: population.into(),
                        event: event.into(),
                    }
                }
            })?;
        let name = record
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(population);
        let times = self.array(record, name, "times")?;
        let idx = self.array(record, name, "indices")?;
        let idx_path = self.file_path(record, name, "indices")?;
        if times.data.len() != idx.data.len() {
            return Err(TraceError::Npy {
                path: idx_path,
                message: format!(
                    "{} indices for {} spike times",
                    idx.data.len(),
                    times.data.len()
                ),
            });
        }
        if let Some(t) = times.data.iter().find(|t| !t.is_finite()) {
            return Err(TraceError::Npy {
                path: self.file_path(record, name, "times")?,
                message: format!("spike time {t} is not finite"),
            });
        }
        let mut indices = Vec::with_capacity(idx.data.len());
        for &i in &idx.data {
            if !(i >= 0.0 && i <= u32::MAX as f64 && i.fract() == 0.0) {
                return Err(TraceError::Npy {
                    path: idx_path,
                    message: format!("index {i} is not an element number"),
                });
            }
            indices.push(i as u32);
        }
        let largest = indices.iter().max().map_or(0, |&m| m as usize + 1);
        let size = match record.get("size") {
            None => largest,
            Some(v) => match v.as_u64() {
                // Indices are u32: a larger size is not one a run wrote.
                Some(s) if s as usize >= largest && s <= u64::from(u32::MAX) + 1 => s as usize,
                _ => {
                    return Err(manifest_err(
                        &self.dir.join("manifest.json"),
                        format!("record `{name}`: `size` {v} is not a size covering its indices"),
                    ))
                }
            },
        };
        Ok(Events {
            population: population.into(),
            event: event.into(),
            size,
            times: times.data,
            indices,
        })
    }

    /// The projections with a connectivity record (`record W.edges`), in manifest order.
    pub fn edge_projections(&self) -> Vec<String> {
        self.names_of("edges", "projection")
    }

    /// The synapses of `projection` (`record W.edges`).
    pub fn edges(&self, projection: &str) -> Result<Edges, TraceError> {
        let record = self
            .record("edges", &[("projection", projection)])
            .ok_or_else(|| TraceError::MissingEdges {
                projection: projection.into(),
            })?;
        let name = record
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(projection);
        let bad = |what: String| {
            manifest_err(
                &self.dir.join("manifest.json"),
                format!("record `{name}`: {what}"),
            )
        };
        let count = |key: &str| -> Result<usize, TraceError> {
            record
                .get(key)
                .and_then(Value::as_u64)
                .map(|v| v as usize)
                .ok_or_else(|| bad(format!("`{key}` is not a count")))
        };
        let (n_pre, n_post) = (count("n_pre")?, count("n_post")?);
        let parts = |key: &str| -> Result<Vec<EndpointPart>, TraceError> {
            let list = record
                .get(key)
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("`{key}` is not a list")))?;
            list.iter()
                .map(|p| {
                    let n = |k: &str| p.get(k).and_then(Value::as_u64).map(|v| v as usize);
                    match (
                        p.get("node").and_then(Value::as_str),
                        n("start"),
                        n("offset"),
                        n("size"),
                    ) {
                        (Some(node), Some(start), Some(offset), Some(size)) => Ok(EndpointPart {
                            node: node.into(),
                            start,
                            offset,
                            size,
                        }),
                        _ => Err(bad(format!(
                            "an entry of `{key}` is not {{node, start, offset, size}}"
                        ))),
                    }
                })
                .collect()
        };
        let (pre_parts, post_parts) = (parts("pre_parts")?, parts("post_parts")?);
        let pre = self.index_array(record, name, "pre", n_pre)?;
        let post = self.index_array(record, name, "post", n_post)?;
        if pre.len() != post.len() {
            return Err(TraceError::Npy {
                path: self.file_path(record, name, "post")?,
                message: format!("{} post indices for {} pre indices", post.len(), pre.len()),
            });
        }
        Ok(Edges {
            projection: projection.into(),
            n_pre,
            n_post,
            pre_parts,
            post_parts,
            pre,
            post,
        })
    }

    /// The regimes with a record, in manifest order.
    pub fn regimes(&self) -> Vec<String> {
        self.names_of("regime", "regime")
    }

    /// The state sequence of regime `regime` (`record brain`).
    pub fn regime(&self, regime: &str) -> Result<Regime, TraceError> {
        let record = self
            .record("regime", &[("regime", regime)])
            .ok_or_else(|| TraceError::MissingRegime {
                regime: regime.into(),
            })?;
        let name = record.get("name").and_then(Value::as_str).unwrap_or(regime);
        let states: Vec<String> = record
            .get("states")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if states.is_empty() {
            return Err(manifest_err(
                &self.dir.join("manifest.json"),
                format!("record `{name}`: `states` is not a list of names"),
            ));
        }
        let values = self.index_array(record, name, "values", states.len())?;
        let times = self.array(record, name, "times")?;
        if times.data.len() != values.len() {
            return Err(TraceError::Npy {
                path: self.file_path(record, name, "times")?,
                message: format!("{} times for {} states", times.data.len(), values.len()),
            });
        }
        Ok(Regime {
            regime: regime.into(),
            states,
            times: times.data,
            values: values.into_iter().map(|v| v as usize).collect(),
        })
    }

    /// An array of element indices, each below `bound`.
    fn index_array(
        &self,
        record: &Value,
        name: &str,
        field: &str,
        bound: usize,
    ) -> Result<Vec<u32>, TraceError> {
        let a = self.array(record, name, field)?;
        let mut out = Vec::with_capacity(a.data.len());
        for &i in &a.data {
            if !(i >= 0.0 && i < bound as f64 && i.fract() == 0.0) {
                return Err(TraceError::Npy {
                    path: self.file_path(record, name, field)?,
                    message: format!("index {i} is not below {bound}"),
                });
            }
            out.push(i as u32);
        }
        Ok(out)
    }

    /// The state record named `name` (as in the manifest, e.g. `E.v`).
    pub fn state(&self, name: &str) -> Result<State, TraceError> {
        let record = self
            .record("state", &[("name", name)])
            .ok_or_else(|| TraceError::MissingState { name: name.into() })?;
        let values = self.array(record, name, "values")?;
        let times = self.array(record, name, "times")?;
        let (rows, width) = match values.shape[..] {
            [r, w] => (r, w),
            [r] => (r, 1),
            _ => {
                return Err(TraceError::Npy {
                    path: self.file_path(record, name, "values")?,
                    message: format!("shape {:?} is not (samples, elements)", values.shape),
                })
            }
        };
        if times.data.len() != rows {
            return Err(TraceError::Npy {
                path: self.file_path(record, name, "times")?,
                message: format!("{} sample times for {rows} samples", times.data.len()),
            });
        }
        Ok(State {
            name: name.into(),
            unit: record
                .get("unit")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
            rows,
            width,
            values: values.data,
            times: times.data,
        })
    }

    /// The weight record `name` of the synapses `edges` (a synapse state such as `W.w`): every
    /// sample, one column per synapse. An error unless the record has a sample, exactly one
    /// column per synapse and finite values.
    pub fn synapse_weights(&self, name: &str, edges: &Edges) -> Result<State, TraceError> {
        let s = self.state(name)?;
        let n = edges.pre.len();
        if s.width != n {
            return Err(TraceError::Option(format!(
                "weight record `{name}` has {} columns but projection `{}` has {n} synapses; record the whole synapse state (`record {name} at end`)",
                s.width, edges.projection
            )));
        }
        if s.rows == 0 {
            return Err(TraceError::Option(format!(
                "weight record `{name}` has no samples"
            )));
        }
        if let Some(k) = s.values.iter().position(|v| !v.is_finite()) {
            return Err(TraceError::Option(format!(
                "weight record `{name}`: the weight of synapse {} (row {}) is {}, not a finite number",
                k % n,
                k / n,
                s.values[k]
            )));
        }
        Ok(s)
    }

    /// The path of a record's array `field` (`times`, `indices`, `values`): a plain file name
    /// inside the trace directory (a manifest may not point elsewhere).
    fn file_path(&self, record: &Value, name: &str, field: &str) -> Result<PathBuf, TraceError> {
        let file = record
            .get(field)
            .and_then(|f| f.get("file"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                manifest_err(
                    &self.dir.join("manifest.json"),
                    format!("record `{name}` has no `{field}.file`"),
                )
            })?;
        let plain = Path::new(file)
            .file_name()
            .is_some_and(|f| f == std::ffi::OsStr::new(file))
            && file != ".."
            && file != ".";
        if !plain {
            return Err(manifest_err(
                &self.dir.join("manifest.json"),
                format!("record `{name}`: `{file}` is not a file name inside the trace directory"),
            ));
        }
        Ok(self.dir.join(file))
    }

    fn array(&self, record: &Value, name: &str, field: &str) -> Result<npy::Array, TraceError> {
        let path = self.file_path(record, name, field)?;
        let bytes = std::fs::read(&path).map_err(|source| TraceError::Io {
            path: path.clone(),
            source,
        })?;
        npy::parse(&bytes).map_err(|e| TraceError::Npy {
            path,
            message: e.to_string(),
        })
    }
}

/// The trace directories at `path`: `path` itself when it holds a `manifest.json`, else its
/// sub-directories that do (an experiment's `seed-N/`), in natural order (`seed-2` before
/// `seed-10`).
pub fn find_traces(path: &Path) -> Result<Vec<PathBuf>, TraceError> {
    if path.join("manifest.json").is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    if out.is_empty() {
        return Err(TraceError::Option(format!(
            "{}: neither a trace directory nor a directory of traces (no manifest.json in it or in a sub-directory)",
            path.display()
        )));
    }
    out.sort_by_key(|p| natural_key(&p.file_name().unwrap_or_default().to_string_lossy()));
    Ok(out)
}

/// A sort key that orders runs of digits by value.
fn natural_key(s: &str) -> Vec<(String, u128)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            if !digits.is_empty() {
                out.push((
                    std::mem::take(&mut text),
                    digits.parse().unwrap_or(u128::MAX),
                ));
                digits.clear();
            }
            text.push(c);
        }
    }
    out.push((text, digits.parse().unwrap_or(0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec!["seed-10", "seed-2", "seed-1", "a"];
        v.sort_by_key(|s| natural_key(s));
        assert_eq!(v, vec!["a", "seed-1", "seed-2", "seed-10"]);
    }
}
