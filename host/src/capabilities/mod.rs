//! The host side of each WIT interface a plugin imports, one folder per interface.
//!
//! Each interface is shaped the way wasmtime's own WASI crates are: a context struct
//! (`KvCtx`, ...) with what the interface needs for one job, a view trait (`KvView`)
//! through which a store's data hands out that context, a documented `add_to_linker`, and
//! the `Host` implementation, on the context itself, in `host.rs`. A host function
//! therefore sees only its own interface's state and can be tested without a wasmtime
//! `Store`. Every host call runs in a `tracing` span named `drowl.<iface>.<fn>` that
//! carries the plugin id and job id.
//!
//! What a plugin may reach is decided once per plugin, in a [`PluginEnv`]: its validated
//! configuration and secrets, its key-value namespace, its object prefix and its egress
//! policy. [`PluginState`] builds each interface's context from it for one job; none of
//! the host functions takes a namespace, prefix or credential from the guest.

pub mod config;
pub mod directory;
pub mod http;
pub mod kv;
pub mod log;
pub mod objects;
pub mod queue;
mod quota;
mod state;
mod tag;

use std::sync::Arc;

use serde::Serialize;

pub use crate::redact::Redactor;
pub use config::{ConfigError, ResolvedConfig};
pub use log::LogLine;
pub use queue::{FollowUp, FollowUpScope, ProgressSink};
pub use state::PluginState;
pub use tag::CallTag;

use crate::manifest::Manifest;
use crate::runtime::{Budget, CallError, Runtime, RuntimeError};
use crate::storage::{EventStore, KvStore, ObjectStore};

/// The runtime with drowl's imports linked: what every command runs plugins with.
pub type PluginRuntime = Runtime<PluginState>;
/// A plugin loaded into a [`PluginRuntime`].
pub type LoadedPlugin = crate::runtime::LoadedPlugin<PluginState>;
/// A live plugin instance running one job.
pub type PluginInstance = crate::runtime::PluginInstance<PluginState>;

/// What one loaded plugin is allowed to reach, fixed when the plugin is configured.
pub struct PluginEnv {
    /// The id the operator installed the plugin as (never taken from its manifest alone):
    /// its KV namespace and object prefix.
    pub plugin_id: String,
    /// The plugin's version, recorded on what it writes.
    pub plugin_version: String,
    /// Its validated configuration (secrets kept apart).
    pub config: Arc<ResolvedConfig>,
    /// Redacts this plugin's secrets from its log lines and errors.
    pub redactor: Arc<Redactor>,
    /// Key-value backend; the namespace is always `plugin_id`.
    pub kv: Arc<dyn KvStore>,
    /// Object backend; keys are always under `plugins/<plugin_id>/objects/`.
    pub objects: Arc<dyn ObjectStore>,
    /// Outbound HTTP policy and client for this plugin.
    pub egress: http::egress::EgressClient,
    /// Jobs for other plugins (or the host) this plugin may enqueue as follow-ups.
    pub follow_up_grants: Arc<[crate::policy::FollowUpGrant]>,
    /// Where `directory.find` reads identities: set only for identity plugins, the one
    /// world that imports `directory` (the loader refuses it anywhere else).
    pub identities: Option<Arc<dyn EventStore>>,
}

/// The job a store serves, as the capabilities need to know it.
pub struct JobScope<'a> {
    /// The queue job id.
    pub id: &'a str,
    /// How deep the job is in its lineage: 0 for a job the API enqueued.
    pub depth: u32,
    /// Where `queue.progress` reports go.
    pub progress: Option<ProgressSink>,
}

impl std::fmt::Debug for JobScope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobScope")
            .field("id", &self.id)
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
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

/// What a job used, reported with its result.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Wall-clock time of the job, in milliseconds.
    pub wall_ms: u64,
    /// Time instantiating the plugin took, in microseconds (part of `wall_ms`).
    pub instantiate_us: u64,
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
    /// Log lines dropped because the job's line or byte budget was spent.
    #[serde(skip_serializing_if = "is_zero")]
    pub log_lines_dropped: u32,
    /// The budgets the plugin ran into without the job failing, by name (`log-lines`,
    /// `log-bytes`, `kv-bytes`, `object-bytes`, `kv-bytes-per-plugin`,
    /// `object-bytes-per-plugin`): what an operator looks for when a plugin
    /// misbehaves but its jobs still complete.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<&'static str>,
}

// serde's `skip_serializing_if` passes a reference.
#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde passes a reference"
)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What a finished job leaves behind apart from its result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobReport {
    /// Resources used.
    pub usage: Usage,
    /// Lines the plugin logged (redacted).
    pub logs: Vec<LogLine>,
    /// Follow-up jobs to enqueue if the job completes.
    pub follow_ups: Vec<FollowUp>,
    /// Outbound requests made.
    pub requests: Vec<http::egress::RequestRecord>,
}

/// Adds every drowl import to `linker`, each served from its own context in
/// [`PluginState`].
pub fn add_to_linker(
    linker: &mut wasmtime::component::Linker<PluginState>,
) -> wasmtime::Result<()> {
    use wasmtime::component::HasSelf;
    // `types` declares only types; linking it lets components that import it resolve.
    crate::bindings::types::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    log::add_to_linker(linker)?;
    config::add_to_linker(linker)?;
    kv::add_to_linker(linker)?;
    objects::add_to_linker(linker)?;
    http::add_to_linker(linker)?;
    queue::add_to_linker(linker)?;
    directory::add_to_linker(linker)
}

impl Runtime<PluginState> {
    /// The runtime every command uses: WASI with nothing granted plus drowl's imports,
    /// and `describe` run with no backends and no grants.
    pub fn new(settings: &crate::runtime::EngineSettings) -> Result<Self, RuntimeError> {
        Runtime::build(settings, add_to_linker, state::describe_state)
    }

    /// Starts a job of `env`'s plugin: a fresh store with `budget` and each interface's
    /// context built for `job`.
    pub async fn instantiate(
        &self,
        plugin: &LoadedPlugin,
        env: Arc<PluginEnv>,
        job: JobScope<'_>,
        budget: &Budget,
    ) -> Result<PluginInstance, CallError> {
        self.instantiate_with(plugin, budget, |deadline| {
            PluginState::new(env, job, deadline, budget)
        })
        .await
    }
}

/// Used by `Manifest` consumers that need the env's view of the manifest.
pub fn declared_secret_keys(manifest: &Manifest) -> Vec<String> {
    manifest
        .config
        .iter()
        .filter(|f| f.field_type == crate::manifest::FieldType::Secret)
        .map(|f| f.key.clone())
        .collect()
}
