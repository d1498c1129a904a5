//! `drowl-host run-plugin`: run one job through one plugin, exactly as the daemon would
//! (same engine settings, same budgets, same storage code), on embedded storage, with no
//! Redis, PostgreSQL or S3 (or, with `--storage env`, on the PostgreSQL and S3 that
//! drowl's variables name).
//!
//! stdout gets the result as JSON; stderr gets one summary line (or one error line), so
//! `run-plugin ... | jq` works and a failing run says what to fix.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde_json::json;

use super::exit;
use crate::config::{DataDirArgs, SandboxArgs, Settings};
use crate::jobs::{Executor, FailedJob, JobRequest, ReadyPlugin, Registry};
use crate::runtime::{EngineSettings, Runtime};

/// Arguments of `run-plugin`.
#[derive(Debug, Args)]
pub struct RunPluginArgs {
    /// The plugin component (.wasm).
    pub plugin: PathBuf,
    /// The job, in drowl's format `{"type", "name", "input"}`: a file, or `-` for stdin.
    #[arg(long, value_name = "FILE|-")]
    pub job: String,
    /// The job id (default: a fresh `local-…` id). Reusing an id reproduces a job.
    #[arg(long)]
    pub job_id: Option<String>,
    /// Where embedded state lives.
    #[command(flatten)]
    pub data: DataDirArgs,
    /// `embedded`: SQLite and files in the data dir. `env`: the backends `DATABASE_URL`
    /// and `S3_*` name, as the daemon opens them (embedded for what is unset; the
    /// schema must already be migrated).
    #[arg(long, value_enum, default_value_t = StorageChoice::Embedded)]
    pub storage: StorageChoice,
    /// Per-plugin settings as JSON, the file `serve --plugin-config` reads: the entry of
    /// this plugin's id gives its config, secrets and grants (`--config` values go over
    /// them key by key). The settings file's `[plugins.<id>]` is read too.
    #[arg(long, env = "DROWL_PLUGIN_CONFIG", value_name = "FILE")]
    pub plugin_config: Option<PathBuf>,
    /// Budgets, grants and config.
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// Which storage `run-plugin` writes to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StorageChoice {
    /// SQLite and files in the data directory.
    #[default]
    Embedded,
    /// What drowl's environment variables configure ([`crate::storage::StorageConfig::from_env`]).
    Env,
}

fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    code
}

/// Runs the command with `args` holding the effective flags and `resolved` the rest (see
/// `cli::settings`); returns the exit code.
pub async fn run(args: RunPluginArgs, resolved: Settings) -> u8 {
    let text = if args.job == "-" {
        let mut s = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut s) {
            return fail(exit::USAGE, format!("cannot read the job from stdin: {e}"));
        }
        s
    } else {
        match std::fs::read_to_string(&args.job) {
            Ok(s) => s,
            Err(e) => {
                return fail(
                    exit::USAGE,
                    format!("cannot read job file {}: {e}", args.job),
                );
            }
        }
    };
    let job_id = args
        .job_id
        .clone()
        .unwrap_or_else(|| format!("local-{}", ulid::Ulid::new()));
    let mut job = match JobRequest::from_json(&job_id, &text) {
        Ok(j) => j,
        Err(e) => return fail(exit::USAGE, format!("{}: {e}", args.job)),
    };
    if !args.plugin.exists() {
        return fail(
            exit::USAGE,
            format!("plugin file {} does not exist", args.plugin.display()),
        );
    }
    if let Err(e) = std::fs::create_dir_all(&args.data.data_dir) {
        return fail(
            exit::USAGE,
            format!(
                "cannot create data dir {}: {e}",
                args.data.data_dir.display()
            ),
        );
    }
    let data_dir = match std::fs::canonicalize(&args.data.data_dir) {
        Ok(d) => d,
        Err(e) => {
            return fail(
                exit::USAGE,
                format!("data dir {}: {e}", args.data.data_dir.display()),
            );
        }
    };
    let settings = EngineSettings {
        fuel: args.sandbox.fuel.is_some(),
        cache_dir: Some(data_dir.join("cache")),
        describe_timeout: args.sandbox.describe_timeout(),
        max_manifest_bytes: args.sandbox.max_manifest_bytes,
        ..EngineSettings::default()
    };
    let runtime = match Runtime::new(&settings) {
        Ok(r) => r,
        Err(e) => return fail(exit::INTERNAL, e),
    };
    let loaded = match runtime.load_file(&args.plugin).await {
        Ok(p) => p,
        Err(e) => return fail(exit::INVALID_PLUGIN, e),
    };
    let plugin_id = loaded.manifest.id.clone();
    match job.input_str("pluginId") {
        Some(named)
            if named != plugin_id && named.strip_suffix("-plugin") != Some(plugin_id.as_str()) =>
        {
            return fail(
                exit::USAGE,
                format!(
                    "the job names plugin `{named}` but {} is plugin `{plugin_id}`; fix input.pluginId or pass the right file",
                    args.plugin.display()
                ),
            );
        }
        Some(_) => {}
        None => {
            if let Some(obj) = job.input.as_object_mut() {
                obj.insert("pluginId".into(), json!(plugin_id));
            }
        }
    }
    let policy = match resolved.policy(&args.sandbox, Some(&plugin_id)) {
        Ok(p) => p,
        Err(e) => return fail(exit::USAGE, e),
    };
    let opened = match args.storage {
        StorageChoice::Embedded => crate::storage::open_embedded(&data_dir)
            .await
            .map_err(|e| format!("embedded storage in {}: {e}", args.data.data_dir.display())),
        StorageChoice::Env => crate::storage::open(&resolved.storage, &data_dir)
            .await
            .map_err(|e| format!("storage from the environment: {e}")),
    };
    let storage = match opened {
        Ok(s) => s,
        Err(e) => return fail(exit::STORAGE, e),
    };
    let sha = loaded.sha256.clone();
    let ready = match ReadyPlugin::prepare(loaded, &policy, &storage) {
        Ok(r) => r,
        Err(e) => return fail(exit::USAGE, e),
    };
    let version = ready.loaded.manifest.version.clone();
    let mut registry = Registry::default();
    if let Err(e) = registry.insert(ready) {
        return fail(exit::INTERNAL, e);
    }
    let executor = Executor::new(runtime, storage, registry);
    let bar = super::progress::percent(&format!(
        "{} {} with {plugin_id}",
        job.job_type.as_str(),
        job.name
    ));
    let progress: crate::capabilities::ProgressSink = {
        let bar = bar.clone();
        Arc::new(move |p| {
            bar.set_position(u64::from(p));
            tracing::debug!(progress = p, "progress");
        })
    };
    let head = json!({
        "id": job.id, "type": job.job_type.as_str(), "name": job.name,
    });
    let plugin_json = json!({ "id": plugin_id, "version": version, "sha256": sha });
    let result = executor.execute(&job, Some(progress)).await;
    bar.finish_and_clear();
    match result {
        Ok(done) => {
            let report = done.report.as_ref();
            let out = json!({
                "status": "completed",
                "job": head,
                "plugin": plugin_json,
                "output": done.output,
                "followUps": report.map(|r| &r.follow_ups),
                // Under `serve`, the job that would continue this one from where it
                // stopped at its call budget (`--max-pages`).
                "continueWith": done.continuation,
                "logs": report.map(|r| &r.logs),
                "requests": report.map(|r| &r.requests),
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            eprintln!(
                "{}",
                summary(&plugin_id, &version, &job, &done.output, report)
            );
            exit::OK
        }
        Err(FailedJob { failure, report }) => {
            let out = json!({
                "status": "failed",
                "job": head,
                "plugin": plugin_json,
                "error": {
                    "code": failure.code(),
                    "message": failure.to_string(),
                    "retryable": matches!(failure.retry(), crate::jobs::Retry::Yes(_)),
                },
                "usage": report.as_ref().map(|r| &r.usage),
                "logs": report.as_ref().map(|r| &r.logs),
                "requests": report.as_ref().map(|r| &r.requests),
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            fail(
                exit::for_failure(&failure),
                format!("{}: {failure}", failure.code()),
            )
        }
    }
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn summary(
    plugin: &str,
    version: &str,
    job: &JobRequest,
    output: &serde_json::Value,
    report: Option<&crate::capabilities::JobReport>,
) -> String {
    let n = |k: &str| {
        output
            .get(k)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let what = match job.job_type {
        crate::jobs::JobType::EventIngestion => format!(
            "stored {} events ({} duplicates) from {} pages, {} identities, {} objects written{}",
            n("eventsStored"),
            n("duplicates"),
            n("pages"),
            n("identities"),
            n("objectsWritten"),
            if output.get("hasMore").and_then(serde_json::Value::as_bool) == Some(true) {
                "; more to fetch (page budget reached)"
            } else {
                ""
            }
        ),
        crate::jobs::JobType::DataExport => format!(
            "delivered {} events in {} calls",
            n("delivered"),
            n("calls")
        ),
        _ => {
            // Inline terms drowl does not track are matched but not stored: say so, or a
            // demo that names only such terms would seem to have found nothing.
            let unknown = output
                .get("unknownKeywords")
                .and_then(serde_json::Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            let unknown_matches: u64 = unknown
                .iter()
                .filter_map(|k| k.get("matches").and_then(serde_json::Value::as_u64))
                .sum();
            format!(
                "scanned {} events, stored {} keyword matches ({} already known){}",
                n("eventsScanned"),
                n("matchesStored"),
                n("matchesExisting"),
                if unknown.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {unknown_matches} matches of {} untracked keywords, not stored",
                        unknown.len()
                    )
                }
            )
        }
    };
    let usage = report.map(|r| &r.usage);
    let u = |f: fn(&crate::capabilities::Usage) -> u64| usage.map_or(0, f);
    format!(
        "ok: {plugin} {version} · {} `{}`: {what} · {} HTTP requests ({} in) · wall {} ms · peak guest memory {}",
        job.job_type.as_str(),
        job.name,
        u(|u| u64::from(u.http_requests)),
        human_bytes(u(|u| u.http_bytes_in)),
        u(|u| u.wall_ms),
        human_bytes(u(|u| u.peak_memory_bytes)),
    )
}
