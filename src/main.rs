//! The `neurograph` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use neurograph::diagnostics::{emit_stderr, one_line};
use neurograph::{compile_file, Checked};

#[derive(Parser)]
#[command(
    name = "neurograph",
    version,
    about = "Compile and run neuron-particle network specs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check spec files; report every error with its location.
    Check {
        /// Spec files (`*.ng`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One line per diagnostic (`file:line:col: error: message`) instead of source excerpts.
        #[arg(long)]
        short: bool,
    },
    /// Describe a compiled model: populations, projections, update order, parameters.
    Inspect {
        file: PathBuf,
        /// Print the model graph as Graphviz DOT instead.
        #[arg(long, conflicts_with = "ir")]
        dot: bool,
        /// Print the lowered IR as text instead.
        #[arg(long)]
        ir: bool,
    },
}

/// Compile one file, printing its diagnostics; `None` on any error.
fn compile_reporting(path: &std::path::Path, short: bool) -> Option<Checked> {
    let checked = match compile_file(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return None;
        }
    };
    if short {
        for d in &checked.output.diagnostics {
            eprintln!("{}", one_line(&checked.sources, d));
        }
    } else {
        emit_stderr(&checked.sources, &checked.output.diagnostics);
    }
    (!checked.output.has_errors()).then_some(checked)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files, short } => {
            let mut failed = 0;
            for f in &files {
                if compile_reporting(f, short).is_none() {
                    failed += 1;
                }
            }
            if failed > 0 {
                eprintln!("{failed} of {} file(s) have errors", files.len());
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Inspect { file, dot, ir } => {
            let Some(checked) = compile_reporting(&file, false) else {
                return ExitCode::from(1);
            };
            let c = checked
                .output
                .compiled
                .as_ref()
                .expect("no errors means a model");
            let text = if dot {
                c.info.graph.to_dot(&c.model)
            } else if ir {
                neurograph_compiler::print::print_model(&c.model, &c.info)
            } else {
                neurograph::inspect::describe(c)
            };
            print!("{text}");
            ExitCode::SUCCESS
        }
    }
}
