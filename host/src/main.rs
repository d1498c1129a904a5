//! The `drowl-host` binary: a thin wrapper over [`drowl_host::cli`].

fn main() -> std::process::ExitCode {
    drowl_host::cli::main()
}
