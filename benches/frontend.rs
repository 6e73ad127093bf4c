//! `cargo bench --bench frontend`: parse + check + lower of each bundled spec, text in memory
//! to checked IR (file existence checks included, reading the spec file excluded); and a
//! generated spec of 100,000 lines.

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
    // 100,000 lines: constants each using the one defined on the next line (dependency order,
    // not file order). Checking it should take about a second at most.
    let mut long = String::from("model long\n");
    for k in 0..100_000 {
        long.push_str(&format!("const c{k} = c{} + 1\n", k + 1));
    }
    long.push_str("const c100000 = 0\n");
    group.sample_size(10);
    group.bench_function("long_spec_100k_lines", |b| {
        b.iter(|| {
            let (_, out) = compile_str("long", &long, &loader);
            assert!(out.compiled.is_some(), "the long spec does not compile");
            out
        })
    });
    group.finish();
}

criterion_group!(benches, frontend);
criterion_main!(benches);
