//! A fresh clone stands alone: no test, benchmark or program may read files outside the
//! repository (the development machines have a `shared` folder beside it; users do not).
//! `.ci/run` also runs the whole suite from a copy in an empty directory; this test names the
//! offending file and line directly.

mod common;

use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !(name == "target" || name.starts_with('.')) {
                sources(&path, out);
            }
        } else if ["rs", "sh", "py", "ng", "yaml", "toml"]
            .iter()
            .any(|e| name.ends_with(&format!(".{e}")))
            || name == "run"
        {
            out.push(path);
        }
    }
}

#[test]
fn nothing_reads_outside_the_repository() {
    let root = common::root();
    let mut files = Vec::new();
    sources(&root, &mut files);
    sources(&root.join(".ci"), &mut files);
    assert!(files.len() > 20, "found only {} files", files.len());
    // Spelled in pieces so that this file does not match itself.
    let needles = [
        format!("../{}/", "shared"),
        format!("{}/reference", "shared"),
    ];
    let mut found = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (k, line) in text.lines().enumerate() {
            if needles.iter().any(|n| line.contains(n.as_str())) {
                found.push(format!(
                    "{}:{}: {}",
                    file.strip_prefix(&root).unwrap_or(file).display(),
                    k + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "these lines refer to files outside the repository:\n{}",
        found.join("\n")
    );
}

/// The library builds without the command line's crates (flag parsing, progress bars,
/// signals, YAML): what an embedder gets with `default-features = false`.
#[test]
fn the_library_does_not_depend_on_cli_crates() {
    let tree = |features: &[&str]| cargo_tree("neurograph", features);
    let cli_only = ["clap ", "indicatif ", "ctrlc ", "serde_yaml_ng ", "resvg "];
    let lib = tree(&["--no-default-features"]);
    for krate in cli_only {
        assert!(
            !lib.contains(krate),
            "the library depends on {krate}:\n{lib}"
        );
    }
    let with_cli = tree(&[]);
    assert!(with_cli.contains("clap "), "{with_cli}");
}

/// A native runner's library (`runner/`) carries neither Cranelift nor the plot rasteriser:
/// its kernels come from the runner's own table.
#[test]
fn the_runner_library_has_no_code_generator() {
    let runner = cargo_tree("neurograph-runner", &[]);
    for krate in ["cranelift", "resvg "] {
        assert!(
            !runner.contains(krate),
            "the runner library depends on {krate}:\n{runner}"
        );
    }
    assert!(runner.contains("clap "), "{runner}");
    assert!(cargo_tree("neurograph", &[]).contains("cranelift-jit "));
}

/// `cargo tree` of the normal dependencies of `package`.
fn cargo_tree(package: &str, flags: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-e", "normal", "-p", package])
        .args(flags)
        .current_dir(common::root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
