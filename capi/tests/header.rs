//! The committed C header is what cbindgen generates from the current source: a change to the
//! C ABI that is not regenerated fails here. `UPDATE_HEADER=1 cargo test -p neurograph-capi
//! --test header` rewrites it.

use std::path::Path;

#[test]
fn the_committed_header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen reads the crate")
        .write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    let path = dir.join("include/neurograph.h");
    if std::env::var_os("UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/neurograph.h is stale: run UPDATE_HEADER=1 cargo test -p neurograph-capi --test header"
    );
    for f in [
        "ng_model_compile_str",
        "ng_simulation_new",
        "ng_simulation_step",
        "ng_simulation_state",
        "ng_simulation_set_param",
        "ng_last_error",
    ] {
        assert!(generated.contains(f), "{f} missing from the header");
    }
}
