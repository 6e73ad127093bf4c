//! Simulation state as plain data: per-node variable stores (struct of arrays), connectivity
//! in CSR form, refractory counters, spike lists and delay queues. Everything here can be
//! written out and read back to resume a run.

use std::collections::HashMap;

use neurograph_compiler::ir::{Handle, Variable};

/// The values of one variable on one node.
#[derive(Debug, Clone, PartialEq)]
pub enum Store {
    /// The same value for every element (parameters that were never made heterogeneous).
    Uniform(f64),
    /// One value per element.
    Elements(Vec<f64>),
    /// One value per regime state and element: `data[state * n + element]`.
    Regime { n: usize, data: Vec<f64> },
}

impl Store {
    pub fn get(&self, element: usize, regime_state: usize) -> f64 {
        match self {
            Store::Uniform(v) => *v,
            Store::Elements(v) => v[element],
            Store::Regime { n, data } => data[regime_state * n + element],
        }
    }

    /// Mutable access to one element's value, converting a uniform store to per-element.
    pub fn slot(&mut self, element: usize, regime_state: usize, size: usize) -> &mut f64 {
        if let Store::Uniform(v) = self {
            *self = Store::Elements(vec![*v; size]);
        }
        match self {
            Store::Uniform(_) => unreachable!(),
            Store::Elements(v) => &mut v[element],
            Store::Regime { n, data } => &mut data[regime_state * *n + element],
        }
    }

    pub fn elements(&self, size: usize) -> Vec<f64> {
        match self {
            Store::Uniform(v) => vec![*v; size],
            Store::Elements(v) => v.clone(),
            Store::Regime { n, data } => data[..*n].to_vec(),
        }
    }
}

/// Hashes a handle (one small integer) with one multiplication; the standard SipHash showed
/// in profiles of the step loop, which looks variables up by handle.
#[derive(Default, Clone, Copy)]
pub struct HandleHasher(u64);

impl std::hash::Hasher for HandleHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by variable handle.
pub type VarMap<T> = HashMap<Handle<Variable>, T, std::hash::BuildHasherDefault<HandleHasher>>;

/// The variables of a population or of a projection's synapses.
#[derive(Debug, Clone, Default)]
pub struct NodeState {
    pub size: usize,
    pub vars: VarMap<Store>,
}

/// Synapses of a projection in CSR order (sorted by pre, then post), with the number of
/// synapses onto each post element and, where `on post` code needs it, the reverse index by
/// post element. Indices are positions in the projection's endpoint numbering.
#[derive(Debug, Clone, Default)]
pub struct Connectivity {
    pub n_pre: usize,
    pub n_post: usize,
    pub row_ptr: Vec<u32>,
    pub pre: Vec<u32>,
    pub post: Vec<u32>,
    /// Synapses onto each post element: `col_syn[col_ptr[j]..col_ptr[j + 1]]`, ascending.
    /// `col_syn` is empty until `index_by_post` builds it (only projections with `on post`
    /// code use it: 4 bytes per synapse the others do not pay).
    pub col_ptr: Vec<u32>,
    pub col_syn: Vec<u32>,
    /// Delay of each synapse in steps; `Delays::None` when the projection has no delay.
    pub delay_steps: Delays,
}

/// Per-synapse delays in steps, stored in the narrowest unsigned type that holds the longest
/// (a millisecond-range delay at dt = 0.1 ms is one byte per synapse, not four).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Delays {
    #[default]
    None,
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Delays {
    /// The delays `steps`, narrowed to the type their maximum needs.
    pub fn new(steps: Vec<u32>) -> Delays {
        let max = steps.iter().copied().max().unwrap_or(0);
        if max <= u32::from(u8::MAX) {
            Delays::U8(steps.iter().map(|&k| k as u8).collect())
        } else if max <= u32::from(u16::MAX) {
            Delays::U16(steps.iter().map(|&k| k as u16).collect())
        } else {
            Delays::U32(steps)
        }
    }

    /// True when the projection has no delays (every event is due when its source spikes).
    pub fn is_empty(&self) -> bool {
        matches!(self, Delays::None)
    }

    /// The delay of synapse `s` in steps.
    pub fn get(&self, s: usize) -> u32 {
        match self {
            Delays::None => 0,
            Delays::U8(v) => u32::from(v[s]),
            Delays::U16(v) => u32::from(v[s]),
            Delays::U32(v) => v[s],
        }
    }

    /// Bytes per synapse of this storage (0, 1, 2 or 4).
    pub fn width(&self) -> usize {
        match self {
            Delays::None => 0,
            Delays::U8(_) => 1,
            Delays::U16(_) => 2,
            Delays::U32(_) => 4,
        }
    }
}

impl Connectivity {
    pub fn from_pairs(n_pre: usize, n_post: usize, mut pairs: Vec<(u32, u32)>) -> Connectivity {
        // Connect rules draw most pairs in order already.
        if !pairs.is_sorted() {
            pairs.sort_unstable();
        }
        let mut row_ptr = vec![0u32; n_pre + 1];
        for &(i, _) in &pairs {
            row_ptr[i as usize + 1] += 1;
        }
        for k in 0..n_pre {
            row_ptr[k + 1] += row_ptr[k];
        }
        let pre: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        let post: Vec<u32> = pairs.iter().map(|p| p.1).collect();
        let mut col_ptr = vec![0u32; n_post + 1];
        for &j in &post {
            col_ptr[j as usize + 1] += 1;
        }
        for k in 0..n_post {
            col_ptr[k + 1] += col_ptr[k];
        }
        Connectivity {
            n_pre,
            n_post,
            row_ptr,
            pre,
            post,
            col_ptr,
            col_syn: Vec::new(),
            delay_steps: Delays::None,
        }
    }

    /// Build the reverse index `col_syn` (synapses by post element, ascending), once.
    pub fn index_by_post(&mut self) {
        if !self.col_syn.is_empty() || self.post.is_empty() {
            return;
        }
        let mut fill = self.col_ptr.clone();
        let mut col_syn = vec![0u32; self.post.len()];
        for (s, &j) in self.post.iter().enumerate() {
            col_syn[fill[j as usize] as usize] = s as u32;
            fill[j as usize] += 1;
        }
        self.col_syn = col_syn;
    }

    /// Bytes this connectivity holds per synapse (indices, reverse index, delays), and in
    /// total with the per-element pointers.
    pub fn bytes(&self) -> usize {
        4 * (self.row_ptr.len() + self.pre.len() + self.post.len())
            + 4 * (self.col_ptr.len() + self.col_syn.len())
            + self.delay_steps.width() * self.post.len()
    }

    pub fn n_synapses(&self) -> usize {
        self.post.len()
    }

    pub fn row(&self, i: usize) -> std::ops::Range<usize> {
        self.row_ptr[i] as usize..self.row_ptr[i + 1] as usize
    }
}

/// Where the elements of one end of a projection live: `(node index, first local element,
/// endpoint offset, count)` per part.
#[derive(Debug, Clone, Default)]
pub struct EndpointMap {
    pub parts: Vec<(usize, usize, usize, usize)>,
}

impl EndpointMap {
    pub fn size(&self) -> usize {
        self.parts.iter().map(|p| p.3).sum()
    }

    /// (node index, local element) of an endpoint index.
    pub fn locate(&self, idx: usize) -> (usize, usize) {
        for &(node, start, offset, count) in &self.parts {
            if idx < offset + count {
                return (node, start + idx - offset);
            }
        }
        let &(node, start, offset, _) = self.parts.last().expect("endpoint has parts");
        (node, start + idx - offset)
    }

    /// Endpoint index of (node, local element), if that element is part of this end.
    pub fn index_of(&self, node: usize, local: usize) -> Option<usize> {
        self.parts.iter().find_map(|&(n, start, offset, count)| {
            (n == node && local >= start && local < start + count).then(|| offset + local - start)
        })
    }
}

/// Spikes waiting for their delay, as a ring of per-step synapse lists.
#[derive(Debug, Clone, Default)]
pub struct DelayQueue {
    pub slots: Vec<Vec<u32>>,
}

impl DelayQueue {
    pub fn new(max_delay: usize) -> DelayQueue {
        DelayQueue {
            slots: vec![Vec::new(); max_delay + 1],
        }
    }

    /// The slots seen from `step`: `push(k, s)` enqueues synapse `s` for step `step + k`
    /// without a division per synapse.
    pub fn slots_from(&mut self, step: u64) -> SlotsFrom<'_> {
        let base = (step % self.slots.len() as u64) as usize;
        SlotsFrom {
            slots: &mut self.slots,
            base,
        }
    }

    /// The synapses due at `step`, appended to `out`; the slot keeps `out`'s old allocation
    /// (so a run stops allocating once the lists have grown).
    pub fn take_into(&mut self, step: u64, out: &mut Vec<u32>) {
        let n = self.slots.len() as u64;
        let slot = &mut self.slots[(step % n) as usize];
        if out.is_empty() {
            std::mem::swap(slot, out);
        } else {
            out.append(slot);
        }
    }
}

/// A `DelayQueue` seen from one step (`DelayQueue::slots_from`).
pub struct SlotsFrom<'a> {
    slots: &'a mut [Vec<u32>],
    base: usize,
}

impl SlotsFrom<'_> {
    /// Enqueue `synapse` for `delay` steps after the queue's step (`delay` < the slot count).
    #[inline]
    pub fn push(&mut self, delay: usize, synapse: u32) {
        let mut k = self.base + delay;
        if k >= self.slots.len() {
            k -= self.slots.len();
        }
        self.slots[k].push(synapse);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_take_the_narrowest_type_that_holds_the_longest() {
        for (longest, width) in [(0u32, 1), (255, 1), (256, 2), (65_535, 2), (65_536, 4)] {
            let steps = vec![3, longest, 0, 1];
            let d = Delays::new(steps.clone());
            assert_eq!(d.width(), width, "longest {longest}");
            assert!(!d.is_empty());
            let back: Vec<u32> = (0..steps.len()).map(|s| d.get(s)).collect();
            assert_eq!(back, steps);
        }
        assert!(Delays::None.is_empty());
        assert_eq!(Delays::None.width(), 0);
    }

    #[test]
    fn the_index_by_post_is_built_on_request_and_lists_each_post_elements_synapses() {
        let pairs = vec![(0, 2), (0, 0), (1, 2), (2, 1), (2, 2)];
        let mut c = Connectivity::from_pairs(3, 3, pairs);
        assert!(c.col_syn.is_empty());
        assert_eq!(c.col_ptr, vec![0, 1, 2, 5]);
        let bytes = c.bytes();
        c.index_by_post();
        assert_eq!(c.bytes(), bytes + 4 * c.n_synapses());
        // CSR order: (0,0) (0,2) (1,2) (2,1) (2,2).
        for j in 0..3 {
            let syn = &c.col_syn[c.col_ptr[j] as usize..c.col_ptr[j + 1] as usize];
            let expected: Vec<u32> = (0..c.n_synapses() as u32)
                .filter(|&s| c.post[s as usize] == j as u32)
                .collect();
            assert_eq!(syn, expected.as_slice());
        }
    }
}
