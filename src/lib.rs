//! neurograph: a declarative model-graph compiler and runtime for neuron-particle networks.
//!
//! This facade is what embedding users call: load and compile a spec, render its diagnostics,
//! describe the compiled model. The binary (`src/main.rs`) is a thin layer of flag parsing
//! over it; both are the only places that format text for people.

extern crate self as neurograph;

#[cfg(feature = "cli")]
pub mod cli;
pub mod diagnostics;
#[cfg(feature = "cli")]
pub mod experiment;
pub mod generate;
pub mod groups;
pub mod inspect;
pub mod memory;
pub mod native;
pub mod nir_export;
pub mod run;
pub mod simulation;

use std::path::Path;

pub use neurograph_analysis as analysis;
pub use neurograph_compiler as compiler;
pub use neurograph_grammar as grammar;
pub use neurograph_interchange as interchange;
pub use neurograph_runtime as runtime;
pub use simulation::{Backend, Error, Model, Simulation, SimulationBuilder, Stopped};

use neurograph_compiler::{FsLoader, Output};
use neurograph_grammar::SourceMap;

/// A spec compiled from a file, with the sources needed to render its diagnostics.
pub struct Checked {
    pub sources: SourceMap,
    pub output: Output,
}

/// The spec files (`*.ng`) of a directory, sorted by path.
pub fn spec_files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut specs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "ng") {
            specs.push(path);
        }
    }
    specs.sort();
    Ok(specs)
}

/// Read and compile a spec file; relative paths inside it start at its directory.
pub fn compile_file(path: &Path) -> std::io::Result<Checked> {
    let text = std::fs::read_to_string(path)?;
    Ok(compile_text(path, text))
}

/// Compile spec text as if it were the file `path` (for specs with appended records).
pub fn compile_text(path: &Path, text: String) -> Checked {
    let mut sources = SourceMap::new();
    let root = sources.add(path.display().to_string(), text);
    let loader = FsLoader::for_spec(path);
    let output = neurograph_compiler::compile(&mut sources, root, &loader);
    Checked { sources, output }
}
