//! Run-time parameter overrides (`--set name=value`): resolving a name to the parameter it
//! means and checking the value's unit. Only `param`s can change without recompiling.

use neurograph_compiler::ir::*;
use neurograph_compiler::quantity::parse_quantity;

use crate::sim::SimError;

/// Resolve `name=value`. Names are `p` (a model-level param), `Type.p` (a param of a cell or
/// synapse type, for every population or projection of that type) or `Population.p`.
pub fn resolve(model: &Model, assignment: &str) -> Result<(Handle<Variable>, f64), SimError> {
    let (name, value) = assignment
        .split_once('=')
        .ok_or_else(|| SimError::new(format!("--set expects name=value, found `{assignment}`")))?;
    let (name, value) = (name.trim(), value.trim());
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
            for (_, p) in model.populations.iter() {
                if p.name == owner {
                    scopes.push(Scope::Cell(p.cell_type));
                }
            }
            for (_, p) in model.projections.iter() {
                if p.name == owner {
                    scopes.push(Scope::Synapse(p.synapse));
                }
            }
            if scopes.is_empty() {
                return Err(SimError::new(format!(
                    "--set {name}: no cell type, synapse type, population or projection `{owner}`"
                )));
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
        return Err(SimError::new(format!(
            "--set {name}: unknown parameter; the parameters are {}",
            if params.is_empty() {
                "(none)".to_string()
            } else {
                params.join(", ")
            }
        )));
    };
    let v = &model.variables[var];
    if v.kind != VarKind::Param {
        return Err(SimError::new(format!(
            "--set {name}: `{}` is a {}, not a param; only params change without recompiling",
            v.name,
            v.kind.keyword()
        )));
    }
    if v.regime.is_some() {
        return Err(SimError::new(format!("--set {name}: `{}` has one value per regime state and cannot be set from the command line", v.name)));
    }
    let (x, dim) =
        parse_quantity(value).map_err(|e| SimError::new(format!("--set {name}: {e}")))?;
    if dim != v.dim {
        return Err(SimError::new(format!(
            "--set {name}: `{}` is in {}, but `{value}` is in {dim}",
            v.name, v.dim
        )));
    }
    Ok((var, x))
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
            Scope::Cell(c) if !model.cell_types[c].name.ends_with("$input") => {
                out.push(format!("{}.{}", model.cell_types[c].name, v.name))
            }
            Scope::Synapse(s) if model.synapse_types[s].declared => {
                out.push(format!("{}.{}", model.synapse_types[s].name, v.name))
            }
            _ => {}
        }
    }
    out
}
