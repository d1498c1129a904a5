//! The periodic duties, each one task ticking until the worker stops: lock renewal for
//! every running attempt in one round trip (cancelling an attempt whose lock is gone), the
//! stalled-job check (requeueing jobs whose worker died), and the promoter that moves due
//! delayed jobs to wait (woken by `P:delayed` messages, with a guard interval as the
//! safety net).
//!
//! Why apart: these are what Bull's add-only clients rely on a worker to do; they run
//! whether or not this worker has jobs, and stop only after running jobs are done.

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{ClientLike, EventInterface, PubsubInterface};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use super::{CancelReason, JobHandler, JobObserver, Shared};
use crate::conn;
use crate::job::JobId;
use crate::queue::{now_ms, redis_i64, redis_string};
use crate::scripts::calls::{ExtendLocks, MoveStalledJobsToWait, UpdateDelaySet};

impl<H: JobHandler, O: JobObserver> Shared<H, O> {
    /// Renew every running job's lock from one ticker, in one round trip. A lock found
    /// gone, or not renewed for a whole lock duration (Redis unreachable), cancels its job.
    pub(super) async fn renew_loop(self: Arc<Self>, stop: CancellationToken) {
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
    pub(super) async fn stalled_loop(self: Arc<Self>, stop: CancellationToken) {
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
    pub(super) async fn promoter_loop(self: Arc<Self>, stop: CancellationToken) {
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

/// The tokio instant at which epoch-ms `ts` arrives (now if it is past).
fn instant_at(ts: i64) -> Instant {
    let wait = ts.saturating_sub(now_ms()).max(0);
    Instant::now() + Duration::from_millis(u64::try_from(wait).unwrap_or(0))
}

async fn recv_opt(
    rx: &mut Option<tokio::sync::broadcast::Receiver<fred::types::Message>>,
) -> Option<fred::types::Message> {
    match rx {
        Some(r) => r.recv().await.ok(),
        None => std::future::pending().await,
    }
}
