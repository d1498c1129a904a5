//! Mirrors each job's life into drowl's `jobs` table, so the API can show it.
//!
//! Redis stays the source of truth for the queue; the table is a read model written as
//! the job moves (pending → running → completed / failed / timeout, and back to pending
//! when an attempt will be retried). Writes are upserts keyed by the job id, so a retry,
//! a duplicate delivery or a second worker never produces a second row.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// A job's status as drowl's `jobs.status` spells it (strum derives the spelling; a test
/// checks it against the column's check in the migrations).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum JobStatus {
    /// Waiting (also: waiting for a retry).
    Pending,
    /// Taken by a worker.
    Running,
    /// Finished with an output.
    Completed,
    /// Failed for good.
    Failed,
    /// Failed for good because it ran past its timeout.
    Timeout,
}

impl JobStatus {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One state change of one job.
#[derive(Debug, Clone)]
pub struct JobUpdate {
    /// Queue job id.
    pub id: String,
    /// drowl job type (`custom` when the payload had none we know).
    pub job_type: String,
    /// Job name.
    pub name: String,
    /// New status.
    pub status: JobStatus,
    /// drowl priority 0..10.
    pub priority: i32,
    /// The job's input.
    pub input: Value,
    /// Output, when completed.
    pub output: Option<Value>,
    /// Error message, code and details, when an attempt failed.
    pub error: Option<(String, Option<String>, Option<Value>)>,
    /// When the job was added to the queue (Bull's `timestamp`); written with the row,
    /// never changed by later moves.
    pub created_at: Option<DateTime<Utc>>,
    /// When the current attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the job finished for good.
    pub completed_at: Option<DateTime<Utc>>,
    /// The job's timeout in ms.
    pub timeout_ms: i32,
    /// Failed attempts so far.
    pub retry_attempt: i32,
    /// Attempts allowed.
    pub retry_max_attempts: i32,
    /// `linear` or `exponential`.
    pub backoff: String,
    /// When the last failed attempt happened.
    pub retry_last_at: Option<DateTime<Utc>>,
    /// The plugin that runs it.
    pub plugin_id: Option<String>,
}

/// Why a mirror write failed (the queue goes on; the row catches up on the next change).
#[derive(Debug, thiserror::Error)]
#[error("job mirror: {0}")]
pub struct MirrorError(pub(crate) String);

/// Where job states are written.
#[async_trait]
pub trait JobLog: Send + Sync + 'static {
    /// Upserts the rows of `updates`, in order, in one statement: later updates of the
    /// same job win (only the last one per id is written).
    async fn record_all(&self, updates: &[JobUpdate]) -> Result<(), MirrorError>;

    /// Upserts the job's row.
    async fn record(&self, update: &JobUpdate) -> Result<(), MirrorError> {
        self.record_all(std::slice::from_ref(update)).await
    }

    /// Rows this mirror left `running` or `pending` whose last change (start, or failed
    /// attempt) is older than `before`, oldest first, at most `limit`. Rows that were never
    /// started here (`started_at` unset, e.g. inserted by drowl's API for a job still in
    /// the queue) are not included: they are not this mirror's to settle.
    async fn unsettled(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<String>, MirrorError>;

    /// Marks a `running` or `pending` row `failed` with `code` and `message`, when the
    /// queue no longer has the job to say what became of it.
    async fn mark_lost(&self, id: &str, code: &str, message: &str) -> Result<(), MirrorError>;
}

/// The columns every mirror write sets, in bind order.
const UPSERT_HEAD: &str = "INSERT INTO jobs (id, type, name, status, priority, input, output, \
    error_message, error_code, error_details, started_at, completed_at, timeout_ms, retry_attempt, \
    retry_max_attempts, retry_backoff_strategy, retry_last_at, plugin_id, created_at) ";

/// The conflict rule, the same SQL for PostgreSQL and SQLite (hence CASE rather than
/// GREATEST/MAX).
///
/// A late `running` or `pending` must not overwrite a final state, with one exception: a
/// worker taking a finished job again (`running` over a final row: the job retried through
/// the API, or its id reused by a new job) is a new run and is written. A move is written
/// only after Redis accepted it under the job's lock, so such a `running` write cannot be
/// a stale one from an attempt that had already finished.
///
/// A job enqueued after the row's job started cannot be that job: it is a new job reusing
/// the id (Bull's id counter starts again when Redis loses its data), so it replaces the
/// row's enqueue time and attempt history. Name, type and input always follow the queue.
const UPSERT_TAIL: &str = "
 ON CONFLICT (id) DO UPDATE SET
   type = excluded.type,
   name = excluded.name,
   input = excluded.input,
   created_at = CASE WHEN excluded.created_at > jobs.started_at
                     THEN excluded.created_at ELSE jobs.created_at END,
   status = excluded.status,
   output = CASE WHEN excluded.status IN ('running', 'pending') THEN NULL
                 ELSE COALESCE(excluded.output, jobs.output) END,
   error_message = excluded.error_message,
   error_code = excluded.error_code,
   error_details = excluded.error_details,
   started_at = COALESCE(excluded.started_at, jobs.started_at),
   completed_at = excluded.completed_at,
   retry_attempt = CASE WHEN jobs.status IN ('completed', 'failed', 'timeout')
                          OR excluded.created_at > jobs.started_at
                          OR excluded.retry_attempt > jobs.retry_attempt
                        THEN excluded.retry_attempt ELSE jobs.retry_attempt END,
   retry_max_attempts = excluded.retry_max_attempts,
   retry_last_at = CASE WHEN jobs.status IN ('completed', 'failed', 'timeout')
                          OR excluded.created_at > jobs.started_at
                        THEN excluded.retry_last_at
                        ELSE COALESCE(excluded.retry_last_at, jobs.retry_last_at) END,
   plugin_id = COALESCE(excluded.plugin_id, jobs.plugin_id)
 WHERE jobs.status NOT IN ('completed', 'failed', 'timeout')
    OR excluded.status IN ('completed', 'failed', 'timeout', 'running')";

/// The last update of each job in `updates`, in first-seen order: one statement may not
/// touch a row twice, and the last move carries every column the earlier ones set.
fn last_per_id(updates: &[JobUpdate]) -> Vec<&JobUpdate> {
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut rows: Vec<&JobUpdate> = Vec::with_capacity(updates.len());
    for u in updates {
        match at.get(u.id.as_str()) {
            Some(&i) => rows[i] = u,
            None => {
                at.insert(&u.id, rows.len());
                rows.push(u);
            }
        }
    }
    rows
}

/// The `jobs` table in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgJobLog(pub sqlx::PgPool);

#[async_trait]
impl JobLog for PgJobLog {
    async fn record_all(&self, updates: &[JobUpdate]) -> Result<(), MirrorError> {
        let rows = last_per_id(updates);
        if rows.is_empty() {
            return Ok(());
        }
        let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(UPSERT_HEAD);
        q.push_values(rows, |mut b, u| {
            let (message, code, details) = split_error(u);
            b.push_bind(&u.id)
                .push_bind(&u.job_type)
                .push_bind(&u.name)
                .push_bind(u.status.as_str())
                .push_bind(u.priority)
                .push_bind(&u.input)
                .push_bind(&u.output)
                .push_bind(message)
                .push_bind(code)
                .push_bind(details)
                .push_bind(u.started_at)
                .push_bind(u.completed_at)
                .push_bind(u.timeout_ms)
                .push_bind(u.retry_attempt)
                .push_bind(u.retry_max_attempts)
                .push_bind(&u.backoff)
                .push_bind(u.retry_last_at)
                .push_bind(&u.plugin_id)
                .push_bind(u.created_at.unwrap_or_else(Utc::now));
        });
        q.push(UPSERT_TAIL);
        q.build()
            .execute(&self.0)
            .await
            .map(|_| ())
            .map_err(|e| MirrorError(e.to_string()))
    }

    async fn unsettled(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<String>, MirrorError> {
        sqlx::query_scalar(
            "SELECT id FROM jobs
              WHERE status IN ('running', 'pending') AND started_at IS NOT NULL
                AND COALESCE(retry_last_at, started_at) < $1
              ORDER BY COALESCE(retry_last_at, started_at) LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.0)
        .await
        .map_err(|e| MirrorError(e.to_string()))
    }

    async fn mark_lost(&self, id: &str, code: &str, message: &str) -> Result<(), MirrorError> {
        sqlx::query(
            "UPDATE jobs SET status = 'failed', error_code = $2, error_message = $3,
                    completed_at = now()
              WHERE id = $1 AND status IN ('running', 'pending')",
        )
        .bind(id)
        .bind(code)
        .bind(message)
        .execute(&self.0)
        .await
        .map(|_| ())
        .map_err(|e| MirrorError(e.to_string()))
    }
}

/// The `jobs` table of the embedded SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteJobLog(pub sqlx::SqlitePool);

#[async_trait]
impl JobLog for SqliteJobLog {
    async fn record_all(&self, updates: &[JobUpdate]) -> Result<(), MirrorError> {
        let rows = last_per_id(updates);
        if rows.is_empty() {
            return Ok(());
        }
        let ts = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(UPSERT_HEAD);
        q.push_values(rows, |mut b, u| {
            let (message, code, details) = split_error(u);
            b.push_bind(u.id.clone())
                .push_bind(u.job_type.clone())
                .push_bind(u.name.clone())
                .push_bind(u.status.as_str())
                .push_bind(u.priority)
                .push_bind(u.input.to_string())
                .push_bind(u.output.as_ref().map(Value::to_string))
                .push_bind(message)
                .push_bind(code)
                .push_bind(details.map(|d| d.to_string()))
                .push_bind(ts(u.started_at))
                .push_bind(ts(u.completed_at))
                .push_bind(u.timeout_ms)
                .push_bind(u.retry_attempt)
                .push_bind(u.retry_max_attempts)
                .push_bind(u.backoff.clone())
                .push_bind(ts(u.retry_last_at))
                .push_bind(u.plugin_id.clone())
                .push_bind(u.created_at.unwrap_or_else(Utc::now).to_rfc3339());
        });
        q.push(UPSERT_TAIL);
        q.build()
            .execute(&self.0)
            .await
            .map(|_| ())
            .map_err(|e| MirrorError(e.to_string()))
    }

    async fn unsettled(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<String>, MirrorError> {
        // Timestamps are RFC 3339 text here: compare them as times, not as strings.
        sqlx::query_scalar(
            "SELECT id FROM jobs
              WHERE status IN ('running', 'pending') AND started_at IS NOT NULL
                AND julianday(COALESCE(retry_last_at, started_at)) < julianday(?1)
              ORDER BY julianday(COALESCE(retry_last_at, started_at)) LIMIT ?2",
        )
        .bind(before.to_rfc3339())
        .bind(limit)
        .fetch_all(&self.0)
        .await
        .map_err(|e| MirrorError(e.to_string()))
    }

    async fn mark_lost(&self, id: &str, code: &str, message: &str) -> Result<(), MirrorError> {
        sqlx::query(
            "UPDATE jobs SET status = 'failed', error_code = ?2, error_message = ?3,
                    completed_at = ?4
              WHERE id = ?1 AND status IN ('running', 'pending')",
        )
        .bind(id)
        .bind(code)
        .bind(message)
        .bind(Utc::now().to_rfc3339())
        .execute(&self.0)
        .await
        .map(|_| ())
        .map_err(|e| MirrorError(e.to_string()))
    }
}

fn split_error(u: &JobUpdate) -> (Option<String>, Option<String>, Option<Value>) {
    match &u.error {
        Some((m, c, d)) => (Some(m.clone()), c.clone(), d.clone()),
        None => (None, None, None),
    }
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator as _;

    use super::*;

    #[test]
    fn statuses_are_spelled_as_the_jobs_table_expects() {
        let migration = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../migrations/0001_drowl_tables.sql"
        ));
        let names: Vec<&str> = JobStatus::iter().map(JobStatus::as_str).collect();
        assert_eq!(
            names,
            ["pending", "running", "completed", "failed", "timeout"]
        );
        for s in JobStatus::iter() {
            assert_eq!(s.as_str().parse::<JobStatus>(), Ok(s));
            assert!(
                migration.contains(&format!("'{}'", s.as_str())),
                "{}",
                s.as_str()
            );
        }
    }
}
