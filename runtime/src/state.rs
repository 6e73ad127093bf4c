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

/// Synapses of a projection in CSR order (sorted by pre, then post), with the reverse index
/// by post element. Indices are positions in the projection's endpoint numbering.
#[derive(Debug, Clone, Default)]
pub struct Connectivity {
    pub n_pre: usize,
    pub n_post: usize,
    pub row_ptr: Vec<u32>,
    pub pre: Vec<u32>,
    pub post: Vec<u32>,
    /// Synapses onto each post element: `col_syn[col_ptr[j]..col_ptr[j + 1]]`, ascending.
    pub col_ptr: Vec<u32>,
    pub col_syn: Vec<u32>,
    /// Delay of each synapse in steps; empty when the projection has no delay.
    pub delay_steps: Vec<u32>,
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
        let mut fill = col_ptr.clone();
        let mut col_syn = vec![0u32; post.len()];
        for (s, &j) in post.iter().enumerate() {
            col_syn[fill[j as usize] as usize] = s as u32;
            fill[j as usize] += 1;
        }
        Connectivity {
            n_pre,
            n_post,
            row_ptr,
            pre,
            post,
            col_ptr,
            col_syn,
            delay_steps: Vec::new(),
        }
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
