//! The worker: fetches jobs, runs them through a [`JobHandler`], and does every duty Bull's
//! add-only clients rely on (lock renewal, stalled check, delayed promotion, repeat
//! scheduling, finished events).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use fred::prelude::{Client, ClientLike, EventInterface, PubsubInterface};
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backoff::{self, BackoffStrategy, RetryDecision};
use crate::config::QueueConfig;
use crate::conn;
use crate::error::{HandlerError, QueueError};
use crate::job::{JobId, JobState, KeepJobs, parse_json_lenient, value_as_i64};
use crate::queue::{Core, Queue, hash_from_flat, now_ms, redis_i64, redis_string};
use crate::scripts::ScriptCall;
use crate::scripts::calls::{
    ExtendLocks, Finished, MoveStalledJobsToWait, MoveToActive, MoveToFinished, Postpone, Release,
    RequeueUnlocked, Retry, RetryTo, TakeNext, UpdateDelaySet,
};

/// What runs a job. Implement it with `async fn handle(&self, job: ActiveJob) -> …`.
///
/// Why a trait with one method: the host routes by job name/type itself; the worker only
/// needs "run this and tell me the result". The returned value becomes Bull's `returnvalue`
/// and what `job.finished()` resolves with.
pub trait JobHandler: Send + Sync + 'static {
    /// Run one attempt of a job. Watch [`ActiveJob::cancelled`] in long work: the worker
    /// cancels on lock loss, timeout and shutdown, and stops polling this future then.
    fn handle(&self, job: ActiveJob) -> impl Future<Output = Result<Value, HandlerError>> + Send;
}

/// Why a running job was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// The lock could not be renewed: another worker may own the job now; its result must
    /// not be reported.
    LockLost,
    /// `opts.timeout` elapsed; the attempt is failed with Bull's timeout message.
    Timeout,
    /// The worker is shutting down and the grace period is over; the job is released back
    /// to the wait list.
    Shutdown,
}

/// What is known about a job when it becomes active.
///
/// Why public: observers mirror job states elsewhere (drowl's Postgres `jobs` table) and
/// need the input, options and attempt count without another Redis read.
#[derive(Clone, Debug)]
pub struct JobInfo {
    /// The id.
    pub id: JobId,
    /// Job name (`__default__` when added without one); per-name limits key on it.
    pub name: String,
    /// Decoded `data` (a string when not JSON or when `preventParsingData` is set).
    pub data: Value,
    /// Decoded `opts`.
    pub opts: Value,
    /// Failed attempts before this one.
    pub attempts_made: u32,
    /// When the job was added (epoch ms).
    pub timestamp: Option<i64>,
    /// When this attempt started (epoch ms).
    pub processed_on: i64,
}

impl JobInfo {
    /// `opts.attempts` (default 1).
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.opts
            .get("attempts")
            .and_then(value_as_i64)
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or(1)
            .max(1)
    }

    /// `opts.timeout`, if set.
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.opts
            .get("timeout")
            .and_then(value_as_i64)
            .and_then(|t| u64::try_from(t).ok())
            .filter(|t| *t > 0)
            .map(Duration::from_millis)
    }
}

/// How an attempt failed, for observers.
#[derive(Clone, Debug)]
pub struct FailureInfo {
    /// The `failedReason`.
    pub message: String,
    /// The handler's code, if any.
    pub code: Option<String>,
    /// The handler's details, if any.
    pub details: Option<Value>,
    /// Whether another attempt follows.
    pub will_retry: bool,
    /// Failed attempts including this one (Bull's `attemptsMade`).
    pub attempts_made: u32,
    /// Delay before the retry, when one follows after a delay.
    pub retry_delay: Option<Duration>,
    /// The attempt exceeded `opts.timeout`.
    pub timed_out: bool,
}

/// Hooks called as jobs move, so the host can mirror states (e.g. into Postgres).
///
/// Why async with no-op defaults: mirroring is I/O the worker should wait for (so the
/// mirror never runs ahead of Redis in the wrong order), and most users need only a few.
/// Hooks run on the job's task; keep them short.
pub trait JobObserver: Send + Sync + 'static {
    /// The job was taken (lock held), before the handler runs.
    fn on_active(&self, _job: &JobInfo) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// The job was moved to completed (or removed per removeOnComplete) under our lock.
    fn on_completed(&self, _job: &JobInfo, _result: &Value) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// An attempt failed; `failure.will_retry` tells whether the job goes back to
    /// delayed/wait or to failed.
    fn on_failed(&self, _job: &JobInfo, _failure: &FailureInfo) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// The lock was lost: nothing was recorded for this attempt; another worker may run it.
    fn on_lock_lost(&self, _job: &JobInfo) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// On shutdown, the job was released back to the wait list unfinished.
    fn on_released(&self, _job: &JobInfo) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// The handler postponed the job: it waits in `delayed` for `delay`, no attempt counted.
    fn on_postponed(&self, _job: &JobInfo, _delay: Duration) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// The stalled check found a job whose worker died: requeued, or failed when it stalled
    /// more than `max_stalled_count` times.
    fn on_stalled(&self, _job_id: &JobId, _failed: bool) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// An observer that does nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl JobObserver for NoopObserver {}

/// The job a handler runs: its fields, a cancellation signal, and progress/log reporting.
#[derive(Debug)]
pub struct ActiveJob {
    info: Arc<JobInfo>,
    slot: Arc<Slot>,
    core: Core,
}

impl ActiveJob {
    /// The id.
    #[must_use]
    pub fn id(&self) -> &JobId {
        &self.info.id
    }

    /// The job name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The decoded data.
    #[must_use]
    pub fn data(&self) -> &Value {
        &self.info.data
    }

    /// The decoded options.
    #[must_use]
    pub fn opts(&self) -> &Value {
        &self.info.opts
    }

    /// Failed attempts before this one.
    #[must_use]
    pub fn attempts_made(&self) -> u32 {
        self.info.attempts_made
    }

    /// Everything known about the job.
    #[must_use]
    pub fn info(&self) -> &JobInfo {
        &self.info
    }

    /// A token cancelled on lock loss, timeout or shutdown; hand it to spawned work.
    #[must_use]
    pub fn cancellation_token(&self) -> CancellationToken {
        self.slot.cancel.clone()
    }

    /// Resolves when the attempt is cancelled.
    pub async fn cancelled(&self) {
        self.slot.cancel.cancelled().await;
    }

    /// Whether the attempt was cancelled.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.slot.cancel.is_cancelled()
    }

    /// Why the attempt was cancelled, once it is.
    #[must_use]
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.slot.reason.get().copied()
    }

    /// Report progress (HSET `progress` + publish on `P:progress`, as `job.progress()`).
    pub async fn progress(&self, value: Value) -> Result<(), QueueError> {
        self.core.progress(self.info.id.as_str(), &value).await
    }

    /// Append a line to the job's log (`job.log()`); returns the number of lines.
    pub async fn log(&self, row: &str) -> Result<u64, QueueError> {
        self.core.log(self.info.id.as_str(), row).await
    }
}

/// Per-attempt state shared between its task and the renewal ticker.
#[derive(Debug)]
struct Slot {
    /// The job id.
    id: String,
    /// This attempt's lock value. One per attempt, not one per process: after Redis loses
    /// its data the id counter starts again, and a new job can get the id of a job still
    /// running here; with a shared token the old attempt's renewals and finish would pass
    /// the lock check of the new job and complete it with the old job's result.
    token: String,
    cancel: CancellationToken,
    reason: OnceLock<CancelReason>,
    /// Last time the lock was known to be ours.
    renewed: Mutex<Instant>,
}

impl Slot {
    fn new(id: String, token: String) -> Self {
        Self {
            id,
            token,
            cancel: CancellationToken::new(),
            reason: OnceLock::new(),
            renewed: Mutex::new(Instant::now()),
        }
    }

    fn cancel(&self, reason: CancelReason) {
        let _ = self.reason.set(reason);
        self.cancel.cancel();
    }

    fn touch(&self) {
        *self.renewed.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn since_renewed(&self) -> Duration {
        self.renewed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }
}

/// A job taken by moveToActive.
struct Fetched {
    id: String,
    /// The lock value moveToActive set.
    token: String,
    hash: HashMap<String, String>,
}

enum FetchOutcome {
    Job(Fetched),
    /// Popped, but its hash is gone (removed while waiting); keep fetching.
    Vanished,
    /// The rate limiter sent the popped job to `delayed`; the window ends in this long.
    Limited(Duration),
    Empty,
}

/// The Bull-compatible worker.
///
/// Why one type owning all duties: Bull spreads them over a Queue instance that called
/// `process()`; here one `run()` owns fetching, the renewal ticker, the stalled check and
/// the promoter, and stops them together.
pub struct Worker<H, O = NoopObserver> {
    config: QueueConfig,
    handler: Arc<H>,
    observer: Arc<O>,
    strategies: HashMap<String, BackoffStrategy>,
}

impl<H: JobHandler> Worker<H, NoopObserver> {
    /// A worker for `config` running `handler`, with drowl's `linear` backoff registered.
    #[must_use]
    pub fn new(config: QueueConfig, handler: H) -> Self {
        Self {
            config,
            handler: Arc::new(handler),
            observer: Arc::new(NoopObserver),
            strategies: HashMap::from([("linear".to_owned(), backoff::linear())]),
        }
    }
}

impl<H: JobHandler, O: JobObserver> Worker<H, O> {
    /// Mirror job states through `observer`.
    #[must_use]
    pub fn with_observer<O2: JobObserver>(self, observer: O2) -> Worker<H, O2> {
        Worker {
            config: self.config,
            handler: self.handler,
            observer: Arc::new(observer),
            strategies: self.strategies,
        }
    }

    /// Register a custom backoff strategy under `name` (Bull's
    /// `settings.backoffStrategies`).
    #[must_use]
    pub fn with_backoff_strategy(mut self, name: impl Into<String>, s: BackoffStrategy) -> Self {
        self.strategies.insert(name.into(), s);
        self
    }

    /// Run until `shutdown` resolves: then stop fetching, let running jobs finish within
    /// `shutdown_grace`, release the rest to the wait list, and return.
    ///
    /// Redis being unreachable is not an error: the worker reconnects with backoff and goes
    /// on. Errors are returned only for unusable configuration.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), QueueError> {
        self.config.validate()?;
        tokio::pin!(shutdown);
        let core = tokio::select! {
            c = Core::connect(&self.config) => c?,
            () = &mut shutdown => return Ok(()),
        };
        conn::check_eviction_policy(&core.client).await;
        let shared = Arc::new(Shared {
            core,
            active: Mutex::new(HashMap::new()),
            attempts: AtomicU64::new(0),
            handler: self.handler,
            observer: self.observer,
            strategies: self.strategies,
        });
        tracing::info!(
            queue = %shared.core.config.queue_name,
            token = %shared.core.token,
            concurrency = shared.core.config.concurrency,
            "bull worker started"
        );

        let stop_fetch = CancellationToken::new();
        let stop_duties = CancellationToken::new();
        let jobs = TaskTracker::new();
        let duties = TaskTracker::new();
        duties.spawn(Arc::clone(&shared).renew_loop(stop_duties.clone()));
        duties.spawn(Arc::clone(&shared).stalled_loop(stop_duties.clone()));
        duties.spawn(Arc::clone(&shared).promoter_loop(stop_duties.clone()));
        let fetch = tokio::spawn(Arc::clone(&shared).fetch_loop(stop_fetch.clone(), jobs.clone()));

        shutdown.await;
        tracing::info!("bull worker shutting down: no new jobs are taken");
        stop_fetch.cancel();
        if let Err(e) = fetch.await {
            tracing::error!(error = %e, "fetch loop panicked");
        }
        jobs.close();
        let grace = shared.core.config.shutdown_grace;
        if timeout(grace, jobs.wait()).await.is_err() {
            let slots = shared.slots();
            tracing::info!(
                running = slots.len(),
                "grace period over: releasing running jobs"
            );
            for s in slots {
                s.cancel(CancelReason::Shutdown);
            }
            jobs.wait().await;
        }
        stop_duties.cancel();
        duties.close();
        duties.wait().await;
        let _ = timeout(Duration::from_secs(2), shared.core.client.quit()).await;
        tracing::info!("bull worker stopped");
        Ok(())
    }
}

impl<H, O> std::fmt::Debug for Worker<H, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("config", &self.config)
            .field("strategies", &self.strategies.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What the worker's tasks share.
struct Shared<H, O> {
    core: Core,
    /// Running attempts by lock token (not by job id: see [`Slot::token`]).
    active: Mutex<HashMap<String, Arc<Slot>>>,
    /// Numbers the attempts this process takes, for their lock tokens.
    attempts: AtomicU64,
    handler: Arc<H>,
    observer: Arc<O>,
    strategies: HashMap<String, BackoffStrategy>,
}

/// Exponential backoff for retry loops: never spin hot on a dead Redis.
struct Pause {
    next: Duration,
}

impl Pause {
    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Self {
        Self { next: Self::MIN }
    }

    fn reset(&mut self) {
        self.next = Self::MIN;
    }

    /// Sleep for the current delay (or until `stop`), then double it. Returns false when
    /// stopped.
    async fn wait(&mut self, stop: &CancellationToken) -> bool {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        tokio::select! {
            () = sleep(d) => true,
            () = stop.cancelled() => false,
        }
    }
}

impl<H: JobHandler, O: JobObserver> Shared<H, O> {
    fn config(&self) -> &QueueConfig {
        &self.core.config
    }

    /// `<prefix>:<queue>:`, the first argument of every script.
    fn prefix(&self) -> &str {
        self.core.keys.base()
    }

    fn slots(&self) -> Vec<Arc<Slot>> {
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(Arc::clone)
            .collect()
    }

    /// A fresh lock token for the next attempt: the process token and a sequence number.
    fn next_token(&self) -> String {
        let n = self.attempts.fetch_add(1, Ordering::Relaxed);
        format!("{}:{n}", self.core.token)
    }

    /// moveToActive with a popped id, or popping itself (RPOPLPUSH) when `id` is `None`.
    async fn move_to_active(&self, id: Option<&str>) -> Result<FetchOutcome, QueueError> {
        let token = self.next_token();
        let call = MoveToActive {
            prefix: self.prefix(),
            job_id: id,
            token: &token,
            lock_duration: self.config().lock_duration,
            now: now_ms(),
            limiter: self.config().limiter,
        };
        let reply = self.core.scripts.run(&self.core.client, &call).await?;
        parse_take(reply, token)
    }

    /// Take jobs while slots are free: RPOPLPUSH inside the script while the previous fetch
    /// found work, BRPOPLPUSH on a dedicated connection (bounded by `drain_delay`) when idle.
    async fn fetch_loop(self: Arc<Self>, stop: CancellationToken, jobs: TaskTracker) {
        let slots = Arc::new(Semaphore::new(self.config().concurrency));
        let mut blocking: Option<Client> = None;
        let mut found_last_time = true;
        let mut pause = Pause::new();
        loop {
            let permit = tokio::select! {
                p = Arc::clone(&slots).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = stop.cancelled() => break,
            };
            if found_last_time {
                match self.move_to_active(None).await {
                    Ok(FetchOutcome::Job(job)) => {
                        pause.reset();
                        self.spawn_job(&jobs, job, permit, &stop);
                        continue;
                    }
                    Ok(FetchOutcome::Vanished) => continue,
                    Ok(FetchOutcome::Limited(wait)) => {
                        drop(permit);
                        if !self.limited_pause(wait, &stop).await {
                            break;
                        }
                        continue;
                    }
                    Ok(FetchOutcome::Empty) => found_last_time = false,
                    Err(e) => {
                        tracing::warn!(error = %e, "fetching a job failed; backing off");
                        drop(permit);
                        if !pause.wait(&stop).await {
                            break;
                        }
                        continue;
                    }
                }
                if stop.is_cancelled() {
                    break;
                }
            }
            let client = match &blocking {
                Some(c) => c.clone(),
                None => {
                    let c = tokio::select! {
                        c = conn::blocking_client(self.config()) => c,
                        () = stop.cancelled() => break,
                    };
                    match c {
                        Ok(c) => {
                            blocking = Some(c.clone());
                            c
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "blocking connection failed; backing off");
                            drop(permit);
                            if !pause.wait(&stop).await {
                                break;
                            }
                            continue;
                        }
                    }
                }
            };
            match self.blocking_pop(&client, &stop).await {
                Ok(Some(id)) if stop.is_cancelled() => {
                    self.requeue_unlocked(&id).await;
                    break;
                }
                Ok(Some(id)) => match self.move_to_active(Some(&id)).await {
                    Ok(FetchOutcome::Job(job)) => {
                        pause.reset();
                        found_last_time = true;
                        self.spawn_job(&jobs, job, permit, &stop);
                    }
                    Ok(FetchOutcome::Limited(wait)) => {
                        drop(permit);
                        found_last_time = true;
                        if !self.limited_pause(wait, &stop).await {
                            break;
                        }
                    }
                    Ok(_) => found_last_time = true,
                    Err(e) => {
                        // The job sits in `active` without a lock; the stalled check recovers it.
                        tracing::warn!(job = %id, error = %e, "taking a popped job failed");
                        drop(permit);
                        if !pause.wait(&stop).await {
                            break;
                        }
                    }
                },
                Ok(None) => {
                    pause.reset();
                    if stop.is_cancelled() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "blocking pop failed; reconnecting");
                    drop(permit);
                    if let Some(c) = blocking.take() {
                        tokio::spawn(async move {
                            let _ = timeout(Duration::from_secs(1), c.quit()).await;
                        });
                    }
                    if !pause.wait(&stop).await {
                        break;
                    }
                }
            }
        }
        if let Some(c) = blocking {
            let _ = timeout(Duration::from_secs(1), c.quit()).await;
        }
    }

    /// After the rate limiter turned a job away: fetch again when the window ends (the
    /// job itself waits in `delayed` until then), instead of moving the whole wait list
    /// to `delayed` one job per round trip. Returns false when stopped.
    async fn limited_pause(&self, wait: Duration, stop: &CancellationToken) -> bool {
        tokio::select! {
            () = sleep(wait.min(Duration::from_secs(60))) => true,
            () = stop.cancelled() => false,
        }
    }

    /// BRPOPLPUSH wait→active. On `stop`, the blocked command is cut short with
    /// `CLIENT UNBLOCK` and awaited, so a job popped in that instant is not left behind.
    async fn blocking_pop(
        &self,
        client: &Client,
        stop: &CancellationToken,
    ) -> Result<Option<String>, QueueError> {
        let conn_id: i64 = client.custom(conn::cmd("CLIENT"), vec!["ID"]).await?;
        let timeout_secs = self.config().drain_delay.as_secs_f64();
        // A custom command, because fred's `brpoplpush` reports the server's nil (timeout)
        // as the same error as a client-side command timeout.
        let pop = client.custom::<Option<String>, _>(
            fred::types::CustomCommand::new_static(
                "BRPOPLPUSH",
                fred::types::ClusterHash::FirstKey,
                true,
            ),
            vec![
                self.core.keys.key("wait"),
                self.core.keys.key("active"),
                format!("{timeout_secs}"),
            ],
        );
        tokio::pin!(pop);
        tokio::select! {
            r = &mut pop => Ok(r?),
            () = stop.cancelled() => {
                let _: Result<i64, _> = self
                    .core
                    .client
                    .custom(conn::cmd("CLIENT"), vec!["UNBLOCK".to_owned(), conn_id.to_string()])
                    .await;
                match timeout(self.config().drain_delay + Duration::from_secs(1), pop).await {
                    Ok(r) => Ok(r?),
                    Err(_) => Ok(None),
                }
            }
        }
    }

    /// Undo a pop that raced with shutdown.
    async fn requeue_unlocked(&self, id: &str) {
        let call = RequeueUnlocked {
            prefix: self.prefix(),
            job_id: id,
            token: &self.core.token,
        };
        let r = self.core.scripts.run(&self.core.client, &call).await;
        if let Err(e) = r {
            tracing::warn!(job = %id, error = %e, "could not requeue a job popped during shutdown; the stalled check will");
        }
    }

    /// Run a job on its own task; while its finish script hands over the next job (same
    /// round trip, as Bull's moveToFinished does), keep going on the same slot.
    fn spawn_job(
        self: &Arc<Self>,
        jobs: &TaskTracker,
        job: Fetched,
        permit: OwnedSemaphorePermit,
        stop: &CancellationToken,
    ) {
        let this = Arc::clone(self);
        let stop = stop.clone();
        jobs.spawn(async move {
            let mut next = Some(job);
            while let Some(job) = next.take() {
                next = this.run_job(job, &stop).await;
            }
            drop(permit);
        });
    }

    /// One attempt of one job; returns the next job when finishing took one.
    async fn run_job(&self, job: Fetched, stop: &CancellationToken) -> Option<Fetched> {
        let Fetched { id, token, hash } = job;
        let opts_raw = hash.get("opts").map_or("{}", String::as_str);
        let opts = parse_json_lenient(opts_raw);
        let opts_map: Map<String, Value> = opts.as_object().cloned().unwrap_or_default();
        let raw_data = hash.get("data").cloned().unwrap_or_else(|| "{}".to_owned());
        let data = if opts.get("preventParsingData") == Some(&Value::Bool(true)) {
            Value::String(raw_data.clone())
        } else {
            parse_json_lenient(&raw_data)
        };
        let info = Arc::new(JobInfo {
            id: JobId(id.clone()),
            name: hash
                .get("name")
                .cloned()
                .unwrap_or_else(|| "__default__".to_owned()),
            data,
            opts,
            attempts_made: hash
                .get("attemptsMade")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            timestamp: hash.get("timestamp").and_then(|s| s.parse().ok()),
            processed_on: hash
                .get("processedOn")
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(now_ms),
        });
        let stacktrace: Vec<String> = hash
            .get("stacktrace")
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let slot = Arc::new(Slot::new(id.clone(), token.clone()));
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.clone(), Arc::clone(&slot));

        self.observer.on_active(&info).await;
        if opts_map.contains_key("repeat")
            && let Err(e) = self
                .core
                .schedule_next_repeat(&info.name, raw_data, &opts_map, false)
                .await
        {
            tracing::warn!(job = %id, error = %e, "could not schedule the next repeat");
        }

        let active = ActiveJob {
            info: Arc::clone(&info),
            slot: Arc::clone(&slot),
            core: self.core.clone(),
        };
        let limit = info.timeout();
        let work = self.handler.handle(active);
        let outcome = tokio::select! {
            biased;
            () = slot.cancel.cancelled() => None,
            r = work => Some(r),
            () = sleep_opt(limit) => {
                slot.cancel(CancelReason::Timeout);
                let ms = limit.map_or(0, |d| d.as_millis());
                Some(Err(HandlerError::failed(format!("Promise timed out after {ms} milliseconds"))))
            }
        };
        let fetch_next = !stop.is_cancelled();
        let next = match outcome {
            Some(Ok(value)) => self.complete(&info, &slot, &value, fetch_next).await,
            Some(Err(HandlerError::Postponed { message, delay })) => {
                self.postpone(&info, &slot, delay, &message).await;
                None
            }
            Some(Err(err)) => {
                let timed_out = slot.reason.get() == Some(&CancelReason::Timeout);
                self.fail(&info, &slot, stacktrace, &err, timed_out, fetch_next)
                    .await
            }
            None => {
                match slot.reason.get() {
                    Some(CancelReason::Shutdown) => self.release(&info, &slot).await,
                    _ => {
                        tracing::warn!(job = %id, "lock lost: abandoning the job without finishing it");
                        self.observer.on_lock_lost(&info).await;
                    }
                }
                None
            }
        };
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&token);
        next
    }

    /// Run a finishing script, retrying transport errors while our lock can still be valid.
    /// Returns the script's code and, when the script also took the next job, that job.
    /// After a transport error a negative code is ambiguous (the first try may have
    /// applied); `applied_state` is then checked as proof.
    async fn finishing<C: EndsAttempt>(
        &self,
        slot: &Slot,
        mut call: C,
        id: &str,
        applied_state: Option<JobState>,
    ) -> Result<(i64, Option<Fetched>), QueueError> {
        let mut pause = Pause::new();
        let never = CancellationToken::new();
        let mut transport_error = false;
        loop {
            match self.core.scripts.run(&self.core.client, &call).await {
                Ok(v) => {
                    let (v, next) = match v {
                        fred::types::Value::Array(parts) => {
                            let mut it = parts.into_iter();
                            let code = it.next().unwrap_or(fred::types::Value::Null);
                            let token = call.chained_token().unwrap_or_default().to_owned();
                            let next = match it.next().map(|r| parse_take(r, token)) {
                                Some(Ok(FetchOutcome::Job(job))) => Some(job),
                                _ => None,
                            };
                            (code, next)
                        }
                        v => (v, None),
                    };
                    let code = redis_i64(&v)
                        .ok_or_else(|| QueueError::Protocol(format!("finish reply {v:?}")))?;
                    if code < 0
                        && transport_error
                        && let Some(want) = applied_state
                        && let Ok(Some(rec)) = Queue::from_core(self.core.clone()).get_job(id).await
                        && rec.state == want
                    {
                        return Ok((0, None));
                    }
                    return Ok((code, next));
                }
                Err(e) => {
                    transport_error = true;
                    // Do not chain a fetch on a retry: had the first try applied, its
                    // fetched job would be taken twice over.
                    call.stop_chaining();
                    if slot.since_renewed() >= self.config().lock_duration {
                        return Err(e);
                    }
                    tracing::warn!(job = %id, error = %e, "finishing a job failed; retrying");
                    pause.wait(&never).await;
                }
            }
        }
    }

    /// What a finishing script that chains a fetch needs to take the next job.
    fn take_next<'a>(&'a self, enabled: bool, token: &'a str) -> TakeNext<'a> {
        TakeNext {
            enabled,
            token,
            lock_duration: self.config().lock_duration,
            limiter: self.config().limiter,
        }
    }

    async fn complete(
        &self,
        info: &JobInfo,
        slot: &Slot,
        value: &Value,
        fetch_next: bool,
    ) -> Option<Fetched> {
        let id = info.id.as_str();
        let rv = value.to_string();
        let (keep_count, keep_age) = KeepJobs::from_value(info.opts.get("removeOnComplete"));
        let next_token = self.next_token();
        let call = MoveToFinished {
            prefix: self.prefix(),
            job_id: id,
            token: &slot.token,
            outcome: Finished::Completed { returnvalue: &rv },
            now: now_ms(),
            keep_count,
            keep_age,
            next: self.take_next(fetch_next, &next_token),
        };
        let proof = (keep_count != 0).then_some(JobState::Completed);
        match self.finishing(slot, call, id, proof).await {
            Ok((0, next)) => {
                self.observer.on_completed(info, value).await;
                next
            }
            Ok((code, _)) => {
                let e = QueueError::from_code(id, code);
                tracing::warn!(job = %id, error = %e, "not completed: lock not held");
                self.observer.on_lock_lost(info).await;
                None
            }
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "not completed: redis unreachable past the lock duration");
                self.observer.on_lock_lost(info).await;
                None
            }
        }
    }

    async fn fail(
        &self,
        info: &JobInfo,
        slot: &Slot,
        mut stacktrace: Vec<String>,
        err: &HandlerError,
        timed_out: bool,
        fetch_next: bool,
    ) -> Option<Fetched> {
        let id = info.id.as_str();
        let attempts_made = info.attempts_made + 1;
        let message = err.message().to_owned();
        stacktrace.push(if timed_out {
            format!("TimeoutError: {message}")
        } else {
            format!("Error: {message}")
        });
        if let Some(limit) = info
            .opts
            .get("stackTraceLimit")
            .and_then(value_as_i64)
            .and_then(|l| usize::try_from(l).ok())
            .filter(|l| *l > 0)
        {
            let excess = stacktrace.len().saturating_sub(limit);
            stacktrace.drain(..excess);
        }
        let stack_json = serde_json::to_string(&stacktrace).unwrap_or_else(|_| "[]".to_owned());
        let decision = backoff::decide(&info.opts, attempts_made, err, &self.strategies)
            .unwrap_or_else(|why| {
                tracing::warn!(job = %id, "{why}");
                RetryDecision::Fail
            });
        let now = now_ms();
        let code = match decision {
            RetryDecision::Fail => {
                let (keep_count, keep_age) = KeepJobs::from_value(info.opts.get("removeOnFail"));
                let next_token = self.next_token();
                let call = MoveToFinished {
                    prefix: self.prefix(),
                    job_id: id,
                    token: &slot.token,
                    outcome: Finished::Failed {
                        reason: &message,
                        attempts_made,
                        stacktrace_json: &stack_json,
                    },
                    now,
                    keep_count,
                    keep_age,
                    next: self.take_next(fetch_next, &next_token),
                };
                let proof = (keep_count != 0).then_some(JobState::Failed);
                self.finishing(slot, call, id, proof).await
            }
            RetryDecision::Now | RetryDecision::After(_) => {
                let to = match decision {
                    RetryDecision::After(ms) => RetryTo::Delayed {
                        run_at: now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)),
                    },
                    _ => RetryTo::Wait,
                };
                let call = Retry {
                    prefix: self.prefix(),
                    job_id: id,
                    token: &slot.token,
                    attempts_made,
                    stacktrace_json: &stack_json,
                    failed_reason: &message,
                    to,
                    lifo: info.opts.get("lifo") == Some(&Value::Bool(true)),
                };
                let proof = Some(match to {
                    RetryTo::Delayed { .. } => JobState::Delayed,
                    RetryTo::Wait => JobState::Waiting,
                });
                self.finishing(slot, call, id, proof).await
            }
        };
        match code {
            Ok((0, next)) => {
                let failure = FailureInfo {
                    message,
                    code: err.code().map(str::to_owned),
                    details: err.details().cloned(),
                    will_retry: decision != RetryDecision::Fail,
                    attempts_made,
                    retry_delay: match decision {
                        RetryDecision::After(ms) => Some(Duration::from_millis(ms)),
                        _ => None,
                    },
                    timed_out,
                };
                self.observer.on_failed(info, &failure).await;
                next
            }
            Ok((code, _)) => {
                let e = QueueError::from_code(id, code);
                tracing::warn!(job = %id, error = %e, "failure not recorded: lock not held");
                self.observer.on_lock_lost(info).await;
                None
            }
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "failure not recorded: redis unreachable past the lock duration");
                self.observer.on_lock_lost(info).await;
                None
            }
        }
    }

    /// Put a job the handler could not start back in `delayed`, attempts untouched.
    async fn postpone(&self, info: &JobInfo, slot: &Slot, delay: Duration, why: &str) {
        let id = info.id.as_str();
        let call = Postpone {
            prefix: self.prefix(),
            job_id: id,
            token: &slot.token,
            run_at: now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
        };
        match self
            .finishing(slot, call, id, Some(JobState::Delayed))
            .await
        {
            Ok((0, _)) => {
                tracing::debug!(job = %id, ?delay, "postponed: {why}");
                self.observer.on_postponed(info, delay).await;
            }
            Ok((code, _)) => {
                let e = QueueError::from_code(id, code);
                tracing::warn!(job = %id, error = %e, "could not postpone: lock not held");
                self.observer.on_lock_lost(info).await;
            }
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "could not postpone: redis unreachable past the lock duration");
                self.observer.on_lock_lost(info).await;
            }
        }
    }

    /// Give a job back on shutdown so another worker takes it at once.
    async fn release(&self, info: &JobInfo, slot: &Slot) {
        let id = info.id.as_str();
        let call = Release {
            prefix: self.prefix(),
            job_id: id,
            token: &slot.token,
        };
        let r = self.core.scripts.run(&self.core.client, &call).await;
        match r.map(|v| redis_i64(&v)) {
            Ok(Some(0)) => {
                tracing::info!(job = %id, "released unfinished job to the wait list");
                self.observer.on_released(info).await;
            }
            Ok(code) => {
                tracing::warn!(job = %id, ?code, "could not release job: lock not held");
                self.observer.on_lock_lost(info).await;
            }
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "could not release job; the stalled check will recover it");
                self.observer.on_lock_lost(info).await;
            }
        }
    }

    /// Renew every running job's lock from one ticker, in one round trip. A lock found
    /// gone, or not renewed for a whole lock duration (Redis unreachable), cancels its job.
    async fn renew_loop(self: Arc<Self>, stop: CancellationToken) {
        let period = self.config().effective_lock_renew_time();
        loop {
            tokio::select! {
                () = sleep(period) => {}
                () = stop.cancelled() => return,
            }
            let slots = self.slots();
            if slots.is_empty() {
                continue;
            }
            let call = ExtendLocks {
                prefix: self.prefix(),
                lock_duration: self.config().lock_duration,
                locks: slots
                    .iter()
                    .map(|s| (s.id.as_str(), s.token.as_str()))
                    .collect(),
            };
            match self.core.scripts.run(&self.core.client, &call).await {
                Ok(v) => {
                    for (slot, ok) in slots.iter().zip(v.into_array()) {
                        if redis_i64(&ok) == Some(1) {
                            slot.touch();
                        } else if !slot.cancel.is_cancelled() {
                            tracing::warn!(job = %slot.id, "lock renewal failed: lock lost");
                            slot.cancel(CancelReason::LockLost);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lock renewal failed");
                    for slot in &slots {
                        if slot.since_renewed() >= self.config().lock_duration
                            && !slot.cancel.is_cancelled()
                        {
                            tracing::warn!(job = %slot.id, "lock not renewed for a whole lock duration: lock lost");
                            slot.cancel(CancelReason::LockLost);
                        }
                    }
                }
            }
        }
    }

    /// The stalled check at start and every `stalled_interval` (rate-limited across all
    /// workers by `P:stalled-check`).
    async fn stalled_loop(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let call = MoveStalledJobsToWait {
                prefix: self.prefix(),
                now: now_ms(),
                stalled_interval: self.config().stalled_interval,
                max_stalled_count: self.config().max_stalled_count,
                token: &self.core.token,
            };
            match self.core.scripts.run(&self.core.client, &call).await {
                Ok(v) => {
                    let mut parts = v.into_array().into_iter();
                    let failed = parts.next().map(|x| x.into_array()).unwrap_or_default();
                    let requeued = parts.next().map(|x| x.into_array()).unwrap_or_default();
                    for (list, is_failed) in [(failed, true), (requeued, false)] {
                        for id in list.iter().filter_map(redis_string) {
                            tracing::warn!(job = %id, failed = is_failed, "stalled job recovered");
                            self.observer.on_stalled(&JobId(id), is_failed).await;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "stalled check failed"),
            }
            tokio::select! {
                () = sleep(self.config().stalled_interval) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Promote due delayed jobs: at start, when the next known due time arrives (learned
    /// from the promoter itself and from `P:delayed` messages), and every `guard_interval`.
    async fn promoter_loop(self: Arc<Self>, stop: CancellationToken) {
        let channel = self.core.keys.key("delayed");
        let sub = tokio::select! {
            s = conn::subscriber(self.config()) => s,
            () = stop.cancelled() => return,
        };
        let sub = match sub {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "no subscriber for delayed events; relying on the guard interval");
                None
            }
        };
        let mut rx = match &sub {
            Some(s) => {
                if let Err(e) = s.subscribe(channel.clone()).await {
                    tracing::warn!(error = %e, "subscribing to delayed events failed");
                }
                Some(s.message_rx())
            }
            None => None,
        };
        let guard = self.config().guard_interval;
        let mut next_at = Instant::now();
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = sleep_until(next_at) => {
                    let call = UpdateDelaySet {
                        prefix: self.prefix(),
                        now: now_ms(),
                        token: &self.core.token,
                    };
                    let r = self.core.scripts.run(&self.core.client, &call).await;
                    let fallback = Instant::now() + guard;
                    next_at = match r.map(|v| redis_i64(&v)) {
                        Ok(Some(ts)) if ts > 0 => instant_at(ts).min(fallback),
                        Ok(_) => fallback,
                        Err(e) => {
                            tracing::warn!(error = %e, "promoting delayed jobs failed");
                            Instant::now() + guard.min(Duration::from_secs(1))
                        }
                    };
                }
                msg = recv_opt(&mut rx) => match msg {
                    Some(m) if &*m.channel == channel.as_str() => {
                        let ts = m
                            .value
                            .as_string()
                            .and_then(|s| s.trim().parse::<f64>().ok());
                        if let Some(ts) = ts {
                            let at = instant_at(ts.ceil() as i64);
                            if at < next_at {
                                next_at = at;
                            }
                        }
                    }
                    Some(_) => {}
                    None => {
                        // Channel closed or lagged: resubscribe to the stream, rely on the guard.
                        rx = sub.as_ref().map(|s| s.message_rx());
                        tokio::select! {
                            () = sleep(Duration::from_millis(100)) => {}
                            () = stop.cancelled() => break,
                        }
                    }
                },
            }
        }
        if let Some(s) = sub {
            let _ = timeout(Duration::from_secs(1), s.quit()).await;
        }
    }
}

/// A script that ends an attempt, as [`Shared::finishing`] runs it.
trait EndsAttempt: ScriptCall {
    /// The lock value of the job the script takes in the same round trip, if it may.
    fn chained_token(&self) -> Option<&str> {
        None
    }
    /// Take no next job: the call is being retried after a transport error.
    fn stop_chaining(&mut self) {}
}

impl EndsAttempt for MoveToFinished<'_> {
    fn chained_token(&self) -> Option<&str> {
        Some(self.next.token)
    }

    fn stop_chaining(&mut self) {
        self.next.enabled = false;
    }
}

impl EndsAttempt for Retry<'_> {}

impl EndsAttempt for Postpone<'_> {}

/// The reply of the `takeJob` Lua helper: nil, `{id}` or `{id, HGETALL}`.
/// `token` is the lock value the script was given for the job it takes.
fn parse_take(reply: fred::types::Value, token: String) -> Result<FetchOutcome, QueueError> {
    if reply.is_null() {
        return Ok(FetchOutcome::Empty);
    }
    let mut parts = reply.into_array().into_iter();
    let Some(id) = parts.next().as_ref().and_then(redis_string) else {
        return Err(QueueError::Protocol("moveToActive: no id".to_owned()));
    };
    match parts.next() {
        Some(v) if v.is_null() => {
            let ms = parts.next().as_ref().and_then(redis_i64).unwrap_or(0);
            Ok(FetchOutcome::Limited(Duration::from_millis(
                u64::try_from(ms).unwrap_or(0),
            )))
        }
        Some(hash) => Ok(FetchOutcome::Job(Fetched {
            id,
            token,
            hash: hash_from_flat(hash),
        })),
        None => Ok(FetchOutcome::Vanished),
    }
}

/// The tokio instant at which epoch-ms `ts` arrives (now if it is past).
fn instant_at(ts: i64) -> Instant {
    let wait = ts.saturating_sub(now_ms()).max(0);
    Instant::now() + Duration::from_millis(u64::try_from(wait).unwrap_or(0))
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => sleep(d).await,
        None => std::future::pending().await,
    }
}

async fn recv_opt(
    rx: &mut Option<tokio::sync::broadcast::Receiver<fred::types::Message>>,
) -> Option<fred::types::Message> {
    match rx {
        Some(r) => r.recv().await.ok(),
        None => std::future::pending().await,
    }
}
