//! What the operator decides: budgets, egress limits and per-plugin settings.
//!
//! Plain data, at the bottom of the module graph (it imports nothing from the crate): the
//! CLI fills it from flags and files, the jobs layer resolves it per plugin, and the
//! runtime and capabilities enforce it. Keeping it here lets every layer name the same
//! types without importing the layers that enforce them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Budgets for one job. The plugin's manifest requests them, the operator's configuration
/// caps them (see [`Budget::resolve`]), and the host enforces them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Linear memory per instance, in bytes. Default 256 MiB.
    pub max_memory_bytes: u64,
    /// Wall-clock time for the whole job. Default 60 s.
    pub timeout: Duration,
    /// Fuel per job when fuel is enabled on the engine. Default: none.
    pub fuel: Option<u64>,
    /// Table elements per table. Default 100,000.
    pub max_table_elements: usize,
    /// Instances, tables and memories per store. Default 16 each.
    pub max_instances: usize,
    /// Bytes a single call may pass from guest to host (wasmtime's hostcall fuel).
    /// Default 64 MiB.
    pub max_guest_to_host_bytes: usize,
    /// Events in one ingested page. Default 10,000.
    pub max_events_per_batch: usize,
    /// Bytes of raw payload in one ingested page. Default 64 MiB.
    pub max_batch_bytes: usize,
    /// Pages one ingestion job may fetch before it stops and leaves the rest to the
    /// next run. Default 100.
    pub max_pages_per_job: u32,
    /// Outbound HTTP requests per job. Default 1,000.
    pub max_http_requests: u32,
    /// Log lines kept per job; further lines are counted and dropped. Default 1,000.
    pub max_log_lines: u32,
    /// Follow-up jobs one job may enqueue. Default 100.
    pub max_follow_ups: u32,
    /// Bytes of log messages and fields kept per job; later lines are dropped and
    /// counted, and the job's usage names the `log-bytes` violation. Default 1 MiB.
    pub max_log_bytes: usize,
    /// Bytes of keys and values one job may write to key-value storage. Default 16 MiB.
    pub max_kv_bytes_per_job: u64,
    /// Bytes of objects one job may write. Default 256 MiB.
    pub max_object_bytes_per_job: u64,
    /// Bytes of keys and values one plugin may keep in key-value storage, all its jobs
    /// together. Each job asks the backend once, at its first write, what the plugin has
    /// stored, then counts its own writes against what is left, so concurrent jobs of one
    /// plugin may together exceed it by at most their number times
    /// `max_kv_bytes_per_job`. Default 64 MiB.
    pub max_kv_bytes_per_plugin: u64,
    /// Bytes of objects one plugin may keep under its prefix, all its jobs together; the
    /// same one-query-per-job rule and the same concurrency slack as
    /// `max_kv_bytes_per_plugin`. Default 1 GiB.
    pub max_object_bytes_per_plugin: u64,
    /// Longest `next-cursor` an ingestion plugin may return: the cursor is stored, sent
    /// back on every page and copied into the job's result. Default 64 KiB.
    pub max_cursor_bytes: usize,
    /// How deep follow-ups may nest: a job enqueued by a job enqueued by ... this many
    /// levels below the job the API enqueued. Default 3.
    pub max_follow_up_depth: u32,
    /// Follow-ups all the jobs descended from one API job may enqueue together, counted
    /// in Redis across daemons, so fan-out cannot grow exponentially. Default 1,000.
    pub max_follow_ups_per_lineage: u32,
    /// Resource handles (WASI streams, pollables, ...) a job may hold at once. Each one
    /// is a host-side allocation the guest creates with a single call, so without a cap
    /// a loop that never drops them grows host memory until the job's deadline. Plugins
    /// need a handful; default 10,000.
    pub max_resource_handles: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            max_memory_bytes: 256 << 20,
            timeout: Duration::from_secs(60),
            fuel: None,
            max_table_elements: 100_000,
            max_instances: 16,
            max_guest_to_host_bytes: 64 << 20,
            max_events_per_batch: 10_000,
            max_batch_bytes: 64 << 20,
            max_pages_per_job: 100,
            max_http_requests: 1_000,
            max_log_lines: 1_000,
            max_follow_ups: 100,
            max_log_bytes: 1 << 20,
            max_kv_bytes_per_job: 16 << 20,
            max_object_bytes_per_job: 256 << 20,
            max_kv_bytes_per_plugin: 64 << 20,
            max_object_bytes_per_plugin: 1 << 30,
            max_cursor_bytes: 64 << 10,
            max_follow_up_depth: 3,
            max_follow_ups_per_lineage: 1_000,
            max_resource_handles: 10_000,
        }
    }
}

impl Budget {
    /// The budget for a plugin: what it requested, never above the operator's caps.
    /// Anything it did not request gets the cap.
    #[must_use]
    pub fn resolve(
        caps: &Budget,
        requested_memory: Option<u64>,
        requested_timeout_ms: Option<u64>,
        requested_http: Option<u32>,
    ) -> Budget {
        let mut b = *caps;
        if let Some(m) = requested_memory {
            b.max_memory_bytes = m.min(caps.max_memory_bytes);
        }
        if let Some(t) = requested_timeout_ms {
            b.timeout = Duration::from_millis(t).min(caps.timeout);
        }
        if let Some(h) = requested_http {
            b.max_http_requests = h.min(caps.max_http_requests);
        }
        b
    }
}

/// Default time allowed to establish a TCP (and TLS) connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed for a whole exchange, body included.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on a response body: large enough for API pages, small enough that a
/// hostile server cannot exhaust the host's memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;
/// Default number of requests one job may send.
pub const DEFAULT_MAX_REQUESTS_PER_JOB: u32 = 1000;

/// Limits on every outbound exchange of a plugin, so a slow or hostile server (or a
/// looping plugin) costs bounded time, memory and traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressLimits {
    /// Time allowed to connect, per attempt; default [`DEFAULT_CONNECT_TIMEOUT`] (5 s).
    pub connect_timeout: Duration,
    /// Time allowed for a whole exchange, including reading the body; a request may ask
    /// for less, never more. Default [`DEFAULT_TOTAL_TIMEOUT`] (30 s).
    pub total_timeout: Duration,
    /// Largest response body returned to the plugin; default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`] (16 MiB).
    pub max_response_bytes: u64,
    /// Requests one job may send, whatever their outcome; default
    /// [`DEFAULT_MAX_REQUESTS_PER_JOB`] (1000).
    pub max_requests_per_job: u32,
}

impl Default for EgressLimits {
    fn default() -> Self {
        EgressLimits {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            total_timeout: DEFAULT_TOTAL_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_requests_per_job: DEFAULT_MAX_REQUESTS_PER_JOB,
        }
    }
}

/// What the operator decides for every plugin.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// Caps on what plugins may request.
    pub caps: Budget,
    /// Limits on outbound HTTP.
    pub egress_limits: EgressLimits,
    /// Address ranges exempt from the private-address blocklist (empty by default).
    pub allowed_networks: Vec<ipnet::IpNet>,
    /// Origins granted to every plugin (`*` grants whatever each plugin declares).
    pub default_grants: Vec<String>,
    /// Event sources granted to every plugin that declares them (`--allow-source`); see
    /// [`PluginSettings::sources`].
    pub default_sources: Vec<String>,
    /// Identity platforms granted to every plugin (`--allow-platform`); see
    /// [`PluginSettings::platforms`].
    pub default_platforms: Vec<String>,
    /// Follow-up jobs every plugin may enqueue for other plugins (beside its own).
    pub default_follow_ups: Vec<FollowUpGrant>,
    /// Per-plugin settings, by plugin id: the id the operator installs a plugin as, never
    /// the one its manifest declares (see `jobs::install`).
    pub plugins: HashMap<String, PluginSettings>,
}

/// What the operator sets for one plugin.
#[derive(Debug, Clone, Default)]
pub struct PluginSettings {
    /// Configuration values (`--config key=value`).
    pub config: BTreeMap<String, String>,
    /// Keys of `config` whose values are redacted from everything the plugin writes,
    /// whatever its manifest calls them: values read from the environment (`${VAR}`) and
    /// keys the operator lists as secrets. A manifest that declares a token a plain
    /// string must not decide that the token may be printed.
    pub secret_keys: BTreeSet<String>,
    /// The file in the plugins directory this id is installed from, when the operator
    /// pins it; otherwise the file whose name makes this id.
    pub file: Option<String>,
    /// The SHA-256 (hex) that file must have, when the operator pins it.
    pub sha256: Option<String>,
    /// Extra origins granted to this plugin.
    pub grants: Vec<String>,
    /// Event sources granted to this plugin (plugins.json `sources`). A source its
    /// manifest declares is its own while no other installed plugin declares it too; a
    /// source several installed plugins declare may be emitted only by those it is
    /// granted to, so an operator decides which connector speaks for it. Each must be a
    /// source the manifest declares.
    pub sources: Vec<String>,
    /// Identity platforms granted to this plugin (plugins.json `platforms`). A plugin
    /// reports identities (actors, observations, links) for the platforms of its own
    /// sources; any other platform must be granted here.
    pub platforms: Vec<String>,
    /// Follow-up jobs this plugin may enqueue for other plugins.
    pub follow_ups: Vec<FollowUpGrant>,
}

impl PluginSettings {
    /// The values the operator marked secret (see [`Self::secret_keys`]).
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.secret_keys
            .iter()
            .filter_map(|k| self.config.get(k).map(String::as_str))
    }
}

/// A follow-up job a plugin may enqueue for someone other than itself: a job type and
/// the plugin it addresses, each `*` for any, written `TYPE:PLUGIN`
/// (`keyword_extraction:keywords`).
///
/// A plugin may always enqueue jobs for itself. Anything else is the operator's grant:
/// without it a plugin could make another plugin act with that plugin's credentials on
/// input of the first plugin's choosing (a confused deputy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpGrant {
    /// The drowl job type, or `*`.
    pub job_type: String,
    /// The plugin id the job addresses (`host` for job types no plugin runs), or `*`.
    pub plugin: String,
}

impl FollowUpGrant {
    /// Whether this grant allows a `job_type` job addressed to `plugin`.
    pub fn allows(&self, job_type: &str, plugin: &str) -> bool {
        (self.job_type == "*" || self.job_type == job_type)
            && (self.plugin == "*" || self.plugin == plugin)
    }
}

impl std::str::FromStr for FollowUpGrant {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "follow-up grant {s:?} must look like TYPE:PLUGIN, e.g. keyword_extraction:keywords (`*` for any)"
            )
        };
        let (job_type, plugin) = s.split_once(':').ok_or_else(bad)?;
        let (job_type, plugin) = (job_type.trim(), plugin.trim());
        if job_type.is_empty() || plugin.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            job_type: job_type.to_owned(),
            plugin: plugin.to_owned(),
        })
    }
}
