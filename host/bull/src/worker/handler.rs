//! What a host plugs into the worker (a [`JobHandler`], optionally a [`JobObserver`]) and
//! what it is handed while a job runs ([`ActiveJob`], [`JobInfo`], [`FailureInfo`],
//! [`CancelReason`]).
//!
//! Why a file of its own: this is the worker's whole public surface besides
//! [`Worker`](super::Worker) itself; the duties in the sibling files are private to it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::attempt::Slot;
use crate::defaults::JobDefaults;
use crate::error::{HandlerError, QueueError};
use crate::job::{JobId, JobOptions};
use crate::queue::Core;

/// What runs a job. Implement it with `async fn handle(&self, job: ActiveJob) -> …`.
///
/// Why a trait with one method: the host routes by job name/type itself; the worker only
/// needs "run this and tell me the result". The returned value becomes Bull's `returnvalue`
/// and what `job.finished()` resolves with.
pub trait JobHandler: Send + Sync + 'static {
    /// Run one attempt of a job. Watch [`ActiveJob::cancelled`] in long work: the worker
    /// cancels on lock loss, timeout and shutdown, and stops polling this future then.
    fn handle(&self, job: ActiveJob) -> impl Future<Output = Result<Value, HandlerError>> + Send;
}

/// Why a running job was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// The lock could not be renewed: another worker may own the job now; its result must
    /// not be reported.
    LockLost,
    /// `opts.timeout` elapsed; the attempt is failed with Bull's timeout message.
    Timeout,
    /// The worker is shutting down and the grace period is over; the job is released back
    /// to the wait list.
    Shutdown,
}

/// What is known about a job when it becomes active.
///
/// Why public: observers mirror job states elsewhere (drowl's Postgres `jobs` table) and
/// need the input, options and attempt count without another Redis read.
#[derive(Clone, Debug)]
pub struct JobInfo {
    /// The id.
    pub id: JobId,
    /// Job name (`__default__` when added without one); per-name limits key on it.
    pub name: String,
    /// Decoded `data` (a string when not JSON or when `preventParsingData` is set).
    pub data: Value,
    /// Decoded `opts`.
    pub opts: Value,
    /// Failed attempts before this one.
    pub attempts_made: u32,
    /// When the job was added (epoch ms).
    pub timestamp: Option<i64>,
    /// When this attempt started (epoch ms).
    pub processed_on: i64,
    /// The worker's defaults for this job's type (see
    /// [`Worker::with_job_defaults`](crate::Worker::with_job_defaults)), which fill the
    /// retry options the job left unset; `None`: Bull's own defaults.
    pub defaults: Option<JobDefaults>,
}

impl JobInfo {
    /// The options the job runs under: its stored `opts`, with [`JobInfo::defaults`]
    /// filling the retry options it left unset.
    #[must_use]
    pub fn options(&self) -> JobOptions {
        let opts = JobOptions::from_stored(&self.opts);
        match &self.defaults {
            Some(d) => d.apply(opts),
            None => opts,
        }
    }

    /// Attempts allowed: the job's own `attempts`, or the default (Bull's is 1).
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.options().max_attempts()
    }

    /// How long one attempt may run: the job's own `timeout`, or the default, if any.
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.options().attempt_timeout()
    }
}

/// How an attempt failed, for observers.
#[derive(Clone, Debug)]
pub struct FailureInfo {
    /// The `failedReason`.
    pub message: String,
    /// The handler's code, if any.
    pub code: Option<String>,
    /// The handler's details, if any.
    pub details: Option<Value>,
    /// Whether another attempt follows.
    pub will_retry: bool,
    /// Failed attempts including this one (Bull's `attemptsMade`).
    pub attempts_made: u32,
    /// Delay before the retry, when one follows after a delay.
    pub retry_delay: Option<Duration>,
    /// The attempt exceeded `opts.timeout`.
    pub timed_out: bool,
}

/// Hooks called as jobs move, so the host can mirror states (e.g. into Postgres).
///
/// Why async with no-op defaults: mirroring is I/O the worker should wait for (so the
/// mirror never runs ahead of Redis in the wrong order), and most users need only a few.
/// Hooks run on the job's task; keep them short.
pub trait JobObserver: Send + Sync + 'static {
    /// The job was taken (lock held), before the handler runs.
    fn on_active(&self, _job: &JobInfo) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// The job was moved to completed (or removed per removeOnComplete) under our lock.
    fn on_completed(&self, _job: &JobInfo, _result: &Value) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// An attempt failed; `failure.will_retry` tells whether the job goes back to
    /// delayed/wait or to failed.
    fn on_failed(&self, _job: &JobInfo, _failure: &FailureInfo) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// The lock was lost: nothing was recorded for this attempt; another worker may run it.
    fn on_lock_lost(&self, _job: &JobInfo) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// On shutdown, the job was released back to the wait list unfinished.
    fn on_released(&self, _job: &JobInfo) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// The handler postponed the job: it waits in `delayed` for `delay`, no attempt counted.
    fn on_postponed(&self, _job: &JobInfo, _delay: Duration) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// The stalled check found a job whose worker died: requeued, or failed when it stalled
    /// more than `max_stalled_count` times.
    fn on_stalled(&self, _job_id: &JobId, _failed: bool) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// An observer that does nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl JobObserver for NoopObserver {}

/// The job a handler runs: its fields, a cancellation signal, and progress/log reporting.
#[derive(Debug)]
pub struct ActiveJob {
    pub(super) info: Arc<JobInfo>,
    pub(super) slot: Arc<Slot>,
    pub(super) core: Core,
}

impl ActiveJob {
    /// The id.
    #[must_use]
    pub fn id(&self) -> &JobId {
        &self.info.id
    }

    /// The job name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The decoded data.
    #[must_use]
    pub fn data(&self) -> &Value {
        &self.info.data
    }

    /// The decoded options.
    #[must_use]
    pub fn opts(&self) -> &Value {
        &self.info.opts
    }

    /// Failed attempts before this one.
    #[must_use]
    pub fn attempts_made(&self) -> u32 {
        self.info.attempts_made
    }

    /// Everything known about the job.
    #[must_use]
    pub fn info(&self) -> &JobInfo {
        &self.info
    }

    /// A token cancelled on lock loss, timeout or shutdown; hand it to spawned work.
    #[must_use]
    pub fn cancellation_token(&self) -> CancellationToken {
        self.slot.cancel.clone()
    }

    /// Resolves when the attempt is cancelled.
    pub async fn cancelled(&self) {
        self.slot.cancel.cancelled().await;
    }

    /// Whether the attempt was cancelled.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.slot.cancel.is_cancelled()
    }

    /// Why the attempt was cancelled, once it is.
    #[must_use]
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.slot.reason.get().copied()
    }

    /// Report progress (HSET `progress` + publish on `P:progress`, as `job.progress()`).
    pub async fn progress(&self, value: Value) -> Result<(), QueueError> {
        self.core.progress(self.info.id.as_str(), &value).await
    }

    /// Append a line to the job's log (`job.log()`); returns the number of lines.
    pub async fn log(&self, row: &str) -> Result<u64, QueueError> {
        self.core.log(self.info.id.as_str(), row).await
    }
}
