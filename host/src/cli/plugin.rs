//! `drowl-host plugin check`: everything about a plugin file before anyone deploys it;
//! the registry subcommands are in [`super::registry`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use super::exit;
use crate::jobs::install::{file_name_for, id_for_file_name};
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
        /// Largest manifest accepted, serialised as JSON, in bytes (as `serve`'s flag of
        /// the same name).
        #[arg(long, value_name = "BYTES", default_value_t = crate::manifest::DEFAULT_MAX_MANIFEST_BYTES)]
        max_manifest_bytes: usize,
    },
    /// The plugins table: install, upgrade, list, enable, disable, remove.
    #[command(flatten)]
    Registry(super::registry::RegistryCommand),
}

/// Runs a plugin subcommand.
pub async fn run(cmd: PluginCommand) -> u8 {
    match cmd {
        PluginCommand::Check {
            wasm,
            describe_timeout_ms,
            max_manifest_bytes,
        } => {
            let settings = EngineSettings {
                describe_timeout: Duration::from_millis(describe_timeout_ms),
                max_manifest_bytes,
                ..EngineSettings::default()
            };
            check(wasm, &settings).await
        }
        PluginCommand::Registry(cmd) => {
            let storage = crate::storage::StorageConfig::from_env();
            super::registry::run(cmd, storage).await
        }
    }
}

async fn check(wasm: PathBuf, settings: &EngineSettings) -> u8 {
    let runtime = match Runtime::new(settings) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INTERNAL;
        }
    };
    match runtime.load_file(&wasm).await {
        Ok(plugin) => {
            // `serve` installs a file under the id its name makes (unless the plugin
            // config pins it): say which, and whether the manifest agrees.
            let name = wasm
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let installs_as = id_for_file_name(&name).ok();
            let mut report = match serde_json::to_value(plugin.report()) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::INTERNAL;
                }
            };
            report["installsAs"] = serde_json::json!(installs_as);
            match serde_json::to_string_pretty(&report) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::INTERNAL;
                }
            }
            let declared = &plugin.manifest.id;
            match &installs_as {
                Some(id) if id == declared => {}
                Some(id) => eprintln!(
                    "warning: serve would refuse {name}: its name installs it as `{id}`, but its manifest declares `{declared}`; install it as {} or pin it in the plugin config",
                    file_name_for(declared)
                ),
                None => eprintln!(
                    "warning: {name} does not make a plugin id; install it as {} or pin it in the plugin config",
                    file_name_for(declared)
                ),
            }
            eprintln!(
                "ok: {} {} implements {} (drowl:plugin@{}); serve installs {name} as `{}`",
                plugin.manifest.id,
                plugin.manifest.version,
                plugin.role.world(),
                plugin.wit_version,
                installs_as.as_deref().unwrap_or("?"),
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
