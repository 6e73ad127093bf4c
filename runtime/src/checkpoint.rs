//! The complete mutable state of a simulation as bytes, and back: state and parameter
//! stores, regime states, refractory counters, this step's spikes, delay queues, recordings,
//! counters and the silenced elements. Connectivity is not stored: it is a function of the seed and the set-up
//! parameter values, so a simulation built with the same settings has it already. Random
//! draws are counter-based (seed, stream, element, step), so there is no generator state
//! either. Restoring into such a simulation continues the run bit-identically.

use neurograph_compiler::ir::*;

use crate::sim::{Recording, Sim, SimError};
use crate::state::Store;

/// Little-endian writer of the checkpoint format.
#[derive(Default)]
pub struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, x: u8) {
        self.bytes.push(x);
    }

    pub fn u64(&mut self, x: u64) {
        self.bytes.extend_from_slice(&x.to_le_bytes());
    }

    pub fn f64(&mut self, x: f64) {
        self.bytes.extend_from_slice(&x.to_le_bytes());
    }

    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes.extend_from_slice(s.as_bytes());
    }

    pub fn f64s(&mut self, xs: &[f64]) {
        self.u64(xs.len() as u64);
        for &x in xs {
            self.f64(x);
        }
    }

    pub fn u32s(&mut self, xs: &[u32]) {
        self.u64(xs.len() as u64);
        for &x in xs {
            self.bytes.extend_from_slice(&x.to_le_bytes());
        }
    }

    pub fn u64s(&mut self, xs: &[u64]) {
        self.u64(xs.len() as u64);
        for &x in xs {
            self.u64(x);
        }
    }
}

/// Reader of the checkpoint format; every read is bounds-checked, so a truncated or corrupt
/// file is an error, never a panic or a huge allocation.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn corrupt(what: &str) -> SimError {
    SimError::new(format!(
        "the checkpoint is damaged or truncated (while reading {what})"
    ))
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], SimError> {
        let end = self.at.checked_add(n).ok_or_else(|| corrupt(what))?;
        let s = self.bytes.get(self.at..end).ok_or_else(|| corrupt(what))?;
        self.at = end;
        Ok(s)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, SimError> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u64(&mut self, what: &str) -> Result<u64, SimError> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    pub fn f64(&mut self, what: &str) -> Result<f64, SimError> {
        Ok(f64::from_bits(self.u64(what)?))
    }

    /// A length that must fit in what is left, at `unit` bytes per item.
    fn len(&mut self, unit: usize, what: &str) -> Result<usize, SimError> {
        let n = self.u64(what)?;
        let left = (self.bytes.len() - self.at) as u64;
        if n.saturating_mul(unit as u64) > left {
            return Err(corrupt(what));
        }
        Ok(n as usize)
    }

    pub fn str(&mut self, what: &str) -> Result<String, SimError> {
        let n = self.len(1, what)?;
        String::from_utf8(self.take(n, what)?.to_vec()).map_err(|_| corrupt(what))
    }

    pub fn f64s(&mut self, what: &str) -> Result<Vec<f64>, SimError> {
        let n = self.len(8, what)?;
        (0..n).map(|_| self.f64(what)).collect()
    }

    pub fn u32s(&mut self, what: &str) -> Result<Vec<u32>, SimError> {
        let n = self.len(4, what)?;
        (0..n)
            .map(|_| {
                let b = self.take(4, what)?;
                Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
            })
            .collect()
    }

    pub fn u64s(&mut self, what: &str) -> Result<Vec<u64>, SimError> {
        let n = self.len(8, what)?;
        (0..n).map(|_| self.u64(what)).collect()
    }

    pub fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }
}

fn write_store(w: &mut Writer, s: &Store) {
    match s {
        Store::Uniform(x) => {
            w.u8(0);
            w.f64(*x);
        }
        Store::Elements(xs) => {
            w.u8(1);
            w.f64s(xs);
        }
        // Widened: read back as `Elements` (narrowed again after the restore).
        Store::Narrow(xs) => {
            w.u8(1);
            w.f64s(&xs.iter().map(|&x| f64::from(x)).collect::<Vec<_>>());
        }
        Store::Regime { n, data } => {
            w.u8(2);
            w.u64(*n as u64);
            w.f64s(data);
        }
    }
}

fn read_store(r: &mut Reader, what: &str) -> Result<Store, SimError> {
    Ok(match r.u8(what)? {
        0 => Store::Uniform(r.f64(what)?),
        1 => Store::column(r.f64s(what)?),
        2 => {
            let n = r.u64(what)? as usize;
            Store::Regime {
                n,
                data: r.f64s(what)?,
            }
        }
        _ => return Err(corrupt(what)),
    })
}

/// A store must keep the shape the model gives it (same kind of values, same count).
fn same_shape(a: &Store, b: &Store) -> bool {
    match (a, b) {
        (Store::Uniform(_), Store::Uniform(_)) => true,
        (Store::Elements(x), Store::Elements(y)) => x.len() == y.len(),
        (Store::Narrow(x), Store::Elements(y)) => x.len() == y.len(),
        (Store::Narrow(_), Store::Uniform(_)) => true,
        (Store::Regime { n, data }, Store::Regime { n: m, data: d }) => {
            n == m && data.len() == d.len()
        }
        // A uniform parameter made per-element between steps, or the reverse.
        (Store::Uniform(_), Store::Elements(_)) | (Store::Elements(_), Store::Uniform(_)) => true,
        _ => false,
    }
}

impl Sim {
    /// Append the mutable state of this simulation to `w`.
    pub fn write_state(&self, w: &mut Writer) {
        w.u64(self.step);
        w.u64(self.position_origin);
        for node in &self.nodes {
            let mut vars: Vec<(&Handle<Variable>, &Store)> = node.vars.iter().collect();
            vars.sort_by_key(|(h, _)| h.index());
            w.u64(vars.len() as u64);
            for (h, s) in vars {
                w.u64(h.index() as u64);
                write_store(w, s);
            }
        }
        let mut globals: Vec<(&Handle<Variable>, &Store)> = self.globals.iter().collect();
        globals.sort_by_key(|(h, _)| h.index());
        w.u64(globals.len() as u64);
        for (h, s) in globals {
            w.u64(h.index() as u64);
            write_store(w, s);
        }
        w.u32s(&self.regime_state);
        w.u64(self.spikes.len() as u64);
        for per_event in &self.spikes {
            w.u64(per_event.len() as u64);
            for list in per_event {
                w.u32s(list);
            }
        }
        w.u64(self.ref_until.len() as u64);
        for r in &self.ref_until {
            w.u64s(r);
        }
        w.u64(self.refractory_now.len() as u64);
        for r in &self.refractory_now {
            w.u64(r.len() as u64);
            for &b in r {
                w.u8(b as u8);
            }
        }
        w.u64(self.queues.len() as u64);
        for q in &self.queues {
            match q {
                None => w.u8(0),
                Some(q) => {
                    w.u8(1);
                    // One list per slot whatever the parts (each post element's events in
                    // the order sent), so a checkpoint does not depend on the threads.
                    w.u64(q.slot_count() as u64);
                    for k in 0..q.slot_count() {
                        w.u32s(&q.slot(k));
                    }
                }
            }
        }
        w.u64(self.recordings.len() as u64);
        for rec in &self.recordings {
            w.f64s(&rec.times);
            w.f64s(&rec.values);
            w.u64(rec.width as u64);
        }
        w.u64(self.events_delivered);
        w.u64s(&self.spike_counts);
        w.u64(self.last_finite_check);
        w.u64(self.silenced.len() as u64);
        for list in &self.silenced {
            w.u32s(list);
        }
        w.u64(self.lazy.len() as u64);
        for lazy in &self.lazy {
            match lazy {
                None => w.u8(0),
                Some(l) => {
                    w.u8(1);
                    w.u64s(&l.last);
                }
            }
        }
        w.u64(self.poisson.len() as u64);
        for sources in &self.poisson {
            match sources {
                None => w.u8(0),
                Some(s) => {
                    w.u8(1);
                    w.f64s(&s.p);
                    w.u64s(&s.next);
                    w.u64s(&s.draws);
                    w.u8(s.stale as u8);
                }
            }
        }
    }

    /// Replace this simulation's mutable state by what `write_state` wrote for a simulation of
    /// the same model built with the same settings. Every count is checked against this
    /// simulation's own, so state from another model is refused, not misread.
    pub fn read_state(&mut self, r: &mut Reader) -> Result<(), SimError> {
        let mismatch = |what: &str| {
            SimError::new(format!(
                "the checkpoint does not fit this model ({what} differs): it was written by another model or version"
            ))
        };
        let step = r.u64("the step")?;
        let origin = r.u64("the document's first step")?;
        if origin > step {
            return Err(mismatch("the document's first step"));
        }
        self.position_origin = origin;
        let n_vars = self.program.model.variables.len();
        for nd in 0..self.nodes.len() {
            let count = r.u64("a node's variables")? as usize;
            if count != self.nodes[nd].vars.len() {
                return Err(mismatch("the variables of a population or projection"));
            }
            for _ in 0..count {
                let h = r.u64("a variable")? as usize;
                if h >= n_vars {
                    return Err(mismatch("a variable"));
                }
                let store = read_store(r, "a variable's values")?;
                let var = Handle::<Variable>::new(h);
                match self.nodes[nd].vars.get(&var) {
                    Some(old) if same_shape(old, &store) => {}
                    _ => return Err(mismatch("a variable's values")),
                }
                self.nodes[nd].vars.insert(var, store);
            }
        }
        let count = r.u64("model-level values")? as usize;
        if count != self.globals.len() {
            return Err(mismatch("the model-level values"));
        }
        for _ in 0..count {
            let h = r.u64("a model-level value")? as usize;
            if h >= n_vars {
                return Err(mismatch("a model-level value"));
            }
            let store = read_store(r, "a model-level value")?;
            let var = Handle::<Variable>::new(h);
            if !self.globals.contains_key(&var) {
                return Err(mismatch("a model-level value"));
            }
            self.globals.insert(var, store);
        }
        let regimes = r.u32s("regime states")?;
        if regimes.len() != self.regime_state.len() {
            return Err(mismatch("the regimes"));
        }
        self.regime_state = regimes;
        let n = r.u64("spike lists")? as usize;
        if n != self.spikes.len() {
            return Err(mismatch("the populations"));
        }
        for p in 0..n {
            let events = r.u64("spike lists")? as usize;
            if events != self.spikes[p].len() {
                return Err(mismatch("the events of a population"));
            }
            for e in 0..events {
                self.spikes[p][e] = r.u32s("a spike list")?;
            }
        }
        let n = r.u64("refractory counters")? as usize;
        if n != self.ref_until.len() {
            return Err(mismatch("the populations"));
        }
        for p in 0..n {
            let v = r.u64s("refractory counters")?;
            if v.len() != self.ref_until[p].len() {
                return Err(mismatch("a population's size"));
            }
            self.ref_until[p] = v;
        }
        let n = r.u64("refractory flags")? as usize;
        if n != self.refractory_now.len() {
            return Err(mismatch("the populations"));
        }
        for p in 0..n {
            let len = r.u64("refractory flags")? as usize;
            if len != self.refractory_now[p].len() {
                return Err(mismatch("a population's size"));
            }
            for k in 0..len {
                self.refractory_now[p][k] = r.u8("refractory flags")? != 0;
            }
        }
        let n = r.u64("delay queues")? as usize;
        if n != self.queues.len() {
            return Err(mismatch("the projections"));
        }
        for q in 0..n {
            match (r.u8("a delay queue")?, &mut self.queues[q]) {
                (0, None) => {}
                (1, Some(queue)) => {
                    let slots = r.u64("a delay queue")? as usize;
                    if slots != queue.slot_count() {
                        return Err(mismatch("a projection's delays"));
                    }
                    let post = self.conn[q].post();
                    let mut lists = Vec::with_capacity(slots);
                    for _ in 0..slots {
                        let events = r.u32s("a delay queue")?;
                        if events.iter().any(|&s| s as usize >= post.len()) {
                            return Err(mismatch("a projection's synapses"));
                        }
                        lists.push(events);
                    }
                    queue.set_slots(lists, post);
                }
                _ => return Err(mismatch("a projection's delays")),
            }
        }
        let n = r.u64("recordings")? as usize;
        if n != self.recordings.len() {
            return Err(mismatch("the records"));
        }
        for k in 0..n {
            let times = r.f64s("a recording")?;
            let values = r.f64s("a recording")?;
            let width = r.u64("a recording")? as usize;
            self.recordings[k] = Recording {
                times,
                values,
                width,
            };
        }
        self.events_delivered = r.u64("counters")?;
        let counts = r.u64s("spike counts")?;
        if counts.len() != self.spike_counts.len() {
            return Err(mismatch("the populations"));
        }
        self.spike_counts = counts;
        self.last_finite_check = r.u64("counters")?;
        let n = r.u64("silenced elements")? as usize;
        if n != self.silenced.len() {
            return Err(mismatch("the populations"));
        }
        for p in 0..n {
            let list = r.u32s("silenced elements")?;
            let size = self.nodes[p].size;
            if list.iter().any(|&e| e as usize >= size) || !list.is_sorted_by(|a, b| a < b) {
                return Err(mismatch("the silenced elements"));
            }
            self.silenced[p] = list;
        }
        let n = r.u64("event-driven synapses")? as usize;
        if n != self.lazy.len() {
            return Err(mismatch("the projections"));
        }
        for k in 0..n {
            let size = self.nodes[self.n_pops + k].size;
            match (r.u8("event-driven synapses")?, &mut self.lazy[k]) {
                (0, None) => {}
                (1, Some(l)) => {
                    let last = r.u64s("event-driven synapses")?;
                    if last.len() != size {
                        return Err(mismatch("a projection's synapses"));
                    }
                    l.last = last;
                }
                _ => return Err(mismatch("the event-driven variables")),
            }
        }
        let n = r.u64("Poisson sources")? as usize;
        if n != self.poisson.len() {
            return Err(mismatch("the populations"));
        }
        for k in 0..n {
            let size = self.nodes[k].size;
            match (r.u8("Poisson sources")?, &mut self.poisson[k]) {
                (0, None) => {}
                (1, Some(sources)) => {
                    let p = r.f64s("Poisson sources")?;
                    let next = r.u64s("Poisson sources")?;
                    let draws = r.u64s("Poisson sources")?;
                    let stale = r.u8("Poisson sources")? != 0;
                    let empty = p.is_empty() && next.is_empty() && draws.is_empty();
                    let sized = p.len() == size && next.len() == size && draws.len() == size;
                    if !(empty || sized) {
                        return Err(mismatch("a Poisson input's size"));
                    }
                    sources.p = p;
                    sources.next = next;
                    sources.draws = draws;
                    sources.stale = stale;
                    sources.rebuild_heap();
                }
                _ => return Err(mismatch("the Poisson inputs")),
            }
        }
        self.step = step;
        self.non_finite = None;
        self.invalidate_derived();
        // (Read back wide.)
        self.narrow_synapse_columns();
        Ok(())
    }
}
