//! The memory a run will need, estimated from the model before anything is allocated, and the
//! limit it must fit in (`--max-memory`, or the memory this machine has available). `run`
//! refuses a model that does not fit and names its largest buffers; `inspect` prints the
//! same estimate.

use neurograph_compiler::const_eval;
use neurograph_compiler::ir::*;

/// One buffer (or group of buffers) of a run and its estimated size.
#[derive(Debug, Clone, PartialEq)]
pub struct Buffer {
    pub what: String,
    pub bytes: f64,
}

/// The estimate: every buffer that grows with the model, largest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Estimate {
    pub buffers: Vec<Buffer>,
    /// Things whose size is not known before the run (spike records, file connectivity).
    pub unknown: Vec<String>,
}

impl Estimate {
    pub fn total(&self) -> f64 {
        self.buffers.iter().map(|b| b.bytes).sum()
    }

    /// The part of the estimate held by population state (for `inspect`).
    pub fn sum_where(&self, prefix: &str) -> f64 {
        self.buffers
            .iter()
            .filter(|b| b.what.starts_with(prefix))
            .map(|b| b.bytes)
            .sum()
    }
}

/// Expected number of synapses of a projection (None when only the built network knows).
pub fn expected_synapses(model: &Model, pr: &Projection) -> Option<f64> {
    let all_pops = pr
        .pre
        .parts
        .iter()
        .chain(&pr.post.parts)
        .all(|p| matches!(p.node, Node::Population(_)));
    if !all_pops {
        return None;
    }
    let (n_pre, n_post) = (pr.pre.size() as f64, pr.post.size() as f64);
    Some(match &pr.connect.rule {
        // A probability that depends on i and j: all pairs are evaluated, at most all connect.
        ConnectRule::Bernoulli(p) => const_eval(model, *p).unwrap_or(1.0) * n_pre * n_post,
        ConnectRule::FixedIndegree(k) => *k as f64 * n_post,
        ConnectRule::FixedOutdegree(k) => *k as f64 * n_pre,
        ConnectRule::FixedTotal(k) => *k as f64,
        ConnectRule::AllToAll => n_pre * n_post,
        ConnectRule::OneToOne => n_pre,
        ConnectRule::File(_) => return None,
    })
}

/// Whether a run reads a projection's pre indices: code that goes through them reads `pre.x`
/// or `i` or writes `pre.x`, or a record writes its edges (otherwise they are made for the
/// initial values' draws and dropped). Generated code over rows (couplings, `on step`, `on pre`
/// without a delay) reads the presynaptic side through each row's source and does not make
/// them; delayed `on pre` code over due synapses, `on post` code, synapse dynamics and
/// interpreted code do.
pub fn reads_pre(model: &Model, pr: &Projection, h: Handle<Projection>) -> bool {
    use neurograph_compiler::codegen::{inputs_of, jittable, reads_builtin};
    let c = &pr.code;
    let over_rows = |e: Handle<Expr>, rows: bool| rows && jittable(model, e);
    let rows_pre = pr.delay.is_none();
    let exprs = c
        .on_pre
        .iter()
        .map(|st| (st.value, rows_pre))
        .chain(c.on_step.iter().map(|st| (st.value, true)))
        .chain(pr.couplings.iter().map(|cp| (cp.value, true)))
        .chain(c.on_post.iter().map(|st| (st.value, false)))
        .chain(
            c.dynamics
                .odes
                .iter()
                .chain(&c.event_driven)
                .map(|o| (o.rhs, false)),
        )
        .chain(c.dynamics.updates.iter().map(|u| (u.value, false)))
        .chain(c.dynamics.lets.iter().map(|l| (l.1, false)));
    let mut reads_pre = false;
    for (e, rows) in exprs {
        if over_rows(e, rows) {
            continue;
        }
        let mut reads = Vec::new();
        inputs_of(model, e, &mut reads);
        reads_pre |= reads.iter().any(|&(_, side)| side == Side::Pre)
            || reads_builtin(model, e, &[Builtin::I]);
    }
    let writes_pre = c
        .on_pre
        .iter()
        .filter(|st| !over_rows(st.value, rows_pre))
        .chain(&c.on_post)
        .any(|st| st.side == Side::Pre);
    reads_pre
        || writes_pre
        || model
            .records
            .iter()
            .any(|r| matches!(r.what, RecordWhat::Edges { projection } if projection == h))
}

/// How a projection's synapses are stored, as `Sim` builds them: per synapse, what is kept and
/// its bytes. The CSR post index (u32); the pre index (u32) only where the run reads it
/// (`reads_pre`); the reverse index by post element only for `on post` code; a word per synapse for each state and for each parameter that can differ
/// between synapses (a parameter with one value is stored once, not per synapse; a column the
/// layout pass shares with an earlier projection costs nothing: `layout::Plan`); delays in the
/// narrowest unsigned type that holds the longest (known here when the delay is a constant,
/// else at most 4 bytes: `upper_bound`).
pub struct SynapseLayout {
    pub parts: Vec<(String, f64)>,
    pub upper_bound: bool,
}

impl SynapseLayout {
    pub fn bytes_per_synapse(&self) -> f64 {
        self.parts.iter().map(|p| p.1).sum()
    }
}

pub fn synapse_layout(
    model: &Model,
    plan: &neurograph_compiler::layout::Plan,
    h: Handle<Projection>,
) -> SynapseLayout {
    let word = 8.0;
    let pr = &model.projections[h];
    let dense = neurograph_compiler::layout::dense_rows(model, h);
    // Per-synapse values in f32 as generated code holds them (the interpreter widens them).
    let value_type = if neurograph_compiler::layout::narrow_columns(model, h) {
        "f32"
    } else {
        "f64"
    };
    // Dense rows: each row's first post element (u32) instead of a post index.
    let first_posts = match pr.connect.rule {
        ConnectRule::OneToOne => 4.0,
        _ => 4.0 / (pr.post.size() as f64).max(1.0),
    };
    let mut parts = vec![match plan.connectivity[h.index()] {
        Some(q) if dense => (
            format!(
                "dense rows: first post per row (u32) shared with `{}`",
                model.projections[q].name
            ),
            0.0,
        ),
        None if dense => (
            "dense rows: first post per row (u32)".to_string(),
            first_posts,
        ),
        Some(q) => (
            format!(
                "post index (u32) shared with `{}`",
                model.projections[q].name
            ),
            0.0,
        ),
        None => ("post index (u32)".to_string(), 4.0),
    }];
    if reads_pre(model, pr, h) {
        parts.push(("pre index (u32)".to_string(), 4.0));
    }
    if !pr.code.on_post.is_empty() {
        parts.push(("index by post (u32)".to_string(), 4.0));
    }
    let st = &model.synapse_types[pr.synapse];
    let shared = &plan.columns[h.index()];
    let mut per_synapse = Vec::new();
    let mut shared_parts = Vec::new();
    for &v in st.params.iter().chain(&st.states) {
        let var = &model.variables[v];
        if var.kind == VarKind::Const {
            continue;
        }
        let init = pr
            .inits
            .iter()
            .find(|(x, _)| *x == v)
            .map_or(var.init, |(_, e)| *e);
        let state = var.kind == VarKind::State;
        let one_value = !state && var.regime.is_none() && const_eval(model, init).is_some();
        if let Some((_, q)) = shared.iter().find(|(x, _)| *x == v).filter(|_| !one_value) {
            shared_parts.push((
                format!(
                    "{} ({value_type}) shared with `{}`",
                    var.name, model.projections[*q].name
                ),
                0.0,
            ));
        } else if !one_value {
            per_synapse.push(var.name.clone());
        }
    }
    if !pr.code.event_driven.is_empty() {
        // `LazyState::last`: the step each synapse's event-driven values were advanced to.
        parts.push(("event-driven step (u64)".to_string(), 8.0));
    }
    if !per_synapse.is_empty() {
        let word = if value_type == "f32" { 4.0 } else { word };
        parts.push((
            format!("{} ({value_type})", per_synapse.join(", ")),
            word * per_synapse.len() as f64,
        ));
    }
    parts.extend(shared_parts);
    let mut upper_bound = false;
    if let Some(d) = pr.delay {
        let bytes = match const_eval(model, d) {
            Some(x) => {
                let steps = (x / model.run.dt).round().clamp(0.0, u32::MAX as f64) as u32;
                neurograph_runtime::state::Delays::width_for(steps) as f64
            }
            None => {
                upper_bound = true;
                4.0
            }
        };
        let ty = ["", "u8", "u16", "", "u32"][bytes as usize];
        let what = if upper_bound {
            "delay (u8, u16 or u32 by the longest)".to_string()
        } else {
            format!("delay ({ty})")
        };
        parts.push((what, bytes));
    }
    SynapseLayout { parts, upper_bound }
}

/// Estimate the memory of a run of `n_steps` steps. Values are stored as f64 (8 bytes) even
/// with `precision = f32` (rounded after every update), so that is the word size here.
pub fn estimate(model: &Model, n_steps: u64) -> Estimate {
    let mut est = Estimate::default();
    let word = 8.0;
    for (_, p) in model.populations.iter() {
        let ct = &model.cell_types[p.cell_type];
        let n = p.size as f64;
        // State and parameters per cell, refractory counter (8) and flag (1).
        let vars = (ct.states.len() + ct.params.len()) as f64;
        est.buffers.push(Buffer {
            what: format!("population {} state ({} cells)", p.name, p.size),
            bytes: n * (vars * word + 9.0),
        });
    }
    // Projections are built one after the other: while one is, its (pre, post) pairs while
    // the CSR arrays are made from them (8 bytes per synapse; `fixed_total` builds CSR
    // directly), then its delays in seconds before they are narrowed to steps (8 bytes, when
    // they differ between synapses); counted for the projection where that is most.
    let plan = neurograph_compiler::layout::plan(model);
    let mut largest: Option<(f64, &str)> = None;
    for (h, pr) in model.projections.iter() {
        match expected_synapses(model, pr) {
            Some(n) => {
                // What the synapses keep (`synapse_layout`); row pointers per endpoint element.
                let per_syn = synapse_layout(model, &plan, h).bytes_per_synapse();
                est.buffers.push(Buffer {
                    what: format!("projection {} synapses (~{n:.0})", pr.name),
                    bytes: n * per_syn + 8.0 * (pr.pre.size() as f64 + pr.post.size() as f64 + 2.0),
                });
                let pairs = !matches!(pr.connect.rule, ConnectRule::FixedTotal(_));
                let seconds = pr.delay.is_some_and(|d| const_eval(model, d).is_none());
                let transient = n * (8.0 * f64::from(u8::from(pairs) + u8::from(seconds)));
                if largest.is_none_or(|(m, _)| transient > m) {
                    largest = Some((transient, &pr.name));
                }
            }
            None => est.unknown.push(format!(
                "projection {} (its size is known once built)",
                pr.name
            )),
        }
    }
    if let Some((bytes, name)) = largest.filter(|(b, _)| *b > 0.0) {
        est.buffers.push(Buffer {
            what: format!("projection {name} while it is built (pairs, delays in seconds)"),
            bytes,
        });
    }
    let steps = n_steps as f64;
    for r in &model.records {
        let every_steps =
            |every: Option<f64>| every.map_or(1.0, |e| (e / model.run.dt).round().max(1.0));
        match &r.what {
            RecordWhat::State { node, var, range } => {
                let size = model.node_size(*node).map_or(0.0, |s| s as f64);
                let width = match range {
                    Some((a, b)) => (*b as f64).min(size) - (*a as f64).min(size),
                    None => size,
                }
                .max(0.0);
                let rows = if r.at_end {
                    model.variables[*var]
                        .regime
                        .map_or(1.0, |h| model.regimes[h].states.len() as f64)
                } else {
                    (steps / every_steps(r.every)).ceil()
                };
                // Samples in memory, and the same again while the file is written.
                est.buffers.push(Buffer {
                    what: format!(
                        "record {}.{} ({rows:.0} samples x {width:.0})",
                        model.node_name(*node),
                        model.variables[*var].name
                    ),
                    bytes: 2.0 * rows * (width + 1.0) * word,
                });
            }
            RecordWhat::Rate { population } => {
                let rows = (steps / every_steps(r.every)).ceil();
                est.buffers.push(Buffer {
                    what: format!(
                        "record rate({}) ({rows:.0} samples)",
                        model.populations[*population].name
                    ),
                    bytes: 2.0 * rows * 2.0 * word,
                });
            }
            RecordWhat::Regime(h) => est.buffers.push(Buffer {
                what: format!("record {} ({steps:.0} samples)", model.regimes[*h].name),
                bytes: 2.0 * steps * 2.0 * word,
            }),
            RecordWhat::Events { population, .. } => est.unknown.push(format!(
                "spike record of {} (grows with the number of spikes: 16 bytes each)",
                model.populations[*population].name
            )),
            RecordWhat::Let {
                population,
                name,
                range,
                ..
            } => {
                let size = model.populations[*population].size as f64;
                let width = match range {
                    Some((a, b)) => (*b as f64).min(size) - (*a as f64).min(size),
                    None => size,
                }
                .max(0.0);
                let rows = (steps / every_steps(r.every)).ceil();
                est.buffers.push(Buffer {
                    what: format!(
                        "record {}.{name} ({rows:.0} samples x {width:.0})",
                        model.populations[*population].name
                    ),
                    bytes: 2.0 * rows * (width + 1.0) * word,
                });
            }
            RecordWhat::Edges { projection } => {
                let pr = &model.projections[*projection];
                match expected_synapses(model, pr) {
                    // Two index columns, converted through f64 when written.
                    Some(n) => est.buffers.push(Buffer {
                        what: format!("record {}.edges (~{n:.0} synapses)", pr.name),
                        bytes: 2.0 * n * 8.0,
                    }),
                    None => est.unknown.push(format!(
                        "record {}.edges (16 bytes per synapse while written)",
                        pr.name
                    )),
                }
            }
        }
    }
    est.buffers.sort_by(|a, b| b.bytes.total_cmp(&a.bytes));
    est
}

/// Bytes as people read them.
pub fn human_bytes(b: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = b;
    let mut k = 0;
    while v >= 1024.0 && k + 1 < units.len() {
        v /= 1024.0;
        k += 1;
    }
    format!("{v:.1} {}", units[k])
}

/// A size as written on the command line: `8GiB`, `500 MB`, `1.5G`, `123456` (bytes).
pub fn parse_bytes(text: &str) -> Result<f64, crate::Error> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        crate::Error::Value(format!(
            "`{text}` is not a size; write e.g. `8GiB` or `500MB`"
        ))
    })?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0f64.powi(2),
        "gi" | "gib" => 1024.0f64.powi(3),
        "ti" | "tib" => 1024.0f64.powi(4),
        other => {
            return Err(crate::Error::Value(format!(
                "`{text}`: unknown size unit `{other}`; use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB"
            )))
        }
    };
    if !(value.is_finite() && value > 0.0) {
        return Err(crate::Error::Value(format!(
            "`{text}` must be a positive size"
        )));
    }
    Ok(value * factor)
}

/// The memory this machine can give a new run (`MemAvailable` of `/proc/meminfo`), where the
/// system says.
pub fn available() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Refuse a run of `n_steps` (0: the set-up alone) whose estimate exceeds `limit` bytes
/// (`--max-memory`), or without a limit the memory this machine has available.
pub fn check_machine(model: &Model, n_steps: u64, limit: Option<f64>) -> Result<(), crate::Error> {
    let est = estimate(model, n_steps);
    match limit {
        Some(limit) => check_fits(&est, limit, "--max-memory"),
        None => match available() {
            Some(limit) => check_fits(&est, limit, "the memory available on this machine"),
            None => Ok(()),
        },
    }
}

/// Refuse a run whose estimate exceeds `limit` bytes, naming the largest buffers.
pub fn check_fits(est: &Estimate, limit: f64, limit_source: &str) -> Result<(), crate::Error> {
    let total = est.total();
    if total <= limit {
        return Ok(());
    }
    let largest: Vec<String> = est
        .buffers
        .iter()
        .take(3)
        .map(|b| format!("  {}: {}", b.what, human_bytes(b.bytes)))
        .collect();
    Err(crate::Error::Value(format!(
        "this run needs about {} of memory, more than {} ({limit_source}); nothing was allocated. Largest buffers:\n{}\nmake the model or its records smaller (record a slice `E.v[0..100]`, sample with `every 1 ms`), shorten the run, or raise the limit with --max-memory",
        human_bytes(total),
        human_bytes(limit),
        largest.join("\n")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_bytes("8GiB").unwrap(), 8.0 * 1024.0f64.powi(3));
        assert_eq!(parse_bytes("500 MB").unwrap(), 500e6);
        assert_eq!(parse_bytes("123").unwrap(), 123.0);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
        assert!(parse_bytes("0").is_err());
    }

    fn owned(parts: &[(&str, f64)]) -> Vec<(String, f64)> {
        parts.iter().map(|&(w, b)| (w.to_string(), b)).collect()
    }

    #[test]
    fn the_layout_keeps_what_the_run_reads() {
        let text = "model m\nunit U { state v = 0\n spike when v > 1 { v = 0 } }\npopulation A = U[40]\npopulation B = U[30]\n\
                    synapse W { param w = normal(1, 0.1); param c = 2; state x = 0 }\n\
                    project Plain: A -> B via W { connect fixed_total(600); delay = uniform(1 ms, 2 ms); on pre { post.v += w } }\n\
                    project Reads: A -> B via W { connect fixed_total(100); delay = 1 ms; on pre { post.v += w * pre.v } }\n\
                    project Slow: A -> B via W { connect fixed_total(50); delay = 10 ms; on pre { post.v += w }; on post { x += 1 } }\n\
                    run { dt = 0.01 ms; duration = 1 ms }\n";
        let checked = crate::compile_text(std::path::Path::new("inline.ng"), text.to_string());
        let m = &checked.output.compiled.expect("compiles").model;
        let layout = |name: &str| {
            let (h, _) = m.projections.iter().find(|(_, p)| p.name == name).unwrap();
            let l = synapse_layout(m, &neurograph_compiler::layout::plan(m), h);
            (l.parts, l.upper_bound)
        };
        // `c` has one value (stored once), `w` and the state `x` one per synapse; the delay's
        // type is known only when it is a constant.
        assert_eq!(
            layout("Plain"),
            (
                owned(&[
                    ("post index (u32)", 4.0),
                    ("w, x (f64)", 16.0),
                    ("delay (u8, u16 or u32 by the longest)", 4.0)
                ]),
                true
            )
        );
        // 1 ms at dt = 0.01 ms is 100 steps: a byte; `pre.v` keeps the pre indices.
        assert_eq!(
            layout("Reads").0,
            owned(&[
                ("post index (u32)", 4.0),
                ("pre index (u32)", 4.0),
                ("w, x (f64)", 16.0),
                ("delay (u8)", 1.0)
            ])
        );
        // 1,000 steps need two bytes; `on post` code keeps the index by post element.
        assert_eq!(
            layout("Slow").0,
            owned(&[
                ("post index (u32)", 4.0),
                ("index by post (u32)", 4.0),
                ("w, x (f64)", 16.0),
                ("delay (u16)", 2.0)
            ])
        );
        // The set-up's transient buffers, once, for the projection where they are most: here
        // the delays in seconds (8 B per synapse; `fixed_total` makes no pairs).
        let est = estimate(m, 100);
        let building: Vec<&Buffer> = est
            .buffers
            .iter()
            .filter(|b| b.what.contains("while it is built"))
            .collect();
        assert_eq!(building.len(), 1);
        assert!(building[0].what.contains("Plain"), "{}", building[0].what);
        assert_eq!(building[0].bytes, 8.0 * 600.0);
    }
}
