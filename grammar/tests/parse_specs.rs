//! Every bundled spec parses without a syntax error.

#[test]
fn bundled_specs_parse() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ng") {
            let src = std::fs::read_to_string(&path).unwrap();
            let (ast, diags) = neurograph_grammar::parse(&src);
            assert!(diags.is_empty(), "{}: {:?}", path.display(), diags);
            assert!(!ast.items.is_empty());
            n += 1;
        }
    }
    assert!(n > 0);
}
