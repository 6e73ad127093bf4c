//! The model graph: populations and projections as nodes, projections as edges. Used for the
//! update order (a topological order of the zero-delay graded edges), zero-delay cycle
//! detection, and the Graphviz export. Per-synapse connectivity never lives here.

use std::collections::HashMap;
use std::fmt::Write;

use neurograph_grammar::Diagnostic;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::ir::*;

/// Population/projection graph. Edges carry the projection they come from and whether they
/// order updates within a step.
pub struct ModelGraph {
    pub graph: DiGraph<Node, (Handle<Projection>, bool)>,
    pub index: HashMap<Node, NodeIndex>,
}

impl ModelGraph {
    pub fn build(model: &Model) -> ModelGraph {
        let mut graph = DiGraph::new();
        let mut index = HashMap::new();
        for p in model.populations.handles() {
            index.insert(Node::Population(p), graph.add_node(Node::Population(p)));
        }
        for p in model.projections.handles() {
            index.insert(Node::Projection(p), graph.add_node(Node::Projection(p)));
        }
        for (h, pr) in model.projections.iter() {
            let orders = pr.is_zero_delay_graded();
            for a in &pr.pre.parts {
                for b in &pr.post.parts {
                    graph.add_edge(index[&a.node], index[&b.node], (h, orders));
                }
            }
        }
        ModelGraph { graph, index }
    }

    /// The graph restricted to the edges that order updates.
    fn ordering(&self) -> DiGraph<Node, Handle<Projection>> {
        self.graph
            .filter_map(|_, n| Some(*n), |_, (h, orders)| orders.then_some(*h))
    }

    /// Nodes in update order, or one diagnostic per zero-delay cycle. The order is
    /// topological over the ordering edges and otherwise follows declaration order
    /// (populations first). Projections appear only when they have dynamics of their own or
    /// take part in an ordering edge.
    pub fn update_order(&self, model: &Model) -> Result<Vec<Node>, Vec<Diagnostic>> {
        let g = self.ordering();
        if toposort(&g, None).is_err() {
            return Err(cycle_errors(model, &g));
        }
        // Kahn's algorithm with the smallest ready node first, for a stable, readable order.
        let mut indegree: Vec<usize> = g
            .node_indices()
            .map(|i| g.edges_directed(i, petgraph::Direction::Incoming).count())
            .collect();
        let mut ready: std::collections::BTreeSet<(Node, NodeIndex)> = g
            .node_indices()
            .filter(|i| indegree[i.index()] == 0)
            .map(|i| (g[i], i))
            .collect();
        let mut order = Vec::new();
        while let Some((node, i)) = ready.pop_first() {
            let linked = g.edges_directed(i, petgraph::Direction::Incoming).count()
                + g.edges_directed(i, petgraph::Direction::Outgoing).count()
                > 0;
            let keep = match node {
                Node::Population(_) => true,
                Node::Projection(p) => {
                    let d = &model.projections[p].code.dynamics;
                    linked || !d.odes.is_empty() || !d.updates.is_empty()
                }
            };
            if keep {
                order.push(node);
            }
            for e in g.edges(i) {
                let t = e.target();
                indegree[t.index()] -= 1;
                if indegree[t.index()] == 0 {
                    ready.insert((g[t], t));
                }
            }
        }
        Ok(order)
    }

    /// Graphviz DOT text: populations as boxes, projections used as endpoints as ellipses,
    /// event projections solid, graded/coupling projections dashed.
    pub fn to_dot(&self, model: &Model) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph \"{}\" {{", escape(&model.name));
        let _ = writeln!(out, "  rankdir=LR;");
        let _ = writeln!(out, "  node [fontname=\"Helvetica\"];");
        let used_as_node: Vec<bool> = self
            .graph
            .node_indices()
            .map(|i| {
                self.graph
                    .edges_directed(i, petgraph::Direction::Incoming)
                    .count()
                    + self
                        .graph
                        .edges_directed(i, petgraph::Direction::Outgoing)
                        .count()
                    > 0
                    || matches!(self.graph[i], Node::Population(_))
            })
            .collect();
        for i in self.graph.node_indices() {
            if !used_as_node[i.index()] {
                continue;
            }
            match self.graph[i] {
                Node::Population(p) => {
                    let pop = &model.populations[p];
                    let ct = &model.cell_types[pop.cell_type];
                    let kind = if pop.input.is_some() {
                        "input"
                    } else {
                        ct.kind.keyword()
                    };
                    let _ = writeln!(
                        out,
                        "  n{} [shape=box, label=\"{}\\n{} {} [{}]\"];",
                        i.index(),
                        escape(&pop.name),
                        kind,
                        escape(ct.name.trim_end_matches("$input")),
                        pop.size
                    );
                }
                Node::Projection(p) => {
                    let _ = writeln!(
                        out,
                        "  n{} [shape=ellipse, style=dotted, label=\"synapses of {}\"];",
                        i.index(),
                        escape(&model.projections[p].name)
                    );
                }
            }
        }
        for e in self.graph.edge_references() {
            let (h, orders) = *e.weight();
            let pr = &model.projections[h];
            let syn = &model.synapse_types[pr.synapse];
            let mut label = if syn.declared {
                syn.name.clone()
            } else {
                pr.name.clone()
            };
            let _ = write!(label, "\n{}", connect_text(model, &pr.connect));
            let style = if pr.couplings.is_empty() && pr.code.on_step.is_empty() {
                "solid"
            } else {
                "dashed"
            };
            let color = if orders { ", color=\"#b03030\"" } else { "" };
            let _ = writeln!(
                out,
                "  n{} -> n{} [label=\"{}\", style={style}{color}];",
                e.source().index(),
                e.target().index(),
                escape(&label)
            );
        }
        let _ = writeln!(out, "}}");
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn connect_text(model: &Model, c: &Connect) -> String {
    let base = match &c.rule {
        ConnectRule::Bernoulli(p) => match crate::lower::const_eval(model, *p) {
            Some(v) => format!("bernoulli({v})"),
            None => "bernoulli(expr)".to_string(),
        },
        ConnectRule::FixedIndegree(k) => format!("fixed_indegree({k})"),
        ConnectRule::FixedOutdegree(k) => format!("fixed_outdegree({k})"),
        ConnectRule::FixedTotal(k) => format!("fixed_total({k})"),
        ConnectRule::AllToAll => "all_to_all".to_string(),
        ConnectRule::OneToOne => "one_to_one".to_string(),
        ConnectRule::File(f) => format!("file(\"{f}\")"),
    };
    if c.autapses {
        base
    } else {
        format!("{base}, no autapses")
    }
}

fn cycle_errors(model: &Model, g: &DiGraph<Node, Handle<Projection>>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for scc in tarjan_scc(g) {
        let self_loop = scc.len() == 1 && g.find_edge(scc[0], scc[0]).is_some();
        if scc.len() < 2 && !self_loop {
            continue;
        }
        // Walk the cycle inside the component, starting from its first node in declaration order.
        let members: std::collections::HashSet<_> = scc.iter().copied().collect();
        let start = *scc.iter().min_by_key(|i| g[**i]).unwrap();
        let mut path = vec![start];
        let mut projs = Vec::new();
        let mut cur = start;
        loop {
            let next = g
                .edges(cur)
                .filter(|e| members.contains(&e.target()))
                .min_by_key(|e| (e.target() != start, g[e.target()]))
                .unwrap();
            projs.push(*next.weight());
            cur = next.target();
            if cur == start || path.contains(&cur) {
                path.push(cur);
                break;
            }
            path.push(cur);
        }
        let names: Vec<&str> = path.iter().map(|i| model.node_name(g[*i])).collect();
        let first = projs[0];
        let mut d = Diagnostic::error(
            model.projections[first].span,
            format!("zero-delay cycle: {}", names.join(" -> ")),
        )
        .with_label("this projection moves values within the step")
        .with_help("values cannot flow around a loop within one step: give one of these projections `delay = dt` so it reads the previous step");
        for p in projs.iter().skip(1) {
            if *p != first {
                d = d.with_secondary(model.projections[*p].span, "and this one closes the cycle");
            }
        }
        out.push(d);
    }
    out
}
