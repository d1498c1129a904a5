//! The data of a store running one plugin job: the runtime's sandbox plus one context
//! per drowl interface, each built from the plugin's [`PluginEnv`] for this job.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use wasmtime_wasi::{WasiCtxView, WasiView};

use super::config::{ConfigCtx, ConfigView};
use super::directory::{DirectoryCtx, DirectoryView};
use super::http::egress::{EgressClient, EgressPolicy};
use super::http::{HttpCtx, HttpView};
use super::kv::{KvCtx, KvView};
use super::log::{LogCtx, LogView};
use super::objects::{ObjectsCtx, ObjectsView};
use super::queue::{FollowUpScope, QueueCtx, QueueView};
use super::{CallTag, JobReport, JobScope, PluginEnv, Usage};
use crate::runtime::{Budget, RunStats, Sandbox, StoreState};
use crate::storage::{KvStore, ObjectKey, ObjectStore, StorageError};

/// What a store holds for one plugin job.
pub struct PluginState {
    sandbox: Sandbox,
    env: Arc<PluginEnv>,
    log: LogCtx,
    config: ConfigCtx,
    kv: KvCtx,
    objects: ObjectsCtx,
    http: HttpCtx,
    queue: QueueCtx,
    directory: DirectoryCtx,
}

impl std::fmt::Debug for PluginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginState")
            .field("env", &self.env)
            .field("job", &self.log.tag.job)
            .finish_non_exhaustive()
    }
}

impl PluginState {
    /// The state of one job of `env`'s plugin: a fresh sandbox with `budget`, and each
    /// interface's context scoped to the plugin and to `job`, ending at `deadline`.
    pub fn new(env: Arc<PluginEnv>, job: JobScope<'_>, deadline: Instant, budget: &Budget) -> Self {
        let tag = CallTag::new(env.plugin_id.as_str(), job.id);
        let scope = FollowUpScope {
            depth: job.depth,
            max_depth: budget.max_follow_up_depth,
            grants: env.follow_up_grants.clone(),
        };
        Self {
            sandbox: Sandbox::new(budget),
            log: LogCtx::new(
                tag.clone(),
                env.redactor.clone(),
                budget.max_log_lines,
                budget.max_log_bytes,
            ),
            config: ConfigCtx::new(tag.clone(), env.config.clone()),
            kv: KvCtx::new(
                tag.clone(),
                env.kv.clone(),
                env.kv_namespace(),
                budget.max_kv_bytes_per_job,
            )
            .with_plugin_quota(budget.max_kv_bytes_per_plugin),
            objects: ObjectsCtx::new(
                tag.clone(),
                env.objects.clone(),
                budget.max_object_bytes_per_job,
            )
            .with_plugin_quota(budget.max_object_bytes_per_plugin),
            http: HttpCtx::new(tag.clone(), env.egress.clone(), deadline),
            directory: DirectoryCtx::new(tag.clone(), env.identities.clone()),
            queue: QueueCtx::new(tag, budget.max_follow_ups, scope, job.progress)
                .with_secrets(env.redactor.clone()),
            env,
        }
    }

    /// The plugin's environment.
    pub fn env(&self) -> &PluginEnv {
        &self.env
    }

    /// The job's `directory` context: what it was shown.
    pub fn directory_mut(&mut self) -> &mut DirectoryCtx {
        &mut self.directory
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.sandbox.wasi()
    }
}

impl StoreState for PluginState {
    type Report = JobReport;

    fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    fn sandbox_mut(&mut self) -> &mut Sandbox {
        &mut self.sandbox
    }

    fn redact(&self, text: &str) -> String {
        self.env.redactor.clean(text)
    }

    fn into_report(self, stats: RunStats) -> JobReport {
        let egress = self.http.job.usage();
        let usage = Usage {
            wall_ms: stats.wall_ms,
            instantiate_us: stats.instantiate_us,
            peak_memory_bytes: stats.peak_memory_bytes,
            fuel_consumed: stats.fuel_consumed,
            http_requests: egress.requests,
            http_bytes_in: egress.bytes_in,
            http_bytes_out: egress.bytes_out,
            bytes_from_plugin: stats.bytes_from_plugin,
            objects_written: self.objects.written,
            object_bytes_written: self.objects.quota.written,
            log_lines: self.log.written,
            log_lines_dropped: self.log.dropped,
            violations: self
                .log
                .violations
                .iter()
                .copied()
                .chain(self.kv.quota.job_hit.then_some("kv-bytes"))
                .chain(self.objects.quota.job_hit.then_some("object-bytes"))
                .chain(self.kv.quota.plugin_hit.then_some("kv-bytes-per-plugin"))
                .chain(
                    self.objects
                        .quota
                        .plugin_hit
                        .then_some("object-bytes-per-plugin"),
                )
                .collect(),
        };
        JobReport {
            usage,
            requests: self.http.job.records(),
            logs: self.log.lines,
            follow_ups: self.queue.follow_ups,
        }
    }
}

impl LogView for PluginState {
    fn log(&mut self) -> &mut LogCtx {
        &mut self.log
    }
}

impl ConfigView for PluginState {
    fn config(&mut self) -> &mut ConfigCtx {
        &mut self.config
    }
}

impl KvView for PluginState {
    fn kv(&mut self) -> &mut KvCtx {
        &mut self.kv
    }
}

impl ObjectsView for PluginState {
    fn objects(&mut self) -> &mut ObjectsCtx {
        &mut self.objects
    }
}

impl HttpView for PluginState {
    fn http(&mut self) -> &mut HttpCtx {
        &mut self.http
    }
}

impl DirectoryView for PluginState {
    fn directory(&mut self) -> &mut DirectoryCtx {
        &mut self.directory
    }
}

impl QueueView for PluginState {
    fn queue(&mut self) -> &mut QueueCtx {
        &mut self.queue
    }
}

impl crate::bindings::types::Host for PluginState {}

/// The state `describe` runs in: no backends (every storage call fails), no grants, no
/// configuration, default budgets.
pub(super) fn describe_state(deadline: Instant) -> PluginState {
    let budget = Budget::default();
    let job = JobScope {
        id: "describe",
        depth: 0,
        progress: None,
    };
    PluginState::new(describe_env(), job, deadline, &budget)
}

/// Backends for `describe`, which must not touch state: every operation fails.
struct NoBackend;

fn unavailable() -> StorageError {
    StorageError::Unavailable("not available during describe".into())
}

#[async_trait]
impl KvStore for NoBackend {
    async fn get(&self, _: &str, _: &str) -> crate::storage::Result<Option<Vec<u8>>> {
        Err(unavailable())
    }
    async fn set(&self, _: &str, _: &str, _: &[u8]) -> crate::storage::Result<()> {
        Err(unavailable())
    }
    async fn delete(&self, _: &str, _: &str) -> crate::storage::Result<()> {
        Err(unavailable())
    }
    async fn list_keys(&self, _: &str, _: &str, _: u32) -> crate::storage::Result<Vec<String>> {
        Err(unavailable())
    }
    async fn namespace_bytes(&self, _: &str) -> crate::storage::Result<u64> {
        Err(unavailable())
    }
}

#[async_trait]
impl ObjectStore for NoBackend {
    async fn put(&self, _: &ObjectKey, _: bytes::Bytes, _: &str) -> crate::storage::Result<()> {
        Err(unavailable())
    }
    async fn get(&self, _: &ObjectKey) -> crate::storage::Result<Option<bytes::Bytes>> {
        Err(unavailable())
    }
    async fn prefix_bytes(&self, _: &str) -> crate::storage::Result<u64> {
        Err(unavailable())
    }
    fn describe(&self, key: &ObjectKey) -> String {
        key.to_string()
    }
    async fn ping(&self) -> crate::storage::Result<()> {
        Err(unavailable())
    }
    fn backend(&self) -> String {
        "no store (describe)".to_owned()
    }
}

fn describe_env() -> Arc<PluginEnv> {
    let policy = EgressPolicy::new(
        &[],
        &[],
        &Default::default(),
        Vec::new(),
        Default::default(),
    )
    .unwrap_or_else(|_| unreachable!("an empty policy is always valid"));
    #[allow(
        clippy::expect_used,
        reason = "building a client with no origins cannot fail"
    )]
    let egress = EgressClient::new(policy).expect("empty egress client");
    Arc::new(PluginEnv {
        plugin_id: "describe".into(),
        plugin_version: "0.0.0".into(),
        config: Default::default(),
        redactor: Default::default(),
        kv: Arc::new(NoBackend),
        objects: Arc::new(NoBackend),
        egress,
        follow_up_grants: Arc::from(Vec::new()),
        identities: None,
    })
}
