//! A drowl-bull worker whose behaviour is chosen by each job's data, for the interop and
//! fault tests (and as a minimal example of the API).
//!
//! Job data: `{"action": "return", "value": …}`, `{"action": "fail", "message": …,
//! "permanent": bool, "retryAfterMs": n}`, `{"action": "fail_until", "attempt": n, "value":
//! …}` (fail while attemptsMade < n), `{"action": "sleep", "ms": n, "value": …}`,
//! `{"action": "progress", "values": [...]}`, `{"action": "log", "lines": [...]}`,
//! `{"action": "record"}` (RPUSH the id to `test:<queue>:runs`, then sleep `ms`); anything
//! else returns null.
//!
//! Environment: `REDIS_URL`, `QUEUE` (required), `PREFIX`, `CONCURRENCY`, `LOCK_MS`,
//! `STALLED_MS`, `GUARD_MS`, `DRAIN_MS`, `GRACE_MS`. With `RECORD=1` every observer event is
//! RPUSHed to `test:<queue>:events` as `"<event> <id> …"` and completions to
//! `test:<queue>:completed`; with `RECORD_FILE=<path>` events are also appended to that file.

use std::time::Duration;

use anyhow::Context as _;
use drowl_bull::{
    ActiveJob, FailureInfo, HandlerError, JobHandler, JobId, JobInfo, JobObserver, QueueConfig,
    Worker,
};
use fred::prelude::{Builder, Client, ClientLike, Config, ListInterface, ReconnectPolicy};
use serde_json::Value;

struct Handler {
    redis: Client,
    queue: String,
}

impl JobHandler for Handler {
    async fn handle(&self, job: ActiveJob) -> Result<Value, HandlerError> {
        let d = job.data().clone();
        let action = d.get("action").and_then(Value::as_str).unwrap_or("noop");
        let value = d.get("value").cloned().unwrap_or(Value::Null);
        let ms = d.get("ms").and_then(Value::as_u64).unwrap_or(0);
        match action {
            "return" => Ok(value),
            "fail" => {
                let msg = d
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("failed")
                    .to_owned();
                if d.get("permanent") == Some(&Value::Bool(true)) {
                    Err(HandlerError::permanent(msg))
                } else if let Some(ra) = d.get("retryAfterMs").and_then(Value::as_u64) {
                    Err(HandlerError::retry_after(msg, Duration::from_millis(ra)))
                } else {
                    Err(HandlerError::failed(msg).with_code("TEST"))
                }
            }
            "fail_until" => {
                let n = d.get("attempt").and_then(Value::as_u64).unwrap_or(1);
                if u64::from(job.attempts_made()) < n {
                    Err(HandlerError::failed(format!(
                        "attempt {} fails",
                        job.attempts_made() + 1
                    )))
                } else {
                    Ok(value)
                }
            }
            "sleep" => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(value)
            }
            "progress" => {
                for p in d
                    .get("values")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    job.progress(p.clone())
                        .await
                        .map_err(|e| HandlerError::failed(e.to_string()))?;
                }
                Ok(value)
            }
            "log" => {
                for l in d
                    .get("lines")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    job.log(l.as_str().unwrap_or_default())
                        .await
                        .map_err(|e| HandlerError::failed(e.to_string()))?;
                }
                Ok(value)
            }
            "record" => {
                let key = format!("test:{}:runs", self.queue);
                let _: i64 = self
                    .redis
                    .rpush(key, job.id().as_str())
                    .await
                    .map_err(|e| HandlerError::failed(e.to_string()))?;
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(value)
            }
            _ => Ok(Value::Null),
        }
    }
}

/// Records every observer event in Redis so tests can check what the worker reported, and
/// with `RECORD_FILE` also in a file (`<epoch ms> <event>` lines), which survives a Redis
/// restart and is written before the Redis copy.
struct Recorder {
    redis: Client,
    queue: String,
    file: Option<std::sync::Mutex<std::fs::File>>,
}

impl Recorder {
    async fn push(&self, list: &str, line: String) {
        if let (Some(f), "events") = (&self.file, list) {
            use std::io::Write as _;
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            if let Ok(mut f) = f.lock() {
                let _ = writeln!(f, "{ms} {line}");
            }
        }
        let key = format!("test:{}:{list}", self.queue);
        if let Err(e) = self.redis.rpush::<i64, _, _>(key, line).await {
            eprintln!("noop_worker: recording failed: {e}");
        }
    }
}

impl JobObserver for Recorder {
    async fn on_active(&self, job: &JobInfo) {
        self.push("events", format!("active {}", job.id)).await;
    }
    async fn on_completed(&self, job: &JobInfo, _result: &Value) {
        self.push("events", format!("completed {}", job.id)).await;
        self.push("completed", job.id.to_string()).await;
    }
    async fn on_failed(&self, job: &JobInfo, f: &FailureInfo) {
        self.push(
            "events",
            format!(
                "failed {} retry={} attempts={} timeout={}",
                job.id, f.will_retry, f.attempts_made, f.timed_out
            ),
        )
        .await;
    }
    async fn on_lock_lost(&self, job: &JobInfo) {
        self.push("events", format!("lock_lost {}", job.id)).await;
    }
    async fn on_released(&self, job: &JobInfo) {
        self.push("events", format!("released {}", job.id)).await;
    }
    async fn on_stalled(&self, id: &JobId, failed: bool) {
        self.push("events", format!("stalled {id} failed={failed}"))
            .await;
    }
}

fn env_ms(name: &str) -> anyhow::Result<Option<Duration>> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(Duration::from_millis(
            v.parse().with_context(|| format!("{name}={v}"))?,
        ))),
        Err(_) => Ok(None),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,drowl_bull=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let queue = std::env::var("QUEUE").context("QUEUE must be set")?;
    let mut config = QueueConfig::new(url.clone()).queue_name(queue.clone());
    if let Ok(p) = std::env::var("PREFIX") {
        config = config.prefix(p);
    }
    if let Ok(c) = std::env::var("CONCURRENCY") {
        config = config.concurrency(c.parse().context("CONCURRENCY")?);
    }
    if let Some(d) = env_ms("LOCK_MS")? {
        config = config.lock_duration(d);
    }
    if let Some(d) = env_ms("STALLED_MS")? {
        config = config.stalled_interval(d);
    }
    if let Some(d) = env_ms("GUARD_MS")? {
        config = config.guard_interval(d);
    }
    if let Some(d) = env_ms("DRAIN_MS")? {
        config = config.drain_delay(d);
    }
    if let Some(d) = env_ms("GRACE_MS")? {
        config = config.shutdown_grace(d);
    }
    let mut redis_config = Config::from_url(&url)?;
    redis_config.fail_fast = false;
    let redis = Builder::from_config(redis_config)
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        .build()?;
    redis.init().await?;
    let handler = Handler {
        redis: redis.clone(),
        queue: queue.clone(),
    };
    eprintln!("noop_worker: pid {} queue {queue}", std::process::id());
    if std::env::var("RECORD").as_deref() == Ok("1") {
        let file = match std::env::var("RECORD_FILE") {
            Ok(path) => Some(std::sync::Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .with_context(|| format!("RECORD_FILE={path}"))?,
            )),
            Err(_) => None,
        };
        let recorder = Recorder {
            redis: redis.clone(),
            queue,
            file,
        };
        Worker::new(config, handler)
            .with_observer(recorder)
            .run(shutdown_signal())
            .await?;
    } else {
        Worker::new(config, handler).run(shutdown_signal()).await?;
    }
    let _ = redis.quit().await;
    Ok(())
}
