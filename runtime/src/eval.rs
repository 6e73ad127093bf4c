//! The reference interpreter's expression evaluator. It evaluates an IR expression for many
//! elements of one node at once (a whole population, the synapses of a projection, or a subset
//! such as the neurons that spiked), one operation at a time over columns. Values that are the
//! same for every element stay scalars, so parameter arithmetic costs nothing per element.

use std::collections::HashMap;

use neurograph_compiler::ir::*;
use neurograph_compiler::{eval_pure, BinOp, UnOp};

use crate::rng::Stream;
use crate::sim::{Sim, SimError};
use crate::state::Store;

/// A column of values, one per element of the evaluation (or one shared value).
#[derive(Debug, Clone)]
pub enum Col {
    S(f64),
    V(Vec<f64>),
}

impl Col {
    #[inline]
    pub fn at(&self, k: usize) -> f64 {
        match self {
            Col::S(v) => *v,
            Col::V(v) => v[k],
        }
    }

    pub fn into_vec(self, n: usize) -> Vec<f64> {
        match self {
            Col::S(v) => vec![v; n],
            Col::V(v) => v,
        }
    }

    pub fn map(self, f: impl Fn(f64) -> f64) -> Col {
        match self {
            Col::S(v) => Col::S(f(v)),
            Col::V(mut v) => {
                for x in v.iter_mut() {
                    *x = f(*x);
                }
                Col::V(v)
            }
        }
    }

    pub fn zip(self, other: Col, f: impl Fn(f64, f64) -> f64) -> Col {
        match (self, other) {
            (Col::S(a), Col::S(b)) => Col::S(f(a, b)),
            (Col::V(mut a), Col::S(b)) => {
                for x in a.iter_mut() {
                    *x = f(*x, b);
                }
                Col::V(a)
            }
            (Col::S(a), Col::V(mut b)) => {
                for x in b.iter_mut() {
                    *x = f(a, *x);
                }
                Col::V(b)
            }
            (Col::V(mut a), Col::V(b)) => {
                for (x, y) in a.iter_mut().zip(b) {
                    *x = f(*x, y);
                }
                Col::V(a)
            }
        }
    }
}

/// What an evaluation runs over.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// Node index (population or projection) whose elements are evaluated.
    pub node: usize,
    /// Evaluated elements: all of the node's (`None`) or a subset in ascending order.
    pub elems: Option<&'a [u32]>,
    /// Values that replace variables (integrator stages, linearity probes).
    pub overrides: Option<&'a HashMap<Handle<Variable>, Col>>,
    /// (regime, state) used for the variables indexed by that regime while their initial
    /// values are computed (`None`: current states).
    pub regime_state: Option<(usize, usize)>,
    /// Coordinate used instead of the step for random draws of initial values.
    pub init_draw: Option<u64>,
    /// Added to `t` (intermediate integrator stages).
    pub time_offset: f64,
}

impl<'a> Ctx<'a> {
    pub fn all(node: usize) -> Ctx<'a> {
        Ctx {
            node,
            elems: None,
            overrides: None,
            regime_state: None,
            init_draw: None,
            time_offset: 0.0,
        }
    }
}

pub fn b2f(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

impl Sim {
    /// Number of evaluated elements.
    pub fn count(&self, ctx: &Ctx) -> usize {
        ctx.elems.map_or(self.nodes[ctx.node].size, <[u32]>::len)
    }

    /// Element index of evaluation position k.
    #[inline]
    pub fn elem(ctx: &Ctx, k: usize) -> usize {
        ctx.elems.map_or(k, |e| e[k] as usize)
    }

    fn regime_of(&self, var: Handle<Variable>, ctx: &Ctx) -> usize {
        match (ctx.regime_state, self.program.model.variables[var].regime) {
            (Some((r0, s)), Some(r)) if r.index() == r0 => s,
            (_, Some(r)) => self.regime_state[r.index()] as usize,
            (_, None) => 0,
        }
    }

    /// Read a variable of `node` for the elements `locals` (or a shared value).
    fn read_var(
        &self,
        var: Handle<Variable>,
        node: Option<usize>,
        ctx: &Ctx,
        locals: impl Fn(usize) -> usize,
        n: usize,
    ) -> Col {
        let rs = self.regime_of(var, ctx);
        let store = match node {
            None => self.globals.get(&var),
            Some(nd) => self.nodes[nd].vars.get(&var),
        };
        match store {
            None => Col::S(0.0),
            Some(Store::Uniform(v)) => Col::S(*v),
            Some(s) => Col::V((0..n).map(|k| s.get(locals(k), rs)).collect()),
        }
    }

    /// Evaluate `e` over the context's elements.
    pub fn eval(&self, e: Handle<Expr>, ctx: &Ctx) -> Col {
        if self.jit.is_some() {
            if let Some(c) = self.jit_eval(e, ctx) {
                return c;
            }
        }
        let n = self.count(ctx);
        match &self.program.model.exprs[e] {
            Expr::Const(c) => Col::S(*c),
            Expr::Bool(b) => Col::S(b2f(*b)),
            Expr::Var { var, side } => {
                if let (Some(o), Side::Own) = (ctx.overrides, side) {
                    if let Some(c) = o.get(var) {
                        return c.clone();
                    }
                }
                let v = &self.program.model.variables[*var];
                if v.scope == Scope::Global {
                    return self.read_var(*var, None, ctx, |k| k, 1).expand(n);
                }
                match side {
                    Side::Own => {
                        self.read_var(*var, Some(ctx.node), ctx, |k| Self::elem(ctx, k), n)
                    }
                    Side::Pre | Side::Post => {
                        let p = self.proj_of(ctx.node);
                        let conn = &self.conn[p];
                        let (map, idx) = if *side == Side::Pre {
                            (&self.pre_maps[p], conn.pre())
                        } else {
                            (&self.post_maps[p], conn.post())
                        };
                        // Gather through the endpoint map; parts of one end share an element type.
                        if map.parts.len() == 1 {
                            let (node, start, offset, _) = map.parts[0];
                            return self.read_var(
                                *var,
                                Some(node),
                                ctx,
                                |k| start + idx[Self::elem(ctx, k)] as usize - offset,
                                n,
                            );
                        }
                        let vals = (0..n)
                            .map(|k| {
                                let (node, local) = map.locate(idx[Self::elem(ctx, k)] as usize);
                                let rs = self.regime_of(*var, ctx);
                                self.nodes[node]
                                    .vars
                                    .get(var)
                                    .map_or(0.0, |s| s.get(local, rs))
                            })
                            .collect();
                        Col::V(vals)
                    }
                }
            }
            Expr::Builtin(b) => match b {
                Builtin::T => Col::S(self.step as f64 * self.dt + ctx.time_offset),
                Builtin::Dt => Col::S(self.dt),
                Builtin::Step => Col::S(self.step as f64),
                Builtin::N => Col::S(self.nodes[ctx.node].size as f64),
                Builtin::I | Builtin::J => {
                    if ctx.node < self.n_pops {
                        Col::V((0..n).map(|k| Self::elem(ctx, k) as f64).collect())
                    } else {
                        let conn = &self.conn[self.proj_of(ctx.node)];
                        let idx = if *b == Builtin::I {
                            conn.pre()
                        } else {
                            conn.post()
                        };
                        Col::V((0..n).map(|k| idx[Self::elem(ctx, k)] as f64).collect())
                    }
                }
            },
            Expr::RegimeState(r) => Col::S(self.regime_state[r.index()] as f64),
            Expr::Unary(op, a) => {
                let a = self.eval(*a, ctx);
                match op {
                    UnOp::Neg => a.map(|x| -x),
                    UnOp::Not => a.map(|x| b2f(x == 0.0)),
                }
            }
            Expr::Binary(op, a, b) => {
                let (a, b) = (self.eval(*a, ctx), self.eval(*b, ctx));
                match op {
                    BinOp::Add => a.zip(b, |x, y| x + y),
                    BinOp::Sub => a.zip(b, |x, y| x - y),
                    BinOp::Mul => a.zip(b, |x, y| x * y),
                    BinOp::Div => a.zip(b, |x, y| x / y),
                    BinOp::Mod => a.zip(b, |x, y| x.rem_euclid(y)),
                    BinOp::Pow => a.zip(b, neurograph_compiler::pow_f64),
                    BinOp::Eq => a.zip(b, |x, y| b2f(x == y)),
                    BinOp::Ne => a.zip(b, |x, y| b2f(x != y)),
                    BinOp::Lt => a.zip(b, |x, y| b2f(x < y)),
                    BinOp::Le => a.zip(b, |x, y| b2f(x <= y)),
                    BinOp::Gt => a.zip(b, |x, y| b2f(x > y)),
                    BinOp::Ge => a.zip(b, |x, y| b2f(x >= y)),
                    BinOp::And => a.zip(b, |x, y| b2f(x != 0.0 && y != 0.0)),
                    BinOp::Or => a.zip(b, |x, y| b2f(x != 0.0 || y != 0.0)),
                }
            }
            Expr::Call(f, args) => self.call(e, *f, args, ctx, n),
            Expr::Load(src) => {
                let arr = &self.arrays[&src.key];
                Col::V(
                    (0..n)
                        .map(|k| self.load_value(&src.key, arr, ctx, k))
                        .collect(),
                )
            }
            Expr::Token { path, cycle, .. } => {
                let tok = match self.current_token(path, *cycle) {
                    Some(t) => t as usize,
                    None => {
                        // Token files are never empty (`load_files`): past the end.
                        self.tokens_ended(path, self.token_files[path].len());
                        usize::MAX
                    }
                };
                Col::V((0..n).map(|k| b2f(Self::elem(ctx, k) == tok)).collect())
            }
            Expr::Array(items) => {
                // Per-regime values: pick the current (or initialising) regime state's entry.
                let k = ctx
                    .regime_state
                    .map_or(0, |(_, k)| k)
                    .min(items.len().saturating_sub(1));
                self.eval(items[k], ctx)
            }
        }
    }

    /// Value of a loaded array for evaluation position k: indexed by element for cells, by
    /// `[pre, post]` (2-D) or synapse number (1-D) for synapses. A position outside the array
    /// is a data fault (the run stops with an error naming the file); the value is NaN until
    /// then.
    fn load_value(&self, path: &str, arr: &crate::npy::Array, ctx: &Ctx, k: usize) -> f64 {
        let e = Self::elem(ctx, k);
        let idx = if ctx.node >= self.n_pops && arr.shape.len() == 2 {
            let conn = &self.conn[self.proj_of(ctx.node)];
            let (i, j) = (conn.pre()[e] as usize, conn.post()[e] as usize);
            if i >= arr.shape[0] || j >= arr.shape[1] {
                self.data_problem(path, arr, ctx, format!("synapse ({i}, {j})"));
                return f64::NAN;
            }
            i * arr.shape[1] + j
        } else {
            e
        };
        match arr.data.get(idx) {
            Some(&x) => x,
            None => {
                self.data_problem(path, arr, ctx, format!("element {e}"));
                f64::NAN
            }
        }
    }

    /// A token file read past its end (without `cycle = true`): the run stops here.
    fn tokens_ended(&self, path: &str, len: usize) {
        let mut fault = self.data_fault.borrow_mut();
        if fault.is_some() {
            return;
        }
        let span = self
            .program
            .model
            .inputs
            .iter()
            .find_map(|(_, i)| match &i.kind {
                InputKind::Tokens { path: p, .. } if p == path => Some(i.span),
                _ => None,
            });
        let message = format!(
            "token file `{path}` has {len} tokens and the run reached its end (step {}); simulate at most {len} steps, or add `cycle = true` to read it again from the start",
            self.step
        );
        *fault = Some(match span {
            Some(s) => SimError::at(s, message),
            None => SimError::new(message),
        });
    }

    /// Note the first loaded array that is too small for where it is used.
    fn data_problem(&self, path: &str, arr: &crate::npy::Array, ctx: &Ctx, what: String) {
        let mut fault = self.data_fault.borrow_mut();
        if fault.is_some() {
            return;
        }
        let node = self.nodes[ctx.node].size;
        let owner = if ctx.node < self.n_pops {
            format!(
                "population `{}` ({node} cells)",
                self.program
                    .model
                    .populations
                    .iter()
                    .nth(ctx.node)
                    .map_or("", |(_, p)| p.name.as_str())
            )
        } else if ctx.node < self.nodes.len() - 1 {
            let (_, p) = self
                .program
                .model
                .projections
                .iter()
                .nth(ctx.node - self.n_pops)
                .expect("a projection node");
            format!(
                "projection `{}` ({node} synapses, {} x {} endpoints)",
                p.name,
                self.conn[ctx.node - self.n_pops].n_pre,
                self.conn[ctx.node - self.n_pops].n_post
            )
        } else {
            "the model".to_string()
        };
        let shape: Vec<String> = arr.shape.iter().map(usize::to_string).collect();
        *fault = Some(SimError::new(format!(
            "`{path}` has shape ({}) but {owner} reads {what} of it: the array must have one value per element (cells: shape (n,); synapses: (n_pre, n_post) or one per synapse)",
            shape.join(", ")
        )));
    }

    /// Element coordinate of random draws: unique per node and element.
    pub fn rng_element(&self, ctx: &Ctx, k: usize) -> u64 {
        self.rng_keys(ctx).at(k, 0).0
    }

    /// What the coordinates of an evaluation's draws are made of (`RngKeys`).
    fn rng_keys<'a>(&'a self, ctx: &Ctx<'a>) -> RngKeys<'a> {
        let synapse_init = ctx.init_draw.is_some() && ctx.node >= self.n_pops;
        RngKeys {
            elems: ctx.elems,
            conn: synapse_init.then(|| {
                let conn = &self.conn[self.proj_of(ctx.node)];
                (conn.row_ptr.as_slice(), conn.post())
            }),
            node_key: self.node_keys[ctx.node],
        }
    }

    fn call(&self, e: Handle<Expr>, f: Func, args: &[Handle<Expr>], ctx: &Ctx, n: usize) -> Col {
        let stream = Stream::new(
            self.seed,
            self.program
                .model
                .random_streams
                .get(&e)
                .copied()
                .unwrap_or(e.index() as u32),
        );
        let step = ctx.init_draw.unwrap_or(self.step);
        let keys = self.rng_keys(ctx);
        // The distributions that take draw 0's bits get them two elements at a time
        // (`RngKeys::collect_bits`); the values are those of `Stream`'s samplers.
        let bits = |g: &BitsFn<'_>| Col::V(keys.collect_bits(n, step, stream, g));
        let uniform = Stream::uniform_of;
        match f {
            Func::Rand => bits(&|_, _, _, b| uniform(b)),
            Func::Randn => bits(&|_, _, _, b| stream.normal_of(b)),
            Func::Uniform => {
                let (a, c) = (self.eval(args[0], ctx), self.eval(args[1], ctx));
                bits(&|k, _, _, b| {
                    let (lo, hi) = (a.at(k), c.at(k));
                    lo + (hi - lo) * uniform(b)
                })
            }
            Func::Normal => {
                let (m, s) = (self.eval(args[0], ctx), self.eval(args[1], ctx));
                bits(&|k, _, _, b| m.at(k) + s.at(k) * stream.normal_of(b))
            }
            Func::TruncNormal => {
                let (m, s) = (self.eval(args[0], ctx), self.eval(args[1], ctx));
                let lo = self.eval(args[2], ctx);
                let hi = args.get(3).map(|a| self.eval(*a, ctx));
                bits(&|k, el, st, b| {
                    let high = hi.as_ref().map_or(f64::INFINITY, |h| h.at(k));
                    truncated_normal(stream, el, st, b, [m.at(k), s.at(k), lo.at(k), high])
                })
            }
            Func::Poisson => {
                let l = self.eval(args[0], ctx);
                Col::V(keys.collect(n, step, &|k, el, st| stream.poisson(el, st, l.at(k))))
            }
            Func::Bernoulli => {
                let p = self.eval(args[0], ctx);
                bits(&|k, _, _, b| b2f(uniform(b) < p.at(k)))
            }
            Func::Sum | Func::Mean | Func::MaxOf | Func::Norm | Func::LayerNorm | Func::Rope => {
                // Population-wide: always over the whole node, whatever subset is evaluated.
                let all = Ctx {
                    elems: None,
                    ..*ctx
                };
                let size = self.nodes[ctx.node].size;
                let x = self.eval(args[0], &all).into_vec(size);
                // Positions count from the start of the current document.
                let result = population_op(f, &x, self.step - self.position_origin);
                match (result, ctx.elems) {
                    (Col::V(v), Some(sub)) => Col::V(sub.iter().map(|&i| v[i as usize]).collect()),
                    (r, _) => r,
                }
            }
            _ => {
                let cols: Vec<Col> = args.iter().map(|a| self.eval(*a, ctx)).collect();
                if cols.iter().all(|c| matches!(c, Col::S(_))) {
                    let vals: Vec<f64> = cols.iter().map(|c| c.at(0)).collect();
                    return Col::S(eval_pure(f, &vals).unwrap_or(f64::NAN));
                }
                let mut buf = vec![0.0; cols.len()];
                Col::V(
                    (0..n)
                        .map(|k| {
                            for (b, c) in buf.iter_mut().zip(&cols) {
                                *b = c.at(k);
                            }
                            eval_pure(f, &buf).unwrap_or(f64::NAN)
                        })
                        .collect(),
                )
            }
        }
    }
}

/// The coordinates of random draws over the elements of one evaluation: (element, step) of
/// draw `k`. Plain data, so that large columns are drawn on several threads.
#[derive(Clone, Copy)]
struct RngKeys<'a> {
    elems: Option<&'a [u32]>,
    /// Set for initial values of synapse variables: they are keyed by (pre, post); the row
    /// pointers and post index of the projection's synapses.
    conn: Option<(&'a [u32], &'a [u32])>,
    node_key: u64,
}

impl RngKeys<'_> {
    /// Element and step of draw `k` of an evaluation at `step`. Synapse initial values use
    /// the (pre, post) pair as the element, so projections of one synapse type between ends of
    /// equal size draw the same values; the m-th synapse of a pair after the first (a
    /// multapse: they are adjacent in a row) draws at `step + m * 2^32`, so that each has its
    /// own values.
    fn at(&self, k: usize, step: u64) -> (u64, u64) {
        let e = self.elems.map_or(k, |e| e[k] as usize);
        match self.conn {
            Some((row_ptr, post)) => {
                let i = row_ptr.partition_point(|&r| r as usize <= e) - 1;
                let start = row_ptr[i] as usize;
                let m = (start..e).rev().take_while(|&t| post[t] == post[e]).count() as u64;
                (
                    ((i as u64) << 32) | post[e] as u64,
                    step.wrapping_add(m << 32),
                )
            }
            None => ((self.node_key << 32) | e as u64, step),
        }
    }

    /// `body(out, first, coords)` over parts of the `n` values of an evaluation at `step`:
    /// `out` is values `first..first + out.len()` and `coords` their (element, step) of `at`.
    /// Synapse initial values over a whole projection go row by row, on several threads
    /// (ranges of rows, `par_rows`), counting multapses as they pass; other evaluations by
    /// contiguous ranges (`par_fill`).
    fn fill(&self, n: usize, step: u64, body: &FillFn<'_>) -> Vec<f64> {
        let mut out = vec![0.0; n];
        match (self.conn, self.elems) {
            (Some((row_ptr, post)), None) => {
                crate::kernels::par_rows(row_ptr, &mut out, &|i, first, part| {
                    let coords = (first..first + part.len()).scan(0u64, |m, e| {
                        *m = if e > first && post[e] == post[e - 1] {
                            *m + 1
                        } else {
                            0
                        };
                        let el = ((i as u64) << 32) | post[e] as u64;
                        Some((el, step.wrapping_add(*m << 32)))
                    });
                    body(part, first, &mut { coords })
                });
            }
            _ => par_fill(&mut out, &|first, part| {
                let len = part.len();
                body(
                    part,
                    first,
                    &mut (first..first + len).map(|k| self.at(k, step)),
                )
            }),
        }
        out
    }

    /// `g(k, element, step)` for the draws k of an evaluation of `n` elements at `step` (the
    /// coordinates of `at`).
    fn collect(
        &self,
        n: usize,
        step: u64,
        g: &(dyn Fn(usize, u64, u64) -> f64 + Sync),
    ) -> Vec<f64> {
        self.fill(n, step, &|out, first, coords| {
            for ((x, k), (el, st)) in out.iter_mut().zip(first..).zip(coords) {
                *x = g(k, el, st);
            }
        })
    }

    /// `g(k, element, step, bits)` with `bits` the 128 bits of draw 0 at each draw's
    /// coordinates, computed for two draws at a time (`Stream::bits2`: the two Philox
    /// chains overlap).
    fn collect_bits(&self, n: usize, step: u64, stream: Stream, g: &BitsFn<'_>) -> Vec<f64> {
        self.fill(n, step, &|out, first, coords| {
            let mut k = 0;
            while k + 1 < out.len() {
                let (Some(a), Some(b)) = (coords.next(), coords.next()) else {
                    return;
                };
                let [ba, bb] = stream.bits2(a, b, 0);
                out[k] = g(first + k, a.0, a.1, ba);
                out[k + 1] = g(first + k + 1, b.0, b.1, bb);
                k += 2;
            }
            if let (Some(x), Some(a)) = (out.get_mut(k), coords.next()) {
                *x = g(first + k, a.0, a.1, stream.bits(a.0, a.1, 0));
            }
        })
    }
}

/// A part's values, the index of its first and the draws' coordinates (`RngKeys::fill`).
type FillFn<'a> = dyn Fn(&mut [f64], usize, &mut dyn Iterator<Item = (u64, u64)>) + Sync + 'a;

/// A value from its index, element, step and draw 0's bits (`RngKeys::collect_bits`).
type BitsFn<'a> = dyn Fn(usize, u64, u64, [u32; 4]) -> f64 + Sync + 'a;

/// `f(first, part)` over contiguous parts of `out` (`part` = `out[first..]`), on several
/// threads when `out` is large (initial values of big populations and projections); what
/// each value gets does not depend on the split.
fn par_fill(out: &mut [f64], f: &(dyn Fn(usize, &mut [f64]) + Sync)) {
    const PER_THREAD: usize = 1 << 16;
    let n = out.len();
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get().min(8))
        .min(n / PER_THREAD);
    if threads <= 1 {
        f(0, out);
        return;
    }
    let chunk = n.div_ceil(threads);
    std::thread::scope(|scope| {
        let mut chunks = out.chunks_mut(chunk).enumerate();
        let first = chunks.next();
        for (t, part) in chunks {
            scope.spawn(move || f(t * chunk, part));
        }
        if let Some((_, part)) = first {
            f(0, part);
        }
    });
}

/// How many draws `truncnormal` makes before it gives up (NaN): an interval this far in the
/// tail of the distribution is an error in the model.
const TRUNCNORMAL_DRAWS: u32 = 1 << 12;

/// `truncnormal(mean, sd, low, high)`: draws `mean + sd * z` with the draws 0, 1, 2, ... of
/// one (element, step) until one lies in [low, high] (`bits0`: draw 0's bits); NaN when none
/// of `TRUNCNORMAL_DRAWS` does (or the interval is empty).
fn truncated_normal(
    stream: crate::rng::Stream,
    el: u64,
    step: u64,
    bits0: [u32; 4],
    [m, s, lo, hi]: [f64; 4],
) -> f64 {
    if lo.is_nan() || hi.is_nan() || lo > hi {
        return f64::NAN;
    }
    std::iter::once(stream.normal_of(bits0))
        .chain((1..TRUNCNORMAL_DRAWS).map(|d| stream.normal(el, step, d)))
        .map(|z| m + s * z)
        .find(|x| (lo..=hi).contains(x))
        .unwrap_or(f64::NAN)
}

/// Reductions and whole-population maps over a column in element order.
pub fn population_op(f: Func, x: &[f64], step: u64) -> Col {
    let n = x.len().max(1) as f64;
    match f {
        Func::Sum => Col::S(x.iter().sum()),
        Func::Mean => Col::S(x.iter().sum::<f64>() / n),
        Func::MaxOf => Col::S(x.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        Func::Norm => Col::S(x.iter().map(|v| v * v).sum::<f64>().sqrt()),
        Func::LayerNorm => {
            // As the BDH reference: biased variance, eps 1e-5, no affine parameters.
            let mean = x.iter().sum::<f64>() / n;
            let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            let inv = 1.0 / (var + 1e-5).sqrt();
            Col::V(x.iter().map(|v| (v - mean) * inv).collect())
        }
        Func::Rope => {
            // Interleaved pairs (2i, 2i+1) rotated by step * freq, freq_k = 1 / 2^16^(2 floor(k/2) / N) / 2 pi.
            let len = x.len();
            let mut out = x.to_vec();
            for p in 0..len / 2 {
                let k = 2 * p;
                let freq = 1.0 / 65536f64.powf(k as f64 / len as f64) / std::f64::consts::TAU;
                let phase = (step as f64 * freq).fract();
                let (s, c) = (std::f64::consts::TAU * phase).sin_cos();
                out[k] = x[k] * c - x[k + 1] * s;
                out[k + 1] = x[k + 1] * c + x[k] * s;
            }
            Col::V(out)
        }
        _ => unreachable!("not a population function"),
    }
}

trait Expand {
    fn expand(self, n: usize) -> Col;
}

impl Expand for Col {
    /// A per-element global (regime-indexed read gives one value) stays shared.
    fn expand(self, _n: usize) -> Col {
        match self {
            Col::V(v) if v.len() == 1 => Col::S(v[0]),
            c => c,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn par_fill_equals_the_serial_map_whatever_the_split() {
        let f = |k: usize| (k as f64).sqrt() * if k.is_multiple_of(3) { -1.0 } else { 1.0 };
        // Below, at and above one thread's share, and an uneven last chunk.
        for n in [0, 5, 1 << 16, (1 << 17) - 1, 1 << 17, 300_001] {
            let serial: Vec<f64> = (0..n).map(f).collect();
            let mut out = vec![0.0; n];
            super::par_fill(&mut out, &|first, part| {
                for (x, k) in part.iter_mut().zip(first..) {
                    *x = f(k);
                }
            });
            assert_eq!(out, serial, "n = {n}");
        }
    }

    /// Synapse keys drawn row by row on several threads (`RngKeys::collect`) are those of
    /// `RngKeys::at` for each synapse alone: (pre, post) and the multapse count in the step's
    /// high half, restarting at each row (the same post ending one row and starting the next
    /// is not a multapse). Rows of 0 to 9 synapses with runs of equal posts, 300,000 synapses
    /// (several threads' shares).
    #[test]
    fn synapse_keys_by_rows_equal_the_keys_one_at_a_time() {
        let (mut row_ptr, mut post) = (vec![0u32], Vec::new());
        let mut x = 12345u64;
        while post.len() < 300_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (x >> 60) as usize % 10;
            let mut j = 7u32;
            for _ in 0..len {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                j += ((x >> 62) as u32).saturating_sub(1);
                post.push(j);
            }
            row_ptr.push(post.len() as u32);
        }
        let keys = super::RngKeys {
            elems: None,
            conn: Some((&row_ptr, &post)),
            node_key: 3,
        };
        let code = |el: u64, st: u64| (el ^ st.rotate_left(17)) as f64;
        let rows = keys.collect(post.len(), 9, &|_, el, st| code(el, st));
        let multapses = (0..post.len())
            .filter(|&k| keys.at(k, 9).1 >= 1 << 32)
            .count();
        assert!(multapses > 10_000, "{multapses} multapses");
        for (k, v) in rows.iter().enumerate() {
            let (el, st) = keys.at(k, 9);
            assert_eq!(*v, code(el, st), "synapse {k}");
        }
    }
}
