//! Event-driven synaptic variables (`compiler::event_driven`): values advanced per synapse when
//! something reads them, instead of every step.
//!
//! Per projection with such variables, `last[s]` counts the steps synapse `s`'s values have
//! been advanced through (all of the projection's event-driven variables together). Advancing
//! by `d` steps multiplies by `P^d`, `P` the one-step propagator of the equation (the very
//! value exact integration would apply each step, from `propagators`). Event code advances
//! the synapses it runs over first (`advance`); records and `Sim::values` read advanced
//! copies without changing the state (`current`); setting values advances the others first.
//! A step's integration comes before its delivery and its records, so during step `n` the
//! values are wanted after `n + 1` steps, between steps after `step`.

use neurograph_compiler::ir::*;

use crate::sim::Sim;
use crate::state::Store;

/// The lazy state of one projection.
#[derive(Debug, Clone, Default)]
pub struct LazyState {
    /// Per synapse: steps its event-driven values have been advanced through.
    pub last: Vec<u64>,
    /// Per event-driven variable (the projection's order): the one-step propagator per
    /// synapse, or one for all (`None` until computed; recomputed after a parameter changes).
    props: Vec<Option<Vec<f64>>>,
}

impl LazyState {
    pub fn new(synapses: usize, vars: usize) -> LazyState {
        LazyState {
            last: vec![0; synapses],
            props: vec![None; vars],
        }
    }

    /// Whether advancing variable `k` can make a finite value non-finite (a propagator above
    /// one in magnitude, or not computed yet): decays keep stored finite values finite.
    pub fn may_grow(&self, k: usize) -> bool {
        self.props
            .get(k)
            .is_none_or(|p| p.as_ref().is_none_or(|p| p.iter().any(|x| x.abs() > 1.0)))
    }

    /// Forget the propagators (a parameter changed).
    pub fn invalidate(&mut self) {
        for p in &mut self.props {
            *p = None;
        }
    }
}

/// `x P^d` (`d` = 0 leaves `x`).
fn advanced(x: f64, p: f64, d: u64) -> f64 {
    if d == 0 {
        x
    } else {
        x * p.powi(d.min(i32::MAX as u64) as i32)
    }
}

impl Sim {
    /// Compute the propagators of event-driven variable number `k` of projection `pi`, one
    /// per synapse or one for all, unless known.
    fn lazy_props(&mut self, pi: usize, k: usize) {
        if self.lazy[pi].as_ref().is_none_or(|l| l.props[k].is_some()) {
            return;
        }
        let program = std::sync::Arc::clone(&self.program);
        let ode = program.model.projections[Handle::new(pi)].code.event_driven[k].clone();
        let d = Dynamics {
            odes: vec![ode],
            ..Default::default()
        };
        let node = self.n_pops + pi;
        let plan = self.exact_plan(node, &d);
        let props = plan.scalar_propagators(self.nodes[node].size);
        if let Some(l) = self.lazy[pi].as_mut() {
            l.props[k] = Some(props);
        }
    }

    /// Compute the propagators of projection `pi` that are not known (before reads through
    /// `&self`).
    pub(crate) fn lazy_prepare(&mut self, pi: usize) {
        let n = self.lazy[pi].as_ref().map_or(0, |l| l.props.len());
        for k in 0..n {
            self.lazy_props(pi, k);
        }
    }

    /// Advance the event-driven values of projection `pi` on `synapses` to `target` steps.
    pub(crate) fn lazy_advance(&mut self, pi: usize, synapses: &[u32], target: u64) {
        self.lazy_prepare(pi);
        let Some(mut lazy) = self.lazy[pi].take() else {
            return;
        };
        let program = std::sync::Arc::clone(&self.program);
        let code = &program.model.projections[Handle::new(pi)].code;
        let node = self.n_pops + pi;
        let size = self.nodes[node].size;
        // Never f32 state: `event_driven::select` leaves f32 models clock-driven.
        debug_assert!(!self.f32_state);
        for (k, props) in lazy.props.iter().enumerate() {
            let Some(props) = props else {
                continue;
            };
            let Some(store) = self.nodes[node].vars.get_mut(&code.event_driven[k].var) else {
                continue;
            };
            if let Store::Uniform(v) = *store {
                *store = Store::column(vec![v; size]);
            }
            store.widen();
            let Store::Elements(xs) = store else {
                continue;
            };
            let xs = Store::column_mut(xs);
            for &s in synapses {
                let s = s as usize;
                let d = target.saturating_sub(lazy.last[s]);
                if d > 0 {
                    let p = props[if props.len() == 1 { 0 } else { s }];
                    xs[s] = advanced(xs[s], p, d);
                }
            }
        }
        for &s in synapses {
            let s = s as usize;
            lazy.last[s] = lazy.last[s].max(target);
        }
        self.lazy[pi] = Some(lazy);
    }

    /// Advance every synapse of projection `pi` to `target` steps.
    pub(crate) fn lazy_advance_all(&mut self, pi: usize, target: u64) {
        if self.lazy[pi].is_none() {
            return;
        }
        let all: Vec<u32> = (0..self.nodes[self.n_pops + pi].size as u32).collect();
        self.lazy_advance(pi, &all, target);
    }

    /// The values of `var` on `node` as they are after `target` steps, when it is an
    /// event-driven variable (`None` otherwise: the stored values are current).
    pub(crate) fn lazy_current(
        &self,
        node: Node,
        var: Handle<Variable>,
        target: u64,
    ) -> Option<Vec<f64>> {
        let Node::Projection(p) = node else {
            return None;
        };
        let pi = p.index();
        let lazy = self.lazy[pi].as_ref()?;
        let code = &self.program.model.projections[p].code;
        let k = code.event_driven.iter().position(|o| o.var == var)?;
        let nd = self.n_pops + pi;
        let size = self.nodes[nd].size;
        let xs = self.nodes[nd].vars.get(&var)?.elements(size);
        // The propagators as `lazy_props` computes them (without caching: `&self`).
        let props: std::borrow::Cow<[_]> = match &lazy.props[k] {
            Some(p) => p.into(),
            None => {
                let d = Dynamics {
                    odes: vec![code.event_driven[k].clone()],
                    ..Default::default()
                };
                self.exact_plan(nd, &d).scalar_propagators(size).into()
            }
        };
        Some(
            xs.iter()
                .enumerate()
                .map(|(s, &x)| {
                    let p = props[if props.len() == 1 { 0 } else { s }];
                    advanced(x, p, target.saturating_sub(lazy.last[s]))
                })
                .collect(),
        )
    }

    /// The values of `var` on `node` now (between steps), when it is an event-driven variable.
    pub fn current_values_if_lazy(&self, node: Node, var: Handle<Variable>) -> Option<Vec<f64>> {
        self.lazy_current(node, var, self.step)
    }
}
