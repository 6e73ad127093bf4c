//! NIR, the Neuromorphic Intermediate Representation: a graph of neuron and weight nodes
//! that snnTorch, Norse, Lava, SpiNNaker2, Sinabs, Rockpool and others export and import.
//! [`read`] and [`write`] move a [`Graph`] to and from a `.nir` file (HDF5, in the layout of
//! the `nir` Python package: `version`, and `node` holding `type = "NIRGraph"`, `nodes/NAME/…`
//! with each node's `type` and parameter arrays, `edges` as (source, target) name pairs, and
//! an optional `metadata` group); [`to_spec`] writes a graph as a neurograph spec.
//!
//! **Time.** NIR's equations are continuous; a graph runs on a time grid of step `dt`, which
//! NIR files do not carry (neurograph writes it as `metadata/dt`). A spike is an input of 1
//! held for one step, the reading of the libraries that export NIR from discrete-time models
//! (snnTorch exports a `Leaky` neuron of decay `beta` as `tau = dt / (1 - beta)`,
//! `r = tau / dt`, so that one Euler step gives `v' = beta v + W s`). Under it a spike
//! through weight `W` moves a LIF's `v` by `r W dt / tau`, a CubaLIF's current by
//! `w_in W dt / tau_syn`, an IF's `v` by `r W dt`. Integration is Euler's, as in those
//! libraries.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::hdf5::{self, Dataset, Group as WGroup, Values};
use crate::hdf5_read::{self, Object};

/// A parameter array (row-major) of any shape; NIR allows scalars too.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<u64>,
    pub data: Vec<f64>,
}

impl Array {
    pub fn vector(data: Vec<f64>) -> Array {
        Array {
            shape: vec![data.len() as u64],
            data,
        }
    }
    pub fn matrix(rows: usize, cols: usize, data: Vec<f64>) -> Array {
        Array {
            shape: vec![rows as u64, cols as u64],
            data,
        }
    }
    /// The same value `n` times.
    pub fn filled(n: usize, value: f64) -> Array {
        Array::vector(vec![value; n])
    }
    /// The value every element has, if one.
    pub fn uniform(&self) -> Option<f64> {
        let first = *self.data.first()?;
        self.data
            .iter()
            .all(|x| x.to_bits() == first.to_bits())
            .then_some(first)
    }
}

/// A NIR node: its type and parameters by name (as in the file).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: String,
    pub params: Vec<(String, Array)>,
    /// A nested `NIRGraph`.
    pub subgraph: Option<Box<Graph>>,
}

impl Node {
    pub fn new(kind: &str, params: Vec<(&str, Array)>) -> Node {
        Node {
            kind: kind.into(),
            params: params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            subgraph: None,
        }
    }
    pub fn param(&self, name: &str) -> Option<&Array> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }
}

/// A NIR graph: named nodes and directed edges between them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    pub nodes: Vec<(String, Node)>,
    pub edges: Vec<(String, String)>,
    /// `metadata/NAME` numbers (neurograph writes `dt`).
    pub metadata: Vec<(String, f64)>,
}

impl Graph {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|(n, _)| n == name).map(|(_, n)| n)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NirError {
    #[error(transparent)]
    Read(#[from] hdf5_read::ReadError),
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A construct neurograph cannot express (import) or NIR cannot express (export).
    #[error("{0}")]
    Unsupported(String),
}

/// The format version neurograph writes (`version`): the NIR 1.0 node set.
pub const NIR_VERSION: &str = "1.0.0";

fn numbers(v: &Values) -> Option<Vec<f64>> {
    Some(match v {
        Values::F64(x) => x.clone(),
        Values::F32(x) => x.iter().map(|&v| f64::from(v)).collect(),
        Values::I64(x) => x.iter().map(|&v| v as f64).collect(),
        Values::I32(x) => x.iter().map(|&v| f64::from(v)).collect(),
        Values::U64(x) => x.iter().map(|&v| v as f64).collect(),
        Values::U32(x) => x.iter().map(|&v| f64::from(v)).collect(),
        Values::U8(x) => x.iter().map(|&v| f64::from(v)).collect(),
        Values::Str(_) | Values::Ref(_) => return None,
    })
}

fn string(v: &Values) -> Option<String> {
    match v {
        Values::Str(s) if s.len() == 1 => Some(s[0].clone()),
        _ => None,
    }
}

/// Read a `.nir` file.
pub fn read(path: &Path) -> Result<Graph, NirError> {
    let file = hdf5_read::File::open(path)?;
    let bad = |message: String| NirError::Format {
        path: path.to_path_buf(),
        message,
    };
    let Object::Group(node) = file
        .get("node")
        .map_err(|_| bad("no `node` group: not a NIR file".into()))?
    else {
        return Err(bad("`node` is not a group".into()));
    };
    read_graph(&file, &node, "node", &bad)
}

fn read_graph(
    file: &hdf5_read::File,
    group: &hdf5_read::Group,
    at: &str,
    bad: &dyn Fn(String) -> NirError,
) -> Result<Graph, NirError> {
    let member = |g: &hdf5_read::Group, name: &str| -> Result<Option<Object>, NirError> {
        match g.members.iter().find(|(n, _)| n == name) {
            Some((_, addr)) => Ok(Some(file.object(*addr)?)),
            None => Ok(None),
        }
    };
    let kind = match member(group, "type")? {
        Some(Object::Dataset(d)) => string(&d.values),
        _ => None,
    };
    if kind.as_deref() != Some("NIRGraph") {
        return Err(bad(format!("{at}: `type` is not \"NIRGraph\"")));
    }
    let mut graph = Graph::default();
    let Some(Object::Group(nodes)) = member(group, "nodes")? else {
        return Err(bad(format!("{at}: no `nodes` group")));
    };
    for (name, addr) in &nodes.members {
        let Object::Group(g) = file.object(*addr)? else {
            return Err(bad(format!("{at}/nodes/{name} is not a group")));
        };
        let kind = match member(&g, "type")? {
            Some(Object::Dataset(d)) => string(&d.values)
                .ok_or_else(|| bad(format!("{at}/nodes/{name}/type is not a string")))?,
            _ => return Err(bad(format!("{at}/nodes/{name} has no `type`"))),
        };
        if kind == "NIRGraph" {
            let sub = read_graph(file, &g, &format!("{at}/nodes/{name}"), bad)?;
            graph.nodes.push((
                name.clone(),
                Node {
                    kind,
                    params: Vec::new(),
                    subgraph: Some(Box::new(sub)),
                },
            ));
            continue;
        }
        let mut params = Vec::new();
        for (p, addr) in &g.members {
            if p == "type" {
                continue;
            }
            if let Object::Dataset(d) = file.object(*addr)? {
                if let Some(data) = numbers(&d.values) {
                    params.push((
                        p.clone(),
                        Array {
                            shape: d.shape,
                            data,
                        },
                    ));
                }
            }
        }
        graph.nodes.push((
            name.clone(),
            Node {
                kind,
                params,
                subgraph: None,
            },
        ));
    }
    match member(group, "edges")? {
        Some(Object::Dataset(d)) => {
            let Values::Str(s) = d.values else {
                return Err(bad(format!("{at}/edges is not an array of names")));
            };
            if s.len() % 2 != 0 || (d.shape.len() == 2 && d.shape[1] != 2) {
                return Err(bad(format!("{at}/edges is not (n, 2)")));
            }
            graph.edges = s.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
        }
        _ => return Err(bad(format!("{at}: no `edges`"))),
    }
    if let Some(Object::Group(meta)) = member(group, "metadata")? {
        for (k, addr) in &meta.members {
            if let Object::Dataset(d) = file.object(*addr)? {
                if let Some(v) = numbers(&d.values).filter(|v| v.len() == 1) {
                    graph.metadata.push((k.clone(), v[0]));
                }
            }
        }
    }
    for (a, b) in &graph.edges {
        for end in [a, b] {
            if graph.node(end).is_none() {
                return Err(bad(format!("{at}: edge {a} -> {b} names no node `{end}`")));
            }
        }
    }
    Ok(graph)
}

fn graph_group(graph: &Graph) -> WGroup {
    let mut g = WGroup::default();
    g.dataset("type", Dataset::str("NIRGraph"));
    let mut nodes = WGroup::default();
    for (name, node) in &graph.nodes {
        let sub = match &node.subgraph {
            Some(sub) => graph_group(sub),
            None => {
                let mut n = WGroup::default();
                n.dataset("type", Dataset::str(&node.kind));
                for (p, a) in &node.params {
                    let values = if p == "shape" {
                        Values::I64(a.data.iter().map(|&x| x as i64).collect())
                    } else {
                        Values::F64(a.data.clone())
                    };
                    n.dataset(
                        p,
                        Dataset {
                            shape: a.shape.clone(),
                            values,
                            attrs: Vec::new(),
                        },
                    );
                }
                n
            }
        };
        nodes.group(name, sub);
    }
    g.group("nodes", nodes);
    let flat: Vec<String> = graph
        .edges
        .iter()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    g.dataset(
        "edges",
        Dataset {
            shape: vec![graph.edges.len() as u64, 2],
            values: Values::Str(flat),
            attrs: Vec::new(),
        },
    );
    if !graph.metadata.is_empty() {
        let mut m = WGroup::default();
        for (k, v) in &graph.metadata {
            m.dataset(k, Dataset::scalar(Values::F64(vec![*v])));
        }
        g.group("metadata", m);
    }
    g
}

/// Write `graph` as a `.nir` file.
pub fn write(path: &Path, graph: &Graph) -> Result<(), NirError> {
    let mut root = WGroup::default();
    root.dataset("version", Dataset::str(NIR_VERSION));
    root.group("node", graph_group(graph));
    hdf5::write_file(path, &root).map_err(|source| NirError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The neuron types an imported spec can hold, with their parameters (all required but the
/// defaults noted in [`neuron_params`]).
const NEURONS: &[&str] = &["LIF", "CubaLIF", "IF", "LI", "CubaLI", "I"];

fn neuron_params(kind: &str) -> &'static [&'static str] {
    match kind {
        "LIF" => &["tau", "r", "v_leak", "v_threshold", "v_reset"],
        "CubaLIF" => &[
            "tau_syn",
            "tau_mem",
            "r",
            "v_leak",
            "v_threshold",
            "v_reset",
            "w_in",
        ],
        "IF" => &["r", "v_threshold", "v_reset"],
        "LI" => &["tau", "r", "v_leak"],
        "CubaLI" => &["tau_syn", "tau_mem", "r", "v_leak", "w_in"],
        "I" => &["r"],
        _ => &[],
    }
}

/// The unit a parameter has in the spec (NIR gives numbers; times are seconds).
fn param_unit(kind: &str, name: &str) -> &'static str {
    match (kind, name) {
        (_, "tau" | "tau_syn" | "tau_mem") => "s",
        ("IF" | "I", "r") => "Hz",
        _ => "",
    }
}

/// What `to_spec` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    pub spec: PathBuf,
    /// Data files written beside it.
    pub files: Vec<PathBuf>,
    /// Populations: (spec name, NIR node, NIR type, size).
    pub populations: Vec<(String, String, String, usize)>,
    pub projections: usize,
}

/// The language's keywords and the names its expressions give a meaning (`i`, `t`, ...).
const RESERVED: &[&str] = &[
    "model",
    "import",
    "const",
    "param",
    "state",
    "let",
    "via",
    "connect",
    "delay",
    "spike",
    "event",
    "when",
    "with",
    "probability",
    "refractory",
    "unless",
    "method",
    "on",
    "record",
    "run",
    "population",
    "project",
    "switch",
    "input",
    "neuron",
    "astrocyte",
    "unit",
    "cell",
    "synapse",
    "and",
    "or",
    "not",
    "true",
    "false",
    "every",
    "at",
    "i",
    "j",
    "t",
    "dt",
    "pi",
    "e",
    "pre",
    "post",
    "step",
];

/// A spec identifier for a NIR node name.
fn ident(name: &str, used: &mut Vec<String>) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s = format!("n{s}");
    }
    if RESERVED.contains(&s.as_str()) {
        s.push_str("_node");
    }
    let mut out = s.clone();
    let mut k = 2;
    while used.contains(&out) {
        out = format!("{s}_{k}");
        k += 1;
    }
    used.push(out.clone());
    out
}

/// A float written so that it reads back to the same bits.
fn num(x: f64) -> String {
    let s = format!("{x:?}");
    if s.contains('e') || s.contains('.') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

/// One incoming connection of a neuron node: from source `from` through weights (`None`:
/// one to one, weight 1), with a bias and a delay.
struct Incoming {
    from: String,
    weight: Option<Array>,
    bias: Option<Array>,
    delay: f64,
    via: String,
}

/// The path into `target`: back through at most one Delay and one Affine/Linear to a
/// source node (Input or a neuron).
fn incoming(graph: &Graph, target: &str) -> Result<Vec<Incoming>, NirError> {
    let preds = |n: &str| -> Vec<&str> {
        graph
            .edges
            .iter()
            .filter(|(_, b)| b == n)
            .map(|(a, _)| a.as_str())
            .collect()
    };
    let mut out = Vec::new();
    for p in preds(target) {
        let mut inc = Incoming {
            from: String::new(),
            weight: None,
            bias: None,
            delay: 0.0,
            via: p.to_string(),
        };
        let mut at = p;
        // A source, a Delay and a weight node at most: more hops (a cycle of Delays
        // included) is not a chain neurograph imports.
        for hops in 0.. {
            if hops > 3 {
                return Err(NirError::Unsupported(format!(
                    "the path into `{target}` through `{p}` is longer than a Delay and a weight node (or a cycle)"
                )));
            }
            let node = graph.node(at).unwrap();
            match node.kind.as_str() {
                "Affine" | "Linear" if inc.weight.is_none() && inc.delay == 0.0 => {
                    let w = node.param("weight").ok_or_else(|| {
                        NirError::Unsupported(format!("node `{at}` ({}) has no weight", node.kind))
                    })?;
                    if w.shape.len() != 2 {
                        return Err(NirError::Unsupported(format!(
                            "node `{at}` ({}): a weight of shape {:?}; neurograph imports 2-D weights",
                            node.kind, w.shape
                        )));
                    }
                    inc.weight = Some(w.clone());
                    inc.bias = node.param("bias").cloned();
                }
                "Delay" if inc.delay == 0.0 => {
                    let d = node.param("delay").ok_or_else(|| {
                        NirError::Unsupported(format!("node `{at}` (Delay) has no delay"))
                    })?;
                    inc.delay = d.uniform().ok_or_else(|| {
                        NirError::Unsupported(format!(
                            "node `{at}` (Delay): its delays differ between elements; neurograph \
                             imports one delay per Delay node"
                        ))
                    })?;
                }
                "Input" => {
                    inc.from = at.to_string();
                    break;
                }
                k if NEURONS.contains(&k) => {
                    inc.from = at.to_string();
                    break;
                }
                k => {
                    return Err(NirError::Unsupported(format!(
                        "node `{at}` ({k}) on the way into `{target}`: neurograph imports chains \
                         of a source (Input or a LIF, CubaLIF, IF, LI, CubaLI or I neuron), at \
                         most one Delay and one Affine or Linear, and a neuron"
                    )))
                }
            }
            let before = preds(at);
            if before.len() != 1 {
                return Err(NirError::Unsupported(format!(
                    "node `{at}` ({}) has {} inputs; neurograph imports weight and delay nodes \
                     with exactly one",
                    graph.node(at).unwrap().kind,
                    before.len()
                )));
            }
            at = before[0];
        }
        out.push(inc);
    }
    Ok(out)
}

/// The number of elements of a node: from its parameters (neurons) or `shape` (Input).
fn size_of(name: &str, node: &Node) -> Result<usize, NirError> {
    let one_d = |a: &Array, what: &str| -> Result<usize, NirError> {
        match a.shape.len() {
            0 => Ok(1),
            1 => Ok(a.shape[0] as usize),
            _ => Err(NirError::Unsupported(format!(
                "node `{name}` ({}): {what} of shape {:?}; neurograph imports one-dimensional \
                 populations",
                node.kind, a.shape
            ))),
        }
    };
    if node.kind == "Input" || node.kind == "Output" {
        let s = node
            .param("shape")
            .ok_or_else(|| NirError::Unsupported(format!("node `{name}` has no shape")))?;
        if s.data.len() != 1 {
            return Err(NirError::Unsupported(format!(
                "node `{name}` ({}): shape {:?}; neurograph imports one-dimensional inputs",
                node.kind, s.data
            )));
        }
        return Ok(s.data[0] as usize);
    }
    let mut n = 1;
    for (p, a) in &node.params {
        n = n.max(one_d(a, p)?);
    }
    Ok(n)
}

/// Write `graph` as the spec `spec` (model `model`, time step `dt` seconds, simulated
/// `duration` seconds), its parameter arrays and weights as `.npy` files beside it
/// (`STEM.NODE.PARAM.npy`, weights `STEM.TARGET_from_NODE.weight.npy`), and for each Input
/// node an empty spike train
/// `STEM.NODE.spikes.npy` to replace with the input's spikes. An existing file of those
/// names is an error unless `overwrite`.
pub fn to_spec(
    graph: &Graph,
    spec: &Path,
    dt: f64,
    duration: f64,
    overwrite: bool,
) -> Result<ImportSummary, NirError> {
    if !(dt > 0.0 && dt.is_finite()) {
        return Err(NirError::Unsupported(format!(
            "time step {dt} s is not positive"
        )));
    }
    let dir = spec
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = spec
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned());
    let mut files = Vec::new();
    let mut used = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new(); // NIR node -> spec name
    for (name, node) in &graph.nodes {
        if node.subgraph.is_some() {
            return Err(NirError::Unsupported(format!(
                "node `{name}` is a nested NIRGraph; neurograph imports flat graphs"
            )));
        }
        match node.kind.as_str() {
            "Input" => {}
            k if NEURONS.contains(&k) => {}
            "Affine" | "Linear" | "Delay" | "Output" => continue,
            k => {
                return Err(NirError::Unsupported(format!(
                    "node `{name}` ({k}): NIR's {k} has no neurograph counterpart yet (imported: \
                     Input, Output, Affine, Linear, Delay, LIF, CubaLIF, IF, LI, CubaLI, I)"
                )))
            }
        }
        names.push((name.clone(), ident(name, &mut used)));
    }
    let spec_name = |n: &str| names.iter().find(|(a, _)| a == n).map(|(_, b)| b.clone());
    // Data files to write once everything is known to fit: (path, values, shape).
    let save = |file: String,
                data: &[f64],
                shape: &[usize],
                files: &mut Vec<(PathBuf, Vec<f64>, Vec<usize>)>|
     -> Result<String, NirError> {
        files.push((dir.join(&file), data.to_vec(), shape.to_vec()));
        Ok(file)
    };
    let mut text = String::new();
    let model = ident(&stem, &mut Vec::new());
    let _ = writeln!(
        text,
        "// Imported from NIR by neurograph {}: one population per neuron node, one projection per\n\
         // weight node. A spike is an input of 1 held for one step of dt (the reading of the\n\
         // discrete-time libraries that export NIR); Euler integration.\n\
         model {model}\n",
        env!("CARGO_PKG_VERSION")
    );
    let mut summary = ImportSummary {
        spec: spec.to_path_buf(),
        files: Vec::new(),
        populations: Vec::new(),
        projections: 0,
    };
    let mut body = String::new();
    let mut records = Vec::new();
    for (name, node) in &graph.nodes {
        let Some(id) = spec_name(name) else { continue };
        let n = size_of(name, node)?;
        if node.kind == "Input" {
            let file = save(format!("{stem}.{id}.spikes.npy"), &[], &[0, 2], &mut files)?;
            let _ = writeln!(
                body,
                "// Input `{name}`: its spike trains are read from {file}, (k, 2): time in s, source;\n\
                 // replace that file with yours.\ninput {id} = spikes(\"{file}\", {n})\n"
            );
            summary
                .populations
                .push((id.clone(), name.clone(), "Input".into(), n));
            continue;
        }
        let kind = node.kind.as_str();
        let spiking = matches!(kind, "LIF" | "CubaLIF" | "IF");
        let cuba = kind.starts_with("Cuba");
        let mut params = String::new();
        for &p in neuron_params(kind) {
            let a = match (node.param(p), p) {
                (Some(a), _) => a.clone(),
                (None, "v_reset") => Array::filled(n, 0.0),
                (None, "w_in") => Array::filled(n, 1.0),
                (None, _) => {
                    return Err(NirError::Unsupported(format!(
                        "node `{name}` ({kind}) has no `{p}`"
                    )))
                }
            };
            if a.data.len() != n && a.data.len() != 1 {
                return Err(NirError::Unsupported(format!(
                    "node `{name}` ({kind}): `{p}` has {} values for {n} neurons",
                    a.data.len()
                )));
            }
            let unit = param_unit(kind, p);
            let value = match a.uniform() {
                Some(v) if unit.is_empty() => num(v),
                Some(v) => format!("{} {unit}", num(v)),
                None => {
                    let file = save(format!("{stem}.{id}.{p}.npy"), &a.data, &[n], &mut files)?;
                    if unit.is_empty() {
                        format!("load(\"{file}\")")
                    } else {
                        format!("load(\"{file}\") * 1 {unit}")
                    }
                }
            };
            let _ = writeln!(params, "  param {p} = {value}");
        }
        // Biases of the Affine nodes into this one, summed.
        let inputs = incoming(graph, name)?;
        let mut bias = vec![0.0; n];
        for inc in &inputs {
            if let Some(b) = &inc.bias {
                if b.data.len() != n && b.data.len() != 1 {
                    return Err(NirError::Unsupported(format!(
                        "node `{}`: a bias of {} values into `{name}` of {n}",
                        inc.via,
                        b.data.len()
                    )));
                }
                for (k, x) in bias.iter_mut().enumerate() {
                    *x += b.data[if b.data.len() == 1 { 0 } else { k }];
                }
            }
        }
        let bias_value = match Array::vector(bias.clone()).uniform() {
            Some(v) => num(v),
            None => format!(
                "load(\"{}\")",
                save(format!("{stem}.{id}.bias.npy"), &bias, &[n], &mut files)?
            ),
        };
        let _ = writeln!(
            body,
            "// NIR node `{name}` ({kind}, {n} neurons)\nneuron {id}_{kind} {{\n{params}  param bias = {bias_value}"
        );
        let drive = "(x + bias)";
        let eqs = match kind {
            "LIF" | "LI" => format!("  dv/dt = (v_leak - v + r * {drive}) / tau\n"),
            "IF" | "I" => format!("  dv/dt = r * {drive}\n"),
            _ => format!(
                "  dv/dt = (v_leak - v + r * I) / tau_mem\n  dI/dt = (-I + w_in * {drive}) / tau_syn\n"
            ),
        };
        let _ = write!(
            body,
            "  state v: 1 = 0\n{}  state x: 1 = 0   // the input of the step: the weights of the spikes that arrived\n{eqs}  x <- 0\n  method euler\n",
            if cuba { "  state I: 1 = 0\n" } else { "" }
        );
        if spiking {
            let _ = writeln!(body, "  spike when v > v_threshold {{ v = v_reset }}");
        }
        let _ = writeln!(body, "}}\npopulation {id} = {id}_{kind}[{n}]\n");
        summary
            .populations
            .push((id.clone(), name.clone(), kind.into(), n));
        records.push(if spiking {
            format!("{id}.spikes")
        } else {
            format!("{id}.v every {} s", num(dt))
        });
        for inc in inputs {
            let Some(from) = spec_name(&inc.from) else {
                continue;
            };
            let src_node = graph.node(&inc.from).unwrap();
            let m = size_of(&inc.from, src_node)?;
            let syn = ident(&format!("{id}_from_{}", inc.via), &mut used);
            let delay = if inc.delay > 0.0 {
                format!("; delay = {} s", num(inc.delay))
            } else {
                String::new()
            };
            match &inc.weight {
                Some(w) => {
                    let (rows, cols) = (w.shape[0] as usize, w.shape[1] as usize);
                    if rows != n || cols != m {
                        return Err(NirError::Unsupported(format!(
                            "node `{}`: a weight of shape ({rows}, {cols}) from `{}` ({m}) to `{name}` ({n})",
                            inc.via, inc.from
                        )));
                    }
                    // NIR's weight is (out, in); a spec's is (pre, post).
                    let mut t = vec![0.0; rows * cols];
                    for r in 0..rows {
                        for c in 0..cols {
                            t[c * rows + r] = w.data[r * cols + c];
                        }
                    }
                    let file = save(
                        // Named after the synapse type (unique), not the NIR node: two node
                        // names may map to one identifier.
                        format!("{stem}.{syn}.weight.npy"),
                        &t,
                        &[cols, rows],
                        &mut files,
                    )?;
                    let _ = writeln!(
                        body,
                        "// NIR node `{}` ({}x{} weights)\nsynapse {syn} {{ param w = load(\"{file}\"); on pre {{ post.x += w }} }}\nproject {from} -> {id} via {syn} {{ connect all_to_all{delay} }}\n",
                        inc.via, rows, cols
                    );
                }
                None => {
                    if m != n {
                        return Err(NirError::Unsupported(format!(
                            "`{}` ({m}) feeds `{name}` ({n}) without weights: sizes differ",
                            inc.from
                        )));
                    }
                    let _ = writeln!(
                        body,
                        "synapse {syn} {{ on pre {{ post.x += 1 }} }}\nproject {from} -> {id} via {syn} {{ connect one_to_one{delay} }}\n"
                    );
                }
            }
            summary.projections += 1;
        }
    }
    text.push_str(&body);
    if !records.is_empty() {
        let _ = writeln!(text, "record {}", records.join(", "));
    }
    let _ = writeln!(
        text,
        "run {{ dt = {} s; duration = {} s }}",
        num(dt),
        num(duration)
    );
    // Nothing is written when any file exists (unless `overwrite`).
    let exists = |path: &Path| NirError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "exists; pass --overwrite to replace it",
        ),
    };
    if !overwrite {
        if spec.exists() {
            return Err(exists(spec));
        }
        if let Some((path, ..)) = files.iter().find(|(p, ..)| p.exists()) {
            return Err(exists(path));
        }
    }
    for (path, data, shape) in &files {
        neurograph_runtime::npy::write(path, data, shape, neurograph_runtime::npy::Dtype::F64)
            .map_err(|source| NirError::Io {
                path: path.clone(),
                source,
            })?;
    }
    std::fs::write(spec, &text).map_err(|source| NirError::Io {
        path: spec.to_path_buf(),
        source,
    })?;
    summary.files = files.into_iter().map(|(p, ..)| p).collect();
    Ok(summary)
}
