//! The `drowl-host` command line.
//!
//! Each subcommand lives in its own module; this one parses arguments, sets up logging
//! and maps failures to exit codes (see [`exit`]).

pub mod enqueue;
pub mod exit;
pub mod jobs;
pub mod migrate;
pub mod plugin;
pub mod queue_args;
pub mod run_plugin;
pub mod schedules;
pub mod serve;

use clap::{Parser, Subcommand};

/// drowl's data plane: runs ingestion and enrichment plugins as sandboxed WebAssembly
/// components.
#[derive(Debug, Parser)]
#[command(name = "drowl-host", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one job through a plugin, as the daemon would (embedded storage by default).
    RunPlugin(Box<run_plugin::RunPluginArgs>),
    /// Inspect plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Apply the PostgreSQL migrations (idempotent).
    Migrate(migrate::MigrateArgs),
    /// Run the daemon: take jobs from drowl's Bull queue and run them on plugins.
    Serve(Box<serve::ServeArgs>),
    /// Add a job to the queue, as drowl's API does.
    Enqueue(enqueue::EnqueueArgs),
    /// Show queue counts, or one job's state.
    Jobs(jobs::JobsArgs),
    /// List the configured schedules and the repeatable jobs in Redis, with next runs.
    Schedules(schedules::SchedulesArgs),
}

/// Entry point of the binary.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::INTERNAL.into();
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Command::RunPlugin(args) => run_plugin::run(*args).await,
            Command::Plugin(cmd) => plugin::run(cmd).await,
            Command::Migrate(args) => migrate::run(args).await,
            Command::Serve(args) => serve::run(*args).await,
            Command::Enqueue(args) => enqueue::run(args).await,
            Command::Jobs(args) => jobs::run(args).await,
            Command::Schedules(args) => schedules::run(args).await,
        }
    });
    std::process::ExitCode::from(code)
}

/// Logs go to stderr (stdout carries results). `RUST_LOG` overrides the default `warn`.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let json = std::env::var("DROWL_LOG_FORMAT").is_ok_and(|v| v == "json");
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
