//! Feed arbitrary bytes (as UTF-8 text) to parse + check. The properties: no panic, and every
//! diagnostic span lies inside the input. Seed the corpus with `specs/*.ng`. Each input is also
//! checked wrapped in deep nesting (see below).
#![no_main]

use libfuzzer_sys::fuzz_target;
use neurograph_compiler::{compile_str, Loader};

/// Answers without touching the disk so runs are reproducible.
struct NoFiles;

impl Loader for NoFiles {
    fn read(&self, path: &str) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, path.to_string()))
    }
    fn exists(&self, _path: &str) -> bool {
        false
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    check(text);
    // Deep nesting: the input's first bytes choose a kind of nesting and its depth (up to
    // 20,000 levels, far beyond the limit), the rest of the input stands in the middle.
    if let [kind, hi, lo, rest @ ..] = data {
        let Ok(middle) = std::str::from_utf8(rest) else { return };
        let n = (usize::from(*hi) << 8 | usize::from(*lo)) % 20_000;
        let (open, close) = match kind % 6 {
            0 => ("(", ")"),
            1 => ("exp(", ")"),
            2 => ("-", ""),
            3 => ("[", "]"),
            4 => ("1 + ", ""),
            _ => ("not ", ""),
        };
        check(&format!(
            "model m\nconst x = {}{middle}{}\n",
            open.repeat(n),
            close.repeat(n)
        ));
    }
});

fn check(text: &str) {
    let (sources, out) = compile_str("fuzz.ng", text, &NoFiles);
    for d in &out.diagnostics {
        for s in std::iter::once(d.span).chain(d.secondary.iter().map(|x| x.0)) {
            assert!(s.start <= s.end);
            let id = sources.lookup(s.start).expect("span inside a file");
            let f = sources.file(id);
            assert!(s.end <= f.base + f.text.len() as u32 + 1);
        }
    }
}
