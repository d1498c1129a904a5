//! `drowl-host config check`: validates the settings `serve` would start with (the
//! settings file, the flags given here and the environment) without starting anything or
//! connecting to any service, and prints the effective settings with their sources.
//!
//! Exit 0: valid; stdout holds every setting, its value (secrets masked) and where it
//! came from, as TOML (a valid settings file, sources in comments) or JSON
//! (`--format json`). Exit 2: invalid; stderr holds one line per problem, each naming
//! the file and key (or the flag or variable) at fault.

use std::collections::HashMap;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use super::exit;
use super::serve::ServeArgs;
use crate::config::{Layer, Problem};

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the settings serve would start with (file, flags, environment) without
    /// starting or connecting to anything, and print every effective setting with its
    /// source, secrets masked. Exit 0 valid, 2 invalid (one line per problem).
    Check(Box<CheckArgs>),
}

/// How `config check` prints the settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A settings file, each value followed by a comment naming its source.
    #[default]
    Toml,
    /// `{"valid", "file", "settings": {key: {"value", "source", "from"}}}`.
    Json,
}

/// Arguments of `config check`: `serve`'s own, so that a command line can be checked as
/// it is before it is started.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Toml)]
    pub format: Format,
    /// The daemon's flags.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Runs `config check` on `layer` (the settings file and this command's matches).
pub fn check(args: &mut CheckArgs, mut layer: Layer<'_>) -> u8 {
    let parts = super::settings::serve(&mut layer, &mut args.serve);
    let a = &args.serve;
    // What `serve` would refuse once started, short of connecting or loading plugins.
    // Their messages name the flags and variables themselves; the file's values were
    // checked (and left out when wrong) while it was laid under the flags.
    if let Err(e) = super::serve::listen_addr(a) {
        layer.problem(Problem::said(e));
    }
    let cap = Duration::from_millis(a.sandbox.timeout_ms);
    if let Err(e) = super::serve::job_defaults(&a.job_defaults, cap) {
        layer.problem(Problem::said(e));
    }
    if let Err(e) = a.sandbox.policy(None) {
        layer.problem(Problem::said(e.to_string()));
    }
    let plugins: HashMap<_, _> = parts
        .plugins
        .iter()
        .map(|(id, p)| (id.clone(), p.settings.clone()))
        .collect();
    if let Err(e) = crate::jobs::InstallPlan::new(&a.plugins, &plugins) {
        let source = layer
            .given("plugins")
            .unwrap_or_else(|| layer.file_source());
        let message = e.to_string();
        layer.problem(match source {
            crate::config::Source::Flag(f) => Problem::flag(f, message),
            crate::config::Source::Env(v) => Problem::env(v, message),
            crate::config::Source::File(p) => Problem::file(&p, "plugins_dir", message),
            crate::config::Source::Default => Problem::flag("--plugins", message),
        });
    }
    if let Some(s3) = &parts.storage.s3
        && let Err(e) = s3.check()
    {
        layer.problem(Problem::env("S3_*", e.to_string()));
    }
    match url::Url::parse(&a.queue.redis_url) {
        Ok(u) if matches!(u.scheme(), "redis" | "rediss" | "redis+unix" | "unix") => {}
        _ => {
            let source = layer.given("redis_url");
            let message = format!(
                "{} is not a redis:// or rediss:// URL",
                a.queue.redacted_url()
            );
            layer.problem(match source {
                Some(crate::config::Source::Flag(f)) => Problem::flag(f, message),
                _ => Problem::env("REDIS_URL", message),
            });
        }
    }
    let settings = match parts.finish(layer) {
        Ok(s) => s,
        Err(problems) => return super::refuse(&problems),
    };
    let file = settings.file.as_deref();
    match args.format {
        Format::Toml => print!("{}", crate::config::render::toml(&settings.entries, file)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&crate::config::render::json(&settings.entries, file))
                .unwrap_or_default()
        ),
    }
    eprintln!(
        "ok: the settings are valid ({}); nothing was started or connected to",
        match file {
            Some(f) => format!("settings file {}", f.display()),
            None => "no settings file".to_owned(),
        }
    );
    exit::OK
}
