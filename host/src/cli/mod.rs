//! The `drowl-host` command line.
//!
//! Each subcommand lives in its own module; this one parses arguments, sets up logging
//! and maps failures to exit codes (see [`exit`]).

pub mod config;
pub mod enqueue;
pub mod exit;
pub mod jobs;
pub mod migrate;
pub mod plugin;
mod progress;
pub mod queue_args;
pub mod registry;
pub mod run_plugin;
pub mod schedules;
pub mod serve;
mod settings;

use std::path::PathBuf;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{Layer, LoadedFile, Problem};

/// drowl's data plane: runs ingestion and enrichment plugins as sandboxed WebAssembly
/// components.
#[derive(Debug, Parser)]
#[command(name = "drowl-host", version, about, long_about = None)]
pub struct Cli {
    /// The TOML settings file (every key documented in examples/drowl.toml). A flag wins
    /// over its environment variable, which wins over the file, which wins over the
    /// built-in default; `drowl-host config check` shows the result.
    #[arg(long, global = true, env = "DROWL_CONFIG_FILE", value_name = "PATH")]
    config_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one job through a plugin, as the daemon would (embedded storage by default).
    RunPlugin(Box<run_plugin::RunPluginArgs>),
    /// Inspect plugins, and manage the plugins table (install, upgrade, enable, ...).
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
    /// Check the settings.
    #[command(subcommand)]
    Config(config::ConfigCommand),
}

/// Entry point of the binary.
pub fn main() -> std::process::ExitCode {
    let command = Cli::command();
    let matches = command.clone().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
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
    let code = runtime.block_on(run(cli, &command, &matches));
    std::process::ExitCode::from(code)
}

/// The subcommand's own matches and definition (one level down for `plugin check` and
/// `config check`), where its flags' sources are read.
fn leaf<'a>(
    command: &'a clap::Command,
    matches: &'a ArgMatches,
) -> (&'a clap::Command, &'a ArgMatches) {
    let (mut command, mut matches) = (command, matches);
    while let Some((name, sub)) = matches.subcommand() {
        match command.find_subcommand(name) {
            Some(c) => (command, matches) = (c, sub),
            None => break,
        }
    }
    (command, matches)
}

/// Prints each problem on its own line; the exit code of bad settings.
fn refuse(problems: &[Problem]) -> u8 {
    for p in problems {
        eprintln!("error: {p}");
    }
    exit::USAGE
}

/// Resolves the command's settings (the file under its flags), then runs it.
async fn run(cli: Cli, command: &clap::Command, matches: &ArgMatches) -> u8 {
    let file = match cli.config_file.as_deref().map(LoadedFile::load).transpose() {
        Ok(f) => f,
        Err(p) => return refuse(&[p]),
    };
    let (command, matches) = leaf(command, matches);
    let mut layer = Layer::new(matches, command, file.as_ref());
    macro_rules! settle {
        ($parts:expr) => {{
            let parts = $parts;
            match parts.finish(layer) {
                Ok(s) => s,
                Err(problems) => return refuse(&problems),
            }
        }};
    }
    match cli.command {
        Command::RunPlugin(mut args) => {
            let settings = settle!(settings::run_plugin(&mut layer, &mut args));
            run_plugin::run(*args, settings).await
        }
        Command::Plugin(plugin::PluginCommand::Check {
            wasm,
            mut describe_timeout_ms,
            mut max_manifest_bytes,
        }) => {
            settings::plugin_check(
                &mut layer,
                &mut describe_timeout_ms,
                &mut max_manifest_bytes,
            );
            if let Err(problems) = layer.finish(Default::default(), None, Default::default()) {
                return refuse(&problems);
            }
            plugin::run(plugin::PluginCommand::Check {
                wasm,
                describe_timeout_ms,
                max_manifest_bytes,
            })
            .await
        }
        Command::Plugin(plugin::PluginCommand::Registry(mut cmd)) => {
            // The file's data_dir under --data-dir; the database is drowl's DATABASE_URL.
            layer.data_dir(&mut cmd.args_mut().data);
            let storage = layer.storage();
            if let Err(problems) = layer.finish(Default::default(), None, Default::default()) {
                return refuse(&problems);
            }
            registry::run(cmd, storage).await
        }
        Command::Migrate(args) => {
            let source = layer
                .given("database_url")
                .unwrap_or(crate::config::Source::Default);
            let shown = args
                .database_url
                .as_deref()
                .map(|u| crate::config::redact_url(u, "(unparseable DATABASE_URL)"));
            layer.record("DATABASE_URL", shown.map(toml::Value::String), vec![source]);
            if let Err(problems) = layer.finish(Default::default(), None, Default::default()) {
                return refuse(&problems);
            }
            migrate::run(args).await
        }
        Command::Serve(mut args) => {
            let settings = settle!(settings::serve(&mut layer, &mut args));
            serve::run(*args, settings).await
        }
        Command::Enqueue(mut args) => {
            settings::queue(&mut layer, &mut args.queue);
            if let Err(problems) = layer.finish(Default::default(), None, Default::default()) {
                return refuse(&problems);
            }
            enqueue::run(args).await
        }
        Command::Jobs(mut args) => {
            settings::queue(&mut layer, &mut args.queue);
            if let Err(problems) = layer.finish(Default::default(), None, Default::default()) {
                return refuse(&problems);
            }
            jobs::run(args).await
        }
        Command::Schedules(mut args) => {
            let settings = settle!(settings::schedules(&mut layer, &mut args));
            schedules::run(args, settings).await
        }
        Command::Config(config::ConfigCommand::Check(mut args)) => config::check(&mut args, layer),
    }
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
