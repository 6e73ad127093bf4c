//! neurograph's compiler: from spec text to a checked IR.
//!
//! `compile` parses the root spec and its imports, lowers them to the [`ir::Model`] (name
//! resolution, unit checking and constant folding happen during lowering, in `lower/`), checks
//! integration methods (`check.rs`) and builds the model graph (`graph.rs`) for the update
//! order and zero-delay cycles. Results of analyses live in the [`Info`] side table; the IR is
//! never annotated in place. Nothing here prints: every problem is a [`Diagnostic`] with a span.

pub mod abi;
pub mod check;
pub mod codegen;
pub mod event_driven;
pub mod funcs;
pub mod graph;
pub mod ir;
pub mod layout;
mod lower;
pub mod math;
pub mod print;
pub mod quantity;
mod reciprocal;
pub mod units;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use neurograph_grammar::{self as grammar, Diagnostic, FileId, ItemKind, SourceMap};

pub use lower::{
    connect_stream, const_eval, const_eval_with, eval_pure, event_stream, named_stream, pow_f64,
    regime_stream, stable_hash, Ty, VarValue,
};
pub use neurograph_grammar::{AssignOp, BinOp, Span, UnOp};

use ir::*;

/// Where a compilation reads imported specs and checks that data files exist.
pub trait Loader {
    fn read(&self, path: &str) -> std::io::Result<String>;
    fn exists(&self, path: &str) -> bool;
    /// Whether `path` names a directory (so that "not found" can say what is there instead).
    fn is_dir(&self, _path: &str) -> bool {
        false
    }

    /// One name per file, however an import spells its path (`lib/a.ng`, `./lib/../lib/a.ng`):
    /// each file is read once. The default normalises the path lexically.
    fn canonical(&self, path: &str) -> String {
        normalize(path)
    }
}

/// `path` without `.` components and with each `dir/..` pair removed (leading `..` kept).
pub fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&p) if p != ".." => {
                    parts.pop();
                }
                _ if absolute => {}
                _ => parts.push(".."),
            },
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Reads files relative to a base directory (the root spec's directory).
pub struct FsLoader {
    pub base: PathBuf,
}

impl FsLoader {
    pub fn for_spec(spec: &Path) -> FsLoader {
        FsLoader {
            base: spec.parent().map(Path::to_path_buf).unwrap_or_default(),
        }
    }

    pub fn resolve(&self, path: &str) -> PathBuf {
        self.base.join(path)
    }
}

impl Loader for FsLoader {
    fn read(&self, path: &str) -> std::io::Result<String> {
        std::fs::read_to_string(self.resolve(path))
    }

    fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_file()
    }

    fn is_dir(&self, path: &str) -> bool {
        self.resolve(path).is_dir()
    }

    /// The file's canonical path on disk (symbolic links resolved), or the lexically
    /// normalised path when it does not exist.
    fn canonical(&self, path: &str) -> String {
        match std::fs::canonicalize(self.resolve(path)) {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(_) => normalize(&self.resolve(path).to_string_lossy()),
        }
    }
}

/// Validation results, keyed by IR handles.
pub struct Info {
    /// Type (unit or condition) of every expression, indexed like `model.exprs`.
    pub types: Vec<Ty>,
    /// Integration method chosen for each cell type and each projection's synapse dynamics.
    pub cell_methods: HashMap<Handle<CellType>, Method>,
    pub projection_methods: HashMap<Handle<Projection>, Method>,
    /// Populations and projections in the order they are updated within a step.
    pub update_order: Vec<Node>,
    pub graph: graph::ModelGraph,
}

pub struct Compiled {
    pub model: Model,
    pub info: Info,
    /// The generated code of this model, made on first use and shared by every simulation of
    /// it: a kernel is compiled once per model and key, not once per simulation or seed. Its
    /// executable memory is released when the last holder drops.
    pub kernels: std::sync::OnceLock<codegen::KernelSource>,
}

/// The result of a compilation: the model when there were no errors, and every diagnostic
/// (errors and warnings) in source order.
pub struct Output {
    pub compiled: Option<Compiled>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Output {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Compile the spec `root` of `sources`; imported files are added to `sources`.
pub fn compile(sources: &mut SourceMap, root: FileId, loader: &dyn Loader) -> Output {
    let mut diagnostics = Vec::new();
    let mut asts = Vec::new();
    let mut loaded = HashSet::new();
    let root_name = sources.file(root).name.clone();
    let root_file = Path::new(&root_name)
        .file_name()
        .map_or(root_name.clone(), |f| f.to_string_lossy().into_owned());
    loaded.insert(loader.canonical(&root_file));
    load_file(
        sources,
        root,
        loader,
        &mut asts,
        &mut loaded,
        &mut diagnostics,
        0,
    );
    // Items in the order they appear, with imported items at the place of their import.
    let items: Vec<&grammar::Item> = asts
        .iter()
        .flat_map(|a: &grammar::Ast| a.items.iter())
        .filter(|i| !matches!(i.kind, ItemKind::Import(_)))
        .collect();
    let default_name = Path::new(&sources.file(root).name)
        .file_stem()
        .map_or("model".to_string(), |s| s.to_string_lossy().into_owned());
    // Items that did not parse: their syntax error is reported, their names are not "unknown".
    let broken: Vec<String> = asts.iter().flat_map(|a| a.broken.iter().cloned()).collect();
    let lowered = lower::lower(&items, &broken, &default_name, loader);
    let syntax_ok = diagnostics.is_empty();
    let lower::Lowerer {
        mut model,
        mut types,
        diags,
        cell_methods,
        projection_methods,
        ..
    } = lowered;
    diagnostics.extend(diags);
    let graph = graph::ModelGraph::build(&model);
    let update_order = match graph.update_order(&model) {
        Ok(o) => o,
        Err(errs) => {
            diagnostics.extend(errs);
            Vec::new()
        }
    };
    diagnostics.sort_by_key(|d| (d.span.start, d.span.end));
    let ok = syntax_ok && !diagnostics.iter().any(Diagnostic::is_error);
    if ok {
        reciprocal::rewrite(&mut model, &mut types, &cell_methods, &projection_methods);
        event_driven::select(&mut model, &projection_methods);
    }
    Output {
        compiled: ok.then_some(Compiled {
            model,
            info: Info {
                types,
                cell_methods,
                projection_methods,
                update_order,
                graph,
            },
            kernels: std::sync::OnceLock::new(),
        }),
        diagnostics,
    }
}

/// Convenience: compile spec text that has no imports and no data files.
pub fn compile_str(name: &str, text: &str, loader: &dyn Loader) -> (SourceMap, Output) {
    let mut sources = SourceMap::new();
    let id = sources.add(name, text);
    let out = compile(&mut sources, id, loader);
    (sources, out)
}

const MAX_IMPORT_DEPTH: usize = 32;

fn load_file(
    sources: &mut SourceMap,
    id: FileId,
    loader: &dyn Loader,
    asts: &mut Vec<grammar::Ast>,
    loaded: &mut HashSet<String>,
    diags: &mut Vec<Diagnostic>,
    depth: usize,
) {
    let file = sources.file(id);
    let (ast, errs) = grammar::parse_at(&file.text.clone(), file.base);
    diags.extend(errs);
    let imports: Vec<grammar::StrLit> = ast
        .items
        .iter()
        .filter_map(|i| match &i.kind {
            ItemKind::Import(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    for imp in imports {
        if !loaded.insert(loader.canonical(&imp.value)) {
            continue; // already imported (or importing itself): each file is read once
        }
        if depth >= MAX_IMPORT_DEPTH {
            diags.push(
                Diagnostic::error(imp.span, "imports nest too deeply")
                    .with_label("import chain longer than 32 files"),
            );
            continue;
        }
        match loader.read(&imp.value) {
            Ok(text) => {
                let child = sources.add(imp.value.clone(), text);
                load_file(sources, child, loader, asts, loaded, diags, depth + 1);
            }
            Err(e) => diags.push(
                Diagnostic::error(imp.span, format!("cannot import `{}`: {e}", imp.value))
                    .with_label("file not readable")
                    .with_help("paths are relative to the directory of the spec file"),
            ),
        }
    }
    asts.push(ast);
}
