//! Finishing: ending an attempt in Redis. Completed and failed-for-good jobs go through
//! moveToFinished (which may take the next job in the same round trip), retried ones
//! through the retry script (to `delayed` or back to wait), postponed ones back to
//! `delayed` with attempts untouched, and on shutdown unfinished ones are released to the
//! wait list. Each tells the observer what happened, or that the lock was lost.
//!
//! Why apart: every path here must hold the attempt's lock and survive a flaky connection
//! (retrying while the lock can still be ours, checking the job's state when a retry's
//! answer is ambiguous), and that logic is shared by all of them.

use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::attempt::{Attempt, Slot};
use super::fetch::{FetchOutcome, Fetched, parse_take};
use super::{FailureInfo, JobHandler, JobObserver, Pause, Shared};
use crate::backoff::{self, RetryDecision};
use crate::error::{HandlerError, QueueError};
use crate::job::JobState;
use crate::queue::{Queue, now_ms, redis_i64};
use crate::scripts::ScriptCall;
use crate::scripts::calls::{
    Finished, MoveToFinished, Postpone, Release, Retry, RetryTo, TakeNext,
};

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

impl<H: JobHandler, O: JobObserver> Shared<H, O> {
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

    pub(super) async fn complete(
        &self,
        attempt: &Attempt,
        value: &Value,
        fetch_next: bool,
    ) -> Option<Fetched> {
        let Attempt { info, opts, slot } = attempt;
        let id = info.id.as_str();
        let rv = value.to_string();
        let (keep_count, keep_age) = opts.keep_completed();
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

    pub(super) async fn fail(
        &self,
        attempt: &Attempt,
        mut stacktrace: Vec<String>,
        err: &HandlerError,
        timed_out: bool,
        fetch_next: bool,
    ) -> Option<Fetched> {
        let Attempt { info, opts, slot } = attempt;
        let id = info.id.as_str();
        let attempts_made = info.attempts_made + 1;
        let message = err.message().to_owned();
        stacktrace.push(if timed_out {
            format!("TimeoutError: {message}")
        } else {
            format!("Error: {message}")
        });
        if let Some(limit) = opts.stack_limit() {
            let excess = stacktrace.len().saturating_sub(limit);
            stacktrace.drain(..excess);
        }
        let stack_json = serde_json::to_string(&stacktrace).unwrap_or_else(|_| "[]".to_owned());
        let decision =
            backoff::decide(opts, attempts_made, err, &self.strategies).unwrap_or_else(|why| {
                tracing::warn!(job = %id, "{why}");
                RetryDecision::Fail
            });
        let now = now_ms();
        let code = match decision {
            RetryDecision::Fail => {
                let (keep_count, keep_age) = opts.keep_failed();
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
                    lifo: opts.is_lifo(),
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
    pub(super) async fn postpone(&self, attempt: &Attempt, delay: Duration, why: &str) {
        let Attempt { info, slot, .. } = attempt;
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
    pub(super) async fn release(&self, attempt: &Attempt) {
        let Attempt { info, slot, .. } = attempt;
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
}
