//! Retry decisions: Bull's built-in backoffs, drowl's `linear` and `drowl-exponential`,
//! custom strategies, and the handler's own overrides.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::error::HandlerError;
use crate::job::{JobOptions, value_as_i64};

/// What a custom backoff strategy sees.
#[derive(Debug)]
pub struct BackoffContext<'a> {
    /// Failed attempts so far, including the one that just failed.
    pub attempts_made: u32,
    /// `backoff.delay` from the job's options.
    pub delay: Option<u64>,
    /// `backoff.options` from the job's options.
    pub options: Option<&'a Value>,
    /// The failure being retried.
    pub error: &'a HandlerError,
}

/// A custom backoff strategy, registered on the worker under a `backoff.type` name (Bull's
/// `settings.backoffStrategies`). Returns the delay in ms; a negative value stops retrying.
pub type BackoffStrategy = Arc<dyn Fn(&BackoffContext<'_>) -> i64 + Send + Sync>;

/// drowl's `linear` strategy: `delay · attemptsMade`.
pub(crate) fn linear() -> BackoffStrategy {
    Arc::new(|ctx: &BackoffContext<'_>| {
        let delay = ctx.delay.or_else(|| {
            ctx.options
                .and_then(|o| o.get("delay"))
                .and_then(value_as_i64)
                .and_then(|d| u64::try_from(d).ok())
        });
        let total = delay
            .unwrap_or(0)
            .saturating_mul(u64::from(ctx.attempts_made));
        i64::try_from(total).unwrap_or(i64::MAX)
    })
}

/// drowl's exponential strategy: `delay · 2^(attemptsMade − 1)`, so d, 2d, 4d, … (drowl's
/// default retries wait 1 s, 2 s, 4 s).
///
/// Why not Bull's `exponential`: Bull's is `delay · (2^attemptsMade − 1)` (d, 3d, 7d), and a
/// job that asks for `{type: "exponential"}` keeps Bull's meaning. drowl's schedule is a
/// strategy of its own, registered under [`crate::Backoff::DROWL_EXPONENTIAL`].
pub(crate) fn drowl_exponential() -> BackoffStrategy {
    Arc::new(|ctx: &BackoffContext<'_>| {
        let delay = ctx.delay.unwrap_or(0);
        let shift = ctx.attempts_made.saturating_sub(1).min(62);
        let total = delay.saturating_mul(1u64 << shift);
        i64::try_from(total).unwrap_or(i64::MAX)
    })
}

/// What happens after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RetryDecision {
    /// No retry: the job moves to `failed`.
    Fail,
    /// Back to wait (or paused) at once.
    Now,
    /// Into `delayed` for this many ms.
    After(u64),
}

/// Bull's decision: retry while `attemptsMade < attempts`; the delay comes from the handler
/// (`RetryAfter`), or from the job's `backoff` (fixed, exponential, or a custom strategy —
/// where −1 means stop). `Permanent` never retries. An unknown strategy fails the job with
/// the returned message (Bull would throw and leave the job to the stalled check).
pub(crate) fn decide(
    opts: &JobOptions,
    attempts_made: u32,
    error: &HandlerError,
    strategies: &HashMap<String, BackoffStrategy>,
) -> Result<RetryDecision, String> {
    if attempts_made >= opts.max_attempts() {
        return Ok(RetryDecision::Fail);
    }
    let delay = match error {
        HandlerError::Permanent { .. } => return Ok(RetryDecision::Fail),
        // The worker gives a postponed job back before any retry decision.
        HandlerError::Postponed { delay, .. } => {
            return Ok(RetryDecision::After(
                u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            ));
        }
        HandlerError::RetryAfter { delay, .. } => {
            i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)
        }
        HandlerError::Failed { .. } => match &opts.backoff {
            None => 0,
            Some(b) => {
                let d = b.delay.unwrap_or(0);
                match b.kind.as_str() {
                    kind if strategies.contains_key(kind) => {
                        let ctx = BackoffContext {
                            attempts_made,
                            delay: b.delay,
                            options: b.options.as_ref(),
                            error,
                        };
                        strategies[kind](&ctx)
                    }
                    "fixed" => i64::try_from(d).unwrap_or(i64::MAX),
                    "exponential" => exponential(d, attempts_made),
                    other => {
                        return Err(format!(
                            "Unknown backoff strategy {other}. If a custom backoff strategy is used, specify it when the queue is created."
                        ));
                    }
                }
            }
        },
    };
    Ok(match delay {
        d if d < 0 => RetryDecision::Fail,
        0 => RetryDecision::Now,
        d => RetryDecision::After(u64::try_from(d).unwrap_or(u64::MAX)),
    })
}

/// `Math.round((2^attemptsMade − 1) · delay)`.
fn exponential(delay: u64, attempts_made: u32) -> i64 {
    let factor = 2f64.powi(i32::try_from(attempts_made).unwrap_or(i32::MAX)) - 1.0;
    let v = (factor * delay as f64).round();
    if v >= i64::MAX as f64 {
        i64::MAX
    } else {
        v as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Backoff;
    use serde_json::json;

    fn read(opts: Value) -> JobOptions {
        JobOptions::from_stored(&opts)
    }

    fn strategies() -> HashMap<String, BackoffStrategy> {
        HashMap::from([
            ("linear".to_owned(), linear()),
            (Backoff::DROWL_EXPONENTIAL.to_owned(), drowl_exponential()),
        ])
    }

    /// drowl's schedule: d, 2d, 4d; Bull's `exponential` keeps d, 3d, 7d.
    #[test]
    fn drowl_exponential_doubles() {
        let opts =
            read(json!({"attempts": 5, "backoff": {"type": "drowl-exponential", "delay": 1000}}));
        let e = HandlerError::failed("x");
        let got: Vec<_> = (1..=4)
            .map(|n| decide(&opts, n, &e, &strategies()).unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                RetryDecision::After(1000),
                RetryDecision::After(2000),
                RetryDecision::After(4000),
                RetryDecision::After(8000)
            ]
        );
        assert_eq!(
            decide(&opts, 5, &e, &strategies()).unwrap(),
            RetryDecision::Fail
        );
    }

    /// A job with no options under drowl's defaults: three attempts, 1 s then 2 s apart;
    /// a permanent failure still ends after the first.
    #[test]
    fn drowl_defaults_retry_twice_and_never_a_permanent_failure() {
        let defaults = crate::JobDefaults {
            attempts: 3,
            backoff: Some(Backoff::drowl_exponential(1000)),
            timeout: Some(std::time::Duration::from_secs(300)),
        };
        let opts = defaults.apply(read(json!({"attempts": 1, "delay": 0})));
        let e = HandlerError::failed("x");
        let got: Vec<_> = (1..=3)
            .map(|n| decide(&opts, n, &e, &strategies()).unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                RetryDecision::After(1000),
                RetryDecision::After(2000),
                RetryDecision::Fail
            ]
        );
        let bad_input = HandlerError::permanent("input.mode is missing");
        assert_eq!(
            decide(&opts, 1, &bad_input, &strategies()).unwrap(),
            RetryDecision::Fail
        );
    }

    #[test]
    fn exponential_is_d_3d_7d() {
        let opts = read(json!({"attempts": 5, "backoff": {"type": "exponential", "delay": 100}}));
        let e = HandlerError::failed("x");
        let got: Vec<_> = (1..=4)
            .map(|n| decide(&opts, n, &e, &strategies()).unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                RetryDecision::After(100),
                RetryDecision::After(300),
                RetryDecision::After(700),
                RetryDecision::After(1500)
            ]
        );
        assert_eq!(
            decide(&opts, 5, &e, &strategies()).unwrap(),
            RetryDecision::Fail
        );
    }

    #[test]
    fn numeric_backoff_is_fixed_and_linear_multiplies() {
        let e = HandlerError::failed("x");
        let fixed = read(json!({"attempts": 3, "backoff": 250}));
        assert_eq!(
            decide(&fixed, 2, &e, &strategies()).unwrap(),
            RetryDecision::After(250)
        );
        let lin = read(json!({"attempts": 4, "backoff": {"type": "linear", "delay": 100}}));
        assert_eq!(
            decide(&lin, 3, &e, &strategies()).unwrap(),
            RetryDecision::After(300)
        );
    }

    #[test]
    fn overrides_and_defaults() {
        let opts = read(json!({"attempts": 3, "backoff": {"type": "fixed", "delay": 1000}}));
        let ra = HandlerError::retry_after("x", std::time::Duration::from_millis(42));
        assert_eq!(
            decide(&opts, 1, &ra, &strategies()).unwrap(),
            RetryDecision::After(42)
        );
        let p = HandlerError::permanent("x");
        assert_eq!(
            decide(&opts, 1, &p, &strategies()).unwrap(),
            RetryDecision::Fail
        );
        let none = read(json!({"attempts": 2}));
        let e = HandlerError::failed("x");
        assert_eq!(
            decide(&none, 1, &e, &strategies()).unwrap(),
            RetryDecision::Now
        );
        assert_eq!(
            decide(&read(json!({})), 1, &e, &strategies()).unwrap(),
            RetryDecision::Fail
        );
        let unknown = read(json!({"attempts": 2, "backoff": {"type": "nope", "delay": 1}}));
        assert!(decide(&unknown, 1, &e, &strategies()).is_err());
    }
}
