//! Each command's settings: the settings file laid under its flags (see
//! [`crate::config::settings`] for the rules), giving one [`Settings`] every command
//! resolves from. The flags' structs keep the effective values, so a command reads
//! `args.concurrency` whether it came from a flag, a variable, the file or the default.

use std::collections::{BTreeMap, HashMap};

use crate::config::settings::Show;
use crate::config::{Layer, Settings, Source, parse_rate_limit};
use crate::jobs::JobType;
use crate::queue::JobDefaultsOverride;
use crate::queue::defaults::backoff_setting;

use super::queue_args::QueueArgs;
use super::serve::ServeArgs;

/// `[queue] name`, `prefix` under `--queue`, `--prefix`; `REDIS_URL` as clap read it.
pub(super) fn queue(layer: &mut Layer<'_>, q: &mut QueueArgs) {
    let f = layer.file().queue.clone();
    layer.setting("queue.name", "queue", &mut q.queue, f.name);
    layer.setting("queue.prefix", "prefix", &mut q.prefix, f.prefix);
    let source = layer.given("redis_url").unwrap_or(Source::Default);
    layer.record("REDIS_URL", q.redacted_url().show(), vec![source]);
}

/// Everything `serve` reads, laid under its flags; what the flags do not hold is
/// returned in the settings (still to be finished, so that `config check` can add the
/// problems only a start would find).
pub(super) fn serve(layer: &mut Layer<'_>, a: &mut ServeArgs) -> Parts {
    let f = layer.file().clone();
    layer.data_dir(&mut a.data);
    queue(layer, &mut a.queue);
    layer.setting(
        "plugins_dir",
        "plugins",
        &mut a.plugins,
        f.plugins_dir.clone(),
    );
    if f.registry_poll_ms.is_some_and(|ms| ms < 50) {
        layer.file_problem("registry_poll_ms", "must be at least 50");
    }
    layer.setting(
        "registry_poll_ms",
        "registry_poll_ms",
        &mut a.registry_poll_ms,
        f.registry_poll_ms,
    );
    layer.setting(
        "startup_timeout_ms",
        "startup_timeout_ms",
        &mut a.startup_timeout_ms,
        f.startup_timeout_ms,
    );
    if f.startup_timeout_ms == Some(0) {
        layer.file_problem("startup_timeout_ms", "must be at least 1");
    }
    layer.setting("migrate", "migrate", &mut a.migrate, f.migrate);

    // [queue]
    let q = &f.queue;
    if q.concurrency == Some(0) {
        layer.file_problem("queue.concurrency", "must be at least 1");
    }
    layer.setting(
        "queue.concurrency",
        "concurrency",
        &mut a.concurrency,
        q.concurrency,
    );
    type_limits(layer, a, &q.type_limits);
    let rate = q
        .rate_limit
        .as_deref()
        .and_then(|r| match parse_rate_limit(r) {
            Ok(v) => Some(v),
            Err(e) => {
                layer.file_problem("queue.rate_limit", e);
                None
            }
        });
    let source = layer.resolve("rate_limit", &mut a.rate_limit, rate.map(Some));
    let shown = a
        .rate_limit
        .map(|(max, per)| format!("{max}/{}", per.as_millis()));
    layer.record("queue.rate_limit", shown.show(), vec![source]);
    layer.setting(
        "queue.lock_duration_ms",
        "lock_duration_ms",
        &mut a.lock_duration_ms,
        q.lock_duration_ms,
    );
    layer.setting(
        "queue.stalled_interval_ms",
        "stalled_interval_ms",
        &mut a.stalled_interval_ms,
        q.stalled_interval_ms,
    );
    layer.setting(
        "queue.shutdown_grace_ms",
        "shutdown_grace_ms",
        &mut a.shutdown_grace_ms,
        q.shutdown_grace_ms,
    );

    // [http]
    let h = &f.http;
    let host = h.host.clone().filter(|host| {
        let ok = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok();
        if !ok {
            layer.file_problem(
                "http.host",
                format!(
                    "{host:?} is not an IP address; write e.g. 0.0.0.0 (every interface) or 127.0.0.1"
                ),
            );
        }
        ok
    });
    layer.setting("http.host", "worker_host", &mut a.worker_host, host);
    let source = layer.resolve(
        "worker_port",
        &mut a.worker_port,
        h.port.map(|p| p.to_string()),
    );
    // A number in the file; clap keeps WORKER_PORT's text, which serve checks.
    let shown = match a.worker_port.trim().parse::<u16>() {
        Ok(p) => p.show(),
        Err(_) => a.worker_port.clone().show(),
    };
    layer.record("http.port", shown, vec![source]);
    layer.setting(
        "http.process_endpoint",
        "process_endpoint",
        &mut a.process_endpoint,
        h.process_endpoint,
    );
    let source = layer.given("listen").unwrap_or(Source::Default);
    layer.record("DROWL_LISTEN", a.listen.show(), vec![source]);
    layer.setting("http.ui", "ui", &mut a.ui.enabled, h.ui);
    // Never shown: only whether it is set.
    if let Some(source) = layer.given("ui_token") {
        layer.record("DROWL_UI_TOKEN", "(set)".to_owned().show(), vec![source]);
    }

    // [analytics]
    let an = &f.analytics;
    if an.max_days == Some(0) {
        layer.file_problem("analytics.max_days", "must be at least 1");
    }
    layer.setting(
        "analytics.max_days",
        "analytics_max_days",
        &mut a.analytics_max_days,
        an.max_days,
    );
    let offset =
        an.utc_offset
            .as_deref()
            .and_then(|o| match crate::jobs::analytics::parse_utc_offset(o) {
                Ok(v) => Some(v),
                Err(e) => {
                    layer.file_problem("analytics.utc_offset", e);
                    None
                }
            });
    let source = layer.resolve("analytics_utc_offset", &mut a.analytics_utc_offset, offset);
    layer.record(
        "analytics.utc_offset",
        utc_offset(a.analytics_utc_offset).show(),
        vec![source],
    );

    layer.sandbox(&mut a.sandbox);
    job_defaults(layer, a, &f.job_defaults);

    let plugins = layer.plugins(a.plugin_config.as_deref());
    if let Some(p) = &a.plugin_config {
        let source = layer.given("plugin_config").unwrap_or(Source::Default);
        layer.record("DROWL_PLUGIN_CONFIG", p.clone().show(), vec![source]);
    }
    let schedules_source = layer.given("schedules").unwrap_or(Source::Default);
    if let Some(p) = &a.schedules {
        layer.record(
            "DROWL_SCHEDULES",
            p.clone().show(),
            vec![schedules_source.clone()],
        );
    }
    let schedules = layer.schedules(a.schedules.as_deref().map(|p| (p, schedules_source)));
    let storage = layer.storage();
    Parts {
        plugins,
        schedules,
        storage,
    }
}

/// What [`serve`] resolved besides the flags, for [`Layer::finish`].
pub(super) struct Parts {
    pub(super) plugins: BTreeMap<String, crate::config::plugins::ConfiguredPlugin>,
    pub(super) schedules: Option<crate::queue::schedules::ScheduleSet>,
    pub(super) storage: crate::storage::StorageConfig,
}

impl Parts {
    pub(super) fn finish(self, layer: Layer<'_>) -> Result<Settings, Vec<crate::config::Problem>> {
        layer.finish(self.plugins, self.schedules, self.storage)
    }
}

/// `+09:00` for 32400 seconds.
fn utc_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    format!("{sign}{:02}:{:02}", s / 3600, s % 3600 / 60)
}

/// `[queue.type_limits]` under `--type-limit`: the file's per type, the flags' over them.
fn type_limits(layer: &mut Layer<'_>, a: &mut ServeArgs, from_file: &BTreeMap<String, usize>) {
    let mut limits = Vec::new();
    let mut sources: HashMap<JobType, Source> = HashMap::new();
    for (t, n) in from_file {
        let key = format!("queue.type_limits.{t}");
        match JobType::parse(t) {
            None => layer.file_problem(
                &key,
                format!("unknown job type; one of {}", JobType::names()),
            ),
            Some(_) if *n == 0 => layer.file_problem(&key, "must be at least 1"),
            Some(ty) => {
                limits.push((ty, *n));
                sources.insert(ty, layer.file_source());
            }
        }
    }
    if let Some(flag) = layer.given("type_limits") {
        for (ty, _) in &a.type_limits {
            sources.insert(*ty, flag.clone());
        }
    }
    limits.append(&mut a.type_limits);
    a.type_limits = limits;
    let effective: BTreeMap<&str, usize> = a
        .type_limits
        .iter()
        .map(|(t, n)| (t.as_str(), *n))
        .collect();
    let table: toml::Table = effective
        .iter()
        .map(|(t, n)| ((*t).to_owned(), toml::Value::Integer(*n as i64)))
        .collect();
    let mut all: Vec<Source> = Vec::new();
    for s in sources.into_values() {
        if !all.contains(&s) {
            all.push(s);
        }
    }
    if all.is_empty() {
        all.push(Source::Default);
    }
    layer.record("queue.type_limits", Some(toml::Value::Table(table)), all);
}

/// `[job_defaults.<type>]` under `--job-defaults`: the file's per setting, the flags' over
/// them; every type's effective defaults are recorded, setting by setting.
fn job_defaults(
    layer: &mut Layer<'_>,
    a: &mut ServeArgs,
    from_file: &BTreeMap<String, crate::config::file::JobDefaultsSection>,
) {
    let cap = a.sandbox.timeout_ms;
    let mut overrides = Vec::new();
    for (t, section) in from_file {
        let key = format!("job_defaults.{t}");
        let Some(ty) = JobType::parse(t) else {
            layer.file_problem(
                &key,
                format!("unknown job type; one of {}", JobType::names()),
            );
            continue;
        };
        let mut o = JobDefaultsOverride::new(ty);
        let settings = [
            (
                "attempts",
                "attempts",
                section.attempts.map(|n| n.to_string()),
            ),
            ("backoff", "backoff", section.backoff.clone()),
            (
                "timeout_ms",
                "timeout",
                section.timeout_ms.map(|n| n.to_string()),
            ),
        ];
        for (file_key, setting, value) in settings {
            if let Some(value) = value
                && let Err(e) = o.set(setting, &value)
            {
                layer.file_problem(&format!("{key}.{file_key}"), e.to_string());
            }
        }
        if let Some(t) = o.timeout
            && t.as_millis() > u128::from(cap)
        {
            // Left out, so that serve's own check of the flags does not say it again.
            o.timeout = None;
            layer.file_problem(
                &format!("{key}.timeout_ms"),
                format!(
                    "{} is above the budget's timeout_ms {cap}; raise budgets.timeout_ms (or --timeout-ms) too",
                    t.as_millis()
                ),
            );
        }
        overrides.push((o, layer.file_source()));
    }
    let flag = layer.given("job_defaults");
    for o in &a.job_defaults {
        overrides.push((o.clone(), flag.clone().unwrap_or(Source::Default)));
    }
    a.job_defaults = overrides.iter().map(|(o, _)| o.clone()).collect();
    let effective = crate::queue::TypeDefaults::drowl().with(&a.job_defaults);
    for ty in <JobType as strum::IntoEnumIterator>::iter() {
        let d = effective.of(ty);
        let from = |pick: fn(&JobDefaultsOverride) -> bool| {
            overrides
                .iter()
                .rev()
                .find(|(o, _)| o.job_type == ty && pick(o))
                .map_or(Source::Default, |(_, s)| s.clone())
        };
        let key = format!("job_defaults.{}", ty.as_str());
        layer.record(
            &format!("{key}.attempts"),
            d.attempts.show(),
            vec![from(|o| o.attempts.is_some())],
        );
        layer.record(
            &format!("{key}.backoff"),
            d.backoff.as_ref().map(backoff_setting).show(),
            vec![from(|o| o.backoff.is_some())],
        );
        layer.record(
            &format!("{key}.timeout_ms"),
            d.timeout.map(|t| t.as_millis() as u64).show(),
            vec![from(|o| o.timeout.is_some())],
        );
    }
}

/// `run-plugin`: the data directory, budgets and grants, and per-plugin settings (the
/// plugin's own `--config` values go over them when the policy is built).
pub(super) fn run_plugin(layer: &mut Layer<'_>, a: &mut super::run_plugin::RunPluginArgs) -> Parts {
    layer.data_dir(&mut a.data);
    layer.sandbox(&mut a.sandbox);
    let plugins = layer.plugins(a.plugin_config.as_deref());
    let storage = layer.storage();
    Parts {
        plugins,
        schedules: None,
        storage,
    }
}

/// `schedules`: the queue and the schedules.
pub(super) fn schedules(layer: &mut Layer<'_>, a: &mut super::schedules::SchedulesArgs) -> Parts {
    queue(layer, &mut a.queue);
    let source = layer.given("schedules").unwrap_or(Source::Default);
    let schedules = layer.schedules(a.schedules.as_deref().map(|p| (p, source)));
    let storage = layer.storage();
    Parts {
        plugins: BTreeMap::new(),
        schedules,
        storage,
    }
}

/// `plugin check`: the load-time budgets.
pub(super) fn plugin_check(
    layer: &mut Layer<'_>,
    describe_timeout_ms: &mut u64,
    max_manifest_bytes: &mut usize,
) {
    let b = layer.file().budgets.clone();
    layer.setting(
        "budgets.describe_timeout_ms",
        "describe_timeout_ms",
        describe_timeout_ms,
        b.describe_timeout_ms,
    );
    layer.setting(
        "budgets.max_manifest_bytes",
        "max_manifest_bytes",
        max_manifest_bytes,
        b.max_manifest_bytes,
    );
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use clap::{CommandFactory, FromArgMatches, Parser};

    use super::*;
    use crate::config::LoadedFile;

    #[derive(Debug, Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    #[derive(Debug, Parser)]
    struct RunPlugin {
        #[command(flatten)]
        args: super::super::run_plugin::RunPluginArgs,
    }

    fn file(text: &str) -> LoadedFile {
        LoadedFile {
            path: "drowl.toml".into(),
            file: crate::config::file::parse(text, Path::new("drowl.toml")).expect("valid"),
        }
    }

    /// `serve` with `flags` over `text`: the effective flags, and the settings or the
    /// problems as lines.
    fn serve(flags: &[&str], text: &str) -> (ServeArgs, Result<Settings, Vec<String>>) {
        let command = Serve::command();
        let matches = command
            .clone()
            .try_get_matches_from(std::iter::once("serve").chain(flags.iter().copied()))
            .expect("flags parse");
        let mut args = Serve::from_arg_matches(&matches).expect("flags").args;
        let loaded = file(text);
        let mut layer = Layer::new(&matches, &command, Some(&loaded));
        let parts = super::serve(&mut layer, &mut args);
        let settings = parts
            .finish(layer)
            .map_err(|ps| ps.iter().map(ToString::to_string).collect());
        (args, settings)
    }

    fn entry<'a>(s: &'a Settings, key: &str) -> &'a crate::config::Entry {
        s.entries
            .iter()
            .find(|e| e.key == key)
            .unwrap_or_else(|| panic!("no entry {key}"))
    }

    /// The file fills what the flags leave at their defaults; a flag wins over the file;
    /// each entry says which.
    #[test]
    fn the_file_fills_only_what_flags_leave_at_their_defaults() {
        let text = "plugins_dir = \"/srv/plugins\"\n[queue]\nname = \"jobs\"\nconcurrency = 8\n\
                    rate_limit = \"5/250\"\n[budgets]\ntimeout_ms = 2000\nfuel = 99\n\
                    [analytics]\nutc_offset = \"+09:00\"\n[http]\nport = 3010\n";
        let (a, s) = serve(&["--concurrency", "3"], text);
        let s = s.expect("valid");
        assert_eq!(a.concurrency, 3);
        assert_eq!(a.queue.queue, "jobs");
        assert_eq!(a.queue.prefix, "bull");
        assert_eq!(a.plugins, Path::new("/srv/plugins"));
        assert_eq!(a.rate_limit, Some((5, Duration::from_millis(250))));
        assert_eq!(a.sandbox.timeout_ms, 2000);
        assert_eq!(a.sandbox.fuel, Some(99));
        assert_eq!(a.analytics_utc_offset, 9 * 3600);
        assert_eq!(a.worker_port, "3010");
        let file = Source::File("drowl.toml".into());
        assert_eq!(
            entry(&s, "queue.concurrency").sources,
            [Source::Flag("--concurrency".into())]
        );
        assert_eq!(entry(&s, "queue.name").sources, std::slice::from_ref(&file));
        assert_eq!(entry(&s, "queue.prefix").sources, [Source::Default]);
        assert_eq!(
            entry(&s, "queue.rate_limit").value,
            Some(toml::Value::String("5/250".into()))
        );
        assert_eq!(
            entry(&s, "analytics.utc_offset").value,
            Some(toml::Value::String("+09:00".into()))
        );
        assert_eq!(
            entry(&s, "http.port").value,
            Some(toml::Value::Integer(3010))
        );
        assert_eq!(entry(&s, "http.port").sources, [file]);

        // No file at all: every default, as before.
        let (a, s) = serve(&[], "");
        assert_eq!((a.concurrency, a.queue.queue.as_str()), (4, "drowl"));
        assert_eq!(entry(&s.expect("valid"), "budgets.fuel").value, None);
    }

    /// Per-type settings merge type by type (the flag's wins for its type), grant lists
    /// add up.
    #[test]
    fn per_type_settings_merge_and_grants_add_up() {
        let text = "[queue.type_limits]\nevent_ingestion = 2\nanalytics = 3\n\
                    [job_defaults.analytics]\nattempts = 5\nbackoff = \"linear:200\"\n\
                    [grants]\nhosts = [\"https://a.example\"]\nfollow_ups = [\"*:keywords\"]\n";
        let (a, s) = serve(
            &[
                "--type-limit",
                "analytics=1",
                "--job-defaults",
                "analytics:attempts=2",
                "--allow-host",
                "https://b.example",
            ],
            text,
        );
        let s = s.expect("valid");
        let limits: HashMap<JobType, usize> = a.type_limits.iter().copied().collect();
        assert_eq!(limits[&JobType::EventIngestion], 2);
        assert_eq!(limits[&JobType::Analytics], 1);
        let d = crate::queue::TypeDefaults::drowl()
            .with(&a.job_defaults)
            .of(JobType::Analytics);
        assert_eq!(d.attempts, 2);
        assert_eq!(d.backoff, Some(drowl_bull::Backoff::linear(200)));
        assert_eq!(
            entry(&s, "job_defaults.analytics.attempts").sources,
            [Source::Flag("--job-defaults".into())]
        );
        assert_eq!(
            entry(&s, "job_defaults.analytics.backoff").sources,
            [Source::File("drowl.toml".into())]
        );
        assert_eq!(
            entry(&s, "job_defaults.cleanup.timeout_ms").value,
            Some(toml::Value::Integer(300_000))
        );
        assert_eq!(
            a.sandbox.allow_host,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(
            entry(&s, "grants.hosts").sources,
            [
                Source::File("drowl.toml".into()),
                Source::Flag("--allow-host".into())
            ]
        );
        assert_eq!(a.sandbox.allow_follow_up.len(), 1);
    }

    /// Every problem of the file is reported, each naming its key; nothing wrong is laid
    /// under the flags.
    #[test]
    fn every_invalid_value_is_named_by_its_key() {
        let text = "startup_timeout_ms = 0\n[queue]\nconcurrency = 0\n\
                    type_limits = { nope = 1, cleanup = 0 }\n[http]\nhost = \"example.com\"\n\
                    [analytics]\nmax_days = 0\nutc_offset = \"Asia/Tokyo\"\n\
                    [job_defaults.analytics]\ntimeout_ms = 400000\n[job_defaults.eat]\nattempts = 1\n";
        let (a, s) = serve(&[], text);
        let problems = s.expect_err("invalid");
        let keys: Vec<&str> = problems
            .iter()
            .map(|p| p.split(": ").nth(1).unwrap_or_default())
            .collect();
        assert_eq!(
            keys,
            [
                "startup_timeout_ms",
                "queue.concurrency",
                "queue.type_limits.cleanup",
                "queue.type_limits.nope",
                "http.host",
                "analytics.max_days",
                "analytics.utc_offset",
                "job_defaults.analytics.timeout_ms",
                "job_defaults.eat",
            ],
            "{problems:#?}"
        );
        assert!(problems.iter().all(|p| p.starts_with("drowl.toml: ")));
        assert_eq!(a.worker_host, "0.0.0.0", "a bad host is not used");
    }

    /// run-plugin reads the plugin's settings from the file; `--config` replaces them key
    /// by key; a value from the environment is a secret.
    #[test]
    fn run_plugin_reads_the_plugins_settings_from_the_file() {
        let command = RunPlugin::command();
        let matches = command
            .clone()
            .try_get_matches_from([
                "run-plugin",
                "x.wasm",
                "--job",
                "j.json",
                "--config",
                "label=flag",
            ])
            .expect("flags parse");
        let mut args = RunPlugin::from_arg_matches(&matches).expect("flags").args;
        let loaded = file(
            "[plugins.hostile]\nconfig = { label = \"file\", token = \"${PATH}\" }\n\
             grants = { hosts = [\"https://a.example\"] }\n[budgets]\nmax_pages = 7\n",
        );
        let mut layer = Layer::new(&matches, &command, Some(&loaded));
        let settings = run_plugin(&mut layer, &mut args)
            .finish(layer)
            .expect("valid");
        assert_eq!(args.sandbox.max_pages, 7);
        let policy = settings
            .policy(&args.sandbox, Some("hostile"))
            .expect("policy");
        let p = &policy.plugins["hostile"];
        assert_eq!(p.config["label"], "flag");
        assert_eq!(p.config["token"], std::env::var("PATH").expect("PATH"));
        assert!(p.secret_keys.contains("token"));
        assert_eq!(p.grants, ["https://a.example"]);
        let shown = entry(&settings, "plugins.hostile.config").value.clone();
        assert_eq!(
            shown.and_then(|v| v.get("token").cloned()),
            Some(toml::Value::String("${PATH}".into()))
        );
    }

    #[test]
    fn utc_offsets_are_shown_as_written() {
        assert_eq!(utc_offset(0), "+00:00");
        assert_eq!(utc_offset(9 * 3600), "+09:00");
        assert_eq!(utc_offset(-(5 * 3600 + 1800)), "-05:30");
    }
}
