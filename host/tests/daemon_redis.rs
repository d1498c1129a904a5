//! The daemon across a Redis restart: `drowl-host serve` keeps running while the machine's
//! Redis is shut down and started again, reconnects, and finishes the jobs enqueued after
//! the restart, each exactly once; jobs in flight during the outage are never marked
//! complete without their lock.
//!
//! Its own test binary because it takes Redis away from everything else: cargo runs test
//! binaries one after another, and [`RedisRestartGuard`] also serialises it with any other
//! test process on the machine that takes the same lock, and starts Redis again even when
//! the test fails.
//!
//! The loss window: the machine's Redis runs without persistence (`--save ""
//! --appendonly no`), so a restart loses every key: waiting, delayed and repeatable jobs,
//! job hashes and the id counter. Jobs enqueued before the restart are gone and must be
//! enqueued again by their producer; only jobs enqueued after it can be asserted on. (The
//! drowl-bull tests cover a Redis with AOF, which keeps them.) Because `P:id` starts again
//! at 1, the jobs in flight in `redis_restart_mid_run` use custom ids; the reuse of an id
//! by a job added after the restart has its own test.

mod daemon_support;

use std::time::Duration;

use daemon_support::*;
use drowl_bull::{JobOptions, Queue, QueueConfig};
use serde_json::json;

#[tokio::test]
async fn redis_restart_mid_run() {
    let _redis = RedisRestartGuard::acquire();
    start_redis();
    let queue = unique_queue("redis-restart");
    let plugins = plugin_dir();
    // Lock 7.5 s (the 5 s plugin deadline plus half), renewed every 3.75 s; stalled check
    // every second.
    let daemon = Serve::new(&queue, plugins.path())
        .concurrency(2)
        .args(&[
            "--lock-duration-ms",
            "2000",
            "--stalled-interval-ms",
            "1000",
            "--timeout-ms",
            "5000",
        ])
        .name("serve across a redis restart")
        .start();

    // Before: jobs complete as usual.
    let before = scenario("add_and_watch", &["20", "30000"], &queue).await;
    assert_eq!(before["counts"]["completed"], 20, "{before}");

    // Two jobs running when Redis goes away.
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("connect");
    for id in ["in-flight-1", "in-flight-2"] {
        q.add(
            "sleep",
            json!({"type": "event_ingestion", "name": "sleep",
                   "input": {"pluginId": "hostile", "mode": "sleep", "ms": 2500}}),
            JobOptions::new().job_id(id),
        )
        .await
        .expect("add");
    }
    eventually(Duration::from_secs(10), "both sleep jobs running", || {
        let d = &daemon;
        async move {
            let (_, s) = d.get("/").await;
            (s["activeJobs"].as_array().map_or(0, Vec::len) == 2).then_some(())
        }
    })
    .await;

    stop_redis();
    let (code, health) = eventually(Duration::from_secs(15), "health turns red", || {
        let d = &daemon;
        async move {
            let (code, body) = d.get("/health").await;
            (code == 503).then_some((code, body))
        }
    })
    .await;
    assert_eq!(health["status"], "degraded", "{code} {health}");
    assert_eq!(health["checks"]["redis"]["status"], "error", "{health}");
    assert!(
        health["checks"]["redis"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Redis at redis://")),
        "{health}"
    );
    // The embedded stores do not depend on Redis.
    assert_eq!(health["checks"]["postgres"]["status"], "ok", "{health}");
    assert_eq!(health["checks"]["s3"]["status"], "ok", "{health}");
    // Unreachable for a while: the sleep jobs end meanwhile and cannot be finished.
    tokio::time::sleep(Duration::from_secs(3)).await;
    start_redis();
    eventually(Duration::from_secs(20), "health green again", || {
        let d = &daemon;
        async move { (d.get("/health").await.0 == 200).then_some(()) }
    })
    .await;

    // After: jobs enqueued after the restart all complete, each exactly once, through the
    // same daemon (it reconnected its blocking, command and subscriber connections).
    let after = scenario("add_and_watch", &["50", "60000"], &queue).await;
    let completed = after["extra"]["completed"]
        .as_object()
        .expect("completed events");
    assert_eq!(completed.len(), 50, "{after}");
    assert!(completed.values().all(|n| *n == 1), "{after}");
    assert_eq!(after["extra"]["failed"], json!({}), "{after}");
    // The jobs that were in flight lost their hashes with the restart: nothing may have
    // recreated them or marked them complete (the finish script needs the job and its lock).
    assert_eq!(after["counts"]["completed"], 50, "{after}");
    assert_eq!(after["counts"]["active"], 0, "{after}");
    for id in ["in-flight-1", "in-flight-2"] {
        assert!(
            q.get_job(id).await.expect("get job").is_none(),
            "{id} exists again after the restart"
        );
    }
    let (_, status) = daemon.get("/").await;
    assert_eq!(status["activeJobs"], json!([]), "{status}");
    assert_eq!(
        status["completed"], 70,
        "only finished jobs count: {status}"
    );
    assert_eq!(status["lockLost"], 2, "{status}");

    // Their rows in the daemon's jobs table said `running`; once the lock and two stalled
    // intervals have passed, reconciliation finds the queue no longer has them.
    let db = format!(
        "sqlite://{}?mode=ro",
        daemon.data_dir().join("drowl.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&db).await.expect("open drowl.db");
    for id in ["in-flight-1", "in-flight-2"] {
        let (status, code) = eventually(Duration::from_secs(30), "in-flight rows settle", || {
            let pool = &pool;
            async move {
                let row: (String, Option<String>) =
                    sqlx::query_as("SELECT status, error_code FROM jobs WHERE id = ?1")
                        .bind(id)
                        .fetch_one(pool)
                        .await
                        .ok()?;
                (row.0 != "running").then_some(row)
            }
        })
        .await;
        assert_eq!((status.as_str(), code.as_deref()), ("failed", Some("lost")));
    }
    pool.close().await;
    drop(daemon);
    obliterate(&queue).await;
}

/// After Redis loses its data, `P:id` starts again at 1, so jobs added then get the ids of
/// jobs this daemon has finished (1) or is still running (2). The new job 2 must end with
/// its own result, not the old attempt's (each attempt has its own lock value), and both
/// rows of the jobs table must show the new jobs, although row 1 had already finished.
#[tokio::test]
async fn a_reused_job_id_is_not_completed_with_the_previous_jobs_result() {
    let mut redis = PrivateRedis::start();
    let queue = unique_queue("id-reuse");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .concurrency(2)
        .redis(&redis.url())
        .name("serve on a private redis")
        .start();
    let sleep = |who: &str, ms: u64| {
        json!({"type": "event_ingestion", "name": who,
               "input": {"pluginId": "hostile", "mode": "sleep", "ms": ms, "who": who}})
    };
    let config = QueueConfig::new(redis.url()).queue_name(queue.clone());
    let q = Queue::connect(&config).await.expect("connect");
    let z = q
        .add("z", sleep("z", 10), JobOptions::new())
        .await
        .expect("add z");
    eventually(Duration::from_secs(10), "z finished", || {
        let q = &q;
        let z = &z;
        async move { q.get_job(z.as_str()).await.ok()??.finished_on.map(|_| ()) }
    })
    .await;
    let a = q
        .add("a", sleep("a", 5000), JobOptions::new())
        .await
        .expect("add a");
    eventually(Duration::from_secs(10), "a running", || {
        let d = &daemon;
        async move {
            let (_, s) = d.get("/").await;
            (s["activeJobs"].as_array().map_or(0, Vec::len) == 1).then_some(())
        }
    })
    .await;
    redis.restart();
    eventually(Duration::from_secs(20), "the daemon back on redis", || {
        let d = &daemon;
        async move { (d.get("/health").await.0 == 200).then_some(()) }
    })
    .await;
    let q = Queue::connect(&config).await.expect("reconnect");
    let b = q
        .add("b", sleep("b", 10), JobOptions::new())
        .await
        .expect("add b");
    let c = q
        .add("c", sleep("c", 8000), JobOptions::new())
        .await
        .expect("add c");
    assert_eq!((&z, &a), (&b, &c), "the id counter started again");
    let rec = finished(&q, c.as_str(), Duration::from_secs(20)).await;
    let ran = rec.finished_on.unwrap_or(0) - rec.processed_on.unwrap_or(0);
    let wall = rec
        .returnvalue
        .as_ref()
        .and_then(|v| v["usage"]["wallMs"].as_i64())
        .unwrap_or(0);
    assert!(
        ran >= 8000 && wall >= 8000,
        "job {c} (8 s) finished {ran} ms after it started, with a result from a {wall} ms run: another job's"
    );
    let (_, status) = daemon.get("/").await;
    assert_eq!(status["lockLost"], 1, "a's finish was refused: {status}");

    let db = format!(
        "sqlite://{}?mode=ro",
        daemon.data_dir().join("drowl.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&db).await.expect("open drowl.db");
    for (id, who) in [(&b, "b"), (&c, "c")] {
        let row: (String, String, String) =
            eventually(Duration::from_secs(10), "row written", || {
                let pool = &pool;
                async move {
                    let row: (String, String, String) =
                        sqlx::query_as("SELECT status, name, input FROM jobs WHERE id = ?1")
                            .bind(id.as_str())
                            .fetch_one(pool)
                            .await
                            .ok()?;
                    (row.1 == who && row.0 == "completed").then_some(row)
                }
            })
            .await;
        let input: serde_json::Value = serde_json::from_str(&row.2).expect("input json");
        assert_eq!(
            input["who"], who,
            "row {id} holds another job's input: {row:?}"
        );
    }
    pool.close().await;
    drop(daemon);
}
