//! One attempt of one job: its lock token and cancellation ([`Slot`]), turning the fetched
//! hash into a [`JobInfo`], scheduling a repeatable's next run, running the handler under
//! `opts.timeout`, and handing the outcome to the finishing code.
//!
//! Why apart from fetching and finishing: an attempt is what the renewal ticker, the
//! handler and the finish scripts share, and one task may run several in a row when a
//! finish script hands over the next job on the same concurrency slot.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::fetch::Fetched;
use super::{ActiveJob, CancelReason, JobHandler, JobInfo, JobObserver, Shared};
use crate::error::HandlerError;
use crate::job::{JobId, JobOptions, parse_json_lenient};
use crate::queue::now_ms;

/// Per-attempt state shared between its task and the renewal ticker.
#[derive(Debug)]
pub(super) struct Slot {
    /// The job id.
    pub(super) id: String,
    /// This attempt's lock value. One per attempt, not one per process: after Redis loses
    /// its data the id counter starts again, and a new job can get the id of a job still
    /// running here; with a shared token the old attempt's renewals and finish would pass
    /// the lock check of the new job and complete it with the old job's result.
    pub(super) token: String,
    pub(super) cancel: CancellationToken,
    pub(super) reason: OnceLock<CancelReason>,
    /// Last time the lock was known to be ours.
    pub(super) renewed: Mutex<Instant>,
}

impl Slot {
    pub(super) fn new(id: String, token: String) -> Self {
        Self {
            id,
            token,
            cancel: CancellationToken::new(),
            reason: OnceLock::new(),
            renewed: Mutex::new(Instant::now()),
        }
    }

    pub(super) fn cancel(&self, reason: CancelReason) {
        let _ = self.reason.set(reason);
        self.cancel.cancel();
    }

    pub(super) fn touch(&self) {
        *self.renewed.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    pub(super) fn since_renewed(&self) -> Duration {
        self.renewed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }
}

/// One running attempt, as the finishing code needs it.
pub(super) struct Attempt {
    /// The job as observers see it.
    pub(super) info: Arc<JobInfo>,
    /// Its options, read once from `info.opts`.
    pub(super) opts: JobOptions,
    /// Its lock token and cancellation.
    pub(super) slot: Arc<Slot>,
}

impl<H: JobHandler, O: JobObserver> Shared<H, O> {
    /// Run a job on its own task; while its finish script hands over the next job (same
    /// round trip, as Bull's moveToFinished does), keep going on the same slot.
    pub(super) fn spawn_job(
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
        // Read once; `JobInfo::opts` keeps the raw JSON for observers and for the repeat
        // schedule, which stores it again with its own fields updated. The worker's
        // defaults are applied to the typed copy only: never stored, never seen by a
        // repeat's next run as the job's own options.
        let stored = JobOptions::from_stored(&opts);
        let raw_data = hash.get("data").cloned().unwrap_or_else(|| "{}".to_owned());
        let data = if stored.prevent_parsing_data() {
            Value::String(raw_data.clone())
        } else {
            parse_json_lenient(&raw_data)
        };
        let defaults = self.defaults.as_ref().and_then(|pick| pick(&data));
        let options = match &defaults {
            Some(d) => d.apply(stored),
            None => stored,
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
            defaults,
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
        if options.repeat.is_some()
            && let Some(opts_map) = info.opts.as_object()
            && let Err(e) = self
                .core
                .schedule_next_repeat(&info.name, raw_data, opts_map, false)
                .await
        {
            tracing::warn!(job = %id, error = %e, "could not schedule the next repeat");
        }

        let active = ActiveJob {
            info: Arc::clone(&info),
            slot: Arc::clone(&slot),
            core: self.core.clone(),
        };
        let limit = options.attempt_timeout();
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
        let attempt = Attempt {
            info: Arc::clone(&info),
            opts: options,
            slot: Arc::clone(&slot),
        };
        let next = match outcome {
            Some(Ok(value)) => self.complete(&attempt, &value, fetch_next).await,
            Some(Err(HandlerError::Postponed { message, delay })) => {
                self.postpone(&attempt, delay, &message).await;
                None
            }
            Some(Err(err)) => {
                let timed_out = slot.reason.get() == Some(&CancelReason::Timeout);
                self.fail(&attempt, stacktrace, &err, timed_out, fetch_next)
                    .await
            }
            None => {
                match slot.reason.get() {
                    Some(CancelReason::Shutdown) => self.release(&attempt).await,
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
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => sleep(d).await,
        None => std::future::pending().await,
    }
}
