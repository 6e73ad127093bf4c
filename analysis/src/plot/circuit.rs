//! `circuit`: the circuit of `neurograph analyze TRACE groups --json FILE` as a layered
//! drawing: one column per hop, the deepest on the left, core neurons stacked by group (one
//! colour per hop and group, the group's members in a tinted box), target neurons on the right; one curve per interaction weight,
//! its width in proportion to |weight|, red when positive (the source drives the target),
//! blue when negative. Each node is `<circle class="node" data-id=… data-role=… data-group=…>`
//! and each edge `<path class="edge" data-from=… data-to=… data-weight=…>`, for tests.

use std::fmt::Write;

use serde_json::Value;

use super::{caption, esc, header, model_name, Plot, PlotOptions, HEIGHT, LEFT, TOP, WIDTH};
use crate::groups::GROUP_COLOURS;
use crate::trace::{Trace, TraceError};

/// Edge colours by sign.
pub const POSITIVE: &str = "#c0392b";
pub const NEGATIVE: &str = "#2c6fbb";

struct Node {
    id: String,
    role: String,
    /// 0: target; h: core neuron of hop h.
    layer: usize,
    group: Option<usize>,
}

struct Edge {
    from: String,
    to: String,
    weight: f64,
}

/// Stroke width of an edge of weight `w` (|w| <= 1 for the pass's normalised weights).
pub fn edge_width(w: f64) -> f64 {
    0.75 + 9.0 * w.abs().min(1.0)
}

fn read(path: &std::path::Path) -> Result<(Value, Vec<Node>, Vec<Edge>), TraceError> {
    let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |m: &str| TraceError::Option(format!("--circuit {}: {m}", path.display()));
    let doc: Value = serde_json::from_str(&text).map_err(|e| bad(&format!("not JSON: {e}")))?;
    if doc.get("format").and_then(Value::as_str) != Some("neurograph-analysis-groups") {
        return Err(bad(
            "not the JSON of `neurograph analyze TRACE groups --json FILE` (its \"format\" is not \"neurograph-analysis-groups\")",
        ));
    }
    let circuit = doc.get("circuit").ok_or_else(|| bad("no `circuit`"))?;
    let list = |k: &str| -> Result<&Vec<Value>, TraceError> {
        circuit
            .get(k)
            .and_then(Value::as_array)
            .ok_or_else(|| bad(&format!("`circuit.{k}` is not a list")))
    };
    let mut nodes = Vec::new();
    for n in list("nodes")? {
        let (Some(id), Some(role)) = (
            n.get("id").and_then(Value::as_str),
            n.get("role").and_then(Value::as_str),
        ) else {
            return Err(bad("a node is not {id, role, group}"));
        };
        let layer = n
            .get("layer")
            .and_then(Value::as_u64)
            .map_or(usize::from(role != "target"), |l| l as usize);
        if (role == "target") != (layer == 0) {
            return Err(bad(&format!(
                "node {id}: a target is layer 0 and only a target is"
            )));
        }
        nodes.push(Node {
            id: id.into(),
            role: role.into(),
            layer,
            group: n.get("group").and_then(Value::as_u64).map(|g| g as usize),
        });
    }
    let mut edges = Vec::new();
    for e in list("edges")? {
        let (Some(from), Some(to), Some(weight)) = (
            e.get("from").and_then(Value::as_str),
            e.get("to").and_then(Value::as_str),
            e.get("weight").and_then(Value::as_f64),
        ) else {
            return Err(bad("an edge is not {from, to, weight}"));
        };
        if !nodes.iter().any(|n| n.id == from) || !nodes.iter().any(|n| n.id == to) {
            return Err(bad(&format!(
                "edge {from} -> {to} names a node not in the list"
            )));
        }
        edges.push(Edge {
            from: from.into(),
            to: to.into(),
            weight,
        });
    }
    if !nodes.iter().any(|n| n.role == "target") {
        return Err(bad("the circuit has no target node"));
    }
    Ok((doc, nodes, edges))
}

/// Draw the circuit of the JSON document `opts.circuit`.
pub fn circuit(trace: &Trace, opts: &PlotOptions) -> Result<Plot, TraceError> {
    let path = opts.circuit.as_deref().ok_or_else(|| {
        TraceError::Option(
            "plot circuit needs --circuit FILE: the JSON of `neurograph analyze TRACE groups --json FILE`"
                .into(),
        )
    })?;
    let (doc, nodes, edges) = read(path)?;
    let target_text = doc
        .pointer("/target/text")
        .and_then(Value::as_str)
        .unwrap_or("target");
    let mut out = String::new();
    header(
        &mut out,
        &format!("Circuit of {target_text} ({})", model_name(trace)),
    );
    let targets: Vec<&Node> = nodes.iter().filter(|n| n.layer == 0).collect();
    let layers = nodes.iter().map(|n| n.layer).max().unwrap_or(0);
    // One colour per (layer, group), in that order.
    let mut keys: Vec<(usize, usize)> = nodes
        .iter()
        .filter_map(|n| n.group.map(|g| (n.layer, g)))
        .collect();
    keys.sort();
    keys.dedup();
    let colour_of = |layer: usize, g: Option<usize>| -> &'static str {
        g.and_then(|g| keys.iter().position(|&k| k == (layer, g)))
            .map_or("#888888", |k| GROUP_COLOURS[k % GROUP_COLOURS.len()])
    };
    let (top, bottom) = (TOP + 30.0, HEIGHT - 70.0);
    let x_tgt = WIDTH - 230.0;
    let x_left = LEFT + 90.0;
    // Layer l's column: the deepest on the left, the target on the right.
    let x_of = |l: usize| x_left + (layers - l) as f64 * (x_tgt - x_left) / layers.max(1) as f64;
    // The densest core layer sets the node size of all.
    let mut step = 48.0f64;
    for l in 1..=layers {
        let members: Vec<&Node> = nodes.iter().filter(|n| n.layer == l).collect();
        let mut gs: Vec<Option<usize>> = members.iter().map(|n| n.group).collect();
        gs.sort();
        gs.dedup();
        let slots = members.len() as f64 + 0.8 * gs.len().saturating_sub(1) as f64;
        step = step.min((bottom - top) / slots.max(1.0));
    }
    let radius = (step * 0.36).clamp(3.0, 14.0);
    let font = (step * 0.55).clamp(8.0, 15.0);
    let mut pos: Vec<(String, f64, f64)> = Vec::new();
    // (layer, group, x, y0, y1) of each group box.
    let mut boxes: Vec<(usize, usize, f64, f64, f64)> = Vec::new();
    for l in 1..=layers {
        // Ordered by group, then as listed (by rank within a group).
        let mut members: Vec<&Node> = nodes.iter().filter(|n| n.layer == l).collect();
        members.sort_by_key(|n| n.group.unwrap_or(usize::MAX));
        let mut gs: Vec<Option<usize>> = members.iter().map(|n| n.group).collect();
        gs.dedup();
        let slots = members.len() as f64 + 0.8 * gs.len().saturating_sub(1) as f64;
        let x = x_of(l);
        let mut y = top + (bottom - top - step * slots) / 2.0 + step / 2.0;
        let mut last = None;
        for n in members {
            if last.is_some() && n.group != last {
                y += 0.8 * step;
            }
            if let Some(g) = n.group {
                match boxes.last_mut() {
                    Some(b) if b.0 == l && b.1 == g => b.4 = y,
                    _ => boxes.push((l, g, x, y, y)),
                }
            }
            last = n.group;
            pos.push((n.id.clone(), x, y));
            y += step;
        }
    }
    let t_step = ((bottom - top) / targets.len().max(1) as f64).min(90.0);
    let mut ty = top + (bottom - top - t_step * targets.len() as f64) / 2.0 + t_step / 2.0;
    for n in &targets {
        pos.push((n.id.clone(), x_tgt, ty));
        ty += t_step;
    }
    let t_font = (t_step * 0.55).clamp(8.0, 15.0);
    let t_radius = (1.6 * radius.max(8.0)).min(t_step * 0.42);
    let at = |id: &str| pos.iter().find(|p| p.0 == id).map(|p| (p.1, p.2));
    // Group boxes behind the nodes, labelled above.
    for &(l, g, x, y0, y1) in &boxes {
        let colour = colour_of(l, Some(g));
        let pad = step * 0.5;
        let name = if layers > 1 {
            format!("hop {l} group {g}")
        } else {
            format!("group {g}")
        };
        let _ = writeln!(
            out,
            r##"<rect class="group" data-layer="{l}" data-group="{g}" x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" rx="8" fill="{colour}" fill-opacity="0.12" stroke="{colour}"/><text x="{:.2}" y="{:.2}" font-size="13" fill="{colour}">{}</text>"##,
            x - 85.0,
            y0 - pad,
            85.0 + radius + 8.0,
            y1 - y0 + 2.0 * pad,
            x - 83.0,
            y0 - pad - 4.0,
            esc(&name)
        );
    }
    // Edges, widest first so that thin ones stay visible on top.
    let mut order: Vec<&Edge> = edges.iter().collect();
    order.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
    for e in order {
        let (Some((x0, y0)), Some((x1, y1))) = (at(&e.from), at(&e.to)) else {
            continue;
        };
        let colour = if e.weight >= 0.0 { POSITIVE } else { NEGATIVE };
        let to_target = targets.iter().any(|t| t.id == e.to);
        let mx = (x0 + x1) / 2.0;
        let _ = writeln!(
            out,
            r##"<path class="edge" data-from="{}" data-to="{}" data-weight="{}" d="M {:.2} {y0:.2} C {mx:.2} {y0:.2} {mx:.2} {y1:.2} {:.2} {y1:.2}" fill="none" stroke="{colour}" stroke-opacity="0.75" stroke-width="{:.2}" stroke-linecap="round"/>"##,
            esc(&e.from),
            esc(&e.to),
            e.weight,
            x0 + radius,
            x1 - if to_target { t_radius } else { radius },
            edge_width(e.weight)
        );
    }
    // Nodes and labels.
    for n in nodes.iter().filter(|n| n.layer > 0) {
        let (x, y) = at(&n.id).unwrap_or((x_left, 0.0));
        let _ = writeln!(
            out,
            r##"<circle class="node" data-id="{}" data-role="{}" data-layer="{}" data-group="{}" cx="{x:.2}" cy="{y:.2}" r="{radius:.2}" fill="{}" stroke="#333"/><text x="{:.2}" y="{:.2}" font-size="{font:.1}" text-anchor="end">{}</text>"##,
            esc(&n.id),
            esc(&n.role),
            n.layer,
            n.group.map_or(String::new(), |g| g.to_string()),
            colour_of(n.layer, n.group),
            x - radius - 5.0,
            y + font * 0.35,
            esc(&n.id)
        );
    }
    for n in &targets {
        let (x, y) = at(&n.id).unwrap_or((x_tgt, 0.0));
        let _ = writeln!(
            out,
            r##"<circle class="node" data-id="{}" data-role="target" data-layer="0" data-group="" cx="{x:.2}" cy="{y:.2}" r="{t_radius:.2}" fill="#dddddd" stroke="#333" stroke-width="2"/><text x="{:.2}" y="{:.2}" font-size="{t_font:.1}" text-anchor="start">{}</text>"##,
            esc(&n.id),
            x + t_radius + 6.0,
            y + t_font * 0.35,
            esc(&n.id)
        );
    }
    // Legend: groups and edge signs.
    let lx = WIDTH - 120.0;
    let mut ly = TOP + 10.0;
    for &(l, g) in &keys {
        let name = if layers > 1 {
            format!("hop {l} group {g}")
        } else {
            format!("group {g}")
        };
        let _ = writeln!(
            out,
            r##"<circle class="legend" cx="{lx}" cy="{ly}" r="7" fill="{}"/><text x="{}" y="{}" font-size="14">{}</text>"##,
            colour_of(l, Some(g)),
            lx + 12.0,
            ly + 5.0,
            esc(&name)
        );
        ly += 22.0;
    }
    for (colour, name) in [(POSITIVE, "excites"), (NEGATIVE, "inhibits")] {
        let _ = writeln!(
            out,
            r##"<line class="legend" x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="4"/><text x="{}" y="{}" font-size="14">{name}</text>"##,
            lx - 7.0,
            lx + 7.0,
            lx + 12.0,
            ly + 5.0
        );
        ly += 22.0;
    }
    let core_count = nodes.iter().filter(|n| n.layer > 0).count();
    let _ = writeln!(
        out,
        r##"<text class="caption" x="{LEFT}" y="{}" font-size="13" fill="#555">{}</text>"##,
        HEIGHT - 30.0,
        esc(&format!(
            "{core_count} core neurons in {} groups over {layers} hop{}; edge width: interaction weight a(v→u) / Σ|a(·→u)| over the hop's core",
            keys.len(),
            if layers == 1 { "" } else { "s" }
        ))
    );
    // Hop 1's fidelity: the change of the target itself.
    let f = doc.pointer("/hops/0/fidelity");
    let g = |k: &str| f.and_then(|f| f.get(k)).and_then(Value::as_f64);
    if let (Some(c), Some(m), Some(sd)) = (
        g("core_change"),
        g("random_change_mean"),
        g("random_change_sd"),
    ) {
        caption(
            &mut out,
            &format!(
                "silencing hop 1's core changes the target's spikes by {:+.1} %; {} random sets of equal size: {:+.1} ± {:.1} % (mean ± SD)",
                100.0 * c,
                f.and_then(|f| f.get("random_sets"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                100.0 * m,
                100.0 * sd
            ),
        );
    }
    out.push_str("</svg>\n");
    Ok(Plot {
        svg: out,
        marks: vec![("edges".into(), edges.len())],
        neurons: vec![
            ("core".into(), core_count),
            ("target".into(), targets.len()),
        ],
    })
}
