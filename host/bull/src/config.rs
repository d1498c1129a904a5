//! Queue and worker settings, with Bull's defaults.

use std::time::Duration;

use crate::error::QueueError;

/// Where the queue lives and how the worker behaves.
///
/// Why: every setting that changes protocol timing (lock duration, stalled interval, …) must
/// match what operators expect from Bull, so the defaults are Bull's and each one can be
/// tightened (tests use sub-second values to make fault recovery fast).
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// Redis connection URL, e.g. `redis://127.0.0.1:6379`.
    pub redis_url: String,
    /// Queue name; drowl's default is `drowl`.
    pub queue_name: String,
    /// Key prefix; Bull's default is `bull`. Keys are `<prefix>:<queue>:…`.
    pub prefix: String,
    /// How long a job lock lives without renewal (Bull default 30 s).
    pub lock_duration: Duration,
    /// How often locks are renewed; `None` means `lock_duration / 2` (Bull's default).
    pub lock_renew_time: Option<Duration>,
    /// How often the stalled-job check runs (Bull default 30 s).
    pub stalled_interval: Duration,
    /// How many times a job may stall before it is failed (Bull default 1).
    pub max_stalled_count: u32,
    /// Timeout of the blocking pop when the queue is idle (Bull default 5 s).
    pub drain_delay: Duration,
    /// Period of the delayed-job promoter's safety net (Bull default 5 s).
    pub guard_interval: Duration,
    /// How many jobs this worker runs at once (default 1).
    pub concurrency: usize,
    /// On shutdown, how long running jobs may take to finish before they are released back
    /// to the wait list (default 10 s).
    pub shutdown_grace: Duration,
    /// Timeout of a single non-blocking Redis command, so an unreachable server surfaces as
    /// an error the worker can back off from instead of a hang (default 10 s).
    pub command_timeout: Duration,
    /// Bull's `limiter`: at most this many jobs started per window, across every worker
    /// on the queue (they share `P:limiter`, as Bull's own workers do). `None`: no limit.
    pub limiter: Option<RateLimit>,
}

/// At most `max` jobs started per `duration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Jobs per window.
    pub max: u32,
    /// The window.
    pub duration: Duration,
}

impl QueueConfig {
    /// Settings with Bull's defaults for the given Redis URL.
    #[must_use]
    pub fn new(redis_url: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            queue_name: "drowl".to_owned(),
            prefix: "bull".to_owned(),
            lock_duration: Duration::from_secs(30),
            lock_renew_time: None,
            stalled_interval: Duration::from_secs(30),
            max_stalled_count: 1,
            drain_delay: Duration::from_secs(5),
            guard_interval: Duration::from_secs(5),
            concurrency: 1,
            shutdown_grace: Duration::from_secs(10),
            command_timeout: Duration::from_secs(10),
            limiter: None,
        }
    }

    /// Start at most `max` jobs per `duration` on this queue (Bull's `limiter`). A job
    /// taken over the limit goes to `delayed` until the window ends, attempts untouched.
    #[must_use]
    pub fn limiter(mut self, max: u32, duration: Duration) -> Self {
        self.limiter = Some(RateLimit { max, duration });
        self
    }

    /// Use another queue name (several queues can share one Redis).
    #[must_use]
    pub fn queue_name(mut self, name: impl Into<String>) -> Self {
        self.queue_name = name.into();
        self
    }

    /// Use another key prefix (Bull's `prefix` option; use a `{hash-tag}` on Redis Cluster).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Set the lock duration; the renew time follows as half of it unless set explicitly.
    #[must_use]
    pub fn lock_duration(mut self, d: Duration) -> Self {
        self.lock_duration = d;
        self
    }

    /// Renew locks at this period instead of `lock_duration / 2`.
    #[must_use]
    pub fn lock_renew_time(mut self, d: Duration) -> Self {
        self.lock_renew_time = Some(d);
        self
    }

    /// Run the stalled-job check at this period.
    #[must_use]
    pub fn stalled_interval(mut self, d: Duration) -> Self {
        self.stalled_interval = d;
        self
    }

    /// Fail a job after it stalled more than this many times.
    #[must_use]
    pub fn max_stalled_count(mut self, n: u32) -> Self {
        self.max_stalled_count = n;
        self
    }

    /// Block at most this long on an empty queue before looping.
    #[must_use]
    pub fn drain_delay(mut self, d: Duration) -> Self {
        self.drain_delay = d;
        self
    }

    /// Run the delayed-job promoter at least this often.
    #[must_use]
    pub fn guard_interval(mut self, d: Duration) -> Self {
        self.guard_interval = d;
        self
    }

    /// Run this many jobs at once.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Let running jobs finish for this long on shutdown before releasing them.
    #[must_use]
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }

    /// Fail a single Redis command after this long.
    #[must_use]
    pub fn command_timeout(mut self, d: Duration) -> Self {
        self.command_timeout = d;
        self
    }

    /// The renew period actually used: the explicit one, or half the lock duration.
    #[must_use]
    pub fn effective_lock_renew_time(&self) -> Duration {
        self.lock_renew_time.unwrap_or(self.lock_duration / 2)
    }

    /// `<prefix>:<queue>:`, the string every key starts with.
    #[must_use]
    pub fn key_prefix(&self) -> String {
        format!("{}:{}:", self.prefix, self.queue_name)
    }

    /// Reject settings that would break the lock protocol, before touching Redis.
    pub fn validate(&self) -> Result<(), QueueError> {
        let bad = |m: &str| Err(QueueError::Config(m.to_owned()));
        if self.queue_name.is_empty() {
            return bad("queue name must not be empty");
        }
        if self.concurrency == 0 {
            return bad("concurrency must be at least 1");
        }
        if self.lock_duration < Duration::from_millis(10) {
            return bad("lock_duration must be at least 10 ms");
        }
        let renew = self.effective_lock_renew_time();
        if renew.is_zero() || renew >= self.lock_duration {
            return bad("lock_renew_time must be positive and shorter than lock_duration");
        }
        if self.stalled_interval.is_zero() || self.guard_interval.is_zero() {
            return bad("stalled_interval and guard_interval must be positive");
        }
        if self.drain_delay < Duration::from_millis(10) {
            return bad("drain_delay must be at least 10 ms");
        }
        if let Some(l) = self.limiter
            && (l.max == 0 || l.duration < Duration::from_millis(1))
        {
            return bad("limiter: max must be at least 1 and duration at least 1 ms");
        }
        Ok(())
    }
}
