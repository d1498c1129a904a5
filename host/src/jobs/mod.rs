//! What each drowl job does, independent of where it came from.
//!
//! `drowl-host run-plugin` and the daemon both hand a [`JobRequest`] to the
//! [`Executor`], which routes it by type to one module per job type: [`ingest`],
//! [`enrich`] (keyword extraction, and identity resolution by a 0.1.0 enrichment plugin),
//! [`resolve`] (identity resolution by an identity plugin, contract 0.2.0), [`webhook`]
//! (an `event_ingestion` job for a stored webhook delivery, contract 0.2.0) and
//! [`export`].
//! Each implements one trait (`handler::PluginJob`); the executor owns what every job
//! shares: finding the plugin, starting its instance, and concluding the job with the
//! instance's report. `identity_resolution` jobs naming two identities instead of a
//! plugin (a person linking them by hand) are handled by the host alone, in `link`, and
//! so are `analytics` jobs named `daily-metrics` (set-based SQL rollups), in `analytics`.
//! Results are stored through the [`crate::storage`] traits. The
//! executor never talks to the queue: retries, backoff and locks are the caller's
//! business, told through [`JobFailure::retry`].

pub mod analytics;
pub mod catalog;
pub mod enrich;
mod events;
pub mod export;
mod handler;
pub mod ids;
pub mod ingest;
pub mod install;
mod link;
pub mod model;
pub mod output;
mod page;
pub mod registry;
pub mod resolve;
pub mod text;
pub mod webhook;

use std::sync::Arc;

use handler::{PluginCall, PluginJob};

use crate::capabilities::{JobScope, PluginRuntime, ProgressSink};
use crate::runtime::Role;
use crate::storage::Storage;

pub use analytics::AnalyticsSettings;
pub use install::{InstallError, InstallPlan};
pub use model::{CompletedJob, FailedJob, JobFailure, JobRequest, JobType, PluginErrorKind, Retry};
pub use registry::{
    HostPolicy, PluginSettings, ReadyPlugin, Registry, RegistryError, SharedRegistry,
};

/// Runs jobs against installed plugins and storage.
#[derive(Debug, Clone)]
pub struct Executor {
    runtime: PluginRuntime,
    storage: Storage,
    registry: SharedRegistry,
    analytics: AnalyticsSettings,
}

impl Executor {
    /// An executor over these plugins and backends.
    pub fn new(runtime: PluginRuntime, storage: Storage, registry: Registry) -> Self {
        Self {
            runtime,
            storage,
            registry: SharedRegistry::new(registry),
            analytics: AnalyticsSettings::default(),
        }
    }

    /// An executor whose plugins are `registry`, replaced while it runs by whoever else
    /// holds it (the daemon's [`catalog::Catalog`]).
    pub fn from_shared(runtime: PluginRuntime, storage: Storage, registry: SharedRegistry) -> Self {
        Self {
            runtime,
            storage,
            registry,
            analytics: AnalyticsSettings::default(),
        }
    }

    /// The operator's settings for `daily-metrics` jobs (default: 366 days at most, UTC
    /// days).
    #[must_use]
    pub fn with_analytics(mut self, settings: AnalyticsSettings) -> Self {
        self.analytics = settings;
        self
    }

    /// The plugin a job names or would run by default (`input.pluginId`, as drowl's API
    /// spells it), or `None` for the jobs the host computes itself; for metrics, which
    /// label by plugin before the job has run. Kept next to [`Self::execute`]'s routing.
    pub fn named_plugin<'a>(&self, job: &'a JobRequest) -> Option<&'a str> {
        plugin_named_by(job)
    }

    /// The installed plugins, as they are now.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.current()
    }

    /// The installed plugins, shared: replaced while the daemon runs
    /// ([`catalog::Catalog`]; a job in progress keeps the plugin it started with), and
    /// read by the daemon's HTTP surface, which looks up the plugin a webhook delivery is
    /// posted to.
    pub fn shared_registry(&self) -> SharedRegistry {
        self.registry.clone()
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
            // A webhook delivery the daemon stored: handed to the plugin that received it.
            JobType::EventIngestion if webhook::is_delivery_job(job) => {
                self.run(&webhook::HandleDelivery, job, progress).await
            }
            JobType::EventIngestion => self.run(&ingest::Ingest, job, progress).await,
            JobType::KeywordExtraction => {
                let keywords = enrich::Enrich {
                    default_plugin: Some("keywords"),
                };
                self.run(&keywords, job, progress).await
            }
            // A person linking two identities by hand: the host writes the link itself.
            JobType::IdentityResolution if link::is_link_request(job) => {
                link::run(&self.storage, job).await
            }
            // Otherwise a plugin resolves: an identity plugin (0.2.0; `identity` unless
            // the job names another), or a 0.1.0 enrichment plugin the job names.
            JobType::IdentityResolution => {
                let named = job.input_str("pluginId").unwrap_or("identity");
                if self.registry.current().role_of(named) == Some(Role::Enrichment) {
                    let identities = enrich::Enrich {
                        default_plugin: None,
                    };
                    self.run(&identities, job, progress).await
                } else {
                    self.run(&resolve::Resolve, job, progress).await
                }
            }
            JobType::DataExport => self.run(&export::Export, job, progress).await,
            // drowl's daily rollups: computed by the host in SQL, no plugin.
            JobType::Analytics if job.name == analytics::DAILY_METRICS => {
                analytics::run(&self.storage, &self.analytics, job).await
            }
            other => Err(FailedJob::from(JobFailure::Unsupported(format!(
                "this drowl-host has no handler for {} jobs{}",
                other.as_str(),
                match other {
                    JobType::Analytics => format!(
                        " named `{}`; the host computes `{}` only",
                        job.name,
                        analytics::DAILY_METRICS
                    ),
                    _ => String::new(),
                }
            )))),
        }
    }

    /// Runs one plugin-backed job: finds its plugin, lets the job type prepare, starts
    /// the instance, lets the job type call it, and concludes with the instance's report
    /// whatever the outcome.
    async fn run<J: PluginJob>(
        &self,
        kind: &J,
        job: &JobRequest,
        progress: Option<ProgressSink>,
    ) -> Result<CompletedJob, FailedJob> {
        // One read of the registry per job: the plugin found here is the one the job
        // runs to its end, whatever is upgraded or disabled meanwhile.
        let registry = self.registry.current();
        let plugin = plugin_for(&registry, job, kind.default_plugin(), kind)?;
        let scope = registry.scope(&plugin);
        drop(registry);
        let prepared = kind.prepare(&self.storage, job).await?;
        let mut instance = plugin
            .instantiate(
                &self.runtime,
                JobScope {
                    id: &job.id,
                    depth: job.lineage.depth,
                    progress,
                },
            )
            .await
            .map_err(|e| FailedJob::from(JobFailure::from(e)))?;
        let mut call = PluginCall {
            storage: &self.storage,
            plugin: &plugin,
            scope: &scope,
            job,
            instance: &mut instance,
        };
        let result = kind.run(&mut call, prepared).await;
        conclude(instance, result, &plugin.env.redactor)
    }
}

/// Finds the plugin a job names in `input.pluginId` (or `default`), one `kind` can run.
fn plugin_for<J: PluginJob>(
    registry: &Registry,
    job: &JobRequest,
    default: Option<&str>,
    kind: &J,
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
    let plugin = registry
        .addressed(id)
        .ok_or_else(|| match registry.unavailable(id) {
            // Known but not running (disabled, removed, failed to load): say so, and
            // what brings it back; the job stays failed in the queue, to be retried.
            Some(reason) => JobFailure::PluginNotFound(format!("plugin `{id}` {reason}")),
            None => {
                let installed = registry.ids();
                JobFailure::PluginNotFound(format!(
                    "plugin `{id}` is not installed; installed plugins: {}",
                    if installed.is_empty() {
                        "none".into()
                    } else {
                        installed.join(", ")
                    }
                ))
            }
        })?;
    if let Some(needed) = kind.lacks(&plugin) {
        return Err(JobFailure::PluginNotFound(format!(
            "plugin `{id}` implements {}, but {} jobs need {needed}",
            plugin.loaded.world(),
            job.job_type.as_str(),
        )));
    }
    Ok(plugin)
}

/// The plugin a job names or would run by default (see [`Executor::named_plugin`]), for
/// those that have no executor at hand: the dashboard labels queued jobs with it.
pub fn plugin_named_by(job: &JobRequest) -> Option<&str> {
    match job.job_type {
        JobType::KeywordExtraction => job.input_str("pluginId").or(Some("keywords")),
        JobType::IdentityResolution if link::is_link_request(job) => None,
        JobType::IdentityResolution => job.input_str("pluginId").or(Some("identity")),
        JobType::EventIngestion | JobType::DataExport => job.input_str("pluginId"),
        _ => None,
    }
}

/// Ends a plugin job: collects the instance's report and attaches it (with usage added
/// to the output) to the result.
///
/// The plugin's secrets are masked in the output and the failure message, whatever
/// put them there (an invalid-output message quotes what the plugin returned, an export
/// location is the plugin's own text): both reach `run-plugin`'s stdout, Bull's
/// `returnvalue` and `failedReason`, and the `jobs` table. Logs are redacted as they
/// are written; follow-ups carrying a secret are refused when enqueued.
fn conclude(
    instance: crate::capabilities::PluginInstance,
    result: Result<serde_json::Value, JobFailure>,
    secrets: &crate::redact::Redactor,
) -> Result<CompletedJob, FailedJob> {
    let report = instance.finish();
    match result {
        Ok(mut output) => {
            let continuation = output
                .as_object_mut()
                .and_then(|o| o.remove(model::CONTINUATION_KEY))
                .filter(serde_json::Value::is_object);
            mask_json(&mut output, secrets);
            if output.is_object() {
                output["usage"] = serde_json::to_value(&report.usage).unwrap_or_default();
            }
            Ok(CompletedJob {
                output,
                report: Some(report),
                continuation,
            })
        }
        Err(failure) => Err(FailedJob {
            failure: failure.redact(secrets),
            report: Some(Box::new(report)),
        }),
    }
}

/// Masks secrets in every string of a JSON document, object keys included.
fn mask_json(v: &mut serde_json::Value, secrets: &crate::redact::Redactor) {
    if secrets.is_empty() {
        return;
    }
    match v {
        serde_json::Value::String(s) => {
            if let std::borrow::Cow::Owned(masked) = secrets.mask(s) {
                *s = masked;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|v| mask_json(v, secrets)),
        serde_json::Value::Object(o) => {
            *o = std::mem::take(o)
                .into_iter()
                .map(|(k, mut v)| {
                    mask_json(&mut v, secrets);
                    (secrets.mask(&k).into_owned(), v)
                })
                .collect();
        }
        _ => {}
    }
}
