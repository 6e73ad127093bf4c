//! SplitMix64, the one seeded generator of the passes (pair samples, surrogates, random sets,
//! null models, initialisations): fast, and the same stream on every platform.

/// The next value of the SplitMix64 stream whose state is `state`.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A SplitMix64 generator with its state.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        splitmix(&mut self.0)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize % n
    }
    /// Uniform in (0, 1), never 0 or 1.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for k in (1..v.len()).rev() {
            let j = self.below(k + 1);
            v.swap(k, j);
        }
    }
}

/// The pairs a sample ([`sample_pairs`]) draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairs {
    /// Unordered pairs `(i, j)`, `i < j`, of `0..n`.
    Within(usize),
    /// Ordered pairs `(i, j)` of `0..na` and `0..nb`; with `distinct` (one set), `i ≠ j`.
    Between {
        na: usize,
        nb: usize,
        distinct: bool,
    },
}

impl Pairs {
    /// How many pairs there are.
    pub fn count(self) -> usize {
        match self {
            Pairs::Within(n) => n.saturating_mul(n.saturating_sub(1)) / 2,
            Pairs::Between {
                na, distinct: true, ..
            } => na.saturating_mul(na.saturating_sub(1)),
            Pairs::Between { na, nb, .. } => na.saturating_mul(nb),
        }
    }
}

/// Every pair of `pairs` (in order) when there are at most `count`; else `count` distinct
/// pairs drawn from the SplitMix64 stream `state` (two draws per attempt).
pub fn sample_pairs(pairs: Pairs, count: usize, state: &mut u64) -> Vec<(usize, usize)> {
    let (na, nb) = match pairs {
        Pairs::Within(n) => (n, n),
        Pairs::Between { na, nb, .. } => (na, nb),
    };
    // The pair (i, j) stands for, if it is one.
    let pair = |i: usize, j: usize| match pairs {
        Pairs::Within(_) => (i != j).then_some((i.min(j), i.max(j))),
        Pairs::Between { distinct, .. } => (!distinct || i != j).then_some((i, j)),
    };
    let mut out = Vec::new();
    if pairs.count() <= count {
        for i in 0..na {
            for j in 0..nb {
                match pair(i, j) {
                    Some(p) if p == (i, j) => out.push(p),
                    _ => {}
                }
            }
        }
    } else {
        let mut seen = std::collections::HashSet::new();
        while out.len() < count {
            let i = (splitmix(state) % na as u64) as usize;
            let j = (splitmix(state) % nb as u64) as usize;
            if let Some(p) = pair(i, j) {
                if seen.insert(p) {
                    out.push(p);
                }
            }
        }
    }
    out
}
