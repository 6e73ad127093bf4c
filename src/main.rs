//! The `neurograph` command line (`neurograph::cli`).

fn main() -> std::process::ExitCode {
    neurograph::cli::main()
}
