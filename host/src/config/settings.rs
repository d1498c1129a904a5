//! The effective settings of a command: one value per setting, and where it came from.
//!
//! # Precedence
//!
//! A command-line flag wins over its environment variable, which wins over the settings
//! file, which wins over the built-in default. Flags and variables are clap's (every
//! existing flag keeps working as it did); the file only fills what clap left at its
//! default, which clap's [`ValueSource`] tells apart. Lists of grants add up instead
//! (the file's, then the flags'), and so do per-type settings (`type_limits`,
//! `job_defaults`: a flag for one type replaces the file's for that type only).
//!
//! drowl's own connection settings (`REDIS_URL`, `DATABASE_URL`, `S3_*`) come from the
//! environment (or `--redis-url`, `--database-url`), as drowl's Node worker reads them,
//! never from the file: they are shared with drowl's API and carry its credentials.
//!
//! What is set where is recorded as [`Entry`]s, with secrets already masked, for
//! `drowl-host config check`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;

use super::file::ConfigFile;
use super::plugins::{self, ConfiguredPlugin};
use super::problem::Problem;
use super::{ConfigError, DataDirArgs, SandboxArgs};
use crate::policy::{HostPolicy, PluginSettings};
use crate::queue::schedules::{self, ScheduleSet};
use crate::storage::StorageConfig;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A settings file (the TOML file, or the JSON plugin or schedules file).
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

impl Source {
    /// `default`, `file`, `env` or `flag`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File(_) => "file",
            Source::Env(_) => "env",
            Source::Flag(_) => "flag",
        }
    }

    /// The file, variable or flag; `None` for the default.
    pub fn origin(&self) -> Option<String> {
        match self {
            Source::Default => None,
            Source::File(p) => Some(p.display().to_string()),
            Source::Env(v) | Source::Flag(v) => Some(v.clone()),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.origin() {
            Some(o) => write!(f, "{} {o}", self.kind()),
            None => f.write_str(self.kind()),
        }
    }
}

/// One effective setting, as `config check` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key's dotted path in the file (`queue.concurrency`), or for settings only the
    /// environment holds, the variable (`REDIS_URL`).
    pub key: String,
    /// The value, secrets masked; `None`: unset.
    pub value: Option<toml::Value>,
    /// Where it came from: one source, or several for lists that add up.
    pub sources: Vec<Source>,
}

/// A value as `config check` shows it.
pub trait Show {
    /// The value in TOML; `None` for an unset option.
    fn show(&self) -> Option<toml::Value>;
}

macro_rules! show_int {
    ($($t:ty),*) => {$(
        impl Show for $t {
            fn show(&self) -> Option<toml::Value> {
                Some(toml::Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX)))
            }
        }
    )*};
}
show_int!(u16, u32, u64, usize, i32);

impl Show for bool {
    fn show(&self) -> Option<toml::Value> {
        Some(toml::Value::Boolean(*self))
    }
}

impl Show for String {
    fn show(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.clone()))
    }
}

impl Show for PathBuf {
    fn show(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.display().to_string()))
    }
}

impl Show for crate::policy::FollowUpGrant {
    fn show(&self) -> Option<toml::Value> {
        Some(toml::Value::String(format!(
            "{}:{}",
            self.job_type, self.plugin
        )))
    }
}

impl<T: Show> Show for Option<T> {
    fn show(&self) -> Option<toml::Value> {
        self.as_ref().and_then(Show::show)
    }
}

impl<T: Show> Show for Vec<T> {
    fn show(&self) -> Option<toml::Value> {
        Some(toml::Value::Array(
            self.iter().filter_map(Show::show).collect(),
        ))
    }
}

/// The settings file, read.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    /// Where it is, as the operator named it.
    pub path: PathBuf,
    /// What it says.
    pub file: ConfigFile,
}

impl LoadedFile {
    /// Reads and parses the file; a problem names the file, the key and its line.
    pub fn load(path: &Path) -> Result<Self, Problem> {
        Ok(Self {
            path: path.to_path_buf(),
            file: super::file::load(path)?,
        })
    }
}

/// Lays the settings file under one command's flags, recording each setting's value and
/// source, and collecting every problem rather than stopping at the first.
pub struct Layer<'a> {
    matches: &'a ArgMatches,
    command: &'a clap::Command,
    file: Option<&'a LoadedFile>,
    empty: ConfigFile,
    entries: Vec<Entry>,
    problems: Vec<Problem>,
}

impl<'a> Layer<'a> {
    /// A layer for the command `command`, parsed into `matches`, over `file`.
    pub fn new(
        matches: &'a ArgMatches,
        command: &'a clap::Command,
        file: Option<&'a LoadedFile>,
    ) -> Self {
        Self {
            matches,
            command,
            file,
            empty: ConfigFile::default(),
            entries: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// The file's settings (an empty file when there is none).
    pub fn file(&self) -> &ConfigFile {
        self.file.map_or(&self.empty, |f| &f.file)
    }

    /// The file's path, when there is one.
    pub fn file_path(&self) -> Option<&'a Path> {
        self.file.map(|f| f.path.as_path())
    }

    /// Where clap took argument `id` from: its flag or its variable; `None` when it holds
    /// the default (or nothing).
    pub fn given(&self, id: &str) -> Option<Source> {
        let arg = self.command.get_arguments().find(|a| a.get_id() == id);
        match self.matches.value_source(id) {
            Some(ValueSource::CommandLine) => Some(Source::Flag(
                arg.and_then(|a| a.get_long())
                    .map_or_else(|| id.to_owned(), |l| format!("--{l}")),
            )),
            Some(ValueSource::EnvVariable) => Some(Source::Env(
                arg.and_then(|a| a.get_env())
                    .map_or_else(|| id.to_owned(), |e| e.to_string_lossy().into_owned()),
            )),
            _ => None,
        }
    }

    /// The source "this file".
    pub fn file_source(&self) -> Source {
        self.file
            .map_or(Source::Default, |f| Source::File(f.path.clone()))
    }

    /// One setting clap holds: the flag's or variable's value when given, else the
    /// file's, else the default `target` already holds.
    pub fn setting<T: Show>(&mut self, key: &str, id: &str, target: &mut T, from_file: Option<T>) {
        let source = self.resolve(id, target, from_file);
        self.record(key, target.show(), vec![source]);
    }

    /// [`Self::setting`] without recording it (for values shown differently from how
    /// clap holds them); returns where the value came from.
    pub fn resolve<T>(&self, id: &str, target: &mut T, from_file: Option<T>) -> Source {
        match (self.given(id), from_file) {
            (Some(given), _) => given,
            (None, Some(v)) => {
                *target = v;
                self.file_source()
            }
            (None, None) => Source::Default,
        }
    }

    /// A list of grants: the file's, then the flags'.
    pub fn list<T: Show>(&mut self, key: &str, id: &str, target: &mut Vec<T>, from_file: Vec<T>) {
        let mut sources = Vec::new();
        if !from_file.is_empty() {
            sources.push(self.file_source());
        }
        if let Some(given) = self.given(id).filter(|_| !target.is_empty()) {
            sources.push(given);
        }
        if sources.is_empty() {
            sources.push(Source::Default);
        }
        let flags = std::mem::replace(target, from_file);
        target.extend(flags);
        self.record(key, target.show(), sources);
    }

    /// Records a setting that is not one of clap's.
    pub fn record(&mut self, key: &str, value: Option<toml::Value>, sources: Vec<Source>) {
        self.entries.push(Entry {
            key: key.to_owned(),
            value,
            sources,
        });
    }

    /// Records a problem.
    pub fn problem(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// Records a problem with `key` of the settings file.
    pub fn file_problem(&mut self, key: &str, message: impl Into<String>) {
        let path = self.file_path().unwrap_or(Path::new("settings file"));
        self.problems.push(Problem::file(path, key, message));
    }

    /// Lays the file's `data_dir` under `--data-dir`.
    pub fn data_dir(&mut self, data: &mut DataDirArgs) {
        let from_file = self.file().data_dir.clone();
        self.setting("data_dir", "data_dir", &mut data.data_dir, from_file);
    }

    /// Lays `[budgets]` and `[grants]` under the budget and grant flags.
    pub fn sandbox(&mut self, s: &mut SandboxArgs) {
        let b = self.file().budgets.clone();
        self.setting(
            "budgets.timeout_ms",
            "timeout_ms",
            &mut s.timeout_ms,
            b.timeout_ms,
        );
        self.setting(
            "budgets.max_memory",
            "max_memory",
            &mut s.max_memory,
            b.max_memory,
        );
        self.setting("budgets.fuel", "fuel", &mut s.fuel, b.fuel.map(Some));
        self.setting(
            "budgets.max_pages",
            "max_pages",
            &mut s.max_pages,
            b.max_pages,
        );
        self.setting(
            "budgets.max_http_requests",
            "max_http_requests",
            &mut s.max_http_requests,
            b.max_http_requests,
        );
        self.setting(
            "budgets.max_hostcall_bytes",
            "max_hostcall_bytes",
            &mut s.max_hostcall_bytes,
            b.max_hostcall_bytes,
        );
        self.setting(
            "budgets.max_events_per_page",
            "max_events_per_page",
            &mut s.max_events_per_page,
            b.max_events_per_page,
        );
        self.setting(
            "budgets.max_page_bytes",
            "max_page_bytes",
            &mut s.max_page_bytes,
            b.max_page_bytes,
        );
        self.setting(
            "budgets.max_log_lines",
            "max_log_lines",
            &mut s.max_log_lines,
            b.max_log_lines,
        );
        self.setting(
            "budgets.max_log_bytes",
            "max_log_bytes",
            &mut s.max_log_bytes,
            b.max_log_bytes,
        );
        self.setting(
            "budgets.max_kv_bytes_per_job",
            "max_kv_bytes_per_job",
            &mut s.max_kv_bytes_per_job,
            b.max_kv_bytes_per_job,
        );
        self.setting(
            "budgets.max_object_bytes_per_job",
            "max_object_bytes_per_job",
            &mut s.max_object_bytes_per_job,
            b.max_object_bytes_per_job,
        );
        self.setting(
            "budgets.max_kv_bytes_per_plugin",
            "max_kv_bytes_per_plugin",
            &mut s.max_kv_bytes_per_plugin,
            b.max_kv_bytes_per_plugin,
        );
        self.setting(
            "budgets.max_object_bytes_per_plugin",
            "max_object_bytes_per_plugin",
            &mut s.max_object_bytes_per_plugin,
            b.max_object_bytes_per_plugin,
        );
        self.setting(
            "budgets.max_cursor_bytes",
            "max_cursor_bytes",
            &mut s.max_cursor_bytes,
            b.max_cursor_bytes,
        );
        self.setting(
            "budgets.max_handles",
            "max_handles",
            &mut s.max_handles,
            b.max_handles,
        );
        self.setting(
            "budgets.max_follow_up_depth",
            "max_follow_up_depth",
            &mut s.max_follow_up_depth,
            b.max_follow_up_depth,
        );
        self.setting(
            "budgets.max_lineage_follow_ups",
            "max_lineage_follow_ups",
            &mut s.max_lineage_follow_ups,
            b.max_lineage_follow_ups,
        );
        self.setting(
            "budgets.describe_timeout_ms",
            "describe_timeout_ms",
            &mut s.describe_timeout_ms,
            b.describe_timeout_ms,
        );
        self.setting(
            "budgets.max_manifest_bytes",
            "max_manifest_bytes",
            &mut s.max_manifest_bytes,
            b.max_manifest_bytes,
        );

        let g = self.file().grants.clone();
        self.list("grants.hosts", "allow_host", &mut s.allow_host, g.hosts);
        self.list(
            "grants.sources",
            "allow_source",
            &mut s.allow_source,
            g.sources,
        );
        self.list(
            "grants.platforms",
            "allow_platform",
            &mut s.allow_platform,
            g.platforms,
        );
        // Parsed here so that a bad one names its key (and is left out); the flags' own
        // are parsed where the policy is built, as before.
        let mut networks = Vec::new();
        for n in g.networks {
            match super::parse_networks(std::slice::from_ref(&n)) {
                Ok(_) => networks.push(n),
                Err(_) => self.file_problem(
                    "grants.networks",
                    format!("{n:?} is not an IP network; write it like 127.0.0.0/8 or ::1/128"),
                ),
            }
        }
        self.list(
            "grants.networks",
            "allow_network",
            &mut s.allow_network,
            networks,
        );
        let mut follow_ups = Vec::new();
        for f in &g.follow_ups {
            match f.parse() {
                Ok(grant) => follow_ups.push(grant),
                Err(e) => self.file_problem("grants.follow_ups", e),
            }
        }
        self.list(
            "grants.follow_ups",
            "allow_follow_up",
            &mut s.allow_follow_up,
            follow_ups,
        );
    }

    /// A problem with a setting clap holds, named by its flag or variable when given
    /// there, else by its key in the file.
    pub fn setting_problem(&mut self, key: &str, id: &str, message: &str) {
        match self.given(id) {
            Some(Source::Flag(f)) => self.problem(Problem::flag(f, message)),
            Some(Source::Env(v)) => self.problem(Problem::env(v, message)),
            _ => self.file_problem(key, message),
        }
    }

    /// Per-plugin settings: the file's `[plugins.<id>]`, and the JSON plugin config file
    /// at `json` (`--plugin-config`), whose entry for an id replaces the file's whole.
    pub fn plugins(&mut self, json: Option<&Path>) -> BTreeMap<String, ConfiguredPlugin> {
        let mut out = match self.file_path() {
            Some(path) => {
                let sections = self.file().plugins.clone();
                plugins::from_file(&sections, path, &mut self.problems)
            }
            None => BTreeMap::new(),
        };
        if let Some(json) = json {
            out.extend(plugins::from_json_file(json, &mut self.problems));
        }
        for (id, p) in &out {
            let key = format!("plugins.{id}");
            let source = vec![Source::File(p.from.clone())];
            let s = &p.settings;
            if let Some(f) = &s.file {
                self.record(&format!("{key}.file"), f.clone().show(), source.clone());
            }
            if let Some(d) = &s.sha256 {
                self.record(&format!("{key}.sha256"), d.clone().show(), source.clone());
            }
            let config: toml::Table = s
                .config
                .iter()
                .map(|(k, v)| (k.clone(), toml::Value::String(masked(p, k, v))))
                .collect();
            self.record(
                &format!("{key}.config"),
                Some(toml::Value::Table(config)),
                source.clone(),
            );
            let secrets: Vec<String> = s
                .secret_keys
                .iter()
                .filter(|k| !p.env_refs.contains_key(*k))
                .cloned()
                .collect();
            self.record(&format!("{key}.secrets"), secrets.show(), source.clone());
            for (name, list) in [
                ("hosts", &s.grants),
                ("sources", &s.sources),
                ("platforms", &s.platforms),
            ] {
                self.record(
                    &format!("{key}.grants.{name}"),
                    list.clone().show(),
                    source.clone(),
                );
            }
            self.record(
                &format!("{key}.grants.follow_ups"),
                s.follow_ups.clone().show(),
                source,
            );
        }
        out
    }

    /// The schedules: the JSON schedules file at `json` (`--schedules`) when given, else
    /// the file's `[[schedules]]`, else none (the daemon then leaves Redis's alone).
    pub fn schedules(&mut self, json: Option<(&Path, Source)>) -> Option<ScheduleSet> {
        let (schedules, source) = match json {
            Some((path, source)) => match schedules::load(path) {
                Ok(s) => (s, source),
                Err(e) => {
                    // Reading and parsing errors name the file already; a schedule's own
                    // names the schedule and field, and gets the file in front.
                    self.problem(match e {
                        schedules::ScheduleError::Invalid { .. } => {
                            Problem::file(path, "", e.to_string())
                        }
                        e => Problem::said(e.to_string()),
                    });
                    return None;
                }
            },
            None => {
                let sections = self.file().schedules.clone()?;
                let mut entries = Vec::with_capacity(sections.len());
                for s in sections {
                    let mut entry = serde_json::json!({ "name": s.name });
                    if let Some(cron) = s.cron {
                        entry["cron"] = cron.into();
                    }
                    if let Some(job) = s.job {
                        entry["job"] = toml_to_json(job);
                    }
                    if let Some(plugin) = s.plugin {
                        entry["plugin"] = plugin.into();
                    }
                    if let Some(default) = s.default {
                        entry["default"] = default.into();
                    }
                    if let Some(tz) = s.tz {
                        entry["tz"] = tz.into();
                    }
                    if let Some(options) = s.options {
                        entry["options"] = toml_to_json(options);
                    }
                    entries.push(entry);
                }
                match schedules::parse_value(serde_json::json!({ "schedules": entries })) {
                    Ok(s) => (s, self.file_source()),
                    Err(e) => {
                        self.file_problem("schedules", e.to_string());
                        return None;
                    }
                }
            }
        };
        let enabled = schedules.defaults.iter().map(|u| {
            let mut t = toml::Table::new();
            t.insert("name".into(), u.name.clone().into());
            t.insert("plugin".into(), u.plugin.clone().into());
            t.insert("default".into(), u.default.clone().into());
            if let Some(cron) = &u.cron {
                t.insert("cron".into(), cron.clone().into());
            }
            if let Some(tz) = &u.tz {
                t.insert("tz".into(), tz.clone().into());
            }
            if let Some(options) = &u.options {
                t.insert("options".into(), json_to_toml(options));
            }
            toml::Value::Table(t)
        });
        let shown: Vec<toml::Value> = schedules
            .own
            .iter()
            .map(|s| {
                let mut t = toml::Table::new();
                t.insert("name".into(), s.name.clone().into());
                t.insert("cron".into(), s.cron.clone().into());
                t.insert("tz".into(), s.tz.clone().into());
                t.insert("job".into(), json_to_toml(&s.job));
                if !s.options.is_empty() {
                    t.insert(
                        "options".into(),
                        json_to_toml(&serde_json::Value::Object(s.options.clone())),
                    );
                }
                toml::Value::Table(t)
            })
            .chain(enabled)
            .collect();
        self.record("schedules", Some(toml::Value::Array(shown)), vec![source]);
        Some(schedules)
    }

    /// drowl's storage settings, from the environment only (see the module docs).
    pub fn storage(&mut self) -> StorageConfig {
        let storage = StorageConfig::from_env();
        let env = |v: &str| vec![Source::Env(v.to_owned())];
        match &storage.postgres {
            Some(pg) => self.record(
                "DATABASE_URL",
                pg.redacted_url().show(),
                env("DATABASE_URL"),
            ),
            None => self.record("DATABASE_URL", None, vec![Source::Default]),
        }
        match &storage.s3 {
            Some(s3) => {
                for (var, value) in [
                    ("S3_ENDPOINT", s3.endpoint.clone()),
                    ("S3_BUCKET", s3.bucket.clone()),
                    ("S3_ACCESS_KEY", mask(&s3.access_key)),
                    ("S3_SECRET_KEY", mask(&s3.secret_key)),
                    ("S3_REGION", s3.region.clone()),
                ] {
                    self.record(var, value.show(), env(var));
                }
            }
            None => self.record("S3_ENDPOINT", None, vec![Source::Default]),
        }
        storage
    }

    /// The settings, or every problem found.
    pub fn finish(
        self,
        plugins: BTreeMap<String, ConfiguredPlugin>,
        schedules: Option<ScheduleSet>,
        storage: StorageConfig,
    ) -> Result<Settings, Vec<Problem>> {
        if !self.problems.is_empty() {
            return Err(self.problems);
        }
        Ok(Settings {
            file: self.file.map(|f| f.path.clone()),
            plugins: plugins
                .into_iter()
                .map(|(id, p)| (id, p.settings))
                .collect(),
            schedules,
            storage,
            entries: self.entries,
        })
    }
}

/// A secret as `config check` shows it.
fn mask(v: &str) -> String {
    if v.is_empty() {
        String::new()
    } else {
        "***".to_owned()
    }
}

/// Config key names that usually hold credentials: masked by `config check` even when
/// neither the file nor the operator says so (the manifest, which may, is not read there).
const SECRET_LOOKING: [&str; 6] = ["token", "secret", "password", "passwd", "credential", "key"];

/// A plugin config value as `config check` shows it: `${VAR}` for values from the
/// environment, `***` for secrets and secret-looking keys, the value otherwise.
fn masked(p: &ConfiguredPlugin, key: &str, value: &str) -> String {
    if let Some(var) = p.env_refs.get(key) {
        return format!("${{{var}}}");
    }
    let lower = key.to_ascii_lowercase();
    if p.settings.secret_keys.contains(key) || SECRET_LOOKING.iter().any(|s| lower.contains(s)) {
        return mask(value);
    }
    value.to_owned()
}

/// A TOML value as JSON (dates become strings).
pub fn toml_to_json(v: toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => s.into(),
        toml::Value::Integer(i) => i.into(),
        toml::Value::Float(f) => f.into(),
        toml::Value::Boolean(b) => b.into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(a) => a.into_iter().map(toml_to_json).collect(),
        toml::Value::Table(t) => t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect(),
    }
}

/// A JSON value as TOML (`null`s, which TOML cannot write, are left out of tables).
pub fn json_to_toml(v: &serde_json::Value) -> toml::Value {
    match v {
        serde_json::Value::Null => toml::Value::String(String::new()),
        serde_json::Value::Bool(b) => toml::Value::Boolean(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(toml::Value::Integer)
            .unwrap_or_else(|| toml::Value::Float(n.as_f64().unwrap_or_default())),
        serde_json::Value::String(s) => toml::Value::String(s.clone()),
        serde_json::Value::Array(a) => toml::Value::Array(a.iter().map(json_to_toml).collect()),
        serde_json::Value::Object(o) => toml::Value::Table(
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), json_to_toml(v)))
                .collect(),
        ),
    }
}

/// The effective settings of one command: what its flags did not hold, resolved, and
/// every setting with its source for `config check`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The settings file read, if any.
    pub file: Option<PathBuf>,
    /// Per-plugin settings by id (file and JSON plugin config together).
    pub plugins: HashMap<String, PluginSettings>,
    /// The schedules to register, when any source declares them.
    pub schedules: Option<ScheduleSet>,
    /// drowl's storage, from the environment.
    pub storage: StorageConfig,
    /// Every setting, its value (secrets masked) and its source.
    pub entries: Vec<Entry>,
}

impl Settings {
    /// The host policy: the budget and grant flags (with the file under them), the
    /// per-plugin settings, and for `plugin_id` the `--config` values over its own.
    pub fn policy(
        &self,
        sandbox: &SandboxArgs,
        plugin_id: Option<&str>,
    ) -> Result<HostPolicy, ConfigError> {
        sandbox.policy_over(self.plugins.clone(), plugin_id)
    }
}
