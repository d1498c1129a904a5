//! The daemon's side of drowl's Bull queue.
//!
//! [`drowl_bull`] speaks the Bull 4 protocol (locks, stalled checks, delayed promotion,
//! repeat scheduling, retries). This module plugs drowl into it: [`DrowlHandler`] turns a
//! Bull job into a [`JobRequest`], applies per-type concurrency limits, runs it on the
//! [`Executor`], enqueues its follow-ups, and maps failures onto Bull's retry semantics;
//! [`Mirror`] writes each state change into drowl's `jobs` table.

pub mod mirror;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use drowl_bull::{
    ActiveJob, FailureInfo, HandlerError, JobHandler, JobInfo, JobObserver, JobOptions, Queue,
};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::jobs::{Executor, JobRequest, JobType, Retry};
pub use mirror::{JobLog, JobStatus, JobUpdate, PgJobLog, SqliteJobLog};

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
#[derive(Debug, Default)]
pub struct DaemonStats {
    /// Jobs running now.
    pub active: Mutex<HashMap<String, ActiveEntry>>,
    /// Jobs completed since start.
    pub completed: std::sync::atomic::AtomicU64,
    /// Attempts failed since start.
    pub failed: std::sync::atomic::AtomicU64,
}

/// Runs Bull jobs as drowl jobs.
pub struct DrowlHandler {
    executor: Executor,
    queue: Queue,
    type_limits: HashMap<JobType, Arc<Semaphore>>,
    stats: Arc<DaemonStats>,
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
        }
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
        let mut request = match JobRequest::from_value(info.id.as_str(), &info.data) {
            Ok(r) => r,
            Err(e) => return Err(permanent(e.to_string(), "invalid-job")),
        };
        request.attempt = info.attempts_made + 1;
        request.max_attempts = info.max_attempts();
        let _permit = match self.type_limits.get(&request.job_type) {
            Some(s) => Some(
                s.clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| permanent(e.to_string(), "internal"))?,
            ),
            None => None,
        };
        self.stats
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                request.id.clone(),
                ActiveEntry {
                    id: request.id.clone(),
                    job_type: request.job_type.as_str().to_owned(),
                    name: request.name.clone(),
                    attempt: request.attempt,
                    started_at: Utc::now().to_rfc3339(),
                },
            );
        // Progress comes from inside the plugin call (a sync host function): forward it
        // through a channel to the async queue update.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u8>();
        let sink: crate::capabilities::ProgressSink = Arc::new(move |p| {
            let _ = tx.send(p);
        });
        let run = self.executor.execute(&request, Some(sink));
        tokio::pin!(run);
        let result = loop {
            tokio::select! {
                r = &mut run => break r,
                Some(p) = rx.recv() => {
                    if let Err(e) = job.progress(json!(p)).await {
                        tracing::warn!(job = %request.id, error = %e, "cannot report progress");
                    }
                }
            }
        };
        self.stats
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&request.id);
        match result {
            Ok(done) => {
                if let Some(report) = &done.report {
                    for f in &report.follow_ups {
                        let mut opts = JobOptions::new();
                        if let Some(d) = f.delay_ms {
                            opts = opts.delay(d);
                        }
                        if let Some(p) = f.priority {
                            // drowl: 10 is most urgent; Bull: 1 is most urgent.
                            opts = opts.priority(u64::from(11 - p.min(10)));
                        }
                        let data = json!({ "type": f.job_type, "name": f.name, "input": f.input,
                                           "parentJobId": request.id });
                        if let Err(e) = self.queue.add(&f.name, data, opts).await {
                            // The job's own work is stored; failing it now would redo it.
                            tracing::error!(job = %request.id, error = %e, "cannot enqueue a follow-up job");
                        }
                    }
                }
                self.stats
                    .completed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(done.output)
            }
            Err(failed) => {
                self.stats
                    .failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

/// Writes job states into the `jobs` table.
#[derive(Clone)]
pub struct Mirror {
    log: Arc<dyn JobLog>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror").finish_non_exhaustive()
    }
}

impl Mirror {
    /// A mirror writing to `log`.
    pub fn new(log: Arc<dyn JobLog>) -> Self {
        Self { log }
    }

    fn base(job: &JobInfo, status: JobStatus) -> JobUpdate {
        let data = &job.data;
        let s = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
        let job_type = s("type")
            .filter(|t| JobType::parse(t).is_some())
            .unwrap_or_else(|| "custom".into());
        let input = data
            .get("input")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        let backoff = job
            .opts
            .get("backoff")
            .and_then(|b| b.get("type").and_then(Value::as_str))
            .map(|t| {
                if t == "linear" {
                    "linear"
                } else {
                    "exponential"
                }
            })
            .unwrap_or("exponential")
            .to_owned();
        let priority = data
            .get("priority")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .clamp(0, 10) as i32;
        JobUpdate {
            id: job.id.as_str().to_owned(),
            name: s("name").unwrap_or_else(|| job.name.clone()),
            plugin_id: input
                .get("pluginId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            job_type,
            status,
            priority,
            input,
            output: None,
            error: None,
            started_at: chrono::DateTime::from_timestamp_millis(job.processed_on),
            completed_at: None,
            timeout_ms: job.timeout().map_or(300_000, |t| {
                i32::try_from(t.as_millis()).unwrap_or(i32::MAX)
            }),
            retry_attempt: i32::try_from(job.attempts_made).unwrap_or(i32::MAX),
            retry_max_attempts: i32::try_from(job.max_attempts()).unwrap_or(i32::MAX),
            backoff,
            retry_last_at: None,
        }
    }

    async fn write(&self, u: JobUpdate) {
        if let Err(e) = self.log.record(&u).await {
            tracing::warn!(job = %u.id, error = %e, "cannot mirror the job state");
        }
    }
}

impl JobObserver for Mirror {
    async fn on_active(&self, job: &JobInfo) {
        self.write(Self::base(job, JobStatus::Running)).await;
    }

    async fn on_completed(&self, job: &JobInfo, result: &Value) {
        let mut u = Self::base(job, JobStatus::Completed);
        u.output = Some(result.clone());
        u.completed_at = Some(Utc::now());
        self.write(u).await;
    }

    async fn on_failed(&self, job: &JobInfo, failure: &FailureInfo) {
        let status = match (failure.will_retry, failure.timed_out) {
            (true, _) => JobStatus::Pending,
            (false, true) => JobStatus::Timeout,
            (false, false) => JobStatus::Failed,
        };
        let mut u = Self::base(job, status);
        u.error = Some((
            failure.message.clone(),
            failure.code.clone(),
            failure.details.clone(),
        ));
        u.retry_attempt = i32::try_from(failure.attempts_made).unwrap_or(i32::MAX);
        u.retry_last_at = Some(Utc::now());
        if !failure.will_retry {
            u.completed_at = Some(Utc::now());
        }
        self.write(u).await;
    }

    async fn on_released(&self, job: &JobInfo) {
        self.write(Self::base(job, JobStatus::Pending)).await;
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
