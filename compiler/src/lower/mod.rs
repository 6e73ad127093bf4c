//! AST -> IR: the name index (one namespace for all items), lowering of every item, and the
//! checks that need names and units. Expression lowering is in `expr.rs`.
//!
//! Items are lowered in dependency order, not file order: run settings (dt is needed to fold
//! `dt`), regimes, globals, cell and synapse types, populations and inputs, projections,
//! records. Every check pushes a located diagnostic and lowering goes on, so one run reports
//! every error it can find.

mod expr;

use std::collections::{HashMap, HashSet};

use neurograph_grammar::{
    self as ast, AssignOp, Diagnostic, ExprKind, ItemKind, ProjStmt, Span, StmtKind,
};

use expr::Ctx;
pub use expr::{
    connect_stream, const_eval, const_eval_with, eval_pure, event_stream, exprel, named_stream,
    pow_f64, regime_stream, sigmoid, stable_hash, Ty, VarValue,
};

use crate::funcs;
use crate::ir::*;
use crate::units::Dim;
use crate::Loader;

/// A variable declaration as written: `kind name[regime]: unit = value`.
struct VarDecl<'x> {
    name: &'x ast::Ident,
    regime: &'x Option<ast::Ident>,
    unit: &'x Option<ast::UnitExpr>,
    value: Option<&'x ast::Expr>,
    kind: VarKind,
}

/// What a model-level name refers to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GlobalName {
    Var(Handle<Variable>),
    Cell(Handle<CellType>),
    Synapse(Handle<SynapseType>),
    Population(Handle<Population>),
    Projection(Handle<Projection>),
    Regime(Handle<Regime>),
    RegimeLabel(u32),
    Input,
}

impl GlobalName {
    fn describe(self) -> &'static str {
        match self {
            GlobalName::Var(_) => "a parameter",
            GlobalName::Cell(_) => "a cell type",
            GlobalName::Synapse(_) => "a synapse type",
            GlobalName::Population(_) => "a population",
            GlobalName::Projection(_) => "a projection",
            GlobalName::Regime(_) => "a regime",
            GlobalName::RegimeLabel(_) => "a regime state",
            GlobalName::Input => "an input",
        }
    }
}

pub(crate) struct Lowerer<'a> {
    pub model: Model,
    /// Type of every expression, indexed like `model.exprs`.
    pub types: Vec<Ty>,
    /// Depth of every expression (a leaf is 1), indexed like `model.exprs`.
    depths: Vec<u32>,
    /// How many projections were declared between the same endpoints (for `stream_key`).
    projection_ordinals: HashMap<String, u32>,
    /// Names whose error is already reported, so that using them reports nothing more:
    /// model-level `const` / `param` names defined in a cycle, items that did not parse.
    reported_names: HashSet<String>,
    /// How many "did you mean" searches were made (they stop after a few hundred errors).
    pub(crate) suggestions: u32,
    pub diags: Vec<Diagnostic>,
    pub names: HashMap<String, (GlobalName, Span)>,
    const_values: HashMap<Handle<Variable>, f64>,
    /// Chosen integration method per cell type and per projection.
    pub cell_methods: HashMap<Handle<CellType>, Method>,
    pub projection_methods: HashMap<Handle<Projection>, Method>,
    loader: &'a dyn Loader,
    /// Names the place random draws are lowered in, for stable random streams.
    pub(crate) stream_item: String,
    pub(crate) stream_counts: HashMap<String, u32>,
    synapse_bodies: HashMap<Handle<SynapseType>, &'a [ast::Stmt]>,
    used_synapses: HashSet<Handle<SynapseType>>,
}

/// Lower the items of a spec (the root file's and its imports', in order).
pub(crate) fn lower<'a>(
    items: &[&'a ast::Item],
    broken: &[String],
    default_name: &str,
    loader: &'a dyn Loader,
) -> Lowerer<'a> {
    let mut l = Lowerer {
        model: Model::default(),
        types: Vec::new(),
        depths: Vec::new(),
        reported_names: broken.iter().cloned().collect(),
        projection_ordinals: HashMap::new(),
        suggestions: 0,
        diags: Vec::new(),
        names: HashMap::new(),
        const_values: HashMap::new(),
        cell_methods: HashMap::new(),
        projection_methods: HashMap::new(),
        loader,
        stream_item: String::new(),
        stream_counts: HashMap::new(),
        synapse_bodies: HashMap::new(),
        used_synapses: HashSet::new(),
    };
    l.model.name = default_name.to_string();
    let of = |pred: fn(&ItemKind) -> bool| items.iter().copied().filter(move |i| pred(&i.kind));

    let mut model_decl: Option<&ast::Ident> = None;
    for it in of(|k| matches!(k, ItemKind::Model(_))) {
        let ItemKind::Model(name) = &it.kind else {
            unreachable!()
        };
        match model_decl {
            Some(first) => l.diags.push(
                Diagnostic::error(name.span, "a spec has one `model` line")
                    .with_label("second model name")
                    .with_secondary(first.span, "first given here"),
            ),
            None => {
                model_decl = Some(name);
                l.model.name = name.name.clone();
            }
        }
    }
    let runs: Vec<_> = of(|k| matches!(k, ItemKind::Run(_))).collect();
    for (k, it) in runs.iter().enumerate() {
        let ItemKind::Run(body) = &it.kind else {
            unreachable!()
        };
        if k > 0 {
            l.diags.push(
                Diagnostic::error(it.span, "a spec has one `run` block")
                    .with_label("second run block")
                    .with_secondary(runs[0].span, "first run block"),
            );
            continue;
        }
        l.run_block(body, true);
    }
    for it in of(|k| matches!(k, ItemKind::Switch(_))) {
        let ItemKind::Switch(s) = &it.kind else {
            unreachable!()
        };
        l.switch(s, it.span);
    }
    let mut globals = Vec::new();
    for it in of(|k| matches!(k, ItemKind::Const(_) | ItemKind::Param(_))) {
        let (ItemKind::Const(bs) | ItemKind::Param(bs)) = &it.kind else {
            unreachable!()
        };
        let kind = if matches!(it.kind, ItemKind::Const(_)) {
            VarKind::Const
        } else {
            VarKind::Param
        };
        globals.extend(bs.iter().map(|b| (b, kind)));
    }
    // In dependency order (file order where it does not matter); cycles are reported.
    let (order, cyclic) = global_order(&globals);
    for (members, d) in cyclic {
        l.diags.push(d);
        for k in members {
            l.reported_names.insert(globals[k].0.name.name.clone());
        }
    }
    for k in order {
        let (b, kind) = globals[k];
        l.global_binding(b, kind);
    }
    if let Some(first) = runs.first() {
        if let ItemKind::Run(body) = &first.kind {
            l.run_block(body, false);
        }
    }
    // Declare all type names first so that order in the file does not matter.
    let mut cells = Vec::new();
    for it in of(|k| matches!(k, ItemKind::Cell(_))) {
        let ItemKind::Cell(c) = &it.kind else {
            unreachable!()
        };
        let h = l.model.cell_types.push(CellType {
            name: c.name.name.clone(),
            kind: c.kind,
            params: Vec::new(),
            states: Vec::new(),
            dynamics: Dynamics::default(),
            events: Vec::new(),
            refractory: None,
            lastspike: None,
            span: c.name.span,
        });
        l.declare(&c.name, GlobalName::Cell(h));
        cells.push((h, c));
    }
    let mut synapses = Vec::new();
    for it in of(|k| matches!(k, ItemKind::Synapse(_))) {
        let ItemKind::Synapse(s) = &it.kind else {
            unreachable!()
        };
        let h = l.model.synapse_types.push(SynapseType {
            name: s.name.name.clone(),
            declared: true,
            params: Vec::new(),
            states: Vec::new(),
            span: s.name.span,
        });
        l.declare(&s.name, GlobalName::Synapse(h));
        l.synapse_bodies.insert(h, &s.body);
        synapses.push((h, s));
    }
    for (h, c) in &cells {
        l.cell_body(*h, c);
    }
    for (h, s) in &synapses {
        l.synapse_vars(*h, s);
    }
    // Populations and the inputs that are populations, in file order; then the inputs into a
    // population's variable (`current(...) -> E.I`), which may come before `E` in the file.
    for it in items {
        match &it.kind {
            ItemKind::Population(p) => l.population(p, it.span),
            ItemKind::Input(i) if i.target.is_none() => l.input(i, it.span),
            _ => {}
        }
    }
    for it in items {
        if let ItemKind::Input(i) = &it.kind {
            if i.target.is_some() {
                l.input(i, it.span);
            }
        }
    }
    // Projections: names first (endpoints may name projections declared later).
    let projs: Vec<_> = of(|k| matches!(k, ItemKind::Project(_))).collect();
    let mut proj_handles = Vec::new();
    for it in &projs {
        let ItemKind::Project(p) = &it.kind else {
            unreachable!()
        };
        proj_handles.push(l.declare_projection(p, it.span));
    }
    for (it, h) in projs.iter().zip(&proj_handles) {
        let ItemKind::Project(p) = &it.kind else {
            unreachable!()
        };
        if let Some(h) = h {
            l.projection(*h, p);
        }
    }
    for it in of(|k| matches!(k, ItemKind::Record(_))) {
        let ItemKind::Record(rs) = &it.kind else {
            unreachable!()
        };
        for r in rs {
            l.record(r);
        }
    }
    for (h, s) in &synapses {
        if !l.used_synapses.contains(h) {
            l.diags.push(
                Diagnostic::warning(
                    s.name.span,
                    format!("synapse type `{}` is never used", s.name.name),
                )
                .with_label("no projection uses it")
                .with_help(format!(
                    "use it with `project A -> B via {} {{ ... }}`",
                    s.name.name
                )),
            );
        }
    }
    l
}

/// The order in which to lower model-level `const` and `param` bindings: every binding after
/// the bindings its value names, otherwise in file order (Kahn's algorithm taking the earliest
/// ready binding, iterative so that long chains are fine). Bindings in or behind a cycle come
/// last, in file order; each cycle is returned with its members and a diagnostic.
#[allow(clippy::type_complexity)]
fn global_order(
    globals: &[(&ast::Binding, VarKind)],
) -> (Vec<usize>, Vec<(Vec<usize>, Diagnostic)>) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (k, (b, _)) in globals.iter().enumerate() {
        index.entry(b.name.name.as_str()).or_insert(k);
    }
    // deps[k]: the bindings k names (each once); users[d]: the bindings that name d.
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); globals.len()];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); globals.len()];
    for (k, (b, _)) in globals.iter().enumerate() {
        let mut stack = vec![&b.value];
        let mut seen = HashSet::new();
        while let Some(e) = stack.pop() {
            match &e.kind {
                ExprKind::Name(n) => {
                    if let Some(&d) = index.get(n.as_str()) {
                        if seen.insert(d) {
                            deps[k].push(d);
                            users[d].push(k);
                        }
                    }
                }
                ExprKind::Array(xs) => stack.extend(xs),
                ExprKind::Unary(_, a) => stack.push(a),
                ExprKind::Binary(_, a, c) => stack.extend([&**a, &**c]),
                ExprKind::Call { callee, args } => {
                    stack.push(callee);
                    stack.extend(args.iter().map(|a| &a.value));
                }
                ExprKind::Index { base, index } => stack.extend([&**base, &**index]),
                ExprKind::Range { start, end } => {
                    stack.extend(start.iter().chain(end).map(|b| &**b))
                }
                ExprKind::Field { base, .. } => stack.push(base),
                _ => {}
            }
        }
    }
    let mut missing: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut ready: BinaryHeap<Reverse<usize>> = (0..globals.len())
        .filter(|&k| missing[k] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(globals.len());
    while let Some(Reverse(k)) = ready.pop() {
        order.push(k);
        for &u in &users[k] {
            missing[u] -= 1;
            if missing[u] == 0 {
                ready.push(Reverse(u));
            }
        }
    }
    let mut cycles = Vec::new();
    if order.len() < globals.len() {
        let mut done = vec![false; globals.len()];
        for &k in &order {
            done[k] = true;
        }
        let blocked: Vec<usize> = (0..globals.len()).filter(|&k| !done[k]).collect();
        let mut in_cycle = vec![false; globals.len()];
        for &start in &blocked {
            if in_cycle[start] {
                continue;
            }
            // Follow unfinished dependencies until one repeats: that is a cycle.
            let mut path = vec![start];
            let mut pos: HashMap<usize, usize> = HashMap::from([(start, 0)]);
            let cycle = loop {
                let at = *path.last().unwrap();
                let Some(&next) = deps[at].iter().find(|&&d| !done[d]) else {
                    break None;
                };
                if in_cycle[next] {
                    break None; // behind a cycle already reported
                }
                if let Some(&p) = pos.get(&next) {
                    break Some(path[p..].to_vec());
                }
                pos.insert(next, path.len());
                path.push(next);
            };
            let Some(mut members) = cycle else { continue };
            members.sort_unstable();
            for &m in &members {
                in_cycle[m] = true;
            }
            let first = globals[members[0]].0;
            let names: Vec<String> = members
                .iter()
                .map(|&m| format!("`{}`", globals[m].0.name.name))
                .collect();
            let message = if members.len() == 1 {
                format!("`{}` is defined in terms of itself", first.name.name)
            } else {
                format!(
                    "`{}` is defined in terms of itself, through {}",
                    first.name.name,
                    names[1..].join(", ")
                )
            };
            let mut d = Diagnostic::error(first.name.span, message)
                .with_label("its value needs its own value")
                .with_help("give one of them a value that does not depend on the others");
            for &m in &members[1..] {
                d = d.with_secondary(globals[m].0.name.span, "part of the cycle");
            }
            cycles.push((members, d));
        }
        order.extend(blocked);
    }
    (order, cycles)
}

impl<'a> Lowerer<'a> {
    /// Add a model-level name; report a duplicate with both spans.
    fn declare(&mut self, id: &ast::Ident, g: GlobalName) -> bool {
        if let Some((prev, prev_span)) = self.names.get(&id.name) {
            self.diags.push(
                Diagnostic::error(id.span, format!("`{}` is defined twice", id.name))
                    .with_label("second definition")
                    .with_secondary(
                        *prev_span,
                        format!("first defined here as {}", prev.describe()),
                    )
                    .with_help("every item in a model needs its own name"),
            );
            return false;
        }
        self.names.insert(id.name.clone(), (g, id.span));
        true
    }

    /// The run block in two phases: `dt` before the constants (they may use it), every other
    /// setting after them (`duration = steps * dt` may use a constant).
    fn run_block(&mut self, body: &[ast::Assign], dt_phase: bool) {
        let mut seen: HashMap<String, Span> = HashMap::new();
        let ctx = Ctx::constant("a run setting");
        let ordered: Vec<&ast::Assign> = body
            .iter()
            .filter(|a| (a.target.dotted() == "dt") == dt_phase)
            .collect();
        for a in ordered {
            let key = a.target.dotted();
            if let Some(prev) = seen.get(&key) {
                self.diags.push(
                    Diagnostic::error(
                        a.target.span,
                        format!("`{key}` is set twice in the run block"),
                    )
                    .with_label("second setting")
                    .with_secondary(*prev, "first set here"),
                );
                continue;
            }
            seen.insert(key.clone(), a.target.span);
            if a.op != AssignOp::Set {
                self.diags.push(
                    Diagnostic::error(a.span, "run settings are set with `=`")
                        .with_label("not `=`"),
                );
                continue;
            }
            match key.as_str() {
                "dt" | "duration" => {
                    let h = self.expr_dim(&a.value, &ctx, Dim::TIME, &format!("`{key}`"));
                    match self.const_eval(h) {
                        Some(v) if v > 0.0 && v.is_finite() => {
                            if key == "dt" {
                                self.model.run.dt = v;
                            } else {
                                self.model.run.duration = v;
                            }
                        }
                        Some(v) => self.diags.push(
                            Diagnostic::error(
                                a.value.span,
                                format!("`{key}` must be positive, found {v} s"),
                            )
                            .with_label("not a positive time"),
                        ),
                        None => {}
                    }
                }
                "seed" => {
                    let h = self.expr_dim(&a.value, &ctx, Dim::NONE, "`seed`");
                    if let Some(v) = self.const_eval(h) {
                        if v < 0.0 || v.fract() != 0.0 || v > u64::MAX as f64 {
                            self.diags.push(
                                Diagnostic::error(
                                    a.value.span,
                                    format!("`seed` must be a non-negative integer, found {v}"),
                                )
                                .with_label("not a seed"),
                            );
                        } else {
                            self.model.run.seed = v as u64;
                        }
                    }
                }
                "precision" => match &a.value.kind {
                    ExprKind::Name(n) if n == "f32" => self.model.run.precision = Precision::F32,
                    ExprKind::Name(n) if n == "f64" => self.model.run.precision = Precision::F64,
                    _ => self.diags.push(
                        Diagnostic::error(a.value.span, "`precision` is `f32` or `f64`")
                            .with_label("unknown precision"),
                    ),
                },
                "event_driven" => match &a.value.kind {
                    ExprKind::Bool(b) => self.model.run.event_driven = *b,
                    _ => self.diags.push(
                        Diagnostic::error(a.value.span, "`event_driven` is `true` or `false`")
                            .with_label("not true or false"),
                    ),
                },
                other => {
                    let known = ["dt", "duration", "seed", "precision", "event_driven"];
                    let mut d =
                        Diagnostic::error(a.target.span, format!("unknown run setting `{other}`"))
                            .with_label("not a run setting");
                    d = match funcs::suggest(other, known) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(
                            "run settings are dt, duration, seed, precision and event_driven",
                        ),
                    };
                    self.diags.push(d);
                }
            }
        }
    }

    fn switch(&mut self, s: &ast::SwitchDecl, span: Span) {
        let n = s.states.len();
        let h = self.model.regimes.push(Regime {
            name: s.name.name.clone(),
            states: s.states.iter().map(|i| i.name.clone()).collect(),
            transition: Vec::new(),
            initial: None,
            span: s.name.span,
        });
        self.declare(&s.name, GlobalName::Regime(h));
        if n < 2 {
            self.diags.push(
                Diagnostic::error(
                    s.name.span,
                    format!("regime `{}` needs at least two states", s.name.name),
                )
                .with_label(format!("has {n}"))
                .with_help("write `states a, b` inside the switch"),
            );
        }
        for (k, st) in s.states.iter().enumerate() {
            self.declare(st, GlobalName::RegimeLabel(k as u32));
        }
        let Some(tr) = &s.transition else {
            self.diags.push(
                Diagnostic::error(
                    span,
                    format!("regime `{}` has no transition matrix", s.name.name),
                )
                .with_label("missing `transition`")
                .with_help("add e.g. `transition [[0.99, 0.01], [0.02, 0.98]]`"),
            );
            return;
        };
        if let Some(m) = self.const_matrix(tr) {
            if m.len() != n || m.iter().any(|r| r.len() != n) {
                self.diags.push(
                    Diagnostic::error(tr.span, format!("the transition matrix of `{}` must be {n} x {n}, one row and column per state", s.name.name))
                        .with_label("wrong shape"),
                );
            } else {
                for (k, row) in m.iter().enumerate() {
                    let sum: f64 = row.iter().sum();
                    let row_span = match &tr.kind {
                        ExprKind::Array(rows) => rows[k].span,
                        _ => tr.span,
                    };
                    if row.iter().any(|p| !(0.0..=1.0).contains(p)) {
                        self.diags.push(
                            Diagnostic::error(
                                row_span,
                                format!(
                                    "row {} of the transition matrix has an entry outside [0, 1]",
                                    k + 1
                                ),
                            )
                            .with_label("not a probability"),
                        );
                    } else if (sum - 1.0).abs() > 1e-9 {
                        self.diags.push(
                            Diagnostic::error(
                                row_span,
                                format!(
                                    "row {} of the transition matrix sums to {sum}, not 1",
                                    k + 1
                                ),
                            )
                            .with_label(
                                "rows are probabilities of the next state and must sum to 1",
                            ),
                        );
                    }
                }
                self.model.regimes[h].transition = m;
            }
        }
        if let Some(init) = &s.initial {
            match &init.kind {
                ExprKind::Name(n) if s.states.iter().any(|st| &st.name == n) => {
                    self.model.regimes[h].initial = s
                        .states
                        .iter()
                        .position(|st| &st.name == n)
                        .map(|k| k as u32);
                }
                ExprKind::Name(n) if n == "uniform" => {}
                _ => self.diags.push(
                    Diagnostic::error(
                        init.span,
                        "`initial` names one of the regime's states, or `uniform`",
                    )
                    .with_label("not a state of this regime"),
                ),
            }
        }
    }

    /// A constant matrix written as nested arrays.
    fn const_matrix(&mut self, e: &ast::Expr) -> Option<Vec<Vec<f64>>> {
        let ExprKind::Array(rows) = &e.kind else {
            self.diags.push(
                Diagnostic::error(
                    e.span,
                    "a transition matrix is written as rows: `[[0.9, 0.1], [0.2, 0.8]]`",
                )
                .with_label("not a matrix"),
            );
            return None;
        };
        let ctx = Ctx::constant("a transition matrix");
        let mut m = Vec::new();
        for r in rows {
            let ExprKind::Array(cells) = &r.kind else {
                self.diags.push(
                    Diagnostic::error(r.span, "each row of a matrix is an array `[...]`")
                        .with_label("not a row"),
                );
                return None;
            };
            let mut row = Vec::new();
            for c in cells {
                let h = self.expr_dim(c, &ctx, Dim::NONE, "a transition probability");
                row.push(self.const_eval(h)?);
            }
            m.push(row);
        }
        Some(m)
    }

    fn regime_of(&mut self, id: &Option<ast::Ident>) -> Option<Handle<Regime>> {
        let id = id.as_ref()?;
        match self.names.get(&id.name) {
            Some((GlobalName::Regime(r), _)) => Some(*r),
            _ => {
                self.diags.push(
                    Diagnostic::error(id.span, format!("`{}` is not a regime", id.name))
                        .with_label("expected the name of a `switch`")
                        .with_help(
                            "declare it with `switch name { states a, b; transition [...] }`",
                        ),
                );
                None
            }
        }
    }

    fn declared_dim(&mut self, unit: &Option<ast::UnitExpr>) -> Option<Dim> {
        unit.as_ref()
            .and_then(|u| self.unit_scale(u))
            .map(|(_, d)| d)
    }

    /// Lower a value that may be given per regime state: `[a, b, c]` gives one per state.
    fn regime_value(
        &mut self,
        e: &ast::Expr,
        ctx: &Ctx,
        regime: Option<Handle<Regime>>,
        want: Option<Dim>,
        what: &str,
    ) -> (Handle<Expr>, Ty) {
        if let (Some(r), ExprKind::Array(items)) = (regime, &e.kind) {
            let n = self.model.regimes[r].states.len();
            if items.len() != n {
                self.diags.push(
                    Diagnostic::error(
                        e.span,
                        format!(
                            "`{}` has {n} states, so this needs {n} values, found {}",
                            self.model.regimes[r].name,
                            items.len()
                        ),
                    )
                    .with_label("one value per regime state"),
                );
            }
            let mut hs = Vec::new();
            let mut ty = Ty::Real(want.unwrap_or(Dim::NONE));
            for (k, it) in items.iter().enumerate() {
                let (h, t) = match want {
                    Some(d) => (self.expr_dim(it, ctx, d, what), Ty::Real(d)),
                    None => self.expr(it, ctx),
                };
                if k == 0 {
                    ty = t;
                }
                hs.push(h);
            }
            return self.push_expr(Expr::Array(hs), ty);
        }
        match want {
            Some(d) => (self.expr_dim(e, ctx, d, what), Ty::Real(d)),
            None => self.expr(e, ctx),
        }
    }

    fn global_binding(&mut self, b: &ast::Binding, kind: VarKind) {
        self.stream_item = format!("global {}", b.name.name);
        let regime = self.regime_of(&b.regime);
        let want = self.declared_dim(&b.unit);
        let mut ctx = Ctx::constant(if kind == VarKind::Const {
            "a const value"
        } else {
            "a parameter value"
        });
        ctx.params = kind == VarKind::Param;
        let (init, ty) = self.regime_value(
            &b.value,
            &ctx,
            regime,
            want,
            &format!("the value of `{}`", b.name.name),
        );
        let dim = match ty {
            Ty::Real(d) => d,
            Ty::Bool => {
                self.diags.push(
                    Diagnostic::error(
                        b.value.span,
                        "a parameter must be a number, found a condition",
                    )
                    .with_label("this is a condition"),
                );
                Dim::NONE
            }
            Ty::Error => want.unwrap_or(Dim::NONE),
        };
        let h = self.model.variables.push(Variable {
            name: b.name.name.clone(),
            scope: Scope::Global,
            kind,
            dim,
            regime,
            init,
            span: b.name.span,
        });
        if kind == VarKind::Const {
            if let Some(v) = self.const_eval(init) {
                self.const_values.insert(h, v);
            } else if ty != Ty::Error && regime.is_none() {
                self.diags.push(
                    Diagnostic::error(
                        b.value.span,
                        format!(
                            "the value of const `{}` is not a compile-time constant",
                            b.name.name
                        ),
                    )
                    .with_label("depends on something only known at run time")
                    .with_help("use `param` for values that may change between runs"),
                );
            }
        }
        if self.declare(&b.name, GlobalName::Var(h)) {
            self.model.globals.push(h);
        }
    }

    /// Declare a variable of a cell or synapse type; its initialiser sees the ones before it.
    fn element_var(&mut self, owner: ElementType, decl: VarDecl, seen: &mut HashMap<String, Span>) {
        let VarDecl {
            name,
            regime,
            unit,
            value,
            kind,
        } = decl;
        if let Some(prev) = seen.get(&name.name) {
            self.diags.push(
                Diagnostic::error(
                    name.span,
                    format!("`{}` is declared twice in this body", name.name),
                )
                .with_label("second declaration")
                .with_secondary(*prev, "first declared here"),
            );
            return;
        }
        seen.insert(name.name.clone(), name.span);
        let regime = self.regime_of(regime);
        let want = self.declared_dim(unit);
        let visible = self.model.element_vars(owner);
        let mut ctx = Ctx {
            own: Some(owner),
            visible_vars: Some(visible),
            indices: true,
            random: kind != VarKind::Const,
            params: kind != VarKind::Const,
            place: match kind {
                VarKind::Const => "a const value",
                VarKind::Param => "a parameter value",
                VarKind::State => "an initial value",
            },
            ..Ctx::default()
        };
        if let ElementType::Synapse(_) = owner {
            // A synapse's values are per synapse: `i` is its pre index, `j` its post index.
            ctx.post_index = true;
        }
        let what = format!("the initial value of `{}`", name.name);
        let (init, ty) = match value {
            Some(v) => self.regime_value(v, &ctx, regime, want, &what),
            None => self.push_expr(Expr::Const(0.0), Ty::Real(want.unwrap_or(Dim::NONE))),
        };
        let dim = match (want, ty) {
            (Some(d), _) => d,
            (None, Ty::Real(d)) => d,
            (None, Ty::Bool) => {
                self.diags.push(
                    Diagnostic::error(
                        name.span,
                        format!("`{}` must be a number, found a condition", name.name),
                    )
                    .with_label("conditions cannot be stored"),
                );
                Dim::NONE
            }
            (None, Ty::Error) => Dim::NONE,
        };
        let scope = match owner {
            ElementType::Cell(c) => Scope::Cell(c),
            ElementType::Synapse(s) => Scope::Synapse(s),
        };
        let h = self.model.variables.push(Variable {
            name: name.name.clone(),
            scope,
            kind,
            dim,
            regime,
            init,
            span: name.span,
        });
        if kind == VarKind::Const {
            match self.const_eval(init) {
                Some(v) => {
                    self.const_values.insert(h, v);
                }
                None if ty != Ty::Error => self.diags.push(
                    Diagnostic::error(
                        name.span,
                        format!(
                            "the value of const `{}` is not a compile-time constant",
                            name.name
                        ),
                    )
                    .with_label("depends on something only known at run time"),
                ),
                None => {}
            }
        }
        let list = match (owner, kind) {
            (ElementType::Cell(c), VarKind::State) => &mut self.model.cell_types[c].states,
            (ElementType::Cell(c), _) => &mut self.model.cell_types[c].params,
            (ElementType::Synapse(s), VarKind::State) => &mut self.model.synapse_types[s].states,
            (ElementType::Synapse(s), _) => &mut self.model.synapse_types[s].params,
        };
        list.push(h);
    }

    fn body_vars(&mut self, owner: ElementType, body: &[ast::Stmt]) {
        let mut seen = HashMap::new();
        for st in body {
            match &st.kind {
                StmtKind::Const(bs) | StmtKind::Param(bs) => {
                    let kind = if matches!(st.kind, StmtKind::Const(_)) {
                        VarKind::Const
                    } else {
                        VarKind::Param
                    };
                    for b in bs {
                        self.element_var(
                            owner,
                            VarDecl {
                                name: &b.name,
                                regime: &b.regime,
                                unit: &b.unit,
                                value: Some(&b.value),
                                kind,
                            },
                            &mut seen,
                        );
                    }
                }
                StmtKind::State(items) => {
                    for s in items {
                        self.element_var(
                            owner,
                            VarDecl {
                                name: &s.name,
                                regime: &s.regime,
                                unit: &s.unit,
                                value: s.init.as_ref(),
                                kind: VarKind::State,
                            },
                            &mut seen,
                        );
                    }
                }
                _ => {}
            }
        }
    }

    fn cell_body(&mut self, h: Handle<CellType>, c: &ast::CellDecl) {
        let owner = ElementType::Cell(h);
        // Draws in initial values belong to this cell type too.
        self.stream_item = format!("cell {}", c.name.name);
        self.body_vars(owner, &c.body);
        let mut ctx = Ctx {
            own: Some(owner),
            indices: true,
            random: true,
            population_ops: true,
            time: true,
            params: true,
            place: "cell dynamics",
            ..Ctx::default()
        };
        let mut dynamics = Dynamics::default();
        let mut events = Vec::new();
        let mut refractory: Option<(Refractory, Span)> = None;
        let mut method_span = None;
        for st in &c.body {
            match &st.kind {
                StmtKind::Const(_) | StmtKind::Param(_) | StmtKind::State(_) => {}
                StmtKind::Let { name, value } => {
                    self.let_stmt(&mut ctx, &mut dynamics, name, value, owner)
                }
                StmtKind::Ode {
                    var,
                    rhs,
                    unless_refractory,
                } => {
                    if let Some(o) = self.ode(
                        &ctx,
                        var,
                        rhs,
                        unless_refractory.is_some(),
                        st.span,
                        &dynamics,
                    ) {
                        dynamics.odes.push(o);
                    }
                }
                StmtKind::Update { var, value } => {
                    if let Some(u) = self.update(&ctx, owner, var, value, st.span) {
                        dynamics.updates.push(u);
                    }
                }
                StmtKind::SpikeWhen { cond, reset } => {
                    let mut c2 = ctx.clone();
                    c2.population_ops = false;
                    c2.place = "a spike condition";
                    let trig = self.expr_bool(cond, &c2, "a spike condition");
                    let body = self.statements(reset, &ctx, owner, "a reset");
                    self.push_event(&mut events, "spike", Trigger::When(trig), body, st.span);
                }
                StmtKind::SpikeProb { prob, reset } => {
                    let mut c2 = ctx.clone();
                    c2.place = "a spike probability";
                    let p = self.expr_dim(prob, &c2, Dim::NONE, "a spike probability");
                    self.check_probability(p, prob.span);
                    let body = self.statements(reset, &ctx, owner, "a reset");
                    self.push_event(&mut events, "spike", Trigger::Probability(p), body, st.span);
                }
                StmtKind::Event { name, cond, body } => {
                    let trig = self.expr_bool(cond, &ctx, "an event condition");
                    let body = self.statements(body, &ctx, owner, "an event body");
                    self.push_event(
                        &mut events,
                        &name.name,
                        Trigger::When(trig),
                        body,
                        name.span,
                    );
                }
                StmtKind::Refractory(e) => {
                    let (hh, ty) = self.expr(e, &ctx);
                    let r = match ty {
                        Ty::Real(d) if d == Dim::TIME => {
                            if let Some(v) = self.const_eval(hh) {
                                if v < 0.0 {
                                    self.diags.push(Diagnostic::error(e.span, format!("a refractory period must not be negative, found {v} s")).with_label("negative duration"));
                                }
                            }
                            Some(Refractory::Duration(hh))
                        }
                        Ty::Bool => Some(Refractory::Condition(hh)),
                        Ty::Error => None,
                        Ty::Real(d) => {
                            self.diags.push(
                                Diagnostic::error(e.span, format!("`refractory` takes a duration or a condition, found a quantity in {d}"))
                                    .with_label(format!("this is in {d}"))
                                    .with_help("e.g. `refractory 5 ms` or `refractory v > -20 mV`"),
                            );
                            None
                        }
                    };
                    if let Some((_, prev)) = &refractory {
                        self.diags.push(
                            Diagnostic::error(
                                st.span,
                                "a cell type has one `refractory` statement",
                            )
                            .with_label("second one")
                            .with_secondary(*prev, "first one"),
                        );
                    } else if let Some(r) = r {
                        refractory = Some((r, st.span));
                    }
                }
                StmtKind::Method(m) => {
                    if let Some(m) = self.method(m) {
                        dynamics.method = Some(m);
                        method_span = Some(st.span);
                    }
                }
                StmtKind::On { trigger, .. } => {
                    self.diags.push(
                        Diagnostic::error(
                            trigger.span,
                            format!(
                                "`on {}` blocks belong in synapse types, not in {} `{}`",
                                trigger.name,
                                c.kind.keyword(),
                                c.name.name
                            ),
                        )
                        .with_label("not allowed in a cell type")
                        .with_help(
                            "put the code in a `synapse` and connect it with `project ... via`",
                        ),
                    );
                }
            }
        }
        if let Some((_, span)) = &refractory {
            let unless = dynamics.odes.iter().any(|o| o.unless_refractory);
            if !events.iter().any(|e: &Event| e.name == "spike") {
                self.diags.push(
                    Diagnostic::error(*span, "`refractory` needs a spike event")
                        .with_label("nothing starts the refractory period")
                        .with_help("add `spike when ...`"),
                );
            }
            let _ = unless;
        } else if let Some(o) = dynamics.odes.iter().find(|o| o.unless_refractory) {
            self.diags.push(
                Diagnostic::error(
                    o.span,
                    "`unless refractory` in a cell type without a refractory period",
                )
                .with_label("never refractory")
                .with_help("add e.g. `refractory 5 ms`"),
            );
        }
        let chosen = crate::check::choose_method(self, &dynamics, method_span);
        self.cell_methods.insert(h, chosen);
        let ct = &mut self.model.cell_types[h];
        ct.dynamics = dynamics;
        ct.events = events;
        ct.refractory = refractory.map(|(r, _)| r);
    }

    fn push_event(
        &mut self,
        events: &mut Vec<Event>,
        name: &str,
        trigger: Trigger,
        body: Vec<Statement>,
        span: Span,
    ) {
        if let Some(prev) = events.iter().find(|e| e.name == name) {
            self.diags.push(
                Diagnostic::error(span, format!("event `{name}` is defined twice"))
                    .with_label("second definition")
                    .with_secondary(prev.span, "first defined here"),
            );
            return;
        }
        events.push(Event {
            name: name.to_string(),
            trigger,
            body,
            span,
        });
    }

    fn method(&mut self, m: &ast::Ident) -> Option<Method> {
        let r = Method::parse(&m.name);
        if r.is_none() {
            let mut d =
                Diagnostic::error(m.span, format!("unknown integration method `{}`", m.name))
                    .with_label("not a method");
            d = match funcs::suggest(&m.name, Method::ALL) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help("methods are exact, euler, exponential_euler and rk4"),
            };
            self.diags.push(d);
        }
        r
    }

    fn let_stmt(
        &mut self,
        ctx: &mut Ctx,
        dynamics: &mut Dynamics,
        name: &ast::Ident,
        value: &ast::Expr,
        owner: ElementType,
    ) {
        if self.find_var(owner, &name.name).is_some() || ctx.lets.contains_key(&name.name) {
            let prev = self
                .find_var(owner, &name.name)
                .map(|v| self.model.variables[v].span);
            let mut d = Diagnostic::error(
                name.span,
                format!("`{}` is declared twice in this body", name.name),
            )
            .with_label("second declaration");
            if let Some(p) = prev {
                d = d.with_secondary(p, "first declared here");
            }
            self.diags.push(d);
            return;
        }
        let (h, ty) = self.expr(value, ctx);
        ctx.lets.insert(name.name.clone(), (h, ty));
        dynamics.lets.push((name.name.clone(), h));
    }

    /// The variable a statement in `owner` writes, which must be its own state.
    fn own_state(
        &mut self,
        owner: ElementType,
        var: &ast::Ident,
        what: &str,
    ) -> Option<Handle<Variable>> {
        let Some(v) = self.find_var(owner, &var.name) else {
            self.unknown_member(owner, var);
            return None;
        };
        let kind = self.model.variables[v].kind;
        if kind != VarKind::State {
            self.diags.push(
                Diagnostic::error(
                    var.span,
                    format!("{what} `{}`, which is a {}", var.name, kind.keyword()),
                )
                .with_label(format!("a {} cannot change during a run", kind.keyword()))
                .with_secondary(self.model.variables[v].span, "declared here")
                .with_help(format!("declare it with `state {}` instead", var.name)),
            );
            return None;
        }
        Some(v)
    }

    fn ode(
        &mut self,
        ctx: &Ctx,
        var: &ast::Ident,
        rhs: &ast::Expr,
        unless: bool,
        span: Span,
        dynamics: &Dynamics,
    ) -> Option<Ode> {
        let owner = ctx.own.expect("equations are lowered in an element scope");
        let v = self.own_state(owner, var, "cannot integrate")?;
        self.no_regime_dynamics(v, var, span)?;
        if let Some(prev) = dynamics.odes.iter().find(|o| o.var == v) {
            self.diags.push(
                Diagnostic::error(span, format!("`{}` has two equations", var.name))
                    .with_label("second `d/dt`")
                    .with_secondary(prev.span, "first equation"),
            );
            return None;
        }
        let want = self.model.variables[v].dim.per(Dim::TIME);
        let rhs = self.expr_dim(
            rhs,
            ctx,
            want,
            &format!("the right side of `d{}/dt`", var.name),
        );
        Some(Ode {
            var: v,
            rhs,
            unless_refractory: unless,
            span,
        })
    }

    fn update(
        &mut self,
        ctx: &Ctx,
        owner: ElementType,
        var: &ast::Ident,
        value: &ast::Expr,
        span: Span,
    ) -> Option<Update> {
        let v = self.own_state(owner, var, "cannot update")?;
        self.no_regime_dynamics(v, var, span)?;
        let want = self.model.variables[v].dim;
        let value = self.expr_dim(
            value,
            ctx,
            want,
            &format!("the new value of `{}`", var.name),
        );
        Some(Update {
            var: v,
            value,
            span,
        })
    }

    /// Equations and updates act on one value per element; a per-regime state has several.
    fn no_regime_dynamics(
        &mut self,
        v: Handle<Variable>,
        var: &ast::Ident,
        span: Span,
    ) -> Option<()> {
        let Some(r) = self.model.variables[v].regime else {
            return Some(());
        };
        let rname = self.model.regimes[r].name.clone();
        self.diags.push(
            Diagnostic::error(span, format!("`{}` has one value per state of `{rname}` and cannot have an equation or update", var.name))
                .with_label("not supported for per-regime state")
                .with_secondary(self.model.variables[v].span, "declared per regime here")
                .with_help(format!("keep the dynamics on a plain state and select a per-regime parameter with `[{rname}]`")),
        );
        None
    }

    /// Lower assignments in reset, event and synapse code.
    fn statements(
        &mut self,
        body: &[ast::Assign],
        ctx: &Ctx,
        owner: ElementType,
        what: &str,
    ) -> Vec<Statement> {
        let mut out = Vec::new();
        let mut c2 = ctx.clone();
        c2.population_ops = false;
        c2.place = "event code";
        for a in body {
            let segs = &a.target.segments;
            let (side, elem, name) = match segs.as_slice() {
                [n] => (Side::Own, Some(owner), n),
                [s, n] if s.name == "pre" => (Side::Pre, ctx.pre, n),
                [s, n] if s.name == "post" => (Side::Post, ctx.post, n),
                _ => {
                    self.diags.push(
                        Diagnostic::error(
                            a.target.span,
                            format!("cannot assign to `{}` in {what}", a.target.dotted()),
                        )
                        .with_label("expected a variable, `pre.x` or `post.x`"),
                    );
                    continue;
                }
            };
            let Some(elem) = elem else {
                self.diags.push(
                    Diagnostic::error(
                        segs[0].span,
                        format!("`{}` is only available in synapse code", segs[0].name),
                    )
                    .with_label(format!("not available in {what}")),
                );
                continue;
            };
            let Some(v) = self.own_state(elem, name, "cannot assign to") else {
                continue;
            };
            let vd = self.model.variables[v].dim;
            let value = match a.op {
                AssignOp::Mul | AssignOp::Div => self.expr_dim(
                    &a.value,
                    &c2,
                    Dim::NONE,
                    &format!("a factor in `{}`", a.op.symbol()),
                ),
                _ => self.expr_dim(
                    &a.value,
                    &c2,
                    vd,
                    &format!("the value assigned to `{}`", a.target.dotted()),
                ),
            };
            out.push(Statement {
                var: v,
                side,
                op: a.op,
                value,
                span: a.span,
            });
        }
        out
    }

    fn synapse_vars(&mut self, h: Handle<SynapseType>, s: &ast::SynapseDecl) {
        self.stream_item = format!("synapse {}", s.name.name);
        self.body_vars(ElementType::Synapse(h), &s.body);
        for st in &s.body {
            let bad = match &st.kind {
                StmtKind::SpikeWhen { .. } | StmtKind::SpikeProb { .. } => Some("spike conditions"),
                StmtKind::Event { .. } => Some("events"),
                StmtKind::Refractory(_) => Some("refractory periods"),
                _ => None,
            };
            if let Some(what) = bad {
                self.diags.push(
                    Diagnostic::error(
                        st.span,
                        format!(
                            "{what} belong in cell types, not in synapse `{}`",
                            s.name.name
                        ),
                    )
                    .with_label("not allowed in a synapse"),
                );
            }
            if let StmtKind::On { trigger, .. } = &st.kind {
                if !["pre", "post", "step"].contains(&trigger.name.as_str()) {
                    self.diags.push(
                        Diagnostic::error(
                            trigger.span,
                            format!("unknown trigger `on {}`", trigger.name),
                        )
                        .with_label("expected `pre`, `post` or `step`"),
                    );
                }
            }
        }
    }

    fn const_size(&mut self, e: &ast::Expr, what: &'static str) -> Option<u32> {
        let ctx = Ctx::constant(what);
        let h = self.expr_dim(e, &ctx, Dim::NONE, what);
        let v = self.const_eval(h)?;
        if v.fract() != 0.0 || v < 0.0 || v > u32::MAX as f64 {
            self.diags.push(
                Diagnostic::error(
                    e.span,
                    format!("{what} must be a non-negative integer, found {v}"),
                )
                .with_label("not a count"),
            );
            return None;
        }
        Some(v as u32)
    }

    fn population(&mut self, p: &ast::PopulationDecl, span: Span) {
        self.stream_item = format!("population {}", p.name.name);
        let ct = match self.names.get(&p.cell_type.name) {
            Some((GlobalName::Cell(c), _)) => Some(*c),
            other => {
                let mut d = Diagnostic::error(
                    p.cell_type.span,
                    format!("unknown cell type `{}`", p.cell_type.name),
                );
                d = match other {
                    Some((g, s)) => d
                        .with_label(format!("this is {}", g.describe()))
                        .with_secondary(*s, "declared here"),
                    None => d.with_label("no neuron, astrocyte, unit or cell of that name"),
                };
                let cells: Vec<String> = self
                    .model
                    .cell_types
                    .iter()
                    .map(|(_, c)| c.name.clone())
                    .collect();
                if let Some(s) = funcs::suggest(&p.cell_type.name, cells.iter().map(String::as_str))
                {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.push_unknown(&p.cell_type.name, d);
                None
            }
        };
        let size = self.const_size(&p.size, "a population size");
        if size == Some(0) {
            self.diags.push(
                Diagnostic::error(p.size.span, "a population needs at least one element")
                    .with_label("size 0"),
            );
        }
        let Some(ct) = ct else { return };
        let h = self.model.populations.push(Population {
            name: p.name.name.clone(),
            cell_type: ct,
            size: size.unwrap_or(1),
            overrides: Vec::new(),
            input: None,
            span,
        });
        self.declare(&p.name, GlobalName::Population(h));
        for b in &p.params {
            self.diags.push(
                Diagnostic::error(b.name.span, "populations cannot declare new parameters")
                    .with_label("declare it in the cell type")
                    .with_help(format!("write `{} = ...` to give a cell-type parameter a value for this population", b.name.name)),
            );
        }
        let elem = ElementType::Cell(ct);
        let ctx = Ctx {
            own: Some(elem),
            indices: true,
            random: true,
            params: true,
            place: "a population override",
            ..Ctx::default()
        };
        let mut seen: HashMap<String, Span> = HashMap::new();
        for a in &p.overrides {
            let [name] = a.target.segments.as_slice() else {
                self.diags.push(
                    Diagnostic::error(
                        a.target.span,
                        "a population override names one variable of its cell type",
                    )
                    .with_label("expected a plain name"),
                );
                continue;
            };
            if a.op != AssignOp::Set {
                self.diags.push(
                    Diagnostic::error(a.span, "overrides are written `name = value`")
                        .with_label("not `=`"),
                );
                continue;
            }
            if let Some(prev) = seen.insert(name.name.clone(), name.span) {
                self.diags.push(
                    Diagnostic::error(name.span, format!("`{}` is overridden twice", name.name))
                        .with_label("second override")
                        .with_secondary(prev, "first override"),
                );
                continue;
            }
            let Some(v) = self.find_var(elem, &name.name) else {
                self.unknown_member(elem, name);
                continue;
            };
            let regime = self.model.variables[v].regime;
            let dim = self.model.variables[v].dim;
            let (value, _) = self.regime_value(
                &a.value,
                &ctx,
                regime,
                Some(dim),
                &format!("the value of `{}`", name.name),
            );
            self.model.populations[h].overrides.push((v, value));
        }
    }

    fn check_file(&mut self, path: &str, span: Span) {
        if self.loader.is_dir(path) {
            self.diags.push(
                Diagnostic::error(span, format!("`{path}` is a directory, not a file"))
                    .with_label("a directory")
                    .with_help("name a file; paths are relative to the directory of the spec file"),
            );
        } else if !self.loader.exists(path) {
            self.diags.push(
                Diagnostic::error(span, format!("file not found: `{path}`"))
                    .with_label("no such file")
                    .with_help("paths are relative to the directory of the spec file"),
            );
        }
    }

    /// A synthesized cell type for an input population.
    fn input_cell(&mut self, name: &ast::Ident, span: Span) -> Handle<CellType> {
        self.model.cell_types.push(CellType {
            name: format!("{}$input", name.name),
            kind: ast::CellKind::Cell,
            params: Vec::new(),
            states: Vec::new(),
            dynamics: Dynamics::default(),
            events: Vec::new(),
            refractory: None,
            lastspike: None,
            span,
        })
    }

    fn input_population(
        &mut self,
        name: &ast::Ident,
        ct: Handle<CellType>,
        size: u32,
        span: Span,
    ) -> Handle<Population> {
        let h = self.model.populations.push(Population {
            name: name.name.clone(),
            cell_type: ct,
            size,
            overrides: Vec::new(),
            input: None,
            span,
        });
        self.declare(name, GlobalName::Population(h));
        h
    }

    fn input(&mut self, i: &ast::InputDecl, span: Span) {
        self.stream_item = format!("input {}", i.name.name);
        let Some((kind, args)) = i.source.call_name() else {
            self.diags.push(
                Diagnostic::error(i.source.span, "an input is `poisson(n, rate = ...)`, `current(value)`, `tokens(\"file\", vocab = n)` or `spikes(\"file\", n)`")
                    .with_label("not an input source"),
            );
            return;
        };
        let named = |k: &str| {
            args.iter()
                .find(|a| a.name.as_ref().is_some_and(|n| n.name == k))
                .map(|a| &a.value)
        };
        let positional: Vec<&ast::Expr> = args
            .iter()
            .filter(|a| a.name.is_none())
            .map(|a| &a.value)
            .collect();
        for a in args {
            if let Some(n) = &a.name {
                let ok = matches!(
                    (kind, n.name.as_str()),
                    ("poisson", "rate")
                        | ("tokens", "vocab" | "cycle" | "document")
                        | ("poisson_input", "rate" | "weight")
                );
                if !ok {
                    self.diags.push(
                        Diagnostic::error(n.span, format!("`{kind}` has no argument `{}`", n.name))
                            .with_label("unknown named argument"),
                    );
                    return;
                }
            }
        }
        let arity_error = |l: &mut Self, want: &str| {
            l.diags.push(
                Diagnostic::error(i.source.span, format!("`{kind}` takes {want}"))
                    .with_label("wrong number of arguments"),
            );
        };
        let kind_ir = match kind {
            "poisson" => {
                let rate = named("rate").or(positional.get(1).copied());
                if positional.is_empty() || rate.is_none() || positional.len() > 2 {
                    arity_error(self, "a size and a rate: `poisson(1000, rate = 15 Hz)`");
                    return;
                }
                let Some(n) = self.const_size(positional[0], "the number of Poisson sources")
                else {
                    return;
                };
                let ct = self.input_cell(&i.name, i.name.span);
                let elem = ElementType::Cell(ct);
                let rate_e = rate.unwrap();
                if mentions_time(rate_e) {
                    // A time-varying rate is evaluated every step (no `rate` parameter to
                    // `--set`); the runtime refuses a step where rate × dt exceeds 1.
                    let ctx = Ctx::input(elem, "a Poisson rate", false);
                    let r = self.expr_dim(rate_e, &ctx, Dim::TIME.powi(-1), "a Poisson rate");
                    let (dt, _) =
                        self.push_expr(Expr::Const(self.model.run.dt), Ty::Real(Dim::TIME));
                    let (p, _) =
                        self.push_expr(Expr::Binary(ast::BinOp::Mul, r, dt), Ty::Real(Dim::NONE));
                    self.model.cell_types[ct].events.push(Event {
                        name: "spike".into(),
                        trigger: Trigger::Probability(p),
                        body: Vec::new(),
                        span: i.name.span,
                    });
                    let pop = self.input_population(&i.name, ct, n, span);
                    InputKind::Poisson { population: pop }
                } else {
                    let mut seen = HashMap::new();
                    self.element_var(
                        elem,
                        VarDecl {
                            name: &ast::Ident {
                                name: "rate".into(),
                                span: rate_e.span,
                            },
                            regime: &None,
                            unit: &None,
                            value: Some(rate_e),
                            kind: VarKind::Param,
                        },
                        &mut seen,
                    );
                    let rate_var = self.model.cell_types[ct].params.first().copied();
                    if let Some(rv) = rate_var {
                        if self.model.variables[rv].dim != Dim::TIME.powi(-1) {
                            self.diags.push(
                                Diagnostic::error(
                                    rate_e.span,
                                    format!(
                                        "unit mismatch: a Poisson rate must be in Hz, found {}",
                                        self.model.variables[rv].dim
                                    ),
                                )
                                .with_label("not a rate"),
                            );
                        }
                        // spike with probability rate * dt
                        let (v, _) = self.push_expr(
                            Expr::Var {
                                var: rv,
                                side: Side::Own,
                            },
                            Ty::Real(Dim::TIME.powi(-1)),
                        );
                        let (dt, _) =
                            self.push_expr(Expr::Const(self.model.run.dt), Ty::Real(Dim::TIME));
                        let (p, _) = self
                            .push_expr(Expr::Binary(ast::BinOp::Mul, v, dt), Ty::Real(Dim::NONE));
                        // rate × dt > 1 is refused when the simulation is built (`params::check_overrides`),
                        // the rate being a parameter `--set` can change.
                        self.model.cell_types[ct].events.push(Event {
                            name: "spike".into(),
                            trigger: Trigger::Probability(p),
                            body: Vec::new(),
                            span: i.name.span,
                        });
                    }
                    let pop = self.input_population(&i.name, ct, n, span);
                    InputKind::Poisson { population: pop }
                }
            }
            "poisson_input" => {
                let (Some(rate), Some(weight), [n_e]) =
                    (named("rate"), named("weight"), positional.as_slice())
                else {
                    arity_error(
                        self,
                        "a number of sources, a rate and a weight: `poisson_input(1000, rate = 10 Hz, weight = 0.1 mV) -> E.v`",
                    );
                    return;
                };
                let Some(n) = self.const_size(n_e, "the number of Poisson sources") else {
                    return;
                };
                let Some(target) = self.input_target(
                    i,
                    "a Poisson input needs a target",
                    "write `input name = poisson_input(1000, rate = 10 Hz, weight = 0.1 mV) -> Population.variable`",
                ) else {
                    return;
                };
                let Some((pop, var)) = self.target_state(target, "an input cannot add to") else {
                    return;
                };
                let ct = self.model.populations[pop].cell_type;
                let ctx = Ctx::input(ElementType::Cell(ct), "a Poisson input", true);
                let rate = self.expr_dim(rate, &ctx, Dim::TIME.powi(-1), "a Poisson rate");
                let dim = self.model.variables[var].dim;
                let weight = self.expr_dim(
                    weight,
                    &ctx,
                    dim,
                    &format!("the weight added to `{}`", target.dotted()),
                );
                InputKind::PoissonDrive {
                    population: pop,
                    var,
                    n,
                    rate,
                    weight,
                }
            }
            "current" => {
                if positional.len() != 1 {
                    arity_error(self, "one value: `current(100 pA) -> E.I_ext`");
                    return;
                }
                let Some(target) = self.input_target(
                    i,
                    "a current input needs a target",
                    "write `input name = current(...) -> Population.variable`",
                ) else {
                    return;
                };
                let Some((pop, var)) = self.target_var(target) else {
                    return;
                };
                let earlier = self
                    .model
                    .inputs
                    .iter()
                    .find_map(|(_, other)| match other.kind {
                        InputKind::Current {
                            population, var: v, ..
                        } if population == pop && v == var => {
                            Some((other.name.clone(), other.span))
                        }
                        _ => None,
                    });
                if let Some((name, first)) = earlier {
                    self.diags.push(
                        Diagnostic::error(
                            target.span,
                            format!("`{}` already receives the current input `{name}`", target.dotted()),
                        )
                        .with_label("a second input into the same variable")
                        .with_secondary(first, "the first one")
                        .with_help("an input sets its variable every step, so only one would act: write one input with the sum, `current(a + b)`"),
                    );
                    return;
                }
                let ctx = Ctx::input(
                    ElementType::Cell(self.model.populations[pop].cell_type),
                    "an input value",
                    true,
                );
                let dim = self.model.variables[var].dim;
                let value = self.expr_dim(
                    positional[0],
                    &ctx,
                    dim,
                    &format!("the input to `{}`", target.dotted()),
                );
                InputKind::Current {
                    population: pop,
                    var,
                    value,
                }
            }
            "tokens" | "spikes" => {
                let Some(ast::Expr {
                    kind: ExprKind::Str(path),
                    span: ps,
                }) = positional.first().copied()
                else {
                    arity_error(self, "a file name in quotes first");
                    return;
                };
                self.check_file(path, *ps);
                let size_e = if kind == "tokens" {
                    named("vocab").or(positional.get(1).copied())
                } else {
                    positional.get(1).copied()
                };
                let Some(size_e) = size_e else {
                    arity_error(
                        self,
                        if kind == "tokens" {
                            "a file and a vocabulary size: `tokens(\"text.txt\", vocab = 256)`"
                        } else {
                            "a file and a number of sources: `spikes(\"train.npy\", 100)`"
                        },
                    );
                    return;
                };
                let Some(n) = self.const_size(size_e, "an input size") else {
                    return;
                };
                let cycle = match named("cycle").map(|e| &e.kind) {
                    None => false,
                    Some(ExprKind::Bool(b)) => *b,
                    Some(_) => {
                        let e = named("cycle").unwrap();
                        self.diags.push(
                            Diagnostic::error(e.span, "`cycle` is `true` or `false`")
                                .with_label("not a truth value")
                                .with_help("`cycle = true` reads the file again from its start after its last token"),
                        );
                        return;
                    }
                };
                let document = match named("document") {
                    None => None,
                    Some(e) => match self.const_size(e, "a token id") {
                        Some(d) if d < n => Some(d),
                        Some(d) => {
                            self.diags.push(
                                Diagnostic::error(
                                    e.span,
                                    format!("token {d} is not in the vocabulary of {n}"),
                                )
                                .with_label("outside the vocabulary"),
                            );
                            return;
                        }
                        None => return,
                    },
                };
                let ct = self.input_cell(&i.name, i.name.span);
                if kind == "tokens" {
                    let mut seen = HashMap::new();
                    self.element_var(
                        ElementType::Cell(ct),
                        VarDecl {
                            name: &ast::Ident {
                                name: "x".into(),
                                span: i.name.span,
                            },
                            regime: &None,
                            unit: &None,
                            value: None,
                            kind: VarKind::State,
                        },
                        &mut seen,
                    );
                    let x = self.model.cell_types[ct].states[0];
                    let (tok, _) = self.push_expr(
                        Expr::Token {
                            path: path.clone(),
                            vocab: n,
                            cycle,
                            document,
                        },
                        Ty::Real(Dim::NONE),
                    );
                    self.model.cell_types[ct].dynamics.updates.push(Update {
                        var: x,
                        value: tok,
                        span: i.source.span,
                    });
                    let pop = self.input_population(&i.name, ct, n, span);
                    InputKind::Tokens {
                        population: pop,
                        path: path.clone(),
                    }
                } else {
                    let pop = self.input_population(&i.name, ct, n, span);
                    InputKind::SpikeFile {
                        population: pop,
                        path: path.clone(),
                    }
                }
            }
            other => {
                let mut d =
                    Diagnostic::error(i.source.span, format!("unknown input kind `{other}`"))
                        .with_label("not an input source");
                d = match funcs::suggest(
                    other,
                    ["poisson", "poisson_input", "current", "tokens", "spikes"],
                ) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => {
                        d.with_help("inputs are poisson, poisson_input, current, tokens and spikes")
                    }
                };
                self.diags.push(d);
                return;
            }
        };
        let targeted = matches!(
            kind_ir,
            InputKind::Current { .. } | InputKind::PoissonDrive { .. }
        );
        if let (Some(target), false) = (&i.target, targeted) {
            self.diags.push(
                Diagnostic::error(
                    target.span,
                    format!("a `{kind}` input is a population; connect it with `project`"),
                )
                .with_label("`->` target not allowed here"),
            );
        }
        let h = self.model.inputs.push(Input {
            name: i.name.name.clone(),
            kind: kind_ir,
            span,
        });
        match self.model.inputs[h].kind {
            InputKind::Poisson { population }
            | InputKind::Tokens { population, .. }
            | InputKind::SpikeFile { population, .. } => {
                self.model.populations[population].input = Some(h);
            }
            InputKind::Current { .. } | InputKind::PoissonDrive { .. } => {
                self.declare(&i.name, GlobalName::Input);
            }
        }
    }

    /// `Population.variable` as the target of an input: a state nothing else writes.
    fn target_var(&mut self, target: &ast::Path) -> Option<(Handle<Population>, Handle<Variable>)> {
        let (pop, var) = self.target_state(target, "an input cannot set")?;
        let ct = self.model.populations[pop].cell_type;
        if let Some(reason) = self.written_by_dynamics(ElementType::Cell(ct), var, None) {
            let v = &target.segments[1];
            self.diags.push(
                Diagnostic::error(
                    v.span,
                    format!(
                        "`{}` is already {reason}, so an input cannot set it",
                        v.name
                    ),
                )
                .with_label("written twice every step")
                .with_help("add a separate state for the input and use it in the equation"),
            );
            return None;
        }
        Some((pop, var))
    }

    /// The `-> Population.variable` of an input that needs one; an error without.
    fn input_target<'i>(
        &mut self,
        i: &'i ast::InputDecl,
        message: &str,
        help: &str,
    ) -> Option<&'i ast::Path> {
        if i.target.is_none() {
            self.diags.push(
                Diagnostic::error(i.source.span, message)
                    .with_label("where does it go?")
                    .with_help(help),
            );
        }
        i.target.as_ref()
    }

    /// `Population.variable` naming a state of the population (`what`: the error's wording).
    fn target_state(
        &mut self,
        target: &ast::Path,
        what: &str,
    ) -> Option<(Handle<Population>, Handle<Variable>)> {
        let [p, v] = target.segments.as_slice() else {
            self.diags.push(
                Diagnostic::error(target.span, "an input target is `Population.variable`")
                    .with_label("expected two names"),
            );
            return None;
        };
        let pop = match self.names.get(&p.name) {
            Some((GlobalName::Population(h), _)) => *h,
            _ => {
                self.push_unknown(
                    &p.name,
                    Diagnostic::error(p.span, format!("unknown population `{}`", p.name))
                        .with_label("not a population"),
                );
                return None;
            }
        };
        let ct = self.model.populations[pop].cell_type;
        let var = self.own_state(ElementType::Cell(ct), v, what)?;
        Some((pop, var))
    }

    /// Whether a variable is integrated or updated by its element type's dynamics.
    fn written_by_dynamics(
        &self,
        elem: ElementType,
        var: Handle<Variable>,
        proj: Option<&SynapseCode>,
    ) -> Option<&'static str> {
        let dynamics = match elem {
            ElementType::Cell(c) => &self.model.cell_types[c].dynamics,
            ElementType::Synapse(_) => &proj?.dynamics,
        };
        if dynamics.odes.iter().any(|o| o.var == var) {
            Some("integrated by an equation")
        } else if dynamics.updates.iter().any(|u| u.var == var) {
            Some("set by an update `<-`")
        } else {
            None
        }
    }

    fn declare_projection(
        &mut self,
        p: &ast::ProjectDecl,
        span: Span,
    ) -> Option<Handle<Projection>> {
        let auto = || {
            let names = |eps: &[ast::Endpoint]| {
                eps.iter()
                    .map(|e| e.name.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            format!("{}->{}", names(&p.sources), names(&p.targets))
        };
        let base = auto();
        let ordinal = self.projection_ordinals.entry(base.clone()).or_insert(0);
        *ordinal += 1;
        let stream_key = match *ordinal {
            1 => base.clone(),
            k => format!("{base}#{k}"),
        };
        let name = p.name.as_ref().map_or(base, |n| n.name.clone());
        let syn = self.model.synapse_types.push(SynapseType {
            name: format!("{name}$syn"),
            declared: false,
            params: Vec::new(),
            states: Vec::new(),
            span,
        });
        let h = self.model.projections.push(Projection {
            name: name.clone(),
            stream_key,
            pre: Endpoint {
                parts: Vec::new(),
                element: ElementType::Synapse(syn),
            },
            post: Endpoint {
                parts: Vec::new(),
                element: ElementType::Synapse(syn),
            },
            synapse: syn,
            code: SynapseCode::default(),
            connect: Connect {
                rule: ConnectRule::AllToAll,
                autapses: true,
                span,
            },
            delay: None,
            layout: Layout::Auto,
            inits: Vec::new(),
            couplings: Vec::new(),
            span,
        });
        if let Some(n) = &p.name {
            self.declare(n, GlobalName::Projection(h));
        } else {
            // Unnamed projections get unique readable names; they cannot be referred to.
            let mut k = 1;
            while self
                .model
                .projections
                .iter()
                .any(|(o, pr)| o != h && pr.name == self.model.projections[h].name)
            {
                k += 1;
                self.model.projections[h].name = format!("{name}#{k}");
            }
        }
        Some(h)
    }

    fn endpoint(&mut self, eps: &[ast::Endpoint], side: &str) -> Option<Endpoint> {
        let mut parts = Vec::new();
        let mut element: Option<(ElementType, Span)> = None;
        for ep in eps {
            let node = match self.names.get(&ep.name.name) {
                Some((GlobalName::Population(p), _)) => Node::Population(*p),
                Some((GlobalName::Projection(p), _)) => Node::Projection(*p),
                other => {
                    let mut d = Diagnostic::error(
                        ep.name.span,
                        format!("unknown population `{}`", ep.name.name),
                    );
                    d = match other {
                        Some((g, s)) => d
                            .with_label(format!(
                                "this is {}, not a population or projection",
                                g.describe()
                            ))
                            .with_secondary(*s, "declared here"),
                        None => d.with_label("no population or projection of that name"),
                    };
                    let cands: Vec<String> = self
                        .names
                        .iter()
                        .filter(|(_, (g, _))| {
                            matches!(g, GlobalName::Population(_) | GlobalName::Projection(_))
                        })
                        .map(|(n, _)| n.clone())
                        .collect();
                    if let Some(s) = funcs::suggest(&ep.name.name, cands.iter().map(String::as_str))
                    {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    self.push_unknown(&ep.name.name, d);
                    return None;
                }
            };
            let elem = self.model.element_type(node);
            if let Some((first, first_span)) = element {
                if first != elem {
                    self.diags.push(
                        Diagnostic::error(ep.span, format!("all {side} populations of a projection must share one element type; `{}` is a {}", ep.name.name, self.element_name(elem)))
                            .with_label("different element type")
                            .with_secondary(first_span, format!("this is a {}", self.element_name(first))),
                    );
                    return None;
                }
            } else {
                element = Some((elem, ep.span));
            }
            let size = self.model.node_size(node);
            let (start, end) = match (&ep.slice, size) {
                (None, Some(n)) => (0, n),
                (None, None) => (0, u32::MAX),
                (Some(s), None) => {
                    self.diags.push(
                        Diagnostic::error(s.span, "a projection's synapses cannot be sliced")
                            .with_label("synapse counts are only known at run time"),
                    );
                    return None;
                }
                (Some(s), Some(n)) => self.slice(s, n, &ep.name.name)?,
            };
            parts.push(EndpointPart { node, start, end });
        }
        Some(Endpoint {
            parts,
            element: element?.0,
        })
    }

    /// A constant slice `a..b` of something with `n` elements.
    fn slice(&mut self, s: &ast::Expr, n: u32, name: &str) -> Option<(u32, u32)> {
        let ExprKind::Range { start, end } = &s.kind else {
            self.diags.push(
                Diagnostic::error(s.span, "expected a range `a..b`").with_label("not a range"),
            );
            return None;
        };
        let a = match start {
            Some(e) => self.const_size(e, "a slice bound")?,
            None => 0,
        };
        let b = match end {
            Some(e) => self.const_size(e, "a slice bound")?,
            None => n,
        };
        if b > n || a >= b {
            let msg = if b > n {
                format!("slice {a}..{b} is out of range: `{name}` has {n} elements")
            } else {
                format!("slice {a}..{b} is empty")
            };
            self.diags.push(
                Diagnostic::error(s.span, msg).with_label(format!("valid indices are 0..{n}")),
            );
            return None;
        }
        Some((a, b))
    }

    fn projection(&mut self, h: Handle<Projection>, p: &'a ast::ProjectDecl) {
        self.stream_item = format!("projection {}", self.model.projections[h].stream_key);
        let syn = match &p.via {
            Some(v) => match self.names.get(&v.name) {
                Some((GlobalName::Synapse(s), _)) => {
                    self.used_synapses.insert(*s);
                    *s
                }
                other => {
                    let mut d =
                        Diagnostic::error(v.span, format!("unknown synapse type `{}`", v.name));
                    d = match other {
                        Some((g, s)) => d
                            .with_label(format!("this is {}", g.describe()))
                            .with_secondary(*s, "declared here"),
                        None => d.with_label("no synapse of that name"),
                    };
                    let cands: Vec<String> = self
                        .model
                        .synapse_types
                        .iter()
                        .filter(|(_, s)| s.declared)
                        .map(|(_, s)| s.name.clone())
                        .collect();
                    if let Some(s) = funcs::suggest(&v.name, cands.iter().map(String::as_str)) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    self.push_unknown(&v.name, d);
                    return;
                }
            },
            None => self.model.projections[h].synapse,
        };
        let (Some(pre), Some(post)) = (
            self.endpoint(&p.sources, "source"),
            self.endpoint(&p.targets, "target"),
        ) else {
            return;
        };
        {
            let pr = &mut self.model.projections[h];
            pr.pre = pre.clone();
            pr.post = post.clone();
            pr.synapse = syn;
        }
        let own = ElementType::Synapse(syn);
        let mut ctx = Ctx {
            own: Some(own),
            pre: Some(pre.element),
            post: Some(post.element),
            indices: true,
            random: true,
            time: true,
            params: true,
            place: "synapse code",
            ..Ctx::default()
        };
        // Synapse type code, instantiated against this projection's endpoints.
        let mut code = SynapseCode::default();
        let mut method_span = None;
        let body: &[ast::Stmt] = self.synapse_bodies.get(&syn).copied().unwrap_or(&[]);
        for st in body {
            match &st.kind {
                StmtKind::Let { name, value } => {
                    self.let_stmt(&mut ctx, &mut code.dynamics, name, value, own)
                }
                StmtKind::Ode {
                    var,
                    rhs,
                    unless_refractory,
                } => {
                    if let Some(u) = unless_refractory {
                        self.diags.push(
                            Diagnostic::error(*u, "synapses are never refractory")
                                .with_label("remove `unless refractory`"),
                        );
                    }
                    if let Some(o) = self.ode(&ctx, var, rhs, false, st.span, &code.dynamics) {
                        code.dynamics.odes.push(o);
                    }
                }
                StmtKind::Update { var, value } => {
                    if let Some(u) = self.update(&ctx, own, var, value, st.span) {
                        code.dynamics.updates.push(u);
                    }
                }
                StmtKind::Method(m) => {
                    if let Some(m) = self.method(m) {
                        code.dynamics.method = Some(m);
                        method_span = Some(st.span);
                    }
                }
                StmtKind::On { trigger, body } => {
                    self.on_block(&ctx, own, trigger, body, &mut code)
                }
                _ => {}
            }
        }
        let mut connect: Option<Connect> = None;
        let mut connect_written = false;
        let mut delay: Option<(Handle<Expr>, Span)> = None;
        let mut layout: Option<(Layout, Span)> = None;
        let mut couplings: Vec<Coupling> = Vec::new();
        let mut inits: Vec<(Handle<Variable>, Handle<Expr>)> = Vec::new();
        for st in &p.body {
            match st {
                ProjStmt::Connect(e, span) => {
                    if let Some(prev) = &connect {
                        self.diags.push(
                            Diagnostic::error(*span, "a projection has one `connect` rule")
                                .with_label("second rule")
                                .with_secondary(prev.span, "first rule"),
                        );
                        continue;
                    }
                    connect_written = true;
                    if let Some(c) = self.connect_rule(e, *span, &pre, &post, &ctx) {
                        connect = Some(c);
                    }
                }
                ProjStmt::Delay(e, span) => {
                    if let Some((_, prev)) = &delay {
                        self.diags.push(
                            Diagnostic::error(*span, "a projection has one `delay`")
                                .with_label("second delay")
                                .with_secondary(*prev, "first delay"),
                        );
                        continue;
                    }
                    let mut c2 = ctx.clone();
                    c2.time = false;
                    c2.place = "a delay";
                    let d = self.expr_dim(e, &c2, Dim::TIME, "a delay");
                    match self.const_eval(d) {
                        Some(v) if v < 0.0 => self.diags.push(
                            Diagnostic::error(
                                e.span,
                                format!("a delay must not be negative, found {v} s"),
                            )
                            .with_label("negative delay"),
                        ),
                        Some(0.0) => {}
                        _ => delay = Some((d, *span)),
                    }
                }
                ProjStmt::Layout(name, span) => {
                    if let Some((_, prev)) = &layout {
                        self.diags.push(
                            Diagnostic::error(*span, "a projection has one `layout`")
                                .with_label("second layout")
                                .with_secondary(*prev, "first layout"),
                        );
                        continue;
                    }
                    match Layout::NAMES.iter().find(|(n, _)| *n == name.name) {
                        Some((_, l)) => layout = Some((*l, *span)),
                        None => self.diags.push(
                            Diagnostic::error(
                                name.span,
                                format!(
                                    "unknown layout `{}`; the layouts are {}",
                                    name.name,
                                    Layout::NAMES
                                        .iter()
                                        .map(|(n, _)| format!("`{n}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            )
                            .with_label("not a layout"),
                        ),
                    }
                }
                ProjStmt::On { trigger, body, .. } => {
                    self.on_block(&ctx, own, trigger, body, &mut code)
                }
                ProjStmt::Assign(a) => {
                    self.projection_assign(a, &ctx, own, &post, &mut couplings, &mut inits)
                }
            }
        }
        let Some(connect) = connect else {
            if connect_written {
                return; // the rule had an error, already reported
            }
            self.diags.push(
                Diagnostic::error(
                    p.sources
                        .first()
                        .map_or(self.model.projections[h].span, |s| s.span)
                        .to(p
                            .targets
                            .last()
                            .map_or(self.model.projections[h].span, |t| t.span)),
                    "projection has no `connect` rule",
                )
                .with_label("which pairs are connected?")
                .with_help("add e.g. `{ connect bernoulli(0.02) }` or `{ connect all_to_all }`"),
            );
            return;
        };
        if !code.on_pre.is_empty() {
            for part in &pre.parts {
                if let Node::Population(pp) = part.node {
                    let pop = &self.model.populations[pp];
                    if !self.model.can_spike(pop) {
                        let pname = pop.name.clone();
                        let cname = self.model.cell_types[pop.cell_type].name.clone();
                        self.diags.push(
                            Diagnostic::error(p.sources[0].span, format!("`{pname}` never spikes, so `on pre` code never runs"))
                                .with_label(format!("cell type `{cname}` has no spike event"))
                                .with_help("add `spike when ...` to the cell type, or use a coupling `post.x = sum(...)` for graded transmission"),
                        );
                    }
                }
            }
        }
        // Couplings must not target variables that dynamics also write.
        for c in &couplings {
            if let Some(reason) = self.written_by_dynamics(post.element, c.target, None) {
                let name = self.model.variables[c.target].name.clone();
                self.diags.push(
                    Diagnostic::error(c.span, format!("coupling onto `{name}`, which is {reason}"))
                        .with_label("written twice every step")
                        .with_secondary(self.model.variables[c.target].span, "declared here")
                        .with_help("a coupling recomputes its target every step; give it a plain `state` and use that in the equation"),
                );
            }
        }
        if let ElementType::Synapse(_) = post.element {
            for part in &post.parts {
                if let Node::Projection(target) = part.node {
                    let target_code = self.model.projections[target].code.clone();
                    for c in &couplings {
                        if let Some(reason) =
                            self.written_by_dynamics(post.element, c.target, Some(&target_code))
                        {
                            let name = self.model.variables[c.target].name.clone();
                            self.diags.push(
                                Diagnostic::error(
                                    c.span,
                                    format!("coupling onto `{name}`, which is {reason}"),
                                )
                                .with_label("written twice every step"),
                            );
                        }
                    }
                }
            }
        }
        let chosen = crate::check::choose_method(self, &code.dynamics, method_span);
        self.projection_methods.insert(h, chosen);
        let pr = &mut self.model.projections[h];
        pr.code = code;
        pr.connect = connect;
        pr.delay = delay.map(|(d, _)| d);
        pr.layout = layout.map_or(Layout::Auto, |(l, _)| l);
        pr.couplings = couplings;
        pr.inits = inits;
    }

    fn on_block(
        &mut self,
        ctx: &Ctx,
        own: ElementType,
        trigger: &ast::Ident,
        body: &[ast::Assign],
        code: &mut SynapseCode,
    ) {
        let stmts = self.statements(body, ctx, own, &format!("`on {}` code", trigger.name));
        match trigger.name.as_str() {
            "pre" => code.on_pre.extend(stmts),
            "post" => code.on_post.extend(stmts),
            "step" => code.on_step.extend(stmts),
            _ => self.diags.push(
                Diagnostic::error(
                    trigger.span,
                    format!("unknown trigger `on {}`", trigger.name),
                )
                .with_label("expected `pre`, `post` or `step`"),
            ),
        }
    }

    fn projection_assign(
        &mut self,
        a: &ast::Assign,
        ctx: &Ctx,
        own: ElementType,
        post: &Endpoint,
        couplings: &mut Vec<Coupling>,
        inits: &mut Vec<(Handle<Variable>, Handle<Expr>)>,
    ) {
        let segs = &a.target.segments;
        match segs.as_slice() {
            [name] => {
                if a.op != AssignOp::Set {
                    self.diags.push(
                        Diagnostic::error(a.span, "initial values are set with `=`")
                            .with_label("not `=`"),
                    );
                    return;
                }
                let Some(v) = self.find_var(own, &name.name) else {
                    let mut d = Diagnostic::error(
                        name.span,
                        format!("{} has no variable `{}`", self.element_name(own), name.name),
                    )
                    .with_label("unknown variable");
                    if name.name == "weight" || name.name == "w" {
                        d = d.with_help("declare the weight in the synapse type, e.g. `param w = 1 nS`, and use it in `on pre`");
                    }
                    self.diags.push(d);
                    return;
                };
                if inits.iter().any(|(x, _)| *x == v) {
                    self.diags.push(
                        Diagnostic::error(name.span, format!("`{}` is set twice", name.name))
                            .with_label("second value"),
                    );
                    return;
                }
                let mut c2 = ctx.clone();
                c2.time = false;
                c2.place = "a synapse initial value";
                let regime = self.model.variables[v].regime;
                let dim = self.model.variables[v].dim;
                let (value, _) = self.regime_value(
                    &a.value,
                    &c2,
                    regime,
                    Some(dim),
                    &format!("the value of `{}`", name.name),
                );
                inits.push((v, value));
            }
            [side, name] if side.name == "post" || side.name == "pre" => {
                if side.name == "pre" {
                    self.diags.push(
                        Diagnostic::error(side.span, "a coupling writes to `post`")
                            .with_label("cannot couple onto the source")
                            .with_help("swap the projection's direction"),
                    );
                    return;
                }
                if a.op != AssignOp::Set {
                    self.diags.push(
                        Diagnostic::error(
                            a.span,
                            "a coupling is written `post.x = sum(...)` or `post.x = mean(...)`",
                        )
                        .with_label(format!("`{}` is for event code", a.op.symbol()))
                        .with_help("to add on every step, use `on step { post.x += ... }`"),
                    );
                    return;
                }
                let Some(target) = self.find_var(post.element, &name.name) else {
                    self.unknown_member(post.element, name);
                    return;
                };
                if self.model.variables[target].kind != VarKind::State {
                    self.diags.push(
                        Diagnostic::error(
                            name.span,
                            format!(
                                "cannot couple onto `{}`, which is a {}",
                                name.name,
                                self.model.variables[target].kind.keyword()
                            ),
                        )
                        .with_label("not a state"),
                    );
                    return;
                }
                let reduce = match a.value.call_name() {
                    Some(("sum", [arg])) if arg.name.is_none() => Some((Reduce::Sum, &arg.value)),
                    Some(("mean", [arg])) if arg.name.is_none() => Some((Reduce::Mean, &arg.value)),
                    _ => None,
                };
                let Some((reduce, arg)) = reduce else {
                    self.diags.push(
                        Diagnostic::error(a.value.span, "a coupling's value is `sum(...)` or `mean(...)` over the synapses onto each target")
                            .with_label("expected `sum(...)` or `mean(...)`")
                            .with_help(format!("e.g. `post.{} = sum(w * pre.x)`", name.name)),
                    );
                    return;
                };
                let mut c2 = ctx.clone();
                c2.place = "a coupling";
                let dim = self.model.variables[target].dim;
                let value = self.expr_dim(
                    arg,
                    &c2,
                    dim,
                    &format!("the coupling onto `post.{}`", name.name),
                );
                if let Some(prev) = couplings.iter().find(|c| c.target == target) {
                    self.diags.push(
                        Diagnostic::error(
                            a.span,
                            format!("`post.{}` is coupled twice in one projection", name.name),
                        )
                        .with_label("second coupling")
                        .with_secondary(prev.span, "first coupling"),
                    );
                    return;
                }
                couplings.push(Coupling {
                    target,
                    reduce,
                    value,
                    span: a.span,
                });
            }
            _ => self.diags.push(
                Diagnostic::error(a.target.span, "expected a synapse variable or `post.x`")
                    .with_label("cannot assign here"),
            ),
        }
    }

    fn connect_rule(
        &mut self,
        e: &ast::Expr,
        span: Span,
        pre: &Endpoint,
        post: &Endpoint,
        ctx: &Ctx,
    ) -> Option<Connect> {
        let (name, args): (&str, &[ast::Arg]) = match &e.kind {
            ExprKind::Name(n) => (n.as_str(), &[]),
            _ => match e.call_name() {
                Some(x) => x,
                None => {
                    self.diags.push(
                        Diagnostic::error(
                            e.span,
                            "expected a connect rule such as `bernoulli(0.1)`",
                        )
                        .with_label("not a rule"),
                    );
                    return None;
                }
            },
        };
        let mut autapses = true;
        let mut positional = Vec::new();
        for a in args {
            match &a.name {
                Some(n) if n.name == "autapses" => match &a.value.kind {
                    ExprKind::Bool(b) => autapses = *b,
                    _ => self.diags.push(
                        Diagnostic::error(a.value.span, "`autapses` is `true` or `false`")
                            .with_label("not a boolean"),
                    ),
                },
                Some(n) => {
                    self.diags.push(
                        Diagnostic::error(
                            n.span,
                            format!("unknown option `{}` for a connect rule", n.name),
                        )
                        .with_label("the only option is `autapses`"),
                    );
                    return None;
                }
                None => positional.push(&a.value),
            }
        }
        let want = |l: &mut Self, n: usize| -> bool {
            if positional.len() != n {
                l.diags.push(
                    Diagnostic::error(
                        e.span,
                        format!(
                            "`{name}` takes {n} argument{}, found {}",
                            if n == 1 { "" } else { "s" },
                            positional.len()
                        ),
                    )
                    .with_label("wrong number of arguments"),
                );
                false
            } else {
                true
            }
        };
        let rule = match name {
            "bernoulli" => {
                if !want(self, 1) {
                    return None;
                }
                let mut c2 = ctx.clone();
                c2.time = false;
                c2.place = "a connection probability";
                // A probability, or a condition on i and j (true connects, false does not).
                let (p, ty) = self.expr(positional[0], &c2);
                match ty {
                    Ty::Bool | Ty::Error => {}
                    Ty::Real(d) if d.is_none() => self.check_probability(p, positional[0].span),
                    Ty::Real(d) => self.diags.push(
                        Diagnostic::error(positional[0].span, format!("unit mismatch: a connection probability must be dimensionless, found {d}"))
                            .with_label(format!("this is in {d}")),
                    ),
                }
                ConnectRule::Bernoulli(p)
            }
            "fixed_indegree" | "fixed_outdegree" => {
                if !want(self, 1) {
                    return None;
                }
                let k = self.const_size(positional[0], "a degree")?;
                let (other, side) = if name == "fixed_indegree" {
                    (pre, "source")
                } else {
                    (post, "target")
                };
                let n = other.size();
                if other
                    .parts
                    .iter()
                    .all(|p| matches!(p.node, Node::Population(_)))
                    && k > n
                {
                    self.diags.push(
                        Diagnostic::error(
                            positional[0].span,
                            format!("degree {k} is larger than the {n} {side} elements"),
                        )
                        .with_label("cannot pick that many distinct partners"),
                    );
                    return None;
                }
                if name == "fixed_indegree" {
                    ConnectRule::FixedIndegree(k)
                } else {
                    ConnectRule::FixedOutdegree(k)
                }
            }
            "fixed_total" => {
                if !want(self, 1) {
                    return None;
                }
                ConnectRule::FixedTotal(self.const_size(positional[0], "a number of synapses")?)
            }
            "all_to_all" => {
                if !want(self, 0) {
                    return None;
                }
                ConnectRule::AllToAll
            }
            "one_to_one" => {
                if !want(self, 0) {
                    return None;
                }
                let all_pops = pre
                    .parts
                    .iter()
                    .chain(&post.parts)
                    .all(|p| matches!(p.node, Node::Population(_)));
                if all_pops && pre.size() != post.size() {
                    self.diags.push(
                        Diagnostic::error(
                            e.span,
                            format!(
                                "`one_to_one` needs ends of equal size, found {} and {}",
                                pre.size(),
                                post.size()
                            ),
                        )
                        .with_label("sizes differ"),
                    );
                    return None;
                }
                ConnectRule::OneToOne
            }
            "file" => match positional.as_slice() {
                [ast::Expr {
                    kind: ExprKind::Str(path),
                    span: ps,
                }] => {
                    self.check_file(path, *ps);
                    ConnectRule::File(path.clone())
                }
                _ => {
                    self.diags.push(
                        Diagnostic::error(e.span, "`file` takes one file name in quotes")
                            .with_label("e.g. `file(\"pairs.npy\")`"),
                    );
                    return None;
                }
            },
            other => {
                let rules = [
                    "bernoulli",
                    "fixed_indegree",
                    "fixed_outdegree",
                    "fixed_total",
                    "all_to_all",
                    "one_to_one",
                    "file",
                ];
                let mut d = Diagnostic::error(e.span, format!("unknown connect rule `{other}`"))
                    .with_label("not a connect rule");
                d = match funcs::suggest(other, rules) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("rules are {}", rules.join(", "))),
                };
                self.diags.push(d);
                return None;
            }
        };
        Some(Connect {
            rule,
            autapses,
            span,
        })
    }

    fn record(&mut self, r: &ast::RecordItem) {
        let what = self.record_what(&r.what);
        let every = r.every.as_ref().and_then(|e| {
            let ctx = Ctx::constant("a sampling interval");
            let h = self.expr_dim(e, &ctx, Dim::TIME, "a sampling interval");
            let v = self.const_eval(h)?;
            let dt = self.model.run.dt;
            let ratio = v / dt;
            if v <= 0.0 {
                self.diags.push(
                    Diagnostic::error(e.span, "a sampling interval must be positive")
                        .with_label("not positive"),
                );
                None
            } else if (ratio - ratio.round()).abs() > 1e-9 * ratio.max(1.0) || ratio.round() < 1.0 {
                self.diags.push(
                    Diagnostic::error(
                        e.span,
                        format!("sampling interval {v} s is not a multiple of dt = {dt} s"),
                    )
                    .with_label("not a whole number of steps"),
                );
                None
            } else {
                Some(v)
            }
        });
        let Some(what) = what else { return };
        if r.at_end.is_some() && !matches!(what, RecordWhat::State { .. }) {
            self.diags.push(
                Diagnostic::error(r.span, "`at end` records a variable's final values")
                    .with_label("only for variables"),
            );
            return;
        }
        if r.every.is_some()
            && !matches!(
                what,
                RecordWhat::State { .. } | RecordWhat::Rate { .. } | RecordWhat::Let { .. }
            )
        {
            self.diags.push(
                Diagnostic::error(
                    r.span,
                    "`every` samples variables and rates; events are recorded as they happen",
                )
                .with_label("`every` not allowed here"),
            );
            return;
        }
        self.model.records.push(Record {
            what,
            every,
            at_end: r.at_end.is_some(),
            span: r.span,
        });
    }

    fn record_what(&mut self, e: &ast::Expr) -> Option<RecordWhat> {
        let bad = |l: &mut Self| {
            l.diags
                .push(Diagnostic::error(e.span, "cannot record this").with_label(
                "expected `P.spikes`, `P.v`, `P.v[0..10]`, `rate(P)`, `Proj.w`, `Proj.edges` or a regime name",
            ));
            None
        };
        let (base, range) = match &e.kind {
            ExprKind::Index { base, index } if matches!(index.kind, ExprKind::Range { .. }) => {
                (base.as_ref(), Some(index.as_ref()))
            }
            _ => (e, None),
        };
        match &base.kind {
            ExprKind::Name(n) => match self.names.get(n) {
                Some((GlobalName::Regime(r), _)) if range.is_none() => Some(RecordWhat::Regime(*r)),
                _ => {
                    self.unknown_name_simple(n, base.span);
                    None
                }
            },
            ExprKind::Call { .. } => match base.call_name() {
                Some(("rate", [a])) => match &a.value.kind {
                    ExprKind::Name(n) => match self.names.get(n) {
                        Some((GlobalName::Population(p), _)) => {
                            Some(RecordWhat::Rate { population: *p })
                        }
                        _ => {
                            self.push_unknown(
                                n,
                                Diagnostic::error(
                                    a.value.span,
                                    format!("unknown population `{n}`"),
                                )
                                .with_label("not a population"),
                            );
                            None
                        }
                    },
                    _ => bad(self),
                },
                _ => bad(self),
            },
            ExprKind::Field { base: b, field } => {
                let ExprKind::Name(n) = &b.kind else {
                    return bad(self);
                };
                let node = match self.names.get(n) {
                    Some((GlobalName::Population(p), _)) => Node::Population(*p),
                    Some((GlobalName::Projection(p), _)) => Node::Projection(*p),
                    _ => {
                        self.push_unknown(
                            n,
                            Diagnostic::error(
                                b.span,
                                format!("unknown population or projection `{n}`"),
                            )
                            .with_label("nothing to record from"),
                        );
                        return None;
                    }
                };
                let elem = self.model.element_type(node);
                if let (Node::Projection(p), None, "edges") = (node, range, field.name.as_str()) {
                    if self.find_var(elem, "edges").is_none() {
                        return Some(RecordWhat::Edges { projection: p });
                    }
                }
                if let (Node::Population(p), None) = (node, range) {
                    let ct = self.model.populations[p].cell_type;
                    let ev = if field.name == "spikes" {
                        "spike"
                    } else {
                        field.name.as_str()
                    };
                    let has_event = self.model.cell_types[ct]
                        .events
                        .iter()
                        .any(|x| x.name == ev)
                        || (ev == "spike"
                            && self.model.populations[p].input.is_some_and(|i| {
                                matches!(self.model.inputs[i].kind, InputKind::SpikeFile { .. })
                            }));
                    if has_event {
                        return Some(RecordWhat::Events {
                            population: p,
                            event: ev.to_string(),
                        });
                    }
                    if field.name == "spikes" {
                        self.diags.push(
                            Diagnostic::error(
                                field.span,
                                format!("`{n}` has no spike event to record"),
                            )
                            .with_label("never spikes"),
                        );
                        return None;
                    }
                }
                let Some(var) = self.find_var(elem, &field.name) else {
                    if let Node::Population(p) = node {
                        let ct = self.model.populations[p].cell_type;
                        let found = self.model.cell_types[ct]
                            .dynamics
                            .lets
                            .iter()
                            .find(|(n, _)| *n == field.name)
                            .map(|(_, h)| *h);
                        if let Some(expr) = found {
                            return self.record_let(p, field, expr, range);
                        }
                    }
                    self.unknown_member(elem, field);
                    return None;
                };
                if self.model.variables[var].kind == VarKind::Const {
                    self.diags.push(
                        Diagnostic::error(
                            field.span,
                            format!("`{}` is a const and has no values to record", field.name),
                        )
                        .with_label("folded into the code")
                        .with_help("record a state or a param"),
                    );
                    return None;
                }
                let range = match range {
                    None => None,
                    Some(r) => match self.model.node_size(node) {
                        Some(size) => Some(self.slice(r, size, n)?),
                        None => Some({
                            let ExprKind::Range { start, end } = &r.kind else {
                                return bad(self);
                            };
                            let a = match start {
                                Some(s) => self.const_size(s, "a slice bound")?,
                                None => 0,
                            };
                            let b = match end {
                                Some(s) => self.const_size(s, "a slice bound")?,
                                None => u32::MAX,
                            };
                            if a >= b {
                                self.diags.push(
                                    Diagnostic::error(r.span, format!("slice {a}..{b} is empty"))
                                        .with_label("records nothing"),
                                );
                                return None;
                            }
                            // The synapse count is known only at run time: the range is
                            // clipped to it there.
                            (a, b)
                        }),
                    },
                };
                Some(RecordWhat::State { node, var, range })
            }
            _ => bad(self),
        }
    }

    /// `record P.x` where `x` is a `let` of P's cell type: its value on the state of each sample.
    fn record_let(
        &mut self,
        p: Handle<Population>,
        field: &ast::Ident,
        expr: Handle<Expr>,
        range: Option<&ast::Expr>,
    ) -> Option<RecordWhat> {
        if crate::check::has_random(&self.model, expr) {
            self.diags.push(
                Diagnostic::error(
                    field.span,
                    format!(
                        "`{}` draws random numbers and has no single value to record",
                        field.name
                    ),
                )
                .with_label("a let with a random draw")
                .with_help("make the draw a state updated each step and record that"),
            );
            return None;
        }
        let dim = match self.types.get(expr.index()) {
            Some(Ty::Real(d)) => *d,
            _ => {
                self.diags.push(
                    Diagnostic::error(
                        field.span,
                        format!("`{}` is a condition, not a value", field.name),
                    )
                    .with_label("nothing numeric to record")
                    .with_help("record `if(cond, 1, 0)` as a let instead"),
                );
                return None;
            }
        };
        let size = self.model.populations[p].size;
        let name = self.model.populations[p].name.clone();
        let range = match range {
            Some(r) => Some(self.slice(r, size, &name)?),
            None => None,
        };
        Some(RecordWhat::Let {
            population: p,
            name: field.name.clone(),
            expr,
            dim,
            range,
        })
    }

    /// Report that `name` is unknown, unless its error is already reported (a constant in a
    /// cycle, an item that did not parse).
    pub(super) fn push_unknown(&mut self, name: &str, d: Diagnostic) {
        if !self.reported_names.contains(name) {
            self.diags.push(d);
        }
    }

    fn unknown_name_simple(&mut self, n: &str, span: Span) {
        let mut d =
            Diagnostic::error(span, format!("unknown name `{n}`")).with_label("not declared");
        let cands: Vec<String> = self.names.keys().cloned().collect();
        if let Some(s) = funcs::suggest(n, cands.iter().map(String::as_str)) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.push_unknown(n, d);
    }
}

/// Whether an expression reads the time (`t` or `step`).
fn mentions_time(e: &ast::Expr) -> bool {
    let mut pending = vec![e];
    while let Some(e) = pending.pop() {
        match &e.kind {
            ExprKind::Name(n) if n == "t" || n == "step" => return true,
            ExprKind::Call { .. } if e.call_name().is_some_and(|(n, _)| n == "timed") => {
                return true
            }
            ExprKind::Unary(_, x) => pending.push(x),
            ExprKind::Binary(_, a, b) => pending.extend([a.as_ref(), b.as_ref()]),
            ExprKind::Call { args, .. } => pending.extend(args.iter().map(|a| &a.value)),
            ExprKind::Array(xs) => pending.extend(xs.iter()),
            ExprKind::Index { base, index } => pending.extend([base.as_ref(), index.as_ref()]),
            _ => {}
        }
    }
    false
}
