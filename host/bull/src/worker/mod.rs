//! The worker: fetches jobs, runs them through a [`JobHandler`], and does every duty Bull's
//! add-only clients rely on (lock renewal, stalled check, delayed promotion, repeat
//! scheduling, finished events).
//!
//! This file holds the public [`Worker`] and the wiring of its tasks ([`Worker::run`] starts
//! and stops them together); each duty has a file of its own, so each can be read without
//! the others:
//! - `handler`: what a host plugs in and what it is handed (the public surface);
//! - `fetch`: taking jobs while slots are free (moveToActive, the blocking pop);
//! - `attempt`: one attempt of one job (lock token, timeout, cancellation);
//! - `finish`: ending an attempt (completed, failed, retried, postponed, released);
//! - `periodic`: the tickers (lock renewal, stalled check, delayed promotion).

mod attempt;
mod fetch;
mod finish;
mod handler;
mod periodic;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fred::prelude::ClientLike;
use tokio::time::{sleep, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backoff::{self, BackoffStrategy};
use crate::config::QueueConfig;
use crate::conn;
use crate::defaults::DefaultsFor;
use crate::error::QueueError;
use crate::job::Backoff;
use crate::queue::Core;

use attempt::Slot;
pub use handler::{
    ActiveJob, CancelReason, FailureInfo, JobHandler, JobInfo, JobObserver, NoopObserver,
};

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
    defaults: Option<DefaultsFor>,
}

impl<H: JobHandler> Worker<H, NoopObserver> {
    /// A worker for `config` running `handler`, with drowl's `linear` and
    /// `drowl-exponential` backoffs registered and Bull's own defaults for jobs that set
    /// no retry options.
    #[must_use]
    pub fn new(config: QueueConfig, handler: H) -> Self {
        Self {
            config,
            handler: Arc::new(handler),
            observer: Arc::new(NoopObserver),
            strategies: HashMap::from([
                ("linear".to_owned(), backoff::linear()),
                (
                    Backoff::DROWL_EXPONENTIAL.to_owned(),
                    backoff::drowl_exponential(),
                ),
            ]),
            defaults: None,
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
            defaults: self.defaults,
        }
    }

    /// Apply `defaults` (picked per job from its data) to the retry options a job left
    /// unset, instead of Bull's one attempt with no backoff or timeout; see
    /// [`JobDefaults`](crate::JobDefaults) for what counts as unset. Observers see what
    /// was applied through [`JobInfo::options`].
    #[must_use]
    pub fn with_job_defaults(mut self, defaults: DefaultsFor) -> Self {
        self.defaults = Some(defaults);
        self
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
            defaults: self.defaults,
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
    defaults: Option<DefaultsFor>,
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
}
