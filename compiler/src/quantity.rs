//! Constant quantities written outside a spec: `--set taum=15ms`, `--duration 2s`, values in
//! experiment files. Numbers, units, arithmetic and pure functions; no names.

use neurograph_grammar::{self as grammar, BinOp, ExprKind, UnOp};

use crate::funcs;
use crate::lower::eval_pure;
use crate::units::{lookup_unit, Dim};

/// Why a quantity written outside a spec (`--set`, `--duration`) was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QuantityError(pub String);

impl From<String> for QuantityError {
    fn from(message: String) -> QuantityError {
        QuantityError(message)
    }
}

/// Value in SI units and its dimension, or a message saying what is wrong.
pub fn parse_quantity(text: &str) -> Result<(f64, Dim), QuantityError> {
    let e = grammar::parse_expr_at(text.trim(), 0)
        .map_err(|d| format!("`{text}` is not a value: {}", d.message))?;
    eval(&e)
}

fn eval(e: &grammar::Expr) -> Result<(f64, Dim), QuantityError> {
    Ok(match &e.kind {
        ExprKind::Number(v) => (*v, Dim::NONE),
        ExprKind::Quantity { value, unit } => {
            let mut scale = 1.0;
            let mut dim = Dim::NONE;
            for f in &unit.factors {
                let (s, d) =
                    lookup_unit(&f.symbol).ok_or_else(|| format!("unknown unit `{}`", f.symbol))?;
                scale *= s.powi(f.power);
                dim = dim.times(d.powi(f.power));
            }
            (value * scale, dim)
        }
        ExprKind::Unary(UnOp::Neg, a) => {
            let (v, d) = eval(a)?;
            (-v, d)
        }
        ExprKind::Binary(op, a, b) => {
            let ((x, dx), (y, dy)) = (eval(a)?, eval(b)?);
            match op {
                BinOp::Add | BinOp::Sub => {
                    if dx != dy {
                        return Err(QuantityError(format!("cannot add {dx} and {dy}")));
                    }
                    (if *op == BinOp::Add { x + y } else { x - y }, dx)
                }
                BinOp::Mul => (x * y, dx.times(dy)),
                BinOp::Div => (x / y, dx.per(dy)),
                BinOp::Pow if dy.is_none() && y.fract() == 0.0 => (x.powf(y), dx.powi(y as i32)),
                _ => {
                    return Err(QuantityError(format!(
                        "`{}` is not allowed in a value",
                        op.symbol()
                    )))
                }
            }
        }
        ExprKind::Call { .. } => {
            let (name, args) = e
                .call_name()
                .ok_or_else(|| QuantityError("only named functions can be called".into()))?;
            let info = funcs::lookup(name, args.len())
                .filter(|f| {
                    f.class == funcs::FuncClass::Pure
                        && (f.min_args..=f.max_args).contains(&args.len())
                })
                .ok_or_else(|| format!("`{name}` cannot be used in a value"))?;
            let vals: Vec<(f64, Dim)> = args
                .iter()
                .map(|a| eval(&a.value))
                .collect::<Result<_, _>>()?;
            if vals.iter().any(|(_, d)| !d.is_none()) {
                return Err(QuantityError(format!(
                    "`{name}` needs dimensionless arguments here"
                )));
            }
            let xs: Vec<f64> = vals.iter().map(|v| v.0).collect();
            (
                eval_pure(info.func, &xs).ok_or_else(|| QuantityError("cannot evaluate".into()))?,
                Dim::NONE,
            )
        }
        _ => {
            return Err(QuantityError(
                "expected a number with an optional unit, e.g. `15 ms`".to_string(),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let (v, d) = parse_quantity("15 ms").unwrap();
        assert!((v - 0.015).abs() < 1e-15);
        assert_eq!(d, Dim::TIME);
        assert_eq!(parse_quantity("2s").unwrap().0, 2.0);
        assert_eq!(parse_quantity("-1.5 mV").unwrap().1.to_string(), "V");
        assert!((parse_quantity("0.5 * 2 nS").unwrap().0 - 1e-9).abs() < 1e-24);
        assert!(parse_quantity("1 s + 1 mV").is_err());
        assert!(parse_quantity("taum").is_err());
        assert!(parse_quantity("5 foo").is_err());
    }
}
