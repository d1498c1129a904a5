//! The `jobs` table mirror against both real backends (a fresh PostgreSQL database, and the
//! embedded SQLite file): one statement for many moves, final states kept, a reused id
//! taking over its row, and the group-commit writer keeping order under load.

mod storage_support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use drowl_bull::{JobId, JobInfo, JobObserver};
use drowl_host::queue::{
    DaemonStats, JobLog, JobStatus, JobUpdate, Mirror, PgJobLog, SqliteJobLog,
};
use drowl_host::storage::postgres::PostgresStore;
use drowl_host::storage::sqlite::SqliteStore;
use serde_json::{Value, json};
use storage_support::TestDb;

/// One row as both backends can return it.
#[derive(Debug, PartialEq)]
struct Row {
    status: String,
    name: String,
    who: Value,
    output: Option<Value>,
    retry_attempt: i64,
    created_ms: i64,
}

/// Reads rows back in a backend-neutral shape.
#[async_trait::async_trait]
trait Read {
    async fn row(&self, id: &str) -> Option<Row>;
    async fn count(&self) -> i64;
}

#[async_trait::async_trait]
impl Read for PgJobLog {
    async fn row(&self, id: &str) -> Option<Row> {
        let r: Option<(String, String, Value, Option<Value>, i32, DateTime<Utc>)> = sqlx::query_as(
            "SELECT status, name, input, output, retry_attempt, created_at FROM jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.0)
        .await
        .expect("select");
        r.map(|(status, name, input, output, retry, created)| Row {
            status,
            name,
            who: input["who"].clone(),
            output,
            retry_attempt: i64::from(retry),
            created_ms: created.timestamp_millis(),
        })
    }
    async fn count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(&self.0)
            .await
            .expect("count")
    }
}

#[async_trait::async_trait]
impl Read for SqliteJobLog {
    async fn row(&self, id: &str) -> Option<Row> {
        let r: Option<(String, String, String, Option<String>, i64, String)> = sqlx::query_as(
            "SELECT status, name, input, output, retry_attempt, created_at FROM jobs WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.0)
        .await
        .expect("select");
        r.map(|(status, name, input, output, retry, created)| Row {
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
    async fn count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(&self.0)
            .await
            .expect("count")
    }
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_800_000_000_000 + ms)
        .single()
        .expect("time")
}

fn update(id: &str, who: &str, status: JobStatus, created: i64, started: i64) -> JobUpdate {
    JobUpdate {
        id: id.to_owned(),
        job_type: "event_ingestion".to_owned(),
        name: who.to_owned(),
        status,
        priority: 0,
        input: json!({"pluginId": "p", "who": who}),
        output: (status == JobStatus::Completed).then(|| json!({"by": who})),
        error: (status == JobStatus::Failed || status == JobStatus::Pending)
            .then(|| ("boom".to_owned(), Some("plugin-error".to_owned()), None)),
        created_at: Some(at(created)),
        started_at: Some(at(started)),
        completed_at: matches!(status, JobStatus::Completed | JobStatus::Failed)
            .then(|| at(started + 5)),
        timeout_ms: 1000,
        retry_attempt: i32::from(status == JobStatus::Pending),
        retry_max_attempts: 3,
        backoff: "exponential".to_owned(),
        retry_last_at: (status == JobStatus::Pending).then(|| at(started + 5)),
        plugin_id: Some("p".to_owned()),
    }
}

async fn semantics<L: JobLog + Read>(log: &L) {
    use JobStatus::{Completed, Failed, Pending, Running};
    // One statement, several moves of one job and another job: the last move wins.
    log.record_all(&[
        update("1", "a", Running, 0, 10),
        update("2", "b", Running, 1, 11),
        update("1", "a", Completed, 0, 10),
    ])
    .await
    .expect("batch");
    let a = log.row("1").await.expect("row 1");
    assert_eq!(
        (a.status.as_str(), a.output.clone()),
        ("completed", Some(json!({"by": "a"})))
    );
    assert_eq!(log.row("2").await.expect("row 2").status, "running");

    // A late `pending` of the same job does not reopen a final row.
    log.record(&update("1", "a", Pending, 0, 10))
        .await
        .expect("late");
    assert_eq!(log.row("1").await.expect("row 1"), a, "final row reopened");

    // A retry of job 2: pending with the attempt counted, then running again keeps it.
    log.record(&update("2", "b", Pending, 1, 11))
        .await
        .expect("retry");
    log.record(&update("2", "b", Running, 1, 20))
        .await
        .expect("again");
    let b = log.row("2").await.expect("row 2");
    assert_eq!(
        (b.status.as_str(), b.retry_attempt),
        ("running", 1),
        "{b:?}"
    );
    log.record(&update("2", "b", Failed, 1, 20))
        .await
        .expect("fail");

    // Redis lost its data: a new job enqueued after job 1 ran gets id 1 again. It takes
    // over the row: its own input, enqueue time, no output, attempts from zero.
    log.record(&update("1", "c", Running, 100, 110))
        .await
        .expect("reuse");
    let c = log.row("1").await.expect("row 1");
    assert_eq!(
        c,
        Row {
            status: "running".into(),
            name: "c".into(),
            who: json!("c"),
            output: None,
            retry_attempt: 0,
            created_ms: at(100).timestamp_millis(),
        }
    );
    // Same for a row that was still running when its id was reused (job 2 failed above,
    // so use a third one).
    log.record(&update("3", "d", Running, 2, 12))
        .await
        .expect("d");
    log.record(&update("3", "e", Running, 200, 210))
        .await
        .expect("e");
    let e = log.row("3").await.expect("row 3");
    assert_eq!(
        (e.who.clone(), e.created_ms),
        (json!("e"), at(200).timestamp_millis())
    );
    assert_eq!(log.count().await, 3);
}

async fn writer_keeps_order<L: JobLog + Read>(log: Arc<L>) {
    let stats = Arc::new(DaemonStats::default());
    let (mirror, writer) = Mirror::spawn(log.clone(), stats.clone());
    let n = 2_000;
    let info = |i: usize| JobInfo {
        id: JobId(format!("w{i}")),
        name: "w".into(),
        data: json!({"type": "event_ingestion", "name": format!("w{i}"), "input": {"who": i}}),
        opts: json!({}),
        attempts_made: 0,
        timestamp: Some(at(0).timestamp_millis()),
        processed_on: at(1).timestamp_millis(),
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
        let r = log.row(&format!("w{i}")).await.expect("row");
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

async fn pg() -> (TestDb, PgJobLog) {
    let db = TestDb::create().await;
    let store = PostgresStore::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let log = PgJobLog(store.pool().clone());
    (db, log)
}

async fn sqlite(dir: &tempfile::TempDir) -> SqliteJobLog {
    let store = SqliteStore::open(&dir.path().join("drowl.db"))
        .await
        .expect("open");
    SqliteJobLog(store.write_pool().clone())
}

#[tokio::test]
async fn postgres_mirror_semantics() {
    let (_db, log) = pg().await;
    semantics(&log).await;
}

#[tokio::test]
async fn sqlite_mirror_semantics() {
    let dir = tempfile::tempdir().expect("tempdir");
    semantics(&sqlite(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writer_keeps_each_jobs_order() {
    let (_db, log) = pg().await;
    writer_keeps_order(Arc::new(log)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writer_keeps_each_jobs_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    writer_keeps_order(Arc::new(sqlite(&dir).await)).await;
}
