//! `cargo bench --bench frontend`: parse + check + lower of each bundled spec, text in memory
//! to checked IR (file existence checks included, reading the spec file excluded).

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use neurograph::compiler::{compile_str, FsLoader};

fn frontend(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let specs = neurograph::spec_files(&dir).unwrap();
    let loader = FsLoader { base: dir.clone() };
    let mut group = c.benchmark_group("frontend");
    for path in specs {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        group.bench_function(&name, |b| {
            b.iter(|| {
                let (_, out) = compile_str(&name, &text, &loader);
                assert!(out.compiled.is_some(), "{name} does not compile");
                out
            })
        });
    }
    group.finish();
}

criterion_group!(benches, frontend);
criterion_main!(benches);
