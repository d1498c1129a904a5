//! The host side of each WIT interface a plugin imports, one module per interface.
//!
//! Everything a plugin can reach is decided here, once per plugin, in a [`PluginEnv`]:
//! its validated configuration and secrets, its key-value namespace, its object prefix
//! and its egress policy. Per-job state (counters, log lines, follow-up jobs) lives in a
//! [`JobScope`]. Host functions read both from the store's [`PluginState`]; none of them
//! takes a namespace, prefix or credential from the guest.
//!
//! [`PluginState`]: crate::runtime::PluginState

pub mod config;
pub mod http;
pub mod kv;
pub mod log;
pub mod objects;
pub mod queue;
pub mod redact;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::runtime::manifest::Manifest;
use crate::storage::{KvStore, ObjectStore};

pub use config::{ConfigError, ResolvedConfig};
pub use redact::Redactor;

/// Largest value the `kv` import accepts, in bytes.
pub const MAX_KV_VALUE_BYTES: usize = 1 << 20;
/// Largest object the `objects` import accepts, in bytes.
pub const MAX_OBJECT_BYTES: usize = 32 << 20;

/// What one loaded plugin is allowed to reach, fixed when the plugin is configured.
pub struct PluginEnv {
    /// The plugin's manifest id: its KV namespace and object prefix.
    pub plugin_id: String,
    /// The plugin's version, recorded on what it writes.
    pub plugin_version: String,
    /// Its validated configuration (secrets kept apart).
    pub config: ResolvedConfig,
    /// Redacts this plugin's secrets from its log lines and errors.
    pub redactor: Redactor,
    /// Key-value backend; the namespace is always `plugin_id`.
    pub kv: Arc<dyn KvStore>,
    /// Object backend; keys are always under `plugins/<plugin_id>/objects/`.
    pub objects: Arc<dyn ObjectStore>,
    /// Outbound HTTP policy and client for this plugin.
    pub egress: http::egress::EgressClient,
}

impl std::fmt::Debug for PluginEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEnv")
            .field("plugin_id", &self.plugin_id)
            .finish_non_exhaustive()
    }
}

impl PluginEnv {
    /// The KV namespace of this plugin. Host bookkeeping (cursors) uses namespaces that
    /// start with `drowl-host/`, which no plugin id can produce.
    pub fn kv_namespace(&self) -> &str {
        &self.plugin_id
    }
}

/// One line a plugin logged, kept with the job's result.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// `trace` to `error`.
    pub level: &'static str,
    /// The message, secrets redacted and control characters removed.
    pub message: String,
    /// Structured fields, redacted the same way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<(String, String)>,
}

/// A follow-up job requested through the `queue` import, enqueued only if the job completes.
#[derive(Debug, Clone, Serialize)]
pub struct FollowUp {
    /// drowl job type.
    #[serde(rename = "type")]
    pub job_type: String,
    /// Job name.
    pub name: String,
    /// Job input.
    pub input: serde_json::Value,
    /// Delay before it may run, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// drowl priority 0..10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
}

/// What a job used, reported with its result.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Wall-clock time of the job, in milliseconds.
    pub wall_ms: u64,
    /// Peak linear memory of the plugin instance, in bytes.
    pub peak_memory_bytes: u64,
    /// Fuel consumed, when fuel metering is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel_consumed: Option<u64>,
    /// Outbound HTTP requests sent.
    pub http_requests: u32,
    /// Bytes received in HTTP response bodies.
    pub http_bytes_in: u64,
    /// Bytes sent in HTTP request bodies.
    pub http_bytes_out: u64,
    /// Bytes the plugin returned to the host across all calls.
    pub bytes_from_plugin: u64,
    /// Objects written.
    pub objects_written: u32,
    /// Bytes of objects written.
    pub object_bytes_written: u64,
    /// Log lines the plugin wrote (including dropped ones).
    pub log_lines: u32,
}

/// Progress reports from the `queue.progress` import go here (the daemon forwards them to
/// the queue; `run-plugin` ignores them).
pub type ProgressSink = Arc<dyn Fn(u8) + Send + Sync>;

/// Per-job state that host functions update.
pub struct JobScope {
    /// The queue job id, for logs.
    pub job_id: String,
    /// When the job must be over; HTTP timeouts are capped by what is left.
    pub deadline: Instant,
    /// Lines logged so far (at most the budget's `max_log_lines`).
    pub logs: Vec<LogLine>,
    /// Maximum lines kept.
    pub max_log_lines: u32,
    /// Follow-up jobs to enqueue on completion.
    pub follow_ups: Vec<FollowUp>,
    /// Maximum follow-ups.
    pub max_follow_ups: u32,
    /// Counters.
    pub usage: Usage,
    /// This job's side of egress: request budget and records.
    pub egress: http::egress::EgressJob,
    /// Where progress reports go.
    pub progress: Option<ProgressSink>,
    /// Last progress reported.
    pub last_progress: Option<u8>,
}

impl std::fmt::Debug for JobScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobScope")
            .field("job_id", &self.job_id)
            .finish_non_exhaustive()
    }
}

impl JobScope {
    /// A fresh scope for one job.
    pub fn new(
        job_id: impl Into<String>,
        deadline: Instant,
        budget: &crate::runtime::Budget,
        egress: http::egress::EgressJob,
    ) -> Self {
        Self {
            job_id: job_id.into(),
            deadline,
            logs: Vec::new(),
            max_log_lines: budget.max_log_lines,
            follow_ups: Vec::new(),
            max_follow_ups: budget.max_follow_ups,
            usage: Usage::default(),
            egress,
            progress: None,
            last_progress: None,
        }
    }
}

/// Sorted map used for config values.
pub type ConfigMap = BTreeMap<String, String>;

/// The host itself failed while serving a plugin's call: a storage or network backend
/// panicked. The calling job ends as a trap whose message says it was drowl-host's fault.
#[derive(Debug, thiserror::Error)]
#[error(
    "drowl-host failed in {call} (a host bug, not the plugin's; retrying the job may work): {message}"
)]
pub struct HostFault {
    /// The import being served, e.g. `kv.get`.
    pub call: &'static str,
    /// The panic message.
    pub message: String,
}

/// Runs the backend part of a host function so that a panic in it ends only the calling
/// job. Without this the panic unwinds through wasmtime into whatever awaits the job and
/// takes that task (in the daemon, a worker slot and the job's lock renewal) down with it.
/// Asserting unwind safety is sound because a trapped job's store is dropped, never used
/// again.
pub(crate) async fn guarded<F: std::future::Future>(
    call: &'static str,
    f: F,
) -> wasmtime::Result<F::Output> {
    use futures::FutureExt as _;
    std::panic::AssertUnwindSafe(f)
        .catch_unwind()
        .await
        .map_err(|payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panicked".to_owned());
            wasmtime::Error::new(HostFault { call, message })
        })
}

/// Adds every drowl import to `linker`, implemented on [`crate::runtime::PluginState`].
pub fn add_to_linker(
    linker: &mut wasmtime::component::Linker<crate::runtime::PluginState>,
) -> wasmtime::Result<()> {
    use crate::runtime::bindings::host_api::HostApi;
    HostApi::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |s| s)
}

/// Used by `Manifest` consumers that need the env's view of the manifest.
pub fn declared_secret_keys(manifest: &Manifest) -> Vec<String> {
    manifest
        .config
        .iter()
        .filter(|f| f.field_type == crate::runtime::manifest::FieldType::Secret)
        .map(|f| f.key.clone())
        .collect()
}
