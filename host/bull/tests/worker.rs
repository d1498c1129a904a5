//! The worker in-process against the real Redis: lock loss, stalled recovery, timeouts,
//! custom backoff strategies and graceful shutdown. Every test holds `RedisInUse`, so a
//! test restarting the machine's Redis (in any `cargo test` on the machine) waits for it.

mod support;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drowl_bull::{
    ActiveJob, CancelReason, FailureInfo, HandlerError, JobHandler, JobId, JobInfo, JobObserver,
    JobOptions, JobState, Queue, QueueConfig, Worker,
};
use fred::prelude::{ClientLike, HashesInterface, KeysInterface, ListInterface};
use serde_json::{Value, json};
use support::*;
use tokio::sync::oneshot;

/// A handler from a closure.
struct FnHandler<F>(F);

impl<F, Fut> JobHandler for FnHandler<F>
where
    F: Fn(ActiveJob) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, HandlerError>> + Send,
{
    fn handle(&self, job: ActiveJob) -> impl Future<Output = Result<Value, HandlerError>> + Send {
        (self.0)(job)
    }
}

/// Records observer calls as strings.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    fn push(&self, s: String) {
        self.0.lock().expect("events").push(s);
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().expect("events").clone()
    }
    async fn wait_for(&self, what: &str, limit: Duration) -> Vec<String> {
        let end = Instant::now() + limit;
        loop {
            let all = self.all();
            if all.iter().any(|e| e.starts_with(what)) {
                return all;
            }
            assert!(
                Instant::now() < end,
                "no {what:?} event within {limit:?}: {all:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl JobObserver for Events {
    async fn on_active(&self, job: &JobInfo) {
        self.push(format!("active {}", job.id));
    }
    async fn on_completed(&self, job: &JobInfo, result: &Value) {
        self.push(format!("completed {} {result}", job.id));
    }
    async fn on_failed(&self, job: &JobInfo, f: &FailureInfo) {
        self.push(format!(
            "failed {} retry={} attempts={} timed_out={} {}",
            job.id, f.will_retry, f.attempts_made, f.timed_out, f.message
        ));
    }
    async fn on_lock_lost(&self, job: &JobInfo) {
        self.push(format!("lock_lost {}", job.id));
    }
    async fn on_released(&self, job: &JobInfo) {
        self.push(format!("released {}", job.id));
    }
    async fn on_postponed(&self, job: &JobInfo, delay: Duration) {
        self.push(format!("postponed {} {}ms", job.id, delay.as_millis()));
    }
    async fn on_stalled(&self, id: &JobId, failed: bool) {
        self.push(format!("stalled {id} failed={failed}"));
    }
}

fn config(queue: &str) -> QueueConfig {
    QueueConfig::new(REDIS_URL)
        .queue_name(queue)
        .lock_duration(Duration::from_millis(800))
        .stalled_interval(Duration::from_millis(300))
        .drain_delay(Duration::from_millis(500))
        .guard_interval(Duration::from_millis(500))
}

struct Running {
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<Result<(), drowl_bull::QueueError>>,
}

impl Running {
    async fn stop(mut self) -> Duration {
        let t0 = Instant::now();
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.handle)
            .await
            .expect("worker task")
            .expect("worker run");
        t0.elapsed()
    }
}

fn start<H: JobHandler>(config: QueueConfig, handler: H, events: &Events) -> Running {
    let (tx, rx) = oneshot::channel::<()>();
    let worker = Worker::new(config, handler).with_observer(events.clone());
    let handle = tokio::spawn(worker.run(async {
        let _ = rx.await;
    }));
    Running {
        stop: Some(tx),
        handle,
    }
}

async fn queue(name: &str) -> Queue {
    Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(name))
        .await
        .expect("connect")
}

async fn wait_state(q: &Queue, id: &str, want: JobState, limit: Duration) {
    let end = Instant::now() + limit;
    loop {
        let s = q.get_job(id).await.expect("get").map(|j| j.state);
        if s == Some(want) {
            return;
        }
        assert!(Instant::now() < end, "job {id} is {s:?}, wanted {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_lock_cancels_the_handler_and_never_completes() {
    let _redis = RedisInUse::acquire();
    let name = unique_queue("lock-lost");
    let q = queue(&name).await;
    let events = Events::default();
    let (reason_tx, reason_rx) = std::sync::mpsc::channel::<Option<CancelReason>>();
    let reason_tx = Arc::new(Mutex::new(reason_tx));
    let handler = FnHandler(move |job: ActiveJob| {
        let reason_tx = Arc::clone(&reason_tx);
        async move {
            // Work spawned off the handler sees the cancellation through the token.
            let token = job.cancellation_token();
            let job = Arc::new(job);
            let watcher = Arc::clone(&job);
            tokio::spawn(async move {
                token.cancelled().await;
                let _ = reason_tx.lock().expect("tx").send(watcher.cancel_reason());
            });
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(json!("must not complete"))
        }
    });
    let w = start(config(&name), handler, &events);
    let id = q.add("x", json!({}), JobOptions::new()).await.expect("add");
    events.wait_for("active", Duration::from_secs(5)).await;
    // Another worker takes the lock (as after an expiry and a stalled recovery).
    let _: () = q
        .client()
        .set(
            q.key(&format!("{id}:lock")),
            "another-worker",
            Some(fred::types::Expiration::PX(10_000)),
            None,
            false,
        )
        .await
        .expect("steal lock");
    let all = events.wait_for("lock_lost", Duration::from_secs(3)).await;
    let reason = reason_rx
        .recv_timeout(Duration::from_secs(2))
        .expect("token cancelled");
    assert_eq!(reason, Some(CancelReason::LockLost));
    assert!(!all.iter().any(|e| e.starts_with("completed")), "{all:?}");
    let job = q.get_job(id.as_str()).await.expect("get").expect("job");
    assert_eq!(job.state, JobState::Active, "left to its new owner");
    assert!(job.returnvalue.is_none());
    w.stop().await;
    q.obliterate().await.expect("clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finishing_without_the_lock_is_refused() {
    let _redis = RedisInUse::acquire();
    let name = unique_queue("finish-no-lock");
    let q = queue(&name).await;
    let events = Events::default();
    let go = Arc::new(tokio::sync::Notify::new());
    let go2 = Arc::clone(&go);
    let handler = FnHandler(move |_job: ActiveJob| {
        let go = Arc::clone(&go2);
        async move {
            go.notified().await;
            Ok(json!("too late"))
        }
    });
    // Renewal far away, so only the finish script can notice the stolen lock.
    let cfg = config(&name)
        .lock_duration(Duration::from_secs(30))
        .lock_renew_time(Duration::from_secs(20));
    let w = start(cfg, handler, &events);
    let id = q.add("x", json!({}), JobOptions::new()).await.expect("add");
    events.wait_for("active", Duration::from_secs(5)).await;
    let _: () = q
        .client()
        .set(
            q.key(&format!("{id}:lock")),
            "another-worker",
            None,
            None,
            false,
        )
        .await
        .expect("steal lock");
    go.notify_one();
    let all = events.wait_for("lock_lost", Duration::from_secs(3)).await;
    assert!(!all.iter().any(|e| e.starts_with("completed")), "{all:?}");
    let job = q.get_job(id.as_str()).await.expect("get").expect("job");
    assert_eq!(job.state, JobState::Active);
    assert!(job.returnvalue.is_none() && job.finished_on.is_none());
    let lock: Option<String> = q
        .client()
        .get(q.key(&format!("{id}:lock")))
        .await
        .expect("lock");
    assert_eq!(
        lock.as_deref(),
        Some("another-worker"),
        "other owner's lock untouched"
    );
    w.stop().await;
    q.obliterate().await.expect("clean");
}

/// Redis loses the queue's data (a restart without persistence) while job 1 runs here; the
/// id counter starts again and the next job added is job 1 too. Each attempt has its own
/// lock value, so the first attempt's finish is refused and the new job 1 ends with its
/// own result. Both renewal paths are covered: `slow_renewal` leaves it to the finish
/// script, the other lets the renewal ticker notice first.
async fn reused_id_case(slow_renewal: bool) {
    let _redis = RedisInUse::acquire();
    let name = unique_queue(if slow_renewal {
        "id-reuse-finish"
    } else {
        "id-reuse-renew"
    });
    let q = queue(&name).await;
    let events = Events::default();
    let handler = FnHandler(|job: ActiveJob| async move {
        let ms = job.data()["ms"].as_u64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(job.data()["who"].clone())
    });
    let cfg = if slow_renewal {
        config(&name)
            .concurrency(2)
            .lock_duration(Duration::from_secs(30))
            .lock_renew_time(Duration::from_secs(20))
    } else {
        config(&name)
            .concurrency(2)
            .lock_duration(Duration::from_millis(1500))
    };
    let w = start(cfg, handler, &events);
    let a = q
        .add("a", json!({"who": "a", "ms": 1000}), JobOptions::new())
        .await
        .expect("add a");
    events.wait_for("active", Duration::from_secs(5)).await;
    let keys: Vec<String> = q
        .client()
        .custom(
            fred::types::CustomCommand::new_static(
                "KEYS",
                fred::types::ClusterHash::FirstKey,
                false,
            ),
            vec![format!("{}*", q.key(""))],
        )
        .await
        .expect("keys");
    assert!(!keys.is_empty());
    let _: i64 = q.client().del(keys).await.expect("lose the data");
    let b = q
        .add("b", json!({"who": "b", "ms": 2500}), JobOptions::new())
        .await
        .expect("add b");
    assert_eq!(a, b, "the id counter started again");
    wait_state(&q, b.as_str(), JobState::Completed, Duration::from_secs(10)).await;
    let job = q.get_job(b.as_str()).await.expect("get").expect("job");
    assert_eq!(
        job.returnvalue,
        Some(json!("b")),
        "job {b} ended with another job's result"
    );
    let all = events.all();
    assert!(
        all.iter().any(|e| e == &format!("lock_lost {a}")),
        "the first attempt must learn it lost the lock: {all:?}"
    );
    assert_eq!(
        all.iter().filter(|e| e.starts_with("completed")).count(),
        1,
        "{all:?}"
    );
    w.stop().await;
    q.obliterate().await.expect("clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_id_is_not_finished_by_the_previous_attempt() {
    reused_id_case(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_id_is_not_renewed_by_the_previous_attempt() {
    reused_id_case(false).await;
}

/// A postponed job waits in `delayed` for the delay, without an attempt counted, and is
/// then taken again and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postponed_job_comes_back_without_using_an_attempt() {
    let _redis = RedisInUse::acquire();
    let name = unique_queue("postpone");
    let q = queue(&name).await;
    let events = Events::default();
    let tries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Arc::clone(&tries);
    let handler = FnHandler(move |_job: ActiveJob| {
        let n = t.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            if n == 0 {
                Err(HandlerError::postponed(
                    "not now",
                    Duration::from_millis(400),
                ))
            } else {
                Ok(json!("done"))
            }
        }
    });
    let w = start(config(&name), handler, &events);
    let id = q
        .add("x", json!({}), JobOptions::new().attempts(1))
        .await
        .expect("add");
    events.wait_for("postponed", Duration::from_secs(5)).await;
    let t0 = Instant::now();
    let rec = q.get_job(id.as_str()).await.expect("get").expect("job");
    assert_eq!(rec.state, JobState::Delayed);
    assert_eq!(rec.attempts_made, 0);
    wait_state(&q, id.as_str(), JobState::Completed, Duration::from_secs(5)).await;
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t0.elapsed()
    );
    let rec = q.get_job(id.as_str()).await.expect("get").expect("job");
    assert_eq!(
        (rec.attempts_made, rec.returnvalue.clone()),
        (0, Some(json!("done"))),
        "one attempt allowed, and the postponement did not use it"
    );
    let all = events.all();
    assert!(!all.iter().any(|e| e.starts_with("failed")), "{all:?}");
    w.stop().await;
    q.obliterate().await.expect("clean");
}

/// Bull's `limiter`: at most 3 jobs started per 600 ms window across the queue. Nine jobs
/// take at least two full windows; none uses an attempt; all complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limiter_spreads_jobs_over_windows() {
    let _redis = RedisInUse::acquire();
    let name = unique_queue("limiter");
    let q = queue(&name).await;
    let events = Events::default();
    let starts = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let s2 = Arc::clone(&starts);
    let handler = FnHandler(move |_job: ActiveJob| {
        s2.lock().expect("starts").push(Instant::now());
        async { Ok(json!("ok")) }
    });
    let mut ids = Vec::new();
    for i in 0..9 {
        ids.push(
            q.add("x", json!({"i": i}), JobOptions::new())
                .await
                .expect("add"),
        );
    }
    let t0 = Instant::now();
    let w = start(
        config(&name)
            .concurrency(4)
            .limiter(3, Duration::from_millis(600)),
        handler,
        &events,
    );
    for id in &ids {
        wait_state(
            &q,
            id.as_str(),
            JobState::Completed,
            Duration::from_secs(10),
        )
        .await;
    }
    let took = t0.elapsed();
    let mut starts = starts.lock().expect("starts").clone();
    starts.sort();
    assert_eq!(starts.len(), 9, "each job ran once");
    // No 3 + 1 starts inside one window.
    for w4 in starts.windows(4) {
        assert!(
            w4[3] - w4[0] >= Duration::from_millis(550),
            "4 jobs started within {:?}",
            w4[3] - w4[0]
        );
    }
    assert!(
        took >= Duration::from_millis(1150),
        "9 jobs at 3 per 600 ms in {took:?}"
    );
    for id in &ids {
        let rec = q.get_job(id.as_str()).await.expect("get").expect("job");
        assert_eq!(rec.attempts_made, 0, "{id}");
    }
    w.stop().await;
    q.obliterate().await.expect("clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_jobs_are_requeued_then_failed_past_the_limit() {
    let _redis = RedisInUse::acquire();
    let name = unique_queue("stalled");
    let q = queue(&name).await;
    let c = q.client().clone();
    // Two jobs taken by a worker that then died: in `active`, no lock. The second has
    // already stalled once (max_stalled_count is 1).
    let a = q
        .add("x", json!({"n": 1}), JobOptions::new())
        .await
        .expect("add");
    let b = q
        .add(
            "x",
            json!({"n": 2}),
            JobOptions::new().remove_on_fail(drowl_bull::KeepJobs::Count(10)),
        )
        .await
        .expect("add");
    for _ in 0..2 {
        let _: Option<String> = c
            .rpoplpush(q.key("wait"), q.key("active"))
            .await
            .expect("pop");
    }
    let _: i64 = c
        .hincrby(q.key(b.as_str()), "stalledCounter", 1)
        .await
        .expect("counter");
    let events = Events::default();
    let handler = FnHandler(|job: ActiveJob| async move { Ok(job.data().clone()) });
    let w = start(config(&name), handler, &events);
    wait_state(&q, a.as_str(), JobState::Completed, Duration::from_secs(5)).await;
    wait_state(&q, b.as_str(), JobState::Failed, Duration::from_secs(5)).await;
    let all = events.all();
    assert!(
        all.contains(&format!("stalled {a} failed=false")),
        "{all:?}"
    );
    assert!(all.contains(&format!("stalled {b} failed=true")), "{all:?}");
    let failed = q.get_job(b.as_str()).await.expect("get").expect("job");
    assert_eq!(
        failed.failed_reason.as_deref(),
        Some("job stalled more than allowable limit")
    );
    assert_eq!(failed.stalled_counter, Some(2));
    let done = q.get_job(a.as_str()).await.expect("get").expect("job");
    assert_eq!(done.returnvalue, Some(json!({"n": 1})));
    assert_eq!(done.stalled_counter, Some(1));
    w.stop().await;
    q.obliterate().await.expect("clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_cancels_and_fails_the_attempt() {
    let _redis = RedisInUse::acquire();
    let name = unique_queue("timeout");
    let q = queue(&name).await;
    let events = Events::default();
    let seen = Arc::new(Mutex::new(None));
    let seen2 = Arc::clone(&seen);
    let handler = FnHandler(move |job: ActiveJob| {
        let seen = Arc::clone(&seen2);
        async move {
            let token = job.cancellation_token();
            let job = Arc::new(job);
            let j2 = Arc::clone(&job);
            tokio::spawn(async move {
                token.cancelled().await;
                *seen.lock().expect("seen") = j2.cancel_reason();
            });
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(Value::Null)
        }
    });
    let w = start(config(&name), handler, &events);
    let id = q
        .add("x", json!({}), JobOptions::new().timeout(200).attempts(2))
        .await
        .expect("add");
    wait_state(&q, id.as_str(), JobState::Failed, Duration::from_secs(5)).await;
    let job = q.get_job(id.as_str()).await.expect("get").expect("job");
    assert_eq!(
        job.failed_reason.as_deref(),
        Some("Promise timed out after 200 milliseconds")
    );
    assert_eq!(job.attempts_made, 2);
    assert_eq!(
        job.stacktrace,
        vec!["TimeoutError: Promise timed out after 200 milliseconds"; 2]
    );
    let all = events.all();
    assert!(
        all.contains(&format!(
            "failed {id} retry=true attempts=1 timed_out=true Promise timed out after 200 milliseconds"
        )),
        "{all:?}"
    );
    assert_eq!(*seen.lock().expect("seen"), Some(CancelReason::Timeout));
    w.stop().await;
    q.obliterate().await.expect("clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_backoff_strategy_can_stop_retries() {
    let _redis = RedisInUse::acquire();
    let name = unique_queue("custom-backoff");
    let q = queue(&name).await;
    let events = Events::default();
    let handler = FnHandler(|_job: ActiveJob| async move {
        Err::<Value, _>(HandlerError::failed("nope").with_code("E_TEST"))
    });
    let (tx, rx) = oneshot::channel::<()>();
    let worker = Worker::new(config(&name), handler)
        .with_observer(events.clone())
        .with_backoff_strategy(
            "twice",
            Arc::new(
                |ctx: &drowl_bull::BackoffContext<'_>| {
                    if ctx.attempts_made >= 2 { -1 } else { 50 }
                },
            ),
        );
    let handle = tokio::spawn(worker.run(async {
        let _ = rx.await;
    }));
    let id = q
        .add(
            "x",
            json!({}),
            JobOptions::new().attempts(10).backoff(drowl_bull::Backoff {
                kind: "twice".into(),
                delay: None,
                options: None,
            }),
        )
        .await
        .expect("add");
    wait_state(&q, id.as_str(), JobState::Failed, Duration::from_secs(5)).await;
    assert_eq!(
        q.get_job(id.as_str())
            .await
            .expect("get")
            .expect("job")
            .attempts_made,
        2
    );
    let _ = tx.send(());
    handle.await.expect("join").expect("run");
    q.obliterate().await.expect("clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_short_jobs_and_releases_long_ones() {
    let _redis = RedisInUse::acquire();
    let name = unique_queue("shutdown");
    let q = queue(&name).await;
    let events = Events::default();
    let handler = FnHandler(|job: ActiveJob| async move {
        let ms = job.data()["ms"].as_u64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(json!(ms))
    });
    let cfg = config(&name)
        .concurrency(2)
        .shutdown_grace(Duration::from_millis(700));
    let w = start(cfg, handler, &events);
    let short = q
        .add("x", json!({"ms": 200}), JobOptions::new())
        .await
        .expect("add");
    let long = q
        .add("x", json!({"ms": 60_000}), JobOptions::new())
        .await
        .expect("add");
    let waiting = q
        .add("x", json!({"ms": 1}), JobOptions::new().delay(0))
        .await
        .expect("add");
    let end = Instant::now() + Duration::from_secs(5);
    while events
        .all()
        .iter()
        .filter(|e| e.starts_with("active"))
        .count()
        < 2
    {
        assert!(
            Instant::now() < end,
            "jobs not picked up: {:?}",
            events.all()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = w.stop().await;
    assert!(
        took < Duration::from_millis(700 + 1500),
        "shutdown took {took:?}"
    );
    let all = events.all();
    assert!(all.contains(&format!("completed {short} 200")), "{all:?}");
    assert!(all.contains(&format!("released {long}")), "{all:?}");
    let l = q.get_job(long.as_str()).await.expect("get").expect("job");
    assert_eq!(l.state, JobState::Waiting, "released to the wait list");
    assert_eq!(l.attempts_made, 0, "a release is not a failed attempt");
    let lock: Option<String> = q
        .client()
        .get(q.key(&format!("{long}:lock")))
        .await
        .expect("lock");
    assert!(lock.is_none(), "lock released");
    // The released job is next in line, before the one that was never taken.
    let wait: Vec<String> = q.client().lrange(q.key("wait"), 0, -1).await.expect("wait");
    assert_eq!(
        wait.last().map(String::as_str),
        Some(long.as_str()),
        "{wait:?}"
    );
    assert!(wait.contains(&waiting.to_string()));
    let counts = q.get_job_counts().await.expect("counts");
    assert_eq!((counts.active, counts.completed, counts.waiting), (0, 1, 2));
    q.obliterate().await.expect("clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_logs_and_repeat_from_rust() {
    let _redis = RedisInUse::acquire();
    let name = unique_queue("rust-api");
    let q = queue(&name).await;
    let events = Events::default();
    let handler = FnHandler(|job: ActiveJob| async move {
        job.progress(json!(42))
            .await
            .map_err(|e| HandlerError::failed(e.to_string()))?;
        job.log("hello")
            .await
            .map_err(|e| HandlerError::failed(e.to_string()))?;
        Ok(json!({"name": job.name()}))
    });
    let w = start(config(&name), handler, &events);
    let id = q
        .add("named", json!({}), JobOptions::new())
        .await
        .expect("add");
    wait_state(&q, id.as_str(), JobState::Completed, Duration::from_secs(5)).await;
    let job = q.get_job(id.as_str()).await.expect("get").expect("job");
    assert_eq!(job.progress, json!(42));
    assert_eq!(job.returnvalue, Some(json!({"name": "named"})));
    let logs: Vec<String> = q
        .client()
        .lrange(q.key(&format!("{id}:logs")), 0, -1)
        .await
        .expect("logs");
    assert_eq!(logs, vec!["hello"]);
    // every 300 ms, 3 times
    q.add(
        "tick",
        json!({}),
        JobOptions::new().repeat(drowl_bull::RepeatOptions {
            every: Some(300),
            limit: Some(3),
            ..Default::default()
        }),
    )
    .await
    .expect("add repeat");
    let end = Instant::now() + Duration::from_secs(5);
    while q.get_job_counts().await.expect("counts").completed < 4 {
        assert!(Instant::now() < end, "repeat did not run 3 times");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let counts = q.get_job_counts().await.expect("counts");
    assert_eq!((counts.completed, counts.delayed), (4, 0), "limit 3 stops");
    let keys = q.get_repeatable_keys().await.expect("repeat keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].0, "tick:::300");
    w.stop().await;
    q.obliterate().await.expect("clean");
}
