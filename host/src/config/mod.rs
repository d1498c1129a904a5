//! Settings shared by the commands: budgets, egress exceptions, plugin config, storage.
//!
//! drowl's own environment variable names are used where the platform already has them
//! (`DATABASE_URL`, `REDIS_URL`, `S3_ENDPOINT`, `S3_ACCESS_KEY`, `S3_SECRET_KEY`,
//! `S3_BUCKET`). When none of the storage variables is set, everything lives in the data
//! directory (SQLite and files), so a single machine needs no services at all.
//!
//! Everything else may also come from one TOML settings file (`--config-file`,
//! `DROWL_CONFIG_FILE`; [`file`](mod@file) is its schema): a flag wins over its environment
//! variable, which wins over the file, which wins over the built-in default (see
//! [`settings`]). `drowl-host config check` prints the result.

pub mod file;
pub mod plugins;
pub mod problem;
pub mod render;
pub mod settings;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

pub use problem::{Place, Problem};
pub use settings::{Entry, Layer, LoadedFile, Settings, Source};

use crate::jobs::JobType;
use crate::policy::{FollowUpGrant, HostPolicy, PluginSettings};
use crate::runtime::Budget;

/// Why a setting was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A `key=value` argument without `=`.
    #[error("{flag} {value:?} must look like key=value")]
    NotKeyValue {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// A network range that does not parse.
    #[error("--allow-network {0:?} is not an IP network; write it like 127.0.0.0/8 or ::1/128")]
    Network(String),
    /// A `--config key=${VAR}` whose variable is not set.
    #[error("--config {key}: {message}")]
    Env {
        /// The config key.
        key: String,
        /// The problem.
        message: String,
    },
}

/// Sandbox settings every command that runs plugins accepts.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Set a plugin config value (repeatable). Keys must be declared in the manifest.
    /// A value written `${VAR}` (quoted for the shell) is read from the environment and
    /// redacted from the plugin's logs and errors, whatever the manifest calls it.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// Grant an outbound origin the plugin declared, e.g. https://api.github.com
    /// (repeatable; `*` grants every declared origin).
    #[arg(long = "allow-host", value_name = "ORIGIN")]
    pub allow_host: Vec<String>,
    /// Grant an event source the plugin declares that another installed plugin declares
    /// too (repeatable). A contested source is emitted only by the plugins it is granted
    /// to; with `serve` this grants it to every plugin that declares it, so name the
    /// owner in the plugin config file (`sources`) instead.
    #[arg(long = "allow-source", value_name = "SOURCE")]
    pub allow_source: Vec<String>,
    /// Let the plugin report identities on a platform other than those of its own
    /// sources, e.g. `github` for a plugin that links GitHub accounts (repeatable).
    #[arg(long = "allow-platform", value_name = "PLATFORM")]
    pub allow_platform: Vec<String>,
    /// Exempt an address range from the private-address block, e.g. 127.0.0.0/8 for a
    /// local test server (repeatable). Off by default: loopback, private, link-local and
    /// metadata addresses are refused.
    #[arg(long = "allow-network", value_name = "CIDR")]
    pub allow_network: Vec<String>,
    /// Wall-clock budget per job in milliseconds (caps what the plugin requests, and a
    /// job's own timeout). The default is drowl's 5-minute job timeout, so a job drowl's
    /// API enqueues with no options gets its 5 minutes; `serve` holds Bull locks for at
    /// least 1.5 times this, so a lower value also recovers a dead daemon's jobs sooner.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_TIMEOUT_MS)]
    pub timeout_ms: u64,
    /// Linear memory budget per plugin instance in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    pub max_memory: u64,
    /// Meter fuel and stop a plugin after this many units (deterministic CPU limit).
    #[arg(long, value_name = "UNITS")]
    pub fuel: Option<u64>,
    /// Pages one ingestion job may fetch before leaving the rest to the next run.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_pages: u32,
    /// Outbound HTTP requests per job.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_http_requests: u32,
    /// Bytes one call may pass from the plugin to the host (a return value, a log line,
    /// a key-value write): bounds what a plugin makes the host copy.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub max_hostcall_bytes: usize,
    /// Events in one page an ingestion plugin returns.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_events_per_page: usize,
    /// Bytes of event payload and text in one page.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub max_page_bytes: usize,
    /// Log lines one job may write (more end the job).
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub max_log_lines: u32,
    /// Bytes of log messages and fields kept per job (later lines are dropped, counted).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_log_bytes: usize,
    /// Bytes of keys and values one job may write to key-value storage.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub max_kv_bytes_per_job: u64,
    /// Bytes of objects one job may write.
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    pub max_object_bytes_per_job: u64,
    /// Bytes of keys and values one plugin may keep in key-value storage, all its jobs
    /// together (concurrent jobs may overshoot by at most one per-job quota each).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub max_kv_bytes_per_plugin: u64,
    /// Bytes of objects one plugin may keep, all its jobs together (concurrent jobs may
    /// overshoot by at most one per-job quota each).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    pub max_object_bytes_per_plugin: u64,
    /// Longest cursor an ingestion plugin may return.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 10)]
    pub max_cursor_bytes: usize,
    /// Resource handles (streams, responses, ...) one instance may hold at once.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_handles: usize,
    /// Let every plugin enqueue follow-up jobs of TYPE for PLUGIN (repeatable; `*` for
    /// any), e.g. keyword_extraction:keywords. A plugin may always enqueue its own jobs.
    #[arg(long = "allow-follow-up", value_name = "TYPE:PLUGIN")]
    pub allow_follow_up: Vec<FollowUpGrant>,
    /// How deep follow-up jobs may nest below the job the API enqueued.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_follow_up_depth: u32,
    /// Follow-ups all jobs descended from one API job may enqueue together.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub max_lineage_follow_ups: u32,
    /// Time loading a plugin may spend instantiating it and calling its `describe`, in
    /// milliseconds; a plugin over it is not loaded.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_DESCRIBE_TIMEOUT_MS)]
    pub describe_timeout_ms: u64,
    /// Largest manifest a plugin's `describe` may return, serialised as JSON, in bytes; a
    /// plugin over it is not loaded.
    #[arg(long, value_name = "BYTES", default_value_t = crate::manifest::DEFAULT_MAX_MANIFEST_BYTES)]
    pub max_manifest_bytes: usize,
}

/// The default of `--timeout-ms`: drowl's job timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = crate::queue::defaults::DROWL_TIMEOUT_MS;

/// The default of `--describe-timeout-ms`.
pub const DEFAULT_DESCRIBE_TIMEOUT_MS: u64 =
    crate::runtime::engine::DEFAULT_DESCRIBE_TIMEOUT.as_millis() as u64;

impl SandboxArgs {
    /// The budget caps these flags describe.
    pub fn caps(&self) -> Budget {
        Budget {
            max_memory_bytes: self.max_memory,
            timeout: Duration::from_millis(self.timeout_ms),
            fuel: self.fuel,
            max_pages_per_job: self.max_pages,
            max_http_requests: self.max_http_requests,
            max_guest_to_host_bytes: self.max_hostcall_bytes,
            max_events_per_batch: self.max_events_per_page,
            max_batch_bytes: self.max_page_bytes,
            max_log_lines: self.max_log_lines,
            max_resource_handles: self.max_handles,
            max_log_bytes: self.max_log_bytes,
            max_kv_bytes_per_job: self.max_kv_bytes_per_job,
            max_object_bytes_per_job: self.max_object_bytes_per_job,
            max_kv_bytes_per_plugin: self.max_kv_bytes_per_plugin,
            max_object_bytes_per_plugin: self.max_object_bytes_per_plugin,
            max_cursor_bytes: self.max_cursor_bytes,
            max_follow_up_depth: self.max_follow_up_depth,
            max_follow_ups_per_lineage: self.max_lineage_follow_ups,
            ..Budget::default()
        }
    }

    /// The budget of instantiating a plugin and calling its `describe` at load.
    pub fn describe_timeout(&self) -> Duration {
        Duration::from_millis(self.describe_timeout_ms)
    }

    /// The host policy these flags describe; `plugin_id` receives the `--config` values.
    pub fn policy(&self, plugin_id: Option<&str>) -> Result<HostPolicy, ConfigError> {
        self.policy_over(HashMap::new(), plugin_id)
    }

    /// [`Self::policy`] over per-plugin settings from the settings files: `--config`
    /// values replace `plugin_id`'s own key by key.
    pub fn policy_over(
        &self,
        plugins: HashMap<String, PluginSettings>,
        plugin_id: Option<&str>,
    ) -> Result<HostPolicy, ConfigError> {
        let mut policy = HostPolicy {
            plugins,
            caps: self.caps(),
            default_grants: self.allow_host.clone(),
            default_sources: self.allow_source.clone(),
            default_platforms: self.allow_platform.clone(),
            default_follow_ups: self.allow_follow_up.clone(),
            allowed_networks: parse_networks(&self.allow_network)?,
            ..HostPolicy::default()
        };
        policy.egress_limits.max_requests_per_job = self.max_http_requests;
        if let Some(id) = plugin_id {
            let entry = policy.plugins.entry(id.to_owned()).or_default();
            for (k, v) in parse_key_values("--config", &self.config)? {
                // `--config 'token=${GITHUB_TOKEN}'` keeps the token out of the shell's
                // history and the process list, and out of the plugin's output.
                if env_reference(&v).is_some() {
                    entry.secret_keys.insert(k.clone());
                }
                let v = expand_env(&v).map_err(|message| ConfigError::Env {
                    key: k.clone(),
                    message,
                })?;
                entry.config.insert(k, v);
            }
        }
        Ok(policy)
    }
}

/// The variable a value names when it is exactly `${VAR}`.
pub fn env_reference(v: &str) -> Option<&str> {
    v.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
}

/// A config value that is exactly `${VAR}` is read from the environment; anything else,
/// `$` signs included, is taken literally.
///
/// Deliberately narrower than shell expansion (what `shellexpand` or `envsubst` do): a
/// secret written out in the file may contain `$`, and must reach the plugin unchanged.
/// A value read from the environment is treated as a secret wherever it is used (see
/// [`crate::policy::PluginSettings::secret_keys`]).
pub fn expand_env(v: &str) -> Result<String, String> {
    match env_reference(v) {
        Some(var) => {
            std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))
        }
        None => Ok(v.to_owned()),
    }
}

/// Parses `key=value` pairs.
pub fn parse_key_values(
    flag: &'static str,
    items: &[String],
) -> Result<BTreeMap<String, String>, ConfigError> {
    items
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| ConfigError::NotKeyValue {
                    flag,
                    value: kv.clone(),
                })
        })
        .collect()
}

/// Parses network ranges; a bare address means just that address.
pub fn parse_networks(items: &[String]) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    items
        .iter()
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| ConfigError::Network(s.clone()))
        })
        .collect()
}

/// `--rate-limit MAX/MS` (and the file's `queue.rate_limit`), as clap's value parser:
/// clap names the flag and the value in the error, the message says what to write instead.
pub fn parse_rate_limit(v: &str) -> Result<(u32, Duration), String> {
    let bad = || "must look like MAX/MS, e.g. 100/1000".to_owned();
    let (max, ms) = v.split_once('/').ok_or_else(bad)?;
    let max: u32 = max.trim().parse().map_err(|_| bad())?;
    let ms: u64 = ms.trim().parse().map_err(|_| bad())?;
    if max == 0 || ms == 0 {
        return Err("MAX and MS must both be at least 1, e.g. 100/1000".to_owned());
    }
    Ok((max, Duration::from_millis(ms)))
}

/// One `--type-limit TYPE=N`, as clap's value parser; N below 1 counts as 1.
pub fn parse_type_limit(s: &str) -> Result<(JobType, usize), String> {
    let (t, n) = s
        .split_once('=')
        .ok_or_else(|| "must look like TYPE=N, e.g. event_ingestion=2".to_owned())?;
    let ty = JobType::parse(t.trim()).ok_or_else(|| {
        format!(
            "unknown job type {t:?}; TYPE is one of {}",
            JobType::names()
        )
    })?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| "N must be a number, e.g. event_ingestion=2".to_owned())?;
    Ok((ty, n.max(1)))
}

/// Kept here for callers of the old path; the function lives in [`crate::redact`].
pub use crate::redact::redact_url;

/// Where embedded state lives.
#[derive(Debug, Clone, Args)]
pub struct DataDirArgs {
    /// Directory for the embedded database, objects and the compiled-plugin cache.
    #[arg(long, env = "DROWL_DATA_DIR", default_value = ".drowl")]
    pub data_dir: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_and_networks_parse_with_clear_errors() {
        let kv = parse_key_values("--config", &["a=1".into(), "b==2".into()]).unwrap();
        assert_eq!(kv["a"], "1");
        assert_eq!(kv["b"], "=2");
        assert!(
            parse_key_values("--config", &["nope".into()])
                .unwrap_err()
                .to_string()
                .contains("key=value")
        );
        let n = parse_networks(&["127.0.0.0/8".into(), "::1".into()]).unwrap();
        assert_eq!(n.len(), 2);
        assert!(parse_networks(&["localhost".into()]).is_err());
    }

    #[test]
    fn only_a_whole_dollar_brace_value_is_read_from_the_environment() {
        // PATH is set wherever tests run; the name below is not.
        let path = std::env::var("PATH").expect("PATH is set");
        assert_eq!(expand_env("${PATH}"), Ok(path));
        assert_eq!(
            expand_env("${DROWL_TEST_SURELY_UNSET_VARIABLE}"),
            Err("environment variable DROWL_TEST_SURELY_UNSET_VARIABLE is not set".to_owned())
        );
        for literal in [
            "ghp_abc", "pa$$word", "$PATH", "x${PATH}", "${PATH}x", "${PATH", "",
        ] {
            assert_eq!(expand_env(literal).as_deref(), Ok(literal));
        }
    }

    /// `run-plugin --config key=${VAR}` reads the environment and marks the key secret,
    /// so its value is redacted even where the manifest declares a plain string.
    #[test]
    fn config_from_the_environment_is_secret() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cmd {
            #[command(flatten)]
            sandbox: SandboxArgs,
        }
        let cmd = Cmd::parse_from(["x", "--config", "path=${PATH}", "--config", "plain=literal"]);
        let policy = cmd.sandbox.policy(Some("p")).unwrap();
        let p = &policy.plugins["p"];
        assert_eq!(p.config["path"], std::env::var("PATH").unwrap());
        assert_eq!(p.config["plain"], "literal");
        assert_eq!(p.secret_keys.iter().collect::<Vec<_>>(), ["path"]);
        let unset = Cmd::parse_from(["x", "--config", "t=${DROWL_TEST_SURELY_UNSET_VARIABLE}"]);
        assert_eq!(
            unset.sandbox.policy(Some("p")).unwrap_err().to_string(),
            "--config t: environment variable DROWL_TEST_SURELY_UNSET_VARIABLE is not set"
        );
    }
}
