//! `circuit`: the circuit of `neurograph analyze TRACE groups --json FILE` as a layered
//! drawing: core neurons on the left, stacked by group (one colour per group, the group's
//! members in a tinted box), target neurons on the right; one curve per interaction weight,
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
        nodes.push(Node {
            id: id.into(),
            role: role.into(),
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
    // Sources: ordered by group, then as listed (by rank within a group).
    let mut sources: Vec<&Node> = nodes.iter().filter(|n| n.role != "target").collect();
    sources.sort_by_key(|n| n.group.unwrap_or(usize::MAX));
    let targets: Vec<&Node> = nodes.iter().filter(|n| n.role == "target").collect();
    let groups = sources
        .iter()
        .filter_map(|n| n.group)
        .max()
        .map_or(0, |g| g + 1);
    let (top, bottom) = (TOP + 10.0, HEIGHT - 70.0);
    // Sources get a gap between groups of half a slot.
    let slots = sources.len() as f64 + 0.5 * groups.saturating_sub(1) as f64;
    let step = ((bottom - top) / slots.max(1.0)).min(48.0);
    let radius = (step * 0.36).clamp(3.0, 14.0);
    let font = (step * 0.55).clamp(8.0, 15.0);
    let x_src = LEFT + 170.0;
    let x_tgt = WIDTH - 230.0;
    let used = step * slots;
    let mut y = top + (bottom - top - used) / 2.0 + step / 2.0;
    let mut pos: Vec<(String, f64, f64)> = Vec::new();
    let mut last_group = None;
    let mut boxes: Vec<(usize, f64, f64)> = Vec::new();
    for n in &sources {
        if last_group.is_some() && n.group != last_group {
            y += step / 2.0;
        }
        if let Some(g) = n.group {
            match boxes.last_mut() {
                Some(b) if b.0 == g => b.2 = y,
                _ => boxes.push((g, y, y)),
            }
        }
        last_group = n.group;
        pos.push((n.id.clone(), x_src, y));
        y += step;
    }
    let t_step = ((bottom - top) / targets.len().max(1) as f64).min(90.0);
    let mut ty = top + (bottom - top - t_step * targets.len() as f64) / 2.0 + t_step / 2.0;
    for n in &targets {
        pos.push((n.id.clone(), x_tgt, ty));
        ty += t_step;
    }
    let t_font = (t_step * 0.55).clamp(8.0, 15.0);
    let at = |id: &str| pos.iter().find(|p| p.0 == id).map(|p| (p.1, p.2));
    // Group boxes behind the nodes.
    for &(g, y0, y1) in &boxes {
        let colour = GROUP_COLOURS[g % GROUP_COLOURS.len()];
        let pad = step * 0.5;
        let _ = writeln!(
            out,
            r##"<rect class="group" data-group="{g}" x="{}" y="{:.2}" width="{}" height="{:.2}" rx="8" fill="{colour}" fill-opacity="0.12" stroke="{colour}"/><text x="{}" y="{:.2}" font-size="14" fill="{colour}" text-anchor="end">group {g}</text>"##,
            x_src - 95.0,
            y0 - pad,
            95.0 + radius + 10.0,
            y1 - y0 + 2.0 * pad,
            x_src - 101.0,
            (y0 + y1) / 2.0 + 5.0
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
        let mx = (x0 + x1) / 2.0;
        let _ = writeln!(
            out,
            r##"<path class="edge" data-from="{}" data-to="{}" data-weight="{}" d="M {:.2} {y0:.2} C {mx:.2} {y0:.2} {mx:.2} {y1:.2} {:.2} {y1:.2}" fill="none" stroke="{colour}" stroke-opacity="0.75" stroke-width="{:.2}" stroke-linecap="round"/>"##,
            esc(&e.from),
            esc(&e.to),
            e.weight,
            x0 + radius,
            x1 - (1.6 * radius.max(8.0)).min(t_step * 0.42),
            edge_width(e.weight)
        );
    }
    // Nodes and labels.
    for n in &sources {
        let (x, y) = at(&n.id).unwrap_or((x_src, 0.0));
        let colour = n
            .group
            .map_or("#888888", |g| GROUP_COLOURS[g % GROUP_COLOURS.len()]);
        let _ = writeln!(
            out,
            r##"<circle class="node" data-id="{}" data-role="{}" data-group="{}" cx="{x:.2}" cy="{y:.2}" r="{radius:.2}" fill="{colour}" stroke="#333"/><text x="{:.2}" y="{:.2}" font-size="{font:.1}" text-anchor="end">{}</text>"##,
            esc(&n.id),
            esc(&n.role),
            n.group.map_or(String::new(), |g| g.to_string()),
            x - radius - 6.0,
            y + font * 0.35,
            esc(&n.id)
        );
    }
    for n in &targets {
        let (x, y) = at(&n.id).unwrap_or((x_tgt, 0.0));
        let r = (1.6 * radius.max(8.0)).min(t_step * 0.42);
        let _ = writeln!(
            out,
            r##"<circle class="node" data-id="{}" data-role="target" data-group="" cx="{x:.2}" cy="{y:.2}" r="{r:.2}" fill="#dddddd" stroke="#333" stroke-width="2"/><text x="{:.2}" y="{:.2}" font-size="{t_font:.1}" text-anchor="start">{}</text>"##,
            esc(&n.id),
            x + r + 6.0,
            y + t_font * 0.35,
            esc(&n.id)
        );
    }
    // Legend: groups and edge signs.
    let lx = WIDTH - 120.0;
    let mut ly = TOP + 10.0;
    for g in 0..groups {
        let colour = GROUP_COLOURS[g % GROUP_COLOURS.len()];
        let _ = writeln!(
            out,
            r##"<circle class="legend" cx="{lx}" cy="{ly}" r="7" fill="{colour}"/><text x="{}" y="{}" font-size="14">group {g}</text>"##,
            lx + 12.0,
            ly + 5.0
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
    let f = doc.get("fidelity");
    let g = |k: &str| f.and_then(|f| f.get(k)).and_then(Value::as_f64);
    let _ = writeln!(
        out,
        r##"<text class="caption" x="{LEFT}" y="{}" font-size="13" fill="#555">{}</text>"##,
        HEIGHT - 30.0,
        esc(&format!(
            "{} core neurons in {groups} groups; edge width: interaction weight a(v→u) / Σ|a(·→u)| over the core",
            sources.len()
        ))
    );
    if let (Some(c), Some(m), Some(sd)) = (
        g("core_change"),
        g("random_change_mean"),
        g("random_change_sd"),
    ) {
        caption(
            &mut out,
            &format!(
                "silencing the core changes the target's spikes by {:+.1} %; {} random sets of equal size: {:+.1} ± {:.1} % (mean ± SD)",
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
            ("core".into(), sources.len()),
            ("target".into(), targets.len()),
        ],
    })
}
