//! Fetching: taking jobs while concurrency slots are free. moveToActive pops inside the
//! script while the last fetch found work; an idle worker blocks on BRPOPLPUSH (bounded by
//! `drain_delay`) on a connection of its own, then takes the popped job. The rate limiter's
//! answer, a vanished job and Redis errors are all handled here, so an attempt only ever
//! starts with its lock held.
//!
//! Why apart: this is the only loop that decides when work starts; shutdown stops it first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{Client, ClientLike};
use tokio::sync::Semaphore;
use tokio::time::{sleep, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{JobHandler, JobObserver, Pause, Shared};
use crate::conn;
use crate::error::QueueError;
use crate::queue::{hash_from_flat, now_ms, redis_i64, redis_string};
use crate::scripts::calls::{MoveToActive, RequeueUnlocked};

/// A job taken by moveToActive.
pub(super) struct Fetched {
    pub(super) id: String,
    /// The lock value moveToActive set.
    pub(super) token: String,
    pub(super) hash: HashMap<String, String>,
}

pub(super) enum FetchOutcome {
    Job(Fetched),
    /// Popped, but its hash is gone (removed while waiting); keep fetching.
    Vanished,
    /// The rate limiter sent the popped job to `delayed`; the window ends in this long.
    Limited(Duration),
    Empty,
}

impl<H: JobHandler, O: JobObserver> Shared<H, O> {
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
    pub(super) async fn fetch_loop(self: Arc<Self>, stop: CancellationToken, jobs: TaskTracker) {
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
}

/// The reply of the `takeJob` Lua helper: nil, `{id}` or `{id, HGETALL}`.
/// `token` is the lock value the script was given for the job it takes.
pub(super) fn parse_take(
    reply: fred::types::Value,
    token: String,
) -> Result<FetchOutcome, QueueError> {
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
