//! A trace as an NWB 2 file (Neurodata Without Borders): spike trains in the `Units` table
//! (one row per neuron of every population with a spike record; `population` and `element`
//! columns), sampled state variables and regime sequences as `TimeSeries` in `acquisition`,
//! the spec text as `general/source_script`, and the run's provenance (the trace manifest:
//! parameter values, seed, neurograph version, status) in `general`. What is not a time
//! series becomes a `DynamicTable` in `analysis`: records taken at the end of the run (one
//! row per element), connectivity records (one row per synapse) and events other than
//! spikes (one row per event).
//!
//! A simulation has no animal, but NWB's validators (and the DANDI archive) want a subject:
//! it is written with the model's name as `subject_id`, sex `U` (unknown) and age `P0D/`
//! (an open range: unknown), unless the caller states them ([`NwbOptions`]).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use neurograph_runtime::trace::iso_utc;

use neurograph_analysis::trace::{Trace, TraceError};
use serde_json::Value;

use crate::hdf5::{self, Attr, Dataset, Group, Values};

/// The NWB schema version the file declares (its layout is that of NWB 2.8).
pub const NWB_VERSION: &str = "2.8.0";

/// What the caller may state about the "session" beyond what the trace knows.
#[derive(Debug, Clone, Default)]
pub struct NwbOptions {
    /// Latin binomial of the modelled species (e.g. `Rattus norvegicus`).
    pub species: Option<String>,
    /// ISO 8601 duration (e.g. `P90D`); default `P0D/` (unknown).
    pub age: Option<String>,
    /// `M`, `F`, `O` or `U` (default).
    pub sex: Option<String>,
    pub experimenter: Vec<String>,
    pub institution: Option<String>,
    /// The file's `session_description` (default: names the model, spec, seed and duration).
    pub description: Option<String>,
    /// Replace an existing file at the destination.
    pub overwrite: bool,
}

/// What went into the file, and which records had no NWB counterpart.
#[derive(Debug, Clone, PartialEq)]
pub struct NwbSummary {
    pub path: PathBuf,
    pub units: usize,
    pub spikes: usize,
    pub time_series: Vec<String>,
    /// Tables in `analysis`: records at the end of the run, connectivity, other events.
    pub tables: Vec<String>,
    /// Records left out, with the reason.
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum NwbError {
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} exists; pass --overwrite to replace it", .0.display())]
    Exists(PathBuf),
    #[error("{0}")]
    Option(String),
}

/// Write the trace directory `trace_dir` as the NWB file `out`.
pub fn export_trace(
    trace_dir: &Path,
    out: &Path,
    options: &NwbOptions,
) -> Result<NwbSummary, NwbError> {
    check_options(options)?;
    if out.exists() && !options.overwrite {
        return Err(NwbError::Exists(out.to_path_buf()));
    }
    if out.is_dir() {
        return Err(NwbError::Io {
            path: out.to_path_buf(),
            source: std::io::Error::other("is a directory"),
        });
    }
    let trace = Trace::open(trace_dir)?;
    let (root, mut summary) = build(&trace, options, now_iso())?;
    hdf5::write_file(out, &root).map_err(|source| NwbError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    summary.path = out.to_path_buf();
    Ok(summary)
}

fn check_options(o: &NwbOptions) -> Result<(), NwbError> {
    if let Some(sex) = &o.sex {
        if !["M", "F", "O", "U", "XX", "XO"].contains(&sex.as_str()) {
            return Err(NwbError::Option(format!(
                "--sex {sex}: NWB wants M, F, O (other) or U (unknown)"
            )));
        }
    }
    if let Some(age) = &o.age {
        if !age.starts_with('P') {
            return Err(NwbError::Option(format!(
                "--age {age}: an ISO 8601 duration such as P90D (90 days) or P2Y, or a range P1D/P3D"
            )));
        }
    }
    Ok(())
}

fn now_iso() -> String {
    iso_utc(SystemTime::now())
}

/// A UUID (version 4 layout) drawn deterministically from `key`, so that exporting the same
/// trace twice gives the same object ids.
fn uuid(key: &str) -> String {
    let mut h = neurograph_runtime::trace::fnv1a64_u64(key);
    let mut next = || {
        h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let (a, b) = (next(), next());
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// The attributes that make a group or dataset an NWB / hdmf-common object.
fn typed(namespace: &str, kind: &str, id_key: &str) -> Vec<Attr> {
    vec![
        Attr::str("namespace", namespace),
        Attr::str("neurodata_type", kind),
        Attr::str("object_id", &uuid(id_key)),
    ]
}

fn text(manifest: &Value, key: &str) -> String {
    match manifest.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// The time the run started: the manifest's `started_utc`, else the manifest's modification
/// time (traces written before neurograph recorded it).
fn session_start(trace: &Trace) -> String {
    if let Some(s) = trace.manifest.get("started_utc").and_then(Value::as_str) {
        return s.to_string();
    }
    std::fs::metadata(trace.dir.join("manifest.json"))
        .and_then(|m| m.modified())
        .map(iso_utc)
        .unwrap_or_else(|_| iso_utc(UNIX_EPOCH))
}

/// The spec text: the trace's own copy (`spec_file`), else the spec file it names when that
/// file still has the hash the trace recorded.
fn spec_text(trace: &Trace) -> Option<(String, String)> {
    let path = text(&trace.manifest, "spec");
    if let Some(file) = trace.manifest.get("spec_file").and_then(Value::as_str) {
        if let Ok(t) = std::fs::read_to_string(trace.dir.join(file)) {
            return Some((path, t));
        }
    }
    let t = std::fs::read_to_string(&path).ok()?;
    (neurograph_runtime::trace::fnv1a64(&t) == text(&trace.manifest, "spec_hash_fnv1a64"))
        .then_some((path, t))
}

/// The NWB tree of `trace` (file creation time `created`), and what went into it.
pub fn build(
    trace: &Trace,
    options: &NwbOptions,
    created: String,
) -> Result<(Group, NwbSummary), NwbError> {
    let m = &trace.manifest;
    let model = text(m, "model");
    let seed = text(m, "seed");
    let identity = format!(
        "{}|{}|{}|{}",
        text(m, "spec_hash_fnv1a64"),
        seed,
        session_start(trace),
        trace.dir.display()
    );
    let id = |path: &str| format!("{identity}|{path}");
    let start = session_start(trace);
    let mut summary = NwbSummary {
        path: PathBuf::new(),
        units: 0,
        spikes: 0,
        time_series: Vec::new(),
        tables: Vec::new(),
        skipped: Vec::new(),
    };

    let mut root = Group::with_attrs(typed("core", "NWBFile", &id("/")));
    root.attr(Attr::str("nwb_version", NWB_VERSION));
    let description = options.description.clone().unwrap_or_else(|| {
        format!(
            "neurograph simulation of model `{model}` ({}), seed {seed}, {} s simulated",
            text(m, "spec"),
            trace.duration_s
        )
    });
    root.dataset(
        "file_create_date",
        Dataset::array(Values::Str(vec![created])),
    )
    .dataset("identifier", Dataset::str(&uuid(&identity)))
    .dataset("session_description", Dataset::str(&description))
    .dataset("session_start_time", Dataset::str(&start))
    .dataset("timestamps_reference_time", Dataset::str(&start));

    // general: what the run was, and the subject NWB asks for.
    let mut general = Group::default();
    general.dataset(
        "experiment_description",
        Dataset::str(&format!(
            "Simulation of the network model `{model}` with neurograph {}",
            text(m, "neurograph_version")
        )),
    );
    general.dataset(
        "keywords",
        Dataset::array(Values::Str(vec![
            "simulation".into(),
            "neurograph".into(),
            model.clone(),
        ])),
    );
    if !options.experimenter.is_empty() {
        general.dataset(
            "experimenter",
            Dataset::array(Values::Str(options.experimenter.clone())),
        );
    }
    if let Some(inst) = &options.institution {
        general.dataset("institution", Dataset::str(inst));
    }
    general.dataset("notes", Dataset::str(&run_notes(m, trace)));
    general.dataset(
        "data_collection",
        Dataset::str(&serde_json::to_string_pretty(m).unwrap_or_default()),
    );
    match spec_text(trace) {
        Some((path, t)) => {
            general.dataset(
                "source_script",
                Dataset::str(&t).with_attr(Attr::str("file_name", &path)),
            );
        }
        None => summary.skipped.push(format!(
            "the spec text: the trace holds no copy and {} is gone or changed",
            text(m, "spec")
        )),
    }
    let mut subject = Group::with_attrs(typed("core", "Subject", &id("/general/subject")));
    subject
        .dataset("subject_id", Dataset::str(&model))
        .dataset(
            "description",
            Dataset::str(&format!(
                "no animal: the simulated network of model `{model}`"
            )),
        )
        .dataset(
            "age",
            Dataset::str(options.age.as_deref().unwrap_or("P0D/"))
                .with_attr(Attr::str("reference", "birth")),
        )
        .dataset("sex", Dataset::str(options.sex.as_deref().unwrap_or("U")));
    if let Some(species) = &options.species {
        subject.dataset("species", Dataset::str(species));
    }
    general.group("subject", subject);

    let mut acquisition = Group::default();
    for name in trace.sampled_state_records() {
        let s = trace.state(&name)?;
        let record = trace.record("state", &[("name", &name)]);
        let elements = record
            .and_then(|r| r.get("elements"))
            .map(|e| format!(", elements {e}"))
            .unwrap_or_default();
        let what = format!("state record `{name}`{elements} (unit {})", s.unit);
        let unit = if s.unit.is_empty() {
            "dimensionless"
        } else {
            &s.unit
        };
        let shape = if s.width == 1 {
            vec![s.rows as u64]
        } else {
            vec![s.rows as u64, s.width as u64]
        };
        let ts = time_series(
            &id(&format!("/acquisition/{name}")),
            &what,
            unit,
            shape,
            Values::F64(s.values),
            &s.times,
        );
        acquisition.group(&name, ts);
        summary.time_series.push(name);
    }
    for regime in trace.regimes() {
        let r = trace.regime(&regime)?;
        let name = format!("regime.{regime}");
        let what = format!(
            "regime `{regime}`: the index of its state in {}",
            r.states.join(", ")
        );
        let values: Vec<i64> = r.values.iter().map(|&v| v as i64).collect();
        let shape = vec![values.len() as u64];
        let ts = time_series(
            &id(&format!("/acquisition/{name}")),
            &what,
            "state index",
            shape,
            Values::I64(values),
            &r.times,
        );
        acquisition.group(&name, ts);
        summary.time_series.push(name);
    }
    // What is not a time series: tables in `analysis`.
    let mut analysis = Group::default();
    let at_end: Vec<String> = trace
        .records_of("state")
        .filter(|r| r.get("at_end").and_then(Value::as_bool) == Some(true))
        .filter_map(|r| r.get("name").and_then(Value::as_str).map(String::from))
        .collect();
    for name in at_end {
        let s = trace.state(&name)?;
        let first = trace.first_element(&name).unwrap_or(0) as i64;
        let record = trace.record("state", &[("name", &name)]);
        let rows = record.map(|r| text(r, "rows")).unwrap_or_default();
        let times: Vec<String> = s.times.iter().map(|t| format!("{t} s")).collect();
        let description = format!(
            "state record `{name}` at the end of the run (unit {}): one row per element;              `value` holds {} sample(s) ({rows}) taken at {}",
            s.unit,
            s.rows,
            times.join(", ")
        );
        // Samples are rows in the trace; here an element is a row.
        let mut by_element = vec![0.0; s.values.len()];
        for r in 0..s.rows {
            for e in 0..s.width {
                by_element[e * s.rows + r] = s.values[r * s.width + e];
            }
        }
        let value_shape = if s.rows == 1 {
            vec![s.width as u64]
        } else {
            vec![s.width as u64, s.rows as u64]
        };
        let path = format!("/analysis/{name}");
        let table = dynamic_table(
            &id,
            &path,
            &description,
            s.width,
            vec![
                Column::new(
                    "element",
                    "the element's index in its population or projection",
                    Values::I64((0..s.width as i64).map(|e| first + e).collect()),
                ),
                Column {
                    name: "value".into(),
                    description: format!("the recorded value (unit {})", s.unit),
                    shape: value_shape,
                    values: Values::F64(by_element),
                },
            ],
        );
        analysis.group(&name, table);
        summary.tables.push(name);
    }
    for p in trace.edge_projections() {
        let e = trace.edges(&p)?;
        let name = format!("{p}.edges");
        let parts = |parts: &[neurograph_analysis::trace::EndpointPart]| -> String {
            parts
                .iter()
                .map(|q| {
                    format!(
                        "{}..{} are {}[{}..{}]",
                        q.offset,
                        q.offset + q.size,
                        q.node,
                        q.start,
                        q.start + q.size
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let description = format!(
            "the synapses of projection `{p}`, one row each, in the order of its synapse state: \
             presynaptic index (of {} elements: {}) and postsynaptic index (of {}: {})",
            e.n_pre,
            parts(&e.pre_parts),
            e.n_post,
            parts(&e.post_parts)
        );
        let n = e.pre.len();
        let table = dynamic_table(
            &id,
            &format!("/analysis/{name}"),
            &description,
            n,
            vec![
                Column::new("pre", "presynaptic endpoint index", Values::U32(e.pre)),
                Column::new("post", "postsynaptic endpoint index", Values::U32(e.post)),
            ],
        );
        analysis.group(&name, table);
        summary.tables.push(name);
    }
    let events: Vec<(String, String)> = trace
        .records_of("events")
        .filter(|r| r.get("event").and_then(Value::as_str) != Some("spike"))
        .map(|r| (text(r, "population"), text(r, "event")))
        .collect();
    for (population, event) in events {
        let ev = trace.events(&population, &event)?;
        let name = format!("{population}.{event}");
        let description = format!(
            "`{event}` events of population `{population}` ({} elements), one row each in \
             time order",
            ev.size
        );
        let n = ev.times.len();
        let table = dynamic_table(
            &id,
            &format!("/analysis/{name}"),
            &description,
            n,
            vec![
                Column::new("time", "the event's time in seconds", Values::F64(ev.times)),
                Column::new(
                    "element",
                    "the element's index in its population",
                    Values::U32(ev.indices),
                ),
            ],
        );
        analysis.group(&name, table);
        summary.tables.push(name);
    }
    root.group("acquisition", acquisition)
        .group("analysis", analysis)
        .group("general", general)
        .group("processing", Group::default());
    let mut stimulus = Group::default();
    stimulus
        .group("presentation", Group::default())
        .group("templates", Group::default());
    root.group("stimulus", stimulus);
    let populations = trace.spike_populations();
    if !populations.is_empty() {
        root.group(
            "units",
            units_table(trace, &populations, &id, &mut summary)?,
        );
    }
    Ok((root, summary))
}

/// A human-readable account of the run: model, seed, status, time step, parameter values.
fn run_notes(m: &Value, trace: &Trace) -> String {
    let mut s = format!(
        "Simulated by neurograph {} from {} (spec hash fnv1a64 {}), model `{}`, seed {}, \
         precision {}, dt {} s, {} s simulated of {} s requested, status {}.\n",
        text(m, "neurograph_version"),
        text(m, "spec"),
        text(m, "spec_hash_fnv1a64"),
        text(m, "model"),
        text(m, "seed"),
        text(m, "precision"),
        trace.dt_s,
        trace.duration_s,
        text(m, "requested_duration_s"),
        text(m, "status"),
    );
    if let Some(params) = m.get("parameters").and_then(Value::as_array) {
        s.push_str("Parameter values (SI units):\n");
        for p in params {
            s.push_str(&format!(
                "  {} = {} {}\n",
                text(p, "name"),
                text(p, "value"),
                text(p, "unit")
            ));
        }
    }
    s
}

/// A `TimeSeries` group: `data` (time first) with `unit`, and a start time and rate when the
/// samples are evenly spaced, else their timestamps.
fn time_series(
    id: &str,
    description: &str,
    unit: &str,
    shape: Vec<u64>,
    values: Values,
    times: &[f64],
) -> Group {
    let mut g = Group::with_attrs(typed("core", "TimeSeries", id));
    g.attr(Attr::str("description", description))
        .attr(Attr::str("comments", "recorded by neurograph"));
    let data = Dataset {
        shape,
        values,
        attrs: vec![
            Attr::f64("conversion", 1.0),
            Attr::f64("offset", 0.0),
            Attr::f64("resolution", -1.0),
            Attr::str("unit", unit),
        ],
    };
    g.dataset("data", data);
    match regular_rate(times) {
        Some(rate) => {
            g.dataset(
                "starting_time",
                Dataset::scalar(Values::F64(vec![times[0]]))
                    .with_attr(Attr::f64("rate", rate))
                    .with_attr(Attr::str("unit", "seconds")),
            );
        }
        None => {
            g.dataset(
                "timestamps",
                Dataset::array(Values::F64(times.to_vec()))
                    .with_attr(Attr::scalar("interval", Values::I32(vec![1])))
                    .with_attr(Attr::str("unit", "seconds")),
            );
        }
    }
    g
}

/// The sampling rate when `times` are evenly spaced (within a part in 10^9 of the step).
fn regular_rate(times: &[f64]) -> Option<f64> {
    if times.len() < 2 {
        return None;
    }
    let step = (times[times.len() - 1] - times[0]) / (times.len() - 1) as f64;
    if step <= 0.0 {
        return None;
    }
    let even = times
        .iter()
        .enumerate()
        .all(|(i, &t)| (t - (times[0] + i as f64 * step)).abs() <= step * 1e-9);
    even.then_some(1.0 / step)
}

/// A column of a [`dynamic_table`]: one value per row, or (`shape` of two dimensions) one
/// array per row.
struct Column {
    name: String,
    description: String,
    shape: Vec<u64>,
    values: Values,
}

impl Column {
    fn new(name: &str, description: &str, values: Values) -> Column {
        Column {
            name: name.into(),
            description: description.into(),
            shape: vec![values.len() as u64],
            values,
        }
    }
}

/// An hdmf-common `DynamicTable` of `rows` rows at `path`.
fn dynamic_table(
    id: &dyn Fn(&str) -> String,
    path: &str,
    description: &str,
    rows: usize,
    columns: Vec<Column>,
) -> Group {
    let mut g = Group::with_attrs(typed("hdmf-common", "DynamicTable", &id(path)));
    g.attr(Attr::array(
        "colnames",
        Values::Str(columns.iter().map(|c| c.name.clone()).collect()),
    ))
    .attr(Attr::str("description", description));
    let mut ids = Dataset::array(Values::I64((0..rows as i64).collect()));
    ids.attrs = typed(
        "hdmf-common",
        "ElementIdentifiers",
        &id(&format!("{path}/id")),
    );
    g.dataset("id", ids);
    for c in columns {
        let mut d = Dataset {
            shape: c.shape,
            values: c.values,
            attrs: typed(
                "hdmf-common",
                "VectorData",
                &id(&format!("{path}/{}", c.name)),
            ),
        };
        d.attrs.push(Attr::str("description", &c.description));
        g.dataset(&c.name, d);
    }
    g
}

/// The `Units` table: one row per neuron of each population with a spike record, in
/// population then element order; `spike_times` ragged through `spike_times_index`.
fn units_table(
    trace: &Trace,
    populations: &[String],
    id: &dyn Fn(&str) -> String,
    summary: &mut NwbSummary,
) -> Result<Group, NwbError> {
    let mut times = Vec::new();
    let mut ends: Vec<u64> = Vec::new();
    let mut population = Vec::new();
    let mut element = Vec::new();
    for p in populations {
        let ev = trace.spikes(p)?;
        // Counting sort by element; stable, so each train stays in time order.
        let mut start = vec![0usize; ev.size + 1];
        for &i in &ev.indices {
            start[i as usize + 1] += 1;
        }
        for k in 0..ev.size {
            start[k + 1] += start[k];
        }
        let base = times.len();
        times.resize(base + ev.times.len(), 0.0);
        let mut fill = start.clone();
        for (&i, &t) in ev.indices.iter().zip(&ev.times) {
            times[base + fill[i as usize]] = t;
            fill[i as usize] += 1;
        }
        for k in 0..ev.size {
            ends.push((base + start[k + 1]) as u64);
            population.push(p.clone());
            element.push(k as i64);
        }
    }
    summary.units = ends.len();
    summary.spikes = times.len();
    let n = ends.len();
    let index = if times.len() <= u32::MAX as usize {
        Values::U32(ends.iter().map(|&e| e as u32).collect())
    } else {
        Values::U64(ends)
    };
    let mut g = Group::with_attrs(typed("core", "Units", &id("/units")));
    g.attr(Attr::array(
        "colnames",
        Values::Str(vec![
            "spike_times".into(),
            "population".into(),
            "element".into(),
        ]),
    ))
    .attr(Attr::str(
        "description",
        "one row per simulated neuron of each population with a spike record; spike times \
         in seconds, multiples of the time step",
    ));
    let column = |name: &str, kind: &str, description: &str, values: Values| {
        let mut d = Dataset::array(values);
        d.attrs = typed("hdmf-common", kind, &id(&format!("/units/{name}")));
        d.attrs.push(Attr::str("description", description));
        d
    };
    let mut ids = Dataset::array(Values::I64((0..n as i64).collect()));
    ids.attrs = typed("hdmf-common", "ElementIdentifiers", &id("/units/id"));
    g.dataset("id", ids);
    g.dataset(
        "spike_times",
        column(
            "spike_times",
            "VectorData",
            "the spike times for each unit in seconds",
            Values::F64(times),
        )
        // The smallest possible difference of two spike times: the time step.
        .with_attr(Attr::f64("resolution", trace.dt_s)),
    );
    g.dataset(
        "spike_times_index",
        column(
            "spike_times_index",
            "VectorIndex",
            "Index for VectorData 'spike_times'",
            index,
        )
        .with_attr(Attr::reference("target", "/units/spike_times")),
    );
    g.dataset(
        "population",
        column(
            "population",
            "VectorData",
            "the population the neuron belongs to",
            Values::Str(population),
        ),
    );
    g.dataset(
        "element",
        column(
            "element",
            "VectorData",
            "the neuron's index within its population",
            Values::I64(element),
        ),
    );
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_version_4_uuids_and_repeatable() {
        let a = uuid("x");
        assert_eq!(a, uuid("x"));
        assert_ne!(a, uuid("y"));
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!("89ab".contains(&parts[3][..1]));
    }

    #[test]
    fn even_sampling_gives_a_rate() {
        let t: Vec<f64> = (0..100).map(|i| 0.001 * i as f64 + 0.0005).collect();
        let r = regular_rate(&t).unwrap();
        assert!((r - 1000.0).abs() < 1e-6);
        assert_eq!(regular_rate(&[0.0, 0.1, 0.3]), None);
        assert_eq!(regular_rate(&[0.5]), None);
    }
}
