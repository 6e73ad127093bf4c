//! `neurograph inspect`: what a compiled model contains, in words a modeller reads.

use std::fmt::Write;

use neurograph_compiler::ir::*;
use neurograph_compiler::print::expr_text;
use neurograph_compiler::units::{pretty, Dim};
use neurograph_compiler::{const_eval, Compiled};

fn value_text(model: &Model, v: Handle<Variable>) -> String {
    let var = &model.variables[v];
    match const_eval(model, var.init) {
        Some(x) => pretty(x, var.dim),
        None => expr_text(model, var.init),
    }
}

/// For a population that never emits an event, what it is instead of a spiking one: rate
/// units, or cells of a kind without events (empty for populations that can spike).
fn silent_note(m: &Model, p: &Population) -> String {
    let ct = &m.cell_types[p.cell_type];
    if m.can_spike(p) || p.input.is_some() {
        return String::new();
    }
    match (ct.kind, ct.events.is_empty()) {
        (neurograph_grammar::CellKind::Unit, _) => " (rate units: no spikes)".to_string(),
        (kind, true) => format!(" ({} without events: no spikes)", kind.keyword()),
        (_, false) => " (events but no spike event: no spikes)".to_string(),
    }
}

/// One line per input: its kind, what it drives or how many sources it has, its rate.
fn input_text(m: &Model, i: &Input) -> String {
    match &i.kind {
        InputKind::Poisson { population } => {
            let p = &m.populations[*population];
            let ct = &m.cell_types[p.cell_type];
            let rate = ct.params.first().map_or_else(
                || "varying in time (evaluated every step)".to_string(),
                |&v| value_text(m, v),
            );
            format!("poisson, {} sources, rate {rate} each", p.size)
        }
        InputKind::Current {
            population,
            var,
            value,
        } => format!(
            "current -> {}.{}, set every step to {}",
            m.populations[*population].name,
            m.variables[*var].name,
            match const_eval(m, *value) {
                Some(x) => pretty(x, m.variables[*var].dim),
                None => format!("{} (SI units)", expr_text(m, *value)),
            }
        ),
        InputKind::Tokens { population, path } => format!(
            "tokens from {path}, vocabulary {} (one-hot, one token per step)",
            m.populations[*population].size
        ),
        InputKind::SpikeFile { population, path } => format!(
            "spikes from {path}, {} sources (replayed)",
            m.populations[*population].size
        ),
        InputKind::PoissonDrive {
            population,
            var,
            n,
            rate,
            weight,
        } => format!(
            "poisson_input -> {}.{}, {n} sources per element at {}, each spike adds {}",
            m.populations[*population].name,
            m.variables[*var].name,
            match const_eval(m, *rate) {
                Some(x) => pretty(x, Dim::TIME.powi(-1)),
                None => format!("{} (SI units)", expr_text(m, *rate)),
            },
            match const_eval(m, *weight) {
                Some(x) => pretty(x, m.variables[*var].dim),
                None => format!("{} (SI units)", expr_text(m, *weight)),
            }
        ),
    }
}

/// Expected synapse count of a projection between populations, when the rule says.
use crate::memory::{expected_synapses, human_bytes};

pub fn describe(c: &Compiled) -> String {
    let m = &c.model;
    let mut out = String::new();
    let _ = writeln!(out, "model {}", m.name);
    let _ = writeln!(
        out,
        "run: dt = {}, duration = {}, seed = {}, precision = {}",
        pretty(m.run.dt, Dim::TIME),
        pretty(m.run.duration, Dim::TIME),
        m.run.seed,
        if m.run.precision == Precision::F32 {
            "f32"
        } else {
            "f64"
        }
    );
    let _ = writeln!(out, "\npopulations:");
    for (_, p) in m.populations.iter() {
        let ct = &m.cell_types[p.cell_type];
        let kind = match p.input.map(|i| &m.inputs[i].kind) {
            Some(InputKind::Poisson { .. }) => "Poisson input".to_string(),
            Some(InputKind::Tokens { path, .. }) => format!("token input from {path}"),
            Some(InputKind::SpikeFile { path, .. }) => format!("spike trains from {path}"),
            _ => format!("{} {}", ct.kind.keyword(), ct.name),
        };
        let _ = writeln!(
            out,
            "  {} [{}]: {kind}{}",
            p.name,
            p.size,
            silent_note(m, p)
        );
        for &v in &ct.states {
            let var = &m.variables[v];
            let init = p
                .overrides
                .iter()
                .find(|(x, _)| *x == v)
                .map(|(_, e)| expr_text(m, *e))
                .unwrap_or_else(|| value_text(m, v));
            let _ = writeln!(out, "    state {}: {} = {init}", var.name, var.dim);
        }
        let events: Vec<&str> = ct.events.iter().map(|e| e.name.as_str()).collect();
        if !events.is_empty() {
            let _ = writeln!(out, "    events: {}", events.join(", "));
        }
        if let Some(method) = c.info.cell_methods.get(&p.cell_type) {
            if !ct.dynamics.odes.is_empty() {
                let how = if ct.dynamics.method.is_some() {
                    "requested"
                } else {
                    "default"
                };
                let _ = writeln!(out, "    integration: {} ({how})", method.name());
            }
        }
    }
    let _ = writeln!(out, "\nprojections:");
    let plan = neurograph_compiler::layout::plan(m);
    for (h, pr) in m.projections.iter() {
        let names = |e: &Endpoint| {
            e.parts
                .iter()
                .map(|p| {
                    let n = m.node_name(p.node).to_string();
                    match m.node_size(p.node) {
                        Some(size) if p.start != 0 || p.end != size => {
                            format!("{n}[{}..{}]", p.start, p.end)
                        }
                        _ => n,
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let st = &m.synapse_types[pr.synapse];
        let via = if st.declared {
            format!(" via {}", st.name)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {}: {} -> {}{via}",
            pr.name,
            names(&pr.pre),
            names(&pr.post)
        );
        let _ = writeln!(
            out,
            "    connect {}",
            neurograph_compiler::graph::connect_text(m, &pr.connect)
        );
        let delay = match pr.delay {
            None => "none".to_string(),
            Some(d) => match const_eval(m, d) {
                Some(x) => pretty(x, Dim::TIME),
                None => format!("{} (per synapse)", expr_text(m, d)),
            },
        };
        let mut kinds = Vec::new();
        if !pr.code.on_pre.is_empty() {
            kinds.push("on pre");
        }
        if !pr.code.on_post.is_empty() {
            kinds.push("on post");
        }
        if !pr.code.on_step.is_empty() {
            kinds.push("on step");
        }
        if !pr.couplings.is_empty() {
            kinds.push("coupling");
        }
        if !pr.code.dynamics.odes.is_empty() || !pr.code.dynamics.updates.is_empty() {
            kinds.push("synapse dynamics");
        }
        let _ = writeln!(
            out,
            "    transmission: {}; delay {delay}",
            if kinds.is_empty() {
                "none".to_string()
            } else {
                kinds.join(", ")
            }
        );
        for cp in &pr.couplings {
            let red = if cp.reduce == Reduce::Sum {
                "sum"
            } else {
                "mean"
            };
            let _ = writeln!(
                out,
                "    post.{} = {red}({})",
                m.variables[cp.target].name,
                expr_text(m, cp.value)
            );
        }
        if let Some(method) = c.info.projection_methods.get(&h) {
            if !pr.code.dynamics.odes.is_empty() {
                let _ = writeln!(out, "    integration: {}", method.name());
            }
        }
        if !pr.code.event_driven.is_empty() {
            let names: Vec<&str> = pr
                .code
                .event_driven
                .iter()
                .map(|o| m.variables[o.var].name.as_str())
                .collect();
            let _ = writeln!(
                out,
                "    event-driven: {} (advanced per synapse at its events, not every step)",
                names.join(", ")
            );
        }
        let layout = crate::memory::synapse_layout(m, &plan, h);
        let parts: Vec<String> = layout
            .parts
            .iter()
            .map(|(what, b)| format!("{what} {b} B"))
            .collect();
        let forced = match pr.layout {
            Layout::Auto => String::new(),
            l => format!(" (forced: layout = {})", l.name()),
        };
        // Dense rows: known for all-to-all and one-to-one, found at set-up for rules that may
        // build them (a condition of `i`, `j`, a file), not looked for in random ones.
        let may_be_dense = match &pr.connect.rule {
            ConnectRule::Bernoulli(p) => neurograph_compiler::const_eval(m, *p).is_none(),
            ConnectRule::File(_) => true,
            _ => false,
        };
        let rows = if neurograph_compiler::layout::dense_rows(m, h) {
            " with dense rows"
        } else if may_be_dense && neurograph_compiler::layout::dense_rows_allowed(m, h) {
            " (dense rows if the built rows are runs of posts)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "    layout: CSR{rows}{forced}, {}{} B per synapse: {}",
            if layout.upper_bound { "at most " } else { "" },
            layout.bytes_per_synapse(),
            parts.join(", ")
        );
        match expected_synapses(m, pr) {
            Some(n) => {
                let bytes = n * layout.bytes_per_synapse()
                    + 4.0 * (pr.pre.size() as f64 + pr.post.size() as f64 + 2.0);
                let _ = writeln!(out, "    synapses: ~{n:.0} (~{})", human_bytes(bytes));
            }
            None => {
                let _ = writeln!(out, "    synapses: known after connectivity is built");
            }
        }
    }
    if !m.inputs.is_empty() {
        let _ = writeln!(out, "\ninputs:");
        for (_, i) in m.inputs.iter() {
            let _ = writeln!(out, "  {}: {}", i.name, input_text(m, i));
        }
    }
    if !m.regimes.is_empty() {
        let _ = writeln!(out, "\nregimes:");
        for (_, r) in m.regimes.iter() {
            let _ = writeln!(out, "  {}: states {}", r.name, r.states.join(", "));
        }
    }
    let order: Vec<&str> = c
        .info
        .update_order
        .iter()
        .map(|n| m.node_name(*n))
        .collect();
    let _ = writeln!(out, "\nupdate order: {}", order.join(", "));
    let _ = writeln!(
        out,
        "\nruntime parameters (change with --set name=value, no recompilation):"
    );
    let mut any = false;
    for &g in &m.globals {
        if m.variables[g].kind == VarKind::Param {
            let _ = writeln!(out, "  {} = {}", m.variables[g].name, value_text(m, g));
            any = true;
        }
    }
    for (_, ct) in m.cell_types.iter() {
        for &v in &ct.params {
            if m.variables[v].kind == VarKind::Param {
                let _ = writeln!(
                    out,
                    "  {}.{} = {}",
                    ct.name.trim_end_matches("$input"),
                    m.variables[v].name,
                    value_text(m, v)
                );
                any = true;
            }
        }
    }
    for (_, st) in m.synapse_types.iter() {
        for &v in &st.params {
            if m.variables[v].kind == VarKind::Param {
                let _ = writeln!(
                    out,
                    "  {}.{} = {}",
                    st.name,
                    m.variables[v].name,
                    value_text(m, v)
                );
                any = true;
            }
        }
    }
    if !any {
        let _ = writeln!(out, "  (none)");
    }
    let est = crate::memory::estimate(m, (m.run.duration / m.run.dt).round() as u64);
    let _ = writeln!(
        out,
        "\nmemory estimate for a run of {}: {} (state {}, synapses {}, records {})",
        pretty(m.run.duration, Dim::TIME),
        human_bytes(est.total()),
        human_bytes(est.sum_where("population")),
        human_bytes(est.sum_where("projection")),
        // (+ 0.0: an empty sum is -0.0, which would print as "-0.0 B".)
        human_bytes(est.sum_where("record") + 0.0)
    );
    for u in &est.unknown {
        let _ = writeln!(out, "  not included: {u}");
    }
    out
}

/// Compile, in `jit`, every kernel a model can use, with the input modes they have at the start
/// of a run (parameters with one value for all elements are scalars; endpoints one part per
/// population range): fused population updates, event code (cell events, then `on pre` /
/// `on post`), then expression kernels. Returns one label per compiled function, in order.
/// What `inspect --clif` prints and what the `compile/<spec>` benchmark times.
#[cfg(feature = "jit")]
pub fn compile_all_kernels(
    c: &Compiled,
    jit: &mut neurograph_compiler::codegen::Jit,
) -> Result<Vec<String>, neurograph_compiler::codegen::CodegenError> {
    use neurograph_compiler::codegen::{
        delivery_columns, fused_key, fused_key_synapses, model_kernels, static_mode, ColumnMode,
        DeliveryKey, EventCode, InputMode,
    };
    let model = &c.model;
    let mut labels = Vec::new();
    let mode_of = |(v, side)| (side == Side::Own).then(|| static_mode(model, v, side));
    for (h, ct) in model.cell_types.iter() {
        let method = c.info.cell_methods.get(&h).copied();
        if let Some((key, _)) = fused_key(model, ct, method, mode_of, true) {
            jit.compile_fused(model, &key)?;
            labels.push(format!("{}: fused update and spike detection", ct.name));
        }
    }
    for (h, p) in model.projections.iter() {
        let method = c.info.projection_methods.get(&h).copied();
        if let Some((key, _)) = fused_key_synapses(model, &p.code.dynamics, method, mode_of, true) {
            jit.compile_fused(model, &key)?;
            labels.push(format!("{}: fused synapse dynamics", p.name));
        }
    }
    // Event code: cell event bodies, `on pre` / `on post`, coupling sums.
    let mut codes = Vec::new();
    for (h, ct) in model.cell_types.iter() {
        for event in 0..ct.events.len() {
            codes.push(EventCode::Cell { cell: h, event });
        }
    }
    for (h, p) in model.projections.iter() {
        codes.push(EventCode::OnPre(h));
        codes.push(EventCode::OnPost(h));
        if !p.code.on_step.is_empty() {
            codes.push(EventCode::OnStep(h));
        }
        for index in 0..p.couplings.len() {
            codes.push(EventCode::Coupling {
                projection: h,
                index,
            });
        }
    }
    for code in codes {
        let label = code_label(model, code);
        let stmts = code.statements(model);
        let Some(columns) = delivery_columns(model, &stmts).filter(|_| !stmts.is_empty()) else {
            continue;
        };
        let proj = match code {
            EventCode::OnPre(p)
            | EventCode::OnPost(p)
            | EventCode::OnStep(p)
            | EventCode::Coupling { projection: p, .. } => Some(&model.projections[p]),
            EventCode::Cell { .. } => None,
        };
        let parts = |side| {
            proj.map_or(0, |p| {
                let ep = if side == Side::Pre { &p.pre } else { &p.post };
                ep.parts.len() as u32
            })
        };
        // Written variables are columns; endpoints one part per population range.
        let modes = columns
            .iter()
            .map(|&(v, side)| {
                let written = stmts.iter().any(|st| st.var == v && st.side == side);
                match (side, static_mode(model, v, side)) {
                    (Side::Own, InputMode::Scalar) if !written => ColumnMode::Scalar,
                    (Side::Own, _) => ColumnMode::Element,
                    (side, _) => ColumnMode::Parts(parts(side)),
                }
            })
            .collect();
        // As the runtime runs them: `on pre` without delays, `on step` and couplings over
        // rows.
        let rows = match code {
            EventCode::OnPre(_) => proj.is_some_and(|p| p.delay.is_none()),
            EventCode::Coupling { .. } | EventCode::OnStep(_) => true,
            _ => false,
        };
        // (Rows whose posts are consecutive, which the run finds in the connectivity, are not
        // known from the spec alone: such code is compiled over general rows here.)
        let key = DeliveryKey::new(model, code, modes, rows, false);
        jit.compile_delivery(model, &key)?;
        labels.push(label);
    }
    for (label, key) in model_kernels(model) {
        jit.compile(model, &key)?;
        labels.push(format!(
            "{label} (inputs {:?}, subset {}, synapses {})",
            key.modes, key.subset, key.synapses
        ));
    }
    Ok(labels)
}

/// The CLIF of the kernels a simulation of the spec prepares before its first step, with the
/// spec's defaults (what `neurograph build` writes into a runner: exact propagators with their
/// zero entries skipped, the event code over rows or due synapses as the run chooses), then the
/// expression kernels of `model_kernels`; each labelled with its origin and function name, and
/// with `asm` followed by its machine code. When the simulation cannot be set up (a data file
/// missing, too little memory), the kernels derived from the spec alone (`compile_all_kernels`),
/// after a comment that says so.
pub fn clif_text(model: &crate::Model, asm: bool) -> Result<String, crate::Error> {
    #[cfg(feature = "jit")]
    {
        use neurograph_compiler::codegen::{model_kernels, KernelSource};
        let err = |e: neurograph_compiler::codegen::CodegenError| crate::Error::Run(e.to_string());
        let c = model.compiled();
        let ir = &c.model;
        let mut jit = neurograph_runtime::jit::new_jit().map_err(err)?;
        jit.codegen().keep_clif = true;
        jit.codegen().keep_asm = asm;
        let mut out = String::new();
        let prepared = crate::memory::check_machine(ir, 0, None).and_then(|()| {
            let mut sim = model.simulation().backend(crate::Backend::Jit).build()?;
            sim.kernel_decisions();
            Ok(())
        });
        let labels = match (prepared, c.kernels.get()) {
            (Ok(()), Some(KernelSource::Jit(shared))) => {
                let (fused, delivery, exprs) = {
                    let shared = shared.lock().unwrap_or_else(|e| e.into_inner());
                    (
                        shared.fused_keys().cloned().collect::<Vec<_>>(),
                        shared.delivery_keys().cloned().collect::<Vec<_>>(),
                        shared.kernel_keys().cloned().collect::<Vec<_>>(),
                    )
                };
                let mut labels = Vec::new();
                for key in &fused {
                    jit.compile_fused(ir, key).map_err(err)?;
                    labels.push(fused_label(ir, key));
                }
                for key in &delivery {
                    jit.compile_delivery(ir, key).map_err(err)?;
                    labels.push(code_label(ir, key.code));
                }
                let mut exprs = exprs;
                for (_, key) in model_kernels(ir) {
                    if !exprs.contains(&key) {
                        exprs.push(key);
                    }
                }
                let named = model_kernels(ir);
                for key in &exprs {
                    jit.compile(ir, key).map_err(err)?;
                    let label = named
                        .iter()
                        .find(|(_, k)| k.expr == key.expr)
                        .map_or_else(|| format!("expression {}", key.expr), |(l, _)| l.clone());
                    labels.push(format!(
                        "{label} (inputs {:?}, subset {}, synapses {})",
                        key.modes, key.subset, key.synapses
                    ));
                }
                labels
            }
            (prepared, _) => {
                let why = prepared
                    .err()
                    .map_or_else(|| "no JIT".to_string(), |e| e.to_string());
                let _ = writeln!(
                    out,
                    "; the simulation could not be set up ({why}): kernels derived from the spec \
                     alone (exact propagators shown dense)"
                );
                compile_all_kernels(c, &mut jit).map_err(err)?
            }
        };
        for (label, (name, text)) in labels.iter().zip(&jit.codegen().clif) {
            let _ = write!(out, "; {label} [{name}]\n{text}\n");
        }
        Ok(out)
    }
    #[cfg(not(feature = "jit"))]
    {
        let _ = (model, asm);
        Err(crate::Error::Run(
            "this neurograph was built without the code generator (feature `jit`)".to_string(),
        ))
    }
}

/// The label of a fused kernel: the cell type (or the projection) whose state it updates.
#[cfg(feature = "jit")]
fn fused_label(model: &Model, key: &neurograph_compiler::codegen::FusedKey) -> String {
    let first = key.state_vars().first().copied();
    if let Some((_, ct)) = model
        .cell_types
        .iter()
        .find(|(_, ct)| first.is_some_and(|v| ct.states.contains(&v)))
    {
        return format!("{}: fused update and spike detection", ct.name);
    }
    match model
        .projections
        .iter()
        .find(|(_, p)| first.is_some_and(|v| model.synapse_types[p.synapse].states.contains(&v)))
    {
        Some((_, p)) => format!("{}: fused synapse dynamics", p.name),
        None => "fused update".to_string(),
    }
}

/// The label of event code.
fn code_label(model: &Model, code: neurograph_compiler::codegen::EventCode) -> String {
    use neurograph_compiler::codegen::EventCode;
    match code {
        EventCode::Cell { cell, event } => {
            let ct = &model.cell_types[cell];
            format!("{}: event {} body", ct.name, ct.events[event].name)
        }
        EventCode::OnPre(p) => format!("{}: on pre event code", model.projections[p].name),
        EventCode::OnPost(p) => format!("{}: on post event code", model.projections[p].name),
        EventCode::OnStep(p) => format!("{}: on step code", model.projections[p].name),
        EventCode::Coupling { projection, .. } => {
            format!("{}: coupling sum", model.projections[projection].name)
        }
    }
}
