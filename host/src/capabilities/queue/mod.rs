//! The `queue` interface: follow-up jobs and progress.
//!
//! Follow-ups are collected on the job and enqueued only when it completes, so a failed
//! attempt (which will be retried) leaves no orphan jobs behind.
//!
//! A plugin may enqueue jobs for itself; a job for another plugin (or for the host) only
//! as the operator grants ([`FollowUpGrant`]), and never deeper than the budget's
//! `max_follow_up_depth` below the job the API enqueued. The per-lineage total is
//! counted by the queue, across daemons.

mod host;

use std::sync::Arc;

use serde::Serialize;
use wasmtime::component::{HasData, Linker};

use super::CallTag;
use crate::bindings::host_api::drowl::plugin::queue as wit;
use crate::policy::FollowUpGrant;
use crate::redact::Redactor;

/// Job types a plugin may enqueue: drowl's own.
pub const JOB_TYPES: &[&str] = &[
    "event_ingestion",
    "identity_resolution",
    "keyword_extraction",
    "analytics",
    "report_generation",
    "data_export",
    "cleanup",
    "custom",
];

/// Largest follow-up input accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

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

/// Progress reports from the `queue.progress` import go here (the daemon forwards them to
/// the queue; `run-plugin` ignores them).
pub type ProgressSink = Arc<dyn Fn(u8) + Send + Sync>;

/// Job types that run a plugin named by `input.pluginId`, and the plugin each uses when
/// the input names none (`None`: the job must name one).
pub const PLUGIN_JOB_TYPES: &[(&str, Option<&str>)] = &[
    ("event_ingestion", None),
    ("keyword_extraction", Some("keywords")),
    ("identity_resolution", None),
    ("data_export", None),
];

/// What limits follow-ups of one job beyond their count.
#[derive(Debug, Clone, Default)]
pub struct FollowUpScope {
    /// How deep the job itself is: 0 for a job the API enqueued, 1 for its follow-ups, ...
    pub depth: u32,
    /// The deepest a follow-up may be.
    pub max_depth: u32,
    /// Jobs for other plugins (or the host) the operator lets this plugin enqueue.
    pub grants: Arc<[FollowUpGrant]>,
}

/// The `queue` interface's state for one job.
pub struct QueueCtx {
    pub(crate) tag: CallTag,
    scope: FollowUpScope,
    max_follow_ups: u32,
    /// Follow-up jobs to enqueue on completion.
    pub(crate) follow_ups: Vec<FollowUp>,
    progress: Option<ProgressSink>,
    last_progress: Option<u8>,
    /// The plugin's secrets, which no follow-up may carry (see
    /// [`with_secrets`](Self::with_secrets)).
    secrets: Arc<Redactor>,
}

impl std::fmt::Debug for QueueCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueCtx")
            .field("job", &self.tag.job)
            .field("follow_ups", &self.follow_ups.len())
            .finish_non_exhaustive()
    }
}

impl QueueCtx {
    /// A context that accepts at most `max_follow_ups` follow-ups within `scope` and
    /// forwards progress to `progress`.
    pub fn new(
        tag: CallTag,
        max_follow_ups: u32,
        scope: FollowUpScope,
        progress: Option<ProgressSink>,
    ) -> Self {
        Self {
            tag,
            scope,
            max_follow_ups,
            follow_ups: Vec::new(),
            progress,
            last_progress: None,
            secrets: Arc::default(),
        }
    }

    /// Refuses follow-ups whose name or input holds one of the secrets `redactor` knows,
    /// verbatim or encoded.
    ///
    /// Why refuse rather than mask: a follow-up is stored in Redis and in the `jobs`
    /// table, and shown by `run-plugin`; a masked input would run a different job than
    /// the plugin asked for. The plugin gets an error it can handle, and nothing leaves.
    #[must_use]
    pub fn with_secrets(mut self, redactor: Arc<Redactor>) -> Self {
        self.secrets = redactor;
        self
    }

    /// The follow-ups requested so far.
    pub fn follow_ups(&self) -> &[FollowUp] {
        &self.follow_ups
    }
}

/// Gives the `queue` host functions their context inside a store's data.
pub trait QueueView: Send {
    /// This store's `queue` context.
    fn queue(&mut self) -> &mut QueueCtx;
}

struct QueueImports;

impl HasData for QueueImports {
    type Data<'a> = &'a mut QueueCtx;
}

/// Adds `drowl:plugin/queue` to `linker`, served from each store's [`QueueCtx`].
pub fn add_to_linker<T: QueueView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, QueueImports>(linker, T::queue)
}
