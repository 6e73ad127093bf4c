//! The reference interpreter's implementation of the kernel ABI
//! (`neurograph_compiler::abi::KernelCall`): integration, events, synaptic delivery,
//! couplings, resets; plus connectivity construction.

use std::collections::HashMap;

use neurograph_compiler::abi::KernelCall;
use neurograph_compiler::codegen::EventCode;
use neurograph_compiler::ir::*;
use neurograph_compiler::{AssignOp, BinOp};

use crate::eval::{b2f, Col, Ctx};
use crate::expm::{propagators, Matrix};
use crate::rng::Stream;
use crate::sim::{Sim, SimError};
use crate::state::{Connectivity, DelayQueue, Delays, SlotsFrom, Store};

/// Propagators of an exactly integrated node: one pair per distinct coefficient matrix, and
/// which pair each element uses.
pub(crate) struct ExactPlan {
    vars: Vec<Handle<Variable>>,
    props: Vec<(Matrix, Matrix)>,
    /// `None`: every element uses `props[0]`.
    which: Option<Vec<u32>>,
}

impl ExactPlan {
    /// The one-step propagator of a single homogeneous equation: one for all elements, or
    /// one per element of `size`.
    pub(crate) fn scalar_propagators(&self, size: usize) -> Vec<f64> {
        let phi = |k: usize| self.props.get(k).map_or(1.0, |(phi, _)| phi[0][0]);
        match &self.which {
            None => vec![phi(0)],
            Some(w) => (0..size)
                .map(|e| phi(w.get(e).map_or(0, |&k| k as usize)))
                .collect(),
        }
    }
}

/// `sum_j row[j] * x(j)` over the non-zero coefficients only, in order, starting from the
/// first product (zero when there is none). Exact propagators are mostly sparse (a synaptic
/// variable decays on its own); the fused JIT kernel performs exactly these operations.
pub(crate) fn sparse_dot(row: &[f64], x: impl Fn(usize) -> f64) -> f64 {
    let mut acc: Option<f64> = None;
    for (j, &p) in row.iter().enumerate() {
        if p != 0.0 {
            let prod = p * x(j);
            acc = Some(acc.map_or(prod, |a| a + prod));
        }
    }
    acc.unwrap_or(0.0)
}

pub(crate) fn dynamics_of(model: &Model, node: Node) -> &Dynamics {
    match node {
        Node::Population(p) => &model.cell_types[model.populations[p].cell_type].dynamics,
        Node::Projection(p) => &model.projections[p].code.dynamics,
    }
}

impl Sim {
    pub fn run_kernel(&mut self, call: KernelCall) {
        match call {
            KernelCall::AdvanceRegime(r) => self.advance_regime(r),
            KernelCall::Coupling(p) => self.coupling(p),
            KernelCall::Input(i) => self.input(i),
            // Event-driven Poisson sources have nothing to integrate; they spike in `Detect`.
            KernelCall::Integrate(Node::Population(p)) if self.poisson[p.index()].is_some() => {}
            KernelCall::Integrate(n) if self.try_fused(n) => {}
            KernelCall::Integrate(node) => self.integrate(node),
            KernelCall::Detect(p) => {
                if self.poisson[p.index()].is_some() {
                    self.poisson_detect(p);
                } else if self.fused_this_step[p.index()] {
                    self.fused_this_step[p.index()] = false;
                    self.check_time_varying_input(p);
                } else {
                    self.detect(p)
                }
                // The one place after detection where both backends hold the same list.
                self.filter_silenced(p.index());
                self.stamp_lastspike(p);
            }
            KernelCall::DeliverPre(p) => self.deliver_pre(p),
            KernelCall::DeliverPost(p) => self.deliver_post(p),
            KernelCall::OnStep(p) => {
                let node = self.n_pops + p.index();
                // Generated code over every row (synapse order, as the interpreter), else the
                // interpreter over the whole column. Activity-sparse when every statement adds
                // a product with one presynaptic variable (`S += pre.x * post.y`): only the
                // rows where it is not 0.
                let program = std::sync::Arc::clone(&self.program);
                let stmts = &program.model.projections[p].code.on_step;
                let factor = step_factor(&program.model, stmts);
                let (sources, sparse, count) = self.source_rows(p.index(), factor);
                let generated = count > 0
                    && self.lazy[p.index()].is_none()
                    && self.try_event_code(EventCode::OnStep(p), node, &sources, Some(count));
                if !generated && count > 0 {
                    if sparse {
                        let conn = &self.conn[p.index()];
                        let elems: Vec<u32> = sources
                            .iter()
                            .flat_map(|&i| conn.row(i as usize).map(|s| s as u32))
                            .collect();
                        self.execute(stmts, node, Some(&elems));
                    } else {
                        self.execute(stmts, node, None);
                    }
                }
                self.buf_sources = sources;
            }
            KernelCall::Reset(p) => self.reset(p),
        }
    }

    fn advance_regime(&mut self, r: Handle<Regime>) {
        if self.step == 0 {
            return;
        }
        let reg = &self.program.model.regimes[r];
        let u = Stream::new(self.seed, neurograph_compiler::regime_stream(&reg.name))
            .uniform(0, self.step, 0);
        let row = &reg.transition[self.regime_state[r.index()] as usize];
        let mut acc = 0.0;
        let mut next = row.len() - 1;
        for (k, p) in row.iter().enumerate() {
            acc += p;
            if u < acc {
                next = k;
                break;
            }
        }
        self.regime_state[r.index()] = next as u32;
    }

    /// Write `values` (one per evaluated element) into `var` of `node`.
    fn write(
        &mut self,
        var: Handle<Variable>,
        node: usize,
        elems: Option<&[u32]>,
        values: &Col,
        op: AssignOp,
    ) {
        let size = self.nodes[node].size;
        let rs = self.program.model.variables[var]
            .regime
            .map_or(0, |r| self.regime_state[r.index()] as usize);
        let f32_state = self.f32_state;
        let Some(store) = self.nodes[node].vars.get_mut(&var) else {
            return;
        };
        if let (None, Col::S(v), AssignOp::Set, Store::Uniform(_)) = (elems, values, op, &*store) {
            *store = Store::Uniform(*v);
            return;
        }
        // Whole-column assignment: copy (rounded to f32 when the model asks).
        if let (None, Col::V(v), AssignOp::Set, Store::Elements(dst)) =
            (elems, values, op, &mut *store)
        {
            let dst = Store::column_mut(dst);
            if f32_state {
                for (d, x) in dst.iter_mut().zip(v) {
                    *d = *x as f32 as f64;
                }
            } else {
                dst.copy_from_slice(v);
            }
            return;
        }
        if let (None, Col::V(v), AssignOp::Set, Store::Narrow(dst), true) =
            (elems, values, op, &mut *store, f32_state)
        {
            for (d, x) in std::sync::Arc::make_mut(dst).iter_mut().zip(v) {
                *d = *x as f32;
            }
            return;
        }
        let n = elems.map_or(size, <[u32]>::len);
        if let Store::Uniform(v) = store {
            *store = Store::column(vec![*v; size]);
        }
        store.widen();
        let (data, base) = match store {
            Store::Elements(d) => (Store::column_mut(d), 0),
            Store::Regime { n, data } => (data, rs * *n),
            Store::Uniform(_) | Store::Narrow(_) => unreachable!("converted above"),
        };
        for k in 0..n {
            let e = base + elems.map_or(k, |s| s[k] as usize);
            let v = values.at(k);
            let new = match op {
                AssignOp::Set => v,
                AssignOp::Add => data[e] + v,
                AssignOp::Sub => data[e] - v,
                AssignOp::Mul => data[e] * v,
                AssignOp::Div => data[e] / v,
            };
            data[e] = if f32_state { new as f32 as f64 } else { new };
        }
    }

    /// Run statements for the given elements of `node`, one statement at a time over all of
    /// them, in ascending element order.
    pub fn execute(&mut self, stmts: &[Statement], node: usize, elems: Option<&[u32]>) {
        for st in stmts {
            let ctx = Ctx {
                elems,
                ..Ctx::all(node)
            };
            let values = self.eval(st.value, &ctx);
            match st.side {
                Side::Own => self.write(st.var, node, elems, &values, st.op),
                Side::Pre | Side::Post => self.write_through(st, node, elems, &values),
            }
        }
    }

    /// Apply one statement's values to `pre.x` / `post.x` of the given synapses, in synapse
    /// order, through the projection's endpoint map.
    fn write_through(&mut self, st: &Statement, node: usize, elems: Option<&[u32]>, values: &Col) {
        let p = self.proj_of(node);
        let n = elems.map_or(self.nodes[node].size, <[u32]>::len);
        let map = if st.side == Side::Pre {
            self.pre_maps[p].clone()
        } else {
            self.post_maps[p].clone()
        };
        let rs = self.program.model.variables[st.var]
            .regime
            .map_or(0, |r| self.regime_state[r.index()] as usize);
        // Take the target stores out for the loop, so each write is a plain slot update.
        let mut targets: Vec<(usize, usize, Store)> = Vec::new();
        for &(target, ..) in &map.parts {
            if targets.iter().all(|t| t.0 != target) {
                if let Some(store) = self.nodes[target].vars.get_mut(&st.var) {
                    let taken = std::mem::replace(store, Store::Uniform(0.0));
                    targets.push((target, self.nodes[target].size, taken));
                }
            }
        }
        let idx = if st.side == Side::Pre {
            self.conn[p].pre()
        } else {
            self.conn[p].post()
        };
        let f32_state = self.f32_state;
        for k in 0..n {
            let s = elems.map_or(k, |x| x[k] as usize);
            let (target, local) = map.locate(idx[s] as usize);
            let Some((_, size, store)) = targets.iter_mut().find(|t| t.0 == target) else {
                continue;
            };
            let slot = store.slot(local, rs, *size);
            let v = values.at(k);
            let new = match st.op {
                AssignOp::Set => v,
                AssignOp::Add => *slot + v,
                AssignOp::Sub => *slot - v,
                AssignOp::Mul => *slot * v,
                AssignOp::Div => *slot / v,
            };
            *slot = if f32_state { new as f32 as f64 } else { new };
        }
        for (target, _, store) in targets {
            self.nodes[target].vars.insert(st.var, store);
        }
    }

    fn coupling(&mut self, p: Handle<Projection>) {
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        let proj = &model.projections[p];
        let node = self.n_pops + p.index();
        for (index, c) in proj.couplings.iter().enumerate() {
            // Sums per post element, in synapse order: by generated code over every row, or
            // from the interpreter's values.
            let n_post = self.conn[p.index()].n_post;
            let mut acc = std::mem::take(&mut self.coupling_acc);
            acc.clear();
            acc.resize(n_post, 0.0);
            self.coupling_acc = acc;
            // Activity-sparse: when the value is a product with a presynaptic variable
            // (`w * pre.x`), only the rows of sources where it is not 0 are summed.
            let factor = pre_factor(&model.exprs, c.value);
            let (sources, _, count) = self.source_rows(p.index(), factor);
            let code = EventCode::Coupling {
                projection: p,
                index,
            };
            let generated = count > 0 && self.try_event_code(code, node, &sources, Some(count));
            let mut acc = std::mem::take(&mut self.coupling_acc);
            if !generated && count > 0 {
                let values = self.eval(c.value, &Ctx::all(node));
                let conn = &self.conn[p.index()];
                let post = conn.post();
                for &i in &sources {
                    for s in conn.row(i as usize) {
                        acc[post[s] as usize] += values.at(s);
                    }
                }
            }
            self.buf_sources = sources;
            let conn = &self.conn[p.index()];
            let map = &self.post_maps[p.index()];
            if c.reduce == Reduce::Mean {
                for (j, a) in acc.iter_mut().enumerate() {
                    let n = conn.col_ptr[j + 1] - conn.col_ptr[j];
                    *a = if n == 0 { 0.0 } else { *a / n as f64 };
                }
            }
            for &(target, start, offset, count) in &map.parts.clone() {
                let elems: Vec<u32> = (start..start + count).map(|e| e as u32).collect();
                let vals = Col::V(acc[offset..offset + count].to_vec());
                self.write(c.target, target, Some(&elems), &vals, AssignOp::Set);
            }
            self.coupling_acc = acc;
        }
    }

    fn input(&mut self, i: Handle<Input>) {
        match self.program.model.inputs[i].kind {
            InputKind::Current {
                population,
                var,
                value,
            } => {
                let node = population.index();
                let v = self.eval(value, &Ctx::all(node));
                self.write(var, node, None, &v, AssignOp::Set);
            }
            InputKind::PoissonDrive {
                population,
                var,
                n,
                rate,
                weight,
            } => {
                let node = population.index();
                let size = self.nodes[node].size;
                let ctx = Ctx::all(node);
                let r = self.eval(rate, &ctx);
                let p = match r {
                    Col::S(x) => Col::S(x * self.dt),
                    Col::V(v) => Col::V(v.into_iter().map(|x| x * self.dt).collect()),
                };
                self.check_input_rate(i, &p, size);
                let w = self.eval(weight, &ctx);
                let name = &self.program.model.inputs[i].name;
                let stream = Stream::new(
                    self.seed,
                    neurograph_compiler::event_stream(name, "poisson_input"),
                );
                let added: Vec<f64> = (0..size)
                    .map(|e| {
                        let k = stream.binomial(
                            self.rng_element(&ctx, e),
                            self.step,
                            u64::from(n),
                            p.at(e).clamp(0.0, 1.0),
                        );
                        k * w.at(e)
                    })
                    .collect();
                self.write(var, node, None, &Col::V(added), AssignOp::Add);
            }
            _ => {}
        }
    }

    fn derivatives(
        &self,
        node: usize,
        d: &Dynamics,
        overrides: &HashMap<Handle<Variable>, Col>,
        time_offset: f64,
    ) -> Vec<Col> {
        let ctx = Ctx {
            overrides: Some(overrides),
            time_offset,
            ..Ctx::all(node)
        };
        d.odes.iter().map(|o| self.eval(o.rhs, &ctx)).collect()
    }

    fn column(&self, node: usize, var: Handle<Variable>) -> Col {
        match self.nodes[node].vars.get(&var) {
            Some(Store::Uniform(v)) => Col::S(*v),
            Some(s) => Col::V(s.elements(self.nodes[node].size)),
            None => Col::S(0.0),
        }
    }

    fn integrate(&mut self, n: Node) {
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        let node = self.node_index(n);
        let size = self.nodes[node].size;
        let d = dynamics_of(model, n);
        if let Node::Population(p) = n {
            self.update_refractory(p);
            if let Some(train) = self.spike_trains.get(&p.index()) {
                let _ = train; // spike-file populations have no dynamics; Detect reads the train
            }
        }
        if !d.odes.is_empty() && size > 0 {
            let method = match n {
                Node::Population(p) => program
                    .info
                    .cell_methods
                    .get(&model.populations[p].cell_type)
                    .copied(),
                Node::Projection(p) => self.program.info.projection_methods.get(&p).copied(),
            }
            .unwrap_or(Method::Euler);
            let old: Vec<Col> = d.odes.iter().map(|o| self.column(node, o.var)).collect();
            let new = match method {
                Method::Euler => self.euler(node, d, &old),
                Method::Rk4 => self.rk4(node, d, &old),
                Method::ExponentialEuler => self.exponential_euler(node, d, &old),
                Method::Exact => self.exact(node, d, &old),
            };
            // Elements that integrate the `unless refractory` variables, when some do not.
            let frozen: Option<Vec<u32>> = match n {
                Node::Population(p) if self.refractory_now[p.index()].contains(&true) => {
                    let r = &self.refractory_now[p.index()];
                    Some((0..size as u32).filter(|&e| !r[e as usize]).collect())
                }
                _ => None,
            };
            for (o, v) in d.odes.iter().zip(new) {
                match (&frozen, o.unless_refractory) {
                    (Some(active), true) if active.len() < size => {
                        let vals = Col::V(active.iter().map(|&e| v.at(e as usize)).collect());
                        self.write(o.var, node, Some(active), &vals, AssignOp::Set);
                    }
                    _ => self.write(o.var, node, None, &v, AssignOp::Set),
                }
            }
        }
        for u in &d.updates {
            let v = self.eval(u.value, &Ctx::all(node));
            self.write(u.var, node, None, &v, AssignOp::Set);
        }
    }

    /// Which cells of a population are refractory during this step's update and detection.
    fn update_refractory(&mut self, p: Handle<Population>) {
        let ct = &self.program.model.cell_types[self.program.model.populations[p].cell_type];
        match &ct.refractory {
            None => {}
            Some(Refractory::Duration(_)) => {
                let step = self.step;
                let until = &self.ref_until[p.index()];
                for (r, &u) in self.refractory_now[p.index()].iter_mut().zip(until) {
                    *r = step < u;
                }
            }
            Some(Refractory::Condition(c)) => {
                let v = self.eval(*c, &Ctx::all(p.index()));
                for (e, r) in self.refractory_now[p.index()].iter_mut().enumerate() {
                    *r = v.at(e) != 0.0;
                }
            }
        }
    }

    fn euler(&self, node: usize, d: &Dynamics, old: &[Col]) -> Vec<Col> {
        let k = self.derivatives(node, d, &HashMap::new(), 0.0);
        let dt = self.dt;
        old.iter()
            .zip(k)
            .map(|(x, k)| x.clone().zip(k, |x, k| x + dt * k))
            .collect()
    }

    fn rk4(&self, node: usize, d: &Dynamics, old: &[Col]) -> Vec<Col> {
        let dt = self.dt;
        let stage = |k: &[Col], h: f64| -> HashMap<Handle<Variable>, Col> {
            d.odes
                .iter()
                .zip(old)
                .zip(k)
                .map(|((o, x), k)| (o.var, x.clone().zip(k.clone(), |x, k| x + h * k)))
                .collect()
        };
        let k1 = self.derivatives(node, d, &HashMap::new(), 0.0);
        let k2 = self.derivatives(node, d, &stage(&k1, dt / 2.0), dt / 2.0);
        let k3 = self.derivatives(node, d, &stage(&k2, dt / 2.0), dt / 2.0);
        let k4 = self.derivatives(node, d, &stage(&k3, dt), dt);
        (0..old.len())
            .map(|i| {
                let sum = k1[i]
                    .clone()
                    .zip(k2[i].clone(), |a, b| a + 2.0 * b)
                    .zip(k3[i].clone(), |a, b| a + 2.0 * b)
                    .zip(k4[i].clone(), |a, b| a + b);
                old[i].clone().zip(sum, |x, s| x + dt / 6.0 * s)
            })
            .collect()
    }

    /// For each equation `dx/dt = A x + B` (A, B independent of x): A and B from the right side
    /// at x = 0 and x = 1, then `x <- -B/A + (x + B/A) exp(A dt)` (`x + B dt` when A = 0).
    fn exponential_euler(&self, node: usize, d: &Dynamics, old: &[Col]) -> Vec<Col> {
        let dt = self.dt;
        let ctx = Ctx::all(node);
        let n = self.count(&ctx);
        d.odes
            .iter()
            .zip(old)
            .map(|(o, x)| {
                let mut ov = HashMap::new();
                ov.insert(o.var, Col::S(0.0));
                let b = self.eval(
                    o.rhs,
                    &Ctx {
                        overrides: Some(&ov),
                        ..ctx
                    },
                );
                ov.insert(o.var, Col::S(1.0));
                let f1 = self.eval(
                    o.rhs,
                    &Ctx {
                        overrides: Some(&ov),
                        ..ctx
                    },
                );
                let a = f1.zip(b.clone(), |f1, b| f1 - b);
                Col::V(
                    (0..n)
                        .map(|k| {
                            let (xv, av, bv) = (x.at(k), a.at(k), b.at(k));
                            if av == 0.0 {
                                xv + bv * dt
                            } else {
                                let r = bv / av;
                                -r + (xv + r) * neurograph_compiler::math::exp(av * dt)
                            }
                        })
                        .collect(),
                )
            })
            .collect()
    }

    /// Exact integration of a linear system: `x <- Phi x + Gamma c`, with Phi, Gamma from the
    /// matrix exponential (computed once per distinct coefficient matrix) and `c` the right
    /// sides at x = 0, evaluated every step.
    fn exact(&mut self, node: usize, d: &Dynamics, old: &[Col]) -> Vec<Col> {
        if !self.exact.contains_key(&node) {
            let plan = self.exact_plan(node, d);
            self.exact.insert(node, plan);
        }
        let plan = &self.exact[&node];
        let zero: HashMap<_, _> = plan.vars.iter().map(|v| (*v, Col::S(0.0))).collect();
        let c = self.derivatives(node, d, &zero, 0.0);
        let m = old.len();
        let size = self.nodes[node].size;
        // x_i <- sum_j phi_ij x_j + sum_j gamma_ij c_j: the state part summed over j in order,
        // then the input part (also summed in order), for one element's propagators.
        let input = |i: usize, gamma: &Matrix, e: usize| -> f64 {
            let mut v = 0.0;
            for (j, cj) in c.iter().enumerate() {
                v += gamma[i][j] * cj.at(e);
            }
            v
        };
        let state =
            |i: usize, phi: &Matrix, e: usize| -> f64 { sparse_dot(&phi[i], |j| old[j].at(e)) };
        if plan.which.is_none() && old.iter().chain(&c).all(|x| matches!(x, Col::S(_))) {
            let (phi, gamma) = &plan.props[0];
            return (0..m)
                .map(|i| Col::S(state(i, phi, 0) + input(i, gamma, 0)))
                .collect();
        }
        if plan.which.is_none() && c.iter().all(|x| matches!(x, Col::S(_))) {
            // The common case (constant inputs, one propagator): a tight loop over plain slices.
            let (phi, gamma) = &plan.props[0];
            let xs: Vec<Vec<f64>> = old.iter().map(|x| x.clone().into_vec(size)).collect();
            return (0..m)
                .map(|i| {
                    let k = input(i, gamma, 0);
                    // `sparse_dot` with the non-zero entries found once for the row.
                    let nz: Vec<(&[f64], f64)> = phi[i]
                        .iter()
                        .zip(&xs)
                        .filter(|(p, _)| **p != 0.0)
                        .map(|(p, x)| (&x[..], *p))
                        .collect();
                    let mut out = vec![0.0; size];
                    if let Some(((x0, p0), rest)) = nz.split_first() {
                        for (e, o) in out.iter_mut().enumerate() {
                            let mut v = p0 * x0[e];
                            for (x, p) in rest {
                                v += p * x[e];
                            }
                            *o = v;
                        }
                    }
                    if k != 0.0 {
                        for o in &mut out {
                            *o += k;
                        }
                    }
                    Col::V(out)
                })
                .collect();
        }
        (0..m)
            .map(|i| {
                Col::V(
                    (0..size)
                        .map(|e| {
                            let (phi, gamma) =
                                &plan.props[plan.which.as_ref().map_or(0, |w| w[e] as usize)];
                            state(i, phi, e) + input(i, gamma, e)
                        })
                        .collect(),
                )
            })
            .collect()
    }

    /// The propagator (row-major) and constant input parts `sum_j gamma_ij c_j` of an exactly
    /// integrated node, when it has one propagator and inputs that are the same for every
    /// element (what a fused kernel needs); computed as in `exact`.
    pub(crate) fn exact_constants(
        &self,
        node: usize,
        d: &Dynamics,
    ) -> Option<(Vec<f64>, Vec<f64>)> {
        let plan = self.exact.get(&node)?;
        if plan.which.is_some() {
            return None;
        }
        let zero: HashMap<_, _> = plan.vars.iter().map(|v| (*v, Col::S(0.0))).collect();
        let c = self.derivatives(node, d, &zero, 0.0);
        if !c.iter().all(|x| matches!(x, Col::S(_))) {
            return None;
        }
        let (phi, gamma) = &plan.props[0];
        let m = c.len();
        let k = (0..m)
            .map(|i| {
                let mut v = 0.0;
                for (j, cj) in c.iter().enumerate() {
                    v += gamma[i][j] * cj.at(0);
                }
                v
            })
            .collect();
        Some((phi.iter().flatten().copied().collect(), k))
    }

    pub(crate) fn exact_plan(&self, node: usize, d: &Dynamics) -> ExactPlan {
        let vars: Vec<Handle<Variable>> = d.odes.iter().map(|o| o.var).collect();
        let m = vars.len();
        let size = self.nodes[node].size;
        let zero: HashMap<_, _> = vars.iter().map(|v| (*v, Col::S(0.0))).collect();
        let f0 = self.derivatives(node, d, &zero, 0.0);
        // Column j of the coefficient matrix: f(e_j) - f(0).
        let mut cols: Vec<Vec<Col>> = Vec::new();
        for &var in &vars {
            let mut unit = zero.clone();
            unit.insert(var, Col::S(1.0));
            let fj = self.derivatives(node, d, &unit, 0.0);
            cols.push(
                fj.into_iter()
                    .zip(&f0)
                    .map(|(a, b)| a.zip(b.clone(), |a, b| a - b))
                    .collect(),
            );
        }
        let matrix_at = |e: usize| -> Matrix {
            (0..m)
                .map(|i| (0..m).map(|j| cols[j][i].at(e)).collect())
                .collect()
        };
        let uniform = cols.iter().flatten().all(|c| matches!(c, Col::S(_)));
        if uniform || size == 0 {
            return ExactPlan {
                vars,
                props: vec![propagators(&matrix_at(0), self.dt)],
                which: None,
            };
        }
        let mut index: HashMap<Vec<u64>, u32> = HashMap::new();
        let mut props = Vec::new();
        let mut which = Vec::with_capacity(size);
        for e in 0..size {
            let mat = matrix_at(e);
            let key: Vec<u64> = mat.iter().flatten().map(|x| x.to_bits()).collect();
            let k = *index.entry(key).or_insert_with(|| {
                props.push(propagators(&mat, self.dt));
                props.len() as u32 - 1
            });
            which.push(k);
        }
        ExactPlan {
            vars,
            props,
            which: Some(which),
        }
    }

    /// A Poisson input's rate × dt this step must lie in [0, 1] (a source spikes at most once
    /// per step): otherwise the run stops with an error naming the input and the time.
    fn check_input_rate(&self, input: Handle<Input>, p: &Col, size: usize) {
        let bad = (0..size)
            .map(|e| p.at(e))
            .find(|x| !(0.0..=1.0).contains(x));
        let first = self.data_fault.borrow().is_none();
        if let (Some(x), true) = (bad, first) {
            let i = &self.program.model.inputs[input];
            *self.data_fault.borrow_mut() = Some(SimError::at(
                i.span,
                format!(
                    "input `{}` at t = {} s: rate × dt is {x}, outside [0, 1] (a Poisson source spikes at most once per step and a rate cannot be negative); lower the rate or dt",
                    i.name,
                    self.step as f64 * self.dt
                ),
            ));
        }
    }

    /// The fused kernel drew this step's spikes of `p`: when `p` is a Poisson input with a
    /// time-varying rate, check the rate as `detect` does.
    fn check_time_varying_input(&self, p: Handle<Population>) {
        if !self.time_varying_rate[p.index()] {
            return;
        }
        let model = &self.program.model;
        let Some(input) = model.populations[p].input else {
            return;
        };
        for ev in &model.cell_types[model.populations[p].cell_type].events {
            if let Trigger::Probability(pr) = ev.trigger {
                let v = self.eval(pr, &Ctx::all(p.index()));
                self.check_input_rate(input, &v, self.nodes[p.index()].size);
            }
        }
    }

    /// `lastspike` of the cells that spiked this step becomes the step's time (the state
    /// exists when synapse code reads `pre.lastspike` or `post.lastspike`).
    fn stamp_lastspike(&mut self, p: Handle<Population>) {
        let model = &self.program.model;
        let Some(var) = model.cell_types[model.populations[p].cell_type].lastspike else {
            return;
        };
        let node = p.index();
        let fired: Vec<u32> = match self.spike_event[node].and_then(|k| self.spikes[node].get(k)) {
            Some(list) if !list.is_empty() => list.clone(),
            _ => return,
        };
        let t = Col::S(self.step as f64 * self.dt);
        self.write(var, node, Some(&fired), &t, AssignOp::Set);
    }

    fn detect(&mut self, p: Handle<Population>) {
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        let node = p.index();
        let ct = &model.cell_types[model.populations[p].cell_type];
        let size = self.nodes[node].size;
        for (k, ev) in ct.events.iter().enumerate() {
            let fired: Vec<u32> = match &ev.trigger {
                Trigger::When(c) => {
                    let v = self.eval(*c, &Ctx::all(node));
                    (0..size as u32)
                        .filter(|&e| v.at(e as usize) != 0.0)
                        .collect()
                }
                Trigger::Probability(pr) => {
                    let v = self.eval(*pr, &Ctx::all(node));
                    if let (Some(input), true) =
                        (model.populations[p].input, self.time_varying_rate[node])
                    {
                        self.check_input_rate(input, &v, size);
                    }
                    // The draw has its own stream, apart from any draws inside the probability.
                    let stream = Stream::new(
                        self.seed,
                        neurograph_compiler::event_stream(&ct.name, &ev.name),
                    );
                    let ctx = Ctx::all(node);
                    (0..size as u32)
                        .filter(|&e| {
                            stream.uniform(self.rng_element(&ctx, e as usize), self.step, 0)
                                < v.at(e as usize)
                        })
                        .collect()
                }
            };
            let refractory = &self.refractory_now[node];
            let fired: Vec<u32> = if ev.name == "spike" && ct.refractory.is_some() {
                fired
                    .into_iter()
                    .filter(|&e| !refractory[e as usize])
                    .collect()
            } else {
                fired
            };
            if ev.name == "spike" {
                self.spike_counts[node] += fired.len() as u64;
            }
            self.spikes[node][k] = fired;
        }
        if let Some(train) = self.spike_trains.get(&node) {
            let step = self.step;
            let start = train.partition_point(|&(s, _)| s < step);
            let list: Vec<u32> = train[start..]
                .iter()
                .take_while(|&&(s, _)| s == step)
                .map(|&(_, i)| i)
                .collect();
            self.spike_counts[node] += list.len() as u64;
            if let Some(first) = self.spikes[node].first_mut() {
                *first = list;
            } else {
                self.spikes[node].push(list);
            }
        }
    }

    /// Spikes of this step on one end of a projection, as endpoint indices in ascending order
    /// (into `out`, cleared first).
    fn endpoint_spikes(&self, p: usize, pre: bool, out: &mut Vec<u32>) {
        let map = if pre {
            &self.pre_maps[p]
        } else {
            &self.post_maps[p]
        };
        out.clear();
        for &(node, start, offset, count) in &map.parts {
            if node >= self.n_pops {
                continue;
            }
            if let Some(list) = self.spike_event[node].and_then(|k| self.spikes[node].get(k)) {
                for &e in list {
                    let e = e as usize;
                    if e >= start && e < start + count {
                        out.push((offset + e - start) as u32);
                    }
                }
            }
        }
    }

    fn deliver_pre(&mut self, p: Handle<Projection>) {
        let pi = p.index();
        let node = self.n_pops + pi;
        // The source and due lists keep their allocations from step to step.
        let mut sources = std::mem::take(&mut self.buf_sources);
        self.endpoint_spikes(pi, true, &mut sources);
        let mut dues = std::mem::take(&mut self.buf_dues);
        let parts = if self.queues[pi].is_some() {
            self.delivery_parts(pi)
        } else {
            1
        };
        dues.resize_with(parts, Vec::new);
        for d in dues.iter_mut() {
            d.clear();
        }
        let conn = &self.conn[pi];
        if conn.delay_steps.is_empty() {
            let due = &mut dues[0];
            // No delays: every synapse of a spiking source is due now, and generated code runs
            // over the sources' rows directly.
            let count: usize = sources.iter().map(|&i| conn.row(i as usize).len()).sum();
            if count > 0 && self.lazy[pi].is_some() {
                // Event-driven variables of the due synapses up to this step's integration.
                let rows: Vec<u32> = sources
                    .iter()
                    .flat_map(|&i| conn.row(i as usize).map(|s| s as u32))
                    .collect();
                self.lazy_advance(pi, &rows, self.step + 1);
            }
            if count > 0 && self.try_event_code(EventCode::OnPre(p), node, &sources, Some(count)) {
                self.events_delivered += count as u64;
                self.buf_sources = sources;
                self.buf_dues = dues;
                return;
            }
            let conn = &self.conn[pi];
            for &i in &sources {
                due.extend(conn.row(i as usize).map(|s| s as u32));
            }
        } else if let Some(q) = &mut self.queues[pi] {
            // Per part (post elements `bounds[t]..bounds[t + 1]`, one per thread when the
            // code may run in parallel): the events sent earlier and due now, then this step's
            // zero-delay events; the others go to their slots. Each part takes the piece of
            // every spiking row that falls in its bounds (rows are in post order).
            if let Some(mut slots) = q.whole_from(self.step) {
                take_and_enqueue(conn, &sources, &mut slots, &mut dues[0]);
            } else {
                let work: Vec<std::sync::Mutex<_>> = q
                    .parts_from(self.step)
                    .into_iter()
                    .zip(dues.iter_mut())
                    .map(std::sync::Mutex::new)
                    .collect();
                let task = |t: usize| {
                    let mut guard = work[t].lock().unwrap_or_else(|e| e.into_inner());
                    let (slots, due) = &mut *guard;
                    take_and_enqueue(conn, &sources, slots, due);
                };
                let sent: usize = sources.iter().map(|&i| conn.row(i as usize).len()).sum();
                match &mut self.pool {
                    Some(pool) if self.share_always.is_some() || sent >= MIN_SPLIT => {
                        pool.run(parts, &|t| task(t));
                    }
                    _ => (0..parts).for_each(task),
                }
            }
        }
        self.buf_sources = sources;
        let total: usize = dues.iter().map(Vec::len).sum();
        if total > 0 {
            // In the order `ir.rs` promises: delayed events by the step that sent them, each
            // step's in ascending synapse (= source, CSR) order, then this step's zero-delay
            // events; no sort (as Brian2's spike queue). Split into parts, each post element
            // still receives its events in that order.
            self.events_delivered += total as u64;
            if self.lazy[pi].is_some() {
                // (Projections with event-driven variables are delivered in one part.)
                self.lazy_advance(pi, &dues[0], self.step + 1);
            }
            self.split_deliveries += u64::from(parts > 1);
            let generated = if parts == 1 {
                self.try_event_code(EventCode::OnPre(p), node, &dues[0], None)
            } else {
                let parallel = self.share_always.is_some() || total >= MIN_SPLIT;
                self.try_event_code_parts(EventCode::OnPre(p), node, &dues, parallel)
            };
            if !generated {
                let program = std::sync::Arc::clone(&self.program);
                let stmts = &program.model.projections[p].code.on_pre;
                if parts == 1 {
                    self.execute(stmts, node, Some(&dues[0]));
                } else {
                    let all: Vec<u32> = dues.concat();
                    self.execute(stmts, node, Some(&all));
                }
            }
        }
        self.buf_dues = dues;
    }

    /// The parts projection `pi`'s delay ring is delivered in: one per thread, split by post
    /// element and balanced by incoming synapses, when its `on pre` code may run on several
    /// threads at once (it writes only its synapses' own variables and its targets'; no
    /// event-driven variables; no post element twice in the post endpoint); else one. The
    /// ring is split again only when the threads change. Traces do not depend on it: each
    /// post element receives its events in the same order either way.
    fn delivery_parts(&mut self, pi: usize) -> usize {
        let threads = self.pool.as_ref().map_or(1, crate::pool::Pool::threads);
        let key = (threads, self.share_always.is_some());
        if self.split_keys[pi] != Some(key) {
            let n_syn = self.conn[pi].n_synapses();
            let wanted = if threads > 1
                && (self.share_always.is_some() || n_syn >= MIN_SPLIT)
                && self.split_delivery_ok(pi)
            {
                threads
            } else {
                1
            };
            let col_ptr = &self.conn[pi].col_ptr;
            let mut bounds = vec![0u32];
            for t in 1..wanted {
                let target = (n_syn * t / wanted) as u32;
                let j = col_ptr.partition_point(|&c| c < target) as u32;
                bounds.push(j.max(*bounds.last().unwrap_or(&0)));
            }
            bounds.push(u32::MAX);
            if let Some(q) = &mut self.queues[pi] {
                q.repartition(&bounds, self.conn[pi].post());
            }
            self.split_keys[pi] = Some(key);
        }
        self.queues[pi].as_ref().map_or(1, DelayQueue::parts)
    }

    /// The sources of projection `pi` whose rows a graded step sums (the buffer `buf_sources`,
    /// to give back): where `factor` (the presynaptic variable every value is a product with)
    /// is not 0 when there is one and it is a column (`sparse`), else all; and their synapses.
    fn source_rows(
        &mut self,
        pi: usize,
        factor: Option<Handle<Variable>>,
    ) -> (Vec<u32>, bool, usize) {
        let mut sources = std::mem::take(&mut self.buf_sources);
        let sparse = factor.is_some_and(|v| self.active_sources(pi, v, &mut sources));
        let conn = &self.conn[pi];
        if !sparse {
            sources.clear();
            sources.extend(0..conn.n_pre as u32);
            return (sources, false, conn.n_synapses());
        }
        let count = sources.iter().map(|&i| conn.row(i as usize).len()).sum();
        (sources, true, count)
    }

    /// The presynaptic endpoint indices of projection `pi` where `var` is not 0, ascending,
    /// into `out`; false (and `out` unspecified) when `var` is not a column of every part.
    fn active_sources(&self, pi: usize, var: Handle<Variable>, out: &mut Vec<u32>) -> bool {
        out.clear();
        let rs = self.program.model.variables[var]
            .regime
            .map_or(0, |r| self.regime_state[r.index()] as usize);
        for &(node, start, offset, count) in &self.pre_maps[pi].parts {
            let Some(store) = self.nodes[node].vars.get(&var) else {
                return false;
            };
            for e in 0..count {
                if store.get(start + e, rs) != 0.0 {
                    out.push((offset + e) as u32);
                }
            }
        }
        true
    }

    fn split_delivery_ok(&self, pi: usize) -> bool {
        let model = &self.program.model;
        let p = &model.projections[Handle::<Projection>::new(pi)];
        self.split_by_post_ok(pi, &p.code.on_pre)
    }

    /// Whether `stmts` of projection `pi` may run on several threads, each over the synapses
    /// onto its own post elements, with the bits of one call: they write only synapse and
    /// post-side variables (no presynaptic or model-level one), no variable they write is
    /// read on the presynaptic side (a recurrent projection's `pre.v` would be read by one
    /// thread while another writes the same cell's `post.v`), the post endpoint's parts are
    /// distinct elements, rows are in post order, and nothing is advanced lazily.
    pub(crate) fn split_by_post_ok(&self, pi: usize, stmts: &[Statement]) -> bool {
        let model = &self.program.model;
        let writes_ok = stmts.iter().all(|st| match st.side {
            Side::Post => true,
            Side::Own => model.variables[st.var].scope != Scope::Global,
            Side::Pre => false,
        });
        let mut reads = Vec::new();
        for st in stmts {
            neurograph_compiler::codegen::inputs_of(model, st.value, &mut reads);
        }
        let read_before_written = reads
            .iter()
            .any(|&(v, side)| side == Side::Pre && stmts.iter().any(|st| st.var == v));
        let mut posts: Vec<(usize, usize, usize)> = self.post_maps[pi]
            .parts
            .iter()
            .map(|&(node, start, _, count)| (node, start, start + count))
            .collect();
        posts.sort_unstable();
        let disjoint = posts
            .windows(2)
            .all(|w| w[0].0 != w[1].0 || w[0].2 <= w[1].1);
        writes_ok
            && !read_before_written
            && disjoint
            && self.conn[pi].rows_in_post_order()
            && self.lazy[pi].is_none()
    }

    fn deliver_post(&mut self, p: Handle<Projection>) {
        let pi = p.index();
        let node = self.n_pops + pi;
        let mut targets = Vec::new();
        self.endpoint_spikes(pi, false, &mut targets);
        let conn = &self.conn[pi];
        let mut due = Vec::new();
        for &j in &targets {
            let j = j as usize;
            due.extend_from_slice(
                &conn.col_syn[conn.col_ptr[j] as usize..conn.col_ptr[j + 1] as usize],
            );
        }
        if due.is_empty() {
            return;
        }
        self.events_delivered += due.len() as u64;
        if self.lazy[pi].is_some() {
            self.lazy_advance(pi, &due, self.step + 1);
        }
        if !self.try_event_code(EventCode::OnPost(p), node, &due, None) {
            let program = std::sync::Arc::clone(&self.program);
            let stmts = &program.model.projections[p].code.on_post;
            self.execute(stmts, node, Some(&due));
        }
    }

    fn reset(&mut self, p: Handle<Population>) {
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        let node = p.index();
        let ct = &model.cell_types[model.populations[p].cell_type];
        for (k, ev) in ct.events.iter().enumerate() {
            let fired = std::mem::take(&mut self.spikes[node][k]);
            if !fired.is_empty() {
                let code = EventCode::Cell {
                    cell: model.populations[p].cell_type,
                    event: k,
                };
                if !self.try_event_code(code, node, &fired, None) {
                    self.execute(&ev.body, node, Some(&fired));
                }
                if ev.name == "spike" {
                    if let Some(Refractory::Duration(d)) = &ct.refractory {
                        let dur = self.eval(
                            *d,
                            &Ctx {
                                elems: Some(&fired),
                                ..Ctx::all(node)
                            },
                        );
                        for (k2, &e) in fired.iter().enumerate() {
                            let steps = (dur.at(k2) / self.dt).round().max(0.0) as u64;
                            // Below 2^63, so that generated code may compare signed.
                            self.ref_until[node][e as usize] =
                                self.step.saturating_add(steps).min(i64::MAX as u64);
                        }
                    }
                }
            }
            self.spikes[node][k] = fired;
        }
    }

    /// The synapses of a projection from its connect rule, rows in post order.
    pub(crate) fn connect(
        &mut self,
        h: Handle<Projection>,
        n_pre: usize,
        n_post: usize,
    ) -> Result<Connectivity, SimError> {
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        let p = &model.projections[h];
        let pi = h.index();
        let node = self.n_pops + pi;
        let pre_map = self.pre_maps[pi].clone();
        let post_map = self.post_maps[pi].clone();
        let same = |i: usize, j: usize| pre_map.locate(i) == post_map.locate(j);
        let keep = |i: usize, j: usize| p.connect.autapses || !same(i, j);
        let stream = Stream::new(
            self.seed,
            neurograph_compiler::connect_stream(&p.stream_key),
        );
        let mut pairs = Vec::new();
        match &p.connect.rule {
            ConnectRule::AllToAll => {
                for i in 0..n_pre {
                    for j in 0..n_post {
                        if keep(i, j) {
                            pairs.push((i as u32, j as u32));
                        }
                    }
                }
            }
            ConnectRule::OneToOne => {
                for i in 0..n_pre.min(n_post) {
                    if keep(i, i) {
                        pairs.push((i as u32, i as u32));
                    }
                }
            }
            ConnectRule::Bernoulli(pe) => match const_probability(self, *pe) {
                Some(prob) => {
                    if prob > 0.0 {
                        pairs = bernoulli_pairs(stream, prob, n_pre, n_post, &keep);
                    }
                }
                None => {
                    // The probability depends on i, j (or on endpoint variables): evaluate it
                    // over all candidate pairs of one pre element at a time.
                    let saved = std::mem::take(&mut self.conn[pi]);
                    let saved_size = self.nodes[node].size;
                    self.nodes[node].size = n_post;
                    for i in 0..n_pre {
                        // Row i: the pairs (i, 0), ..., (i, n_post - 1).
                        let row_ptr = (0..=n_pre)
                            .map(|k| if k <= i { 0 } else { n_post as u32 })
                            .collect();
                        self.conn[pi] = crate::state::Connectivity::from_rows(
                            n_pre,
                            n_post,
                            row_ptr,
                            (0..n_post as u32).collect(),
                        );
                        let probs = self.eval(
                            *pe,
                            &Ctx {
                                init_draw: Some(0),
                                ..Ctx::all(node)
                            },
                        );
                        for j in 0..n_post {
                            let pr = probs.at(j);
                            if pr > 0.0
                                && keep(i, j)
                                && (pr >= 1.0
                                    || stream.uniform(((i as u64) << 32) | j as u64, 0, 1) < pr)
                            {
                                pairs.push((i as u32, j as u32));
                            }
                        }
                    }
                    self.conn[pi] = saved;
                    self.nodes[node].size = saved_size;
                }
            },
            ConnectRule::FixedIndegree(k) | ConnectRule::FixedOutdegree(k) => {
                let indegree = matches!(p.connect.rule, ConnectRule::FixedIndegree(_));
                let (n_targets, n_sources) = if indegree {
                    (n_post, n_pre)
                } else {
                    (n_pre, n_post)
                };
                for t in 0..n_targets {
                    let chosen = choose_distinct(stream, t as u64, n_sources, *k as usize, |s| {
                        if indegree {
                            keep(s, t)
                        } else {
                            keep(t, s)
                        }
                    });
                    for s in chosen {
                        pairs.push(if indegree {
                            (s as u32, t as u32)
                        } else {
                            (t as u32, s as u32)
                        });
                    }
                }
            }
            ConnectRule::FixedTotal(k) => {
                return Ok(fixed_total(stream, *k, n_pre, n_post, &keep));
            }
            ConnectRule::File(path) => {
                let arr = crate::npy::read(&self.base_dir.join(path)).map_err(|e| {
                    SimError::new(format!("cannot load connectivity `{path}`: {e}"))
                })?;
                if arr.shape.len() != 2 || arr.shape[1] != 2 {
                    return Err(SimError::new(format!(
                        "connectivity file `{path}` must have shape (n, 2): pre index, post index"
                    )));
                }
                for row in arr.data.chunks_exact(2) {
                    let (i, j) = (row[0], row[1]);
                    if i < 0.0
                        || j < 0.0
                        || i >= n_pre as f64
                        || j >= n_post as f64
                        || i.fract() != 0.0
                        || j.fract() != 0.0
                    {
                        return Err(SimError::new(format!("connectivity file `{path}` has a pair ({i}, {j}) outside {n_pre} x {n_post}")));
                    }
                    pairs.push((i as u32, j as u32));
                }
            }
        }
        Ok(Connectivity::from_pairs(n_pre, n_post, pairs))
    }
}

/// Projections with fewer synapses, or steps with fewer events, deliver on one thread (handing
/// work to the pool costs about a microsecond; chosen by timing `benches/microcircuit.sh
/// --scale 0.05 --bg dc --no-nest` and `--scale 0.1` with 128, 256 and 1,024).
const MIN_SPLIT: usize = 256;

/// The presynaptic variable a value is a product with (`w * pre.x`, `pre.x * w`, products of
/// several factors): where it is 0 the value is 0 (for finite other factors), so the synapses
/// of that source add nothing.
fn pre_factor(exprs: &Arena<Expr>, e: Handle<Expr>) -> Option<Handle<Variable>> {
    match &exprs[e] {
        Expr::Var {
            var,
            side: Side::Pre,
        } => Some(*var),
        Expr::Binary(BinOp::Mul, a, b) => pre_factor(exprs, *a).or_else(|| pre_factor(exprs, *b)),
        _ => None,
    }
}

/// The presynaptic variable every statement of `on step` code adds a product with, if one.
fn step_factor(model: &Model, stmts: &[Statement]) -> Option<Handle<Variable>> {
    let mut found = None;
    for st in stmts {
        if !matches!(st.op, AssignOp::Add | AssignOp::Sub) {
            return None;
        }
        let v = pre_factor(&model.exprs, st.value)?;
        if found.is_some_and(|f| f != v) {
            return None;
        }
        found = Some(v);
    }
    found
}

/// One part's work of a delayed delivery: its events due now into `due`, then the synapses of
/// the spiking `sources` onto its post elements queued by their delays (a delay of zero is
/// due now, after the others).
fn take_and_enqueue(
    conn: &Connectivity,
    sources: &[u32],
    slots: &mut SlotsFrom<'_>,
    due: &mut Vec<u32>,
) {
    slots.take_into(due);
    match &conn.delay_steps {
        Delays::None => {}
        Delays::U8(d) => enqueue(conn, d, sources, slots, due),
        Delays::U16(d) => enqueue(conn, d, sources, slots, due),
        Delays::U32(d) => enqueue(conn, d, sources, slots, due),
    }
}

fn enqueue<T: Copy + Into<u32>>(
    conn: &Connectivity,
    delays: &[T],
    sources: &[u32],
    slots: &mut SlotsFrom<'_>,
    due: &mut Vec<u32>,
) {
    for &i in sources {
        let mut row = conn.row(i as usize);
        if let Some((lo, hi)) = slots.posts {
            // Rows are in post order (`Connectivity::from_pairs`).
            let posts = &conn.post()[row.clone()];
            let start = row.start;
            row = start + posts.partition_point(|&j| j < lo)
                ..start + posts.partition_point(|&j| j < hi);
        }
        for (s, &k) in row.clone().zip(&delays[row]) {
            match k.into() {
                0 => due.push(s as u32),
                k => slots.push(k as usize, s as u32),
            }
        }
    }
}

/// The pairs of a Bernoulli rule with one probability for every pair, in (pre, post) order:
/// geometric skipping, one draw per synapse instead of one per pair. Rows are independent
/// (the draws of row `i` are those of element `i`), so large projections are drawn by several
/// threads, each a contiguous range of rows, with the same result for any thread count.
fn bernoulli_pairs(
    stream: Stream,
    prob: f64,
    n_pre: usize,
    n_post: usize,
    keep: &(impl Fn(usize, usize) -> bool + Sync),
) -> Vec<(u32, u32)> {
    let log_q = (1.0 - prob).ln();
    let rows = |range: std::ops::Range<usize>, out: &mut Vec<(u32, u32)>| {
        for i in range {
            let mut j: i64 = -1;
            let mut draw = 0u64;
            loop {
                // A non-negative quotient: truncation is its floor.
                let skip = if prob >= 1.0 {
                    0.0
                } else {
                    stream.uniform(i as u64, draw, 0).ln() / log_q
                };
                draw += 1;
                j += 1 + skip.min(n_post as f64) as i64;
                if j >= n_post as i64 {
                    break;
                }
                if keep(i, j as usize) {
                    out.push((i as u32, j as u32));
                }
            }
        }
    };
    rows_in_parallel(n_pre, prob * n_pre as f64 * n_post as f64, &rows)
}

/// The synapses of `fixed_total(k)`: `k` pairs each uniform over all (pre, post) pairs. The
/// number per pre element is multinomial, drawn row by row as binomials of the synapses left
/// (element `i`, step 0); row `i`'s post elements are then uniform (element `i`, step `m / 2`,
/// draw 1, two per draw), sorted; a post element the row may not use (an autapse) is
/// replaced by the row's next draw (with one post element, such a row stays empty). Built as
/// CSR directly: the row pointers are the counts' sums, and ranges of rows are drawn on
/// several threads into their own part of the post index (`par_rows`).
fn fixed_total(
    stream: Stream,
    k: u32,
    n_pre: usize,
    n_post: usize,
    keep: &(impl Fn(usize, usize) -> bool + Sync),
) -> Connectivity {
    let mut row_ptr = vec![0u32; n_pre + 1];
    let mut left = k as u64;
    for i in 0..n_pre {
        let c = if i + 1 == n_pre {
            left
        } else {
            stream.binomial(i as u64, 0, left, 1.0 / (n_pre - i) as f64) as u64
        };
        left -= c;
        row_ptr[i + 1] = row_ptr[i] + c as u32;
    }
    // A row that `keep` refuses entirely (n_post = 1, an autapse) stays empty.
    if n_post == 1 {
        let counts: Vec<u32> = row_ptr.windows(2).map(|w| w[1] - w[0]).collect();
        for (i, c) in counts.into_iter().enumerate() {
            row_ptr[i + 1] = row_ptr[i] + if keep(i, 0) { c } else { 0 };
        }
    }
    let mut post = vec![0u32; row_ptr[n_pre] as usize];
    par_rows(&row_ptr, &mut post, &|i, _, row: &mut [u32]| {
        let mut filled = 0;
        // The uniforms of draws q and q + 1 (steps of the row's element), computed together.
        let mut q = 0u64;
        'row: while filled < row.len() {
            let [x, y] = stream.bits2((i as u64, q), (i as u64, q + 1), 1);
            q += 2;
            let ((u0, u1), (u2, u3)) = (Stream::uniform2_of(x), Stream::uniform2_of(y));
            for u in [u0, u1, u2, u3] {
                let j = ((u * n_post as f64) as usize).min(n_post - 1);
                if keep(i, j) {
                    row[filled] = j as u32;
                    filled += 1;
                    if filled == row.len() {
                        break 'row;
                    }
                }
            }
        }
        row.sort_unstable();
    });
    Connectivity::from_rows(n_pre, n_post, row_ptr, post)
}

/// `f(i, first, row)` for every row `i` of CSR row pointers, `row` being the row's part of
/// `out` (`out[first..first + len]`): on several threads (ranges of rows balanced by their
/// synapses) when there are many synapses. What each row gets does not depend on the split.
pub(crate) fn par_rows<T: Send>(
    row_ptr: &[u32],
    out: &mut [T],
    f: &(dyn Fn(usize, usize, &mut [T]) + Sync),
) {
    const PER_THREAD: usize = 1 << 16;
    let n_rows = row_ptr.len().saturating_sub(1);
    let total = out.len();
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get().min(8))
        .min(total / PER_THREAD)
        .max(1);
    let run = |rows: std::ops::Range<usize>, part: &mut [T]| {
        let base = rows.start.min(n_rows);
        let base = row_ptr[base] as usize;
        for i in rows {
            let (a, b) = (row_ptr[i] as usize, row_ptr[i + 1] as usize);
            f(i, a, &mut part[a - base..b - base]);
        }
    };
    if threads <= 1 {
        run(0..n_rows, out);
        return;
    }
    // Row boundaries where the synapses before reach t / threads of the total.
    let mut bounds = vec![0usize];
    for t in 1..threads {
        let target = (total * t / threads) as u32;
        let r = row_ptr.partition_point(|&p| p < target).min(n_rows);
        bounds.push(r.max(*bounds.last().unwrap_or(&0)));
    }
    bounds.push(n_rows);
    std::thread::scope(|scope| {
        let mut rest = out;
        let mut parts = Vec::new();
        for w in bounds.windows(2) {
            let len = (row_ptr[w[1]] - row_ptr[w[0]]) as usize;
            let (part, tail) = rest.split_at_mut(len);
            rest = tail;
            parts.push((w[0]..w[1], part));
        }
        let mut parts = parts.into_iter();
        let first = parts.next();
        for (rows, part) in parts {
            scope.spawn(move || run(rows, part));
        }
        if let Some((rows, part)) = first {
            run(rows, part);
        }
    });
}

/// Runs `rows` over all pre elements, on several threads (contiguous ranges, joined in order)
/// when about `expected` pairs make that worth it; the result does not depend on the threads.
fn rows_in_parallel(
    n_pre: usize,
    expected: f64,
    rows: &(impl Fn(std::ops::Range<usize>, &mut Vec<(u32, u32)>) + Sync),
) -> Vec<(u32, u32)> {
    let threads = if expected < 50_000.0 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
    };
    let mut pairs = Vec::with_capacity((expected * 1.01) as usize + 16);
    if threads <= 1 {
        rows(0..n_pre, &mut pairs);
        return pairs;
    }
    let chunk = n_pre.div_ceil(threads);
    let parts: Vec<Vec<(u32, u32)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads)
            .map(|t| {
                let range = (t * chunk).min(n_pre)..((t + 1) * chunk).min(n_pre);
                scope.spawn(move || {
                    let mut out = Vec::with_capacity((expected / threads as f64 * 1.01) as usize);
                    rows(range, &mut out);
                    out
                })
            })
            .collect();
        rows(0..chunk.min(n_pre), &mut pairs);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    for part in parts {
        pairs.extend(part);
    }
    pairs
}

/// A connection probability that is the same for every pair.
/// The probability of a Bernoulli connect rule when it is the same for every pair: a
/// constant, or an expression of model-level parameters evaluated with this run's values
/// (so that `--set` applies).
fn const_probability(sim: &Sim, e: Handle<Expr>) -> Option<f64> {
    if let Expr::Bool(b) = sim.model().exprs[e] {
        return Some(b2f(b));
    }
    sim.constant_value(e)?;
    let mut reads = Vec::new();
    neurograph_compiler::codegen::inputs_of(sim.model(), e, &mut reads);
    if reads
        .iter()
        .all(|&(v, _)| sim.model().variables[v].scope == Scope::Global)
    {
        match sim.eval(e, &Ctx::all(sim.global_node())) {
            Col::S(p) => Some(p),
            Col::V(_) => None,
        }
    } else {
        sim.constant_value(e)
    }
}

/// `k` distinct indices below `n` accepted by `ok`, ascending (Floyd's algorithm on the
/// accepted candidates).
fn choose_distinct(
    stream: Stream,
    target: u64,
    n: usize,
    k: usize,
    ok: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let candidates: Vec<usize> = (0..n).filter(|&s| ok(s)).collect();
    let m = candidates.len();
    let k = k.min(m);
    let mut chosen = std::collections::BTreeSet::new();
    for (draw, t) in (m - k..m).enumerate() {
        let r = ((stream.uniform(target, draw as u64, 0) * (t + 1) as f64) as usize).min(t);
        if !chosen.insert(r) {
            chosen.insert(t);
        }
    }
    chosen.into_iter().map(|c| candidates[c]).collect()
}

/// Whether expression `h` reads the time (`t` or `step`).
pub(crate) fn reads_time(model: &Model, h: Handle<Expr>) -> bool {
    neurograph_compiler::codegen::reads_builtin(model, h, &[Builtin::T, Builtin::Step])
}
