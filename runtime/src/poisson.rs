//! Event-driven Poisson sources: a `poisson(n, rate = r)` input whose rate does not change with
//! time draws, per source, the number of steps to its next spike instead of one uniform per
//! source and step.
//!
//! The per-step form spikes in each step independently with probability `p = r dt`; the
//! number of silent steps before a spike is then geometric, `P(G = g) = (1 - p)^g p` for
//! `g = 0, 1, …`, and independent of everything before (the process is memoryless). So a
//! source that spiked at step `s` spikes next at `s + 1 + G`, and a source whose probability
//! changes at step `s` (a `set_param`) spikes next at `s + G` with the new `p`: the same law
//! as the per-step draws, one draw per spike. `G = floor(ln U / ln(1 - p))` with `U` uniform in
//! (0, 1), drawn on the event's stream at (source, number of draws so far of that source, 1),
//! so a run is a function of the seed alone, whatever the backend.
//!
//! Sources wait in a binary heap ordered by (next step, index): the sources due this step come
//! out in ascending index order, as a spike list must be.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use neurograph_compiler::ir::*;

use crate::eval::Ctx;
use crate::rng::Stream;
use crate::sim::Sim;

/// The pending spikes of one population of event-driven Poisson sources.
#[derive(Debug, Clone, Default)]
pub struct PoissonSources {
    /// Per source: the spike probability per step the pending spikes were drawn with (empty
    /// until the first step).
    pub p: Vec<f64>,
    /// Per source: the step of its next spike (`u64::MAX`: never, `p = 0`).
    pub next: Vec<u64>,
    /// Per source: draws made so far (the counter of its next draw).
    pub draws: Vec<u64>,
    /// (next step, source) of every source that will spike.
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    /// Probabilities to be evaluated again before the next step (a parameter changed).
    pub stale: bool,
    /// The stream of the spike event's draws (`None` until the first step).
    stream: Option<u32>,
}

impl PoissonSources {
    /// Rebuild the heap from `next` (after a checkpoint is read).
    pub fn rebuild_heap(&mut self) {
        self.heap = self
            .next
            .iter()
            .enumerate()
            .filter(|(_, &s)| s != u64::MAX)
            .map(|(e, &s)| Reverse((s, e as u32)))
            .collect();
    }
}

/// Whether population `p` runs as event-driven Poisson sources: a `poisson` input whose rate
/// does not read the time (its only event is the spike drawn with probability `rate * dt`,
/// and it has no equations or refractoriness).
pub fn is_event_driven(model: &Model, p: Handle<Population>, time_varying: bool) -> bool {
    let pop = &model.populations[p];
    let Some(input) = pop.input else {
        return false;
    };
    if !matches!(model.inputs[input].kind, InputKind::Poisson { .. }) || time_varying {
        return false;
    }
    let ct = &model.cell_types[pop.cell_type];
    ct.dynamics.odes.is_empty()
        && ct.dynamics.updates.is_empty()
        && ct.refractory.is_none()
        && ct.events.len() == 1
        && ct.events[0].body.is_empty()
        && matches!(ct.events[0].trigger, Trigger::Probability(_))
}

/// Silent steps before the next spike of a source with spike probability `p` per step, from
/// a uniform `u` in (0, 1): geometric on {0, 1, …}; `u64::MAX` when it never spikes.
fn silent_steps(p: f64, u: f64) -> u64 {
    if p >= 1.0 {
        0
    } else if p > 0.0 {
        // A non-negative quotient; huge values (tiny p) saturate.
        let g = u.ln() / (-p).ln_1p();
        if g < 4e18 {
            g as u64
        } else {
            u64::MAX
        }
    } else {
        u64::MAX
    }
}

impl Sim {
    /// This step's spikes of event-driven Poisson population `p` (`detect`'s work).
    pub(crate) fn poisson_detect(&mut self, p: Handle<Population>) {
        let node = p.index();
        let Some(mut sources) = self.poisson[node].take() else {
            return;
        };
        let program = std::sync::Arc::clone(&self.program);
        let model = &program.model;
        let ct = &model.cell_types[model.populations[p].cell_type];
        let ev = &ct.events[0];
        let stream_id = *sources
            .stream
            .get_or_insert_with(|| neurograph_compiler::event_stream(&ct.name, &ev.name));
        let stream = Stream::new(self.seed, stream_id);
        let ctx = Ctx::all(node);
        let size = self.nodes[node].size;
        let step = self.step;
        if sources.stale || sources.p.len() != size {
            let Trigger::Probability(pr) = ev.trigger else {
                unreachable!("is_event_driven checked the trigger");
            };
            let v = self.eval(pr, &ctx);
            let fresh = sources.p.len() != size;
            if fresh {
                sources.p = vec![f64::NAN; size];
                sources.next = vec![u64::MAX; size];
                sources.draws = vec![0; size];
            }
            // Sources whose probability changed (all, at the start) draw their next spike
            // from this step on; the others keep theirs.
            let mut changed = false;
            for e in 0..size {
                let pe = v.at(e);
                if fresh || pe.to_bits() != sources.p[e].to_bits() {
                    sources.p[e] = pe;
                    let u = stream.uniform(self.rng_element(&ctx, e), sources.draws[e], 1);
                    sources.draws[e] += 1;
                    sources.next[e] = step.saturating_add(silent_steps(pe, u));
                    changed = true;
                }
            }
            if changed {
                sources.rebuild_heap();
            }
            sources.stale = false;
        }
        let mut fired = std::mem::take(&mut self.spikes[node][0]);
        fired.clear();
        while let Some(&Reverse((s, e))) = sources.heap.peek() {
            if s > step {
                break;
            }
            sources.heap.pop();
            fired.push(e);
            let k = e as usize;
            let u = stream.uniform(self.rng_element(&ctx, k), sources.draws[k], 1);
            sources.draws[k] += 1;
            let next = step
                .saturating_add(1)
                .saturating_add(silent_steps(sources.p[k], u));
            sources.next[k] = next;
            if next != u64::MAX {
                sources.heap.push(Reverse((next, e)));
            }
        }
        self.spike_counts[node] += fired.len() as u64;
        self.spikes[node][0] = fired;
        self.poisson[node] = Some(sources);
    }
}

#[cfg(test)]
mod tests {
    use super::silent_steps;

    #[test]
    fn silent_steps_follow_the_geometric_law_at_the_edges() {
        assert_eq!(silent_steps(1.0, 0.3), 0);
        assert_eq!(silent_steps(0.0, 0.3), u64::MAX);
        assert_eq!(silent_steps(1e-300, 0.5), u64::MAX);
        // P(G >= g) = (1 - p)^g: u = (1 - p)^g exactly on a boundary gives g.
        let p = 0.25f64;
        assert_eq!(silent_steps(p, 0.75f64.powi(3) * 0.999_999), 3);
        assert_eq!(silent_steps(p, 0.75f64.powi(3) * 1.000_001), 2);
    }
}
