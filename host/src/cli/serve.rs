//! `drowl-host serve`: the daemon. Takes jobs from drowl's Bull queue, runs them on
//! plugins, stores results, mirrors job states into the `jobs` table, and serves health
//! and status over HTTP.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use drowl_bull::{Queue, Worker};

use super::exit;
use super::queue_args::QueueArgs;
use crate::config::{DataDirArgs, SandboxArgs, Settings, parse_rate_limit, parse_type_limit};
use crate::jobs::catalog::{Catalog, CatalogSettings};
use crate::jobs::{AnalyticsSettings, Executor, JobType};
use crate::queue::{
    DaemonStats, DrowlHandler, JobDefaultsOverride, Mirror, TypeDefaults, WorkerPhase,
    min_lock_duration,
};
use crate::runtime::{EngineSettings, Runtime};

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory of plugin components (`*.wasm`). A file's name is its plugin's id
    /// (`github.wasm`, `github_plugin.wasm` and `github-plugin.wasm` are `github`) unless
    /// the plugin config pins it; a component must declare that id. Plugins installed in
    /// the `plugins` table (`drowl-host plugin install`) run too, and a row decides for
    /// its id (see `jobs::catalog`); with installed plugins the directory may be absent.
    /// Both are re-read every --registry-poll-ms.
    #[arg(long, env = "DROWL_PLUGIN_DIR", default_value = "plugins.d")]
    pub plugins: PathBuf,
    /// Per-plugin settings as JSON: `{"github": {"config": {"token": "${GITHUB_TOKEN}"},
    /// "allowHosts": ["https://api.github.com"], "sources": ["github"],
    /// "platforms": []}}`. `${VAR}` values are read from the environment, so secrets need
    /// not be written to the file, and are redacted from the plugin's output like the keys
    /// listed in `"secrets": ["key"]`. `sources` grants declared sources that other
    /// installed plugins declare too; `platforms` grants identity platforms beyond the
    /// plugin's own sources. `"file"` and `"sha256"` pin the id to one file of the plugins
    /// directory and its digest.
    #[arg(long, env = "DROWL_PLUGIN_CONFIG")]
    pub plugin_config: Option<PathBuf>,
    /// Schedules as JSON, `{"schedules": [{"name", "cron", "tz", "job", "options"}]}`,
    /// registered at start as Bull repeatable jobs; `drowl-host.` schedules the file no
    /// longer lists are removed from Redis (see `queue::schedules`).
    #[arg(long, env = "DROWL_SCHEDULES", value_name = "FILE")]
    pub schedules: Option<PathBuf>,
    /// Jobs run at once in this process.
    #[arg(long, env = "DROWL_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
    /// At most N jobs of one type at once, e.g. `event_ingestion=2` (repeatable).
    #[arg(long = "type-limit", value_name = "TYPE=N", value_parser = parse_type_limit)]
    pub type_limits: Vec<(JobType, usize)>,
    /// drowl's job defaults for one type, replacing the settings named (repeatable), e.g.
    /// `event_ingestion:attempts=5,backoff=exponential:2000,timeout=600000`. A job drowl's
    /// API enqueues without `attempts`, `backoff` or `timeout` gets its type's: 3
    /// attempts, `exponential:1000` (1 s, 2 s, 4 s), 300000 ms unless set here. A job's
    /// own options always win. `backoff` is `exponential:MS` (MS, 2·MS, 4·MS) or
    /// `linear:MS` (MS, 2·MS, 3·MS); `timeout` may not exceed `--timeout-ms`.
    #[arg(long = "job-defaults", value_name = "TYPE:SETTINGS")]
    pub job_defaults: Vec<JobDefaultsOverride>,
    /// Start at most MAX jobs per MS milliseconds on the whole queue, e.g. `100/1000`
    /// (Bull's `limiter`, shared by every worker on the queue; jobs over it wait in
    /// `delayed` for the next window, attempts untouched).
    #[arg(long, value_name = "MAX/MS", value_parser = parse_rate_limit)]
    pub rate_limit: Option<(u32, Duration)>,
    /// Apply the PostgreSQL migrations at start.
    #[arg(long)]
    pub migrate: bool,
    /// How often the `plugins` table and the plugins directory are read for changes
    /// (installs, upgrades, config, enable/disable), in ms; what changed is loaded and
    /// swapped in without a restart, running jobs finishing on the build they started.
    #[arg(long, env = "DROWL_REGISTRY_POLL_MS", value_name = "MS", default_value_t = 3_000,
          value_parser = clap::value_parser!(u64).range(50..))]
    pub registry_poll_ms: u64,
    /// Address of the HTTP health and status server, HOST:PORT. When given (flag or
    /// DROWL_LISTEN) it wins over WORKER_HOST/WORKER_PORT; otherwise the server listens on
    /// WORKER_HOST:WORKER_PORT, drowl's own worker settings (default 0.0.0.0:3002).
    #[arg(long, env = "DROWL_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Address the HTTP server listens on when --listen is not given (drowl's
    /// WORKER_HOST): an IP address, e.g. 0.0.0.0 for every interface (what a health
    /// check from outside a container needs) or 127.0.0.1.
    #[arg(
        long,
        env = "WORKER_HOST",
        value_name = "IP",
        default_value = "0.0.0.0"
    )]
    pub worker_host: String,
    /// Port the HTTP server listens on when --listen is not given (drowl's WORKER_PORT).
    #[arg(long, env = "WORKER_PORT", value_name = "PORT", default_value = "3002")]
    pub worker_port: String,
    /// How long start-up waits for each configured service (Redis, PostgreSQL, S3) to
    /// answer before it stops, naming the service. Once serving, outages are retried.
    #[arg(long, env = "DROWL_STARTUP_TIMEOUT_MS", value_name = "MS",
          default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub startup_timeout_ms: u64,
    /// Serve `POST /jobs/:id/process`, which makes a delayed or failed job run now. For
    /// development, as drowl's own worker: off unless asked for, since anyone who can
    /// reach the port could rerun jobs.
    #[arg(long, env = "DROWL_PROCESS_ENDPOINT")]
    pub process_endpoint: bool,
    /// The largest webhook body `POST /webhooks/:pluginId` accepts, in bytes; a larger
    /// one is refused with 413 before more than this is read.
    #[arg(long, env = "DROWL_WEBHOOK_MAX_BODY_BYTES", value_name = "BYTES",
          default_value_t = crate::http::webhooks::DEFAULT_MAX_BODY_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_max_body_bytes: u64,
    /// Bull lock duration in ms (raised to the plugin deadline plus a margin if shorter).
    #[arg(long, default_value_t = 30_000)]
    pub lock_duration_ms: u64,
    /// Stalled-job check interval in ms.
    #[arg(long, default_value_t = 30_000)]
    pub stalled_interval_ms: u64,
    /// On SIGTERM/SIGINT, how long running jobs may finish before they are released.
    #[arg(long, default_value_t = 10_000)]
    pub shutdown_grace_ms: u64,
    /// The longest range of days one `analytics` `daily-metrics` job may recompute; a
    /// longer one fails at once, naming the range (one job is one transaction).
    #[arg(long, env = "DROWL_ANALYTICS_MAX_DAYS", value_name = "DAYS",
          default_value_t = crate::jobs::analytics::DEFAULT_MAX_DAYS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub analytics_max_days: u32,
    /// The UTC offset at which `daily-metrics` days start, e.g. `+09:00` (fixed offsets
    /// only: named zones are refused; default UTC).
    #[arg(long, env = "DROWL_ANALYTICS_UTC_OFFSET", value_name = "OFFSET",
          default_value = "+00:00", value_parser = crate::jobs::analytics::parse_utc_offset)]
    pub analytics_utc_offset: i32,
    /// The queue.
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Where embedded state lives (used for whatever DATABASE_URL / S3_* do not cover).
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Budgets and grants (grants here apply to every plugin).
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// The dashboard at /ui.
    #[command(flatten)]
    pub ui: crate::http::ui::UiArgs,
}

/// The address the HTTP server listens on: `--listen`/`DROWL_LISTEN` when given,
/// otherwise `WORKER_HOST:WORKER_PORT`.
///
/// `WORKER_HOST` and `WORKER_PORT` are checked even when `--listen` overrides them: a
/// wrong value in drowl's settings should be found when it is set, not the day someone
/// drops the flag.
pub(super) fn listen_addr(args: &ServeArgs) -> Result<String, String> {
    let host = args.worker_host.trim();
    let ip: std::net::IpAddr = match host {
        "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
        _ => host.parse().map_err(|_| {
            format!(
                "WORKER_HOST (--worker-host) {host:?} is not an IP address; \
                 write e.g. 0.0.0.0 (every interface) or 127.0.0.1"
            )
        })?,
    };
    let port: u16 = args.worker_port.trim().parse().map_err(|_| {
        format!(
            "WORKER_PORT (--worker-port) {:?} is not a port number (0-65535), e.g. 3002",
            args.worker_port
        )
    })?;
    Ok(match &args.listen {
        Some(listen) => listen.clone(),
        None => std::net::SocketAddr::new(ip, port).to_string(),
    })
}

/// Connects to the queue within `limit`, saying so every few seconds while Redis does
/// not answer.
///
/// The client keeps retrying the first connection, so without a bound a daemon pointed
/// at a wrong `REDIS_URL` would wait forever looking healthy to nobody; stopping with
/// the URL named lets the operator (or the orchestrator's restart policy) act. Once the
/// daemon serves, a Redis outage is retried instead: see `drowl_bull::Worker::run`.
async fn connect_queue(
    config: &drowl_bull::QueueConfig,
    shown_url: &str,
    limit: Duration,
) -> Result<Queue, String> {
    let started = std::time::Instant::now();
    let connect = Queue::connect(config);
    tokio::pin!(connect);
    loop {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(format!(
                "Redis at REDIS_URL ({shown_url}) did not answer within {} ms \
                 (--startup-timeout-ms)",
                limit.as_millis()
            ));
        }
        match tokio::time::timeout(left.min(Duration::from_secs(2)), &mut connect).await {
            Ok(r) => {
                return r
                    .map_err(|e| format!("cannot reach Redis at REDIS_URL ({shown_url}): {e}"));
            }
            Err(_) if started.elapsed() < limit => tracing::warn!(
                redis = %shown_url,
                waited_ms = started.elapsed().as_millis(),
                "waiting for Redis"
            ),
            Err(_) => {}
        }
    }
}

/// drowl's defaults with the operator's `--job-defaults`; a type's timeout above
/// `--timeout-ms` is refused, since the plugin's deadline could never reach it.
pub(super) fn job_defaults(
    overrides: &[JobDefaultsOverride],
    cap: Duration,
) -> Result<TypeDefaults, String> {
    for o in overrides {
        if let Some(t) = o.timeout.filter(|t| *t > cap) {
            return Err(format!(
                "--job-defaults {}: timeout={} is above --timeout-ms {}; raise --timeout-ms too",
                o.job_type.as_str(),
                t.as_millis(),
                cap.as_millis()
            ));
        }
    }
    Ok(TypeDefaults::drowl().with(overrides))
}

/// Plugin files loaded at once at start: compiling is CPU work, describing mostly waiting.
const PARALLEL_LOADS: usize = 8;

fn fail(message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    exit::USAGE
}

/// Runs the daemon until SIGTERM or SIGINT, with `args` holding the effective flags and
/// `settings` the rest (see `cli::settings`).
pub async fn run(args: ServeArgs, settings: Settings) -> u8 {
    let listen = match listen_addr(&args) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let startup_timeout = Duration::from_millis(args.startup_timeout_ms);
    // Repeated types: the last one given wins.
    let type_limits: HashMap<JobType, usize> = args.type_limits.iter().copied().collect();
    let mut policy = match args.sandbox.policy(None) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let job_defaults = match job_defaults(&args.job_defaults, policy.caps.timeout) {
        Ok(d) => Arc::new(d),
        Err(e) => return fail(e),
    };
    // Plugin settings and schedules were read and checked with the other settings.
    policy.plugins = settings.plugins;
    let schedules = settings.schedules;
    if let Err(e) = std::fs::create_dir_all(&args.data.data_dir) {
        return fail(format!(
            "cannot create data dir {}: {e}",
            args.data.data_dir.display()
        ));
    }
    let data_dir = match std::fs::canonicalize(&args.data.data_dir) {
        Ok(d) => d,
        Err(e) => return fail(format!("data dir {}: {e}", args.data.data_dir.display())),
    };

    // Bound before anything slow: a second daemon on the same port (two workers on one
    // machine) stops at once rather than after loading every plugin. Requests wait in the
    // backlog until the server starts below.
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot listen on {listen}: {e}")),
    };

    // Storage first: a wrong DATABASE_URL or S3 setting stops the daemon at start, not at
    // the first job.
    let mut storage_config = settings.storage.with_migrate_on_start(args.migrate);
    if let Some(pg) = &mut storage_config.postgres {
        pg.connect_timeout = startup_timeout;
    }
    if let Some(s3) = &mut storage_config.s3 {
        s3.start_timeout = startup_timeout;
    }
    // `storage.jobs` is the `jobs` table the mirror writes to (in SQLite, through the
    // same single writer as everything else: see `storage::open`).
    let storage = match crate::storage::open(&storage_config, &data_dir).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let job_log = storage.jobs.clone();

    let defaults = EngineSettings::default();
    // One pool slot per job this daemon runs at once: with fewer, jobs past the pool would
    // wait for a slot while holding their Bull locks and eating into `opts.timeout`.
    let pooling = defaults
        .pooling
        .map(|p| crate::runtime::engine::PoolingSettings {
            slots: p
                .slots
                .max(u32::try_from(args.concurrency).unwrap_or(u32::MAX)),
            ..p
        });
    let runtime = match Runtime::new(&EngineSettings {
        fuel: args.sandbox.fuel.is_some(),
        cache_dir: Some(data_dir.join("cache")),
        pooling,
        describe_timeout: args.sandbox.describe_timeout(),
        max_manifest_bytes: args.sandbox.max_manifest_bytes,
        ..defaults
    }) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    // The plugins table and the plugins directory (which wins for an id, and how changes
    // are picked up while serving: see `jobs::catalog`). Which file is which plugin is
    // the operator's, decided before any plugin code runs; one plugin that fails to load
    // is reported (on its row's `last_error`) and left out, so the others still serve.
    let catalog = match Catalog::start(
        runtime.clone(),
        storage.clone(),
        CatalogSettings {
            plugins_dir: args.plugins.clone(),
            data_dir: data_dir.clone(),
            policy: policy.clone(),
            parallel_loads: PARALLEL_LOADS,
        },
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    // Enabled plugin defaults are looked up now that the plugins are loaded; a schedule
    // naming a plugin or default that is not there stops the start like any bad schedule.
    let loaded = catalog.shared().current();
    let schedules = match schedules.map(|set| {
        set.resolve(|id| {
            loaded
                .get(id)
                .map(|p| p.loaded.manifest.default_schedules.clone())
        })
    }) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => return fail(e),
    };
    let plugin_ids = catalog.ids();
    if plugin_ids.is_empty() {
        tracing::warn!(dir = %args.plugins.display(), "no plugins installed; every plugin job will fail until one is");
    }

    let mut qconfig = args
        .queue
        .config()
        .concurrency(args.concurrency.max(1))
        .stalled_interval(Duration::from_millis(args.stalled_interval_ms))
        .shutdown_grace(Duration::from_millis(args.shutdown_grace_ms));
    let min_lock = min_lock_duration(policy.caps.timeout);
    let lock = Duration::from_millis(args.lock_duration_ms);
    if lock < min_lock {
        tracing::info!(
            ?lock,
            ?min_lock,
            "lock duration raised above the plugin deadline"
        );
    }
    qconfig = qconfig.lock_duration(lock.max(min_lock));
    if let Some((max, window)) = args.rate_limit {
        qconfig = qconfig.limiter(max, window);
    }

    let shown_url = args.queue.redacted_url();
    let queue = match connect_queue(&qconfig, &shown_url, startup_timeout).await {
        Ok(q) => q,
        Err(e) => return fail(e),
    };
    // Without --schedules the daemon leaves the repeatables alone (a daemon started
    // without the file must not remove the others' schedules).
    if let Some(schedules) = &schedules {
        match crate::queue::schedules::sync(&queue, schedules).await {
            Ok(r) => tracing::info!(
                added = ?r.added,
                kept = ?r.kept,
                restarted = ?r.restarted,
                removed = ?r.removed,
                "schedules registered"
            ),
            Err(e) => return fail(e),
        }
    }
    let follow_up_queue = match connect_queue(&qconfig, &shown_url, startup_timeout).await {
        Ok(q) => q,
        Err(e) => return fail(e),
    };
    let stats = Arc::new(DaemonStats::default());
    stats.metrics.set_plugins(&plugin_ids);
    let executor = Executor::from_shared(runtime, storage.clone(), catalog.shared())
        .with_analytics(AnalyticsSettings {
            max_days: args.analytics_max_days,
            utc_offset_seconds: args.analytics_utc_offset,
        });
    let registry = executor.shared_registry();
    let labels = stats.clone();
    let plugin_views =
        crate::http::ui::PluginViews::from(crate::http::ui::PluginView::list(&catalog));
    let shown_plugins = plugin_views.clone();
    tokio::spawn(
        catalog.watch(Duration::from_millis(args.registry_poll_ms), move |c| {
            labels.metrics.set_plugins(&c.ids());
            shown_plugins.replace(crate::http::ui::PluginView::list(c));
        }),
    );
    let handler = DrowlHandler::new(executor, follow_up_queue, &type_limits, stats.clone())
        .lineage_cap(policy.caps.max_follow_ups_per_lineage);
    let queue = Arc::new(queue);
    // Rows the mirror could not settle itself (a daemon killed between Redis and the
    // table, a job failed by the stalled check) are caught up from Redis once every
    // worker has had time to recover and retake a stalled job.
    let settle_after = qconfig.lock_duration + qconfig.stalled_interval * 2;
    tokio::spawn(crate::queue::reconcile_loop(
        queue.clone(),
        job_log.clone(),
        qconfig.stalled_interval.max(Duration::from_secs(1)),
        settle_after,
        job_defaults.clone(),
    ));
    let (mirror, mirror_writer) = Mirror::spawn(job_log, stats.clone());
    let worker = Worker::new(qconfig, handler)
        .with_job_defaults(job_defaults.picker())
        .with_observer(mirror);

    let ui_queue = queue.clone();
    let mut app = crate::http::router(crate::http::AppState {
        queue,
        stats: stats.clone(),
        plugins: plugin_ids.clone(),
        queue_name: args.queue.queue.clone(),
        concurrency: args.concurrency,
        storage,
        redis_url: shown_url,
        process_endpoint: args.process_endpoint,
        registry,
        webhook_max_body_bytes: usize::try_from(args.webhook_max_body_bytes).unwrap_or(usize::MAX),
    });
    let ui_note = if args.ui.enabled {
        {
            let access = crate::http::ui::UiAccess::new(args.ui.ui_token.clone());
            let note = if access.token_required() {
                " · dashboard on /ui (token required)"
            } else {
                " · dashboard on /ui (loopback only)"
            };
            app = app.merge(crate::http::ui::router(crate::http::ui::UiState {
                queue: ui_queue,
                stats: stats.clone(),
                defaults: job_defaults.clone(),
                plugins: plugin_views,
                queue_name: args.queue.queue.clone(),
                concurrency: args.concurrency,
                access: Arc::new(access),
            }));
            note.to_owned()
        }
    } else {
        String::new()
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tokio::spawn(async move {
        // The peer address: the dashboard answers loopback only unless a token is set.
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("http server stopped: {e}");
        }
    });
    eprintln!(
        "drowl-host {} serving queue {} ({} plugins: {}) · status on http://{local}/{ui_note}",
        crate::HOST_VERSION,
        args.queue.queue,
        plugin_ids.len(),
        plugin_ids.join(", ")
    );
    stats.worker.set(WorkerPhase::Running);
    let stopping = stats.clone();
    let outcome = worker
        .run(async move {
            shutdown_signal().await;
            stopping.worker.set(WorkerPhase::Stopping);
        })
        .await;
    stats.worker.set(WorkerPhase::Stopped);
    if !mirror_writer.finish(Duration::from_secs(10)).await {
        tracing::warn!("jobs table: the last job states were not all written within 10 s");
    }
    match outcome {
        Ok(()) => {
            eprintln!("drowl-host stopped");
            exit::OK
        }
        Err(e) => {
            eprintln!("error: worker stopped: {e}");
            exit::INTERNAL
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT.
async fn signalled() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}

/// Resolves on the first SIGTERM or SIGINT; a second one ends the process at once.
///
/// Why a second signal exits: an operator who presses Ctrl-C again does not want to wait
/// out the grace period. Jobs still running keep their locks until the locks expire; the
/// stalled check of the other workers then requeues them, as after a crash.
async fn shutdown_signal() {
    signalled().await;
    tracing::info!("shutting down: no new jobs; running jobs get the grace period");
    tokio::spawn(async {
        signalled().await;
        eprintln!("drowl-host: second signal, exiting without waiting for running jobs");
        std::process::exit(130);
    });
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// `serve`'s flags on their own, to see what clap makes of a value.
    #[derive(Debug, Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn serve(flags: &[&str]) -> Result<ServeArgs, String> {
        Serve::try_parse_from(std::iter::once("serve").chain(flags.iter().copied()))
            .map(|s| s.args)
            .map_err(|e| e.to_string())
    }

    /// The first line of clap's error for one bad value: it must name the flag.
    fn first_line(flag: &str, value: &str) -> String {
        let e = serve(&[flag, value]).expect_err(value);
        e.lines().next().unwrap_or_default().to_owned()
    }

    /// drowl's WORKER_HOST/WORKER_PORT decide the address unless --listen (or
    /// DROWL_LISTEN) is given; a bad value stops the start naming the variable. (Flags
    /// here: the variables are the same clap arguments, and tests share the process
    /// environment.)
    #[test]
    fn the_listen_address_follows_drowls_worker_settings_unless_listen_is_given() {
        let addr = |flags: &[&str]| listen_addr(&serve(flags).expect("parses"));
        assert_eq!(addr(&[]), Ok("0.0.0.0:3002".to_owned()));
        assert_eq!(
            addr(&["--worker-host", "127.0.0.1", "--worker-port", "3003"]),
            Ok("127.0.0.1:3003".to_owned())
        );
        assert_eq!(
            addr(&["--worker-host", "::1", "--worker-port", "0"]),
            Ok("[::1]:0".to_owned())
        );
        assert_eq!(
            addr(&["--worker-host", "localhost"]),
            Ok("127.0.0.1:3002".to_owned())
        );
        assert_eq!(
            addr(&["--worker-port", "3003", "--listen", "127.0.0.1:4000"]),
            Ok("127.0.0.1:4000".to_owned())
        );
        for (flags, var) in [
            (&["--worker-port", "abc"][..], "WORKER_PORT"),
            (&["--worker-port", "70000"][..], "WORKER_PORT"),
            (&["--worker-port=-1"][..], "WORKER_PORT"),
            (&["--worker-host", "drowl.example"][..], "WORKER_HOST"),
            (&["--worker-host", "0.0.0.0:3002"][..], "WORKER_HOST"),
            // Checked even when --listen overrides them.
            (
                &["--listen", "127.0.0.1:0", "--worker-port", "x"][..],
                "WORKER_PORT",
            ),
        ] {
            let e = addr(flags).expect_err(&format!("{flags:?}"));
            assert!(e.starts_with(var), "{flags:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    /// A Redis that never answers stops the start within the bound, naming REDIS_URL
    /// without its password.
    #[tokio::test]
    async fn an_unreachable_redis_stops_the_start_within_the_bound() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let url = format!("redis://:s3cret@127.0.0.1:{port}");
        let started = std::time::Instant::now();
        let e = connect_queue(
            &drowl_bull::QueueConfig::new(url.clone()),
            &crate::config::redact_url(&url, "?"),
            Duration::from_millis(700),
        )
        .await
        .expect_err("nothing listens there");
        assert!(started.elapsed() < Duration::from_secs(3), "{e}");
        assert!(
            e.contains("Redis at REDIS_URL") && e.contains(&format!("127.0.0.1:{port}")),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn rate_limits_parse_or_say_what_is_wrong() {
        assert_eq!(
            parse_rate_limit("100/1000"),
            Ok((100, Duration::from_secs(1)))
        );
        assert_eq!(
            parse_rate_limit(" 5 / 250 "),
            Ok((5, Duration::from_millis(250)))
        );
        assert_eq!(
            serve(&["--rate-limit", "2/500"]).map(|a| a.rate_limit),
            Ok(Some((2, Duration::from_millis(500))))
        );
        assert_eq!(serve(&[]).map(|a| a.rate_limit), Ok(None));
        for bad in ["100", "x/1000", "100/1s", "0/1000", "10/0", ""] {
            assert!(parse_rate_limit(bad).is_err(), "{bad}");
            let e = first_line("--rate-limit", bad);
            assert!(
                e.starts_with(&format!(
                    "error: invalid value '{bad}' for '--rate-limit <MAX/MS>'"
                )),
                "{bad}: {e}"
            );
            assert!(e.contains("e.g. 100/1000"), "{bad}: {e}");
        }
    }

    /// The webhook body cap is 1 MiB unless set; zero is refused, naming the flag.
    #[test]
    fn the_webhook_body_cap_defaults_to_one_mib() {
        assert_eq!(serve(&[]).map(|a| a.webhook_max_body_bytes), Ok(1_048_576));
        assert_eq!(
            serve(&["--webhook-max-body-bytes", "26214400"]).map(|a| a.webhook_max_body_bytes),
            Ok(26_214_400)
        );
        let e = first_line("--webhook-max-body-bytes", "0");
        assert!(
            e.starts_with("error: invalid value '0' for '--webhook-max-body-bytes <BYTES>'"),
            "{e}"
        );
    }

    #[test]
    fn type_limits_parse_or_say_what_is_wrong() {
        let a = serve(&[
            "--type-limit",
            "event_ingestion=2",
            "--type-limit",
            "analytics=0",
        ])
        .expect("parses");
        assert_eq!(
            a.type_limits,
            [(JobType::EventIngestion, 2), (JobType::Analytics, 1)]
        );
        for bad in ["event_ingestion", "nosuch=1", "event_ingestion=x"] {
            assert!(parse_type_limit(bad).is_err(), "{bad}");
            let e = first_line("--type-limit", bad);
            assert!(
                e.starts_with(&format!(
                    "error: invalid value '{bad}' for '--type-limit <TYPE=N>'"
                )),
                "{bad}: {e}"
            );
        }
        assert!(
            first_line("--type-limit", "nosuch=1").contains("event_ingestion, identity_resolution")
        );
    }

    /// `--job-defaults` parses per type; a bad value names the flag and the setting; a
    /// timeout the plugin's deadline could never reach is refused at start.
    #[test]
    fn job_defaults_parse_or_say_what_is_wrong() {
        let a = serve(&[
            "--job-defaults",
            "event_ingestion:attempts=2,backoff=linear:200,timeout=5000",
        ])
        .expect("parses");
        let d = job_defaults(&a.job_defaults, Duration::from_millis(a.sandbox.timeout_ms))
            .expect("valid");
        let ingestion = d.of(JobType::EventIngestion);
        assert_eq!(ingestion.attempts, 2);
        assert_eq!(ingestion.timeout, Some(Duration::from_millis(5000)));
        assert_eq!(
            d.of(JobType::Analytics),
            crate::queue::defaults::drowl_defaults()
        );
        assert_eq!(
            a.sandbox.timeout_ms, 300_000,
            "drowl's 5 minutes by default"
        );
        let e = first_line("--job-defaults", "event_ingestion:attempts=0");
        assert!(
            e.starts_with(
                "error: invalid value 'event_ingestion:attempts=0' for '--job-defaults <TYPE:SETTINGS>': attempts must be a whole number of at least 1"
            ),
            "{e}"
        );
        let over = serve(&["--job-defaults", "analytics:timeout=600000"]).expect("parses");
        let e = job_defaults(&over.job_defaults, Duration::from_millis(300_000))
            .expect_err("over the cap");
        assert_eq!(
            e,
            "--job-defaults analytics: timeout=600000 is above --timeout-ms 300000; raise --timeout-ms too"
        );
    }
}
