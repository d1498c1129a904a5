//! Redis restarts mid-run. The machine's Redis (no persistence) is shut down and started
//! again with the machine's own command: its data is gone, so the check is that the worker
//! reconnects (command, blocking and subscriber connections, scripts reloaded), does not
//! spin while Redis is down, never reports a completion it did not make under its lock,
//! and processes new work. A private Redis with AOF shows that with persistence no job is
//! lost and none completes twice.
//!
//! Its own test binary, and no test here holds `RedisInUse`: the machine restart holds
//! `RedisRestartGuard`, the exclusive side of the machine-wide lock that every test using
//! the machine's Redis holds shared, and a test holding both would wait for itself. The
//! AOF test runs on a private Redis and takes no lock.

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use drowl_bull::{JobOptions, Queue, QueueConfig};
use serde_json::json;
use support::*;

/// User + system CPU time of a process, from /proc (clock ticks of 10 ms).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms")
}

async fn wait_completed(q: &Queue, n: u64, limit: Duration) {
    let end = Instant::now() + limit;
    loop {
        if let Ok(c) = q.get_job_counts().await {
            if c.completed >= n {
                return;
            }
            assert!(Instant::now() < end, "only {c:?} after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_redis_restart_worker_reconnects_and_goes_on() {
    // The machine-wide exclusive lock: waits for every test (in any `cargo test` on the
    // machine) that holds `RedisInUse`, and starts Redis again when dropped.
    let _redis = RedisRestartGuard::acquire();
    start_redis();
    let name = unique_queue("restart");
    let cfg = QueueConfig::new(REDIS_URL).queue_name(name.clone());
    let q = Queue::connect(&cfg).await.expect("connect");
    // Default guard interval (5 s): a delayed job promoted quickly after the restart proves
    // the subscriber resubscribed to `delayed`.
    let record = tempfile::NamedTempFile::new().expect("record file");
    let record_path = record.path().to_string_lossy().into_owned();
    let worker = spawn_worker(
        &name,
        &[
            ("RECORD_FILE", record_path.as_str()),
            ("CONCURRENCY", "4"),
            ("LOCK_MS", "2000"),
            ("STALLED_MS", "1000"),
            ("DRAIN_MS", "1000"),
        ],
    );
    for _ in 0..400 {
        q.add(
            "__default__",
            json!({"action": "record", "ms": 10}),
            JobOptions::new(),
        )
        .await
        .expect("add");
    }
    wait_completed(&q, 50, Duration::from_secs(30)).await;

    stop_redis();
    let down_at = now_ms();
    let cpu0 = cpu_time(worker.pid());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let spent = cpu_time(worker.pid()) - cpu0;
    assert!(
        spent < Duration::from_millis(500),
        "worker burned {spent:?} of CPU in 3 s without Redis"
    );
    start_redis();

    // All data is gone (no persistence). New work must flow through the same worker.
    let q = Queue::connect(&cfg).await.expect("reconnect");
    let mut after = HashSet::new();
    for i in 0..100 {
        let id = q
            .add(
                "__default__",
                json!({"action": "return", "value": i}),
                JobOptions::new().job_id(format!("after-{i}")),
            )
            .await
            .expect("add after restart");
        after.insert(id.to_string());
    }
    let t0 = Instant::now();
    let delayed = q
        .add(
            "__default__",
            json!({"action": "return", "value": "late"}),
            JobOptions::new().job_id("delayed-after").delay(700),
        )
        .await
        .expect("add delayed");
    after.insert(delayed.to_string());
    wait_completed(&q, 101, Duration::from_secs(30)).await;
    let job = q.get_job("delayed-after").await.expect("get").expect("job");
    let waited = job.finished_on.expect("finished") - job.timestamp.expect("ts");
    assert!(
        (700..3000).contains(&waited),
        "delayed job after restart finished {waited} ms after add ({:?} of test time)",
        t0.elapsed()
    );
    let mut worker = worker;
    assert!(
        worker.child.try_wait().expect("wait").is_none(),
        "worker alive"
    );
    // The worker's own record (a file, which survives the restart): no job reported
    // completed twice, every new job reported, and no pre-restart job reported completed
    // after Redis went down (its hash and lock were lost with the data).
    // (Observers run just after the finish script: give the last ones a moment.)
    let end = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(record.path()).expect("record");
        if after
            .iter()
            .all(|id| text.contains(&format!(" completed {id}\n")))
            || Instant::now() > end
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut completed = HashSet::new();
    for line in text.lines() {
        let mut f = line.split(' ');
        let (Some(ts), Some("completed"), Some(id)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        assert!(
            completed.insert(id.to_owned()),
            "{id} reported completed twice"
        );
        let ts: i64 = ts.parse().expect("ts");
        if !after.contains(id) {
            assert!(
                ts <= down_at,
                "pre-restart job {id} reported completed {} ms after redis went down",
                ts - down_at
            );
        }
    }
    for id in &after {
        assert!(
            completed.contains(id),
            "{id} not reported; its lines: {:?}",
            text.lines()
                .filter(|l| l.ends_with(&format!(" {id}")))
                .collect::<Vec<_>>()
        );
    }
    let lost = text.lines().filter(|l| l.contains(" lock_lost ")).count();
    eprintln!(
        "restart: {} completions reported, {lost} in-flight jobs reported lost with the data",
        completed.len()
    );
    drop(worker);
    q.obliterate().await.expect("clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_redis_restart_loses_no_job_and_completes_none_twice() {
    let mut redis = PrivateRedis::start_persistent();
    let name = unique_queue("aof-restart");
    let cfg = QueueConfig::new(redis.url()).queue_name(name.clone());
    let q = Queue::connect(&cfg).await.expect("connect");
    let record = tempfile::NamedTempFile::new().expect("record file");
    let mut worker = {
        let mut cmd = Command::new(worker_bin());
        cmd.env("QUEUE", &name)
            .env("REDIS_URL", redis.url())
            .env("RECORD", "1")
            .env("RECORD_FILE", record.path())
            .env("CONCURRENCY", "4")
            .env("LOCK_MS", "3000")
            .env("STALLED_MS", "1000")
            .env("DRAIN_MS", "1000")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        Proc {
            child: cmd.spawn().expect("worker"),
            name: "aof worker".into(),
        }
    };
    let mut ids = Vec::new();
    for _ in 0..400 {
        ids.push(
            q.add(
                "__default__",
                json!({"action": "record", "ms": 10}),
                JobOptions::new(),
            )
            .await
            .expect("add")
            .to_string(),
        );
    }
    wait_completed(&q, 80, Duration::from_secs(30)).await;
    redis.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.restart();
    let q = Queue::connect(&cfg).await.expect("reconnect");
    wait_completed(&q, 400, Duration::from_secs(60)).await;
    let c = q.get_job_counts().await.expect("counts");
    assert_eq!(
        (c.completed, c.failed, c.active, c.waiting),
        (400, 0, 0, 0),
        "{c:?}"
    );
    // The worker's file record (the Redis copy may hold a line twice: the recorder's own
    // client re-sends an RPUSH interrupted by the restart).
    let end = Instant::now() + Duration::from_secs(5);
    let reported: Vec<String> = loop {
        let text = std::fs::read_to_string(record.path()).expect("record");
        let lines: Vec<String> = text
            .lines()
            .filter_map(|l| l.split_once(" completed ").map(|(_, id)| id.to_owned()))
            .collect();
        if lines.len() >= 400 || Instant::now() > end {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let unique: HashSet<&String> = reported.iter().collect();
    assert_eq!(
        unique.len(),
        reported.len(),
        "a job reported completed twice"
    );
    assert_eq!(reported.len(), 400, "every job reported once");
    assert!(ids.iter().all(|id| unique.contains(id)));
    assert!(
        worker.child.try_wait().expect("wait").is_none(),
        "worker alive"
    );
}
