//! Run-time parameter overrides (`--set name=value`): resolving a name to the parameter it
//! means and checking the value's unit. Only `param`s can change without recompiling.

use neurograph_compiler::ir::*;
use neurograph_compiler::quantity::parse_quantity;
use neurograph_compiler::{BinOp, VarValue};

use crate::sim::{Override, SimError};

/// Resolve `name=value` (`--set`). Names are `p` (a model-level param), `Type.p` (a param of
/// a cell or synapse type, on every population or projection of that type) or
/// `Population.p` / `Projection.p` (that population's or projection's value only).
pub fn resolve(model: &Model, assignment: &str) -> Result<Override, SimError> {
    let (name, value) = assignment
        .split_once('=')
        .ok_or_else(|| SimError::new(format!("--set expects name=value, found `{assignment}`")))?;
    let (name, value) = (name.trim(), value.trim());
    let (var, node) = parameter(model, name).map_err(|e| SimError::new(format!("--set {e}")))?;
    let x = value_of(model, var, value).map_err(|e| SimError::new(format!("--set {name}: {e}")))?;
    Ok(Override {
        var,
        node,
        value: x,
    })
}

/// The parameter a name means (see `resolve`) and the population or projection it is limited
/// to. Errors start with the name.
pub fn parameter(model: &Model, name: &str) -> Result<(Handle<Variable>, Option<Node>), String> {
    let mut node = None;
    let candidates: Vec<Handle<Variable>> = match name.split_once('.') {
        None => model
            .globals
            .iter()
            .copied()
            .filter(|&v| model.variables[v].name == name)
            .collect(),
        Some((owner, var)) => {
            let mut scopes = Vec::new();
            for (h, ct) in model.cell_types.iter() {
                if ct.name == owner {
                    scopes.push(Scope::Cell(h));
                }
            }
            for (h, st) in model.synapse_types.iter() {
                if st.name == owner {
                    scopes.push(Scope::Synapse(h));
                }
            }
            if scopes.is_empty() {
                for (h, p) in model.populations.iter() {
                    if p.name == owner {
                        scopes.push(Scope::Cell(p.cell_type));
                        node = Some(Node::Population(h));
                    }
                }
                for (h, p) in model.projections.iter() {
                    if p.name == owner {
                        scopes.push(Scope::Synapse(p.synapse));
                        node = Some(Node::Projection(h));
                    }
                }
            }
            if scopes.is_empty() {
                return Err(format!(
                    "{name}: no cell type, synapse type, population or projection `{owner}`"
                ));
            }
            model
                .variables
                .iter()
                .filter(|(_, v)| scopes.contains(&v.scope) && v.name == var)
                .map(|(h, _)| h)
                .collect()
        }
    };
    let Some(&var) = candidates.first() else {
        let params: Vec<String> = all_params(model);
        return Err(format!(
            "{name}: unknown parameter; the parameters are {}",
            if params.is_empty() {
                "(none)".to_string()
            } else {
                params.join(", ")
            }
        ));
    };
    let v = &model.variables[var];
    if v.kind != VarKind::Param {
        return Err(format!(
            "{name}: `{}` is a {}, not a param; only params change without recompiling",
            v.name,
            v.kind.keyword()
        ));
    }
    if v.regime.is_some() {
        return Err(format!(
            "{name}: `{}` has one value per regime state and cannot be set by name",
            v.name
        ));
    }
    Ok((var, node))
}

/// A quantity as written (`18 ms`, `1.7mV`) in SI units, checked against the parameter's
/// unit and for being finite.
pub fn value_of(model: &Model, var: Handle<Variable>, value: &str) -> Result<f64, SimError> {
    let v = &model.variables[var];
    let (x, dim) = parse_quantity(value).map_err(|e| SimError::new(e.to_string()))?;
    if !x.is_finite() {
        return Err(SimError::new(format!(
            "`{value}` is not a finite number ({x})"
        )));
    }
    if dim != v.dim {
        return Err(SimError::new(format!(
            "`{}` is in {}, but `{value}` is in {dim}",
            v.name, v.dim
        )));
    }
    Ok(x)
}

/// Every overridable parameter, as `--set` spells it.
pub fn all_params(model: &Model) -> Vec<String> {
    let mut out = Vec::new();
    for (_, v) in model.variables.iter() {
        if v.kind != VarKind::Param || v.regime.is_some() {
            continue;
        }
        match v.scope {
            Scope::Global => out.push(v.name.clone()),
            // An input's parameters (a Poisson rate) are set through its population's name.
            Scope::Cell(c) if model.cell_types[c].name.ends_with("$input") => out.extend(
                model
                    .populations
                    .iter()
                    .filter(|(_, p)| p.cell_type == c)
                    .map(|(_, p)| format!("{}.{}", p.name, v.name)),
            ),
            Scope::Cell(c) => out.push(format!("{}.{}", model.cell_types[c].name, v.name)),
            Scope::Synapse(s) if model.synapse_types[s].declared => {
                out.push(format!("{}.{}", model.synapse_types[s].name, v.name))
            }
            _ => {}
        }
    }
    out
}

/// Value of an expression that depends only on parameters, with `overrides` in place of their
/// defaults (parameters of every scope; states and anything per element give `None`).
fn eval_params(
    model: &Model,
    h: Handle<Expr>,
    overrides: &[(Handle<Variable>, f64)],
) -> Option<f64> {
    neurograph_compiler::const_eval_with(model, h, &|var| {
        let v = &model.variables[var];
        if v.regime.is_some() || v.kind == VarKind::State {
            return VarValue::Unknown;
        }
        match overrides.iter().find(|(x, _)| *x == var) {
            Some((_, x)) => VarValue::Value(*x),
            None => VarValue::Expr(v.init),
        }
    })
}

/// A Poisson input spikes at most once per step per source: a rate whose rate × dt exceeds 1
/// would silently deliver 1/dt instead. Refused whether the rate comes from the spec (through
/// parameters the checker cannot fold) or from `--set`.
fn check_poisson_rates(
    model: &Model,
    overrides: &[(Handle<Variable>, f64)],
) -> Result<(), SimError> {
    for (_, input) in model.inputs.iter() {
        let InputKind::Poisson { population } = input.kind else {
            continue;
        };
        let ct = &model.cell_types[model.populations[population].cell_type];
        for ev in &ct.events {
            let Trigger::Probability(p) = ev.trigger else {
                continue;
            };
            if let Some(x) = eval_params(model, p, overrides) {
                if x > 1.0 {
                    return Err(SimError::at(
                        ev.span,
                        format!(
                            "input `{}`: rate × dt is {x}, but a Poisson source spikes at most once per step (the rate would be capped at 1/dt = {} Hz); lower the rate or dt, or spread the drive over more sources",
                            input.name,
                            1.0 / model.run.dt
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether expression `h` reads variable `var`.
pub(crate) fn reads(model: &Model, h: Handle<Expr>, var: Handle<Variable>) -> bool {
    neurograph_compiler::funcs::reads_var(model, h, var)
}

/// Check values set at run time as the checker checks values written in the spec, before
/// anything is simulated: probabilities stay within [0, 1], refractory periods are not
/// negative, no divisor becomes zero, and a time constant (a parameter in time units that
/// divides something) keeps its sign — a negative one turns decay into growth; then the
/// Poisson rates with these values (`check_poisson_rates`, also with none: a rate the checker
/// could not fold). Give every value that holds at once (a rate may read several).
pub fn check_overrides(model: &Model, overrides: &[Override]) -> Result<(), SimError> {
    let overrides: Vec<(Handle<Variable>, f64)> =
        overrides.iter().map(|o| (o.var, o.value)).collect();
    check_override_values(model, &overrides)?;
    check_poisson_rates(model, &overrides)
}

fn check_override_values(
    model: &Model,
    overrides: &[(Handle<Variable>, f64)],
) -> Result<(), SimError> {
    if overrides.is_empty() {
        return Ok(());
    }
    let name = |v: Handle<Variable>| {
        let var = &model.variables[v];
        match var.scope {
            Scope::Global => var.name.clone(),
            Scope::Cell(c) => format!("{}.{}", model.cell_types[c].name, var.name),
            Scope::Synapse(s) => format!("{}.{}", model.synapse_types[s].name, var.name),
        }
    };
    let set_by = |h: Handle<Expr>| {
        overrides
            .iter()
            .filter(|(v, _)| reads(model, h, *v))
            .map(|(v, x)| format!("--set {}={x}", name(*v)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let probability = |h: Handle<Expr>, span: neurograph_compiler::Span, what: &str| {
        if !overrides.iter().any(|(v, _)| reads(model, h, *v)) {
            return Ok(());
        }
        match eval_params(model, h, overrides) {
            Some(p) if !(0.0..=1.0).contains(&p) => Err(SimError::at(
                span,
                format!("{}: {what} becomes {p}, outside [0, 1]", set_by(h)),
            )),
            _ => Ok(()),
        }
    };
    for (_, pr) in model.projections.iter() {
        if let ConnectRule::Bernoulli(p) = pr.connect.rule {
            probability(
                p,
                pr.connect.span,
                &format!("the connection probability of `{}`", pr.name),
            )?;
        }
    }
    for (_, ct) in model.cell_types.iter() {
        for ev in &ct.events {
            if let Trigger::Probability(p) = ev.trigger {
                probability(
                    p,
                    ev.span,
                    &format!("the {} probability of `{}`", ev.name, ct.name),
                )?;
            }
        }
        if let Some(Refractory::Duration(d)) = ct.refractory {
            if overrides.iter().any(|(v, _)| reads(model, d, *v)) {
                if let Some(x) = eval_params(model, d, overrides) {
                    if x < 0.0 {
                        return Err(SimError::at(
                            ct.span,
                            format!(
                                "{}: the refractory period of `{}` becomes {x} s, which is negative",
                                set_by(d),
                                ct.name
                            ),
                        ));
                    }
                }
            }
        }
    }
    for (_, e) in model.exprs.iter() {
        match e {
            Expr::Call(Func::Bernoulli, args) if !args.is_empty() => {
                let span = overrides
                    .iter()
                    .find(|(v, _)| reads(model, args[0], *v))
                    .map(|(v, _)| model.variables[*v].span);
                if let Some(span) = span {
                    probability(args[0], span, "the probability of a `bernoulli` draw")?;
                }
            }
            Expr::Binary(BinOp::Div, _, b) => {
                for &(v, x) in overrides {
                    if !reads(model, *b, v) {
                        continue;
                    }
                    let var = &model.variables[v];
                    let divisor = eval_params(model, *b, overrides);
                    if divisor == Some(0.0) {
                        return Err(SimError::at(
                            var.span,
                            format!(
                                "--set {}={x}: `{}` divides an expression (`... / {}`), which would divide by zero",
                                name(v),
                                var.name,
                                var.name
                            ),
                        ));
                    }
                    let default = eval_params(model, var.init, &[]);
                    if var.dim == neurograph_compiler::units::Dim::TIME
                        && default.is_some_and(|d| d > 0.0)
                        && x <= 0.0
                    {
                        return Err(SimError::at(
                            var.span,
                            format!(
                                "--set {}={x} s: `{}` is a time constant (a time that divides an expression; its default is {} s) and must stay positive: a negative one turns decay into growth",
                                name(v),
                                var.name,
                                default.unwrap_or(0.0)
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}
