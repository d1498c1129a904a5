//! Redis restarts mid-run. The machine's Redis (no persistence) is shut down and started
//! again with the machine's own command: its data is gone, so the check is that the worker
//! reconnects (command, blocking and subscriber connections, scripts reloaded), does not
//! spin while Redis is down, never reports a completion it did not make under its lock,
//! and processes new work. A private Redis with AOF shows that with persistence no job is
//! lost and none completes twice.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use drowl_bull::{JobOptions, Queue, QueueConfig};
use fred::prelude::ListInterface;
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
    let _serial = redis_restart_lock().lock().await;
    let _guard = RedisGuard;
    start_redis();
    let name = unique_queue("restart");
    let cfg = QueueConfig::new(REDIS_URL).queue_name(name.clone());
    let q = Queue::connect(&cfg).await.expect("connect");
    // Default guard interval (5 s): a delayed job promoted quickly after the restart proves
    // the subscriber resubscribed to `delayed`.
    let worker = spawn_worker(
        &name,
        &[
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
    // Every completion reported after the restart is one of the new jobs (old in-flight
    // jobs lost their hash and lock with the data, so they must not be reported).
    let reported: Vec<String> = q
        .client()
        .lrange(format!("test:{name}:completed"), 0, -1)
        .await
        .expect("reported");
    let unique: HashSet<&String> = reported.iter().collect();
    assert_eq!(unique.len(), reported.len(), "a job reported twice");
    for id in &reported {
        assert!(
            after.contains(id),
            "completion of pre-restart job {id} reported"
        );
    }
    assert_eq!(reported.len(), 101);
    drop(worker);
    q.obliterate().await.expect("clean");
}

/// A private Redis with AOF (fsync always) on its own port.
struct PrivateRedis {
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    fn start(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = Self { port, dir };
        me.launch();
        me
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli")
    }

    fn up(&self) -> bool {
        self.cli(&["ping"]).stdout.starts_with(b"PONG")
    }

    fn launch(&self) {
        let dir: &Path = self.dir.path();
        let status = Command::new("redis-server")
            .args([
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
            ])
            .arg(dir)
            .args(["--logfile"])
            .arg(dir.join("redis.log"))
            .status()
            .expect("redis-server");
        assert!(status.success());
        let end = Instant::now() + Duration::from_secs(10);
        while !self.up() {
            assert!(Instant::now() < end, "private redis did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&self) {
        let _ = self.cli(&["shutdown", "nosave"]);
        let end = Instant::now() + Duration::from_secs(10);
        while self.up() {
            assert!(Instant::now() < end, "private redis did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_redis_restart_loses_no_job_and_completes_none_twice() {
    let redis = PrivateRedis::start(6391 + (std::process::id() % 500) as u16);
    let name = unique_queue("aof-restart");
    let cfg = QueueConfig::new(redis.url()).queue_name(name.clone());
    let q = Queue::connect(&cfg).await.expect("connect");
    let mut worker = {
        let mut cmd = Command::new(worker_bin());
        cmd.env("QUEUE", &name)
            .env("REDIS_URL", redis.url())
            .env("RECORD", "1")
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
    redis.launch();
    let q = Queue::connect(&cfg).await.expect("reconnect");
    wait_completed(&q, 400, Duration::from_secs(60)).await;
    let c = q.get_job_counts().await.expect("counts");
    assert_eq!(
        (c.completed, c.failed, c.active, c.waiting),
        (400, 0, 0, 0),
        "{c:?}"
    );
    let reported: Vec<String> = q
        .client()
        .lrange(format!("test:{name}:completed"), 0, -1)
        .await
        .expect("reported");
    let unique: HashSet<&String> = reported.iter().collect();
    assert_eq!(
        unique.len(),
        reported.len(),
        "a job reported completed twice"
    );
    assert_eq!(reported.len(), 400, "every job reported once");
    assert!(
        worker.child.try_wait().expect("wait").is_none(),
        "worker alive"
    );
}
