//! The C example (`examples/run_cuba.c`) is compiled with the system C compiler against the
//! committed header and this crate's static library, run, and its output compared with the
//! same simulation driven from Rust.

use std::path::{Path, PathBuf};
use std::process::Command;

use neurograph::{Backend, Model};

/// The directory holding this crate's static library (built with the tests: the lib target
/// has crate-type staticlib).
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    for dir in [deps.clone(), deps.parent().unwrap().to_path_buf()] {
        if dir.join("libneurograph_c.a").is_file() {
            return dir;
        }
    }
    panic!("libneurograph_c.a not found next to {}", exe.display());
}

/// The spec string of the example, extracted from its source.
fn example_spec(source: &str) -> String {
    let start = source.find("static const char *SPEC =").unwrap();
    let end = start + source[start..].find(";\n").unwrap();
    source[start..end]
        .lines()
        .skip(1)
        .map(|l| {
            let l = l.trim();
            l.trim_start_matches('"')
                .trim_end_matches('"')
                .replace("\\n", "\n")
        })
        .collect()
}

/// A scratch directory removed when the test ends, passing or failing.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("capi");
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_c_example_compiles_runs_and_agrees_with_rust() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = TempDir::new();
    let exe = out_dir.0.join("run_cuba");
    let lib = library_dir();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let build = Command::new(&cc)
        .arg("-std=c99")
        .arg("-Wall")
        .arg("-Werror")
        .arg(dir.join("examples/run_cuba.c"))
        .arg("-I")
        .arg(dir.join("include"))
        .arg(lib.join("libneurograph_c.a"))
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{cc} failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "the example failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{stdout}"))
            .trim()
            .to_string()
    };
    assert!(line("compile error:").contains("unit mismatch"), "{stdout}");
    assert!(stdout.contains("<string>:2:42"), "{stdout}");

    // The same simulation from Rust.
    let source = std::fs::read_to_string(dir.join("examples/run_cuba.c")).unwrap();
    let model = Model::compile_str(&example_spec(&source)).unwrap();
    let mut sim = model
        .simulation()
        .seed(7)
        .backend(Backend::Jit)
        .build()
        .unwrap();
    sim.run_for("100 ms").unwrap();
    let (t, i) = sim.spikes("E").unwrap();
    assert!(!t.is_empty());
    assert_eq!(line("spikes after 100 ms:"), t.len().to_string());
    // `%.17g` prints enough digits for a double to read back exactly.
    let first = line("first spike:");
    let (ct, ci) = first.split_once(' ').unwrap();
    assert_eq!(ct.parse::<f64>().unwrap(), t[0]);
    assert_eq!(ci.parse::<u32>().unwrap(), i[0]);
    let v = sim.state("E", "v").unwrap();
    let v0 = line("E.v[0] after 100 ms:");
    let (cv, cn) = v0.split_once(" of ").unwrap();
    assert_eq!(cv.parse::<f64>().unwrap(), v[0]);
    assert_eq!(cn.parse::<usize>().unwrap(), v.len());
    sim.set_param("LIF.taum", "12 ms").unwrap();
    assert_eq!(
        line("taum:").parse::<f64>().unwrap(),
        sim.param("LIF.taum").unwrap()
    );
    sim.step(1000).unwrap();
    assert_eq!(line("steps:"), "2000");
    assert_eq!(
        line("spikes after 200 ms:"),
        sim.spikes("E").unwrap().0.len().to_string()
    );
    let quiet: Vec<u32> = (0..10).collect();
    sim.silence("E", &quiet).unwrap();
    sim.step(1000).unwrap();
    sim.clear_silenced();
    let (t, i) = sim.spikes("E").unwrap();
    assert_eq!(line("spikes after 300 ms:"), t.len().to_string());
    let late = t
        .iter()
        .zip(&i)
        .filter(|(&t, &i)| t >= 0.2 && i < 10)
        .count();
    assert_eq!(late, 0);
    assert_eq!(line("spikes of silenced neurons:"), "0");
    // Unsilenced, the same neurons do fire in that window (so the check above can fail).
    let mut free = model
        .simulation()
        .seed(7)
        .backend(Backend::Jit)
        .build()
        .unwrap();
    free.run_for("100 ms").unwrap();
    free.set_param("LIF.taum", "12 ms").unwrap();
    free.step(2000).unwrap();
    let (t, i) = free.spikes("E").unwrap();
    let would = t
        .iter()
        .zip(&i)
        .filter(|(&t, &i)| t >= 0.2 && i < 10)
        .count();
    assert!(
        would > 0,
        "E[0..10] are silent in 200..300 ms even unsilenced"
    );
}
