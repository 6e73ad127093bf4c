//! The model IR: typed handles into arenas. This module's documentation is the language's
//! semantics; every backend implements exactly this.
//!
//! # Elements
//! A *population* is `size` cells of one cell type. A *projection* is a set of synapses from
//! the elements of its pre endpoints to those of its post endpoints; endpoints are populations
//! or other projections (so a modulator population can project onto synapses). All endpoints at
//! one end share one element type, and their elements are numbered consecutively in the order
//! written (`E -> (E, I)` numbers post elements `0..|E|` then `|E|..|E|+|I|`).
//!
//! # One step (time `t` to `t + dt`)
//! 1. **Regimes**: every `switch` draws its next state from its transition matrix (the first
//!    step keeps the initial state).
//! 2. **Delayed couplings**: couplings of projections with a delay read the state at the end of
//!    the previous step.
//! 3. **Update**, node by node in the update order (a topological order of the zero-delay
//!    coupling / graded edges): first the node's incoming zero-delay couplings are recomputed
//!    (reading sources already updated in this step), then inputs that set its variables, then
//!    its lets are evaluated, its ODEs integrated with the chosen method (variables marked
//!    `unless refractory` are held while refractory), then its discrete updates `x <- e` are
//!    applied in order, each seeing the results of the previous ones. A zero-delay coupling is
//!    computed once, before the first of its targets, and writes all of them. Projections with
//!    synapse dynamics come after the populations, so a coupling that reads synapse state
//!    sees the value of the previous step.
//!    Statements run over all elements at once, one statement after the other; `on pre`
//!    synapses run in ascending synapse (= source) order.
//! 4. **Events**: every event condition is evaluated on the updated state (a cell that is
//!    refractory does not spike); `spike with probability p` draws once per cell and step.
//! 5. **Synaptic events**: `on pre` code runs for every synapse of every event due now
//!    (delayed events enqueued earlier, by the step that sent them, then zero-delay events of
//!    this step; the events of one sending step in ascending source-element order; split by
//!    post element between threads, each post element receives its events in that order); then
//!    `on post`; then every synapse's `on step` code. An `on pre`
//!    effect of a zero-delay spike therefore acts on its target from the next step.
//! 6. **Resets**: the event's statements run and the refractory period starts.
//! 7. **Monitors** record.
//!
//! # Randomness
//! Every random draw is a pure function of (seed, stream, element, step, draw number). The
//! stream names the expression that draws by where it is written (`Model::random_streams`);
//! the element is the node's key hash (a population's name; a projection's `stream_key`, its
//! endpoints and ordinal, so that naming a projection changes nothing) and the element index
//! (initial values of synapse
//! variables use the (pre, post) pair instead, so projections of one synapse type between
//! ends of equal size start from the same values; the m-th repeat of a pair draws at step
//! `m * 2^32` instead). Results do not depend on thread count or backend.
//!
//! # Units
//! All constants are in SI base units. Dimensions live in the validation side table and are
//! gone after checking.

use std::fmt;
use std::marker::PhantomData;

use neurograph_grammar::{AssignOp, BinOp, CellKind, Span, UnOp};

use crate::units::Dim;

/// A `u32` index into an [`Arena<T>`].
pub struct Handle<T> {
    index: u32,
    _marker: PhantomData<fn() -> T>,
}

impl<T> Handle<T> {
    pub fn new(index: usize) -> Self {
        Handle {
            index: index as u32,
            _marker: PhantomData,
        }
    }

    pub fn index(self) -> usize {
        self.index as usize
    }
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Handle<T> {}
impl<T> PartialEq for Handle<T> {
    fn eq(&self, o: &Self) -> bool {
        self.index == o.index
    }
}
impl<T> Eq for Handle<T> {}
impl<T> std::hash::Hash for Handle<T> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.index.hash(h)
    }
}
impl<T> PartialOrd for Handle<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Handle<T> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.index.cmp(&o.index)
    }
}

/// Short prefixes so handles print like `pop3`, `proj1`, `e12`.
pub trait Named {
    const PREFIX: &'static str;
}

impl<T: Named> fmt::Display for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", T::PREFIX, self.index)
    }
}

impl<T: Named> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// A growable vector addressed by [`Handle`]s.
pub struct Arena<T> {
    items: Vec<T>,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Arena { items: Vec::new() }
    }
}

impl<T: fmt::Debug> fmt::Debug for Arena<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.items.iter()).finish()
    }
}

impl<T> Arena<T> {
    pub fn push(&mut self, value: T) -> Handle<T> {
        self.items.push(value);
        Handle::new(self.items.len() - 1)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Handle<T>, &T)> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, t)| (Handle::new(i), t))
    }

    pub fn handles(&self) -> impl Iterator<Item = Handle<T>> {
        (0..self.items.len()).map(Handle::new)
    }
}

impl<T> std::ops::Index<Handle<T>> for Arena<T> {
    type Output = T;
    fn index(&self, h: Handle<T>) -> &T {
        &self.items[h.index()]
    }
}

impl<T> std::ops::IndexMut<Handle<T>> for Arena<T> {
    fn index_mut(&mut self, h: Handle<T>) -> &mut T {
        &mut self.items[h.index()]
    }
}

impl Named for Variable {
    const PREFIX: &'static str = "var";
}
impl Named for CellType {
    const PREFIX: &'static str = "cell";
}
impl Named for SynapseType {
    const PREFIX: &'static str = "syn";
}
impl Named for Population {
    const PREFIX: &'static str = "pop";
}
impl Named for Projection {
    const PREFIX: &'static str = "proj";
}
impl Named for Regime {
    const PREFIX: &'static str = "regime";
}
impl Named for Input {
    const PREFIX: &'static str = "input";
}
impl Named for Expr {
    const PREFIX: &'static str = "e";
}

/// The whole lowered model.
#[derive(Debug, Default)]
pub struct Model {
    pub name: String,
    pub variables: Arena<Variable>,
    pub cell_types: Arena<CellType>,
    pub synapse_types: Arena<SynapseType>,
    pub populations: Arena<Population>,
    pub projections: Arena<Projection>,
    pub regimes: Arena<Regime>,
    pub inputs: Arena<Input>,
    pub records: Vec<Record>,
    pub exprs: Arena<Expr>,
    /// Model-level `param`s and `const`s, in declaration order.
    pub globals: Vec<Handle<Variable>>,
    pub run: RunSettings,
    /// The random stream of every random draw expression, derived from where it is written
    /// (item, function, occurrence), so editing other parts of a spec keeps its numbers.
    pub random_streams: std::collections::HashMap<Handle<Expr>, u32>,
}

/// Where a variable is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Cell(Handle<CellType>),
    Synapse(Handle<SynapseType>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarKind {
    /// Folded into code; references become constants.
    Const,
    /// Runtime data: one value (global) or one per element, overridable without recompiling.
    Param,
    /// Per-element state.
    State,
}

impl VarKind {
    pub fn keyword(self) -> &'static str {
        match self {
            VarKind::Const => "const",
            VarKind::Param => "param",
            VarKind::State => "state",
        }
    }
}

#[derive(Debug)]
pub struct Variable {
    pub name: String,
    pub scope: Scope,
    pub kind: VarKind,
    pub dim: Dim,
    /// `w[brain]`: one value per state of this regime.
    pub regime: Option<Handle<Regime>>,
    /// Initial value (state) or default value (param, const).
    pub init: Handle<Expr>,
    pub span: Span,
}

/// Which element a variable reference reads in synapse code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The element that runs the code (cell, synapse) or a global.
    Own,
    Pre,
    Post,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// Simulated time at the start of the step, seconds.
    T,
    /// The step size, seconds.
    Dt,
    /// Step counter.
    Step,
    /// Element index (cells) or pre element index (synapses, connectivity).
    I,
    /// Post element index (synapses, connectivity).
    J,
    /// Number of elements of the own population / endpoint.
    N,
}

impl Builtin {
    pub fn name(self) -> &'static str {
        match self {
            Builtin::T => "t",
            Builtin::Dt => "dt",
            Builtin::Step => "step",
            Builtin::I => "i",
            Builtin::J => "j",
            Builtin::N => "N",
        }
    }
}

/// Functions callable in expressions. See `funcs.rs` for arities and unit rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    Exp,
    Log,
    Log10,
    Expm1,
    Exprel,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Sqrt,
    Abs,
    Sign,
    Heaviside,
    Floor,
    Ceil,
    Round,
    Min,
    Max,
    Clip,
    Relu,
    LeakyRelu,
    /// `if(cond, a, b)`: `a` where the condition holds, else `b` (both are evaluated).
    If,
    // Random draws (counter-based).
    Rand,
    Uniform,
    Randn,
    Normal,
    /// `truncnormal(mu, sigma, low[, high])`: a normal draw redrawn until it lies in
    /// [low, high] (NEST's `redraw`).
    TruncNormal,
    Poisson,
    Bernoulli,
    // Across the whole population of the own element type.
    Sum,
    Mean,
    MaxOf,
    Norm,
    LayerNorm,
    Rope,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Const(f64),
    Bool(bool),
    Var {
        var: Handle<Variable>,
        side: Side,
    },
    Builtin(Builtin),
    /// The current state index of a regime.
    RegimeState(Handle<Regime>),
    Unary(UnOp, Handle<Expr>),
    Binary(BinOp, Handle<Expr>, Handle<Expr>),
    Call(Func, Vec<Handle<Expr>>),
    /// Per-element values from a `.npy` / `.safetensors` file (path relative to the spec).
    Load(LoadSource),
    /// 1 for the element whose index is the current token of a token file, else 0. Past
    /// the file's end it starts again from the first token when `cycle`, else the run stops
    /// with an error.
    Token {
        path: String,
        vocab: u32,
        cycle: bool,
        /// The token that starts a document: where it is fed, every state variable returns
        /// to its initial value and positions (`rope`) count from that step.
        document: Option<u32>,
    },
    /// A constant array (transition matrices, per-regime parameter values).
    Array(Vec<Handle<Expr>>),
}

/// What `load(...)` reads: a file (path relative to the spec), for `.safetensors` the tensor
/// by name, and leading indices that each pick one entry of the first remaining axis
/// (`load("m.safetensors", "encoder")[h]`: head `h`'s matrix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadSource {
    pub path: String,
    pub tensor: Option<String>,
    pub index: Vec<u64>,
    /// The whole call as written (`load("m.safetensors", "encoder")[1]`): the name of the
    /// loaded array in messages and the key of its values.
    pub key: String,
}

impl LoadSource {
    pub fn new(path: &str, tensor: Option<&str>, index: Vec<u64>) -> LoadSource {
        let mut key = match tensor {
            Some(t) => format!("load(\"{path}\", \"{t}\")"),
            None => format!("load(\"{path}\")"),
        };
        for i in &index {
            key.push_str(&format!("[{i}]"));
        }
        LoadSource {
            path: path.to_string(),
            tensor: tensor.map(String::from),
            index,
            key,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Exact,
    Euler,
    ExponentialEuler,
    Rk4,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Euler => "euler",
            Method::ExponentialEuler => "exponential_euler",
            Method::Rk4 => "rk4",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "exact" | "linear" => Method::Exact,
            "euler" => Method::Euler,
            "exponential_euler" => Method::ExponentialEuler,
            "rk4" => Method::Rk4,
            _ => return None,
        })
    }

    pub const ALL: [&'static str; 4] = ["exact", "euler", "exponential_euler", "rk4"];
}

#[derive(Debug, Clone)]
pub struct Ode {
    pub var: Handle<Variable>,
    pub rhs: Handle<Expr>,
    pub unless_refractory: bool,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Update {
    pub var: Handle<Variable>,
    pub value: Handle<Expr>,
    pub span: Span,
}

/// `target op value` in event, reset and synapse code.
#[derive(Debug, Clone)]
pub struct Statement {
    pub var: Handle<Variable>,
    pub side: Side,
    pub op: AssignOp,
    pub value: Handle<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Trigger {
    When(Handle<Expr>),
    Probability(Handle<Expr>),
}

#[derive(Debug, Clone)]
pub struct Event {
    /// `spike` for spike events, else the event's name.
    pub name: String,
    pub trigger: Trigger,
    pub body: Vec<Statement>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Refractory {
    Duration(Handle<Expr>),
    Condition(Handle<Expr>),
}

/// Dynamics shared by cell and synapse types.
#[derive(Debug, Default, Clone)]
pub struct Dynamics {
    pub lets: Vec<(String, Handle<Expr>)>,
    pub odes: Vec<Ode>,
    pub updates: Vec<Update>,
    /// Explicitly requested method; the chosen one is in the validation info.
    pub method: Option<Method>,
}

#[derive(Debug)]
pub struct CellType {
    pub name: String,
    pub kind: CellKind,
    pub params: Vec<Handle<Variable>>,
    pub states: Vec<Handle<Variable>>,
    pub dynamics: Dynamics,
    pub events: Vec<Event>,
    pub refractory: Option<Refractory>,
    /// The state synapse code reads as `pre.lastspike` / `post.lastspike`, created on first
    /// use; the runtime sets it to `t` when the cell spikes.
    pub lastspike: Option<Handle<Variable>>,
    pub span: Span,
}

#[derive(Debug)]
pub struct SynapseType {
    pub name: String,
    /// False for the anonymous type of a projection without `via`.
    pub declared: bool,
    pub params: Vec<Handle<Variable>>,
    pub states: Vec<Handle<Variable>>,
    pub span: Span,
}

#[derive(Debug)]
pub struct Population {
    pub name: String,
    pub cell_type: Handle<CellType>,
    pub size: u32,
    /// Per-population values of the cell type's params and initial states.
    pub overrides: Vec<(Handle<Variable>, Handle<Expr>)>,
    /// Set when the population was created by an `input` item.
    pub input: Option<Handle<Input>>,
    pub span: Span,
}

/// Something whose elements can be the end of a projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    Population(Handle<Population>),
    Projection(Handle<Projection>),
}

/// Element type of a node: what `pre.x` / `post.x` resolve against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    Cell(Handle<CellType>),
    Synapse(Handle<SynapseType>),
}

/// A part of one end of a projection: `E` or `E[0..100]` (half-open element range).
#[derive(Debug, Clone, Copy)]
pub struct EndpointPart {
    pub node: Node,
    pub start: u32,
    pub end: u32,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub parts: Vec<EndpointPart>,
    pub element: ElementType,
}

impl Endpoint {
    pub fn size(&self) -> u32 {
        self.parts.iter().map(|p| p.end - p.start).sum()
    }
}

#[derive(Debug, Clone)]
pub enum ConnectRule {
    /// Each (i, j) independently with probability `p`, an expression that may use i and j;
    /// a condition connects where it is true.
    Bernoulli(Handle<Expr>),
    FixedIndegree(u32),
    FixedOutdegree(u32),
    /// This many (pre, post) pairs, each uniform over all pairs (multapses allowed; NEST's
    /// `fixed_total_number`).
    FixedTotal(u32),
    AllToAll,
    OneToOne,
    /// Explicit (pre, post) index pairs from a file.
    File(String),
}

#[derive(Debug, Clone)]
pub struct Connect {
    pub rule: ConnectRule,
    pub autapses: bool,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Mean,
}

/// `post.Y = sum(expr)`: recomputed every step from the synapses onto each post element.
#[derive(Debug, Clone)]
pub struct Coupling {
    pub target: Handle<Variable>,
    pub reduce: Reduce,
    pub value: Handle<Expr>,
    pub span: Span,
}

/// Synapse code instantiated for one projection (pre/post resolved against its endpoints).
#[derive(Debug, Default, Clone)]
pub struct SynapseCode {
    pub dynamics: Dynamics,
    /// Equations taken out of `dynamics` by `event_driven::select`: each variable decays on
    /// its own (`dx/dt = a x`, `a` a run constant) and is read only by `on pre` / `on post`
    /// code and records, so the runtime advances it lazily, per synapse, when an event or a
    /// record touches it, instead of every step.
    pub event_driven: Vec<Ode>,
    pub on_pre: Vec<Statement>,
    pub on_post: Vec<Statement>,
    pub on_step: Vec<Statement>,
}

/// How a projection's synapses are stored. `Auto` lets the set-up choose (today: CSR, with
/// per-synapse columns that nothing writes shared with an earlier projection of the same
/// synapse type whose values are the same); a forced layout gives the same trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    #[default]
    Auto,
    /// CSR with every per-synapse column the projection's own.
    Csr,
}

impl Layout {
    /// The names `layout = ...` takes.
    pub const NAMES: [(&'static str, Layout); 2] = [("auto", Layout::Auto), ("csr", Layout::Csr)];

    pub fn name(self) -> &'static str {
        Layout::NAMES
            .iter()
            .find(|(_, l)| *l == self)
            .map_or("auto", |(n, _)| n)
    }
}

#[derive(Debug)]
pub struct Projection {
    pub name: String,
    /// What the projection's random streams are keyed by (connect rule, element keys, draws in
    /// its code): its endpoints as written (`E->E,I`), with `#k` for the k-th projection
    /// between the same endpoints. Not its name, so that naming a projection (to record its
    /// synapses) leaves the network unchanged.
    pub stream_key: String,
    pub pre: Endpoint,
    pub post: Endpoint,
    /// The `via` type, or an anonymous type holding the projection's inline code.
    pub synapse: Handle<SynapseType>,
    pub code: SynapseCode,
    pub connect: Connect,
    /// Transmission delay (time); `None` is zero.
    pub delay: Option<Handle<Expr>>,
    /// The storage its synapses must have (`layout = ...`), or `Auto`.
    pub layout: Layout,
    /// Initial values of synapse variables set by the projection.
    pub inits: Vec<(Handle<Variable>, Handle<Expr>)>,
    pub couplings: Vec<Coupling>,
    pub span: Span,
}

impl Projection {
    /// A projection orders its endpoints within a step when it moves values every step
    /// (couplings or `on step` code) without delay.
    pub fn is_zero_delay_graded(&self) -> bool {
        self.delay.is_none() && (!self.couplings.is_empty() || !self.code.on_step.is_empty())
    }
}

#[derive(Debug)]
pub struct Regime {
    pub name: String,
    pub states: Vec<String>,
    /// Row-stochastic, `states.len()` square.
    pub transition: Vec<Vec<f64>>,
    pub initial: Option<u32>,
    pub span: Span,
}

#[derive(Debug)]
pub enum InputKind {
    /// A population of independent Poisson spike sources.
    Poisson { population: Handle<Population> },
    /// Sets `population.var` every step to `value` (may depend on t).
    Current {
        population: Handle<Population>,
        var: Handle<Variable>,
        value: Handle<Expr>,
    },
    /// A one-hot population whose active element is the current token.
    Tokens {
        population: Handle<Population>,
        path: String,
    },
    /// A population that replays spike times from a file.
    SpikeFile {
        population: Handle<Population>,
        path: String,
    },
    /// Brian2's `PoissonInput`: `n` independent Poisson sources onto every element of
    /// `population`, summed: each step `var += weight * Binomial(n, rate * dt)`, in the slot of
    /// synaptic delivery (after spike detection, before resets), with no population of its own.
    PoissonDrive {
        population: Handle<Population>,
        var: Handle<Variable>,
        n: u32,
        rate: Handle<Expr>,
        weight: Handle<Expr>,
    },
}

#[derive(Debug)]
pub struct Input {
    pub name: String,
    pub kind: InputKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum RecordWhat {
    /// Event times and indices (`E.spikes`, `Astro.glio`).
    Events {
        population: Handle<Population>,
        event: String,
    },
    /// A variable of a population or projection, optionally for an element range.
    State {
        node: Node,
        var: Handle<Variable>,
        range: Option<(u32, u32)>,
    },
    /// Population rate per step.
    Rate { population: Handle<Population> },
    /// The state sequence of a regime.
    Regime(Handle<Regime>),
    /// A projection's synapses as (pre, post) index pairs (`W.edges`), written once with the
    /// trace: connectivity does not change during a run.
    Edges { projection: Handle<Projection> },
    /// A `let` of a population's cell type, evaluated on the state at each sample.
    Let {
        population: Handle<Population>,
        name: String,
        expr: Handle<Expr>,
        dim: Dim,
        range: Option<(u32, u32)>,
    },
}

#[derive(Debug, Clone)]
pub struct Record {
    pub what: RecordWhat,
    /// Sampling interval in seconds; `None` records every step.
    pub every: Option<f64>,
    pub at_end: bool,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    F64,
}

#[derive(Debug, Clone)]
pub struct RunSettings {
    pub dt: f64,
    pub duration: f64,
    pub seed: u64,
    pub precision: Precision,
    /// Let the compiler make synaptic decays event-driven (`run { event_driven = false }`
    /// keeps every equation clock-driven).
    pub event_driven: bool,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            dt: 1e-4,
            duration: 1.0,
            seed: 1,
            precision: Precision::F64,
            event_driven: true,
        }
    }
}

impl Model {
    /// Whether a population's cells can spike: its cell type has a `spike` event, or a spike
    /// file feeds it. Rate units, GLM units and astrocytes without one cannot.
    pub fn can_spike(&self, p: &Population) -> bool {
        self.spike_event(p).is_some()
    }

    /// The index of a population's spike event among its cell type's events: its `spike`
    /// event, or event 0 (the replayed spikes) for a population fed by a spike file.
    pub fn spike_event(&self, p: &Population) -> Option<usize> {
        let events = &self.cell_types[p.cell_type].events;
        events.iter().position(|e| e.name == "spike").or_else(|| {
            p.input
                .filter(|&i| matches!(self.inputs[i].kind, InputKind::SpikeFile { .. }))
                .map(|_| 0)
        })
    }

    pub fn node_name(&self, n: Node) -> &str {
        match n {
            Node::Population(p) => &self.populations[p].name,
            Node::Projection(p) => &self.projections[p].name,
        }
    }

    pub fn node_size(&self, n: Node) -> Option<u32> {
        match n {
            Node::Population(p) => Some(self.populations[p].size),
            // Synapse counts are known only after connectivity is built.
            Node::Projection(_) => None,
        }
    }

    pub fn element_type(&self, n: Node) -> ElementType {
        match n {
            Node::Population(p) => ElementType::Cell(self.populations[p].cell_type),
            Node::Projection(p) => ElementType::Synapse(self.projections[p].synapse),
        }
    }

    /// Params and states of an element type, params first.
    pub fn element_vars(&self, e: ElementType) -> Vec<Handle<Variable>> {
        match e {
            ElementType::Cell(c) => {
                let ct = &self.cell_types[c];
                ct.params.iter().chain(&ct.states).copied().collect()
            }
            ElementType::Synapse(s) => {
                let st = &self.synapse_types[s];
                st.params.iter().chain(&st.states).copied().collect()
            }
        }
    }
}
