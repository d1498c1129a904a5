//! `drowl-host plugin check`: everything about a plugin file before anyone deploys it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use super::exit;
use crate::runtime::{EngineSettings, Runtime};

/// Plugin subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Load a plugin as the daemon would and print its manifest, world, imports and
    /// exports, or the problem that would stop it from loading.
    Check {
        /// The component to check.
        wasm: PathBuf,
        /// Time instantiating it and calling its `describe` may take, in milliseconds
        /// (as `serve`'s flag of the same name).
        #[arg(long, value_name = "MS", default_value_t = crate::config::DEFAULT_DESCRIBE_TIMEOUT_MS)]
        describe_timeout_ms: u64,
    },
}

/// Runs a plugin subcommand.
pub async fn run(cmd: PluginCommand) -> u8 {
    match cmd {
        PluginCommand::Check {
            wasm,
            describe_timeout_ms,
        } => check(wasm, Duration::from_millis(describe_timeout_ms)).await,
    }
}

async fn check(wasm: PathBuf, describe_timeout: Duration) -> u8 {
    let runtime = match Runtime::new(&EngineSettings {
        describe_timeout,
        ..EngineSettings::default()
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INTERNAL;
        }
    };
    match runtime.load_file(&wasm).await {
        Ok(plugin) => {
            match serde_json::to_string_pretty(&plugin.report()) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::INTERNAL;
                }
            }
            eprintln!(
                "ok: {} {} implements {} (drowl:plugin@{})",
                plugin.manifest.id,
                plugin.manifest.version,
                plugin.role.world(),
                plugin.wit_version
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                crate::runtime::LoadError::Io { .. } => exit::USAGE,
                _ => exit::INVALID_PLUGIN,
            }
        }
    }
}
