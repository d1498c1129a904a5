//! The `jobs` table mirror against both real backends (a fresh PostgreSQL database, and the
//! embedded SQLite file): one statement for many moves, final states kept, a reused id
//! taking over its row, and the group-commit writer keeping order under load.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drowl_bull::{JobId, JobInfo, JobObserver};
use drowl_host::queue::{DaemonStats, Mirror};
use drowl_host::storage::JobStore;
use drowl_host::storage::conformance::{self as tc, JobMeta, JobRow, ReadJobs, at};
use drowl_host::storage::postgres::{PostgresJobStore, PostgresStore};
use drowl_host::storage::sqlite::SqliteStore;
use drowl_testkit::storage::TestDb;
use serde_json::{Value, json};

/// The PostgreSQL `jobs` table, read back with its own column types.
struct PgJobs(PostgresJobStore);

#[async_trait::async_trait]
impl ReadJobs for PgJobs {
    async fn row(&self, id: &str) -> Option<JobRow> {
        let r: Option<(String, String, Value, Option<Value>, i32, DateTime<Utc>)> = sqlx::query_as(
            "SELECT status, name, input, output, retry_attempt, created_at FROM jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.0.pool())
        .await
        .expect("select");
        r.map(|(status, name, input, output, retry, created)| JobRow {
            status,
            name,
            who: input["who"].clone(),
            output,
            retry_attempt: i64::from(retry),
            created_ms: created.timestamp_millis(),
        })
    }
    async fn meta(&self, id: &str) -> Option<JobMeta> {
        type Meta = (
            i32,
            i32,
            i32,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Vec<String>,
        );
        let r: Option<Meta> = sqlx::query_as(
            "SELECT priority, timeout_ms, retry_max_attempts, retry_backoff_strategy, user_id,
                    correlation_id, parent_job_id, tags
               FROM jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.0.pool())
        .await
        .expect("select");
        r.map(
            |(p, t, m, backoff, user_id, correlation_id, parent_job_id, tags)| JobMeta {
                priority: p.into(),
                timeout_ms: t.into(),
                retry_max_attempts: m.into(),
                backoff,
                user_id,
                correlation_id,
                parent_job_id,
                tags,
            },
        )
    }
    async fn count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(self.0.pool())
            .await
            .expect("count")
    }
}

/// The SQLite `jobs` table (JSON and timestamps as text), read through the store's writer.
struct SqliteJobs(Arc<SqliteStore>);

#[async_trait::async_trait]
impl ReadJobs for SqliteJobs {
    async fn row(&self, id: &str) -> Option<JobRow> {
        let r: Option<(String, String, String, Option<String>, i64, String)> = sqlx::query_as(
            "SELECT status, name, input, output, retry_attempt, created_at FROM jobs WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(self.0.write_pool())
        .await
        .expect("select");
        r.map(|(status, name, input, output, retry, created)| JobRow {
            status,
            name,
            who: serde_json::from_str::<Value>(&input).expect("input")["who"].clone(),
            output: output.map(|o| serde_json::from_str(&o).expect("output")),
            retry_attempt: retry,
            created_ms: DateTime::parse_from_rfc3339(&created)
                .expect("created_at")
                .timestamp_millis(),
        })
    }
    async fn meta(&self, id: &str) -> Option<JobMeta> {
        type Meta = (
            i64,
            i64,
            i64,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
        );
        let r: Option<Meta> = sqlx::query_as(
            "SELECT priority, timeout_ms, retry_max_attempts, retry_backoff_strategy, user_id,
                    correlation_id, parent_job_id, tags
               FROM jobs WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(self.0.write_pool())
        .await
        .expect("select");
        r.map(
            |(
                priority,
                timeout_ms,
                retry_max_attempts,
                backoff,
                user_id,
                correlation_id,
                parent_job_id,
                tags,
            )| JobMeta {
                priority,
                timeout_ms,
                retry_max_attempts,
                backoff,
                user_id,
                correlation_id,
                parent_job_id,
                tags: serde_json::from_str(&tags).expect("tags are a JSON array"),
            },
        )
    }
    async fn count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(self.0.write_pool())
            .await
            .expect("count")
    }
}

async fn writer_keeps_order(log: Arc<dyn JobStore>, read: &dyn ReadJobs) {
    let stats = Arc::new(DaemonStats::default());
    let (mirror, writer) = Mirror::spawn(log, stats.clone());
    let n = 2_000;
    let info = |i: usize| JobInfo {
        id: JobId(format!("w{i}")),
        name: "w".into(),
        data: json!({"type": "event_ingestion", "name": format!("w{i}"), "input": {"who": i}}),
        opts: json!({}),
        attempts_made: 0,
        timestamp: Some(at(0).timestamp_millis()),
        processed_on: at(1).timestamp_millis(),
        defaults: None,
    };
    // Concurrent jobs, each moving running -> completed, as a worker's slots do.
    let mut tasks = Vec::new();
    for chunk in 0..8 {
        let mirror = mirror.clone();
        tasks.push(tokio::spawn(async move {
            for i in (chunk..n).step_by(8) {
                let job = info(i);
                mirror.on_active(&job).await;
                mirror.on_completed(&job, &json!({"i": i})).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    drop(mirror);
    assert!(
        writer.finish(Duration::from_secs(30)).await,
        "writer drained"
    );
    for i in [0, 1, 7, 999, n - 1] {
        let r = read.row(&format!("w{i}")).await.expect("row");
        assert_eq!(
            (r.status.as_str(), r.output),
            ("completed", Some(json!({"i": i}))),
            "w{i}"
        );
    }
    assert_eq!(
        stats.completed.load(std::sync::atomic::Ordering::Relaxed),
        n as u64
    );
}

async fn pg() -> (TestDb, PgJobs) {
    let db = TestDb::create().await;
    let store = PostgresStore::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let jobs = PgJobs(PostgresJobStore::new(store.pool().clone()));
    (db, jobs)
}

async fn sqlite(dir: &tempfile::TempDir) -> SqliteJobs {
    let store = SqliteStore::open(&dir.path().join("drowl.db"))
        .await
        .expect("open");
    SqliteJobs(Arc::new(store))
}

#[tokio::test]
async fn postgres_mirror_semantics() {
    let (_db, jobs) = pg().await;
    tc::job_rows_follow_the_rules(&jobs.0, &jobs).await;
    tc::job_rows_record_what_was_applied(&jobs.0, &jobs).await;
}

#[tokio::test]
async fn sqlite_mirror_semantics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jobs = sqlite(&dir).await;
    tc::job_rows_follow_the_rules(&*jobs.0, &jobs).await;
    tc::job_rows_record_what_was_applied(&*jobs.0, &jobs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writer_keeps_each_jobs_order() {
    let (_db, jobs) = pg().await;
    writer_keeps_order(Arc::new(jobs.0.clone()), &jobs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writer_keeps_each_jobs_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jobs = sqlite(&dir).await;
    writer_keeps_order(jobs.0.clone(), &jobs).await;
}
