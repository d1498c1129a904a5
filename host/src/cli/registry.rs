//! `drowl-host plugin install|upgrade|list|enable|disable|remove|install-bundled`:
//! managing the `plugins` table, the registry every `serve` on the database runs (see
//! `jobs::catalog`).
//!
//! The database is PostgreSQL when `DATABASE_URL` is set (migrated with `drowl-host
//! migrate`), otherwise the embedded SQLite of `--data-dir`, as for `serve`. Results go
//! to stdout as JSON, one line of what happened to stderr; errors are one line naming the
//! plugin and what to do. Running daemons pick changes up at their next poll
//! (`serve --registry-poll-ms`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::exit;
use crate::config::{DataDirArgs, parse_key_values};
use crate::jobs::catalog::components::sha256_hex;
use crate::jobs::catalog::manage::{Installed, ManageError, Manager};
use crate::runtime::{EngineSettings, LoadError, Runtime};
use crate::storage::{PluginRow, StorageConfig};

/// Where the registry lives and how components are compiled, shared by every command.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// The data directory: the embedded database (when DATABASE_URL is unset), the
    /// plugin store (`components/`) and the compiled-code cache `serve` reuses.
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Time instantiating a component and calling its `describe` may take, in ms (as
    /// `serve`'s flag of the same name).
    #[arg(long, value_name = "MS", default_value_t = crate::config::DEFAULT_DESCRIBE_TIMEOUT_MS)]
    pub describe_timeout_ms: u64,
}

/// The registry subcommands of `plugin`.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Check a component, store and precompile it, and record it in the plugins table.
    Install {
        /// The component.
        wasm: PathBuf,
        /// The id to install it as; must be the id its manifest declares (default).
        #[arg(long)]
        id: Option<String>,
        /// A config value, `key=value` (repeatable). Write secrets as `key=${VAR}`: the
        /// reference is stored and the daemon reads the variable from its environment.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// Record it disabled: no job runs it until `plugin enable`.
        #[arg(long)]
        disabled: bool,
        /// The database, data directory and engine.
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Replace an installed plugin's component (and its config, with --config); jobs
    /// already running finish on the old build.
    Upgrade {
        /// The plugin id.
        id: String,
        /// The new component (the same one, with --config, only changes the config).
        wasm: PathBuf,
        /// The whole new config, `key=value` (repeatable); without it the installed
        /// config is kept.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// The database, data directory and engine.
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// List the plugins table.
    List {
        /// Print the rows as JSON.
        #[arg(long)]
        json: bool,
        /// The database, data directory and engine.
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Let jobs run an installed plugin.
    Enable {
        /// The plugin id.
        id: String,
        /// The database, data directory and engine.
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Stop giving an installed plugin new jobs (running ones finish; new ones fail as
    /// plugin-not-found, saying it is disabled).
    Disable {
        /// The plugin id.
        id: String,
        /// The database, data directory and engine.
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Uninstall a plugin (its row stays, not installed; its state is kept).
    Remove {
        /// The plugin id.
        id: String,
        /// The database, data directory and engine.
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Install the first-party plugins shipped with this drowl-host (a release's
    /// `plugins/` next to the binary, or --from DIR).
    InstallBundled {
        /// The directory of components (default: `plugins/` next to the binary, else
        /// `../share/drowl-host/plugins` from it, else `/usr/lib/drowl/plugins.d`).
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
        /// Upgrade installed plugins whose component differs from the bundled one.
        #[arg(long)]
        upgrade: bool,
        /// Record newly installed ones disabled.
        #[arg(long)]
        disabled: bool,
        /// The database, data directory and engine.
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

impl RegistryCommand {
    /// The options every registry command has, for the settings file to fill in.
    pub fn args_mut(&mut self) -> &mut RegistryArgs {
        match self {
            Self::Install { registry, .. }
            | Self::Upgrade { registry, .. }
            | Self::List { registry, .. }
            | Self::Enable { registry, .. }
            | Self::Disable { registry, .. }
            | Self::Remove { registry, .. }
            | Self::InstallBundled { registry, .. } => registry,
        }
    }
}

/// Runs a registry subcommand against the database `storage` names (PostgreSQL, or the
/// embedded SQLite of the data directory).
pub async fn run(cmd: RegistryCommand, storage: StorageConfig) -> u8 {
    match cmd {
        RegistryCommand::Install {
            wasm,
            id,
            config,
            disabled,
            registry,
        } => {
            let config = match parse_key_values("--config", &config) {
                Ok(c) => c,
                Err(e) => return fail(e, exit::USAGE),
            };
            let m = match manager(&registry, &storage).await {
                Ok(m) => m,
                Err(code) => return code,
            };
            let bar = super::progress::spinner(&format!(
                "installing {}: checking and compiling",
                wasm.display()
            ));
            let outcome = m.install(&wasm, id.as_deref(), &config, !disabled).await;
            bar.finish_and_clear();
            match outcome {
                Ok(done) => installed("installed", &done),
                Err(e) => refused(&e),
            }
        }
        RegistryCommand::Upgrade {
            id,
            wasm,
            config,
            registry,
        } => {
            let config = match parse_key_values("--config", &config) {
                Ok(c) => c,
                Err(e) => return fail(e, exit::USAGE),
            };
            let m = match manager(&registry, &storage).await {
                Ok(m) => m,
                Err(code) => return code,
            };
            let given = (!config.is_empty()).then_some(&config);
            let bar = super::progress::spinner(&format!(
                "upgrading {id} to {}: checking and compiling",
                wasm.display()
            ));
            let outcome = m.upgrade(&id, &wasm, given).await;
            bar.finish_and_clear();
            match outcome {
                Ok(done) => installed("upgraded", &done),
                Err(e) => refused(&e),
            }
        }
        RegistryCommand::List { json, registry } => {
            let m = match manager(&registry, &storage).await {
                Ok(m) => m,
                Err(code) => return code,
            };
            match m.list().await {
                Ok(rows) if json => print_json(&rows),
                Ok(rows) => print_out(&table(&rows)),
                Err(e) => refused(&e),
            }
        }
        RegistryCommand::Enable { id, registry } => {
            switch(&registry, &storage, &id, Switch::Enable).await
        }
        RegistryCommand::Disable { id, registry } => {
            switch(&registry, &storage, &id, Switch::Disable).await
        }
        RegistryCommand::Remove { id, registry } => {
            switch(&registry, &storage, &id, Switch::Remove).await
        }
        RegistryCommand::InstallBundled {
            from,
            upgrade,
            disabled,
            registry,
        } => install_bundled(from, upgrade, !disabled, &registry, &storage).await,
    }
}

enum Switch {
    Enable,
    Disable,
    Remove,
}

async fn switch(registry: &RegistryArgs, storage: &StorageConfig, id: &str, what: Switch) -> u8 {
    let m = match manager(registry, storage).await {
        Ok(m) => m,
        Err(code) => return code,
    };
    let (result, done) = match what {
        Switch::Enable => (m.set_enabled(id, true).await, "enabled"),
        Switch::Disable => (m.set_enabled(id, false).await, "disabled"),
        Switch::Remove => (m.remove(id).await, "removed"),
    };
    match result {
        Ok(row) => {
            eprintln!(
                "{done} {id} {}; running daemons {} at their next poll",
                row.version,
                match what {
                    Switch::Enable => "give it jobs",
                    Switch::Disable | Switch::Remove =>
                        "stop giving it new jobs (jobs running now finish)",
                }
            );
            print_json(&row)
        }
        Err(e) => refused(&e),
    }
}

/// The directory `install-bundled` reads when given none: a release's `plugins/` next
/// to the binary, an installed layout's `share/drowl-host/plugins`, or where the image
/// and the systemd unit of `examples/deploy/` put them.
fn bundled_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?;
    [
        bin.join("plugins"),
        bin.join("../share/drowl-host/plugins"),
        PathBuf::from("/usr/lib/drowl/plugins.d"),
    ]
    .into_iter()
    .find(|d| d.is_dir())
}

async fn install_bundled(
    from: Option<PathBuf>,
    upgrade: bool,
    enabled: bool,
    registry: &RegistryArgs,
    storage: &StorageConfig,
) -> u8 {
    let Some(dir) = from.or_else(bundled_dir) else {
        return fail(
            "no bundled plugins next to this drowl-host (plugins/ beside the binary, or ../share/drowl-host/plugins); pass --from DIR (scripts/build-plugins.sh builds them into target/wasm32-wasip2/release/)",
            exit::USAGE,
        );
    };
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect(),
        Err(e) => return fail(format!("cannot list {}: {e}", dir.display()), exit::USAGE),
    };
    files.sort();
    if files.is_empty() {
        return fail(
            format!("{} holds no components (*.wasm)", dir.display()),
            exit::USAGE,
        );
    }
    let m = match manager(registry, storage).await {
        Ok(m) => m,
        Err(code) => return code,
    };
    let mut done = Vec::new();
    let mut code = exit::OK;
    let bar = super::progress::items(files.len() as u64, "installing");
    // Lines printed while the bar is drawn go above it, not through it.
    let say = |line: String| bar.suspend(|| eprintln!("{line}"));
    for file in files {
        bar.set_message(format!("checking and compiling {}", file.display()));
        bar.inc(1);
        let outcome = match m.install(&file, None, &Default::default(), enabled).await {
            Err(ManageError::Taken { id, .. }) if upgrade => {
                m.upgrade(&id, &file, None).await.map(|d| ("upgraded", d))
            }
            Err(ManageError::Taken { id, version }) if same_build(&m, &id, &file).await => {
                say(format!("{id} {version} is up to date"));
                continue;
            }
            Err(ManageError::Taken { id, version }) => {
                say(format!(
                    "kept {id} {version}: another build is installed (--upgrade replaces it with {})",
                    file.display()
                ));
                continue;
            }
            other => other.map(|d| ("installed", d)),
        };
        match outcome {
            Ok((verb, d)) => {
                bar.suspend(|| describe(verb, &d));
                done.push(d);
            }
            Err(e) => {
                say(format!("error: {}: {e}", file.display()));
                code = code.max(code_for(&e));
            }
        }
    }
    bar.finish_and_clear();
    code.max(print_json(&done))
}

/// Whether installed plugin `id` runs the component in `file` already.
async fn same_build(m: &Manager, id: &str, file: &std::path::Path) -> bool {
    let Ok(bytes) = std::fs::read(file) else {
        return false;
    };
    let sha = sha256_hex(&bytes);
    m.list().await.is_ok_and(|rows| {
        rows.iter()
            .any(|r| r.id == id && r.component_sha256.as_deref() == Some(sha.as_str()))
    })
}

/// The registry commands over the database drowl's environment names (or the embedded
/// one) and an engine caching compiled code in the data directory, as `serve`'s does.
/// `Err` is the exit code, after saying why.
async fn manager(args: &RegistryArgs, storage: &StorageConfig) -> Result<Manager, u8> {
    let given = &args.data.data_dir;
    let data_dir = std::fs::create_dir_all(given)
        .and_then(|()| std::fs::canonicalize(given))
        .map_err(|e| fail(format!("data dir {}: {e}", given.display()), exit::USAGE))?;
    let db = crate::storage::plugins::open_plugin_store(storage, &data_dir)
        .await
        .map_err(|e| fail(e, exit::STORAGE))?;
    let runtime = Runtime::new(&EngineSettings {
        cache_dir: Some(data_dir.join("cache")),
        describe_timeout: Duration::from_millis(args.describe_timeout_ms),
        ..EngineSettings::default()
    })
    .map_err(|e| fail(e, exit::INTERNAL))?;
    Ok(Manager::new(runtime, db, &data_dir))
}

fn describe(verb: &str, d: &Installed) {
    let change = match (&d.previous_version, d.unchanged) {
        (_, true) => format!("{} already runs this build and config", d.id),
        (Some(prev), false) if *prev != d.version => {
            format!("{} {prev} -> {}", d.id, d.version)
        }
        _ => format!("{} {}", d.id, d.version),
    };
    eprintln!(
        "{verb} {change} ({}, drowl:plugin@{}, sha256 {}), {}; running daemons pick it up at their next poll",
        d.world,
        d.wit_version,
        &d.sha256[..12.min(d.sha256.len())],
        if d.enabled { "enabled" } else { "disabled" },
    );
}

fn installed(verb: &str, d: &Installed) -> u8 {
    describe(verb, d);
    print_json(d)
}

fn print_json(v: &impl serde::Serialize) -> u8 {
    match serde_json::to_string_pretty(v) {
        Ok(s) => print_out(&format!("{s}\n")),
        Err(e) => fail(e, exit::INTERNAL),
    }
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn print_out(text: &str) -> u8 {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => fail(format!("cannot write to stdout: {e}"), exit::INTERNAL),
    }
}

/// `list`'s table: one line per row.
fn table(rows: &[PluginRow]) -> String {
    let mut out = format!(
        "{:<20} {:<12} {:<9} {:<9} {:<14} {}\n",
        "ID", "VERSION", "INSTALLED", "ENABLED", "COMPONENT", "LAST ERROR"
    );
    for r in rows {
        let yes = |b: bool| if b { "yes" } else { "no" };
        out.push_str(&format!(
            "{:<20} {:<12} {:<9} {:<9} {:<14} {}\n",
            r.id,
            r.version,
            yes(r.is_installed),
            yes(r.is_enabled),
            r.component_sha256
                .as_deref()
                .map_or("(directory)", |s| &s[..12.min(s.len())]),
            r.last_error.as_deref().unwrap_or("-")
        ));
    }
    out
}

fn code_for(e: &ManageError) -> u8 {
    match e {
        ManageError::Invalid(LoadError::Io { .. }) | ManageError::Read { .. } => exit::USAGE,
        ManageError::Invalid(_) => exit::INVALID_PLUGIN,
        ManageError::BadId(_)
        | ManageError::IdMismatch { .. }
        | ManageError::Taken { .. }
        | ManageError::Unknown { .. }
        | ManageError::Config { .. } => exit::USAGE,
        ManageError::Component(_) | ManageError::Storage(_) => exit::STORAGE,
    }
}

fn refused(e: &ManageError) -> u8 {
    fail(e, code_for(e))
}

fn fail(message: impl std::fmt::Display, code: u8) -> u8 {
    eprintln!("error: {message}");
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_what_runs_and_why_not() {
        let row = |id: &str, enabled, sha: Option<&str>, err: Option<&str>| PluginRow {
            id: id.into(),
            name: id.into(),
            version: "1.0.0".into(),
            description: None,
            author_name: None,
            author_email: None,
            author_url: None,
            manifest: serde_json::json!({}),
            config: serde_json::json!({}),
            is_enabled: enabled,
            is_installed: true,
            installed_at: None,
            enabled_at: None,
            disabled_at: None,
            last_error: err.map(str::to_owned),
            last_error_at: None,
            updated_at: chrono::Utc::now(),
            component_sha256: sha.map(str::to_owned),
        };
        let t = table(&[
            row("github", true, Some(&"ab".repeat(32)), None),
            row("feed", false, None, Some("boom")),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(
            lines[1].starts_with("github") && lines[1].contains("abababababab"),
            "{t}"
        );
        assert!(
            lines[2].contains("(directory)") && lines[2].ends_with("boom"),
            "{t}"
        );
    }
}
