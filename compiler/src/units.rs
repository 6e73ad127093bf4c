//! Physical dimensions (SI base exponents) and the unit symbols the language knows.
//!
//! Every quantity is stored in SI base units (`20 ms` is `0.02`); a [`Dim`] says what it
//! measures. Units are erased after checking: kernels see plain numbers.

use std::fmt;

/// Exponents of the seven SI base dimensions: metre, kilogram, second, ampere, kelvin, mole,
/// candela.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Dim(pub [i8; 7]);

const M: usize = 0;
const KG: usize = 1;
const S: usize = 2;
const A: usize = 3;
const K: usize = 4;
const MOL: usize = 5;

impl Dim {
    pub const NONE: Dim = Dim([0; 7]);
    pub const TIME: Dim = Dim([0, 0, 1, 0, 0, 0, 0]);

    const fn base(i: usize) -> Dim {
        let mut d = [0i8; 7];
        d[i] = 1;
        Dim(d)
    }

    pub fn is_none(self) -> bool {
        self == Dim::NONE
    }

    pub fn times(self, o: Dim) -> Dim {
        let mut d = self.0;
        for (a, b) in d.iter_mut().zip(o.0) {
            *a = a.saturating_add(b);
        }
        Dim(d)
    }

    pub fn per(self, o: Dim) -> Dim {
        self.times(o.powi(-1))
    }

    pub fn powi(self, p: i32) -> Dim {
        let mut d = self.0;
        for a in d.iter_mut() {
            *a = (*a as i32 * p).clamp(-127, 127) as i8;
        }
        Dim(d)
    }

    /// The square root, when every exponent is even.
    pub fn sqrt(self) -> Option<Dim> {
        if self.0.iter().all(|e| e % 2 == 0) {
            let mut d = self.0;
            for a in d.iter_mut() {
                *a /= 2;
            }
            Some(Dim(d))
        } else {
            None
        }
    }
}

/// Named derived units used to print dimensions readably (their dimensions come from the
/// unit table).
fn named_dims() -> [(&'static str, Dim); 13] {
    [
        "V", "A", "S", "F", "ohm", "s", "Hz", "m", "M", "mol", "K", "kg", "C",
    ]
    .map(|n| (n, lookup_unit(n).expect("a unit of the table").1))
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return write!(f, "1");
        }
        let named = named_dims();
        for (n, d) in named {
            if *self == d {
                return write!(f, "{n}");
            }
        }
        // Rates and integrals of named units: V/s, M/s, V*s; and ratios of two named units.
        let s = Dim::base(S);
        for (n, d) in named {
            if n == "s" || n == "Hz" {
                continue;
            }
            if self.times(s) == d {
                return write!(f, "{n}/s");
            }
            if self.per(s) == d {
                return write!(f, "{n}*s");
            }
            if self.times(d) == Dim::NONE {
                return write!(f, "1/{n}");
            }
            for (n2, d2) in named {
                if n2 != n && self.times(d2) == d {
                    return write!(f, "{n}/{n2}");
                }
            }
        }
        let names = ["m", "kg", "s", "A", "K", "mol", "cd"];
        let mut parts = Vec::new();
        for (i, e) in self.0.iter().enumerate() {
            match e {
                0 => {}
                1 => parts.push(names[i].to_string()),
                e => parts.push(format!("{}^{}", names[i], e)),
            }
        }
        write!(f, "{}", parts.join(" "))
    }
}

impl fmt::Debug for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Base unit symbols (and full names) with their scale to SI and dimension.
fn base_unit(sym: &str) -> Option<(f64, Dim)> {
    let m = Dim::base(M);
    let kg = Dim::base(KG);
    let s = Dim::base(S);
    let a = Dim::base(A);
    let volt = kg.times(m.powi(2)).times(s.powi(-3)).times(a.powi(-1));
    let ohm = volt.per(a);
    let molar = Dim::base(MOL).times(m.powi(-3));
    Some(match sym {
        "s" | "second" => (1.0, s),
        "min" | "minute" => (60.0, s),
        "Hz" | "hertz" => (1.0, s.powi(-1)),
        "V" | "volt" => (1.0, volt),
        "A" | "amp" | "ampere" => (1.0, a),
        "S" | "siemens" => (1.0, ohm.powi(-1)),
        "F" | "farad" => (1.0, a.times(s).per(volt)),
        "ohm" | "Ohm" | "Ω" => (1.0, ohm),
        "m" | "metre" | "meter" => (1.0, m),
        "M" | "molar" => (1000.0, molar),
        "mol" | "mole" => (1.0, Dim::base(MOL)),
        "K" | "kelvin" => (1.0, Dim::base(K)),
        "g" | "gram" => (1e-3, kg),
        "C" | "coulomb" => (1.0, a.times(s)),
        "W" | "watt" => (1.0, volt.times(a)),
        "J" | "joule" => (1.0, volt.times(a).times(s)),
        _ => return None,
    })
}

fn prefix_scale(p: &str) -> Option<f64> {
    Some(match p {
        "G" => 1e9,
        "M" => 1e6,
        "k" => 1e3,
        "c" => 1e-2,
        "m" => 1e-3,
        "u" | "µ" | "μ" => 1e-6,
        "n" => 1e-9,
        "p" => 1e-12,
        "f" => 1e-15,
        _ => return None,
    })
}

/// Resolve a unit symbol such as `mV`, `uM`, `nsiemens`, `kHz` to (scale to SI, dimension).
pub fn lookup_unit(sym: &str) -> Option<(f64, Dim)> {
    if let Some(u) = base_unit(sym) {
        return Some(u);
    }
    let first = sym.chars().next()?;
    let rest = &sym[first.len_utf8()..];
    let scale = prefix_scale(&sym[..first.len_utf8()])?;
    // A prefix on a prefix (`mms`) is not a unit; `kg` is handled by the base table via `g`.
    let (base_scale, dim) = base_unit(rest)?;
    if rest == "min" {
        return None;
    }
    let _ = first;
    Some((scale * base_scale, dim))
}

/// All unit symbols, for "did you mean" suggestions.
pub fn known_symbols() -> Vec<String> {
    let bases = [
        "s", "Hz", "V", "A", "S", "F", "ohm", "m", "M", "mol", "K", "g", "C",
    ];
    let prefixes = ["", "G", "M", "k", "m", "u", "n", "p"];
    let mut out = Vec::new();
    for b in bases {
        for p in prefixes {
            out.push(format!("{p}{b}"));
        }
    }
    for n in [
        "second", "volt", "amp", "siemens", "farad", "metre", "molar", "mole", "hertz", "min",
        "Ohm", "MOhm", "GOhm", "kOhm",
    ] {
        out.push(n.to_string());
    }
    out
}

/// A value in SI units shown in the unit a modeller would write: `0.02` s is `20 ms`.
pub fn pretty(value: f64, dim: Dim) -> String {
    let preferred = [
        ("ms", 1e-3),
        ("mV", 1e-3),
        ("nS", 1e-9),
        ("pF", 1e-12),
        ("pA", 1e-12),
        ("uM", 1e-3),
        ("Hz", 1.0),
    ];
    if dim == Dim::TIME && value.abs() >= 1.0 {
        return format!("{} s", trim_float(value));
    }
    for (sym, scale) in preferred {
        if let Some((_, d)) = lookup_unit(sym) {
            if d == dim {
                return format!("{} {sym}", trim_float(value / scale));
            }
        }
    }
    if dim.is_none() {
        trim_float(value)
    } else {
        format!("{} {dim}", trim_float(value))
    }
}

/// Shortest text that reads back to a value rounded to 12 significant digits.
fn trim_float(v: f64) -> String {
    let r: f64 = format!("{v:.12e}").parse().unwrap_or(v);
    format!("{r}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_units_resolve_to_si() {
        let (s, d) = lookup_unit("mV").unwrap();
        assert!((s - 1e-3).abs() < 1e-18);
        assert_eq!(d.to_string(), "V");
        let (s, d) = lookup_unit("uM").unwrap();
        assert!((s - 1e-3).abs() < 1e-15);
        assert_eq!(d.to_string(), "M");
        assert_eq!(lookup_unit("ms").unwrap().1, Dim::TIME);
        assert_eq!(lookup_unit("nS").unwrap().1.to_string(), "S");
        assert_eq!(lookup_unit("pF").unwrap().1.to_string(), "F");
        assert!(lookup_unit("foo").is_none());
        assert!(lookup_unit("mmin").is_none());
    }

    #[test]
    fn dimensions_print_readably() {
        let v = lookup_unit("V").unwrap().1;
        assert_eq!(v.per(Dim::TIME).to_string(), "V/s");
        assert_eq!(Dim::TIME.powi(-1).to_string(), "Hz");
        assert_eq!(Dim::NONE.to_string(), "1");
        let m = lookup_unit("M").unwrap().1;
        assert_eq!(m.per(Dim::TIME).to_string(), "M/s");
    }
}
