//! The abstract syntax tree: plain data, every node carries the [`Span`] it came from.
//! Nothing here knows pest; `parse.rs` builds these values from the parse tree.

use crate::span::Span;

#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

/// A whole spec file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ast {
    pub items: Vec<Item>,
    /// Names of items that did not parse (`neuron N { … syntax error … }` gives `N`): a later
    /// "unknown cell type `N`" is a consequence of the syntax error, not news.
    pub broken: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub kind: ItemKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ItemKind {
    /// `model name`
    Model(Ident),
    /// `import "lib/lif.ng"`
    Import(StrLit),
    /// `const a = 1, b = 2 mV`: folded into code.
    Const(Vec<Binding>),
    /// `param a = 1`: runtime data, overridable without recompiling.
    Param(Vec<Binding>),
    /// `neuron LIF { ... }`, `astrocyte`, `unit`, `cell`.
    Cell(CellDecl),
    /// `synapse Exc { ... }`
    Synapse(SynapseDecl),
    /// `population E = LIF[3200] { ... }`
    Population(PopulationDecl),
    /// `project [name:] E -> (E, I) via Exc { ... }`
    Project(ProjectDecl),
    /// `switch brain { states a, b; transition [[...]]; initial a }`
    Switch(SwitchDecl),
    /// `input Drive = poisson(1000, rate = 15 Hz) [-> E.I]`
    Input(InputDecl),
    /// `record E.spikes, E.v[0..10] every 1 ms`
    Record(Vec<RecordItem>),
    /// `run { dt = 0.1 ms; duration = 1 s }`
    Run(Vec<Assign>),
}

/// `name[regime]: unit = value` in `const` and `param` declarations.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub name: Ident,
    pub regime: Option<Ident>,
    pub unit: Option<UnitExpr>,
    pub value: Expr,
    pub span: Span,
}

/// `name[regime]: unit = init` in `state` declarations; the initialiser defaults to zero.
#[derive(Debug, Clone, PartialEq)]
pub struct StateItem {
    pub name: Ident,
    pub regime: Option<Ident>,
    pub unit: Option<UnitExpr>,
    pub init: Option<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    Neuron,
    Astrocyte,
    Unit,
    Cell,
}

impl CellKind {
    pub fn keyword(self) -> &'static str {
        match self {
            CellKind::Neuron => "neuron",
            CellKind::Astrocyte => "astrocyte",
            CellKind::Unit => "unit",
            CellKind::Cell => "cell",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CellDecl {
    pub kind: CellKind,
    pub name: Ident,
    pub body: Vec<Stmt>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SynapseDecl {
    pub name: Ident,
    pub body: Vec<Stmt>,
}

/// A statement in a cell or synapse body.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    Const(Vec<Binding>),
    Param(Vec<Binding>),
    State(Vec<StateItem>),
    /// `let name = expr`: a named subexpression, substituted where it is used.
    Let {
        name: Ident,
        value: Expr,
    },
    /// `dv/dt = rhs [unless refractory]`
    Ode {
        var: Ident,
        rhs: Expr,
        unless_refractory: Option<Span>,
    },
    /// `x <- expr`: a discrete update applied once per step.
    Update {
        var: Ident,
        value: Expr,
    },
    /// `spike when cond { reset }`
    SpikeWhen {
        cond: Expr,
        reset: Vec<Assign>,
    },
    /// `spike with probability p { reset }`
    SpikeProb {
        prob: Expr,
        reset: Vec<Assign>,
    },
    /// `event name when cond { body }`
    Event {
        name: Ident,
        cond: Expr,
        body: Vec<Assign>,
    },
    /// `refractory 5 ms` or `refractory v > -20 mV`
    Refractory(Expr),
    /// `method rk4`
    Method(Ident),
    /// `on pre { ... }`, `on post { ... }`, `on step { ... }`
    On {
        trigger: Ident,
        body: Vec<Assign>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOp {
    Set,
    Add,
    Sub,
    Mul,
    Div,
}

impl AssignOp {
    pub fn symbol(self) -> &'static str {
        match self {
            AssignOp::Set => "=",
            AssignOp::Add => "+=",
            AssignOp::Sub => "-=",
            AssignOp::Mul => "*=",
            AssignOp::Div => "/=",
        }
    }
}

/// `a.b.c`
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub segments: Vec<Ident>,
    pub span: Span,
}

impl Path {
    pub fn dotted(&self) -> String {
        self.segments
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// `target op value`
#[derive(Debug, Clone, PartialEq)]
pub struct Assign {
    pub target: Path,
    pub op: AssignOp,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PopulationDecl {
    pub name: Ident,
    pub cell_type: Ident,
    pub size: Expr,
    /// `param` declarations inside the population body (extra runtime parameters).
    pub params: Vec<Binding>,
    /// `x = expr` inside the body: overrides of the cell type's parameter or initial values.
    pub overrides: Vec<Assign>,
}

/// `E` or `E[0..10]` at either end of a projection.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub name: Ident,
    /// A `Range` expression when a slice is given.
    pub slice: Option<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectDecl {
    pub name: Option<Ident>,
    pub sources: Vec<Endpoint>,
    pub targets: Vec<Endpoint>,
    pub via: Option<Ident>,
    pub body: Vec<ProjStmt>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProjStmt {
    /// `connect bernoulli(0.02)`
    Connect(Expr, Span),
    /// `delay = 1.5 ms`
    Delay(Expr, Span),
    /// `layout = csr`: the storage the projection's synapses must have.
    Layout(Ident, Span),
    /// Inline synapse code: `on pre { ... }`
    On {
        trigger: Ident,
        body: Vec<Assign>,
        span: Span,
    },
    /// `w = normal(0, 0.02)` (initial value or parameter of the synapse) or
    /// `post.Y = mean(pre.Y)` (a coupling recomputed every step).
    Assign(Assign),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SwitchDecl {
    pub name: Ident,
    pub states: Vec<Ident>,
    pub transition: Option<Expr>,
    pub initial: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InputDecl {
    pub name: Ident,
    pub source: Expr,
    pub target: Option<Path>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordItem {
    pub what: Expr,
    pub every: Option<Expr>,
    pub at_end: Option<Span>,
    pub span: Span,
}

/// A unit written after a number or on a declaration, flattened to symbols with powers:
/// `uM/s` is `[uM^1, s^-1]`; the dimensionless `1` is an empty list.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitExpr {
    pub factors: Vec<UnitFactor>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnitFactor {
    pub symbol: String,
    pub power: i32,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Number(f64),
    /// `20 ms`: the number as written and its unit.
    Quantity {
        value: f64,
        unit: UnitExpr,
    },
    Bool(bool),
    Str(String),
    Name(String),
    /// `[a, b, c]`, also nested for matrices.
    Array(Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call {
        callee: Box<Expr>,
        args: Vec<Arg>,
    },
    Index {
        base: Box<Expr>,
        index: Box<Expr>,
    },
    /// `a..b`, `..b`, `a..`; only inside brackets.
    Range {
        start: Option<Box<Expr>>,
        end: Option<Box<Expr>>,
    },
    Field {
        base: Box<Expr>,
        field: Ident,
    },
}

impl Expr {
    /// The callee name if this is a call of a plain name: `bernoulli(0.02)` -> `bernoulli`.
    pub fn call_name(&self) -> Option<(&str, &[Arg])> {
        match &self.kind {
            ExprKind::Call { callee, args } => match &callee.kind {
                ExprKind::Name(n) => Some((n.as_str(), args.as_slice())),
                _ => None,
            },
            _ => None,
        }
    }
}
