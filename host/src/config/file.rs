//! The settings file (`--config-file drowl.toml`, or `DROWL_CONFIG_FILE`): its schema, as
//! written, and how it is read.
//!
//! Every table refuses keys it does not know (`deny_unknown_fields`), so a typo stops the
//! start naming the key, its line and the keys that table knows, instead of leaving the
//! setting at its default without a word. Values are checked for their type here and for
//! their meaning where they are resolved ([`super::settings`]). `examples/drowl.toml`
//! documents every key; keys are the flags' names with `_` for `-`, grouped in tables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::problem::{Place, Problem};

/// The whole file. Every key is optional: what it leaves out comes from the flags, the
/// environment or the built-in defaults.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `--data-dir`: embedded storage and the compiled-plugin cache.
    pub data_dir: Option<PathBuf>,
    /// `serve --plugins`: the directory of plugin components.
    pub plugins_dir: Option<PathBuf>,
    /// `serve --registry-poll-ms`: how often the `plugins` table and the plugins
    /// directory are read for changes.
    pub registry_poll_ms: Option<u64>,
    /// `serve --startup-timeout-ms`.
    pub startup_timeout_ms: Option<u64>,
    /// `serve --migrate`.
    pub migrate: Option<bool>,
    /// The queue and the worker's Bull settings.
    #[serde(default)]
    pub queue: QueueSection,
    /// `serve --job-defaults`, by job type.
    #[serde(default)]
    pub job_defaults: BTreeMap<String, JobDefaultsSection>,
    /// The health and status server.
    #[serde(default)]
    pub http: HttpSection,
    /// `analytics` jobs.
    #[serde(default)]
    pub analytics: AnalyticsSection,
    /// Budget caps of every job.
    #[serde(default)]
    pub budgets: BudgetsSection,
    /// Grants to every plugin.
    #[serde(default)]
    pub grants: GrantsSection,
    /// Per-plugin settings, by the id the plugin is installed as.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginSection>,
    /// `serve --schedules`: present (even empty) means the daemon makes Redis hold
    /// exactly these `drowl-host.` schedules; absent leaves Redis's alone.
    pub schedules: Option<Vec<ScheduleSection>>,
}

/// `[queue]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSection {
    /// `--queue`.
    pub name: Option<String>,
    /// `--prefix`.
    pub prefix: Option<String>,
    /// `serve --concurrency`.
    pub concurrency: Option<usize>,
    /// `serve --type-limit TYPE=N`, as `TYPE = N`.
    #[serde(default)]
    pub type_limits: BTreeMap<String, usize>,
    /// `serve --rate-limit MAX/MS`.
    pub rate_limit: Option<String>,
    /// `serve --lock-duration-ms`.
    pub lock_duration_ms: Option<u64>,
    /// `serve --stalled-interval-ms`.
    pub stalled_interval_ms: Option<u64>,
    /// `serve --shutdown-grace-ms`.
    pub shutdown_grace_ms: Option<u64>,
}

/// `[job_defaults.<type>]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDefaultsSection {
    /// Attempts of a job that sets none.
    pub attempts: Option<u32>,
    /// `exponential:MS` or `linear:MS`.
    pub backoff: Option<String>,
    /// Milliseconds.
    pub timeout_ms: Option<u64>,
}

/// `[http]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// `WORKER_HOST`.
    pub host: Option<String>,
    /// `WORKER_PORT`.
    pub port: Option<u16>,
    /// `serve --process-endpoint`.
    pub process_endpoint: Option<bool>,
    /// `serve --ui on|off`: the dashboard at `/ui`. Its token (`--ui-token`,
    /// `DROWL_UI_TOKEN`) is a credential and comes from the environment, as drowl's own
    /// connection settings do.
    pub ui: Option<bool>,
}

/// `[analytics]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsSection {
    /// `serve --analytics-max-days`.
    pub max_days: Option<u32>,
    /// `serve --analytics-utc-offset`.
    pub utc_offset: Option<String>,
}

/// `[budgets]`: the flags of the same names.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(
    missing_docs,
    reason = "each is the flag of the same name (see SandboxArgs)"
)]
pub struct BudgetsSection {
    pub timeout_ms: Option<u64>,
    pub max_memory: Option<u64>,
    pub fuel: Option<u64>,
    pub max_pages: Option<u32>,
    pub max_http_requests: Option<u32>,
    pub max_hostcall_bytes: Option<usize>,
    pub max_events_per_page: Option<usize>,
    pub max_page_bytes: Option<usize>,
    pub max_log_lines: Option<u32>,
    pub max_log_bytes: Option<usize>,
    pub max_kv_bytes_per_job: Option<u64>,
    pub max_object_bytes_per_job: Option<u64>,
    pub max_kv_bytes_per_plugin: Option<u64>,
    pub max_object_bytes_per_plugin: Option<u64>,
    pub max_cursor_bytes: Option<usize>,
    pub max_handles: Option<usize>,
    pub max_follow_up_depth: Option<u32>,
    pub max_lineage_follow_ups: Option<u32>,
    pub describe_timeout_ms: Option<u64>,
    pub max_manifest_bytes: Option<usize>,
}

/// `[grants]`: what every plugin is granted (`--allow-*`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantsSection {
    /// `--allow-host`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// `--allow-source`.
    #[serde(default)]
    pub sources: Vec<String>,
    /// `--allow-platform`.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// `--allow-network`.
    #[serde(default)]
    pub networks: Vec<String>,
    /// `--allow-follow-up`.
    #[serde(default)]
    pub follow_ups: Vec<String>,
}

/// `[plugins.<id>]`: what the JSON plugin config file (`--plugin-config`) holds for one
/// plugin.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSection {
    /// Config values (strings, numbers or booleans); `"${VAR}"` reads VAR.
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
    /// Config keys redacted whatever the manifest calls them.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// What this plugin alone is granted.
    #[serde(default)]
    pub grants: PluginGrants,
    /// The file of the plugins directory installed as this id.
    pub file: Option<String>,
    /// The SHA-256 that file must have.
    pub sha256: Option<String>,
}

/// `[plugins.<id>.grants]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginGrants {
    /// Outbound origins (the JSON file's `allowHosts`).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Contested event sources.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Identity platforms beyond its sources'.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// Follow-up jobs for other plugins, `TYPE:PLUGIN`.
    #[serde(default)]
    pub follow_ups: Vec<String>,
}

/// `[[schedules]]`: one entry of the JSON schedules file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    /// Letters, digits, `-`, `_`.
    pub name: String,
    /// 5 fields, or 6 with seconds first (optional when enabling a plugin's default).
    pub cron: Option<String>,
    /// IANA zone (default UTC).
    pub tz: Option<String>,
    /// The job, `{ type, name, input }` (none when enabling a plugin's default).
    pub job: Option<toml::Value>,
    /// Bull options of every run.
    pub options: Option<toml::Value>,
    /// Enables a default schedule of this plugin (with `default`).
    pub plugin: Option<String>,
    /// The name of the plugin's default schedule to enable.
    pub default: Option<String>,
}

/// Reads and parses the file at `path`.
pub fn load(path: &Path) -> Result<ConfigFile, Problem> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Problem::file(path, "", format!("cannot read the settings file: {e}")))?;
    parse(&text, path)
}

/// Parses the text of a settings file; problems name `path`, the key and its line.
pub fn parse(text: &str, path: &Path) -> Result<ConfigFile, Problem> {
    let at = |e: &toml::de::Error, key: String, message: String| Problem {
        place: Place::File {
            path: path.to_path_buf(),
            key,
            line: e.span().map(|s| line_of(text, s.start)),
        },
        message,
    };
    let de = toml::Deserializer::parse(text).map_err(|e| {
        let message = format!("not valid TOML: {}", e.message());
        at(&e, String::new(), message)
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        at(e.inner(), key, plain_message(e.inner().message()))
    })
}

/// The 1-based line of byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

/// serde's wording, in the file's terms: `unknown field `x`, expected one of `a`, `b``
/// becomes `unknown key; known keys: a, b`.
pub(super) fn plain_message(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let known = rest.split_once("`, expected ").map_or("", |(_, k)| k);
    let known = known.strip_prefix("one of ").unwrap_or(known);
    if known.is_empty() || known == "there are no fields" {
        return "unknown key; this table has no keys".to_owned();
    }
    let names: Vec<&str> = known
        .split(", ")
        .flat_map(|k| k.split(" or "))
        .map(|k| k.trim_matches('`'))
        .collect();
    format!("unknown key; known keys: {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> String {
        parse(text, Path::new("drowl.toml"))
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn every_table_is_read() {
        let f = parse(
            r#"
data_dir = "/var/lib/drowl"
plugins_dir = "/srv/plugins"
startup_timeout_ms = 5000
migrate = true
[queue]
name = "jobs"
concurrency = 8
type_limits = { event_ingestion = 2 }
[job_defaults.analytics]
attempts = 5
[http]
port = 3003
[budgets]
timeout_ms = 1000
[grants]
hosts = ["https://api.github.com"]
[plugins.github]
config = { token = "${GITHUB_TOKEN}", per_page = 50 }
grants = { hosts = ["https://api.github.com"] }
[[schedules]]
name = "hourly"
cron = "0 * * * *"
job = { type = "event_ingestion", name = "gh", input = { pluginId = "github" } }
"#,
            Path::new("drowl.toml"),
        )
        .expect("valid");
        assert_eq!(f.queue.name.as_deref(), Some("jobs"));
        assert_eq!(f.queue.type_limits["event_ingestion"], 2);
        assert_eq!(f.job_defaults["analytics"].attempts, Some(5));
        assert_eq!(f.http.port, Some(3003));
        assert_eq!(f.plugins["github"].grants.hosts, ["https://api.github.com"]);
        assert_eq!(f.schedules.as_ref().map(Vec::len), Some(1));
        assert!(
            parse("", Path::new("x"))
                .expect("empty")
                .schedules
                .is_none()
        );
    }

    /// The issue's own example: a typo names the file, the line, the key and the keys
    /// the table knows.
    #[test]
    fn an_unknown_key_is_named_with_the_known_ones() {
        assert_eq!(
            problem("[plugins.github]\nconfig = {}\nconfg = { token = \"x\" }\n"),
            "drowl.toml:3: plugins.github.confg: unknown key; known keys: config, secrets, grants, file, sha256"
        );
        assert_eq!(
            problem("concurrency = 4\n"),
            "drowl.toml:1: concurrency: unknown key; known keys: data_dir, plugins_dir, \
             registry_poll_ms, startup_timeout_ms, migrate, queue, job_defaults, http, analytics, budgets, \
             grants, plugins, schedules"
        );
        assert!(
            problem("[http]\nhost = \"::1\"\nlisten = \"x\"\n").starts_with(
                "drowl.toml:3: http.listen: unknown key; known keys: host, port, process_endpoint"
            )
        );
        assert!(
            problem("[[schedules]]\nname = \"a\"\ncron = \"* * * * *\"\njob = {}\nevery = 5\n")
                .starts_with("drowl.toml:5: schedules[0].every: unknown key; known keys: name,")
        );
    }

    #[test]
    fn a_wrong_type_or_syntax_is_named_with_its_line() {
        assert_eq!(
            problem("[queue]\nname = \"x\"\nconcurrency = -1\n"),
            "drowl.toml:3: queue.concurrency: invalid value: integer `-1`, expected usize"
        );
        assert_eq!(
            problem("[http]\nport = \"3002\"\n"),
            "drowl.toml:2: http.port: invalid type: string \"3002\", expected u16"
        );
        assert_eq!(
            problem("[queue]\nname = \"a\"\nname = \"b\"\n"),
            "drowl.toml:3: not valid TOML: duplicate key"
        );
        assert!(problem("[queue\n").starts_with("drowl.toml:1: not valid TOML:"));
        assert_eq!(
            problem("[[schedules]]\nname = 5\n"),
            "drowl.toml:2: schedules[0].name: invalid type: integer `5`, expected a string"
        );
        // `cron` and `job` may be left out here (an entry enabling a plugin's default takes
        // them from the plugin); the schedules' own validation names what is missing.
        assert!(parse("[[schedules]]\nname = \"a\"\n", Path::new("drowl.toml")).is_ok());
    }

    #[test]
    fn serde_wording_becomes_the_files() {
        assert_eq!(
            plain_message("unknown field `x`, expected `a` or `b`"),
            "unknown key; known keys: a, b"
        );
        assert_eq!(
            plain_message("unknown field `x`, expected `a`"),
            "unknown key; known keys: a"
        );
        assert_eq!(
            plain_message("unknown field `x`, there are no fields"),
            "unknown key; this table has no keys"
        );
        assert_eq!(plain_message("missing field `a`"), "missing field `a`");
    }
}
