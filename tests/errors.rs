//! Bad input is rejected with the expected message at the expected line:col, through the
//! library and through the binary, and never makes either panic. Cases live in `tests/errors/`
//! (see its README).

use std::path::{Path, PathBuf};
use std::process::Command;

use neurograph::diagnostics::{one_line, render_plain};

struct Case {
    path: PathBuf,
    /// (line, col, message substring)
    expected: Vec<(usize, usize, String)>,
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/errors");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "ng") {
            continue;
        }
        let spec = std::fs::read_to_string(path.with_extension("expect"))
            .unwrap_or_else(|_| panic!("{} has no .expect file", path.display()));
        let expected = spec
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (pos, msg) = l.split_once(' ').expect("LINE:COL message");
                let (line, col) = pos.split_once(':').expect("LINE:COL");
                (line.parse().unwrap(), col.parse().unwrap(), msg.to_string())
            })
            .collect::<Vec<_>>();
        assert!(!expected.is_empty(), "{} expects nothing", path.display());
        out.push(Case { path, expected });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[test]
fn there_are_at_least_forty_cases() {
    assert!(cases().len() >= 40, "only {} cases", cases().len());
}

#[test]
fn every_case_reports_its_diagnostic_at_its_position() {
    let mut failures = Vec::new();
    for case in cases() {
        let checked = neurograph::compile_file(&case.path).unwrap();
        let diags = &checked.output.diagnostics;
        if !checked.output.has_errors() || checked.output.compiled.is_some() {
            failures.push(format!("{}: accepted", case.path.display()));
            continue;
        }
        let file = checked.sources.file(neurograph::grammar::FileId(0));
        for d in diags {
            let all_spans = std::iter::once(d.span).chain(d.secondary.iter().map(|s| s.0));
            for s in all_spans {
                let inside = checked.sources.lookup(s.start).is_some() && s.start <= s.end;
                assert!(
                    inside,
                    "{}: span {s:?} outside the input",
                    case.path.display()
                );
            }
        }
        for (line, col, msg) in &case.expected {
            let hit = diags.iter().any(|d| {
                d.is_error()
                    && d.message.contains(msg.as_str())
                    && file.line_col(d.span.start) == (*line, *col)
            });
            if !hit {
                failures.push(format!(
                    "{}: expected error at {line}:{col} containing {msg:?}; got:\n{}",
                    case.path.display(),
                    render_plain(&checked.sources, diags)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn check_command_exits_1_with_located_messages() {
    let cases = cases();
    let out = Command::new(env!("CARGO_BIN_EXE_neurograph"))
        .arg("check")
        .arg("--short")
        .args(cases.iter().map(|c| &c.path))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for case in &cases {
        for (line, col, msg) in &case.expected {
            let prefix = format!("{}:{line}:{col}: error: ", case.path.display());
            assert!(
                stderr
                    .lines()
                    .any(|l| l.starts_with(&prefix) && l.contains(msg.as_str())),
                "missing `{prefix}...{msg}` in:\n{stderr}"
            );
        }
    }
    let summary = format!("{} of {} file(s) have errors", cases.len(), cases.len());
    assert!(stderr.contains(&summary), "{stderr}");
}

#[test]
fn rendered_errors_show_the_source_line_caret_and_help() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/errors/unknown_name_suggestion.ng");
    let checked = neurograph::compile_file(&path).unwrap();
    let text = render_plain(&checked.sources, &checked.output.diagnostics);
    assert!(text.contains("dv/dt = -v / tau_m"), "{text}");
    assert!(text.contains("^^^^^"), "{text}");
    assert!(text.contains("help: did you mean `taum`?"), "{text}");
    let line = one_line(&checked.sources, &checked.output.diagnostics[0]);
    assert!(
        line.ends_with("unknown_name_suggestion.ng:5:16: error: unknown name `tau_m`"),
        "{line}"
    );
}

#[test]
fn duplicate_names_point_at_both_definitions() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/errors/duplicate_population.ng");
    let checked = neurograph::compile_file(&path).unwrap();
    let d = &checked.output.diagnostics[0];
    let file = checked.sources.file(neurograph::grammar::FileId(0));
    assert_eq!(d.secondary.len(), 1);
    assert_eq!(file.line_col(d.secondary[0].0.start), (11, 12));
}

#[test]
fn all_syntax_errors_of_a_file_are_reported() {
    let src = "model m\nparam a = 5 +\nparam b = 3\nneuron A {\n  state v: volt = 0 mV\n  dv/dt = -v / (10 ms) +\n}\nparam c = (1\n";
    let (_, diags) = neurograph::grammar::parse(src);
    assert_eq!(diags.len(), 3, "{diags:?}");
}
