//! The daemon's side of drowl's Bull queue.
//!
//! [`drowl_bull`] speaks the Bull 4 protocol (locks, stalled checks, delayed promotion,
//! repeat scheduling, retries). This module plugs drowl into it: [`DrowlHandler`] turns a
//! Bull job into a [`JobRequest`], applies per-type concurrency limits, runs it on the
//! [`Executor`], enqueues its follow-ups, and maps failures onto Bull's retry semantics;
//! [`Mirror`] writes each state change into drowl's `jobs` table.

pub mod activity;
pub mod defaults;
pub mod metrics;
pub mod mirror;
pub mod schedules;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use drowl_bull::{ActiveJob, HandlerError, JobHandler, JobInfo, JobOptions, JobState, Queue};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::jobs::{Executor, JobRequest, JobType, Retry};
use crate::storage::{JobStatus, JobStore, StorageError};
pub use defaults::{JobDefaultsError, JobDefaultsOverride, TypeDefaults};
pub use mirror::{Mirror, MirrorWriter};

/// A job the daemon is running, for the status page.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveEntry {
    /// Queue job id.
    pub id: String,
    /// drowl job type.
    pub job_type: String,
    /// Job name.
    pub name: String,
    /// Attempt number (1-based).
    pub attempt: u32,
    /// When it started (RFC 3339).
    pub started_at: String,
}

/// Counters and running jobs, shared with the HTTP status page.
///
/// The counters are bumped by [`Mirror`] once Redis has accepted the outcome, not when a
/// plugin returns: a result refused because the lock was lost must not be counted as done.
#[derive(Debug, Default)]
pub struct DaemonStats {
    /// Jobs running now, by attempt (a job id can be running twice here for a moment: an
    /// attempt that lost its lock, and a new job that reuses the id after Redis lost data).
    pub active: Mutex<HashMap<u64, ActiveEntry>>,
    /// Numbers the attempts for `active`.
    pub attempts: AtomicU64,
    /// Jobs completed since start.
    pub completed: AtomicU64,
    /// Attempts failed since start (retried or not).
    pub failed: AtomicU64,
    /// Attempts abandoned because the job's lock was lost (another worker may run it).
    pub lock_lost: AtomicU64,
    /// Jobs released unfinished to the wait list at shutdown.
    pub released: AtomicU64,
    /// Where the Bull worker loop is: `GET /health` reports a worker that no longer takes
    /// jobs, although its HTTP server still answers.
    pub worker: WorkerLoop,
    /// Jobs given back to `delayed` because their type's limit was full.
    pub postponed: AtomicU64,
    /// What `GET /metrics` exposes.
    pub metrics: metrics::Metrics,
    /// Per-minute counts and the latest attempts' usage and egress, for `/ui`.
    pub activity: activity::Activity,
}

/// Where this process's Bull worker loop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerPhase {
    /// Not taking jobs yet (start-up).
    Starting,
    /// Taking jobs.
    Running,
    /// Shutting down: no new jobs, running ones finish within the grace period.
    Stopping,
    /// The loop has returned.
    Stopped,
}

impl WorkerPhase {
    const ALL: [Self; 4] = [Self::Starting, Self::Running, Self::Stopping, Self::Stopped];

    /// How `GET /health` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        }
    }
}

/// The worker loop's [`WorkerPhase`], shared between the task that runs it and the HTTP
/// handlers (an atomic: the handlers must never wait for the worker).
#[derive(Debug, Default)]
pub struct WorkerLoop(std::sync::atomic::AtomicU8);

impl WorkerLoop {
    /// Records the phase the loop has reached.
    pub fn set(&self, phase: WorkerPhase) {
        let n = WorkerPhase::ALL
            .iter()
            .position(|p| *p == phase)
            .unwrap_or(0);
        self.0.store(n as u8, Ordering::Relaxed);
    }

    /// The phase last recorded ([`WorkerPhase::Starting`] until then).
    pub fn get(&self) -> WorkerPhase {
        WorkerPhase::ALL
            .get(usize::from(self.0.load(Ordering::Relaxed)))
            .copied()
            .unwrap_or(WorkerPhase::Starting)
    }
}

/// How long a job waits here for its type's limit before it is given back to the queue.
/// Waiting holds one of the worker's slots (and the job's lock); giving back costs a few
/// Redis round trips and lets any worker, this one included, take it later. A short wait
/// covers the common case of a permit freed a moment later.
const TYPE_LIMIT_WAIT: Duration = Duration::from_millis(500);

/// How long a job given back for its type's limit stays in `delayed`: one to two seconds,
/// spread so that jobs given back together do not all return at once.
fn type_limit_delay() -> Duration {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 1_000);
    Duration::from_millis(1_000 + u64::from(jitter))
}

/// Runs Bull jobs as drowl jobs.
pub struct DrowlHandler {
    executor: Executor,
    queue: Queue,
    type_limits: HashMap<JobType, Arc<Semaphore>>,
    stats: Arc<DaemonStats>,
    /// Follow-ups one API job's lineage may enqueue, across daemons.
    lineage_cap: u32,
}

impl std::fmt::Debug for DrowlHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrowlHandler").finish_non_exhaustive()
    }
}

impl DrowlHandler {
    /// A handler over `executor`; follow-up jobs are added to `queue`; `type_limits`
    /// caps how many jobs of one type run at once in this process.
    pub fn new(
        executor: Executor,
        queue: Queue,
        type_limits: &HashMap<JobType, usize>,
        stats: Arc<DaemonStats>,
    ) -> Self {
        let type_limits = type_limits
            .iter()
            .map(|(t, n)| (*t, Arc::new(Semaphore::new((*n).max(1)))))
            .collect();
        Self {
            executor,
            queue,
            type_limits,
            stats,
            lineage_cap: crate::runtime::Budget::default().max_follow_ups_per_lineage,
        }
    }

    /// Sets how many follow-ups one API job's lineage may enqueue (the operator's
    /// `--max-lineage-follow-ups`; a plugin cannot ask for more).
    #[must_use]
    pub fn lineage_cap(mut self, cap: u32) -> Self {
        self.lineage_cap = cap;
        self
    }
}

impl DrowlHandler {
    /// Adds a completed job's follow-ups to the queue, as many as its lineage's budget
    /// still allows; returns how many were refused.
    ///
    /// Each follow-up carries its lineage (the API job it descends from, its depth) in
    /// its queue data, out of the plugin's reach. The lineage's total is one Redis counter
    /// shared by every daemon, so a job that enqueues copies of itself cannot grow its
    /// lineage past `max_follow_ups_per_lineage` however many generations run.
    async fn enqueue_follow_ups(
        &self,
        request: &JobRequest,
        parent_added_ms: Option<i64>,
        follow_ups: &[crate::capabilities::FollowUp],
    ) -> usize {
        let cap = self.lineage_cap;
        let wanted = follow_ups.len();
        let allowed = match self
            .lineage_allowance(&request.lineage.root, wanted, cap)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                // Without the counter the cap cannot be kept: enqueue nothing rather than
                // risk unbounded fan-out. The job's own work is stored either way.
                tracing::error!(job = %request.id, error = %e, "cannot count the lineage's follow-ups; none enqueued");
                0
            }
        };
        if allowed < wanted {
            tracing::warn!(
                job = %request.id,
                root = %request.lineage.root,
                refused = wanted - allowed,
                cap,
                "follow-ups over the lineage's budget were not enqueued"
            );
        }
        let lineage = json!({ "root": request.lineage.root, "depth": request.lineage.depth + 1 });
        for (index, f) in follow_ups.iter().take(allowed).enumerate() {
            // A deterministic id makes the enqueue idempotent: when this job runs again
            // after its result was lost (lock lost, worker killed between here and the
            // finish script), Bull ignores the second add instead of running every
            // follow-up twice. The add time tells apart a later job that reuses this
            // job's custom id.
            let mut opts =
                JobOptions::new().job_id(follow_up_id(&request.id, parent_added_ms, index));
            if let Some(d) = f.delay_ms {
                opts = opts.delay(d);
            }
            if let Some(p) = f.priority {
                // drowl: 10 is most urgent; Bull: 1 is most urgent.
                opts = opts.priority(u64::from(11 - p.min(10)));
            }
            let data = json!({ "type": f.job_type, "name": f.name, "input": f.input,
                               "parentJobId": request.id, "lineage": lineage });
            if let Err(e) = self.queue.add(&f.name, data, opts).await {
                // The job's own work is stored; failing it now would redo it.
                tracing::error!(job = %request.id, error = %e, "cannot enqueue a follow-up job");
            }
        }
        wanted - allowed
    }

    /// Enqueues the job that continues `request` from where it stopped (see
    /// [`crate::jobs::CompletedJob::continuation`]): same type and name, `input` as given,
    /// in the same lineage at the same depth (it is the same piece of work, not a new
    /// generation), counted against the lineage's budget, which bounds the chain. Returns
    /// whether it was enqueued.
    async fn enqueue_continuation(
        &self,
        request: &JobRequest,
        parent_added_ms: Option<i64>,
        input: &Value,
    ) -> bool {
        match self
            .lineage_allowance(&request.lineage.root, 1, self.lineage_cap)
            .await
        {
            Ok(1) => {}
            Ok(_) => {
                tracing::warn!(job = %request.id, root = %request.lineage.root, "the lineage's budget is spent; the rest of the job is not continued");
                return false;
            }
            Err(e) => {
                tracing::error!(job = %request.id, error = %e, "cannot count the lineage's jobs; the rest of the job is not continued");
                return false;
            }
        }
        let lineage = json!({ "root": request.lineage.root, "depth": request.lineage.depth });
        // Deterministic, as follow-ups are: a rerun of this job adds no second continuation.
        let id = match parent_added_ms {
            Some(ts) => format!("{}:{ts}:continued", request.id),
            None => format!("{}:continued", request.id),
        };
        let data = json!({ "type": request.job_type.as_str(), "name": request.name,
                           "input": input, "parentJobId": request.id, "lineage": lineage });
        match self
            .queue
            .add(&request.name, data, JobOptions::new().job_id(id))
            .await
        {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(job = %request.id, error = %e, "cannot enqueue the job's continuation");
                false
            }
        }
    }

    /// Counts `wanted` more follow-ups against the lineage of `root` and returns how many
    /// of them fit under `cap`. The counter lives a week, longer than any lineage runs.
    async fn lineage_allowance(
        &self,
        root: &str,
        wanted: usize,
        cap: u32,
    ) -> Result<usize, fred::error::Error> {
        use fred::interfaces::KeysInterface as _;
        let key = self.queue.key(&format!("drowl:lineage:{root}"));
        let client = self.queue.client();
        let total: i64 = client.incr_by(&key, wanted as i64).await?;
        let _: () = client.expire(&key, 7 * 24 * 3600, None).await?;
        let before = total - wanted as i64;
        let room = (i64::from(cap) - before).clamp(0, wanted as i64);
        Ok(usize::try_from(room).unwrap_or(0))
    }
}

fn permanent(message: String, code: &str) -> HandlerError {
    HandlerError::Permanent {
        message,
        code: Some(code.to_owned()),
        details: None,
    }
}

impl JobHandler for DrowlHandler {
    async fn handle(&self, job: ActiveJob) -> Result<Value, HandlerError> {
        let info = job.info().clone();
        let request = match JobRequest::from_value(info.id.as_str(), &info.data) {
            Ok(r) => r,
            Err(e) => return Err(permanent(e.to_string(), "invalid-job")),
        };
        // Every line logged while the job runs (the host's and its plugin's) carries the
        // job, its type and plugin: what an operator filters a daemon's logs by. At WARN
        // level, so the span is enabled whenever any of the job's lines can be: a span the
        // filter disables adds nothing to the lines inside it.
        let span = tracing::warn_span!(
            "drowl.job",
            job = %request.id,
            job_type = request.job_type.as_str(),
            plugin = self.executor.named_plugin(&request).unwrap_or("host"),
            attempt = info.attempts_made + 1,
        );
        self.attempt(job, info, request).instrument(span).await
    }
}

impl DrowlHandler {
    /// One attempt of a parsed job, inside its span.
    async fn attempt(
        &self,
        job: ActiveJob,
        info: JobInfo,
        mut request: JobRequest,
    ) -> Result<Value, HandlerError> {
        request.attempt = info.attempts_made + 1;
        // What the worker applies: the job's own attempts, or its type's default. The
        // timeout (its own or its type's) is the worker's too: at it the worker drops
        // this attempt, which stops the plugin wherever it is (every guest call is a
        // future the host drops), while the plugin's budget may end it sooner.
        request.max_attempts = info.max_attempts();
        let _permit = match self.type_limits.get(&request.job_type) {
            Some(s) => match tokio::time::timeout(TYPE_LIMIT_WAIT, s.clone().acquire_owned()).await
            {
                Ok(p) => Some(p.map_err(|e| permanent(e.to_string(), "internal"))?),
                Err(_) => {
                    return Err(HandlerError::postponed(
                        format!(
                            "{} jobs are at their limit in this daemon",
                            request.job_type.as_str()
                        ),
                        type_limit_delay(),
                    ));
                }
            },
            None => None,
        };
        let _listed = Listed::new(
            &self.stats,
            ActiveEntry {
                id: request.id.clone(),
                job_type: request.job_type.as_str().to_owned(),
                name: request.name.clone(),
                attempt: request.attempt,
                started_at: Utc::now().to_rfc3339(),
            },
        );
        // Progress comes from inside the plugin call (a sync host function): the latest
        // value goes through a watch channel to the async queue update, so a plugin that
        // reports a million times costs a few Redis calls, not a million.
        let (tx, rx) = tokio::sync::watch::channel(None::<u8>);
        let sink: crate::capabilities::ProgressSink = Arc::new(move |p| {
            tx.send_replace(Some(p));
        });
        let labels = metrics::JobLabels {
            job_type: request.job_type.as_str().to_owned(),
            plugin: self
                .stats
                .metrics
                .plugin_label(self.executor.named_plugin(&request)),
        };
        self.stats.metrics.started(&labels);
        let started = std::time::Instant::now();
        let run = self.executor.execute(&request, Some(sink));
        let result = forward_progress(&job, &request.id, run, rx).await;
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(done) => {
                let events = done.output["eventsStored"].as_u64().unwrap_or(0);
                self.stats.metrics.finished(
                    &labels,
                    "completed",
                    seconds,
                    done.report.as_ref(),
                    events,
                );
                self.stats.activity.record(
                    activity::Attempt::new(
                        &request.id,
                        request.attempt,
                        &labels.job_type,
                        &labels.plugin,
                        "completed",
                        started.elapsed(),
                        done.report.as_ref(),
                    ),
                    events,
                );
                let mut output = done.output;
                if let Some(report) = &done.report
                    && !report.follow_ups.is_empty()
                {
                    let refused = self
                        .enqueue_follow_ups(&request, info.timestamp, &report.follow_ups)
                        .await;
                    if refused > 0 && output.is_object() {
                        // The job's own work is done; say what its follow-ups did not get.
                        output["followUpsRefused"] = json!(refused);
                    }
                }
                if let Some(next) = &done.continuation {
                    let continued = self
                        .enqueue_continuation(&request, info.timestamp, next)
                        .await;
                    if output.is_object() {
                        output["continued"] = json!(continued);
                    }
                }
                Ok(output)
            }
            Err(failed) => {
                self.stats.metrics.finished(
                    &labels,
                    failed.failure.code(),
                    seconds,
                    failed.report.as_deref(),
                    0,
                );
                self.stats.activity.record(
                    activity::Attempt::new(
                        &request.id,
                        request.attempt,
                        &labels.job_type,
                        &labels.plugin,
                        failed.failure.code(),
                        started.elapsed(),
                        failed.report.as_deref(),
                    )
                    .failed_with(&failed.failure.to_string()),
                    0,
                );
                let message = failed.failure.to_string();
                let code = Some(failed.failure.code().to_owned());
                let details = failed
                    .report
                    .as_ref()
                    .map(|r| json!({ "usage": r.usage, "logs": r.logs }));
                tracing::warn!(job = %request.id, code = failed.failure.code(), "{message}");
                Err(match failed.failure.retry() {
                    Retry::No => HandlerError::Permanent {
                        message,
                        code,
                        details,
                    },
                    Retry::Yes(Some(delay)) => HandlerError::RetryAfter {
                        message,
                        delay,
                        code,
                        details,
                    },
                    Retry::Yes(None) => HandlerError::Failed {
                        message,
                        code,
                        details,
                    },
                })
            }
        }
    }
}

/// How long one progress update may wait for Redis. Progress is informative: during an
/// outage the job's result cannot be recorded either, and waiting the client's whole
/// command timeout for every update would only delay the attempt's end.
const PROGRESS_WAIT: Duration = Duration::from_secs(2);

/// Runs `run` while forwarding the progress it reports to Bull, latest value first.
///
/// Both run side by side: a progress update waiting on Redis never stalls the plugin
/// (whose deadline is wall-clock time), and values reported while one update is on its
/// way are coalesced into the newest (security matrix row 30: a million progress calls
/// must not become a million Redis calls). When `run` ends, the last value it reported
/// (often 100 just before returning) is sent before the result, as Bull's own
/// `job.progress()` calls would have been.
async fn forward_progress<T>(
    job: &ActiveJob,
    id: &str,
    run: impl std::future::Future<Output = T>,
    mut rx: tokio::sync::watch::Receiver<Option<u8>>,
) -> T {
    let report = |p: u8| async move {
        match tokio::time::timeout(PROGRESS_WAIT, job.progress(json!(p))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(job = %id, error = %e, "cannot report progress"),
            Err(_) => tracing::warn!(job = %id, "cannot report progress: redis does not answer"),
        }
    };
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
    let work = async {
        let r = run.await;
        let _ = done_tx.send(());
        r
    };
    let forward = async {
        let mut sent = None;
        loop {
            tokio::select! {
                biased;
                Ok(()) = rx.changed() => {
                    let latest = *rx.borrow_and_update();
                    if let Some(p) = latest {
                        report(p).await;
                        sent = Some(p);
                    }
                }
                _ = &mut done_rx => break,
            }
        }
        // The last value reported before the job ended is never lost (the sender may
        // already be gone, so compare values rather than ask the channel).
        let latest = *rx.borrow();
        if let Some(p) = latest
            && latest != sent
        {
            report(p).await;
        }
    };
    let (result, ()) = tokio::join!(work, forward);
    result
}

/// The id of a job's `index`-th follow-up: the same on every run of the same job.
fn follow_up_id(parent: &str, parent_added_ms: Option<i64>, index: usize) -> String {
    match parent_added_ms {
        Some(ts) => format!("{parent}:{ts}:follow-up-{index}"),
        None => format!("{parent}:follow-up-{index}"),
    }
}

/// A job's entry on the status page, removed however the attempt ends: the worker drops
/// the handler's future on timeout, lock loss and shutdown, so removal after the `await`
/// alone would leave those jobs listed as running forever.
struct Listed<'a> {
    stats: &'a DaemonStats,
    attempt: u64,
}

impl<'a> Listed<'a> {
    fn new(stats: &'a DaemonStats, entry: ActiveEntry) -> Self {
        let attempt = stats.attempts.fetch_add(1, Ordering::Relaxed);
        stats
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(attempt, entry);
        Self { stats, attempt }
    }
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        self.stats
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.attempt);
    }
}

/// What one [`reconcile`] pass settled.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// Rows given Bull's `completed` outcome.
    pub completed: usize,
    /// Rows given Bull's `failed` outcome.
    pub failed: usize,
    /// Rows whose job Bull no longer has.
    pub lost: usize,
}

/// How many rows one pass looks at.
const RECONCILE_BATCH: i64 = 500;

/// Catches the `jobs` table up with Redis for rows no later move will correct.
///
/// The mirror writes after Redis has accepted each move, so a daemon killed between the
/// two (the finish script ran, the row still says `running`), a job failed by the stalled
/// check ("stalled more than allowable limit", which no worker's observer sees with the
/// job's data), or Redis losing its data leaves a row `running` or `pending` for good.
/// Rows in those states unchanged for longer than `settle_after` (several lock durations,
/// so a stalled job has been recovered and taken again first) are compared with their
/// Bull job: a finished job's outcome is written as the worker would have written it; a
/// job Bull no longer has is marked `failed` with code `lost`; a job still queued or
/// running is left alone. Every daemon may run this: the writes are idempotent upserts.
///
/// `defaults` are the daemon's job defaults, so a row written here says what the worker
/// applied, as the mirror's rows do.
pub async fn reconcile(
    queue: &Queue,
    log: &dyn JobStore,
    settle_after: Duration,
    defaults: &TypeDefaults,
) -> Result<Reconciled, StorageError> {
    let before = Utc::now()
        - chrono::Duration::from_std(settle_after).unwrap_or_else(|_| chrono::Duration::zero());
    let mut done = Reconciled::default();
    for id in log.unsettled(before, RECONCILE_BATCH).await? {
        let record = match queue.get_job(&id).await {
            Ok(r) => r,
            // Redis away: try again on the next pass.
            Err(e) => {
                tracing::debug!(job = %id, error = %e, "cannot reconcile the job row now");
                break;
            }
        };
        let Some(record) = record else {
            log.mark_lost(
                &id,
                "lost",
                "the job is no longer in the queue and its outcome was never recorded here: \
                 removed (removeOnComplete/removeOnFail) after a worker died before writing \
                 it, or lost with Redis's data",
            )
            .await?;
            tracing::warn!(job = %id, "jobs row settled as lost: the queue no longer has the job");
            done.lost += 1;
            continue;
        };
        let info = JobInfo {
            id: record.id.clone(),
            name: record.name.clone(),
            data: record.data.clone(),
            opts: record.opts.clone(),
            attempts_made: record.attempts_made,
            timestamp: record.timestamp,
            processed_on: record.processed_on.unwrap_or(0),
            defaults: Some(defaults.for_data(&record.data)),
        };
        let finished_at = record
            .finished_on
            .and_then(chrono::DateTime::from_timestamp_millis)
            .or_else(|| Some(Utc::now()));
        let update = match record.state {
            JobState::Completed => {
                let mut u = Mirror::base(&info, JobStatus::Completed);
                u.output = Some(record.returnvalue.clone().unwrap_or(Value::Null));
                u.completed_at = finished_at;
                done.completed += 1;
                u
            }
            JobState::Failed => {
                let reason = record.failed_reason.clone().unwrap_or_default();
                let status = if reason.starts_with("Promise timed out after") {
                    JobStatus::Timeout
                } else {
                    JobStatus::Failed
                };
                let mut u = Mirror::base(&info, status);
                let code = reason
                    .contains("stalled more than")
                    .then(|| "stalled".to_owned());
                u.error = Some((reason, code, None));
                u.completed_at = finished_at;
                done.failed += 1;
                u
            }
            _ => continue,
        };
        log.record(&update).await?;
        tracing::info!(job = %id, status = update.status.as_str(), "jobs row caught up with the queue");
    }
    Ok(done)
}

/// Runs [`reconcile`] every `period` for as long as the daemon runs.
pub async fn reconcile_loop(
    queue: Arc<Queue>,
    log: Arc<dyn JobStore>,
    period: Duration,
    settle_after: Duration,
    defaults: Arc<TypeDefaults>,
) {
    loop {
        tokio::time::sleep(period).await;
        match reconcile(&queue, log.as_ref(), settle_after, &defaults).await {
            Ok(r) if r != Reconciled::default() => {
                tracing::info!(
                    completed = r.completed,
                    failed = r.failed,
                    lost = r.lost,
                    "jobs table caught up with the queue"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot reconcile the jobs table"),
        }
    }
}

/// The shortest Bull lock that is safe for a plugin deadline.
///
/// The lock must outlive every plugin call, or another worker could take a job whose
/// plugin is still running: the daemon raises its lock duration to at least the deadline
/// plus half of it (and never less than one extra second), which also leaves time for
/// the storage writes after the last call.
pub fn min_lock_duration(plugin_deadline: Duration) -> Duration {
    plugin_deadline + (plugin_deadline / 2).max(Duration::from_secs(1))
}
