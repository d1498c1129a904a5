//! What each drowl job does, independent of where it came from.
//!
//! `drowl-host run-plugin` and the daemon both hand a [`JobRequest`] to the
//! [`Executor`], which routes it by type: ingestion, keyword extraction and export run
//! plugins; the result is stored through the [`crate::storage`] traits. The executor
//! never talks to the queue: retries, backoff and locks are the caller's business, told
//! through [`JobFailure::retry`].

pub mod enrich;
pub mod export;
pub mod ids;
pub mod ingest;
pub mod model;
pub mod registry;

use std::sync::Arc;

use crate::capabilities::ProgressSink;
use crate::runtime::bindings::types;
use crate::runtime::{Role, Runtime};
use crate::storage::Storage;

pub use model::{CompletedJob, FailedJob, JobFailure, JobRequest, JobType, PluginErrorKind, Retry};
pub use registry::{HostPolicy, PluginSettings, ReadyPlugin, Registry, RegistryError};

/// Runs jobs against installed plugins and storage.
#[derive(Debug, Clone)]
pub struct Executor {
    runtime: Runtime,
    storage: Storage,
    registry: Arc<Registry>,
}

impl Executor {
    /// An executor over these plugins and backends.
    pub fn new(runtime: Runtime, storage: Storage, registry: Registry) -> Self {
        Self {
            runtime,
            storage,
            registry: Arc::new(registry),
        }
    }

    /// The installed plugins.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The storage backends.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Runs one job.
    pub async fn execute(
        &self,
        job: &JobRequest,
        progress: Option<ProgressSink>,
    ) -> Result<CompletedJob, FailedJob> {
        match job.job_type {
            JobType::EventIngestion => {
                let plugin = self.plugin_for(job, None, Role::Ingestion)?;
                ingest::run(&self.runtime, &self.storage, &plugin, job, progress).await
            }
            JobType::KeywordExtraction => {
                let plugin = self.plugin_for(job, Some("keywords"), Role::Enrichment)?;
                enrich::run(&self.runtime, &self.storage, &plugin, job, progress).await
            }
            JobType::IdentityResolution if job.input_str("pluginId").is_some() => {
                let plugin = self.plugin_for(job, None, Role::Enrichment)?;
                enrich::run(&self.runtime, &self.storage, &plugin, job, progress).await
            }
            JobType::DataExport => {
                let plugin = self.plugin_for(job, None, Role::Export)?;
                export::run(&self.runtime, &self.storage, &plugin, job, progress).await
            }
            other => Err(FailedJob::from(JobFailure::Unsupported(format!(
                "this drowl-host has no handler for {} jobs{}",
                other.as_str(),
                if other == JobType::IdentityResolution {
                    " without `input.pluginId` (name an enrichment plugin that resolves identities)"
                } else {
                    ""
                }
            )))),
        }
    }

    /// Finds the plugin a job names in `input.pluginId` (or `default`), of the right role.
    fn plugin_for(
        &self,
        job: &JobRequest,
        default: Option<&str>,
        role: Role,
    ) -> Result<Arc<ReadyPlugin>, JobFailure> {
        let id = match job.input_str("pluginId").or(default) {
            Some(id) => id,
            None => {
                return Err(JobFailure::InvalidJob(format!(
                    "{} jobs must name their plugin in `input.pluginId`",
                    job.job_type.as_str()
                )));
            }
        };
        // drowl's API writes ids like `github-plugin`; accept the bare id too.
        let plugin = self
            .registry
            .get(id)
            .or_else(|| {
                id.strip_suffix("-plugin")
                    .and_then(|bare| self.registry.get(bare))
            })
            .ok_or_else(|| {
                let installed = self.registry.ids();
                JobFailure::PluginNotFound(format!(
                    "plugin `{id}` is not installed; installed plugins: {}",
                    if installed.is_empty() {
                        "none".into()
                    } else {
                        installed.join(", ")
                    }
                ))
            })?;
        if plugin.role() != role {
            return Err(JobFailure::PluginNotFound(format!(
                "plugin `{id}` implements {}, but {} jobs need an {} plugin",
                plugin.role().world(),
                job.job_type.as_str(),
                role.world()
            )));
        }
        Ok(plugin)
    }
}

/// Starts a plugin instance for a job, with the plugin's budget.
pub(crate) async fn start(
    runtime: &Runtime,
    plugin: &ReadyPlugin,
    job: &JobRequest,
    progress: Option<ProgressSink>,
) -> Result<crate::runtime::PluginInstance, FailedJob> {
    runtime
        .instantiate(
            &plugin.loaded,
            plugin.env.clone(),
            &job.id,
            &plugin.budget,
            progress,
        )
        .await
        .map_err(|e| FailedJob::from(JobFailure::from(e)))
}

/// Ends a plugin job: collects the instance's report and attaches it (with usage added
/// to the output) to the result.
pub(crate) fn conclude(
    instance: crate::runtime::PluginInstance,
    result: Result<serde_json::Value, JobFailure>,
) -> Result<CompletedJob, FailedJob> {
    let report = instance.finish();
    match result {
        Ok(mut output) => {
            if output.is_object() {
                output["usage"] = serde_json::to_value(&report.usage).unwrap_or_default();
            }
            Ok(CompletedJob {
                output,
                report: Some(report),
            })
        }
        Err(failure) => Err(FailedJob {
            failure,
            report: Some(Box::new(report)),
        }),
    }
}

/// The job context every plugin call receives.
pub(crate) fn job_context(job: &JobRequest) -> types::JobContext {
    types::JobContext {
        job_id: job.id.clone(),
        job_type: job.job_type.as_str().to_owned(),
        name: job.name.clone(),
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        input: job.input.to_string(),
        idempotency_key: format!("{}:{}", job.job_type.as_str(), job.id),
    }
}

/// Turns a plugin's `job-error` into a failure, redacting its message.
pub(crate) fn plugin_failure(e: types::JobError, plugin: &ReadyPlugin) -> JobFailure {
    let clean = |m: &str| plugin.env.redactor.clean(m);
    match e {
        types::JobError::Retryable(i) => JobFailure::Plugin {
            kind: PluginErrorKind::Retryable,
            message: clean(&i.message),
            retry_after: i.retry_after_ms.map(std::time::Duration::from_millis),
        },
        types::JobError::RateLimited(i) => JobFailure::Plugin {
            kind: PluginErrorKind::RateLimited,
            message: clean(&i.message),
            retry_after: Some(std::time::Duration::from_millis(
                i.retry_after_ms.unwrap_or(60_000),
            )),
        },
        types::JobError::Permanent(m) => JobFailure::Plugin {
            kind: PluginErrorKind::Permanent,
            message: clean(&m),
            retry_after: None,
        },
        types::JobError::InvalidConfig(m) => JobFailure::Plugin {
            kind: PluginErrorKind::InvalidConfig,
            message: clean(&m),
            retry_after: None,
        },
    }
}
