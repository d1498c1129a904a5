//! Mirrors each job's life into drowl's `jobs` table, so the API can show it.
//!
//! Redis stays the source of truth for the queue; the table is a read model written as
//! the job moves (pending → running → completed / failed / timeout, and back to pending
//! when an attempt will be retried). [`Mirror`] is the worker's observer: it turns each
//! move Redis accepted into a [`JobUpdate`] and hands it to a writer task, which writes
//! through the storage layer's [`JobStore`] (the upserts, and their conflict rule, live
//! there, in each backend's SQL).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use drowl_bull::{FailureInfo, JobInfo, JobObserver};
use serde_json::{Value, json};

use super::DaemonStats;
use super::defaults::DROWL_TIMEOUT_MS;
use crate::jobs::JobType;
use crate::storage::{JobStatus, JobStore, JobUpdate};

/// Updates waiting for the `jobs` table at most; past it the worker's observer waits
/// (back-pressure, not unbounded memory, while the database is slow or away).
const MIRROR_QUEUE: usize = 4096;

/// Rows per statement.
const MIRROR_BATCH: usize = 256;

/// Writes job states into the `jobs` table, and counts outcomes for the status page.
///
/// Why through a writer task: a statement per move (running, then completed) was two
/// database round trips per job, more than the job itself costs for a no-op plugin. The
/// writer takes whatever has queued up while its last statement ran and writes it in one
/// statement (group commit): one round trip per job when idle, far fewer under load. Order
/// is kept (one writer, FIFO), and a job's rows are still written only after Redis
/// accepted each move.
#[derive(Clone)]
pub struct Mirror {
    tx: tokio::sync::mpsc::Sender<JobUpdate>,
    stats: Arc<DaemonStats>,
}

/// The task writing a [`Mirror`]'s updates; [`MirrorWriter::finish`] waits for the rest.
#[derive(Debug)]
pub struct MirrorWriter {
    task: tokio::task::JoinHandle<()>,
}

impl MirrorWriter {
    /// Waits, at most `limit`, until every update queued so far is written. Call it once
    /// the worker has stopped: the writer ends when the last [`Mirror`] is dropped.
    pub async fn finish(self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.task).await.is_ok()
    }
}

async fn write_loop(log: Arc<dyn JobStore>, mut rx: tokio::sync::mpsc::Receiver<JobUpdate>) {
    let mut batch = Vec::with_capacity(MIRROR_BATCH);
    while rx.recv_many(&mut batch, MIRROR_BATCH).await > 0 {
        if let Err(e) = log.record_all(&batch).await {
            if batch.len() == 1 {
                tracing::warn!(job = %batch[0].id, error = %e, "cannot mirror the job state");
            } else {
                // One bad row must not cost the others theirs: write them one by one.
                // When the first three all fail, the database is away rather than one row
                // bad: one line then, not one per row.
                let mut written = false;
                for (i, u) in batch.iter().enumerate() {
                    match log.record(u).await {
                        Ok(()) => written = true,
                        Err(e) if !written && i == 2 => {
                            tracing::warn!(rows = batch.len(), error = %e, "cannot mirror job states");
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(job = %u.id, error = %e, "cannot mirror the job state");
                        }
                    }
                }
            }
        }
        batch.clear();
    }
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror").finish_non_exhaustive()
    }
}

impl Mirror {
    /// A mirror writing to `log` from a task of its own, and counting into `stats`.
    pub fn spawn(log: Arc<dyn JobStore>, stats: Arc<DaemonStats>) -> (Self, MirrorWriter) {
        let (tx, rx) = tokio::sync::mpsc::channel(MIRROR_QUEUE);
        let task = tokio::spawn(write_loop(log, rx));
        (Self { tx, stats }, MirrorWriter { task })
    }

    /// The row a move of `job` to `status` writes, before what only that move knows
    /// (output, error, finish time).
    ///
    /// The retry columns say what the worker applies ([`JobInfo::options`]: the job's own
    /// options, or its type's defaults), not what the producer stored: a job drowl's API
    /// enqueued with no options reads 3 attempts, `exponential`, 300000 ms.
    pub(super) fn base(job: &JobInfo, status: JobStatus) -> JobUpdate {
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
        let options = job.options();
        let text = |keys: [&str; 2]| {
            keys.iter()
                .find_map(|k| input.get(*k).and_then(Value::as_str))
                .map(str::to_owned)
        };
        // `input.tags`, its strings (drowl's column is text[]); none when not a list.
        let tags = input.get("tags").and_then(Value::as_array).map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        });
        JobUpdate {
            id: job.id.as_str().to_owned(),
            name: s("name").unwrap_or_else(|| job.name.clone()),
            plugin_id: input
                .get("pluginId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            job_type,
            status,
            priority: drowl_priority(options.priority, data.get("priority")),
            output: None,
            error: None,
            created_at: job
                .timestamp
                .and_then(chrono::DateTime::from_timestamp_millis),
            started_at: chrono::DateTime::from_timestamp_millis(job.processed_on),
            completed_at: None,
            // No limit at all (`timeout: 0` with no default) is not a value the column
            // can hold: it keeps drowl's default, which is what the column says anyway.
            timeout_ms: options
                .timeout
                .filter(|t| *t > 0)
                .map_or(DROWL_TIMEOUT_MS as i32, |t| {
                    i32::try_from(t).unwrap_or(i32::MAX)
                }),
            retry_attempt: i32::try_from(job.attempts_made).unwrap_or(i32::MAX),
            retry_max_attempts: i32::try_from(options.max_attempts()).unwrap_or(i32::MAX),
            backoff: backoff_strategy(options.backoff.as_ref().map(|b| b.kind.as_str())).to_owned(),
            retry_last_at: None,
            user_id: text(["userId", "user_id"]),
            correlation_id: text(["correlationId", "correlation_id"]),
            parent_job_id: s("parentJobId"),
            tags,
            input,
        }
    }

    async fn write(&self, u: JobUpdate) {
        if self.tx.send(u).await.is_err() {
            tracing::warn!("job mirror writer stopped; a job state was not mirrored");
        }
    }
}

/// drowl's `retry_backoff_strategy` (`linear` or `exponential`) for a Bull backoff type:
/// `linear` is drowl's linear; Bull's `exponential`, drowl's doubling and anything else
/// (a fixed delay, retrying at once) are `exponential`, the column's default, as the
/// column has no other value for them.
fn backoff_strategy(kind: Option<&str>) -> &'static str {
    match kind {
        Some("linear") => "linear",
        _ => "exponential",
    }
}

/// drowl's priority (0..10, higher is more urgent) of a job: from Bull's `opts.priority`
/// (1 is the most urgent, 0 or none is no priority) as `11 − priority`, so Bull's 1..10
/// are drowl's 10..1, and 11 or more, or none, is 0. This is the inverse of how the
/// daemon enqueues a follow-up's drowl priority `p` (Bull's `11 − p`). A job without
/// `opts.priority` may carry drowl's own in `data.priority`, which is kept to 0..10.
fn drowl_priority(bull: Option<u64>, data: Option<&Value>) -> i32 {
    match bull.filter(|p| *p > 0) {
        Some(p) => i32::try_from(11u64.saturating_sub(p)).unwrap_or(0),
        None => data.and_then(Value::as_i64).unwrap_or(0).clamp(0, 10) as i32,
    }
}

impl JobObserver for Mirror {
    async fn on_active(&self, job: &JobInfo) {
        self.write(Self::base(job, JobStatus::Running)).await;
    }

    async fn on_completed(&self, job: &JobInfo, result: &Value) {
        self.stats.completed.fetch_add(1, Ordering::Relaxed);
        let mut u = Self::base(job, JobStatus::Completed);
        u.output = Some(result.clone());
        u.completed_at = Some(Utc::now());
        self.write(u).await;
    }

    async fn on_failed(&self, job: &JobInfo, failure: &FailureInfo) {
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        // Out of time either way: Bull's `opts.timeout`, or the plugin's own deadline
        // (`--timeout-ms`, the manifest's request), which the executor reports as code
        // `timeout`.
        let timed_out = failure.timed_out || failure.code.as_deref() == Some("timeout");
        let status = match (failure.will_retry, timed_out) {
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

    async fn on_lock_lost(&self, _job: &JobInfo) {
        // The row stays as it is: the worker that holds the lock now writes the outcome.
        self.stats.lock_lost.fetch_add(1, Ordering::Relaxed);
    }

    async fn on_released(&self, job: &JobInfo) {
        self.stats.released.fetch_add(1, Ordering::Relaxed);
        self.write(Self::base(job, JobStatus::Pending)).await;
    }

    async fn on_postponed(&self, job: &JobInfo, _delay: Duration) {
        self.stats.postponed.fetch_add(1, Ordering::Relaxed);
        self.write(Self::base(job, JobStatus::Pending)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU64;

    use super::*;
    use crate::storage::StorageError;

    /// A `jobs` table in memory that refuses any statement touching the row `bad`, or
    /// every statement while `down`.
    #[derive(Default)]
    struct Table {
        rows: Mutex<HashMap<String, JobStatus>>,
        statements: AtomicU64,
        down: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl JobStore for Table {
        async fn record_all(&self, updates: &[JobUpdate]) -> Result<(), StorageError> {
            self.statements.fetch_add(1, Ordering::Relaxed);
            if self.down.load(Ordering::Relaxed) || updates.iter().any(|u| u.id == "bad") {
                return Err(StorageError::Unavailable("refused".into()));
            }
            let mut rows = self.rows.lock().expect("rows");
            for u in updates {
                rows.insert(u.id.clone(), u.status);
            }
            Ok(())
        }
        async fn unsettled(
            &self,
            _before: chrono::DateTime<Utc>,
            _limit: i64,
        ) -> Result<Vec<String>, StorageError> {
            Ok(Vec::new())
        }
        async fn mark_lost(&self, _id: &str, _code: &str, _msg: &str) -> Result<(), StorageError> {
            Ok(())
        }
    }

    fn job(id: &str) -> JobInfo {
        JobInfo {
            id: drowl_bull::JobId(id.to_owned()),
            name: "t".into(),
            data: json!({"type": "event_ingestion", "input": {}}),
            opts: json!({}),
            attempts_made: 0,
            timestamp: Some(0),
            processed_on: 1,
            defaults: None,
        }
    }

    /// The row says what the worker applies, not what Bull stored: drowl's defaults for
    /// a job with no options, the job's own options otherwise; priority, parent, user,
    /// correlation id and tags from the job.
    #[test]
    fn rows_record_what_was_applied() {
        let mut j = job("a");
        j.opts = json!({"attempts": 1, "delay": 0, "priority": 2});
        j.data = json!({"type": "event_ingestion", "parentJobId": "p1", "input": {
            "pluginId": "github", "correlationId": "c1", "user_id": "u1",
            "tags": ["x", 3, "y"]}});
        j.defaults = Some(crate::queue::defaults::drowl_defaults());
        let u = Mirror::base(&j, JobStatus::Running);
        assert_eq!(
            (u.timeout_ms, u.retry_max_attempts, u.backoff.as_str()),
            (300_000, 3, "exponential")
        );
        assert_eq!(u.priority, 9, "Bull's 2 is drowl's 9");
        assert_eq!(u.parent_job_id.as_deref(), Some("p1"));
        assert_eq!(u.correlation_id.as_deref(), Some("c1"));
        assert_eq!(u.user_id.as_deref(), Some("u1"));
        assert_eq!(u.tags, Some(vec!["x".to_owned(), "y".to_owned()]));

        j.opts = json!({"attempts": 4, "timeout": 5000,
                        "backoff": {"type": "linear", "delay": 10}});
        j.data = json!({"type": "event_ingestion", "priority": 42, "input": {}});
        let u = Mirror::base(&j, JobStatus::Running);
        assert_eq!(
            (u.timeout_ms, u.retry_max_attempts, u.backoff.as_str()),
            (5000, 4, "linear")
        );
        assert_eq!(
            u.priority, 10,
            "drowl's own priority in data, kept to 0..10"
        );
        assert_eq!((u.user_id, u.correlation_id, u.tags), (None, None, None));
        for (bull, drowl) in [(1, 10), (10, 1), (11, 0), (50, 0), (0, 0)] {
            assert_eq!(drowl_priority(Some(bull), None), drowl, "bull {bull}");
        }
    }

    /// A batch refused because of one row is written row by row: the others land.
    #[tokio::test]
    async fn one_bad_row_does_not_cost_the_batch() {
        let table = Arc::new(Table::default());
        let (tx, rx) = tokio::sync::mpsc::channel(MIRROR_QUEUE);
        for id in ["a", "bad", "b", "c"] {
            tx.send(Mirror::base(&job(id), JobStatus::Running))
                .await
                .expect("queued");
        }
        drop(tx);
        write_loop(table.clone(), rx).await;
        let rows = table.rows.lock().expect("rows").clone();
        for id in ["a", "b", "c"] {
            assert_eq!(rows.get(id), Some(&JobStatus::Running), "{id}: {rows:?}");
        }
        assert!(!rows.contains_key("bad"));
        // The batch, then each of its four rows.
        assert_eq!(table.statements.load(Ordering::Relaxed), 5);
    }

    /// With the database away, a batch costs at most four statements, not one per row.
    #[tokio::test]
    async fn an_outage_does_not_retry_every_row() {
        let table = Arc::new(Table::default());
        table.down.store(true, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::mpsc::channel(MIRROR_QUEUE);
        for i in 0..100 {
            let u = Mirror::base(&job(&format!("j{i}")), JobStatus::Running);
            tx.send(u).await.expect("queued");
        }
        drop(tx);
        write_loop(table.clone(), rx).await;
        assert_eq!(table.statements.load(Ordering::Relaxed), 4);
    }
}
