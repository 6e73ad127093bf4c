//! Native runners: `neurograph build SPEC -o RUNNER` writes one executable that runs the spec
//! as `neurograph run SPEC` does, with its kernels compiled ahead of time.
//!
//! The executable is an object file of generated code (`ObjectCodegen`: every kernel of the
//! model's kernel set, the kernel table, the spec text and build information) linked by the
//! system C compiler against the runner library (`libneurograph_runner.a`, crate
//! `runner/`), whose `main` is `cli::runner_main`. At start-up the runner compiles the embedded
//! spec text again (the same text gives the same IR, so kernel keys match the table), sets the
//! table as the model's kernel source, and runs. A kernel missing from the table (a key the
//! build did not foresee) is run by the interpreter, with the same results.

use std::path::{Path, PathBuf};
use std::process::Command;

#[cfg(feature = "jit")]
use neurograph_compiler::codegen::object::{KernelRef, ObjectCodegen};
#[cfg(feature = "jit")]
use neurograph_compiler::codegen::{model_kernels, KernelSource};

#[cfg(feature = "jit")]
use crate::Backend;
use crate::{Error, Model};
pub use neurograph_compiler::codegen::CpuFeatures;

/// Symbol names of the blobs a runner's object holds.
pub const SPEC_SYMBOL: &str = "ng_runner_spec";
pub const PATH_SYMBOL: &str = "ng_runner_spec_path";
pub const INFO_SYMBOL: &str = "ng_runner_info";
/// `Model::fingerprint` of the sources built from, as 8 little-endian bytes.
pub const FINGERPRINT_SYMBOL: &str = "ng_runner_fingerprint";
/// `codegen::abi::KERNEL_ABI_VERSION` of the kernels, as 8 little-endian bytes.
pub const ABI_SYMBOL: &str = "ng_runner_abi";

/// What `neurograph build` made.
#[derive(Debug)]
pub struct Built {
    /// Kernels written into the runner.
    pub kernels: usize,
    /// Kernel calls of the step the interpreter runs, with the reason.
    pub interpreted: Vec<(String, String)>,
    /// The runner library linked.
    pub library: PathBuf,
}

/// The object file of a runner for `model` (spec text `text` from `path`). Needs the code
/// generator (feature `jit`).
#[cfg(feature = "jit")]
pub fn runner_object(
    model: &Model,
    path: &Path,
    text: &str,
    cpu: CpuFeatures,
) -> Result<(Vec<u8>, Built), Error> {
    let err = |e: neurograph_compiler::codegen::CodegenError| Error::Run(e.to_string());
    // The kernel set: what a simulation prepares before its first step, with the spec's
    // defaults (parameters set later keep the kinds of their columns, so the same keys).
    crate::memory::check_machine(&model.compiled().model, 0, None)?;
    let mut sim = model.simulation().backend(Backend::Jit).build()?;
    let decisions = sim.kernel_decisions();
    let compiled = model.compiled();
    let ir = &compiled.model;
    let mut object = ObjectCodegen::new(cpu).map_err(err)?;
    if let Some(KernelSource::Jit(jit)) = compiled.kernels.get() {
        let jit = jit.lock().unwrap_or_else(|e| e.into_inner());
        for key in jit.fused_keys() {
            object.add(ir, KernelRef::Fused(key)).map_err(err)?;
        }
        for key in jit.delivery_keys() {
            object.add(ir, KernelRef::Delivery(key)).map_err(err)?;
        }
        for key in jit.kernel_keys() {
            object.add(ir, KernelRef::Expr(key)).map_err(err)?;
        }
    }
    // Expression kernels with the input kinds they have at the start of a run (the
    // interpreter asks for them as it evaluates; one it does not find it evaluates itself).
    for (_, key) in model_kernels(ir) {
        let _ = object.add(ir, KernelRef::Expr(&key));
    }
    let info = format!(
        "model {}\nneurograph {}\nspec {}\nspec hash {}\nkernels {}\ncpu features {}\n",
        ir.name,
        env!("CARGO_PKG_VERSION"),
        path.display(),
        neurograph_runtime::trace::fnv1a64(text),
        object.len(),
        cpu.name()
    );
    let built = Built {
        kernels: object.len(),
        interpreted: decisions
            .into_iter()
            .filter_map(|d| d.generated.err().map(|why| (d.what, why)))
            .collect(),
        library: PathBuf::new(),
    };
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let bytes = object
        .finish(&[
            (SPEC_SYMBOL, text.as_bytes()),
            (PATH_SYMBOL, abs.to_string_lossy().as_bytes()),
            (INFO_SYMBOL, info.as_bytes()),
            (FINGERPRINT_SYMBOL, &model.fingerprint().to_le_bytes()),
            (
                ABI_SYMBOL,
                &neurograph_compiler::codegen::abi::KERNEL_ABI_VERSION.to_le_bytes(),
            ),
        ])
        .map_err(err)?;
    Ok((bytes, built))
}

/// The runner library: `explicit`, else `$NEUROGRAPH_RUNNER_LIB`, else beside this executable
/// (when this executable was built from a source tree that still exists, first brought up to
/// date there with cargo).
pub fn runner_library(explicit: Option<&Path>) -> Result<PathBuf, Error> {
    const NAME: &str = "libneurograph_runner.a";
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(Error::Run(format!(
                "--runtime-lib {}: no such file",
                p.display()
            )))
        };
    }
    if let Some(p) = std::env::var_os("NEUROGRAPH_RUNNER_LIB") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::Run(format!(
                "NEUROGRAPH_RUNNER_LIB={}: no such file",
                p.display()
            )))
        };
    }
    let exe = std::env::current_exe().map_err(|e| Error::Run(e.to_string()))?;
    let mut dir = exe.parent().unwrap_or(Path::new(".")).to_path_buf();
    // Test executables live one level down (`deps/`).
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let library = dir.join(NAME);
    // Built from a source tree that is still there: bring the library up to date with this
    // executable's sources (cargo does nothing when it is).
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if source.join("runner/Cargo.toml").is_file() && matches!(profile, "debug" | "release") {
        if !library.is_file() {
            eprintln!("building the runner library (once): cargo build -p neurograph-runner");
        }
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(source)
            .args(["build", "--quiet", "-p", "neurograph-runner"]);
        if profile == "release" {
            cmd.arg("--release");
        }
        if let Some(target) = dir.parent() {
            cmd.env("CARGO_TARGET_DIR", target);
        }
        let status = cmd.status().map_err(|e| {
            Error::Run(format!("cannot run cargo to build the runner library: {e}"))
        })?;
        if !status.success() {
            return Err(Error::Run(
                "building the runner library with cargo failed (see above)".to_string(),
            ));
        }
    }
    if library.is_file() {
        return Ok(library);
    }
    Err(Error::Run(format!(
        "the runner library {NAME} was not found beside {} (build it with `cargo build --release -p neurograph-runner`, or give --runtime-lib FILE)",
        exe.display()
    )))
}

/// Link `object` (written next to `output`) with the runner library into the executable
/// `output`, with `$CC` or `cc`.
pub fn link(object: &[u8], library: &Path, output: &Path) -> Result<(), Error> {
    // Beside the output under a name of this process's own (never a file of the user's).
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.kernels.o", std::process::id()));
    let obj = output.with_file_name(name);
    std::fs::write(&obj, object)
        .map_err(|e| Error::Run(format!("cannot write {}: {e}", obj.display())))?;
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let result = Command::new(&cc)
        .arg("-o")
        .arg(output)
        .arg(&obj)
        .arg(library)
        // Without debug information (the symbol table stays, for profilers and backtraces).
        .args([
            "-lpthread",
            "-ldl",
            "-lm",
            "-Wl,--gc-sections",
            "-Wl,--strip-debug",
        ])
        .output();
    let _ = std::fs::remove_file(&obj);
    let out = result.map_err(|e| {
        Error::Run(format!(
            "cannot run the C compiler `{cc}` to link the runner: {e} (set CC to another)"
        ))
    })?;
    if !out.status.success() {
        return Err(Error::Run(format!(
            "linking the runner failed ({cc}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// `neurograph build`: the runner of the spec at `path` as the executable `output`.
pub fn build(
    model: &Model,
    path: &Path,
    text: &str,
    output: &Path,
    library: Option<&Path>,
    cpu: CpuFeatures,
) -> Result<Built, Error> {
    #[cfg(feature = "jit")]
    {
        let library = runner_library(library)?;
        let (object, mut built) = runner_object(model, path, text, cpu)?;
        link(&object, &library, output)?;
        built.library = library;
        Ok(built)
    }
    #[cfg(not(feature = "jit"))]
    {
        let _ = (model, path, text, output, library, cpu);
        Err(Error::Run(
            "this neurograph was built without the code generator (feature `jit`): it cannot build runners".to_string(),
        ))
    }
}
