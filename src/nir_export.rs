//! A spec as a NIR graph (`neurograph export SPEC --nir FILE.nir`): what NIR can express of
//! it, or an error naming the first construct it cannot.
//!
//! Each population becomes a neuron node chosen by its equations (probed numerically on the
//! built network, so any spelling of the same dynamics is recognised): one state `v` with
//! `dv/dt = (v_leak - v + r x) / tau` is a LIF (with a `spike when v > θ { v = v_reset }`)
//! or an LI (without); `dv/dt = r x` an IF or I; `v` and a current `I` with
//! `dI/dt = (-I + w_in x) / tau_syn`, `dv/dt = (v_leak - v + r I) / tau_mem` a CubaLIF or
//! CubaLI. The input `x` is either a state every step resets to 0 (`x <- 0`) that `on pre`
//! code adds weights to — NIR's reading exactly (a spike is an input of 1 for one step) — or
//! the variable `on pre` code adds to directly (`post.v += w`), exported with `r = tau / dt`
//! (a jump of `w`, which NIR's discrete-time readers apply during the next step rather than at
//! its start). Where the cell type has parameters of NIR's names (`tau`, `r`, `v_leak`, ...)
//! that agree with the probed equations, their exact values are written. Spike-file and
//! Poisson inputs become `Input` nodes; each projection one `Linear` (or `Affine`) weight
//! node per pair of populations it joins, dense (out, in), preceded by a `Delay` when it has
//! one; every population with a record gets an `Output`.

use std::collections::HashMap;

use neurograph_compiler::ir::{self, Expr, Handle, InputKind, Node, Side, Trigger, Variable};
use neurograph_grammar::{AssignOp, BinOp};
use neurograph_interchange::nir::{Array, Graph, Node as NirNode};
use neurograph_runtime::eval::{Col, Ctx};
use neurograph_runtime::sim::Sim;

use crate::simulation::{Backend, Error, Model};

fn unsupported(m: String) -> Error {
    Error::Value(format!("cannot export to NIR: {m}"))
}

fn col(c: Col, n: usize) -> Vec<f64> {
    c.into_vec(n)
}

/// A NIR node name from a spec name.
fn nir_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The weights between one pair of populations: (pre, post), dense (post, pre), and the
/// delay in steps every synapse has.
type Block = (
    (Handle<ir::Population>, Handle<ir::Population>),
    Vec<f64>,
    Option<u32>,
);

/// What a population became: its node's name and the variable `on pre` code must add to.
struct Neuron {
    name: String,
    size: usize,
    /// The variable inputs arrive in (the reset-every-step input, or the one jumped).
    input: Handle<Variable>,
    /// Added to the weights' bias: the drive the equations have beyond `v_leak`.
    bias: Option<Vec<f64>>,
}

/// Values of a named parameter of the population, if the cell type has one.
fn named(
    sim: &Sim,
    m: &ir::Model,
    nd: usize,
    params: &[Handle<Variable>],
    name: &str,
) -> Option<Vec<f64>> {
    let v = params
        .iter()
        .copied()
        .find(|&v| m.variables[v].name == name)?;
    let store = sim.nodes[nd].vars.get(&v)?;
    Some((0..sim.nodes[nd].size).map(|k| store.get(k, 0)).collect())
}

/// `a` and `b` agree to rounding.
fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-300))
}

/// `named` when it agrees with the probed `derived`, else `derived`.
fn prefer(named: Option<Vec<f64>>, derived: Vec<f64>) -> Vec<f64> {
    match named {
        Some(v) if close(&v, &derived) => v,
        _ => derived,
    }
}

/// Export `model` (its network as built with the spec's seed) as a NIR graph.
pub fn export(model: &Model) -> Result<Graph, Error> {
    let sim_owner = model.simulation().backend(Backend::Interp).build()?;
    let sim = sim_owner.runtime();
    let m = &model.compiled().model;
    let dt = m.run.dt;
    let mut graph = Graph {
        metadata: vec![("dt".into(), dt)],
        ..Graph::default()
    };
    for (_, input) in m.inputs.iter() {
        match &input.kind {
            InputKind::Poisson { .. } | InputKind::SpikeFile { .. } => {}
            _ => {
                return Err(unsupported(format!(
                    "input `{}`: NIR's graph inputs are spike trains (spike-file and Poisson inputs); currents, tokens and Poisson drives onto a variable have no node",
                    input.name
                )))
            }
        }
    }
    let mut neurons: HashMap<Handle<ir::Population>, Neuron> = HashMap::new();
    let mut sources: HashMap<Handle<ir::Population>, String> = HashMap::new();
    for (h, p) in m.populations.iter() {
        let name = nir_name(&p.name);
        let nd = sim.node_index(Node::Population(h));
        let n = sim.nodes[nd].size;
        if p.input.is_some() {
            graph.nodes.push((
                name.clone(),
                NirNode::new("Input", vec![("shape", Array::vector(vec![n as f64]))]),
            ));
            sources.insert(h, name);
            continue;
        }
        let (node, neuron) = neuron_node(sim, m, h, nd, n, dt)?;
        graph.nodes.push((name.clone(), node));
        sources.insert(h, name.clone());
        neurons.insert(h, Neuron { name, ..neuron });
    }
    // Weights: one node per projection and pair of populations it joins.
    let mut biased: Vec<Handle<ir::Population>> = Vec::new();
    for (h, pr) in m.projections.iter() {
        let what = |s: &str| unsupported(format!("projection `{}`: {s}", pr.name));
        if !pr.couplings.is_empty() {
            return Err(what(
                "a coupling (`post.x = sum(...)`): NIR's weights carry spikes only",
            ));
        }
        if !pr.code.on_post.is_empty() || !pr.code.on_step.is_empty() {
            return Err(what("`on post` / `on step` code: NIR's weights are static"));
        }
        if !pr.code.dynamics.odes.is_empty()
            || !pr.code.dynamics.updates.is_empty()
            || !pr.code.event_driven.is_empty()
        {
            return Err(what("synapse dynamics: NIR's weights are static"));
        }
        let [stmt] = pr.code.on_pre.as_slice() else {
            return Err(what(
                "NIR's weights need exactly one `on pre` statement, `post.x += w`",
            ));
        };
        let post_pops: Vec<Handle<ir::Population>> = pr
            .post
            .parts
            .iter()
            .filter_map(|p| match p.node {
                Node::Population(q) => Some(q),
                _ => None,
            })
            .collect();
        if post_pops.len() != pr.post.parts.len()
            || pr
                .pre
                .parts
                .iter()
                .any(|p| !matches!(p.node, Node::Population(_)))
        {
            return Err(what(
                "an end that is a projection: NIR's edges join neuron nodes",
            ));
        }
        for q in &post_pops {
            let Some(neuron) = neurons.get(q) else {
                return Err(what("it ends at an input"));
            };
            if stmt.side != Side::Post || stmt.op != AssignOp::Add || stmt.var != neuron.input {
                return Err(what(&format!(
                    "`on pre` must add to `post.{}`, the input of `{}`",
                    m.variables[neuron.input].name, neuron.name
                )));
            }
        }
        let pnd = sim.node_index(Node::Projection(h));
        let conn = &sim.conn[pnd - sim.n_pops];
        let n_syn = conn.n_synapses();
        let w = col(sim.eval(stmt.value, &Ctx::all(pnd)), n_syn);
        let (pre_idx, post_idx) = (conn.pre(), conn.post());
        // Endpoint index -> (population, element).
        let locate = |parts: &[ir::EndpointPart], i: u32| -> (Handle<ir::Population>, usize) {
            let mut off = 0u32;
            for part in parts {
                let len = part.end - part.start;
                if i < off + len {
                    if let Node::Population(q) = part.node {
                        return (q, (part.start + i - off) as usize);
                    }
                }
                off += len;
            }
            unreachable!("an endpoint index within its parts")
        };
        // (pre population, post population) -> dense weights and the delay steps seen.
        let mut blocks: Vec<Block> = Vec::new();
        for k in 0..n_syn {
            let (a, i) = locate(&pr.pre.parts, pre_idx[k]);
            let (b, j) = locate(&pr.post.parts, post_idx[k]);
            let steps = if conn.delay_steps.is_empty() {
                0
            } else {
                conn.delay_steps.get(k)
            };
            let (na, nb) = (
                sim.nodes[sim.node_index(Node::Population(a))].size,
                sim.nodes[sim.node_index(Node::Population(b))].size,
            );
            let at = match blocks.iter().position(|(key, _, _)| *key == (a, b)) {
                Some(at) => at,
                None => {
                    blocks.push(((a, b), vec![0.0; na * nb], Some(steps)));
                    blocks.len() - 1
                }
            };
            let block = &mut blocks[at];
            if block.2 != Some(steps) {
                return Err(what("its delays differ between synapses: NIR's Delay node delays a whole population's output"));
            }
            block.1[j * na + i] += w[k];
        }
        for ((a, b), weights, steps) in blocks {
            let (na, nb) = (
                sim.nodes[sim.node_index(Node::Population(a))].size,
                sim.nodes[sim.node_index(Node::Population(b))].size,
            );
            let (src, dst) = (sources[&a].clone(), neurons[&b].name.clone());
            // A named projection keeps its name; an unnamed one (named by its ends) is
            // "SRC_to_DST"; a suffix keeps names unique.
            let mut base = if pr.name.contains("->") {
                format!("{src}_to_{dst}")
            } else if pr.pre.parts.len() * pr.post.parts.len() == 1 {
                nir_name(&pr.name)
            } else {
                nir_name(&format!("{}_{src}_to_{dst}", pr.name))
            };
            let stem = base.clone();
            let mut k = 2;
            while graph.nodes.iter().any(|(n, _)| *n == base) {
                base = format!("{stem}_{k}");
                k += 1;
            }
            let mut from = src.clone();
            if let Some(s) = steps.filter(|&s| s > 0) {
                let delay = format!("{base}_delay");
                graph.nodes.push((
                    delay.clone(),
                    NirNode::new("Delay", vec![("delay", Array::filled(na, s as f64 * dt))]),
                ));
                graph.edges.push((from, delay.clone()));
                from = delay;
            }
            let neuron = &neurons[&b];
            let node = match (&neuron.bias, biased.contains(&b)) {
                (Some(bias), false) => {
                    biased.push(b);
                    NirNode::new(
                        "Affine",
                        vec![
                            ("weight", Array::matrix(nb, na, weights)),
                            ("bias", Array::vector(bias.clone())),
                        ],
                    )
                }
                _ => NirNode::new("Linear", vec![("weight", Array::matrix(nb, na, weights))]),
            };
            graph.nodes.push((base.clone(), node));
            graph.edges.push((from, base.clone()));
            graph.edges.push((base, dst));
        }
    }
    for (h, neuron) in &neurons {
        if neuron.bias.is_some() && !biased.contains(h) {
            return Err(unsupported(format!(
                "population `{}`: a constant drive with no incoming projection to carry it as a bias",
                m.populations[*h].name
            )));
        }
    }
    // Outputs: the recorded populations.
    let mut outputs: Vec<Handle<ir::Population>> = Vec::new();
    for r in &m.records {
        let pop = match &r.what {
            ir::RecordWhat::Events { population, .. } => Some(*population),
            ir::RecordWhat::State {
                node: Node::Population(p),
                ..
            } => Some(*p),
            _ => None,
        };
        if let Some(p) = pop.filter(|p| !outputs.contains(p) && neurons.contains_key(p)) {
            outputs.push(p);
        }
    }
    for p in outputs {
        let name = format!("{}_out", neurons[&p].name);
        let n = neurons[&p].size;
        graph.nodes.push((
            name.clone(),
            NirNode::new("Output", vec![("shape", Array::vector(vec![n as f64]))]),
        ));
        graph.edges.push((neurons[&p].name.clone(), name));
    }
    Ok(graph)
}

/// The NIR node of population `h` and what its inputs must add to.
fn neuron_node(
    sim: &Sim,
    m: &ir::Model,
    h: Handle<ir::Population>,
    nd: usize,
    n: usize,
    dt: f64,
) -> Result<(NirNode, Neuron), Error> {
    let p = &m.populations[h];
    let ct = &m.cell_types[p.cell_type];
    let what = |s: &str| {
        unsupported(format!(
            "population `{}` (cell type `{}`): {s}",
            p.name, ct.name
        ))
    };
    if ct.refractory.is_some() {
        return Err(what("a refractory period: NIR's neurons have none"));
    }
    if let Err((_, why)) = neurograph_compiler::check::exact_applies(m, &ct.dynamics) {
        return Err(what(&format!(
            "an equation that is not linear with constant coefficients ({why}): NIR's neurons are"
        )));
    }
    if ct.dynamics.odes.iter().any(|o| o.unless_refractory) {
        return Err(what(
            "`unless refractory`: NIR's neurons have no refractoriness",
        ));
    }
    // The input accumulator: a state without an equation reset to 0 every step.
    let mut accumulator = None;
    for u in &ct.dynamics.updates {
        let zero = matches!(m.exprs[u.value], Expr::Const(c) if c == 0.0);
        if !zero || accumulator.is_some() || ct.dynamics.odes.iter().any(|o| o.var == u.var) {
            return Err(what(&format!("the update `{} <- …`: NIR's neurons have none besides an input reset to 0 every step", m.variables[u.var].name)));
        }
        accumulator = Some(u.var);
    }
    // The spike: `spike when v > θ { v = v_reset }`.
    let mut spike: Option<(Handle<Variable>, Vec<f64>, Vec<f64>)> = None;
    for e in &ct.events {
        let Trigger::When(cond) = &e.trigger else {
            return Err(what(
                "a spike with a probability: NIR's neurons are deterministic",
            ));
        };
        let (Expr::Binary(BinOp::Gt, a, b), "spike") = (&m.exprs[*cond], e.name.as_str()) else {
            return Err(what(&format!(
                "the event `{}`: NIR's neurons spike when `v > v_threshold`",
                e.name
            )));
        };
        let Expr::Var {
            var: v,
            side: Side::Own,
        } = m.exprs[*a]
        else {
            return Err(what("a spike condition that is not `v > threshold`"));
        };
        let threshold = col(sim.eval(*b, &Ctx::all(nd)), n);
        let mut reset = None;
        for s in &e.body {
            if s.var != v || s.op != AssignOp::Set || s.side != Side::Own || reset.is_some() {
                return Err(what("a reset other than `v = v_reset`"));
            }
            reset = Some(col(sim.eval(s.value, &Ctx::all(nd)), n));
        }
        let reset = reset.ok_or_else(|| {
            what("a spike without a reset of v: NIR's neurons reset v to v_reset")
        })?;
        spike = Some((v, threshold, reset));
    }
    let odes: Vec<_> = ct.dynamics.odes.iter().collect();
    // f(var) of the probe where `ones` are 1 and every other variable 0.
    let mut probe_vars: Vec<Handle<Variable>> = odes.iter().map(|o| o.var).collect();
    if let Some(x) = accumulator {
        probe_vars.push(x);
    }
    let rhs = |ode: &ir::Ode, one: Option<Handle<Variable>>| -> Vec<f64> {
        let map: HashMap<Handle<Variable>, Col> = probe_vars
            .iter()
            .map(|&v| (v, Col::S(if Some(v) == one { 1.0 } else { 0.0 })))
            .collect();
        let ctx = Ctx {
            overrides: Some(&map),
            ..Ctx::all(nd)
        };
        col(sim.eval(ode.rhs, &ctx), n)
    };
    let coeff = |ode: &ir::Ode, var: Handle<Variable>| -> Vec<f64> {
        let c = rhs(ode, None);
        rhs(ode, Some(var))
            .iter()
            .zip(&c)
            .map(|(a, b)| a - b)
            .collect()
    };
    let zero = |v: &[f64]| v.iter().all(|&x| x == 0.0);
    let get = |name: &str| named(sim, m, nd, &ct.params, name);
    let spiking = spike.is_some();
    let kind_of = |base: &str| -> String {
        match (base, spiking) {
            ("LIF", false) => "LI".into(),
            ("IF", false) => "I".into(),
            ("CubaLIF", false) => "CubaLI".into(),
            (k, _) => k.into(),
        }
    };
    let mut params: Vec<(&str, Array)> = Vec::new();
    let (membrane, input, bias) = match odes.as_slice() {
        [ode] => {
            let v = ode.var;
            let input = accumulator.unwrap_or(v);
            let c = rhs(ode, None);
            let a = coeff(ode, v);
            if zero(&a) {
                // dv/dt = r x (+ r bias): IF / I.
                let r = match accumulator {
                    Some(x) => coeff(ode, x),
                    None => vec![1.0 / dt; n],
                };
                let r = prefer(get("r"), r);
                let bias: Vec<f64> = c.iter().zip(&r).map(|(c, r)| c / r).collect();
                params.push(("r", Array::vector(r)));
                (v, input, (!zero(&bias)).then_some(bias))
            } else {
                if a.iter().any(|&x| x >= 0.0) {
                    return Err(what("`dv/dt` grows with v: NIR's leak decays"));
                }
                let tau: Vec<f64> = a.iter().map(|x| -1.0 / x).collect();
                let tau = prefer(get("tau"), tau);
                let r = match accumulator {
                    Some(x) => coeff(ode, x).iter().zip(&tau).map(|(k, t)| k * t).collect(),
                    None => tau.iter().map(|t| t / dt).collect(),
                };
                let r = prefer(get("r"), r);
                // c = (v_leak + r bias) / tau.
                let drive: Vec<f64> = c.iter().zip(&tau).map(|(c, t)| c * t).collect();
                let (v_leak, bias) = split_drive(get("v_leak"), get("bias"), &drive, &r);
                params.push(("tau", Array::vector(tau)));
                params.push(("r", Array::vector(r)));
                params.push(("v_leak", Array::vector(v_leak)));
                (v, input, bias)
            }
        }
        [o1, o2] => {
            // The membrane is the one whose equation reads the other (or the spiking one).
            let (vo, io) = match &spike {
                Some((v, ..)) if *v == o1.var => (o1, o2),
                Some((v, ..)) if *v == o2.var => (o2, o1),
                Some(_) => return Err(what("the spiking variable has no equation")),
                None if !zero(&coeff(o1, o2.var)) => (o1, o2),
                None => (o2, o1),
            };
            let (v, cur) = (vo.var, io.var);
            let input = accumulator.unwrap_or(cur);
            if !zero(&coeff(io, v)) {
                return Err(what("the current's equation reads v: NIR's CubaLIF current decays on its own"));
            }
            if let Some(x) = accumulator {
                if !zero(&coeff(vo, x)) {
                    return Err(what("v's equation reads the input directly: NIR's CubaLIF input goes through its current"));
                }
            }
            let (a_ii, a_vv) = (coeff(io, cur), coeff(vo, v));
            if a_ii.iter().chain(&a_vv).any(|&x| x >= 0.0) {
                return Err(what("an equation that does not decay"));
            }
            let tau_syn = prefer(get("tau_syn"), a_ii.iter().map(|x| -1.0 / x).collect());
            let tau_mem = prefer(get("tau_mem"), a_vv.iter().map(|x| -1.0 / x).collect());
            let r = prefer(get("r"), coeff(vo, cur).iter().zip(&tau_mem).map(|(k, t)| k * t).collect());
            let w_in = match accumulator {
                Some(x) => coeff(io, x).iter().zip(&tau_syn).map(|(k, t)| k * t).collect(),
                None => tau_syn.iter().map(|t| t / dt).collect(),
            };
            let w_in = prefer(get("w_in"), w_in);
            let v_leak_derived: Vec<f64> = rhs(vo, None).iter().zip(&tau_mem).map(|(c, t)| c * t).collect();
            let v_leak = prefer(get("v_leak"), v_leak_derived);
            // The current's constant term: w_in bias / tau_syn.
            let bias_derived: Vec<f64> = rhs(io, None).iter().zip(&tau_syn).zip(&w_in).map(|((c, t), w)| c * t / w).collect();
            let bias = prefer(get("bias"), bias_derived);
            params.push(("tau_syn", Array::vector(tau_syn)));
            params.push(("tau_mem", Array::vector(tau_mem)));
            params.push(("r", Array::vector(r)));
            params.push(("v_leak", Array::vector(v_leak)));
            params.push(("w_in", Array::vector(w_in)));
            (v, input, (!zero(&bias)).then_some(bias))
        }
        [] => return Err(what("no equation: NIR's neurons integrate their input")),
        more => {
            return Err(what(&format!(
                "{} state variables with equations ({}): NIR's neurons have one (v) or two (v and a synaptic current)",
                more.len(),
                more.iter().map(|o| m.variables[o.var].name.as_str()).collect::<Vec<_>>().join(", ")
            )))
        }
    };
    let base = match odes.len() {
        2 => "CubaLIF",
        _ if params.iter().any(|(k, _)| *k == "tau") => "LIF",
        _ => "IF",
    };
    if let Some((v, threshold, reset)) = spike {
        if v != membrane {
            return Err(what("the spike tests another variable than the membrane's"));
        }
        params.push((
            "v_threshold",
            Array::vector(prefer(get("v_threshold"), threshold)),
        ));
        params.push(("v_reset", Array::vector(prefer(get("v_reset"), reset))));
    }
    let kind = kind_of(base);
    Ok((
        NirNode::new(&kind, params),
        Neuron {
            name: String::new(),
            size: n,
            input,
            bias,
        },
    ))
}

/// `drive = v_leak + r bias`: the named values when they add up to it, else all of it as
/// `v_leak`.
fn split_drive(
    v_leak: Option<Vec<f64>>,
    bias: Option<Vec<f64>>,
    drive: &[f64],
    r: &[f64],
) -> (Vec<f64>, Option<Vec<f64>>) {
    if let (Some(l), Some(b)) = (&v_leak, &bias) {
        let sum: Vec<f64> = l
            .iter()
            .zip(b)
            .zip(r)
            .map(|((l, b), r)| l + r * b)
            .collect();
        if close(&sum, drive) {
            let any = b.iter().any(|&x| x != 0.0);
            return (l.clone(), any.then(|| b.clone()));
        }
    }
    (prefer(v_leak, drive.to_vec()), None)
}
