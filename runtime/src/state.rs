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
    /// One value per element. Shared (`Arc`) between projections that the layout pass finds
    /// drawn alike (`Sim::drawn_alike`: a weight matrix that several layers use is held once);
    /// a write to a shared column copies it first (`Store::column_mut`).
    Elements(std::sync::Arc<Vec<f64>>),
    /// One value per element held as f32: a per-synapse column of an f32 model whose values
    /// are all f32 (every write of such a model rounds to f32), so half the memory and the
    /// memory traffic of `Elements` with the same values (`Sim::narrow_synapse_columns`).
    /// Generated event code reads and writes it in place; any other writer widens it first
    /// (`Store::widen`).
    Narrow(std::sync::Arc<Vec<f32>>),
    /// One value per regime state and element: `data[state * n + element]`.
    Regime { n: usize, data: Vec<f64> },
}

impl Store {
    pub fn get(&self, element: usize, regime_state: usize) -> f64 {
        match self {
            Store::Uniform(v) => *v,
            Store::Elements(v) => v[element],
            Store::Narrow(v) => f64::from(v[element]),
            Store::Regime { n, data } => data[regime_state * n + element],
        }
    }

    /// A narrow store as `Elements` with the same values (a copy); others unchanged.
    pub fn widen(&mut self) {
        if let Store::Narrow(v) = self {
            *self = Store::column(v.iter().map(|&x| f64::from(x)).collect());
        }
    }

    /// The values of a per-element column as f32 when every one of them is an f32 (`None`
    /// otherwise: narrowing would change them).
    pub fn narrowed(values: &[f64]) -> Option<Vec<f32>> {
        let narrow: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        let exact = values
            .iter()
            .zip(&narrow)
            .all(|(&x, &y)| f64::from(y).to_bits() == x.to_bits());
        exact.then_some(narrow)
    }

    /// A per-element store of these values.
    pub fn column(values: Vec<f64>) -> Store {
        Store::Elements(std::sync::Arc::new(values))
    }

    /// The values of a per-element store for writing: copied first when another projection
    /// shares them.
    pub fn column_mut(values: &mut std::sync::Arc<Vec<f64>>) -> &mut Vec<f64> {
        std::sync::Arc::make_mut(values)
    }

    /// Mutable access to one element's value, converting a uniform store to per-element.
    pub fn slot(&mut self, element: usize, regime_state: usize, size: usize) -> &mut f64 {
        if let Store::Uniform(v) = self {
            *self = Store::column(vec![*v; size]);
        }
        self.widen();
        match self {
            Store::Uniform(_) | Store::Narrow(_) => unreachable!(),
            Store::Elements(v) => &mut Store::column_mut(v)[element],
            Store::Regime { n, data } => &mut data[regime_state * *n + element],
        }
    }

    pub fn elements(&self, size: usize) -> Vec<f64> {
        match self {
            Store::Uniform(v) => vec![*v; size],
            Store::Elements(v) => v.to_vec(),
            Store::Narrow(v) => v.iter().map(|&x| f64::from(x)).collect(),
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
    /// The pre index of each synapse: `row_ptr` expanded, made when first read (`pre`) and
    /// dropped when a projection's set-up no longer needs it (`release_pre`), so a projection
    /// whose run never reads it (no `pre.x`, no `i`, no edge record) does not keep 4 bytes per
    /// synapse for it.
    pre: std::sync::OnceLock<Vec<u32>>,
    /// The post index of each synapse (`post`). Shared (`Arc`) with an earlier projection
    /// whose synapses are the same pairs (`Connectivity::same_synapses`,
    /// `Sim::share_equal_index`: BDH's layers connect alike); never changed once built. Not
    /// held for dense rows (`runs`) once set-up is done, made again if something reads it.
    post: std::sync::OnceLock<std::sync::Arc<Vec<u32>>>,
    /// Dense rows (every row's post elements consecutive, `use_runs`): each row's first post
    /// index, from which the post index follows; shared like the post index.
    runs: Option<std::sync::Arc<Vec<u32>>>,
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

/// `x.round()` (half away from zero) without a call into the C library for the non-negative
/// values below 2^52 that delays are: the integer part and the exact fraction.
#[inline]
fn round_half_away(x: f64) -> f64 {
    if (0.0..4.5e15).contains(&x) {
        let t = x as u64;
        (t + u64::from(x - t as f64 >= 0.5)) as f64
    } else {
        x.round()
    }
}

/// Threads for a pass over `n` values: one per 2^16 values, at most the cores (and 8).
fn par_threads(n: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |t| t.get().min(8))
        .min(n >> 16)
        .max(1)
}

/// `f` of each of `par_threads` contiguous chunks of `xs`, computed in parallel, in order.
fn par_chunks<T: Send>(xs: &[f64], f: &(dyn Fn(&[f64]) -> T + Sync)) -> Vec<T> {
    let threads = par_threads(xs.len());
    if threads == 1 {
        return vec![f(xs)];
    }
    let chunk = xs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = xs
            .chunks(chunk)
            .map(|c| scope.spawn(move || f(c)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// The longest delay in steps a projection may have.
pub const MAX_DELAY_STEPS: f64 = 1e9;

impl Delays {
    /// Delays of `seconds` rounded to steps of `dt`, stored in the type the longest needs,
    /// and the longest; `Err` with the first delay outside 0 to `MAX_DELAY_STEPS` steps.
    pub fn from_seconds(seconds: &[f64], dt: f64) -> Result<(Delays, u32), f64> {
        let steps = |s: f64| round_half_away(s / dt);
        // The longest, or the first delay out of range, of each of a few chunks in parallel.
        let chunks = par_chunks(seconds, &|part: &[f64]| {
            let mut longest = 0.0f64;
            for &s in part {
                let k = steps(s);
                if !(0.0..=MAX_DELAY_STEPS).contains(&k) {
                    return Err(s);
                }
                longest = longest.max(k);
            }
            Ok(longest)
        });
        let mut longest = 0.0f64;
        for c in chunks {
            longest = longest.max(c?);
        }
        let longest = longest as u32;
        fn narrow<T: Copy + Default + Send>(
            seconds: &[f64],
            f: &(dyn Fn(f64) -> T + Sync),
        ) -> Vec<T> {
            let threads = par_threads(seconds.len());
            if threads == 1 {
                return seconds.iter().map(|&s| f(s)).collect();
            }
            let mut out = vec![T::default(); seconds.len()];
            let chunk = seconds.len().div_ceil(threads);
            std::thread::scope(|scope| {
                for (o, i) in out.chunks_mut(chunk).zip(seconds.chunks(chunk)) {
                    scope.spawn(move || {
                        for (x, &s) in o.iter_mut().zip(i) {
                            *x = f(s);
                        }
                    });
                }
            });
            out
        }
        let delays = match Delays::width_for(longest) {
            1 => Delays::U8(narrow(seconds, &|s| steps(s) as u8)),
            2 => Delays::U16(narrow(seconds, &|s| steps(s) as u16)),
            _ => Delays::U32(narrow(seconds, &|s| steps(s) as u32)),
        };
        Ok((delays, longest))
    }

    /// Bytes per synapse of delays whose longest is `longest` steps (1, 2 or 4).
    pub fn width_for(longest: u32) -> usize {
        if longest <= u32::from(u8::MAX) {
            1
        } else if longest <= u32::from(u16::MAX) {
            2
        } else {
            4
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
        let post: Vec<u32> = pairs.iter().map(|p| p.1).collect();
        Connectivity::from_rows(n_pre, n_post, row_ptr, post)
    }

    /// CSR from row pointers and the post index of each synapse, rows in post order.
    pub fn from_rows(
        n_pre: usize,
        n_post: usize,
        row_ptr: Vec<u32>,
        post: Vec<u32>,
    ) -> Connectivity {
        debug_assert_eq!(row_ptr.len(), n_pre + 1);
        debug_assert_eq!(row_ptr[n_pre] as usize, post.len());
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
            pre: std::sync::OnceLock::new(),
            post: std::sync::OnceLock::from(std::sync::Arc::new(post)),
            runs: None,
            col_ptr,
            col_syn: Vec::new(),
            delay_steps: Delays::None,
        }
    }

    /// The same synapses for another projection: row and column pointers copied, the post
    /// index shared; no pre index, reverse index or delays yet (each projection makes its own).
    pub fn same_synapses(&self) -> Connectivity {
        Connectivity {
            n_pre: self.n_pre,
            n_post: self.n_post,
            row_ptr: self.row_ptr.clone(),
            pre: std::sync::OnceLock::new(),
            post: self.post.clone(),
            runs: self.runs.clone(),
            col_ptr: self.col_ptr.clone(),
            col_syn: Vec::new(),
            delay_steps: Delays::None,
        }
    }

    /// Build the reverse index `col_syn` (synapses by post element, ascending), once.
    pub fn index_by_post(&mut self) {
        if !self.col_syn.is_empty() || self.n_synapses() == 0 {
            return;
        }
        let mut fill = self.col_ptr.clone();
        let mut col_syn = vec![0u32; self.n_synapses()];
        for (s, &j) in self.post().iter().enumerate() {
            col_syn[fill[j as usize] as usize] = s as u32;
            fill[j as usize] += 1;
        }
        self.col_syn = col_syn;
    }

    /// The pre index of each synapse (CSR order), made from the row pointers on first use.
    pub fn pre(&self) -> &[u32] {
        self.pre.get_or_init(|| {
            let mut pre = Vec::with_capacity(self.n_synapses());
            for (i, w) in self.row_ptr.windows(2).enumerate() {
                pre.resize(pre.len() + (w[1] - w[0]) as usize, i as u32);
            }
            pre
        })
    }

    /// Whether the pre indices are held now (`pre` made them and `release_pre` did not drop
    /// them since).
    pub fn holds_pre(&self) -> bool {
        self.pre.get().is_some()
    }

    /// Drop the pre indices (the next `pre` makes them again).
    pub fn release_pre(&mut self) {
        self.pre = std::sync::OnceLock::new();
    }

    /// Whether every row's synapses are in ascending post order (as `from_pairs` makes them):
    /// generated code over rows and a delivery split by post element rely on it.
    pub fn rows_in_post_order(&self) -> bool {
        self.runs.is_some()
            || (0..self.row_ptr.len().saturating_sub(1))
                .all(|i| self.post()[self.row(i)].is_sorted())
    }

    pub fn n_synapses(&self) -> usize {
        self.row_ptr.last().map_or(0, |&n| n as usize)
    }

    /// The post index of each synapse (made from the dense rows when it is not held).
    pub fn post(&self) -> &[u32] {
        self.post_index()
    }

    fn post_index(&self) -> &std::sync::Arc<Vec<u32>> {
        self.post.get_or_init(|| {
            let runs = self.runs.as_deref().map_or(&[][..], |r| &r[..]);
            let mut post = Vec::with_capacity(self.n_synapses());
            for (w, &first) in self.row_ptr.windows(2).zip(runs) {
                post.extend(first..first + (w[1] - w[0]));
            }
            std::sync::Arc::new(post)
        })
    }

    /// Take another projection's equal index: its post index and dense rows, as held.
    pub fn share_index(&mut self, other: &Connectivity) {
        self.post = other.post.clone();
        self.runs = other.runs.clone();
    }

    /// The post index for changing it (copied first when shared); the rows are no longer
    /// taken for dense.
    pub fn post_mut(&mut self) -> &mut Vec<u32> {
        self.post_index();
        self.runs = None;
        std::sync::Arc::make_mut(self.post.get_mut().expect("made above"))
    }

    /// Whether the post index is held now.
    pub fn holds_post(&self) -> bool {
        self.post.get().is_some()
    }

    /// Whether two connectivities hold one and the same index (the same `Arc`).
    pub fn same_index(&self, other: &Connectivity) -> bool {
        match (&self.runs, &other.runs, self.post.get(), other.post.get()) {
            (Some(a), Some(b), ..) => std::sync::Arc::ptr_eq(a, b) && self.row_ptr == other.row_ptr,
            (None, None, Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Dense rows: each row's first post index when every row's posts are consecutive.
    pub fn runs(&self) -> Option<&std::sync::Arc<Vec<u32>>> {
        self.runs.as_ref()
    }

    /// Take the rows as dense when they are (`row_runs`); the post index is still held until
    /// `release_post`.
    pub fn use_runs(&mut self) {
        if self.runs.is_none() {
            self.runs = self.row_runs().map(std::sync::Arc::new);
        }
    }

    /// Drop the post index of dense rows (the next `post` makes it again).
    pub fn release_post(&mut self) {
        if self.runs.is_some() {
            self.post = std::sync::OnceLock::new();
        }
    }

    /// When every row's post indices are consecutive (all-to-all, one-to-one, block-diagonal
    /// connectivity): the post index of each row's first synapse (0 for an empty row), which
    /// with the row pointers gives every post index (generated code over such rows reads the
    /// post side contiguously). `None` when some row skips or repeats a post element.
    fn row_runs(&self) -> Option<Vec<u32>> {
        let post = self.post();
        (0..self.row_ptr.len().saturating_sub(1))
            .map(|i| {
                let posts = &post[self.row(i)];
                let first = posts.first().copied().unwrap_or(0);
                let consecutive = posts
                    .iter()
                    .enumerate()
                    .all(|(k, &j)| u64::from(j) == u64::from(first) + k as u64);
                consecutive.then_some(first)
            })
            .collect()
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

/// Spikes waiting for their delay, as a ring of per-step synapse lists. The lists may be split
/// by post element into parts (`repartition`), one per thread that delivers them: part `t`
/// holds the events onto the post elements `bounds[t]..bounds[t + 1]` in the order they were
/// sent, so every post element receives its events in the same order however many parts
/// there are.
#[derive(Debug, Clone, Default)]
pub struct DelayQueue {
    /// `lists[part * slots + slot]`.
    lists: Vec<Vec<u32>>,
    slots: usize,
    /// Post endpoint indices where the parts start, then the end (`parts + 1` entries).
    bounds: Vec<u32>,
}

/// The bounds of a queue in one part.
const ONE_PART: [u32; 2] = [0, u32::MAX];

impl DelayQueue {
    pub fn new(max_delay: usize) -> DelayQueue {
        DelayQueue {
            lists: vec![Vec::new(); max_delay + 1],
            slots: max_delay + 1,
            bounds: ONE_PART.to_vec(),
        }
    }

    /// The number of slots (the longest delay in steps + 1).
    pub fn slot_count(&self) -> usize {
        self.slots
    }

    /// The post bounds of the parts (`[0, u32::MAX]`: one part).
    pub fn bounds(&self) -> &[u32] {
        &self.bounds
    }

    /// The events of slot `k`, every part's in turn (each post element's in the order sent).
    pub fn slot(&self, k: usize) -> Vec<u32> {
        (0..self.bounds.len() - 1)
            .flat_map(|part| self.lists[part * self.slots + k].iter().copied())
            .collect()
    }

    /// Make every slot hold its list of `slots` (one per slot, each in the order sent), split
    /// into the queue's current parts.
    pub fn set_slots(&mut self, slots: Vec<Vec<u32>>, post: &[u32]) {
        assert_eq!(slots.len(), self.slots, "one list per slot");
        let bounds = std::mem::replace(&mut self.bounds, ONE_PART.to_vec());
        self.lists = slots;
        self.repartition(&bounds, post);
    }

    /// Split the lists at the post endpoint indices `bounds` (ascending, first 0, last above
    /// every post index), each part keeping its events' order.
    pub fn repartition(&mut self, bounds: &[u32], post: &[u32]) {
        if bounds == self.bounds.as_slice() {
            return;
        }
        let parts = bounds.len() - 1;
        let mut lists = vec![Vec::new(); parts * self.slots];
        for k in 0..self.slots {
            for s in self.slot(k) {
                let j = post[s as usize];
                let part = bounds[1..].partition_point(|&b| b <= j).min(parts - 1);
                lists[part * self.slots + k].push(s);
            }
        }
        self.lists = lists;
        self.bounds = bounds.to_vec();
    }

    /// The number of parts.
    pub fn parts(&self) -> usize {
        self.bounds.len() - 1
    }

    /// Every part's slots seen from `step`, in part order.
    pub fn parts_from(&mut self, step: u64) -> Vec<SlotsFrom<'_>> {
        let base = (step % self.slots as u64) as usize;
        let whole = self.bounds.len() == 2;
        self.lists
            .chunks_mut(self.slots)
            .zip(self.bounds.windows(2))
            .map(|(slots, b)| SlotsFrom {
                slots,
                base,
                posts: (!whole).then_some((b[0], b[1])),
            })
            .collect()
    }

    /// The slots of a queue in one part seen from `step` (`None` when it is split).
    pub fn whole_from(&mut self, step: u64) -> Option<SlotsFrom<'_>> {
        let base = (step % self.slots as u64) as usize;
        (self.bounds.len() == 2).then(|| SlotsFrom {
            slots: &mut self.lists,
            base,
            posts: None,
        })
    }
}

/// One part of a `DelayQueue` seen from one step (`DelayQueue::parts_from`).
pub struct SlotsFrom<'a> {
    slots: &'a mut [Vec<u32>],
    base: usize,
    /// The post elements of this part (`None`: every post element, one part).
    pub posts: Option<(u32, u32)>,
}

impl SlotsFrom<'_> {
    /// Enqueue `synapse` for `delay` steps after the queue's step (`delay` < the slot count)
    /// without a division per synapse.
    #[inline]
    pub fn push(&mut self, delay: usize, synapse: u32) {
        let mut k = self.base + delay;
        if k >= self.slots.len() {
            k -= self.slots.len();
        }
        self.slots[k].push(synapse);
    }

    /// The synapses due at the queue's step, appended to `out`; the slot keeps `out`'s old
    /// allocation (so a run stops allocating once the lists have grown).
    pub fn take_into(&mut self, out: &mut Vec<u32>) {
        let slot = &mut self.slots[self.base];
        if out.is_empty() {
            std::mem::swap(slot, out);
        } else {
            out.append(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_split_by_post_keeps_each_post_elements_order() {
        // Synapse s goes to post s % 7; 40 synapses over 3 slots.
        let post: Vec<u32> = (0..40).map(|s| s % 7).collect();
        let mut q = DelayQueue::new(2);
        let events: Vec<Vec<u32>> = (0..3)
            .map(|k| (0..40).rev().filter(|s| s % 3 == k).collect())
            .collect();
        q.set_slots(events.clone(), &post);
        let per_post = |list: &[u32], j: u32| -> Vec<u32> {
            list.iter()
                .copied()
                .filter(|&s| post[s as usize] == j)
                .collect()
        };
        for bounds in [
            vec![0, 3, u32::MAX],
            vec![0, 1, 2, 6, 100],
            ONE_PART.to_vec(),
        ] {
            q.repartition(&bounds, &post);
            assert_eq!(q.bounds(), bounds.as_slice());
            for (k, e) in events.iter().enumerate() {
                let slot = q.slot(k);
                assert_eq!(slot.len(), e.len());
                for j in 0..7 {
                    assert_eq!(per_post(&slot, j), per_post(e, j), "slot {k} post {j}");
                }
            }
        }
        // Pushed and taken per part: part 1 of [0, 3, MAX] holds posts 3 to 6 only.
        q.repartition(&[0, 3, u32::MAX], &post);
        let mut parts = q.parts_from(4);
        assert_eq!(parts.len(), 2);
        parts[1].push(2, 3);
        let mut due = Vec::new();
        parts[1].take_into(&mut due);
        assert!(due.iter().all(|&s| post[s as usize] >= 3), "{due:?}");
        assert_eq!(due.len(), per_post_range(&events[1], &post, 3..7).len());
        for j in 3..7 {
            assert_eq!(per_post(&due, j), per_post(&events[1], j));
        }
        drop(parts);
        // Taken: slot 1 keeps part 0's events; the pushed one is due two steps on (slot 0).
        let kept = q.slot(1);
        assert_eq!(kept.len(), per_post_range(&events[1], &post, 0..3).len());
        for j in 0..3 {
            assert_eq!(per_post(&kept, j), per_post(&events[1], j));
        }
        assert_eq!(q.slot(0).last(), Some(&3));
    }

    fn per_post_range(list: &[u32], post: &[u32], r: std::ops::Range<u32>) -> Vec<u32> {
        list.iter()
            .copied()
            .filter(|&s| r.contains(&post[s as usize]))
            .collect()
    }

    #[test]
    fn delays_take_the_narrowest_type_that_holds_the_longest() {
        // Seconds at dt = 0.5 s: twice the steps; 1.2 rounds to 2 steps and 0.7 to 1.
        for (longest, width) in [(0u32, 1), (255, 1), (256, 2), (65_535, 2), (65_536, 4)] {
            let seconds = vec![1.5, longest as f64 / 2.0, 0.0, 1.2, 0.7];
            let (d, most) = Delays::from_seconds(&seconds, 0.5).unwrap();
            assert_eq!(
                (d.width(), most),
                (width, longest.max(3)),
                "longest {longest}"
            );
            assert_eq!(Delays::width_for(longest), width);
            assert!(!d.is_empty());
            let back: Vec<u32> = (0..seconds.len()).map(|s| d.get(s)).collect();
            assert_eq!(back, vec![3, longest, 0, 2, 1]);
        }
        assert_eq!(Delays::from_seconds(&[1.0, -1.0, 2e9], 1.0), Err(-1.0));
        assert!(Delays::from_seconds(&[f64::NAN], 1.0).unwrap_err().is_nan());
        assert!(Delays::None.is_empty());
        assert_eq!(Delays::None.width(), 0);
    }

    #[test]
    fn the_index_by_post_is_built_on_request_and_lists_each_post_elements_synapses() {
        let pairs = vec![(0, 2), (0, 0), (1, 2), (2, 1), (2, 2)];
        let mut c = Connectivity::from_pairs(3, 3, pairs);
        assert!(c.col_syn.is_empty());
        assert_eq!(c.col_ptr, vec![0, 1, 2, 5]);
        assert!(!c.holds_pre());
        assert_eq!(c.pre(), &[0, 0, 1, 2, 2]);
        assert!(c.holds_pre());
        c.release_pre();
        assert!(!c.holds_pre());
        c.index_by_post();
        assert_eq!(c.col_syn.len(), c.n_synapses());
        // CSR order: (0,0) (0,2) (1,2) (2,1) (2,2).
        for j in 0..3 {
            let syn = &c.col_syn[c.col_ptr[j] as usize..c.col_ptr[j + 1] as usize];
            let expected: Vec<u32> = (0..c.n_synapses() as u32)
                .filter(|&s| c.post()[s as usize] == j as u32)
                .collect();
            assert_eq!(syn, expected.as_slice());
        }
    }
}
