//! A worker's defaults for the retry options a job left unset (attempts, backoff,
//! timeout), and the rule that says which ones it left unset.
//!
//! Why in the worker: Bull's own defaults (one attempt, no backoff, no timeout) are what
//! a producer gets by passing no options, and drowl's API passes none. The platform's
//! worker applies its own instead (drowl's are 3 attempts, 1 s / 2 s / 4 s, 5 minutes),
//! configurable per job type, while a job's own options always win. The defaults are
//! applied when a job is read for an attempt and never written back into its stored
//! `opts`, so what the producer asked for stays as it asked for it.
//!
//! Why a rule and not "is the field there": Bull's `Job` constructor (`setDefaultOpts` in
//! bull 4's `lib/job.js`) stores `attempts: 1` (and `delay: 0`) when the caller passed
//! none, so `queue.add(data)` and `queue.add(data, {attempts: 1})` store the same `opts`.
//! [`JobDefaults::apply`] therefore reads:
//! - `timeout` absent: the default timeout applies; any stored value (0 too, Bull's "no
//!   limit") is the job's own;
//! - `backoff` absent: the default backoff applies;
//! - attempts: the job's own when it asks for more than one, or when it sets `backoff` or
//!   `timeout` (it then chose its retry options, and Bull's one attempt is what it
//!   chose); otherwise (at most 1, and neither `backoff` nor `timeout`) the default
//!   attempts apply. A producer that wants exactly one attempt under a worker with
//!   defaults says so with any `backoff` (e.g. `{attempts: 1, backoff: 0}`) or a `timeout`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::job::{Backoff, JobOptions};

/// What a worker applies to a job that left its retry options unset (see the module doc
/// for what counts as unset).
#[derive(Clone, Debug, PartialEq)]
pub struct JobDefaults {
    /// Total attempts (at least 1).
    pub attempts: u32,
    /// Delay between attempts; `None` retries at once.
    pub backoff: Option<Backoff>,
    /// How long one attempt may run; `None` means no limit.
    pub timeout: Option<Duration>,
}

/// Picks the [`JobDefaults`] for a job from its decoded `data` (drowl keys them on
/// `data.type`); `None` leaves Bull's own defaults.
pub type DefaultsFor = Arc<dyn Fn(&Value) -> Option<JobDefaults> + Send + Sync>;

impl JobDefaults {
    /// Whether the job's stored options chose its retries: more than one attempt, or any
    /// `backoff` or `timeout` (see the module doc: Bull stores `attempts: 1` for "unset").
    #[must_use]
    pub fn sets_attempts(opts: &JobOptions) -> bool {
        opts.backoff.is_some() || opts.timeout.is_some() || opts.attempts.is_some_and(|a| a > 1)
    }

    /// `opts` with these defaults filling what the job left unset; everything the job
    /// set is kept as it is.
    #[must_use]
    pub fn apply(&self, mut opts: JobOptions) -> JobOptions {
        if !Self::sets_attempts(&opts) {
            opts.attempts = Some(self.attempts.max(1));
        }
        if opts.backoff.is_none() {
            opts.backoff.clone_from(&self.backoff);
        }
        if opts.timeout.is_none() {
            opts.timeout = self
                .timeout
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        }
        opts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn drowl() -> JobDefaults {
        JobDefaults {
            attempts: 3,
            backoff: Some(Backoff::drowl_exponential(1000)),
            timeout: Some(Duration::from_secs(300)),
        }
    }

    /// What `opts` become under drowl's defaults: attempts, backoff, timeout (ms).
    fn applied(stored: Value) -> (u32, Option<Backoff>, Option<u64>) {
        let o = drowl().apply(JobOptions::from_stored(&stored));
        (o.max_attempts(), o.backoff, o.timeout)
    }

    /// `queue.add(data)` with bull 4 stores `{attempts: 1, delay: 0, timestamp}`: no
    /// options, so every default applies.
    #[test]
    fn bulls_stored_defaults_count_as_no_options() {
        let everything = (3, Some(Backoff::drowl_exponential(1000)), Some(300_000));
        assert_eq!(
            applied(json!({"attempts": 1, "delay": 0, "timestamp": 1_700_000_000_000_i64})),
            everything
        );
        assert_eq!(applied(json!({})), everything);
        // Options unrelated to retries leave it unset too.
        assert_eq!(
            applied(json!({"attempts": 1, "delay": 0, "jobId": "a", "priority": 2})),
            everything
        );
    }

    /// A job's own options always win; what it left unset is filled in.
    #[test]
    fn a_jobs_own_options_win() {
        assert_eq!(
            applied(json!({"attempts": 2, "timeout": 5000})),
            (2, Some(Backoff::drowl_exponential(1000)), Some(5000))
        );
        assert_eq!(
            applied(json!({"attempts": 5, "backoff": {"type": "exponential", "delay": 300}})),
            (5, Some(Backoff::exponential(300)), Some(300_000))
        );
        // One attempt on purpose: any backoff, or a timeout, says the job chose.
        assert_eq!(
            applied(json!({"attempts": 1, "backoff": {"type": "fixed", "delay": 0}})),
            (1, Some(Backoff::fixed(0)), Some(300_000))
        );
        assert_eq!(
            applied(json!({"attempts": 1, "timeout": 300})),
            (1, Some(Backoff::drowl_exponential(1000)), Some(300))
        );
        // `timeout: 0` is Bull's "no limit", the job's own choice.
        assert_eq!(applied(json!({"timeout": 0})).2, Some(0));
        assert_eq!(
            drowl()
                .apply(JobOptions::from_stored(&json!({"timeout": 0})))
                .attempt_timeout(),
            None
        );
    }

    #[test]
    fn defaults_without_backoff_or_timeout_leave_them_unset() {
        let d = JobDefaults {
            attempts: 0,
            backoff: None,
            timeout: None,
        };
        let o = d.apply(JobOptions::from_stored(&json!({"attempts": 1})));
        assert_eq!((o.max_attempts(), o.backoff, o.timeout), (1, None, None));
    }
}
