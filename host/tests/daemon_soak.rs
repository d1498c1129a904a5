//! Soak through a running `drowl-host serve`: 2,000 faulty jobs of 14 kinds and a few
//! that run into the deadline, interleaved with 500 good ones, enqueued in Redis as the
//! API would. Every good job must complete with its own output, every faulty one must
//! fail with its own error category in the `jobs` table, the daemon must keep serving,
//! and the resident memory of the daemon process (read from /proc while it works) must
//! not keep growing once it has warmed up.
//!
//! Its own test binary: it keeps the daemon busy for a while and measures its memory.

mod daemon_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use daemon_support::*;
use drowl_bull::{JobOptions, Queue, QueueConfig};
use drowl_testkit::soak::{FAULTS, SECRET, assert_flat_rss, rss_kib};
use serde_json::{Value, json};

/// Faulty jobs run.
const FAULTY: usize = 2_000;
/// One good job after every this many faulty ones.
const FAULTY_PER_GOOD: usize = 4;
/// Faulty jobs that loop until the deadline, spread over the run.
const LOOPS: usize = 8;
/// The daemon's concurrency.
const CONCURRENCY: usize = 4;

/// What a job must end as: `completed`, or failed (`failed`/`timeout`) with a code.
#[derive(Debug, Clone)]
enum Expect {
    Good,
    Fault(&'static str, &'static str),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_survives_thousands_of_faulty_jobs_with_flat_memory() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("soak");
    let plugins = plugin_dir();
    let settings = tempfile::NamedTempFile::new().expect("settings file");
    std::fs::write(
        settings.path(),
        json!({"hostile": {"config": {"token": SECRET}}}).to_string(),
    )
    .expect("write settings");
    let daemon = Serve::new(&queue, plugins.path())
        .concurrency(CONCURRENCY)
        .arg("--plugin-config")
        .arg(settings.path().display().to_string())
        .args(&["--timeout-ms", "2000", "--max-memory", "33554432"])
        .args(&[
            "--max-hostcall-bytes",
            "4194304",
            "--max-page-bytes",
            "1048576",
        ])
        .args(&["--max-handles", "1000", "--lock-duration-ms", "10000"])
        // One attempt per job, as before drowl's defaults (3 attempts for jobs with no
        // options): each fault ends once, in its own category.
        .args(&["--job-defaults", "event_ingestion:attempts=1"])
        .name("soak daemon")
        .start();
    let pid = daemon.pid().to_string();

    let total = FAULTY + FAULTY / FAULTY_PER_GOOD;
    let loop_every = FAULTY / LOOPS;
    let mut expect: HashMap<String, Expect> = HashMap::new();
    let mut jobs = Vec::with_capacity(total);
    let mut faults = 0usize;
    for i in 0..total {
        let (id, data, what) = if i % (FAULTY_PER_GOOD + 1) == FAULTY_PER_GOOD {
            let id = format!("good-{i}");
            let input =
                json!({"pluginId": "hostile", "mode": "ok", "count": 3, "tag": format!("j{i}-")});
            (id, input, Expect::Good)
        } else {
            faults += 1;
            let id = format!("bad-{i}");
            if faults.is_multiple_of(loop_every) {
                let input = json!({"pluginId": "hostile", "mode": "loop"});
                (id, input, Expect::Fault("loop", "timeout"))
            } else {
                let (mode, count, flag, code) = FAULTS[(faults - 1) % FAULTS.len()];
                let mut input = json!({"pluginId": "hostile", "mode": mode, "count": count});
                if !flag.is_empty() {
                    input[flag] = json!(true);
                }
                (id, input, Expect::Fault(mode, code))
            }
        };
        expect.insert(id.clone(), what);
        jobs.push((
            id,
            json!({"type": "event_ingestion", "name": "soak", "input": data}),
        ));
    }

    let config = QueueConfig::new(REDIS_URL).queue_name(queue.clone());
    let q = Arc::new(Queue::connect(&config).await.expect("connect"));
    let started = Instant::now();
    for (id, data) in jobs {
        q.add("soak", data, JobOptions::new().job_id(id))
            .await
            .expect("add");
    }

    // Sample the daemon's memory against the number of jobs it has finished.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (q, stop, pid) = (q.clone(), stop.clone(), pid.clone());
        tokio::spawn(async move {
            let mut samples: Vec<(usize, u64, u64)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Ok(c) = q.get_job_counts().await {
                    let done = usize::try_from(c.completed + c.failed).unwrap_or(0);
                    let (rss, hwm) = rss_kib(&pid);
                    samples.push((done, rss, hwm));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        })
    };
    let counts = eventually(Duration::from_secs(900), "every soak job finished", || {
        let q = &q;
        async move {
            let c = q.get_job_counts().await.ok()?;
            (usize::try_from(c.completed + c.failed).ok()? == total).then_some(c)
        }
    })
    .await;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.await.expect("sampler");
    let (health, _) = daemon.get("/health").await;
    assert_eq!(health, 200, "the daemon stopped serving");

    println!(
        "daemon soak: {total} jobs ({FAULTY} faulty, {LOOPS} of them looping to the 2 s deadline) in {elapsed:.1?}, {:.0} jobs/s, concurrency {CONCURRENCY}",
        total as f64 / elapsed.as_secs_f64()
    );
    let mut next = 0;
    for (done, rss, hwm) in &samples {
        if *done >= next {
            println!(
                "daemon soak: after {done:>5} jobs  VmRSS {:>7.1} MiB  VmHWM {:>7.1} MiB",
                *rss as f64 / 1024.0,
                *hwm as f64 / 1024.0
            );
            next = done + 250;
        }
    }
    assert_eq!(
        counts.completed as usize,
        total - FAULTY,
        "only the good jobs complete: {counts:?}"
    );

    // Every job's row: good ones completed with their own events, faulty ones failed
    // with their own category.
    let db = format!(
        "sqlite://{}?mode=ro",
        daemon.data_dir().join("drowl.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&db).await.expect("open drowl.db");
    let rows: Vec<(String, String, Option<String>, Option<String>)> =
        eventually(Duration::from_secs(30), "every row mirrored", || {
            let pool = &pool;
            async move {
                let rows: Vec<(String, String, Option<String>, Option<String>)> =
                    sqlx::query_as("SELECT id, status, error_code, output FROM jobs")
                        .fetch_all(pool)
                        .await
                        .ok()?;
                let settled = rows
                    .iter()
                    .filter(|r| !matches!(r.1.as_str(), "running" | "pending"))
                    .count();
                (settled == total).then_some(rows)
            }
        })
        .await;
    let mut wrong = Vec::new();
    for (id, status, code, output) in &rows {
        let Some(want) = expect.get(id) else {
            wrong.push(format!("{id}: a row for a job this test did not add"));
            continue;
        };
        match want {
            Expect::Good => {
                let out: Value = output
                    .as_deref()
                    .and_then(|o| serde_json::from_str(o).ok())
                    .unwrap_or(Value::Null);
                if status != "completed" || out["eventsStored"] != 3 || out["cursor"] != "1" {
                    wrong.push(format!("{id}: {status} {code:?} {out}"));
                }
            }
            Expect::Fault(mode, want_code) => {
                let want_status = if *want_code == "timeout" {
                    "timeout"
                } else {
                    "failed"
                };
                if status != want_status || code.as_deref() != Some(*want_code) {
                    wrong.push(format!(
                        "{id} ({mode}): expected {want_status}/{want_code}, got {status}/{code:?}"
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {total} jobs ended wrong, first ones: {:#?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    let log = daemon.log();
    assert!(!log.contains(SECRET), "the secret reached the daemon's log");

    let rss: Vec<(usize, u64)> = samples.iter().map(|s| (s.0, s.1)).collect();
    assert_flat_rss("daemon soak", &rss, total);
    pool.close().await;
    drop(daemon);
    obliterate(&queue).await;
}
