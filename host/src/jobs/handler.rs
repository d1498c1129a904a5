//! The one trait every plugin-backed job type implements, and what a job type gets to
//! work with.
//!
//! The [`Executor`](super::Executor) owns a job's life: it finds the plugin, lets the job
//! type [`prepare`](PluginJob::prepare) (input checks and reads that need no instance),
//! starts the instance, hands the job type a [`PluginCall`] for its calls, and concludes
//! the job with the instance's report whatever happened. A job type only says which
//! world it needs and what it does between the calls.

use std::future::Future;

use super::model::{JobFailure, JobRequest, PluginErrorKind};
use super::output::OutputScope;
use super::registry::ReadyPlugin;
use crate::bindings::types;
use crate::capabilities::PluginInstance;
use crate::runtime::Role;
use crate::storage::Storage;

/// A drowl job type that runs a plugin.
pub(crate) trait PluginJob: Sync {
    /// What [`prepare`](Self::prepare) hands to [`run`](Self::run).
    type Prepared: Send;

    /// The world the job's plugin must implement.
    fn role(&self) -> Role;

    /// What the job needs that `plugin` lacks ("an ingestion-plugin plugin"), for the
    /// failure naming both, or `None` when `plugin` can run it: by default, a plugin of
    /// [`Self::role`]'s world.
    fn lacks(&self, plugin: &ReadyPlugin) -> Option<String> {
        (plugin.role() != self.role()).then(|| format!("an {} plugin", self.role().world()))
    }

    /// The plugin used when the job's input names none.
    fn default_plugin(&self) -> Option<&'static str> {
        None
    }

    /// Checks the input and reads what the job needs before an instance exists, so a bad
    /// job costs no instantiation.
    fn prepare(
        &self,
        storage: &Storage,
        job: &JobRequest,
    ) -> impl Future<Output = Result<Self::Prepared, JobFailure>> + Send;

    /// Calls the plugin and stores what it returns, call after call; the output is the
    /// job's result (usage is added by the executor).
    fn run(
        &self,
        call: &mut PluginCall<'_>,
        prepared: Self::Prepared,
    ) -> impl Future<Output = Result<serde_json::Value, JobFailure>> + Send;
}

/// One job's plugin instance with what calling it needs.
pub(crate) struct PluginCall<'a> {
    /// The storage backends.
    pub(crate) storage: &'a Storage,
    /// The plugin, configured.
    pub(crate) plugin: &'a ReadyPlugin,
    /// The sources and platforms it may write for.
    pub(crate) scope: &'a OutputScope,
    /// The job.
    pub(crate) job: &'a JobRequest,
    /// The running instance.
    pub(crate) instance: &'a mut PluginInstance,
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
