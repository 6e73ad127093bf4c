//! The IR as text: what `tests/out/*.ir` holds and what `neurograph inspect --ir` prints.
//! Constants are in SI units; every handle prints as its arena name (`pop0`, `var3`).

use neurograph_grammar::{BinOp, UnOp};

use crate::funcs;
use crate::graph::connect_text;
use crate::ir::*;
use crate::Info;

pub fn print_model(model: &Model, info: &Info) -> String {
    let mut p = Printer {
        m: model,
        out: String::new(),
    };
    p.model(info);
    p.out
}

/// An expression in source-like syntax.
pub fn expr_text(model: &Model, e: Handle<Expr>) -> String {
    let p = Printer {
        m: model,
        out: String::new(),
    };
    p.expr(e, 0)
}

struct Printer<'m> {
    m: &'m Model,
    out: String,
}

fn prec(op: BinOp) -> u8 {
    match op {
        BinOp::Or => 1,
        BinOp::And => 2,
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 3,
        BinOp::Add | BinOp::Sub => 4,
        BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
        BinOp::Pow => 7,
    }
}

impl Printer<'_> {
    fn line(&mut self, s: impl AsRef<str>) {
        self.out.push_str(s.as_ref());
        self.out.push('\n');
    }

    fn expr(&self, e: Handle<Expr>, outer: u8) -> String {
        match &self.m.exprs[e] {
            Expr::Const(c) => {
                if *c < 0.0 && outer > 0 {
                    format!("({c:?})")
                } else {
                    format!("{c:?}")
                }
            }
            Expr::Bool(b) => b.to_string(),
            Expr::Var { var, side } => {
                let name = &self.m.variables[*var].name;
                let idx = self.m.variables[*var]
                    .regime
                    .map(|r| format!("[{}]", self.m.regimes[r].name))
                    .unwrap_or_default();
                match side {
                    Side::Own => format!("{name}{idx}"),
                    Side::Pre => format!("pre.{name}{idx}"),
                    Side::Post => format!("post.{name}{idx}"),
                }
            }
            Expr::Builtin(b) => b.name().to_string(),
            Expr::RegimeState(r) => self.m.regimes[*r].name.clone(),
            Expr::Unary(UnOp::Neg, a) => format!("-{}", self.expr(*a, 6)),
            Expr::Unary(UnOp::Not, a) => format!("not {}", self.expr(*a, 3)),
            Expr::Binary(op, a, b) => {
                let p = prec(*op);
                let (lp, rp) = if *op == BinOp::Pow {
                    (p + 1, p)
                } else {
                    (p, p + 1)
                };
                let s = format!(
                    "{} {} {}",
                    self.expr(*a, lp),
                    op.symbol(),
                    self.expr(*b, rp)
                );
                if p < outer {
                    format!("({s})")
                } else {
                    s
                }
            }
            Expr::Call(f, args) => {
                let args: Vec<String> = args.iter().map(|a| self.expr(*a, 0)).collect();
                format!("{}({})", funcs::name_of(*f), args.join(", "))
            }
            Expr::Load(src) => src.key.clone(),
            Expr::Token {
                path,
                vocab,
                cycle,
                document,
            } => {
                let cycle = if *cycle { ", cycle = true" } else { "" };
                let document = document.map_or(String::new(), |d| format!(", document = {d}"));
                format!("token(\"{path}\", vocab = {vocab}{cycle}{document})")
            }
            Expr::Array(xs) => {
                let xs: Vec<String> = xs.iter().map(|a| self.expr(*a, 0)).collect();
                format!("[{}]", xs.join(", "))
            }
        }
    }

    fn var_decl(&mut self, indent: &str, v: Handle<Variable>) {
        let var = &self.m.variables[v];
        let regime = var
            .regime
            .map(|r| format!("[{}]", self.m.regimes[r].name))
            .unwrap_or_default();
        let line = format!(
            "{indent}{} {v} {}{regime}: {} = {}",
            var.kind.keyword(),
            var.name,
            var.dim,
            self.expr(var.init, 0)
        );
        self.line(line);
    }

    fn statements(&self, stmts: &[Statement]) -> String {
        let parts: Vec<String> = stmts
            .iter()
            .map(|s| {
                let side = match s.side {
                    Side::Own => "",
                    Side::Pre => "pre.",
                    Side::Post => "post.",
                };
                format!(
                    "{side}{} {} {}",
                    self.m.variables[s.var].name,
                    s.op.symbol(),
                    self.expr(s.value, 0)
                )
            })
            .collect();
        format!("{{ {} }}", parts.join("; "))
    }

    fn dynamics(&mut self, d: &Dynamics, chosen: Option<Method>) {
        for (name, e) in &d.lets {
            let l = format!("  let {name} = {}", self.expr(*e, 0));
            self.line(l);
        }
        for o in &d.odes {
            let l = format!(
                "  ode d{}/dt = {}{}",
                self.m.variables[o.var].name,
                self.expr(o.rhs, 0),
                if o.unless_refractory {
                    "  unless refractory"
                } else {
                    ""
                }
            );
            self.line(l);
        }
        for u in &d.updates {
            let l = format!(
                "  update {} <- {}",
                self.m.variables[u.var].name,
                self.expr(u.value, 0)
            );
            self.line(l);
        }
        if let (Some(m), false) = (chosen, d.odes.is_empty()) {
            let how = if d.method.is_some() {
                "requested"
            } else {
                "default"
            };
            self.line(format!("  method {} ({how})", m.name()));
        }
    }

    fn endpoint(&self, e: &Endpoint) -> String {
        let parts: Vec<String> = e
            .parts
            .iter()
            .map(|p| {
                let n = match p.node {
                    Node::Population(h) => h.to_string(),
                    Node::Projection(h) => h.to_string(),
                };
                if p.end == u32::MAX {
                    n
                } else {
                    format!("{n}[{}..{}]", p.start, p.end)
                }
            })
            .collect();
        parts.join(", ")
    }

    fn model(&mut self, info: &Info) {
        let m = self.m;
        self.line(format!("model {}", m.name));
        let r = &m.run;
        self.line(format!(
            "run dt = {:?} s, duration = {:?} s, seed = {}, precision = {}",
            r.dt,
            r.duration,
            r.seed,
            if r.precision == Precision::F32 {
                "f32"
            } else {
                "f64"
            }
        ));
        for (h, reg) in m.regimes.iter() {
            let rows: Vec<String> = reg
                .transition
                .iter()
                .map(|row| {
                    format!(
                        "[{}]",
                        row.iter()
                            .map(|x| format!("{x:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .collect();
            let init = reg
                .initial
                .map_or("uniform".to_string(), |k| reg.states[k as usize].clone());
            self.line(format!(
                "{h} {}: states {}; transition [{}]; initial {init}",
                reg.name,
                reg.states.join(", "),
                rows.join(", ")
            ));
        }
        for &g in &m.globals {
            self.var_decl("", g);
        }
        for (h, ct) in m.cell_types.iter() {
            self.line(format!("{h} {} {}", ct.kind.keyword(), ct.name));
            for &v in ct.params.iter().chain(&ct.states) {
                self.var_decl("  ", v);
            }
            self.dynamics(&ct.dynamics, info.cell_methods.get(&h).copied());
            for ev in &ct.events {
                let trig = match &ev.trigger {
                    Trigger::When(c) => format!("when {}", self.expr(*c, 0)),
                    Trigger::Probability(p) => format!("with probability {}", self.expr(*p, 0)),
                };
                let l = format!("  event {} {trig} {}", ev.name, self.statements(&ev.body));
                self.line(l);
            }
            match &ct.refractory {
                Some(Refractory::Duration(d)) => {
                    let l = format!("  refractory for {} s", self.expr(*d, 0));
                    self.line(l)
                }
                Some(Refractory::Condition(c)) => {
                    let l = format!("  refractory while {}", self.expr(*c, 0));
                    self.line(l)
                }
                None => {}
            }
        }
        for (h, st) in m.synapse_types.iter() {
            if !st.declared {
                continue;
            }
            self.line(format!("{h} synapse {}", st.name));
            for &v in st.params.iter().chain(&st.states) {
                self.var_decl("  ", v);
            }
        }
        for (h, p) in m.populations.iter() {
            let from = p.input.map(|i| format!(" (input {i})")).unwrap_or_default();
            self.line(format!(
                "{h} {} = {}[{}]{from}",
                p.name, p.cell_type, p.size
            ));
            for (v, e) in &p.overrides {
                let l = format!("  {} = {}", m.variables[*v].name, self.expr(*e, 0));
                self.line(l);
            }
        }
        for (h, i) in m.inputs.iter() {
            let what = match &i.kind {
                InputKind::Poisson { population } => format!("poisson -> {population}"),
                InputKind::Current {
                    population,
                    var,
                    value,
                } => {
                    format!(
                        "current {} -> {population}.{}",
                        self.expr(*value, 0),
                        m.variables[*var].name
                    )
                }
                InputKind::Tokens { population, path } => {
                    format!("tokens \"{path}\" -> {population}")
                }
                InputKind::SpikeFile { population, path } => {
                    format!("spikes \"{path}\" -> {population}")
                }
                InputKind::PoissonDrive {
                    population,
                    var,
                    n,
                    rate,
                    weight,
                } => format!(
                    "poisson_input {n} x rate {} weight {} -> {population}.{}",
                    self.expr(*rate, 0),
                    self.expr(*weight, 0),
                    m.variables[*var].name
                ),
            };
            self.line(format!("{h} {}: {what}", i.name));
        }
        for (h, pr) in m.projections.iter() {
            let st = &m.synapse_types[pr.synapse];
            let via = if st.declared {
                format!(" via {}", pr.synapse)
            } else {
                String::new()
            };
            self.line(format!(
                "{h} {}: {} -> {}{via}",
                pr.name,
                self.endpoint(&pr.pre),
                self.endpoint(&pr.post)
            ));
            self.line(format!("  connect {}", connect_text(m, &pr.connect)));
            if let Some(d) = pr.delay {
                let l = format!("  delay {} s", self.expr(d, 0));
                self.line(l);
            }
            if pr.layout != Layout::Auto {
                self.line(format!("  layout {}", pr.layout.name()));
            }
            for (v, e) in &pr.inits {
                let l = format!("  init {} = {}", m.variables[*v].name, self.expr(*e, 0));
                self.line(l);
            }
            self.dynamics(&pr.code.dynamics, info.projection_methods.get(&h).copied());
            for o in &pr.code.event_driven {
                let l = format!(
                    "  event-driven d{}/dt = {}",
                    m.variables[o.var].name,
                    self.expr(o.rhs, 0)
                );
                self.line(l);
            }
            for (name, stmts) in [
                ("pre", &pr.code.on_pre),
                ("post", &pr.code.on_post),
                ("step", &pr.code.on_step),
            ] {
                if !stmts.is_empty() {
                    let l = format!("  on {name} {}", self.statements(stmts));
                    self.line(l);
                }
            }
            for c in &pr.couplings {
                let red = if c.reduce == Reduce::Sum {
                    "sum"
                } else {
                    "mean"
                };
                let l = format!(
                    "  couple post.{} = {red}({})",
                    m.variables[c.target].name,
                    self.expr(c.value, 0)
                );
                self.line(l);
            }
        }
        for r in &m.records {
            let what = match &r.what {
                RecordWhat::Events { population, event } => format!("{population}.{event} events"),
                RecordWhat::State { node, var, range } => {
                    let n = match node {
                        Node::Population(h) => h.to_string(),
                        Node::Projection(h) => h.to_string(),
                    };
                    let rg = range
                        .map(|(a, b)| {
                            if b == u32::MAX {
                                format!("[{a}..]")
                            } else {
                                format!("[{a}..{b}]")
                            }
                        })
                        .unwrap_or_default();
                    format!("{n}.{}{rg}", m.variables[*var].name)
                }
                RecordWhat::Rate { population } => format!("rate({population})"),
                RecordWhat::Regime(h) => h.to_string(),
                RecordWhat::Edges { projection } => format!("{projection}.edges"),
                RecordWhat::Let {
                    population, name, ..
                } => format!("{population}.{name} (let)"),
            };
            let every = r
                .every
                .map(|e| format!(" every {e:?} s"))
                .unwrap_or_default();
            let end = if r.at_end { " at end" } else { "" };
            self.line(format!("record {what}{every}{end}"));
        }
        let order: Vec<String> = info
            .update_order
            .iter()
            .map(|n| match n {
                Node::Population(h) => h.to_string(),
                Node::Projection(h) => h.to_string(),
            })
            .collect();
        self.line(format!("update order: {}", order.join(", ")));
    }
}
